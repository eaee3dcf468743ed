//! Revocation reaches every instance at once: bearer checks (`/api/me`), UserInfo and
//! introspection read the token and its grant from the database on every request, with no
//! per-instance cache. Two instances on the suite's store (`OAUTHD_TEST_STORE`); each
//! has answered for the token before it is revoked, so a cache would have been filled.

use serde_json::json;

use crate::flow_support::*;
use crate::support::Server;

/// Whether `token` is active by introspection at `at` (asked by resource server `api`).
fn active_at(at: &Server, api_secret: &str, token: &str) -> bool {
    let r = post_form(
        at,
        "/oauth/introspect",
        &[("token", token)],
        Some(&basic("api", api_secret)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["active"] == true
}

/// The statuses `/api/me` and UserInfo answer for `access` at `at`.
fn bearer_statuses(at: &Server, access: &str) -> (u16, u16) {
    (
        get_bearer(at, "/api/me", access).status,
        get_bearer(at, "/oauth/userinfo", access).status,
    )
}

#[test]
fn every_instance_reads_a_revocation_or_a_disabled_user_from_the_database_at_once() {
    let s = seeded(&[]);
    let b = s.o.serve(&[]);
    let api = add_resource_server(&s.o, "api");
    let instances = [&s.server, &b];
    let grant = |scope: &str| {
        tokens(&exchange(
            &s,
            &login_code(&s.server, json!({ "scope": scope })),
        ))
    };
    let (first_access, first_refresh) = grant("openid");
    let (second_access, second_refresh) = grant("openid");
    for at in instances {
        for token in [&first_access, &first_refresh, &second_access] {
            assert!(active_at(at, &api, token));
        }
        assert_eq!(bearer_statuses(at, &first_access), (200, 200));
    }

    // A client revokes its refresh token (the whole grant) at one instance.
    let revoked = post_form(
        &s.server,
        "/oauth/revoke",
        &[("token", &first_refresh)],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    for at in instances {
        assert!(!active_at(at, &api, &first_access));
        assert!(!active_at(at, &api, &first_refresh));
        assert_eq!(bearer_statuses(at, &first_access), (401, 401));
        assert!(active_at(at, &api, &second_access), "the other grant lives");
    }

    // The admin disables the user from the CLI, a process of its own.
    s.o.ok(&["user", "disable", EMAIL]);
    for at in instances {
        assert!(!active_at(at, &api, &second_access));
        assert!(!active_at(at, &api, &second_refresh));
        assert_eq!(bearer_statuses(at, &second_access), (401, 401));
    }
}
