//! `oauthd org …`: organizations and memberships, named by id or name.

use crate::support::{assert_one_line_error, expect_exit, Oauthd};

fn membership_roles(o: &Oauthd) -> Vec<(String, String)> {
    o.sql("SELECT u.email, m.role FROM memberships m JOIN users u ON u.id = m.user_id ORDER BY u.email")
        .lines()
        .map(|line| {
            let (email, role) = line.split_once('|').expect("two columns");
            (email.to_owned(), role.to_owned())
        })
        .collect()
}

#[test]
fn org_add_json_and_list() {
    let o = Oauthd::new();
    let org = o.json(&["org", "add", "Acme"]);
    assert_eq!(org.as_object().map(|m| m.len()), Some(3), "{org}");
    assert_eq!(org["name"], "Acme");
    assert!(org["id"].as_str().is_some() && org["created_at"].as_str().is_some());
    assert_eq!(o.json(&["org", "list"]), serde_json::json!([org]));
    assert!(o.ok(&["org", "list"]).contains("Acme"));
}

#[test]
fn org_add_refuses_duplicate_name() {
    let o = Oauthd::new();
    o.json(&["org", "add", "Acme"]);
    let stderr = expect_exit(&o, &["org", "add", "ACME"], 1);
    assert_one_line_error(&stderr, "already exists");
    assert_eq!(o.json(&["org", "list"]).as_array().map(Vec::len), Some(1));
}

#[test]
fn org_member_add_by_name_or_id_and_change_role() {
    let o = Oauthd::new();
    let org = o.json(&["org", "add", "Acme"]);
    o.add_user("ann@example.com", "pw");
    o.add_user("ben@example.com", "pw");
    let added = o.json(&[
        "org",
        "member",
        "add",
        "acme",
        "ann@example.com",
        "--role",
        "admin",
    ]);
    assert_eq!(added["role"], "admin");
    let id = org["id"].as_str().expect("id");
    o.ok(&["org", "member", "add", id, "ben@example.com"]);
    assert_eq!(
        membership_roles(&o),
        [
            ("ann@example.com".into(), "admin".into()),
            ("ben@example.com".into(), "member".into())
        ]
    );
    o.ok(&[
        "org",
        "member",
        "add",
        "Acme",
        "BEN@example.com",
        "--role",
        "viewer",
    ]);
    assert_eq!(membership_roles(&o)[1].1, "viewer");
}

#[test]
fn org_member_add_refuses_unknown_org_or_user() {
    let o = Oauthd::new();
    o.json(&["org", "add", "Acme"]);
    o.add_user("ann@example.com", "pw");
    let stderr = expect_exit(&o, &["org", "member", "add", "Nope", "ann@example.com"], 1);
    assert_one_line_error(&stderr, "no organization");
    let stderr = expect_exit(
        &o,
        &["org", "member", "add", "Acme", "nobody@example.com"],
        1,
    );
    assert_one_line_error(&stderr, "no user");
    assert!(membership_roles(&o).is_empty());
}

#[test]
fn org_member_add_unknown_role_is_a_usage_error() {
    let o = Oauthd::new();
    o.json(&["org", "add", "Acme"]);
    o.add_user("ann@example.com", "pw");
    expect_exit(
        &o,
        &[
            "org",
            "member",
            "add",
            "Acme",
            "ann@example.com",
            "--role",
            "owner",
        ],
        2,
    );
    assert!(membership_roles(&o).is_empty());
}

#[test]
fn org_member_remove_removes_and_refuses_non_members() {
    let o = Oauthd::new();
    o.json(&["org", "add", "Acme"]);
    o.add_user("ann@example.com", "pw");
    o.ok(&["org", "member", "add", "Acme", "ann@example.com"]);
    assert_eq!(
        o.json(&["org", "member", "remove", "Acme", "ann@example.com"])["removed"],
        true
    );
    assert!(membership_roles(&o).is_empty());
    let stderr = expect_exit(
        &o,
        &["org", "member", "remove", "Acme", "ann@example.com"],
        1,
    );
    assert_one_line_error(&stderr, "not a member");
    let events: Vec<String> = o
        .json(&["audit", "--user", "ann@example.com"])
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(events, ["user_add", "org_member_add", "org_member_remove"]);
}
