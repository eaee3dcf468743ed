//! An email's identity is its Unicode-folded key (NFD, full case folding, NFC): unique,
//! matched by every lookup and used by the throttle. Regression tests for "emails fold only
//! ASCII case", which made `Ünï@x.io` and `ünï@x.io` two accounts, and for the migration
//! that folds an older database's accounts without merging any.

use serde_json::{json, Value};

use crate::flow_support::*;
use crate::support::Oauthd;

const STORED: &str = "Ünï@x.io";
const LOWER: &str = "ünï@x.io";
const UPPER: &str = "ÜNÏ@X.IO";
/// `STORED` with U+0055 U+0308 instead of the precomposed Ü.
const DECOMPOSED: &str = "U\u{308}nï@x.io";
const PASSWORD_1: &str = "first-account-pw";

fn sign_in(server: &crate::support::Server, email: &str, password: &str) -> u16 {
    login(
        server,
        &login_body(json!({"email": email, "password": password})),
    )
    .status
}

#[test]
fn unicode_case_variants_of_an_email_are_one_account() {
    let o = Oauthd::new();
    o.add_user(STORED, PASSWORD_1);
    for variant in [LOWER, UPPER, DECOMPOSED, "ünÏ@X.io"] {
        let out = o.cli_stdin(&["user", "add", variant, "--password-stdin"], "second-pw\n");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{variant}: {stderr}");
        assert!(stderr.contains("already exists"), "{variant}: {stderr}");
    }
    assert_eq!(o.json(&["user", "list"]).as_array().map(Vec::len), Some(1));
    assert_eq!(o.json(&["user", "show", UPPER])["email"], STORED);

    o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve(&[]);
    for variant in [STORED, LOWER, UPPER, DECOMPOSED] {
        assert_eq!(sign_in(&server, variant, PASSWORD_1), 200, "{variant}");
    }
    // The audit filter folds the same way: any form finds the account's events.
    let by_user = o.json(&["audit", "--user", DECOMPOSED]);
    let events: Vec<&str> = by_user
        .as_array()
        .expect("audit array")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(
        events.iter().filter(|e| **e == "login_ok").count(),
        4,
        "{by_user}"
    );
    assert!(events.contains(&"user_add"), "{by_user}");
}

/// Builds, at `o.db`, a database of schema version 1 (before folding) whose accounts are
/// `emails`, all with password `password`.
pub(crate) fn version_1_database(o: &Oauthd, emails: &[&str], password: &str) {
    // A real PBKDF2 hash, made by the real CLI in a scratch database.
    let scratch = Oauthd::on_sqlite();
    scratch.add_user("hash@x.io", password);
    let hash: String = rusqlite::Connection::open(&scratch.db)
        .expect("open scratch")
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .expect("hash");
    let conn = rusqlite::Connection::open(&o.db).expect("open");
    conn.execute_batch(include_str!("fixtures/schema_v1.sql"))
        .expect("v1 schema");
    conn.pragma_update(None, "user_version", 1)
        .expect("version");
    for (n, email) in emails.iter().enumerate() {
        conn.execute(
            "INSERT INTO users (id, email, name, password_hash, disabled, created_at, updated_at)
             VALUES (?1, ?2, NULL, ?3, 0, 0, 0)",
            rusqlite::params![format!("user-{n}"), email, hash],
        )
        .expect("v1 user");
    }
}

#[test]
fn migration_reports_emails_that_collide_once_folded_and_merges_none() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    version_1_database(&o, &[STORED, LOWER, "Solo@X.io"], PASSWORD_1);

    // The first writing command migrates and warns; `check` names the collision and fails.
    let added = o.cli(&[
        "client",
        "add",
        "--name",
        "Test App",
        "--id",
        CLIENT_ID,
        "--redirect-uri",
        REDIRECT,
    ]);
    let stderr = String::from_utf8_lossy(&added.stderr);
    assert!(added.status.success(), "{stderr}");
    assert!(
        stderr.contains("share an email") && stderr.contains("oauthd check"),
        "migration warning: {stderr}"
    );
    let out = o.cli(&["check", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("shared by several accounts"), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("check json");
    assert_eq!(summary["integrity"], "ok", "{summary}");
    assert_eq!(summary["email_collisions"], json!([[STORED, LOWER]]));
    let text = o.cli(&["check"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(&format!("{STORED} {LOWER}")),
        "{text:?}"
    );

    // Nothing merged: three accounts, and a folded lookup of the shared key is refused.
    assert_eq!(o.json(&["user", "list"]).as_array().map(Vec::len), Some(3));
    let ambiguous = o.cli(&["user", "show", UPPER]);
    let stderr = String::from_utf8_lossy(&ambiguous.stderr);
    assert_eq!(ambiguous.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("2 accounts share this email"), "{stderr}");
    // The address exactly as stored still names its account, so an admin can resolve it.
    assert_eq!(o.json(&["user", "show", STORED])["id"], "user-0");
    assert_eq!(o.json(&["user", "show", LOWER])["id"], "user-1");

    let server = o.serve(&[]);
    // A sign-in cannot tell whose password to check: refused like a wrong password.
    assert_eq!(sign_in(&server, LOWER, PASSWORD_1), 401);
    let failed = o.json(&["audit"]);
    let failure = failed
        .as_array()
        .and_then(|all| all.iter().find(|e| e["event"] == "login_failed"))
        .unwrap_or_else(|| panic!("no login_failed in {failed}"));
    assert!(
        failure["detail"]
            .as_str()
            .is_some_and(|d| d.contains("shared by 2 accounts")),
        "{failure}"
    );
    // Accounts without a collision got their key: any case signs in.
    assert_eq!(sign_in(&server, "solo@x.IO", PASSWORD_1), 200);

    // Resolving the collision by hand makes the key unique and usable again.
    o.ok(&["user", "remove", LOWER]);
    assert!(o.cli(&["check"]).status.success());
    assert_eq!(sign_in(&server, UPPER, PASSWORD_1), 200);
}
