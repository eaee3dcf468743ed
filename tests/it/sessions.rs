//! Browser sessions (SSO) over plain HTTP: a sign-in on the page sets the session cookie,
//! the next authorization from that browser skips the form; `prompt=none`, `prompt=login`
//! and `max_age`; a new id at every sign-in; `user disable`/`passwd`, expiry and the idle
//! timeout end sessions. The same flow in a real browser is in `browser_sessions.rs`.

use crate::flow_support::*;
use crate::signin_page::{authorize_query, open_page, post_signin};
use crate::support::{agent, reply, Reply};

/// Signs in on the page (sending `session`, the browser's current session cookie, if any)
/// and returns the new session cookie (`name=value`) and the whole `Set-Cookie` header.
pub fn sign_in(s: &Seeded, session: Option<&str>) -> (String, String) {
    let (csrf, fields) = open_page(s, &authorize_query(""));
    let cookie = match session {
        Some(session) => format!("{csrf}; {session}"),
        None => csrf,
    };
    let r = post_signin(s, &[("cookie", &cookie)], &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(code_of(&r).is_some(), "{:?}", r.header("location"));
    let set_cookie = r.header("set-cookie").expect("session cookie").to_owned();
    let pair = set_cookie.split(';').next().expect("pair").to_owned();
    (pair, set_cookie)
}

/// `GET /oauth/authorize` with `extra` parameters, sending `cookie` if any.
pub fn authorize(s: &Seeded, cookie: Option<&str>, extra: &str) -> Reply {
    let mut request = agent().get(&s.server.url(&authorize_query(extra)));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    reply(request.call())
}

/// A parameter of the redirect's `Location`.
pub fn location_param(r: &Reply, name: &str) -> Option<String> {
    let location = url::Url::parse(r.header("location")?).ok()?;
    location
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn code_of(r: &Reply) -> Option<String> {
    location_param(r, "code")
}

/// The answer is the sign-in form.
fn assert_form(r: &Reply, what: &str) {
    assert_eq!(r.status, 200, "{what}: {:?}", r.header("location"));
    assert!(r.body.contains("name=\"password\""), "{what}");
}

/// The answer is a redirect to the client with `error` and the request's state.
pub fn assert_error(r: &Reply, error: &str, what: &str) {
    assert_eq!(r.status, 302, "{what}: {}", r.body);
    assert_eq!(location_param(r, "error").as_deref(), Some(error), "{what}");
    assert_eq!(location_param(r, "state").as_deref(), Some("st8"), "{what}");
    assert_eq!(code_of(r), None, "{what}");
}

/// The answer is a code from the session, which the token endpoint accepts.
pub fn assert_code(s: &Seeded, r: &Reply, what: &str) {
    assert_eq!(r.status, 302, "{what}: {}", r.body);
    assert_eq!(location_param(r, "state").as_deref(), Some("st8"), "{what}");
    let code = code_of(r).unwrap_or_else(|| panic!("{what}: no code"));
    let token = exchange(s, &code);
    assert_eq!(token.status, 200, "{what}: {}", token.body);
}

#[test]
fn a_signed_in_browser_skips_the_form_unless_prompt_or_max_age_ask_for_it() {
    let s = seeded(&[]);
    assert_form(&authorize(&s, None, ""), "no session");
    assert_error(
        &authorize(&s, None, "&prompt=none"),
        "login_required",
        "prompt=none without a session",
    );

    let (session, set_cookie) = sign_in(&s, None);
    assert!(set_cookie.starts_with("oauthd_session="), "{set_cookie}");
    for attribute in ["Path=/", "Max-Age=604800", "HttpOnly", "SameSite=Lax"] {
        assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");

    let cookie = Some(session.as_str());
    assert_code(&s, &authorize(&s, cookie, ""), "session");
    assert_code(&s, &authorize(&s, cookie, "&prompt=none"), "prompt=none");
    assert_code(&s, &authorize(&s, cookie, "&max_age=3600"), "max_age=3600");
    assert_form(&authorize(&s, cookie, "&prompt=login"), "prompt=login");
    assert_form(&authorize(&s, cookie, "&max_age=0"), "max_age=0");
    assert_error(
        &authorize(&s, cookie, "&max_age=0&prompt=none"),
        "login_required",
        "max_age=0 with prompt=none",
    );
    assert_error(
        &authorize(&s, cookie, "&prompt=none%20login"),
        "invalid_request",
        "prompt=none login",
    );
    assert_error(
        &authorize(&s, cookie, "&max_age=-1"),
        "invalid_request",
        "max_age=-1",
    );
    // A cookie this server did not make signs nobody in.
    let forged = format!("oauthd_session={}", "A".repeat(43));
    assert_error(
        &authorize(&s, Some(&forged), "&prompt=none"),
        "login_required",
        "forged cookie",
    );
}

/// Fixation protection: a sign-in never keeps the id the browser brought.
#[test]
fn every_sign_in_makes_a_new_session_id_and_ends_the_old_one() {
    let s = seeded(&[]);
    let (first, _) = sign_in(&s, None);
    let (second, _) = sign_in(&s, Some(&first));
    assert_ne!(first, second);
    assert_error(
        &authorize(&s, Some(&first), "&prompt=none"),
        "login_required",
        "the replaced session",
    );
    assert_code(&s, &authorize(&s, Some(&second), "&prompt=none"), "new");
}

#[test]
fn user_passwd_and_disable_end_the_users_sessions() {
    let s = seeded(&[]);
    let (session, _) = sign_in(&s, None);
    let out =
        s.o.cli_stdin(&["user", "passwd", EMAIL, "--password-stdin"], PASSWORD);
    assert!(out.status.success(), "{out:?}");
    assert_error(
        &authorize(&s, Some(&session), "&prompt=none"),
        "login_required",
        "after passwd",
    );

    let (session, _) = sign_in(&s, None);
    s.o.ok(&["user", "disable", EMAIL]);
    s.o.ok(&["user", "enable", EMAIL]);
    assert_error(
        &authorize(&s, Some(&session), "&prompt=none"),
        "login_required",
        "after disable and enable",
    );
}

#[test]
fn idle_sessions_end_and_a_zero_ttl_turns_sessions_off() {
    let s = seeded(&["--session-idle", "1"]);
    let (session, _) = sign_in(&s, None);
    // Idle for more than a whole second (times are in seconds).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_error(
        &authorize(&s, Some(&session), "&prompt=none"),
        "login_required",
        "idle",
    );

    let s = seeded(&["--session-ttl", "0"]);
    let (csrf, fields) = open_page(&s, &authorize_query(""));
    let r = post_signin(&s, &[("cookie", &csrf)], &fields, EMAIL, PASSWORD);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.header("set-cookie"), None, "no session cookie");
}

#[test]
fn an_https_issuer_gets_a_host_prefixed_secure_session_cookie() {
    let s = seeded(&["--issuer", "https://auth.example.com"]);
    let (session, set_cookie) = sign_in(&s, None);
    assert!(
        set_cookie.starts_with("__Host-oauthd_session="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("; Secure;"), "{set_cookie}");
    assert!(!set_cookie.contains("Domain"), "{set_cookie}");
    assert_code(&s, &authorize(&s, Some(&session), "&prompt=none"), "https");
    // The plain name is not read under an https issuer (it could be planted over http).
    let plain = session.replacen("__Host-oauthd_session", "oauthd_session", 1);
    assert_error(
        &authorize(&s, Some(&plain), "&prompt=none"),
        "login_required",
        "plain-named cookie",
    );
}
