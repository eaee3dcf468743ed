//! Using the token (SPEC §4.4): /api/me with organization selection, forward auth, and
//! RFC 6750 error answers; plus revocation, introspection and metadata (§4.5).

use serde_json::json;

use crate::flow_support::*;
use crate::support::{agent, reply};

fn access_and_refresh(s: &Seeded) -> (String, String) {
    let code = login_code(&s.server, json!({}));
    tokens(&exchange(s, &code))
}

#[test]
fn me_lists_orgs_and_selects_one_by_parameter_or_cookie() {
    let s = seeded(&[]);
    let org = s.o.json(&["org", "add", "Acme Farms"]);
    s.o.json(&["org", "add", "Other Org"]);
    s.o.ok(&[
        "org",
        "member",
        "add",
        "Acme Farms",
        EMAIL,
        "--role",
        "admin",
    ]);
    let (access, _) = access_and_refresh(&s);
    let me = get_bearer(&s.server, "/api/me", &access);
    assert_eq!(me.status, 200, "{}", me.body);
    let v = me.json();
    assert_eq!(
        v.as_object()
            .expect("obj")
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        ["id", "email", "name", "orgs", "org"]
    );
    assert_eq!(
        v["orgs"],
        json!([{"id": org["id"], "name": "Acme Farms", "role": "admin"}])
    );
    assert_eq!(v["org"], serde_json::Value::Null);
    let by_param = get_bearer(&s.server, "/api/me?org=acme%20farms", &access).json();
    assert_eq!(by_param["org"]["role"], "admin");
    let org_id = org["id"].as_str().expect("id");
    let by_cookie = reply(
        agent()
            .get(&s.server.url("/api/me"))
            .header("authorization", &format!("Bearer {access}"))
            .header("cookie", &format!("org={org_id}"))
            .call(),
    );
    assert_eq!(by_cookie.json()["org"]["name"], "Acme Farms");
    let not_member = get_bearer(&s.server, "/api/me?org=Other%20Org", &access);
    assert_eq!(not_member.status, 403);
    assert_eq!(not_member.json(), json!({"error": "forbidden"}));
    assert_eq!(
        get_bearer(&s.server, "/api/me?org=no-such-org", &access).status,
        403
    );
}

#[test]
fn verify_answers_forward_auth_with_identity_headers() {
    let s = seeded(&[]);
    s.o.json(&["org", "add", "Acme Farms"]);
    s.o.ok(&[
        "org",
        "member",
        "add",
        "Acme Farms",
        EMAIL,
        "--role",
        "viewer",
    ]);
    let (access, _) = access_and_refresh(&s);
    let r = get_bearer(&s.server, "/api/auth/verify?org=Acme%20Farms", &access);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-auth-email"), Some(EMAIL));
    assert!(r.header("x-auth-user-id").is_some_and(|id| !id.is_empty()));
    assert_eq!(r.header("x-auth-org"), Some("Acme Farms"));
    assert_eq!(r.header("x-auth-role"), Some("viewer"));
    let plain = get_bearer(&s.server, "/api/auth/verify", &access);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("x-auth-org"), None);
    assert_eq!(
        get_bearer(&s.server, "/api/auth/verify", "bogus").status,
        401
    );
}

#[test]
fn bearer_errors_follow_rfc6750() {
    let s = seeded(&[]);
    let missing = reply(agent().get(&s.server.url("/api/me")).call());
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"oauthd\"")
    );
    let unknown = get_bearer(&s.server, "/api/me", "70d9e020-5ada-37c2-a653-e9052bda32d3");
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.header("www-authenticate"),
        Some("Bearer realm=\"oauthd\", error=\"invalid_token\"")
    );
}

#[test]
fn expired_access_tokens_stop_working() {
    let s = seeded(&["--access-ttl", "1"]);
    let (access, _) = access_and_refresh(&s);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = get_bearer(&s.server, "/api/me", &access);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"oauthd\", error=\"invalid_token\"")
    );
}

#[test]
fn disabling_or_removing_a_user_kills_their_tokens_at_once() {
    let s = seeded(&[]);
    let (access, refresh_token) = access_and_refresh(&s);
    s.o.ok(&["user", "disable", EMAIL]);
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 401);
    assert_eq!(refresh(&s, &refresh_token).status, 400);
    s.o.ok(&["user", "enable", EMAIL]);
    let (access, _) = access_and_refresh(&s);
    s.o.ok(&["user", "remove", EMAIL]);
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 401);
}

#[test]
fn password_change_and_admin_revocation_kill_tokens() {
    let s = seeded(&[]);
    let (access, _) = access_and_refresh(&s);
    let out = s.o.cli_stdin(
        &["user", "passwd", EMAIL, "--password-stdin"],
        "new password\n",
    );
    assert!(out.status.success());
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 401);
    let r = login(&s.server, &login_body(json!({"password": "new password"})));
    assert_eq!(r.status, 200);
    let code = r.json()["oauthCode"].as_str().expect("code").to_owned();
    let access = exchange(&s, &code).json()["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    s.o.ok(&["token", "revoke", "--client", CLIENT_ID]);
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 401);
}

#[test]
fn revocation_of_a_refresh_token_revokes_its_grant() {
    let s = seeded(&[]);
    let (access, refresh_token) = access_and_refresh(&s);
    let auth = basic(CLIENT_ID, &s.secret);
    let r = post_form(
        &s.server,
        "/oauth/revoke",
        &[
            ("token", &refresh_token),
            ("token_type_hint", "refresh_token"),
        ],
        Some(&auth),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 401);
    assert_eq!(refresh(&s, &refresh_token).status, 400);
    // Unknown tokens still answer 200 (RFC 7009 §2.2).
    assert_eq!(
        post_form(
            &s.server,
            "/oauth/revoke",
            &[("token", "unknown")],
            Some(&auth)
        )
        .status,
        200
    );
    // Revocation needs client authentication.
    assert_oauth_error(
        &post_form(
            &s.server,
            "/oauth/revoke",
            &[("token", "x")],
            Some(&basic(CLIENT_ID, "bad")),
        ),
        401,
        "invalid_client",
    );
    assert_oauth_error(
        &post_form(&s.server, "/oauth/revoke", &[], Some(&auth)),
        400,
        "invalid_request",
    );
}

#[test]
fn revocation_of_an_access_token_leaves_the_refresh_token() {
    let s = seeded(&[]);
    let (access, refresh_token) = access_and_refresh(&s);
    let r = post_form(
        &s.server,
        "/oauth/revoke",
        &[("token", &access)],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_eq!(r.status, 200);
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 401);
    assert_eq!(refresh(&s, &refresh_token).status, 200);
}

#[test]
fn a_client_cannot_revoke_another_clients_tokens() {
    let s = seeded(&[]);
    let other_secret = s.o.add_client("other", &["http://acme.com"]);
    let (access, _) = access_and_refresh(&s);
    let r = post_form(
        &s.server,
        "/oauth/revoke",
        &[("token", &access)],
        Some(&basic("other", &other_secret)),
    );
    assert_eq!(r.status, 200);
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 200);
}

#[test]
fn introspection_describes_live_tokens_and_nothing_else() {
    let s = seeded(&[]);
    let (access, refresh_token) = access_and_refresh(&s);
    let user_id = get_bearer(&s.server, "/api/me", &access).json()["id"].clone();
    let auth = basic(CLIENT_ID, &s.secret);
    let r = post_form(
        &s.server,
        "/oauth/introspect",
        &[("token", &access)],
        Some(&auth),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], CLIENT_ID);
    assert_eq!(v["sub"], user_id);
    assert_eq!(v["username"], EMAIL);
    assert_eq!(v["scope"], "xx");
    assert_eq!(v["token_type"], "bearer");
    let (exp, iat) = (
        v["exp"].as_i64().expect("exp"),
        v["iat"].as_i64().expect("iat"),
    );
    assert_eq!(exp - iat, 86400);
    let r = post_form(
        &s.server,
        "/oauth/introspect",
        &[
            ("token", &refresh_token),
            ("token_type_hint", "refresh_token"),
        ],
        Some(&auth),
    );
    assert_eq!(r.json()["active"], true);
    let r = post_form(
        &s.server,
        "/oauth/introspect",
        &[("token", "nope")],
        Some(&auth),
    );
    assert_eq!(r.body, r#"{"active":false}"#);
    assert_oauth_error(
        &post_form(&s.server, "/oauth/introspect", &[("token", &access)], None),
        401,
        "invalid_client",
    );
    s.o.add_public_client("pub", &["https://app.example/cb"], &[]);
    let r = post_form(
        &s.server,
        "/oauth/introspect",
        &[("token", &access), ("client_id", "pub")],
        None,
    );
    assert_oauth_error(&r, 401, "invalid_client");
}

#[test]
fn introspection_shows_a_client_only_its_own_tokens_unless_it_is_a_resource_server() {
    let s = seeded(&[]);
    let (access, refresh_token) = access_and_refresh(&s);
    let other_secret = s.o.add_client("other", &[REDIRECT]);
    let rs_secret = add_resource_server(&s.o, "api");
    let introspect = |id: &str, secret: &str, token: &str| {
        let r = post_form(
            &s.server,
            "/oauth/introspect",
            &[("token", token)],
            Some(&basic(id, secret)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r
    };
    for token in [&access, &refresh_token] {
        assert_eq!(
            introspect("other", &other_secret, token).body,
            r#"{"active":false}"#,
            "another client learns nothing about the token"
        );
        assert_eq!(
            introspect(CLIENT_ID, &s.secret, token).json()["active"],
            true
        );
        let v = introspect("api", &rs_secret, token).json();
        assert_eq!(v["active"], true);
        assert_eq!(v["client_id"], CLIENT_ID);
        assert_eq!(v["username"], EMAIL);
    }
}

#[test]
fn metadata_names_the_endpoints_under_the_issuer() {
    let s = seeded(&["--issuer", "https://auth.example.com/"]);
    let r = reply(
        agent()
            .get(&s.server.url("/.well-known/oauth-authorization-server"))
            .call(),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["issuer"], "https://auth.example.com");
    assert_eq!(
        v["authorization_endpoint"],
        "https://auth.example.com/oauth/authorize"
    );
    assert_eq!(v["token_endpoint"], "https://auth.example.com/oauth/token");
    assert_eq!(
        v["revocation_endpoint"],
        "https://auth.example.com/oauth/revoke"
    );
    assert_eq!(
        v["introspection_endpoint"],
        "https://auth.example.com/oauth/introspect"
    );
    assert_eq!(
        v["code_challenge_methods_supported"],
        json!(["S256", "plain"])
    );
    assert_eq!(v["response_types_supported"], json!(["code"]));
}

#[test]
fn metadata_issuer_defaults_to_the_bound_address() {
    let s = seeded(&[]);
    let v = reply(
        agent()
            .get(&s.server.url("/.well-known/oauth-authorization-server"))
            .call(),
    )
    .json();
    assert_eq!(v["issuer"], format!("http://{}", s.server.addr));
}
