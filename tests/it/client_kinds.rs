//! Every kind of client: grant types registered per client (`client add --grant`,
//! `unauthorized_client` otherwise), client credentials (a machine acting as itself:
//! no user, no refresh token, scope within its allowed list, its identity at `/api/me`,
//! `/api/auth/verify` and introspection), and the discovery metadata that lists them.

use serde_json::json;

use crate::flow_support::{
    add_resource_server, assert_oauth_error, basic, exchange_as, get_bearer, login_code, post_form,
    seeded, CLIENT_ID, REDIRECT,
};
use crate::support::{assert_one_line_error, assert_usage_error, expect_exit, Oauthd};

/// Registers the confidential machine client `svc` for client credentials only.
fn add_machine(o: &Oauthd, extra: &[&str]) -> String {
    let mut args = vec![
        "client",
        "add",
        "--name",
        "Backend",
        "--id",
        "svc",
        "--grant",
        "client_credentials",
    ];
    args.extend(extra);
    o.json(&args)["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned()
}

fn client_credentials(
    s: &crate::flow_support::Seeded,
    secret: &str,
    scope: Option<&str>,
) -> crate::support::Reply {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    post_form(
        &s.server,
        "/oauth/token",
        &form,
        Some(&basic("svc", secret)),
    )
}

#[test]
fn client_add_stores_grants_scopes_and_origins_and_show_lists_them() {
    let o = Oauthd::new();
    o.add_client("web", &["https://a.example/cb"]);
    let shown = o.json(&["client", "show", "web"]);
    assert_eq!(
        shown["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(shown["allowed_scopes"], json!(null));
    assert_eq!(shown["allowed_origins"], json!([]));

    add_machine(&o, &["--scope", "read write", "--scope", "read"]);
    let shown = o.json(&["client", "show", "svc"]);
    assert_eq!(shown["grant_types"], json!(["client_credentials"]));
    assert_eq!(shown["allowed_scopes"], "read write");
    assert_eq!(shown["redirect_uris"], json!([]));
    let text = o.ok(&["client", "show", "svc"]);
    assert!(text.contains("grants:        client_credentials"), "{text}");

    o.json(&[
        "client",
        "add",
        "--name",
        "TV",
        "--id",
        "tv",
        "--public",
        "--grant",
        "device_code",
        "--grant",
        "refresh_token",
        "--allowed-origin",
        "https://app.example.com:8443",
    ]);
    let shown = o.json(&["client", "show", "tv"]);
    assert_eq!(
        shown["grant_types"],
        json!(["device_code", "refresh_token"])
    );
    assert_eq!(
        shown["allowed_origins"],
        json!(["https://app.example.com:8443"])
    );
}

#[test]
fn client_add_refuses_bad_grants_scopes_and_origins() {
    let o = Oauthd::new();
    let base = ["client", "add", "--name", "X"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    // An unknown grant is a usage error.
    expect_exit(&o, &with(&["--grant", "password"]), 2);
    // Client credentials need a confidential client; the code grant a redirect URI.
    let stderr = expect_exit(&o, &with(&["--public", "--grant", "client_credentials"]), 2);
    assert_usage_error(&stderr, "confidential");
    let stderr = expect_exit(&o, &with(&["--grant", "authorization_code"]), 2);
    assert_usage_error(&stderr, "--redirect-uri");
    for origin in [
        "https://app.example.com/",
        "https://app.example.com/path",
        "ftp://app.example.com",
        "https://APP.example.com",
        "https://app.example.com:443",
        "app.example.com",
    ] {
        let stderr = expect_exit(
            &o,
            &with(&["--grant", "client_credentials", "--allowed-origin", origin]),
            2,
        );
        assert_usage_error(&stderr, "origin");
    }
    let stderr = expect_exit(
        &o,
        &with(&["--grant", "client_credentials", "--scope", "a\"b"]),
        2,
    );
    assert_usage_error(&stderr, "scope");
    assert!(o
        .json(&["client", "list"])
        .as_array()
        .expect("list")
        .is_empty());
}

#[test]
fn a_client_using_a_grant_it_did_not_register_is_unauthorized() {
    let s = seeded(&[]);
    // The seed's client registered the defaults: no client credentials, no device code.
    let secret = s.secret.clone();
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Some(&basic(CLIENT_ID, &secret)),
    );
    assert_oauth_error(&r, 400, "unauthorized_client");
    let r = post_form(
        &s.server,
        "/oauth/device_authorization",
        &[],
        Some(&basic(CLIENT_ID, &secret)),
    );
    assert_oauth_error(&r, 400, "unauthorized_client");
    // A machine client may not use the code grant, at the token endpoint or the page.
    let machine = add_machine(&s.o, &[]);
    let r = post_form(
        &s.server,
        "/oauth/token",
        &[("grant_type", "authorization_code"), ("code", "x")],
        Some(&basic("svc", &machine)),
    );
    assert_oauth_error(&r, 400, "unauthorized_client");
    // ... and the seed's client still exchanges codes as before.
    let code = login_code(&s.server, json!({}));
    let r = exchange_as(&s.server, (CLIENT_ID, &secret), &code);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn client_credentials_give_a_token_for_the_client_itself() {
    let s = seeded(&[]);
    let secret = add_machine(&s.o, &["--scope", "read write"]);
    let resource_server = add_resource_server(&s.o, "rs");

    let r = client_credentials(&s, &secret, Some("read"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let answer = r.json();
    assert!(answer.get("refresh_token").is_none(), "{answer}");
    assert_eq!(answer["scope"], "read");
    assert_eq!(answer["token_type"], "bearer");
    let token = answer["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();

    let me = get_bearer(&s.server, "/api/me", &token);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(
        me.json(),
        json!({"client_id": "svc", "client_name": "Backend", "scope": "read"})
    );
    let verify = get_bearer(&s.server, "/api/auth/verify", &token);
    assert_eq!(verify.status, 200);
    assert_eq!(verify.header("x-auth-client-id"), Some("svc"));
    assert_eq!(verify.header("x-auth-user-id"), None);
    assert_eq!(verify.header("x-auth-email"), None);
    // A client belongs to no organization.
    let in_org = get_bearer(&s.server, "/api/auth/verify?org=acme", &token);
    assert_eq!(in_org.status, 403);

    for (who, secret_of) in [("svc", &secret), ("rs", &resource_server)] {
        let r = post_form(
            &s.server,
            "/oauth/introspect",
            &[("token", &token)],
            Some(&basic(who, secret_of)),
        );
        let v = r.json();
        assert_eq!(v["active"], true, "{who}: {v}");
        assert_eq!(v["client_id"], "svc");
        assert_eq!(v["scope"], "read");
        assert!(v.get("sub").is_none() && v.get("username").is_none(), "{v}");
    }
    // Another client sees nothing.
    let r = post_form(
        &s.server,
        "/oauth/introspect",
        &[("token", &token)],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_eq!(r.json(), json!({"active": false}));

    // No scope asked: the whole allowed list. Outside it: invalid_scope.
    let all = client_credentials(&s, &secret, None);
    assert_eq!(all.json()["scope"], "read write");
    assert_oauth_error(
        &client_credentials(&s, &secret, Some("read admin")),
        400,
        "invalid_scope",
    );
    // A wrong secret is invalid_client.
    assert_oauth_error(
        &client_credentials(&s, "wrong", None),
        401,
        "invalid_client",
    );

    // Revocation by its client ends it.
    let r = post_form(
        &s.server,
        "/oauth/revoke",
        &[("token", &token)],
        Some(&basic("svc", &secret)),
    );
    assert_eq!(r.status, 200);
    assert_eq!(get_bearer(&s.server, "/api/me", &token).status, 401);
    // `token revoke --client` ends the others.
    let other = all.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(get_bearer(&s.server, "/api/me", &other).status, 200);
    s.o.ok(&["token", "revoke", "--client", "svc"]);
    assert_eq!(get_bearer(&s.server, "/api/me", &other).status, 401);
}

#[test]
fn metadata_lists_the_device_endpoint_and_every_grant_type() {
    let s = seeded(&[]);
    let r = crate::support::reply(
        crate::support::agent()
            .get(&s.server.url("/.well-known/oauth-authorization-server"))
            .call(),
    );
    let v = r.json();
    assert_eq!(
        v["device_authorization_endpoint"],
        s.server.url("/oauth/device_authorization")
    );
    assert_eq!(
        v["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
}

/// A client registered without the `refresh_token` grant gets no refresh token at code
/// exchange (it could never present one); the seed's client, registered with the default
/// grants, still gets one, in the same answer as before.
#[test]
fn a_client_without_the_refresh_grant_gets_no_refresh_token() {
    let s = seeded(&[]);
    let secret = s.o.json(&[
        "client",
        "add",
        "--name",
        "Codes only",
        "--id",
        "codeonly",
        "--grant",
        "authorization_code",
        "--redirect-uri",
        REDIRECT,
    ])["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned();
    let exchange = |client_id: &str, secret: &str| {
        let code = login_code(&s.server, json!({ "client_id": client_id }));
        let r = exchange_as(&s.server, (client_id, secret), &code);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let v = exchange("codeonly", &secret);
    let members: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(
        members,
        ["access_token", "token_type", "expires_in", "scope"],
        "{v}"
    );
    let me = get_bearer(
        &s.server,
        "/api/me",
        v["access_token"].as_str().expect("at"),
    );
    assert_eq!(me.status, 200, "{}", me.body);
    let v = exchange(CLIENT_ID, &s.secret);
    assert!(v["refresh_token"].is_string(), "{v}");
}

/// A CORS preflight of the token endpoint from `origin`: its status.
fn preflight(s: &crate::flow_support::Seeded, origin: &str) -> u16 {
    crate::support::reply(
        crate::support::agent()
            .options(&s.server.url("/oauth/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .call(),
    )
    .status
}

/// The newest audit entry's detail.
fn last_audit_detail(o: &Oauthd) -> serde_json::Value {
    let entry = o.json(&["audit", "--limit", "1"])[0].clone();
    assert_eq!(entry["event"], "client_update", "{entry}");
    entry["detail"].clone()
}

#[test]
fn client_update_changes_grants_scopes_and_origins_and_the_running_server_follows() {
    let s = seeded(&[]);
    let secret = add_machine(&s.o, &["--scope", "read write"]);
    assert_eq!(client_credentials(&s, &secret, Some("write")).status, 200);

    // Scopes: replaced, then the restriction lifted.
    let shown = s.o.json(&[
        "client", "update", "svc", "--scope", "read", "--scope", "read",
    ]);
    assert_eq!(shown["allowed_scopes"], "read");
    assert_eq!(last_audit_detail(&s.o), "changed scopes");
    assert_oauth_error(
        &client_credentials(&s, &secret, Some("write")),
        400,
        "invalid_scope",
    );
    assert_eq!(
        client_credentials(&s, &secret, None).json()["scope"],
        "read"
    );
    let shown = s.o.json(&["client", "update", "svc", "--any-scope"]);
    assert_eq!(shown["allowed_scopes"], json!(null));
    assert_eq!(client_credentials(&s, &secret, Some("admin")).status, 200);

    // Origins: a preflight passes once the origin is added, and stops once removed.
    let app = "https://app.example.com";
    assert_eq!(preflight(&s, app), 403);
    let shown =
        s.o.json(&["client", "update", "svc", "--add-allowed-origin", app]);
    assert_eq!(shown["allowed_origins"], json!([app]));
    assert_eq!(last_audit_detail(&s.o), "changed allowed_origins");
    assert_eq!(preflight(&s, app), 200);
    s.o.json(&["client", "update", "svc", "--remove-allowed-origin", app]);
    assert_eq!(preflight(&s, app), 403);

    // Grants: client credentials swapped for the device grant, then given back.
    let shown = s.o.json(&[
        "client",
        "update",
        "svc",
        "--remove-grant",
        "client_credentials",
        "--add-grant",
        "urn:ietf:params:oauth:grant-type:device_code",
    ]);
    assert_eq!(shown["grant_types"], json!(["device_code"]));
    assert_eq!(last_audit_detail(&s.o), "changed grants");
    assert_oauth_error(
        &client_credentials(&s, &secret, None),
        400,
        "unauthorized_client",
    );
    let r = post_form(
        &s.server,
        "/oauth/device_authorization",
        &[],
        Some(&basic("svc", &secret)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    s.o.json(&[
        "client",
        "update",
        "svc",
        "--add-grant",
        "client_credentials",
    ]);
    assert_eq!(client_credentials(&s, &secret, None).status, 200);

    // The code grant comes with its first redirect URI, in one update.
    let shown = s.o.json(&[
        "client",
        "update",
        "svc",
        "--add-grant",
        "authorization_code",
        "--add-redirect-uri",
        "https://svc.example/cb",
    ]);
    assert_eq!(
        shown["grant_types"],
        json!(["device_code", "client_credentials", "authorization_code"])
    );
    assert_eq!(last_audit_detail(&s.o), "changed redirect_uris,grants");
    let text = s.o.ok(&["client", "show", "svc"]);
    assert_eq!(text.matches("scopes:").count(), 1, "{text}");
}

#[test]
fn client_update_refuses_bad_grants_scopes_and_origins_and_changes_nothing() {
    let o = Oauthd::new();
    o.add_client("web", &["https://a.example/cb"]);
    add_machine(&o, &["--allowed-origin", "https://app.example.com"]);
    o.add_public_client("pub", &["https://p.example/cb"], &[]);
    let before = o.json(&["client", "list"]);
    let audit_before = o.json(&["audit"]);
    let update = |extra: &[&'static str]| -> Vec<&'static str> {
        ["client", "update"]
            .into_iter()
            .chain(extra.iter().copied())
            .collect()
    };
    for (args, says) in [
        (&["web", "--add-grant", "password"][..], "password"),
        (&["web", "--remove-grant", "implicit"], "implicit"),
        (&["web", "--scope", "a\"b"], "scope"),
        (&["web", "--scope", " "], "at least one scope"),
        (&["web", "--scope", "read", "--any-scope"], "cannot be used"),
        (
            &["web", "--add-allowed-origin", "https://x.example/"],
            "origin",
        ),
        (
            &["web", "--remove-allowed-origin", "app.example.com"],
            "origin",
        ),
    ] {
        let stderr = expect_exit(&o, &update(args), 2);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    for (args, says) in [
        (
            &["web", "--remove-grant", "client_credentials"][..],
            "not registered for the client_credentials grant",
        ),
        (
            &[
                "web",
                "--remove-grant",
                "authorization_code",
                "--remove-grant",
                "refresh_token",
            ],
            "at least one grant",
        ),
        (
            &["pub", "--add-grant", "client_credentials"],
            "confidential",
        ),
        (
            &["svc", "--add-grant", "authorization_code"],
            "redirect URI",
        ),
        (
            &["svc", "--remove-allowed-origin", "https://other.example"],
            "not an allowed origin",
        ),
        (&["missing", "--add-grant", "device_code"], "no client"),
    ] {
        let stderr = expect_exit(&o, &update(args), 1);
        assert_one_line_error(&stderr, says);
    }
    assert_eq!(o.json(&["client", "list"]), before);
    assert_eq!(o.json(&["audit"]), audit_before);
}
