//! The admin verbs that change or inspect what exists: `org show`/`org remove`,
//! `client update`, `brand update`, `user update`, `brand remove --force`; each change is
//! audited, and bad values are usage errors (exit 2) that change nothing.

use crate::support::{assert_one_line_error, expect_exit, seed_grant, Oauthd};

/// The newest audit entry.
fn last_audit(o: &Oauthd) -> serde_json::Value {
    o.json(&["audit", "--limit", "1"])[0].clone()
}

#[test]
fn org_show_lists_members_and_org_remove_keeps_the_users() {
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    o.add_user("bob@example.com", "pw");
    o.ok(&["org", "add", "Acme"]);
    o.ok(&[
        "org",
        "member",
        "add",
        "Acme",
        "ann@example.com",
        "--role",
        "admin",
    ]);
    o.ok(&["org", "member", "add", "acme", "bob@example.com"]);
    let shown = o.json(&["org", "show", "Acme"]);
    assert_eq!(shown["name"], "Acme");
    let members = shown["members"].as_array().expect("members");
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["email"], "ann@example.com");
    assert_eq!(members[0]["role"], "admin");
    assert_eq!(members[1]["role"], "member");
    let text = o.ok(&["org", "show", "Acme"]);
    assert!(
        text.contains("ann@example.com") && text.contains("ROLE"),
        "{text}"
    );

    assert_eq!(o.json(&["org", "remove", "Acme"])["removed"], true);
    let entry = last_audit(&o);
    assert_eq!(entry["event"], "org_remove");
    assert_eq!(entry["detail"], "Acme");
    assert_eq!(o.json(&["org", "list"]), serde_json::json!([]));
    assert_eq!(o.json(&["user", "list"]).as_array().map(Vec::len), Some(2));
    assert_one_line_error(
        &expect_exit(&o, &["org", "show", "Acme"], 1),
        "no organization",
    );
    assert_one_line_error(
        &expect_exit(&o, &["org", "remove", "Acme"], 1),
        "no organization",
    );
}

#[test]
fn client_update_changes_name_uris_brand_and_flags_with_one_audit_entry() {
    let o = Oauthd::new();
    o.add_client("app", &["https://a.example/cb", "https://b.example/cb"]);
    o.ok(&["brand", "add", "login.example.com", "--name", "Login"]);
    let client = o.json(&[
        "client",
        "update",
        "app",
        "--name",
        "Renamed",
        "--remove-redirect-uri",
        "https://a.example/cb",
        "--add-redirect-uri",
        "https://c.example/cb",
        "--brand",
        "LOGIN.example.com",
        "--require-pkce",
        "true",
        "--introspect-any",
        "true",
    ]);
    assert_eq!(client["name"], "Renamed");
    assert_eq!(
        client["redirect_uris"],
        serde_json::json!(["https://b.example/cb", "https://c.example/cb"])
    );
    assert_eq!(client["brand"], "login.example.com");
    assert_eq!(client["require_pkce"], true);
    assert_eq!(client["introspect_any"], true);
    let entry = last_audit(&o);
    assert_eq!(entry["event"], "client_update");
    assert_eq!(entry["client_id"], "app");
    assert_eq!(
        entry["detail"],
        "changed name,redirect_uris,brand,require_pkce,introspect_any"
    );

    let client = o.json(&[
        "client",
        "update",
        "app",
        "--no-brand",
        "--require-pkce",
        "false",
    ]);
    assert_eq!(client["brand"], serde_json::Value::Null);
    assert_eq!(client["require_pkce"], false);
    assert_eq!(client["name"], "Renamed", "untouched fields stay");
}

#[test]
fn client_update_refusals_change_nothing() {
    let o = Oauthd::new();
    o.add_client("app", &["https://a.example/cb"]);
    o.add_public_client("pub", &["https://p.example/cb"], &[]);
    let before = o.json(&["client", "list"]);
    let audit_before = o.json(&["audit"]);
    for (args, code, says) in [
        (&["client", "update", "app"][..], 2, "required"),
        (
            &[
                "client",
                "update",
                "app",
                "--add-redirect-uri",
                "relative/cb",
            ],
            2,
            "relative/cb",
        ),
        (
            &["client", "update", "app", "--require-pkce", "maybe"],
            2,
            "maybe",
        ),
        (
            &["client", "update", "app", "--brand", "x", "--no-brand"],
            2,
            "cannot be used",
        ),
        (
            &["client", "update", "app", "--name", " "],
            2,
            "must not be empty",
        ),
        (
            &[
                "client",
                "update",
                "app",
                "--remove-redirect-uri",
                "https://a.example/cb",
            ],
            1,
            "at least one redirect URI",
        ),
        (
            &[
                "client",
                "update",
                "app",
                "--remove-redirect-uri",
                "https://z.example/cb",
            ],
            1,
            "is not a redirect URI",
        ),
        (
            &["client", "update", "app", "--brand", "nobrand.example"],
            1,
            "no brand",
        ),
        (
            &["client", "update", "pub", "--introspect-any", "true"],
            1,
            "public",
        ),
        (
            &["client", "update", "missing", "--name", "X"],
            1,
            "no client",
        ),
    ] {
        let stderr = expect_exit(&o, args, code);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        if code == 1 {
            assert_one_line_error(&stderr, says);
        }
    }
    assert_eq!(o.json(&["client", "list"]), before);
    assert_eq!(o.json(&["audit"]), audit_before);
}

#[test]
fn brand_update_and_brand_remove_refused_while_clients_use_it() {
    let o = Oauthd::new();
    o.ok(&[
        "brand",
        "add",
        "b.example",
        "--name",
        "B",
        "--color",
        "#000",
    ]);
    let brand = o.json(&[
        "brand",
        "update",
        "b.example",
        "--name",
        "Bee",
        "--color",
        "#AbC",
    ]);
    assert_eq!(brand["name"], "Bee");
    assert_eq!(brand["color"], "#aabbcc");
    assert_eq!(last_audit(&o)["event"], "brand_update");
    let brand = o.json(&["brand", "update", "b.example", "--no-color"]);
    assert_eq!(brand["color"], serde_json::Value::Null);
    assert_eq!(brand["name"], "Bee");
    expect_exit(&o, &["brand", "update", "b.example", "--color", "red"], 2);
    expect_exit(&o, &["brand", "update", "b.example"], 2);
    assert_one_line_error(
        &expect_exit(&o, &["brand", "update", "none.example", "--name", "X"], 1),
        "no brand",
    );

    for id in ["one", "two"] {
        o.json(&[
            "client",
            "add",
            "--name",
            "C",
            "--id",
            id,
            "--redirect-uri",
            "https://c.example/cb",
            "--brand",
            "b.example",
        ]);
    }
    let stderr = expect_exit(&o, &["brand", "remove", "b.example"], 1);
    assert_one_line_error(&stderr, "used by client(s) one, two");
    assert_eq!(o.json(&["brand", "list"]).as_array().map(Vec::len), Some(1));
    let removed = o.json(&["brand", "remove", "b.example", "--force"]);
    assert_eq!(
        removed["clients_unbranded"],
        serde_json::json!(["one", "two"])
    );
    let entry = last_audit(&o);
    assert_eq!(entry["event"], "brand_remove");
    assert_eq!(entry["detail"], "b.example (forced; used by one, two)");
    assert_eq!(
        o.json(&["client", "show", "one"])["brand"],
        serde_json::Value::Null
    );
}

#[test]
fn user_update_changes_email_and_name_and_keeps_tokens() {
    let o = Oauthd::new();
    let id = o.add_user("ann@example.com", "pw")["id"].clone();
    o.add_user("bob@example.com", "pw");
    o.add_client("app", &["https://a.example/cb"]);
    seed_grant(&o, "ann@example.com", "app");
    let user = o.json(&[
        "user",
        "update",
        "ann@example.com",
        "--email",
        "Anne@Example.org",
        "--name",
        "Anne",
    ]);
    assert_eq!(user["id"], id);
    assert_eq!(user["email"], "Anne@Example.org");
    assert_eq!(user["name"], "Anne");
    let entry = last_audit(&o);
    assert_eq!(entry["event"], "user_update");
    assert_eq!(entry["user_email"], "Anne@Example.org");
    assert_eq!(entry["detail"], "changed email,name (was ann@example.com)");
    assert_eq!(crate::support::live_tokens(&o), (1, 1), "tokens stay valid");
    // The folded form of its own address is not a conflict.
    let user = o.json(&["user", "update", "anne@example.org", "--no-name"]);
    assert_eq!(user["name"], serde_json::Value::Null);

    assert_one_line_error(
        &expect_exit(
            &o,
            &[
                "user",
                "update",
                "anne@example.org",
                "--email",
                "BOB@example.com",
            ],
            1,
        ),
        "already exists",
    );
    expect_exit(
        &o,
        &[
            "user",
            "update",
            "anne@example.org",
            "--email",
            "not-an-email",
        ],
        2,
    );
    expect_exit(&o, &["user", "update", "anne@example.org"], 2);
    assert_one_line_error(
        &expect_exit(
            &o,
            &["user", "update", "nobody@example.com", "--name", "X"],
            1,
        ),
        "no user",
    );
    assert_eq!(o.json(&["user", "show", "anne@example.org"])["id"], id);
}

#[test]
fn bad_values_are_usage_errors_everywhere() {
    let o = Oauthd::new();
    for args in [
        &["audit", "--since", "yesterday"][..],
        &["serve", "--issuer", "not-a-url"],
        &["user", "add", "not-an-email", "--password-stdin"],
        &["brand", "add", "https://x.example", "--name", "X"],
        &["brand", "add", "x.example", "--name", "X", "--color", "red"],
        &[
            "client",
            "add",
            "--name",
            "X",
            "--redirect-uri",
            "/relative",
        ],
        &[
            "client",
            "add",
            "--name",
            "",
            "--redirect-uri",
            "https://x.example/",
        ],
        &["org", "add", " "],
    ] {
        let stderr = expect_exit(&o, args, 2);
        assert!(stderr.contains("invalid value"), "{args:?}: {stderr}");
    }
    assert!(!o.db.exists(), "a usage error creates no database");
}
