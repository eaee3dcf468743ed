//! Audit retention: `audit prune --older-than` and `serve --audit-retention` delete audit
//! rows past the retention, oldest first, in small transactions, and keep newer ones; on
//! PostgreSQL also with two servers on one database (one sweeps at a time). The same
//! sweep deletes the expired ACME challenge offers a dead instance left behind.

use std::time::{Duration, Instant};

use crate::support::{expect_exit, Oauthd, Server};

const DAY: i64 = 86_400;

/// Appends `n` audit rows `age_secs` old (as a long-running server would have left).
fn add_audit_rows(o: &Oauthd, n: usize, age_secs: i64, event: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let at = now - age_secs;
    let rows = vec![format!("({at}, '{event}', 'c')"); n].join(", ");
    o.sql(&format!(
        "INSERT INTO audit_log (at, event, client_id) VALUES {rows}"
    ));
}

fn count(o: &Oauthd, event: &str) -> i64 {
    o.sql(&format!(
        "SELECT count(*) FROM audit_log WHERE event = '{event}'"
    ))
    .parse()
    .expect("count")
}

#[test]
fn audit_retention_prune_deletes_only_rows_older_than_asked_and_records_itself() {
    let o = Oauthd::new();
    o.add_user("a@example.com", "pw");
    // More than one batch of old rows, then newer ones.
    add_audit_rows(&o, 1300, 40 * DAY, "old");
    add_audit_rows(&o, 20, 2 * DAY, "recent");
    let pruned = o.json(&["audit", "prune", "--older-than", "30d"]);
    assert_eq!(pruned["deleted"], 1300, "{pruned}");
    assert_eq!(count(&o, "old"), 0);
    assert_eq!(count(&o, "recent"), 20);
    assert_eq!(count(&o, "user_add"), 1, "newer events are kept");
    assert_eq!(count(&o, "audit_prune"), 1, "the prune is audited");
    // Bad durations are usage errors and change nothing.
    for bad in ["yesterday", "0d", "30", "-1d"] {
        expect_exit(&o, &["audit", "prune", "--older-than", bad], 2);
    }
    expect_exit(&o, &["audit", "prune"], 2);
    assert_eq!(count(&o, "recent"), 20);
    // Listing still works beside the new subcommand.
    assert!(o.json(&["audit", "--limit", "5"]).as_array().is_some());
}

#[test]
fn audit_retention_a_running_server_prunes_past_its_retention() {
    let o = Oauthd::new();
    o.add_user("a@example.com", "pw");
    add_audit_rows(&o, 1100, 10 * DAY, "old");
    add_audit_rows(&o, 5, DAY / 2, "recent");
    // Offers a dead instance left behind: one long expired, one still live.
    o.sql(
        "INSERT INTO acme_challenges (kind, name, key_authorization, expires_at)
         VALUES ('http-01', 'dead', 'k', 1), ('http-01', 'live', 'k', 4102444800)",
    );
    expect_exit(&o, &["serve", "--audit-retention", "soon"], 2);
    let server = o.serve(&["--audit-retention", "7d"]);
    let challenges = |o: &Oauthd| o.sql("SELECT name FROM acme_challenges ORDER BY name");
    wait_until_swept(&o, &[&server], |o| {
        count(o, "old") == 0 && challenges(o) == "live"
    });
    assert_eq!(count(&o, "recent"), 5);
    assert_eq!(count(&o, "user_add"), 1);
}

/// Waits (the first housekeeping sweep runs a few seconds after start) until `swept`.
fn wait_until_swept(o: &Oauthd, servers: &[&Server], swept: impl Fn(&Oauthd) -> bool) {
    let started = Instant::now();
    while !swept(o) {
        let logs: Vec<String> = servers.iter().map(|s| s.logs()).collect();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not swept: {} old audit rows, {} grants\n{}",
            count(o, "old"),
            o.sql("SELECT count(*) FROM grants"),
            logs.join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(feature = "postgres")]
#[test]
fn audit_retention_two_servers_on_one_postgres_database_sweep_it() {
    let o = Oauthd::on_postgres_cluster(crate::pg_support::shared());
    o.add_user("a@example.com", "pw");
    o.add_client("c", &["http://127.0.0.1:9/cb"]);
    crate::support::seed_grant(&o, "a@example.com", "c");
    crate::support::seed_grant(&o, "a@example.com", "c");
    let revoked = o.sql(
        "UPDATE grants SET revoked_at = 1 WHERE id = (SELECT min(id) FROM grants) RETURNING id",
    );
    add_audit_rows(&o, 1100, 10 * DAY, "old");
    add_audit_rows(&o, 5, DAY / 2, "recent");
    let one = o.serve(&["--audit-retention", "7d"]);
    let other = o.serve(&["--audit-retention", "7d"]);
    wait_until_swept(&o, &[&one, &other], |o| {
        count(o, "old") == 0 && o.sql("SELECT count(*) FROM grants") == "1"
    });
    assert_ne!(
        o.sql("SELECT id FROM grants"),
        revoked,
        "the live grant stays"
    );
    assert_eq!(count(&o, "recent"), 5);
    assert_eq!(o.sql("SELECT count(*) FROM access_tokens"), "1");
    for server in [&one, &other] {
        assert!(!server.logs().contains("round failed"), "{}", server.logs());
    }
}
