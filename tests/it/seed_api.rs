//! The seed's exact calls (SEED-grovestreams-oauth.txt), byte for byte where it shows them.

use serde_json::{json, Value};

use crate::flow_support::*;
use crate::support::{agent, reply};

fn keys(v: &Value) -> Vec<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

#[test]
fn seed_headless_login_answers_exactly_the_seed_shape() {
    let s = seeded(&[]);
    let r = login(&s.server, &login_body(json!({})));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    let v = r.json();
    // Member order as in the seed.
    assert_eq!(
        keys(&v),
        [
            "success",
            "oauthCode",
            "oauthState",
            "message",
            "oauthRedirectUri"
        ]
    );
    assert!(
        r.body.starts_with("{\"success\":true,\"oauthCode\":\""),
        "{}",
        r.body
    );
    assert_eq!(v["success"], true);
    assert_eq!(v["oauthState"], "zzz");
    assert_eq!(v["message"], "Login succeeded.");
    assert_eq!(v["oauthRedirectUri"], "http://acme.com");
    assert!(is_uuid_text(v["oauthCode"].as_str().expect("code")), "{v}");
}

#[test]
fn seed_login_without_state_or_redirect_uses_null_and_the_registered_uri() {
    let s = seeded(&[]);
    let r = login(
        &s.server,
        &login_body(json!({"state": null, "redirect_uri": null})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["oauthState"], Value::Null);
    assert_eq!(r.json()["oauthRedirectUri"], "http://acme.com");
}

#[test]
fn seed_access_token_answer_has_exactly_the_seed_members_and_headers() {
    let s = seeded(&[]);
    let code = login_code(&s.server, json!({"scope": null}));
    let r = exchange(&s, &code);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let v = r.json();
    assert_eq!(
        keys(&v),
        ["access_token", "token_type", "expires_in", "refresh_token"]
    );
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 86400);
    assert!(is_uuid_text(v["access_token"].as_str().expect("at")));
    assert!(is_uuid_text(v["refresh_token"].as_str().expect("rt")));
}

#[test]
fn seed_access_token_includes_scope_when_one_was_asked() {
    let s = seeded(&[]);
    let code = login_code(&s.server, json!({}));
    let v = exchange(&s, &code).json();
    assert_eq!(
        keys(&v),
        [
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "scope"
        ]
    );
    assert_eq!(v["scope"], "xx");
}

#[test]
fn seed_parameters_work_in_query_string_form_body_and_json_body() {
    let s = seeded(&[]);
    // Query string only, as the seed's "POST https://…/api/oauth_access_token" with parameters.
    let code = login_code(&s.server, json!({}));
    let url = format!(
        "{}?grant_type=authorization_code&code={code}&client_id={CLIENT_ID}&client_secret={}&redirect_uri=http%3A%2F%2Facme.com&state=zzz",
        s.server.url("/api/oauth_access_token"),
        s.secret
    );
    let r = reply(agent().post(&url).send(""));
    assert_eq!(r.status, 200, "query: {}", r.body);
    // Form body with client_secret as a parameter.
    let code = login_code(&s.server, json!({}));
    let r = post_form(
        &s.server,
        "/api/oauth_access_token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", CLIENT_ID),
            ("client_secret", &s.secret),
        ],
        None,
    );
    assert_eq!(r.status, 200, "form: {}", r.body);
    // JSON body.
    let code = login_code(&s.server, json!({}));
    let body = json!({"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID, "client_secret": s.secret});
    let r = reply(
        agent()
            .post(&s.server.url("/api/oauth_access_token"))
            .header("content-type", "application/json")
            .send(body.to_string()),
    );
    assert_eq!(r.status, 200, "json: {}", r.body);
}

#[test]
fn seed_token_is_used_as_bearer_and_refreshes() {
    let s = seeded(&[]);
    let code = login_code(&s.server, json!({}));
    let tokens = exchange(&s, &code).json();
    let access = tokens["access_token"].as_str().expect("at");
    let r = get_bearer(&s.server, "/api/me", access);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["email"], EMAIL);
    let refreshed = refresh(&s, tokens["refresh_token"].as_str().expect("rt"));
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let new_access = refreshed.json()["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    assert_ne!(new_access, access);
    assert_eq!(get_bearer(&s.server, "/api/me", &new_access).status, 200);
}

#[test]
fn seed_login_failures_have_their_statuses() {
    let s = seeded(&[]);
    let malformed = reply(
        agent()
            .post(&s.server.url("/api/oauth_login"))
            .header("content-type", "application/json")
            .send("{\"email\":"),
    );
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["success"], false);
    assert!(malformed.json()["message"].is_string());
    for (overrides, why) in [
        (json!({"email": null}), "missing email"),
        (json!({"password": null}), "missing password"),
        (json!({"response_type": null}), "missing response_type"),
        (json!({"client_id": null}), "missing client_id"),
        (json!({"response_type": "token"}), "response_type not code"),
        (json!({"client_id": "nope"}), "unknown client"),
        (
            json!({"redirect_uri": "http://evil.example"}),
            "unregistered redirect",
        ),
        (
            json!({"redirect_uri": "http://acme.com/other"}),
            "prefix of a registered redirect",
        ),
    ] {
        let r = login(&s.server, &login_body(overrides));
        assert_eq!(r.status, 400, "{why}: {}", r.body);
        assert_eq!(r.json()["success"], false, "{why}");
        assert_eq!(keys(&r.json()), ["success", "message"], "{why}");
    }
}

#[test]
fn seed_login_wrong_password_and_unknown_email_look_the_same() {
    let s = seeded(&[]);
    let wrong = login(&s.server, &login_body(json!({"password": "nope"})));
    let unknown = login(
        &s.server,
        &login_body(json!({"email": "nobody@example.com"})),
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.json()["success"], false);
}

#[test]
fn seed_login_of_a_disabled_user_is_403() {
    let s = seeded(&[]);
    s.o.ok(&["user", "disable", EMAIL]);
    let r = login(&s.server, &login_body(json!({})));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["success"], false);
}

#[test]
fn seed_login_email_is_case_insensitive() {
    let s = seeded(&[]);
    let r = login(
        &s.server,
        &login_body(json!({"email": "BBB@GroveStreams.com"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

fn stored_hash(o: &crate::support::Oauthd) -> String {
    o.sql(&format!(
        "SELECT password_hash FROM users WHERE email = '{EMAIL}'"
    ))
}

#[test]
fn login_rehashes_a_password_stored_with_fewer_iterations() {
    let s = seeded(&[]);
    assert!(stored_hash(&s.o).starts_with("$pbkdf2-sha256$i=1000$"));
    drop(s.server);
    let server = s.o.serve_with(&[], &[("OAUTHD_PBKDF2_ITERATIONS", "2000")]);
    let r = login(&server, &login_body(json!({})));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        stored_hash(&s.o).starts_with("$pbkdf2-sha256$i=2000$"),
        "{}",
        stored_hash(&s.o)
    );
    // The upgraded hash still verifies.
    assert_eq!(login(&server, &login_body(json!({}))).status, 200);
    // A wrong password never rehashes.
    let before = stored_hash(&s.o);
    assert_eq!(
        login(&server, &login_body(json!({"password": "nope"}))).status,
        401
    );
    assert_eq!(stored_hash(&s.o), before);
}

#[test]
fn login_without_redirect_uri_needs_one_when_several_are_registered() {
    let s = seeded(&[]);
    s.o.add_client("two", &["https://a.example/cb", "https://b.example/cb"]);
    let r = login(
        &s.server,
        &login_body(json!({"client_id": "two", "redirect_uri": null})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains("required"),
        "{}",
        r.body
    );
    let page = reply(
        agent()
            .get(
                &s.server
                    .url("/oauth/authorize?response_type=code&client_id=two"),
            )
            .call(),
    );
    assert_eq!(page.status, 400);
    assert_eq!(page.header("location"), None);
}
