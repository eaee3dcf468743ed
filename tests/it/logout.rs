//! RP-Initiated Logout at `/oauth/logout`: a hint naming the session's user ends the
//! session at once and returns to the registered `post_logout_redirect_uri` with `state`;
//! an unregistered URI gets the "signed out" page; without such a hint the user confirms
//! on a CSRF-protected form first. A hint none of oauthd's keys signed, or one issued by
//! another issuer, is refused with an error page: no redirect, the session stays.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

use crate::flow_support::*;
use crate::sessions::{assert_code, assert_error, authorize, location_param, sign_in};
use crate::support::{agent, reply, Reply};

const RP: &str = "rp";
const BYE: &str = "http://acme.com/bye";
const EVE: &str = "eve@example.com";

/// The seeded server plus a client with a registered post-logout URI (its secret) and a
/// second user.
fn site() -> (Seeded, String) {
    let s = seeded(&[]);
    let rp = s.o.json(&[
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
    s.o.add_user(EVE, "eve password");
    let secret = rp["client_secret"].as_str().expect("secret").to_owned();
    (s, secret)
}

/// A real id_token for `email` issued to `client_id`, as the relying party keeps it.
fn id_token(s: &Seeded, client: (&str, &str), email: &str, password: &str) -> String {
    let code = login_code(
        &s.server,
        json!({"client_id": client.0, "scope": "openid", "email": email, "password": password}),
    );
    let r = exchange_as(&s.server, client, &code);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["id_token"].as_str().expect("id_token").to_owned()
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
    let (s, rp_secret) = site();
    let (session, _) = sign_in(&s, None);
    let r = logout(
        &s,
        &session,
        &[
            (
                "id_token_hint",
                &id_token(&s, (RP, &rp_secret), EMAIL, PASSWORD),
            ),
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
    let (s, rp_secret) = site();
    let (session, _) = sign_in(&s, None);
    let for_rp = id_token(&s, (RP, &rp_secret), EMAIL, PASSWORD);
    let for_other = id_token(&s, (CLIENT_ID, &s.secret), EMAIL, PASSWORD);
    for (aud, hint, uri) in [
        (RP, &for_rp, "http://acme.com/elsewhere"),
        (RP, &for_rp, "https://evil.example/"),
        (CLIENT_ID, &for_other, BYE),
    ] {
        let (session, _) = sign_in(&s, Some(&session));
        let r = logout(
            &s,
            &session,
            &[("id_token_hint", hint), ("post_logout_redirect_uri", uri)],
        );
        assert_eq!(r.status, 200, "{aud} {uri}: {:?}", r.header("location"));
        assert!(r.body.contains("id=\"signed-out\""), "{}", r.body);
        assert_signed_out(&s, &session, &r);
    }
}

#[test]
fn without_a_matching_hint_the_user_confirms_on_a_csrf_protected_form() {
    let (s, rp_secret) = site();
    let (session, _) = sign_in(&s, None);
    let r = logout(
        &s,
        &session,
        &[("client_id", RP), ("post_logout_redirect_uri", BYE)],
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains("id=\"confirm-signout\""), "{}", r.body);
    let other = id_token(&s, (RP, &rp_secret), EVE, "eve password");
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

/// The answer refuses the hint: an error page, no redirect, the session cookie kept.
fn assert_hint_refused(r: &Reply, what: &str) {
    assert_eq!(r.status, 400, "{what}: {:?}", r.header("location"));
    assert_eq!(r.header("location"), None, "{what}");
    assert_eq!(r.header("set-cookie"), None, "{what}");
    assert!(r.body.contains("did not issue"), "{what}: {}", r.body);
}

#[test]
fn a_hint_with_a_bad_signature_is_refused_and_the_session_stays() {
    let (s, rp_secret) = site();
    let (session, _) = sign_in(&s, None);
    let real = id_token(&s, (RP, &rp_secret), EMAIL, PASSWORD);
    let eves = id_token(&s, (RP, &rp_secret), EVE, "eve password");
    let parts: Vec<&str> = real.split('.').collect();
    let eve_parts: Vec<&str> = eves.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    claims["aud"] = json!(CLIENT_ID);
    let edited = URL_SAFE_NO_PAD.encode(claims.to_string());
    let unsigned_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    for (what, hint) in [
        ("not a JWT", "garbage".to_owned()),
        (
            "edited claims",
            format!("{}.{edited}.{}", parts[0], parts[2]),
        ),
        (
            "another token's signature",
            format!("{}.{}.{}", parts[0], parts[1], eve_parts[2]),
        ),
        ("alg none", format!("{unsigned_header}.{}.", parts[1])),
    ] {
        let r = logout(
            &s,
            &session,
            &[
                ("id_token_hint", &hint),
                ("post_logout_redirect_uri", BYE),
                ("state", "s3"),
            ],
        );
        assert_hint_refused(&r, what);
        assert_code(&s, &authorize(&s, Some(&session), "&prompt=none"), what);
    }
}

#[test]
fn a_hint_from_another_issuer_is_refused_though_our_key_signed_it() {
    let (s, rp_secret) = site();
    let foreign = id_token(&s, (RP, &rp_secret), EMAIL, PASSWORD);
    // The same database (so the same signing keys) served under another issuer.
    let Seeded { o, server, secret } = s;
    server.stop();
    let server = o.serve(&["--issuer", "http://other-issuer.example"]);
    let s = Seeded { o, server, secret };
    let (session, _) = sign_in(&s, None);
    let r = logout(
        &s,
        &session,
        &[
            ("id_token_hint", &foreign),
            ("post_logout_redirect_uri", BYE),
        ],
    );
    assert_hint_refused(&r, "another issuer");
    assert_code(
        &s,
        &authorize(&s, Some(&session), "&prompt=none"),
        "still on",
    );
    // Its own issuer's hint still works.
    let own = id_token(&s, (RP, &rp_secret), EMAIL, PASSWORD);
    let r = logout(
        &s,
        &session,
        &[("id_token_hint", &own), ("post_logout_redirect_uri", BYE)],
    );
    assert_eq!(r.status, 302, "{}", r.body);
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
