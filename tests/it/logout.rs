//! RP-Initiated Logout at `/oauth/logout`: a hint naming the session's user ends the
//! session at once and returns to the registered `post_logout_redirect_uri` with `state`;
//! an unregistered URI gets the "signed out" page; without such a hint the user confirms
//! on a CSRF-protected form first.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::flow_support::*;
use crate::sessions::{assert_code, assert_error, authorize, location_param, sign_in};
use crate::support::{agent, reply, Reply};

const RP: &str = "rp";
const BYE: &str = "http://acme.com/bye";

/// The seeded server plus a client with a registered post-logout URI.
fn site() -> Seeded {
    let s = seeded(&[]);
    s.o.ok(&[
        "client",
        "add",
        "--name",
        "RP",
        "--id",
        RP,
        "--redirect-uri",
        REDIRECT,
        "--post-logout-redirect-uri",
        BYE,
    ]);
    s
}

/// An id_token-shaped hint (unsigned: oauthd reads, never trusts, its claims).
fn hint(sub: &str, aud: &str) -> String {
    let claims = serde_json::json!({"sub": sub, "aud": aud}).to_string();
    format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
        URL_SAFE_NO_PAD.encode(claims)
    )
}

fn user_id(s: &Seeded) -> String {
    s.o.json(&["user", "show", EMAIL])["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn logout(s: &Seeded, cookie: &str, query: &[(&str, &str)]) -> Reply {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    reply(
        agent()
            .get(&s.server.url(&format!("/oauth/logout?{query}")))
            .header("cookie", cookie)
            .call(),
    )
}

fn assert_signed_out(s: &Seeded, session: &str, r: &Reply) {
    let cleared = r.header("set-cookie").expect("cookie cleared");
    assert!(
        cleared.starts_with("oauthd_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_error(
        &authorize(s, Some(session), "&prompt=none"),
        "login_required",
        "after logout",
    );
}

#[test]
fn a_hint_for_the_sessions_user_signs_out_and_returns_with_state() {
    let s = site();
    let (session, _) = sign_in(&s, None);
    let r = logout(
        &s,
        &session,
        &[
            ("id_token_hint", &hint(&user_id(&s), RP)),
            ("post_logout_redirect_uri", BYE),
            ("state", "s1"),
        ],
    );
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(
        r.header("location").is_some_and(|l| l.starts_with(BYE)),
        "{:?}",
        r.header("location")
    );
    assert_eq!(location_param(&r, "state").as_deref(), Some("s1"));
    assert_signed_out(&s, &session, &r);
}

#[test]
fn an_unregistered_return_uri_gets_the_signed_out_page() {
    let s = site();
    let (session, _) = sign_in(&s, None);
    let sub = user_id(&s);
    for (aud, uri) in [
        (RP, "http://acme.com/elsewhere"),
        (RP, "https://evil.example/"),
        (CLIENT_ID, BYE),
    ] {
        let (session, _) = sign_in(&s, Some(&session));
        let r = logout(
            &s,
            &session,
            &[
                ("id_token_hint", &hint(&sub, aud)),
                ("post_logout_redirect_uri", uri),
            ],
        );
        assert_eq!(r.status, 200, "{aud} {uri}: {:?}", r.header("location"));
        assert!(r.body.contains("id=\"signed-out\""), "{}", r.body);
        assert_signed_out(&s, &session, &r);
    }
}

#[test]
fn without_a_matching_hint_the_user_confirms_on_a_csrf_protected_form() {
    let s = site();
    let (session, _) = sign_in(&s, None);
    for query in [
        vec![("client_id", RP), ("post_logout_redirect_uri", BYE)],
        vec![("id_token_hint", "garbage")],
    ] {
        let r = logout(&s, &session, &query);
        assert_eq!(r.status, 200, "{query:?}");
        assert!(r.body.contains("id=\"confirm-signout\""), "{}", r.body);
    }
    let other = hint("someone-else", RP);
    let r = logout(
        &s,
        &session,
        &[
            ("id_token_hint", &other),
            ("post_logout_redirect_uri", BYE),
            ("state", "s2"),
        ],
    );
    assert!(r.body.contains("id=\"confirm-signout\""), "{}", r.body);
    assert_code(
        &s,
        &authorize(&s, Some(&session), "&prompt=none"),
        "still on",
    );

    // Posting without the page's token changes nothing; with it, signs out.
    let (csrf, fields) = page_form(&r);
    let post = |cookie: &str, fields: &[(String, String)]| {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        reply(
            agent()
                .post(&s.server.url("/oauth/logout"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", cookie)
                .send(body),
        )
    };
    let forged: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "csrf_token")
        .cloned()
        .collect();
    let r = post(&format!("{csrf}; {session}"), &forged);
    assert!(r.body.contains("id=\"confirm-signout\""), "{}", r.body);
    assert_code(
        &s,
        &authorize(&s, Some(&session), "&prompt=none"),
        "still on",
    );

    let r = post(&format!("{csrf}; {session}"), &fields);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(location_param(&r, "state").as_deref(), Some("s2"));
    assert_signed_out(&s, &session, &r);
}

#[test]
fn client_add_refuses_a_bad_post_logout_redirect_uri() {
    let s = seeded(&[]);
    let out = s.o.cli(&[
        "client",
        "add",
        "--name",
        "X",
        "--redirect-uri",
        REDIRECT,
        "--post-logout-redirect-uri",
        "http://acme.com/#frag",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("fragment"));
}
