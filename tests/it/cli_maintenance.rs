//! `oauthd token revoke`, `backup`, `check`, `audit`, and the refusals every command shares
//! (bad global flags, a --db that is not ours).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::{
    assert_one_line_error, assert_usage_error, expect_exit, live_tokens, path_in, seed_grant,
    Oauthd,
};

#[test]
fn token_revoke_by_user_client_and_all() {
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    o.add_user("ben@example.com", "pw");
    o.add_client("one", &["https://a.example/cb"]);
    o.add_client("two", &["https://a.example/cb"]);
    seed_grant(&o, "ann@example.com", "one");
    seed_grant(&o, "ben@example.com", "one");
    seed_grant(&o, "ben@example.com", "two");
    assert_eq!(live_tokens(&o), (3, 3));
    assert_eq!(
        o.json(&["token", "revoke", "--user", "ANN@example.com"])["revoked_grants"],
        1
    );
    assert_eq!(live_tokens(&o), (2, 2));
    assert!(o
        .ok(&["token", "revoke", "--client", "two"])
        .contains("revoked 1 grant"));
    assert_eq!(live_tokens(&o), (1, 1));
    assert_eq!(o.json(&["token", "revoke", "--all"])["revoked_grants"], 1);
    assert_eq!(live_tokens(&o), (0, 0));
    let events = o.json(&["audit"]).to_string();
    assert_eq!(events.matches("token_revoke_admin").count(), 3, "{events}");
}

#[test]
fn token_revoke_needs_exactly_one_selector() {
    let o = Oauthd::new();
    expect_exit(&o, &["token", "revoke"], 2);
    expect_exit(&o, &["token", "revoke", "--all", "--client", "x"], 2);
    expect_exit(
        &o,
        &["token", "revoke", "--user", "a@b.co", "--client", "x"],
        2,
    );
}

#[test]
fn token_revoke_refuses_unknown_user_or_client() {
    let o = Oauthd::new();
    crate::support::create_empty_db(&o);
    assert_one_line_error(
        &expect_exit(&o, &["token", "revoke", "--user", "no@example.com"], 1),
        "no user",
    );
    assert_one_line_error(
        &expect_exit(&o, &["token", "revoke", "--client", "none"], 1),
        "no client",
    );
    assert_eq!(o.json(&["audit"]), serde_json::json!([]));
}

#[test]
fn check_reports_counts_and_ok() {
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    o.add_client("one", &["https://a.example/cb"]);
    o.json(&["brand", "add", "a.example", "--name", "A"]);
    o.json(&["org", "add", "Acme"]);
    let check = o.json(&["check"]);
    assert_eq!(check["integrity"], crate::support::expected_integrity());
    for (key, n) in [
        ("users", 1),
        ("clients", 1),
        ("brands", 1),
        ("organizations", 1),
        ("live_access_tokens", 0),
    ] {
        assert_eq!(check[key], n, "{key}: {check}");
    }
    let text = o.ok(&["check"]);
    assert!(
        text.contains(&format!(
            "integrity: {}",
            crate::support::expected_integrity()
        )) && text.contains("users: 1"),
        "{text}"
    );
}

#[test]
fn check_fails_on_a_foreign_key_violation() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    // Any command that writes creates the database; reading ones refuse a missing file.
    o.add_user("ann@example.com", "pw");
    o.json(&["check"]);
    {
        let conn = rusqlite::Connection::open(&o.db).expect("open");
        conn.execute_batch("PRAGMA foreign_keys = OFF; INSERT INTO memberships VALUES ('no-org', 'no-user', 'admin', 0);")
            .expect("corrupt");
    }
    let out = o.cli(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("integrity: failed"));
    assert_one_line_error(
        &String::from_utf8_lossy(&out.stderr),
        "integrity check failed",
    );
}

#[test]
fn backup_copy_passes_check_and_refuses_existing_dest_without_force() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    let dest = path_in(&o, "copy.db");
    let dest_str = dest.to_str().expect("utf-8");
    assert!(o.ok(&["backup", dest_str]).contains("backup written"));
    let copy = Oauthd {
        dir: tempfile::tempdir().expect("tmp"),
        db: dest.clone(),
        pg: None,
    };
    assert_eq!(copy.json(&["check"])["users"], 1);
    let before = std::fs::read(&dest).expect("read");
    o.add_user("ben@example.com", "pw");
    let stderr = expect_exit(&o, &["backup", dest_str], 1);
    assert_one_line_error(&stderr, "--force");
    assert_eq!(
        std::fs::read(&dest).expect("read"),
        before,
        "DEST untouched without --force"
    );
    o.json(&["backup", dest_str, "--force"]);
    assert_eq!(copy.json(&["check"])["users"], 2);
    let leftovers: Vec<String> = std::fs::read_dir(o.dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn backup_into_a_missing_directory_fails_and_leaves_nothing() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    let dest = path_in(&o, "no/such/dir/copy.db");
    expect_exit(&o, &["backup", dest.to_str().expect("utf-8")], 1);
    assert!(!dest.exists());
    let stderr = expect_exit(&o, &["backup", o.db.to_str().expect("utf-8"), "--force"], 1);
    assert_one_line_error(&stderr, "live database");
}

#[test]
fn backup_while_another_process_writes_is_consistent() {
    crate::support::sqlite_only!();
    let o = Arc::new(Oauthd::new());
    o.add_user("seed@example.com", "pw");
    let stop = Arc::new(AtomicBool::new(false));
    let added = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (o, stop, added) = (Arc::clone(&o), Arc::clone(&stop), Arc::clone(&added));
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                o.add_user(&format!("writer{n}@example.com"), "pw");
                n += 1;
                added.store(n, Ordering::SeqCst);
            }
        })
    };
    // Wait (without sleeping) until the writer is demonstrably running.
    while added.load(Ordering::SeqCst) < 2 {
        std::thread::yield_now();
    }
    let dest = path_in(&o, "live-copy.db");
    for _ in 0..3 {
        o.ok(&["backup", dest.to_str().expect("utf-8"), "--force"]);
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    let total = added.load(Ordering::SeqCst) as i64 + 1;
    let copy = Oauthd {
        dir: tempfile::tempdir().expect("tmp"),
        db: dest,
        pg: None,
    };
    let check = copy.json(&["check"]);
    assert_eq!(check["integrity"], "ok");
    let users = check["users"].as_i64().expect("users");
    assert!(
        (3..=total).contains(&users),
        "copy has {users} users, live {total}"
    );
    assert_eq!(
        copy.json(&["user", "list"])
            .as_array()
            .map(|a| a.len() as i64),
        Some(users)
    );
}

#[test]
fn audit_filters_by_since_and_limit() {
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    o.add_client("one", &["https://a.example/cb"]);
    o.json(&["org", "add", "Acme"]);
    assert_eq!(o.json(&["audit"]).as_array().map(Vec::len), Some(3));
    assert_eq!(
        o.json(&["audit", "--since", "1h"]).as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(
        o.json(&["audit", "--since", "2000-01-01"])
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        o.json(&["audit", "--since", "2999-01-01T00:00:00Z"]),
        serde_json::json!([])
    );
    let newest = o.json(&["audit", "--limit", "1"]);
    assert_eq!(newest[0]["event"], "org_add");
    assert_eq!(
        o.json(&["audit", "--client", "one"])[0]["event"],
        "client_add"
    );
    let text = o.ok(&["audit"]);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("user_add user=\"ann@example.com\" from=\"cli\""),
        "{text}"
    );
    for bad in ["yesterday", "15", "2026-13-01", "5 minutes"] {
        assert_usage_error(&expect_exit(&o, &["audit", "--since", bad], 2), "--since");
    }
}

#[test]
fn pbkdf2_iterations_below_minimum_is_a_usage_error() {
    let o = Oauthd::new();
    let out = o
        .command()
        .args(["--pbkdf2-iterations", "999", "user", "list"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_non_sqlite_db_file_is_refused_and_left_unchanged() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    let original = b"these are my notes, not a database\n".repeat(100);
    std::fs::write(&o.db, &original).expect("write");
    let copy = path_in(&o, "never-written.db");
    let copy = copy.to_str().expect("utf-8");
    for args in [
        &["user", "list"][..],
        &["check"],
        &["org", "add", "X"],
        &["backup", copy],
    ] {
        let stderr = expect_exit(&o, args, 1);
        assert_one_line_error(&stderr, "not an SQLite database");
    }
    assert_eq!(std::fs::read(&o.db).expect("read"), original);
    let names: Vec<_> = std::fs::read_dir(o.dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(
        names.len(),
        1,
        "no -wal/-shm or other file created beside it"
    );
}

#[test]
fn a_directory_as_db_is_refused() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    std::fs::create_dir(&o.db).expect("mkdir");
    assert_one_line_error(&expect_exit(&o, &["user", "list"], 1), "is a directory");
}

#[test]
fn user_disable_passwd_and_remove_revoke_the_users_tokens() {
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    o.add_user("ben@example.com", "pw");
    o.add_client("one", &["https://a.example/cb"]);
    seed_grant(&o, "ann@example.com", "one");
    seed_grant(&o, "ben@example.com", "one");
    o.ok(&["user", "disable", "ann@example.com"]);
    assert_eq!(live_tokens(&o), (1, 1));
    o.ok(&["user", "enable", "ann@example.com"]);
    assert_eq!(live_tokens(&o), (1, 1), "enabling does not revive tokens");
    let args = [
        "user",
        "passwd",
        "ben@example.com",
        "--password-stdin",
        "--json",
    ];
    let out = o.cli_stdin(&args, "new\n");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["revoked_grants"], 1);
    assert_eq!(live_tokens(&o), (0, 0));
    seed_grant(&o, "ann@example.com", "one");
    o.ok(&["user", "remove", "ann@example.com"]);
    assert_eq!(live_tokens(&o), (0, 0));
}

#[test]
fn client_remove_revokes_its_tokens_only() {
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    o.add_client("one", &["https://a.example/cb"]);
    o.add_client("two", &["https://a.example/cb"]);
    seed_grant(&o, "ann@example.com", "one");
    seed_grant(&o, "ann@example.com", "two");
    o.ok(&["client", "remove", "one"]);
    assert_eq!(live_tokens(&o), (1, 1));
}
