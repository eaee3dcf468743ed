//! The user's own account page over HTTP: without a session it signs in and comes back;
//! it lists the apps holding access and revokes one (its tokens stop working); the
//! password change asks for the current password; every form needs the CSRF token.

use crate::flow_support::*;
use crate::sessions::{authorize, location_param, sign_in};
use crate::support::{agent, reply, Reply};

pub fn get_account(s: &Seeded, cookie: &str) -> Reply {
    reply(
        agent()
            .get(&s.server.url("/account"))
            .header("cookie", cookie)
            .call(),
    )
}

/// Posts one of the page's forms: the CSRF cookie and token of `page`, plus `fields`.
pub fn post_account(s: &Seeded, session: &str, page: &Reply, fields: &[(&str, &str)]) -> Reply {
    let (csrf, hidden) = page_form(page);
    let token = hidden
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.clone())
        .expect("csrf_token");
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    reply(
        agent()
            .post(&s.server.url("/account"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &format!("{csrf}; {session}"))
            .send(body),
    )
}

#[test]
fn without_a_session_the_account_page_signs_in_and_comes_back() {
    let s = seeded(&[]);
    let page = get_account(&s, "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("action=\"/account\""), "{}", page.body);
    let wrong = post_account(
        &s,
        "",
        &page,
        &[("op", "signin"), ("email", EMAIL), ("password", "nope")],
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let r = post_account(
        &s,
        "",
        &page,
        &[("op", "signin"), ("email", EMAIL), ("password", PASSWORD)],
    );
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.header("location"), Some("/account"));
    let session = r
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("session")
        .to_owned();
    let page = get_account(&s, &session);
    assert!(page.body.contains(EMAIL), "{}", page.body);
    assert!(page.body.contains("id=\"no-apps\""), "{}", page.body);
}

#[test]
fn revoking_an_app_on_the_account_page_stops_its_tokens() {
    let s = seeded(&[]);
    let (session, _) = sign_in(&s, None);
    let r = authorize(&s, Some(&session), "");
    let code = location_param(&r, "code").expect("code");
    let (access, _) = tokens(&exchange(&s, &code));
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 200);

    let page = get_account(&s, &session);
    assert!(page.body.contains("Test App"), "{}", page.body);
    // Without the page's token nothing is revoked.
    let forged = reply(
        agent()
            .post(&s.server.url("/account"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &session)
            .send(format!("op=revoke&client_id={CLIENT_ID}")),
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 200);

    let r = post_account(
        &s,
        &session,
        &page,
        &[("op", "revoke"), ("client_id", CLIENT_ID)],
    );
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 401);
    let page = get_account(&s, &session);
    assert!(page.body.contains("id=\"no-apps\""), "{}", page.body);
}

#[test]
fn the_password_change_asks_for_the_current_password() {
    let s = seeded(&[]);
    let (session, _) = sign_in(&s, None);
    let page = get_account(&s, &session);
    let change = |current: &str, new: &str, repeat: &str| {
        post_account(
            &s,
            &session,
            &page,
            &[
                ("op", "password"),
                ("current_password", current),
                ("new_password", new),
                ("repeat_password", repeat),
            ],
        )
    };
    let r = change("wrong", "n3w pass", "n3w pass");
    assert_eq!(r.status, 401, "{}", r.body);
    let r = change(PASSWORD, "n3w pass", "other");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = change(PASSWORD, "n3w pass", "n3w pass");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"notice\""), "{}", r.body);
    assert!(r.header("set-cookie").is_some());

    let old = login(&s.server, &login_body(serde_json::json!({})));
    assert_eq!(old.status, 401, "{}", old.body);
    let new = login(
        &s.server,
        &login_body(serde_json::json!({"password": "n3w pass"})),
    );
    assert_eq!(new.status, 200, "{}", new.body);
}
