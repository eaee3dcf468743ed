//! PostgreSQL turned read-only under a running server (`default_transaction_read_only`,
//! as an operator's switch or a standby makes it), on a cluster of its own since the
//! switch is the whole cluster's: answered like an SQLite file that became read-only.

#![cfg(feature = "postgres")]

use std::time::{Duration, Instant};

use serde_json::json;

use crate::flow_support::{
    add_resource_server, basic, exchange, get_bearer, login_code, post_form, tokens, Seeded,
    CLIENT_ID, EMAIL, PASSWORD, REDIRECT,
};
use crate::pg_support::PgCluster;
use crate::support::{agent, reply, Oauthd, Reply};

/// Switches every session of `cluster` to read-only transactions, or back.
fn set_read_only(cluster: &PgCluster, on: bool) {
    let setting = if on { "on" } else { "off" };
    cluster.sql(
        "postgres",
        &format!("ALTER SYSTEM SET default_transaction_read_only = {setting}"),
    );
    cluster.sql("postgres", "SELECT pg_reload_conf()");
}

/// What database `db` stores: its dump without the random key of psql's `\restrict`
/// lines, which differs per dump.
fn stored(cluster: &PgCluster, db: &str) -> String {
    String::from_utf8_lossy(&cluster.dump(db))
        .lines()
        .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `/healthz` once its status is `status` (sessions take a reloaded setting at their next
/// statement, so the first answers may still be the old state); panics after 30 s.
fn healthz_once(s: &Seeded, status: u16) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = reply(agent().get(&s.server.url("/healthz")).call());
        if health.status == status || Instant::now() > deadline {
            assert_eq!(health.status, status, "{}", health.body);
            return health;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Turned read-only: a token request is answered 503 with Retry-After (as on a read-only
/// SQLite file) and writes nothing (the database dumps the same; the code it presented is
/// still unused); issued tokens still validate (`/api/me`, introspection); `/healthz` says
/// read-only (503, Retry-After). Switched back, without a restart: `/healthz` is 200 and
/// the same code is exchanged.
#[test]
fn a_postgres_turned_read_only_refuses_writes_keeps_validating_and_recovers() {
    let cluster = PgCluster::start();
    let o = Oauthd::on_postgres_cluster(&cluster);
    let db =
        o.pg.as_deref()
            .and_then(|url| url.rsplit('/').next())
            .expect("database name")
            .to_owned();
    o.add_user(EMAIL, PASSWORD);
    let secret = o.add_client(CLIENT_ID, &[REDIRECT]);
    let rs_secret = add_resource_server(&o, "api");
    let server = o.serve(&[]);
    let s = Seeded { o, server, secret };
    let (access, refresh_token) = tokens(&exchange(&s, &login_code(&s.server, json!({}))));
    let code = login_code(&s.server, json!({}));
    healthz_once(&s, 200);

    set_read_only(&cluster, true);
    let health = healthz_once(&s, 503);
    assert!(health.body.contains("read-only"), "{}", health.body);
    assert!(
        health.header("retry-after").is_some(),
        "{:?}",
        health.headers
    );
    let before = stored(&cluster, &db);
    let refused = exchange(&s, &code);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.header("retry-after").is_some(),
        "{:?}",
        refused.headers
    );
    let refreshed = crate::flow_support::refresh(&s, &refresh_token);
    assert_eq!(refreshed.status, 503, "{}", refreshed.body);
    let me = get_bearer(&s.server, "/api/me", &access);
    assert_eq!(me.status, 200, "{}", me.body);
    let introspected = post_form(
        &s.server,
        "/oauth/introspect",
        &[("token", &access)],
        Some(&basic("api", &rs_secret)),
    );
    assert_eq!(introspected.status, 200, "{}", introspected.body);
    assert_eq!(introspected.json()["active"], true, "{}", introspected.body);
    assert!(
        stored(&cluster, &db) == before,
        "a read-only database was changed"
    );

    set_read_only(&cluster, false);
    healthz_once(&s, 200);
    let exchanged = exchange(&s, &code);
    assert_eq!(exchanged.status, 200, "{}", exchanged.body);
    assert_eq!(crate::flow_support::refresh(&s, &refresh_token).status, 200);
}
