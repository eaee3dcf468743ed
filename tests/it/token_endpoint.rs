//! The token endpoint's rules (SPEC §4.3): single-use codes, replay revocation, client
//! authentication, PKCE, bound secrets, refresh rotation, and every RFC 6749 §5.2 error.

use serde_json::json;

use crate::flow_support::*;
use crate::support::{agent, reply};

#[test]
fn token_rejects_reused_code_and_revokes_what_it_issued() {
    let s = seeded(&[]);
    let code = login_code(&s.server, json!({}));
    let (access, refresh_token) = tokens(&exchange(&s, &code));
    let (refreshed_access, _) = tokens(&refresh(&s, &refresh_token));
    assert_eq!(
        get_bearer(&s.server, "/api/me", &refreshed_access).status,
        200
    );
    assert_oauth_error(&exchange(&s, &code), 400, "invalid_grant");
    for token in [&access, &refreshed_access] {
        assert_eq!(
            get_bearer(&s.server, "/api/me", token).status,
            401,
            "replay must revoke every token of the code"
        );
    }
    assert_oauth_error(&refresh(&s, &refresh_token), 400, "invalid_grant");
}

#[test]
fn token_replay_by_anyone_but_the_codes_own_authenticated_client_has_no_side_effect() {
    let s = seeded(&[]);
    let other_secret = s.o.add_client("other", &[REDIRECT]);
    s.o.add_public_client("pub", &[REDIRECT], &[]);
    let code = login_code(&s.server, json!({}));
    let (access, refresh_token) = tokens(&exchange(&s, &code));
    let replay = |authorization: Option<&str>, extra: &[(&str, &str)]| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        form.extend_from_slice(extra);
        post_form(&s.server, "/oauth/token", &form, authorization)
    };
    // A public client without a secret, another confidential client, and the code's own
    // client with a wrong secret all present the used code: refused, nothing revoked.
    assert_oauth_error(&replay(None, &[("client_id", "pub")]), 400, "invalid_grant");
    assert_oauth_error(
        &replay(Some(&basic("other", &other_secret)), &[]),
        400,
        "invalid_grant",
    );
    assert_oauth_error(
        &replay(Some(&basic(CLIENT_ID, "wrong")), &[]),
        401,
        "invalid_client",
    );
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 200);
    tokens(&refresh(&s, &refresh_token));
    let audit = s.o.ok(&["audit"]);
    assert!(!audit.contains("code_replay"), "{audit}");
    // The code's own client, authenticated, replaying it revokes the grant.
    assert_oauth_error(&exchange(&s, &code), 400, "invalid_grant");
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 401);
    assert!(s.o.ok(&["audit"]).contains("code_replay"));
}

#[test]
fn token_rejects_an_expired_code() {
    let s = seeded(&["--code-ttl", "1"]);
    let code = login_code(&s.server, json!({}));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_oauth_error(&exchange(&s, &code), 400, "invalid_grant");
}

#[test]
fn token_failures_for_other_reasons_do_not_use_the_code_up() {
    let s = seeded(&[]);
    let other_secret = s.o.add_client("other", &["http://acme.com"]);
    let code = login_code(&s.server, json!({}));
    // Another client presents the code.
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[("grant_type", "authorization_code"), ("code", &code)],
        Some(&basic("other", &other_secret)),
    );
    assert_oauth_error(&r, 400, "invalid_grant");
    // The right client with the wrong redirect_uri.
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://acme.com/else"),
        ],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_oauth_error(&r, 400, "invalid_grant");
    // The right client with the wrong secret.
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[("grant_type", "authorization_code"), ("code", &code)],
        Some(&basic(CLIENT_ID, "wrong")),
    );
    assert_oauth_error(&r, 401, "invalid_client");
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"oauthd\""));
    // Still good.
    tokens(&exchange(&s, &code));
}

#[test]
fn token_client_authentication_errors() {
    let s = seeded(&[]);
    let code = login_code(&s.server, json!({}));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    // No authentication at all for a confidential client.
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", CLIENT_ID),
        ],
        None,
    );
    assert_oauth_error(&r, 401, "invalid_client");
    // Unknown client.
    let r = post_form(&s.server, "/oauth/token", &form, Some(&basic("nope", "x")));
    assert_oauth_error(&r, 401, "invalid_client");
    // Basic and body disagree.
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "other"),
        ],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_oauth_error(&r, 400, "invalid_request");
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_secret", "different"),
        ],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_oauth_error(&r, 400, "invalid_request");
    // Basic and body agreeing is fine.
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", CLIENT_ID),
            ("client_secret", &s.secret),
        ],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    tokens(&r);
}

#[test]
fn token_request_errors() {
    let s = seeded(&[]);
    let auth = basic(CLIENT_ID, &s.secret);
    let r = post_form(&s.server, "/oauth/token", &[("code", "x")], Some(&auth));
    assert_oauth_error(&r, 400, "invalid_request");
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[("grant_type", "password")],
        Some(&auth),
    );
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[("grant_type", "authorization_code")],
        Some(&auth),
    );
    assert_oauth_error(&r, 400, "invalid_request");
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[("grant_type", "refresh_token")],
        Some(&auth),
    );
    assert_oauth_error(&r, 400, "invalid_request");
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[("grant_type", "authorization_code"), ("code", "not-a-code")],
        Some(&auth),
    );
    assert_oauth_error(&r, 400, "invalid_grant");
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
        Some(&auth),
    );
    assert_oauth_error(&r, 400, "invalid_grant");
    // A parameter sent twice (RFC 6749 §3.1), also across query string and body.
    let r = reply(
        agent()
            .post(&s.server.url("/oauth/token"))
            .header("authorization", &auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .send("grant_type=authorization_code&code=a&code=b"),
    );
    assert_oauth_error(&r, 400, "invalid_request");
    let r = reply(
        agent()
            .post(&s.server.url("/oauth/token?code=a"))
            .header("authorization", &auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .send("grant_type=authorization_code&code=a"),
    );
    assert_oauth_error(&r, 400, "invalid_request");
}

#[test]
fn token_refresh_scope_cannot_widen() {
    let s = seeded(&[]);
    let code = login_code(&s.server, json!({"scope": "read"}));
    let (_, refresh_token) = tokens(&exchange(&s, &code));
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("scope", "read write"),
        ],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_oauth_error(&r, 400, "invalid_scope");
}

#[test]
fn token_refresh_with_a_narrower_scope_answers_and_issues_the_narrowed_scope() {
    let s = seeded(&[]);
    let rs_secret = add_resource_server(&s.o, "api");
    let code = login_code(&s.server, json!({"scope": "read write"}));
    let (_, refresh_token) = tokens(&exchange(&s, &code));
    let with_scope = |scope: Option<&str>| {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ];
        form.extend(scope.map(|scope| ("scope", scope)));
        post_form(
            &s.server,
            "/oauth/token",
            &form,
            Some(&basic(CLIENT_ID, &s.secret)),
        )
    };
    let scope_of = |access: &str| {
        post_form(
            &s.server,
            "/oauth/introspect",
            &[("token", access)],
            Some(&basic("api", &rs_secret)),
        )
        .json()["scope"]
            .clone()
    };
    let narrowed = with_scope(Some("read"));
    let (narrow_access, kept) = tokens(&narrowed);
    assert_eq!(narrowed.json()["scope"], "read", "RFC 6749 §6");
    assert_eq!(scope_of(&narrow_access), "read");
    assert_eq!(kept, refresh_token);
    // The refresh token keeps the whole grant: without `scope`, the whole scope again.
    let whole = with_scope(None);
    assert_eq!(whole.json()["scope"], "read write");
    assert_eq!(scope_of(&tokens(&whole).0), "read write");
    assert_oauth_error(&with_scope(Some("read admin")), 400, "invalid_scope");
}

#[test]
fn token_body_over_64_kib_is_413() {
    let s = seeded(&[]);
    let big = "a".repeat(70 * 1024);
    let r = reply(
        agent()
            .post(&s.server.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(format!("grant_type=authorization_code&code={big}")),
    );
    assert_eq!(r.status, 413);
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE_S256: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn exchange_with_verifier(s: &Seeded, code: &str, verifier: Option<&str>) -> crate::support::Reply {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    post_form(
        &s.server,
        "/oauth/token",
        &form,
        Some(&basic(CLIENT_ID, &s.secret)),
    )
}

#[test]
fn token_pkce_s256_and_plain() {
    let s = seeded(&[]);
    let code = login_code(
        &s.server,
        json!({"code_challenge": CHALLENGE_S256, "code_challenge_method": "S256"}),
    );
    assert_oauth_error(
        &exchange_with_verifier(&s, &code, None),
        400,
        "invalid_request",
    );
    let wrong = VERIFIER.replace('d', "e");
    assert_oauth_error(
        &exchange_with_verifier(&s, &code, Some(&wrong)),
        400,
        "invalid_grant",
    );
    tokens(&exchange_with_verifier(&s, &code, Some(VERIFIER)));
    let code = login_code(
        &s.server,
        json!({"code_challenge": VERIFIER, "code_challenge_method": "plain"}),
    );
    tokens(&exchange_with_verifier(&s, &code, Some(VERIFIER)));
    // A verifier for a code issued without a challenge is refused (downgrade).
    let code = login_code(&s.server, json!({}));
    assert_oauth_error(
        &exchange_with_verifier(&s, &code, Some(VERIFIER)),
        400,
        "invalid_grant",
    );
}

#[test]
fn token_pkce_is_required_for_clients_registered_with_require_pkce() {
    let s = seeded(&[]);
    s.o.add_public_client("spa", &["https://spa.example/cb"], &["--require-pkce"]);
    let r = login(
        &s.server,
        &login_body(json!({"client_id": "spa", "redirect_uri": "https://spa.example/cb"})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let code = login_code(
        &s.server,
        json!({"client_id": "spa", "redirect_uri": "https://spa.example/cb", "code_challenge": CHALLENGE_S256, "code_challenge_method": "S256"}),
    );
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ],
        None,
    );
    tokens(&r);
}

#[test]
fn token_public_client_refresh_rotates_with_grace_and_detects_theft() {
    let s = seeded(&[]);
    s.o.add_public_client("pub", &[PUBLIC_REDIRECT], &[]);
    let (_, first) = public_exchange(&s, None);
    let (_, second) = tokens(&public_refresh(&s, &first, None));
    assert_ne!(first, second, "a public client's refresh token rotates");
    // The answer was lost: the old token may be presented again within the grace window,
    // and the unused successor is dropped.
    let (_, third) = tokens(&public_refresh(&s, &first, None));
    assert_ne!(third, second);
    // (Presenting the superseded `second` now would be reuse: see refresh_reuse.)
    // Once the successor has been used, presenting a rotated-out token again is theft.
    let (_, fourth) = tokens(&public_refresh(&s, &third, None));
    let (access_five, fifth) = tokens(&public_refresh(&s, &fourth, None));
    assert_eq!(get_bearer(&s.server, "/api/me", &access_five).status, 200);
    assert_oauth_error(&public_refresh(&s, &third, None), 400, "invalid_grant");
    assert_oauth_error(&public_refresh(&s, &fifth, None), 400, "invalid_grant");
    assert_eq!(
        get_bearer(&s.server, "/api/me", &access_five).status,
        401,
        "theft revokes the grant"
    );
}

#[test]
fn token_public_client_rotation_grace_can_be_zero() {
    let s = seeded(&["--refresh-grace", "0"]);
    s.o.add_public_client("pub", &[PUBLIC_REDIRECT], &[]);
    let (_, first) = public_exchange(&s, None);
    tokens(&public_refresh(&s, &first, None));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_oauth_error(&public_refresh(&s, &first, None), 400, "invalid_grant");
}

#[test]
fn token_public_client_with_bound_secret_must_repeat_it_and_keeps_its_refresh_token() {
    let s = seeded(&[]);
    s.o.add_public_client("pub", &[PUBLIC_REDIRECT], &[]);
    let (_, refresh_token) = public_exchange(&s, Some("device-secret"));
    assert_oauth_error(
        &public_refresh(&s, &refresh_token, None),
        401,
        "invalid_client",
    );
    assert_oauth_error(
        &public_refresh(&s, &refresh_token, Some("other")),
        401,
        "invalid_client",
    );
    let (_, again) = tokens(&public_refresh(&s, &refresh_token, Some("device-secret")));
    assert_eq!(
        again, refresh_token,
        "a bound grant keeps its refresh token"
    );
}

#[test]
fn token_confidential_client_keeps_its_refresh_token() {
    let s = seeded(&[]);
    let code = login_code(&s.server, json!({}));
    let (first_access, refresh_token) = tokens(&exchange(&s, &code));
    for _ in 0..3 {
        let (_, again) = tokens(&refresh(&s, &refresh_token));
        assert_eq!(again, refresh_token);
    }
    assert_eq!(
        get_bearer(&s.server, "/api/me", &first_access).status,
        200,
        "old access tokens stay valid until expiry"
    );
}

#[test]
fn token_refresh_by_another_client_is_refused() {
    let s = seeded(&[]);
    let other_secret = s.o.add_client("other", &["http://acme.com"]);
    let code = login_code(&s.server, json!({}));
    let (_, refresh_token) = tokens(&exchange(&s, &code));
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ],
        Some(&basic("other", &other_secret)),
    );
    assert_oauth_error(&r, 400, "invalid_grant");
    tokens(&refresh(&s, &refresh_token));
}

#[test]
fn token_refresh_ttl_expires_refresh_tokens() {
    let s = seeded(&["--refresh-ttl", "1"]);
    let code = login_code(&s.server, json!({}));
    let (_, refresh_token) = tokens(&exchange(&s, &code));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_oauth_error(&refresh(&s, &refresh_token), 400, "invalid_grant");
}
