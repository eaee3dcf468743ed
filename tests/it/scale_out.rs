//! Several `oauthd serve` on one database (issue 15): a real client library (Authlib)
//! through a real load balancer (nginx, round-robin) over two instances on one PostgreSQL
//! database; and, instance against instance, what must hold whichever one a request
//! reaches: a code is exchanged once, refresh-token reuse is caught, a revocation is seen
//! at once, the first signing key is made once, a key rotation by the CLI reaches every
//! instance, failed logins lock an account (and wrong `/device` user codes stop an
//! address) after as many failures in total as on one instance, an answered token
//! survives killing its instance and crashing PostgreSQL, and a running server recovers
//! when PostgreSQL restarts under it.
//!
//! The instance-against-instance tests without a PostgreSQL-only subject run on the
//! store the suite runs on (`OAUTHD_TEST_STORE`), so two processes on one SQLite file
//! are held to the same rules.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::json;

use crate::flow_support::*;
use crate::nginx::Nginx;
use crate::oidc_authlib::{run_python, PYTHON};
use crate::pg_support::{self, PgCluster};
use crate::relying_party::{require, seed_user};
use crate::support::{agent, reply, Oauthd, Reply, Server};

const AUTHLIB_REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The seed's user and client on the suite's store, with two instances of it.
fn two_instances(flags: &[&str]) -> (Seeded, Server) {
    let s = seeded(flags);
    let b = s.o.serve(flags);
    (s, b)
}

/// Tokens of a fresh code from `from`, exchanged at `at`.
fn tokens_across(s: &Seeded, from: &Server, at: &Server, scope: &str) -> Reply {
    let code = login_code(from, json!({ "scope": scope }));
    exchange_as(at, (CLIENT_ID, &s.secret), &code)
}

fn refresh_at(s: &Seeded, at: &Server, refresh_token: &str) -> Reply {
    refresh_as(at, (CLIENT_ID, &s.secret), refresh_token)
}

#[test]
fn authlib_signs_in_through_nginx_over_two_instances_of_one_postgres_database() {
    require(PYTHON, "python3-authlib");
    let o = Oauthd::on_postgres_cluster(pg_support::shared());
    seed_user(&o);
    let v = o.json(&[
        "client",
        "add",
        "--name",
        "Authlib",
        "--id",
        "authlib",
        "--redirect-uri",
        AUTHLIB_REDIRECT,
        "--require-pkce",
    ]);
    let secret = v["client_secret"].as_str().expect("secret").to_owned();
    let port = Nginx::free_port();
    let balancer = format!("http://127.0.0.1:{port}");
    let a = o.serve(&["--issuer", &balancer]);
    let b = o.serve(&["--issuer", &balancer]);
    let nginx = Nginx::round_robin(port, &[a.addr, b.addr]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/authlib_lb_client.py");
    let (url_a, url_b) = (a.url(""), b.url(""));
    let result = run_python(&[
        script,
        &balancer,
        "authlib",
        &secret,
        AUTHLIB_REDIRECT,
        crate::relying_party::EMAIL,
        crate::relying_party::PASSWORD,
        &url_a,
        &url_b,
    ]);
    let context = format!("{result}\nnginx: {}", nginx.error_log());
    assert_eq!(result["validated"], true, "{context}");
    assert_eq!(result["email"], crate::relying_party::EMAIL, "{context}");
    let instances: BTreeSet<String> = [a.addr.to_string(), b.addr.to_string()].into();
    let (page_from, form_to) = (
        result["page_from"].as_str().expect("page_from").to_owned(),
        result["form_to"].as_str().expect("form_to").to_owned(),
    );
    assert_ne!(
        page_from, form_to,
        "the form went to the other instance: {context}"
    );
    assert!(
        instances.contains(&page_from) && instances.contains(&form_to),
        "{context}"
    );
    let served: BTreeSet<String> = result["served"]
        .as_array()
        .expect("served")
        .iter()
        .map(|step| step[2].as_str().expect("upstream").to_owned())
        .collect();
    assert_eq!(
        served, instances,
        "every request went to one of the two: {context}"
    );
    assert_eq!(result["live_before"], json!([200, 200]), "{context}");
    assert_eq!(result["after_revocation"], json!([401, 401]), "{context}");
    assert_eq!(
        result["refresh_after_revocation"],
        json!([[400, "invalid_grant"], [400, "invalid_grant"]]),
        "{context}"
    );
}

#[test]
fn one_code_is_exchanged_once_when_two_instances_race_for_it() {
    let (s, b) = two_instances(&[]);
    for round in 0..8 {
        let code = login_code(&s.server, json!({}));
        let start = std::sync::Barrier::new(2);
        let statuses: BTreeSet<u16> = std::thread::scope(|scope| {
            let racers: Vec<_> = [&s.server, &b]
                .into_iter()
                .map(|at| {
                    let (start, code, secret) = (&start, &code, &s.secret);
                    scope.spawn(move || {
                        start.wait();
                        exchange_as(at, (CLIENT_ID, secret), code).status
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        });
        assert_eq!(statuses, [200, 400].into(), "round {round}");
    }
}

/// Refreshes at `at` as the public (rotating) client `pub`.
fn public_refresh_at(at: &Server, refresh_token: &str) -> Reply {
    post_form(
        at,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "pub"),
        ],
        None,
    )
}

/// The reuse rule across instances, for a rotating public client: a rotated-out token
/// replayed at one instance inside the grace window supersedes the successor the other
/// instance gave; presenting that superseded successor is reuse, and the whole grant
/// ends at both.
#[test]
fn refresh_reuse_on_one_instance_is_caught_on_the_other() {
    let (s, b) = two_instances(&[]);
    s.o.add_public_client("pub", &[PUBLIC_REDIRECT], &[]);
    let (_, stolen) = public_exchange(&s, None);
    let (_, victims) = tokens(&public_refresh_at(&b, &stolen));
    let (thiefs_access, thiefs) = tokens(&public_refresh_at(&s.server, &stolen));
    assert_eq!(get_bearer(&b, "/api/me", &thiefs_access).status, 200);
    assert_oauth_error(&public_refresh_at(&b, &victims), 400, "invalid_grant");
    assert_eq!(get_bearer(&s.server, "/api/me", &thiefs_access).status, 401);
    assert_oauth_error(&public_refresh_at(&s.server, &thiefs), 400, "invalid_grant");
}

#[test]
fn a_revocation_at_one_instance_is_seen_by_the_other_at_once() {
    let (s, b) = two_instances(&[]);
    let (access, refresh_token) = tokens(&tokens_across(&s, &s.server, &b, "xx"));
    for at in [&s.server, &b] {
        assert_eq!(get_bearer(at, "/api/me", &access).status, 200);
    }
    let revoked = post_form(
        &s.server,
        "/oauth/revoke",
        &[("token", &access)],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(get_bearer(&b, "/api/me", &access).status, 401);
    // The grant lives on (only the access token was revoked); ending it at B ends it at A.
    let (access, refresh_token) = tokens(&refresh_at(&s, &s.server, &refresh_token));
    let revoked = post_form(
        &b,
        "/oauth/revoke",
        &[("token", &refresh_token)],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 401);
    assert_oauth_error(
        &refresh_at(&s, &s.server, &refresh_token),
        400,
        "invalid_grant",
    );
}

/// The `kid` in an id_token's header.
fn kid_of(answer: &Reply) -> String {
    let id_token = answer.json()["id_token"]
        .as_str()
        .expect("id_token")
        .to_owned();
    let header = id_token.split('.').next().expect("header");
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url");
    let header: serde_json::Value = serde_json::from_slice(&header).expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

#[test]
fn a_key_rotated_with_the_cli_signs_at_every_instance() {
    let (s, b) = two_instances(&[]);
    let before = kid_of(&tokens_across(&s, &s.server, &s.server, "openid"));
    assert_eq!(kid_of(&tokens_across(&s, &b, &b, "openid")), before);
    let rotated =
        s.o.json(&["key", "rotate", "--alg", "RS256", "--signing-delay", "0"]);
    let newest = rotated[0]["kid"].as_str().expect("kid").to_owned();
    assert_ne!(newest, before);
    for at in [&s.server, &b] {
        assert_eq!(kid_of(&tokens_across(&s, at, at, "openid")), newest);
        let published = reply(agent().get(&at.url("/oauth/jwks")).call());
        assert!(published.body.contains(&newest), "{}", published.body);
    }
}

#[test]
fn wrong_passwords_alternating_between_instances_lock_the_account_at_the_one_instance_limit() {
    let o = Oauthd::on_postgres_cluster(pg_support::shared());
    o.add_user(EMAIL, PASSWORD);
    o.add_client(CLIENT_ID, &[REDIRECT]);
    let a = o.serve(&[]);
    let b = o.serve(&[]);
    let wrong = login_body(json!({ "password": "wrong" }));
    // One instance locks an account at its 5th failure: so must two together.
    for n in 0..5 {
        let at = if n % 2 == 0 { &a } else { &b };
        let r = login(at, &wrong);
        assert_eq!(r.status, 401, "failure {n}: {}", r.body);
    }
    for at in [&a, &b] {
        let r = login(at, &login_body(json!({})));
        assert_eq!(r.status, 429, "the right password while locked: {}", r.body);
        assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    }
    let locked = o.json(&["audit", "--limit", "100"]);
    let throttled = locked
        .as_array()
        .expect("rows")
        .iter()
        .filter(|e| {
            e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("throttled"))
        })
        .count();
    assert_eq!(throttled, 1, "one audit entry per lockout: {locked}");
}

/// Instances whose first id_token key is asked for at once (the JWKS) on one empty
/// database: one key is made and every instance publishes it.
#[test]
fn instances_asked_for_the_first_key_at_once_make_one() {
    let o = Oauthd::on_postgres_cluster(pg_support::shared());
    let instances: Vec<Server> = (0..3).map(|_| o.serve(&[])).collect();
    let start = std::sync::Barrier::new(instances.len());
    let sets: BTreeSet<String> = std::thread::scope(|scope| {
        let askers: Vec<_> = instances
            .iter()
            .map(|at| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    let r = reply(agent().get(&at.url("/oauth/jwks")).call());
                    assert_eq!(r.status, 200, "{}", r.body);
                    r.json()["keys"].to_string()
                })
            })
            .collect();
        askers
            .into_iter()
            .map(|a| a.join().expect("asker"))
            .collect()
    });
    assert_eq!(
        sets.len(),
        1,
        "every instance publishes the same set: {sets:?}"
    );
    let listed = o.json(&["key", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

/// `/device` on one instance: `GET /device?user_code=typed`.
fn device_page(at: &Server, typed: &str) -> Reply {
    reply(
        agent()
            .get(&at.url(&format!("/device?user_code={typed}")))
            .call(),
    )
}

#[test]
fn wrong_user_codes_alternating_between_instances_stop_the_address_at_the_one_instance_limit() {
    let o = Oauthd::on_postgres_cluster(pg_support::shared());
    crate::device_flow::add_tv(&o);
    let a = o.serve(&[]);
    let b = o.serve(&[]);
    let started = crate::device_flow::start(&a, "read");
    let user_code = started["user_code"].as_str().expect("user_code").to_owned();
    // A right code costs no try, at whichever instance.
    assert_eq!(device_page(&b, &user_code).status, 200);
    let wrong = ["BB", "BC", "BD", "BF", "BG", "BH", "BJ", "BK", "BL", "BM"];
    // One instance stops an address after 10 wrong codes: so must two together.
    for (n, last) in wrong.iter().enumerate() {
        let at = if n % 2 == 0 { &a } else { &b };
        let r = device_page(at, &format!("BBBB-BB{last}"));
        assert_eq!(r.status, 400, "guess {n}: {}", r.body);
    }
    for at in [&a, &b] {
        let r = device_page(at, &user_code);
        assert_eq!(r.status, 429, "the right code after 10 wrong: {}", r.body);
        assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    }
}

#[test]
fn an_answered_token_survives_killing_its_instance_and_crashing_postgres() {
    let cluster = PgCluster::start();
    let o = Oauthd::on_postgres_cluster(&cluster);
    o.add_user(EMAIL, PASSWORD);
    let secret = o.add_client(CLIENT_ID, &[REDIRECT]);
    let mut a = o.serve(&[]);
    let code = login_code(&a, json!({}));
    let (access, refresh_token) = tokens(&exchange_as(&a, (CLIENT_ID, &secret), &code));
    // SIGKILL: no shutdown, no flush; then PostgreSQL stops as a power cut would.
    a.child.kill().expect("kill");
    a.child.wait().expect("wait");
    cluster.crash_and_restart();
    let b = o.serve(&[]);
    assert_eq!(get_bearer(&b, "/api/me", &access).status, 200);
    tokens(&refresh_as(&b, (CLIENT_ID, &secret), &refresh_token));
    // The code was spent before the crash and stays spent.
    assert_oauth_error(
        &exchange_as(&b, (CLIENT_ID, &secret), &code),
        400,
        "invalid_grant",
    );
}

/// PostgreSQL crashes and comes back under a running server (a restart, a failover):
/// without restarting oauthd, bearer checks (read on the server's runtime) and token
/// requests (pooled connections) work again, every answer meanwhile is 200 or 503 (never
/// a 500, never a valid token refused), and afterwards no stale connection fails a
/// request.
#[test]
fn a_running_server_recovers_when_postgres_restarts_under_it() {
    let cluster = PgCluster::start();
    let o = Oauthd::on_postgres_cluster(&cluster);
    o.add_user(EMAIL, PASSWORD);
    let secret = o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve(&[]);
    let (access, refresh_token) = tokens(&exchange_as(
        &server,
        (CLIENT_ID, &secret),
        &login_code(&server, json!({})),
    ));
    // Several connections of each kind are open and idle when PostgreSQL goes.
    std::thread::scope(|threads| {
        for _ in 0..4 {
            threads.spawn(|| assert_eq!(get_bearer(&server, "/api/me", &access).status, 200));
        }
    });
    cluster.crash_and_restart();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = get_bearer(&server, "/api/me", &access);
        match r.status {
            200 => break,
            503 => assert!(
                std::time::Instant::now() < deadline,
                "still 503: {}",
                r.body
            ),
            other => panic!(
                "a valid token answered {other} after the restart: {}",
                r.body
            ),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Every stale connection (pooled or reading) is replaced, not handed to a request.
    for n in 0..20 {
        assert_eq!(
            get_bearer(&server, "/api/me", &access).status,
            200,
            "check {n}"
        );
    }
    tokens(&refresh_as(&server, (CLIENT_ID, &secret), &refresh_token));
    let code = login_code(&server, json!({}));
    tokens(&exchange_as(&server, (CLIENT_ID, &secret), &code));
}
