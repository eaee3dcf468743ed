//! `oauthd user …`: adding, listing, showing, changing passwords, disabling, removing, and
//! every refusal leaving the users unchanged.

use crate::support::{
    assert_one_line_error, assert_usage_error, expect_exit, expect_output_exit, Oauthd,
};

#[test]
fn user_add_json_has_id_email_name_and_list_shows_it() {
    let o = Oauthd::new();
    let out = o.cli_stdin(
        &[
            "user",
            "add",
            "Alice@Example.com",
            "--name",
            "Alice",
            "--password-stdin",
            "--json",
        ],
        "pw\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let keys: Vec<&str> = added
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 3, "{added}");
    assert_eq!(added["email"], "Alice@Example.com");
    assert_eq!(added["name"], "Alice");
    let id = added["id"].as_str().expect("id");
    let list = o.json(&["user", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let user = &list[0];
    assert_eq!(user["id"], id);
    assert_eq!(user["email"], "Alice@Example.com", "stored as given");
    assert_eq!(user["disabled"], false);
    assert!(
        user["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{user}"
    );
    let shown = o.json(&["user", "show", "alice@example.COM"]);
    assert_eq!(shown, *user, "lookup is case-insensitive");
}

#[test]
fn user_add_text_output_and_list_text() {
    let o = Oauthd::new();
    let out = o.cli_stdin(
        &["user", "add", "bob@example.com", "--password-stdin"],
        "pw\r\n",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("created user bob@example.com"));
    let list = o.ok(&["user", "list"]);
    assert!(
        list.contains("bob@example.com") && list.contains("enabled"),
        "{list}"
    );
    assert!(o
        .ok(&["user", "show", "bob@example.com"])
        .contains("email:    bob@example.com"));
}

#[test]
fn user_add_refuses_duplicate_email_in_any_case() {
    let o = Oauthd::new();
    o.add_user("carol@example.com", "pw");
    let args = ["user", "add", "CAROL@example.com", "--password-stdin"];
    let stderr = expect_output_exit(&o.cli_stdin(&args, "pw\n"), &args, 1);
    assert_one_line_error(&stderr, "already exists");
    assert_eq!(o.json(&["user", "list"]).as_array().map(Vec::len), Some(1));
}

#[test]
fn user_add_refuses_invalid_emails_and_writes_nothing() {
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    let before = o.json(&["user", "list"]);
    for bad in [
        "no-at-sign",
        "@example.com",
        "a@nodot",
        "a b@example.com",
        "a@@example.com",
        "a@example..com",
    ] {
        // A usage error exits before reading stdin, so none is fed (no broken pipe).
        let stderr = expect_exit(&o, &["user", "add", bad, "--password-stdin"], 2);
        assert_usage_error(&stderr, "not a valid email");
    }
    let too_long = format!("{}@example.com", "a".repeat(250));
    expect_exit(&o, &["user", "add", &too_long, "--password-stdin"], 2);
    assert_eq!(o.json(&["user", "list"]), before);
}

#[test]
fn user_add_without_password_stdin_refuses_non_terminal_stdin() {
    let o = Oauthd::new();
    let stderr = expect_exit(&o, &["user", "add", "dave@example.com"], 1);
    assert_one_line_error(&stderr, "--password-stdin");
    assert_eq!(o.json(&["user", "list"]), serde_json::json!([]));
}

#[test]
fn user_add_refuses_empty_password() {
    let o = Oauthd::new();
    for input in ["\n", "\r\n", ""] {
        let args = ["user", "add", "erin@example.com", "--password-stdin"];
        let stderr = expect_output_exit(&o.cli_stdin(&args, input), &args, 1);
        assert_one_line_error(&stderr, "empty");
    }
    assert_eq!(o.json(&["user", "list"]), serde_json::json!([]));
}

#[test]
fn user_disable_and_enable_flip_the_flag() {
    let o = Oauthd::new();
    o.add_user("frank@example.com", "pw");
    let disabled = o.json(&["user", "disable", "frank@example.com"]);
    assert_eq!(disabled["disabled"], true);
    assert_eq!(
        o.json(&["user", "show", "frank@example.com"])["disabled"],
        true
    );
    assert!(o.ok(&["user", "list"]).contains("disabled"));
    assert!(o
        .ok(&["user", "enable", "frank@example.com"])
        .contains("enabled"));
    assert_eq!(
        o.json(&["user", "show", "frank@example.com"])["disabled"],
        false
    );
}

#[test]
fn user_passwd_changes_the_stored_hash_and_reports_revocation() {
    let o = Oauthd::new();
    o.add_user("gina@example.com", "old");
    let hash = |o: &Oauthd| -> String { o.sql("SELECT password_hash FROM users") };
    let before = hash(&o);
    let args = [
        "user",
        "passwd",
        "gina@example.com",
        "--password-stdin",
        "--json",
    ];
    let out = o.cli_stdin(&args, "new\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["revoked_grants"], 0);
    let after = hash(&o);
    assert_ne!(before, after);
    assert!(after.starts_with("$pbkdf2-sha256$i=1000$"), "{after}");
    assert!(!after.contains("new"));
}

#[test]
fn user_passwd_without_password_stdin_refuses_and_keeps_the_hash() {
    let o = Oauthd::new();
    o.add_user("hank@example.com", "pw");
    let audit_before = o.json(&["audit"]);
    let stderr = expect_exit(&o, &["user", "passwd", "hank@example.com"], 1);
    assert_one_line_error(&stderr, "not a terminal");
    assert_eq!(o.json(&["audit"]), audit_before);
}

#[test]
fn user_commands_refuse_unknown_user() {
    let o = Oauthd::new();
    o.add_user("ivy@example.com", "pw");
    let before = o.json(&["user", "list"]);
    for command in ["show", "disable", "enable", "remove"] {
        let stderr = expect_exit(&o, &["user", command, "nobody@example.com"], 1);
        assert_one_line_error(&stderr, "no user");
    }
    let args = ["user", "passwd", "nobody@example.com", "--password-stdin"];
    expect_output_exit(&o.cli_stdin(&args, "pw\n"), &args, 1);
    assert_eq!(o.json(&["user", "list"]), before);
}

#[test]
fn user_remove_deletes_the_user_and_their_memberships() {
    let o = Oauthd::new();
    o.add_user("jack@example.com", "pw");
    o.add_user("kate@example.com", "pw");
    o.json(&["org", "add", "Acme"]);
    o.json(&["org", "member", "add", "Acme", "jack@example.com"]);
    assert_eq!(
        o.json(&["user", "remove", "JACK@example.com"])["removed"],
        true
    );
    let list = o.json(&["user", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["email"], "kate@example.com");
    expect_exit(
        &o,
        &["org", "member", "remove", "Acme", "jack@example.com"],
        1,
    );
}

#[test]
fn user_changes_are_audited_without_passwords() {
    let o = Oauthd::new();
    o.add_user("lena@example.com", "hunter2-secret");
    o.ok(&["user", "disable", "lena@example.com"]);
    o.ok(&["user", "enable", "lena@example.com"]);
    let out = o.cli_stdin(
        &["user", "passwd", "lena@example.com", "--password-stdin"],
        "other-secret\n",
    );
    assert!(out.status.success());
    o.ok(&["user", "remove", "lena@example.com"]);
    let audit = o.json(&["audit", "--user", "LENA@example.com"]);
    let events: Vec<&str> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(
        events,
        [
            "user_add",
            "user_disable",
            "user_enable",
            "user_passwd",
            "user_remove"
        ]
    );
    assert!(audit
        .as_array()
        .expect("array")
        .iter()
        .all(|e| e["remote_addr"] == "cli"));
    let text = audit.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("other-secret"),
        "{text}"
    );
}
