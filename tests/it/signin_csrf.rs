//! The sign-in form's CSRF defences (issue 8, item 13): the token is bound to a server key,
//! planted cookies are refused, `Origin: null` is refused, the cookie is `__Host-` and
//! `Secure` for an https issuer. And (item 7) values shown on the page are never expanded
//! as template placeholders.

use crate::flow_support::*;
use crate::signin_page::{authorize_query, open_page, post_signin};
use crate::support::{agent, reply};

/// The page's fields with `csrf_token` replaced by `token`.
fn with_token(fields: &[(String, String)], token: &str) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| match k.as_str() {
            "csrf_token" => (k.clone(), token.to_owned()),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// Regression: the cookie's own value was the token, so anyone able to plant a cookie
/// (a sibling subdomain, a plain-http page) chose the token too.
#[test]
fn signin_refuses_a_planted_csrf_cookie_of_any_length() {
    let s = seeded(&[]);
    let (_, fields) = open_page(&s, &authorize_query(""));
    let nonce = "A".repeat(43);
    for planted in [
        "x".to_owned(),
        nonce.clone(),
        format!("{nonce}.{nonce}"),
        "B".repeat(300),
    ] {
        let cookie = format!("oauthd_csrf={planted}");
        for token in [planted.as_str(), nonce.as_str()] {
            let r = post_signin(
                &s,
                &[("cookie", &cookie)],
                &with_token(&fields, token),
                EMAIL,
                PASSWORD,
            );
            assert_eq!(r.status, 403, "planted {planted:?}: {}", r.body);
            assert_eq!(r.header("location"), None);
        }
    }
    // A page opened with a planted cookie gets a cookie of the server's own instead.
    let r = reply(
        agent()
            .get(&s.server.url(&authorize_query("")))
            .header("cookie", &format!("oauthd_csrf={nonce}"))
            .call(),
    );
    assert!(!r.header("set-cookie").expect("cookie").contains(&nonce));
}

/// Regression: `Origin: null` (sent by sandboxed frames and `data:` pages) passed.
#[test]
fn signin_refuses_origin_null_and_accepts_its_own_origin() {
    let s = seeded(&[]);
    let (cookie, fields) = open_page(&s, &authorize_query(""));
    let null = [("cookie", cookie.as_str()), ("origin", "null")];
    let r = post_signin(&s, &null, &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 403, "{}", r.body);
    let origin = format!("http://{}", s.server.addr);
    let own = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
    let r = post_signin(&s, &own, &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 302, "{}", r.body);
}

/// The whole `Set-Cookie` header of a freshly opened sign-in page.
fn set_cookie_of_page(s: &Seeded) -> String {
    let r = reply(agent().get(&s.server.url(&authorize_query(""))).call());
    r.header("set-cookie").expect("cookie").to_owned()
}

#[test]
fn an_https_issuer_gets_a_host_prefixed_secure_csrf_cookie() {
    let s = seeded(&["--issuer", "https://auth.example.com"]);
    let (cookie, fields) = open_page(&s, &authorize_query(""));
    assert!(cookie.starts_with("__Host-oauthd_csrf="), "{cookie}");
    let set_cookie = set_cookie_of_page(&s);
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/;"), "{set_cookie}");
    assert!(
        !set_cookie.to_ascii_lowercase().contains("domain"),
        "{set_cookie}"
    );
    let r = post_signin(&s, &[("cookie", &cookie)], &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 302, "{}", r.body);
    // The same value under the plain name (which anyone could plant) is not read.
    let plain = cookie.replacen("__Host-", "", 1);
    let r = post_signin(&s, &[("cookie", &plain)], &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 403, "{}", r.body);
    // A plain-http issuer keeps the plain name without `Secure`.
    let http = seeded(&[]);
    let set_cookie = set_cookie_of_page(&http);
    assert!(set_cookie.starts_with("oauthd_csrf="), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
}

/// Regression (item 7): an `email` or `state` containing `{{hidden_fields}}` or
/// `{{style_nonce}}` was expanded, duplicating the form fields and the nonce.
#[test]
fn placeholders_in_email_and_state_are_shown_literally() {
    let s = seeded(&[]);
    let state = "{{hidden_fields}}{{style_nonce}}";
    let email = "{{hidden_fields}}";
    let query = authorize_query(&format!(
        "&email={}",
        form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>()
    ))
    .replace(
        "state=st8",
        &format!(
            "state={}",
            form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
        ),
    );
    let page = reply(agent().get(&s.server.url(&query)).call());
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.body.matches("name=\"csrf_token\"").count(),
        1,
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("nonce=\"").count(), 1, "{}", page.body);
    assert!(
        page.body.contains("value=\"{{hidden_fields}}\""),
        "{}",
        page.body
    );
    let (cookie, fields) = page_form(&page);
    assert!(
        fields.contains(&("state".to_owned(), state.to_owned())),
        "{fields:?}"
    );
    let r = post_signin(&s, &[("cookie", &cookie)], &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 302, "{}", r.body);
    let location = url::Url::parse(r.header("location").expect("location")).expect("url");
    let returned: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert!(
        returned.contains(&("state".to_owned(), state.to_owned())),
        "{returned:?}"
    );
}

/// The CSRF key lives in the database: a form shown by one instance is accepted by
/// another instance of the same database, and after a restart (it was per process, so
/// forms open during a restart failed with "Your sign-in form expired").
#[test]
fn a_form_shown_by_one_instance_is_accepted_by_another_and_after_a_restart() {
    let mut s = seeded(&[]);
    let (cookie, fields) = open_page(&s, &authorize_query(""));
    let first = std::mem::replace(&mut s.server, s.o.serve(&[]));
    let r = post_signin(&s, &[("cookie", &cookie)], &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 302, "posted to the other instance: {}", r.body);
    drop(first);
    let (cookie, fields) = open_page(&s, &authorize_query(""));
    s.server = s.o.serve(&[]);
    let r = post_signin(&s, &[("cookie", &cookie)], &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 302, "posted after a restart: {}", r.body);
    // Nothing about the key reaches the log.
    let key =
        s.o.sql("SELECT value FROM server_secrets WHERE name = 'csrf_key'");
    assert!(key.len() > 64, "{key}");
    let hex = key.trim_start_matches("\\x");
    assert!(!s.server.logs().contains(hex));
}
