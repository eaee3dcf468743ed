//! The audit trail as recorded by a running server (SPEC §5): logins (ok and failed),
//! token issue, refresh, revocation and admin changes, each with user, client and remote
//! address, and filterable with `oauthd audit`. No secret reaches the trail, the server's
//! log, or the database file (SPEC §2: secrets are stored only as hashes).

use serde_json::{json, Value};

use crate::flow_support::*;
use crate::support::Oauthd;

const USER: &str = "auditee@example.com";
/// Long and unique, so finding it anywhere means it leaked.
const USER_PASSWORD: &str = "Pa55-unique-audit-secret-7f3e";
const WRONG_PASSWORD: &str = "Wrong-guess-unique-2b9c41";

fn events(entries: &Value) -> Vec<&str> {
    entries
        .as_array()
        .expect("audit array")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect()
}

fn entry<'a>(entries: &'a Value, event: &str) -> &'a Value {
    entries
        .as_array()
        .expect("audit array")
        .iter()
        .find(|e| e["event"] == event)
        .unwrap_or_else(|| panic!("no {event} in {entries}"))
}

#[test]
fn server_events_are_audited_with_who_and_where_and_no_secrets() {
    let o = Oauthd::new();
    o.add_user(USER, USER_PASSWORD);
    let secret = o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve(&[]);
    let s = Seeded { o, server, secret };

    let failed = login(
        &s.server,
        &login_body(json!({"email": USER, "password": WRONG_PASSWORD})),
    );
    assert_eq!(failed.status, 401, "{}", failed.body);
    let code = login_code(&s.server, json!({"email": USER, "password": USER_PASSWORD}));
    let (access, refresh_token) = tokens(&exchange(&s, &code));
    let (access2, refresh2) = tokens(&refresh(&s, &refresh_token));
    let revoked = post_form(
        &s.server,
        "/oauth/revoke",
        &[("token", &refresh2), ("token_type_hint", "refresh_token")],
        Some(&basic(CLIENT_ID, &s.secret)),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(
        get_bearer(&s.server, "/api/auth/verify", &access2).status,
        401
    );
    s.o.ok(&["org", "add", "Audit Org"]);
    s.o.ok(&[
        "org",
        "member",
        "add",
        "Audit Org",
        USER,
        "--role",
        "member",
    ]);

    let all = s.o.json(&["audit"]);
    let names = events(&all);
    for expected in [
        "login_failed",
        "login_ok",
        "token_issue",
        "token_refresh",
        "token_revoke",
        "org_member_add",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for server_event in [
        "login_failed",
        "login_ok",
        "token_issue",
        "token_refresh",
        "token_revoke",
    ] {
        let e = entry(&all, server_event);
        assert_eq!(e["user_email"], USER, "{e}");
        assert_eq!(e["client_id"], CLIENT_ID, "{e}");
        assert_eq!(e["remote_addr"], "127.0.0.1", "{e}");
        assert!(e["at"].as_str().is_some_and(|at| !at.is_empty()), "{e}");
    }
    let admin = entry(&all, "org_member_add");
    assert_eq!(admin["user_email"], USER, "{admin}");
    assert_eq!(admin["remote_addr"], "cli", "{admin}");

    // Filters: by user (any case), by client, by time.
    let by_user = s.o.json(&["audit", "--user", &USER.to_uppercase()]);
    assert!(events(&by_user).contains(&"org_member_add"));
    assert!(by_user
        .as_array()
        .expect("array")
        .iter()
        .all(|e| e["user_email"].as_str().map(str::to_lowercase).as_deref() == Some(USER)));
    let by_client = s.o.json(&["audit", "--client", CLIENT_ID]);
    for expected in [
        "login_failed",
        "login_ok",
        "token_issue",
        "token_refresh",
        "token_revoke",
    ] {
        assert!(
            events(&by_client).contains(&expected),
            "{expected}: {by_client}"
        );
    }
    assert!(by_client
        .as_array()
        .expect("array")
        .iter()
        .all(|e| e["client_id"] == CLIENT_ID));
    let recent = s.o.json(&["audit", "--since", "1h"]);
    assert_eq!(recent, all, "everything happened within the hour");
    let text = s.o.ok(&["audit"]);

    // No secret anywhere: audit output, server log, database file and its WAL.
    let secrets = [
        ("password", USER_PASSWORD),
        ("attempted password", WRONG_PASSWORD),
        ("client secret", s.secret.as_str()),
        ("authorization code", code.as_str()),
        ("access token", access.as_str()),
        ("refreshed access token", access2.as_str()),
        ("refresh token", refresh_token.as_str()),
        ("rotated refresh token", refresh2.as_str()),
    ];
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        ("audit --json".into(), all.to_string().into_bytes()),
        ("audit --user".into(), by_user.to_string().into_bytes()),
        ("audit --client".into(), by_client.to_string().into_bytes()),
        ("audit (text)".into(), text.into_bytes()),
        ("server log".into(), s.server.logs().into_bytes()),
    ];
    let stored = s.o.stored_bytes();
    let wal_seen = stored
        .iter()
        .any(|(path, bytes)| path.ends_with("-wal") && !bytes.is_empty());
    assert!(
        wal_seen || s.o.pg.is_some(),
        "the live server's WAL file should be there to search"
    );
    haystacks.extend(stored);
    for (what, bytes) in &haystacks {
        for (name, secret) in secrets {
            assert!(!secret.is_empty());
            assert!(
                !contains(bytes, secret.as_bytes()),
                "the {name} appears in {what}"
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Regression: failed logins wrote the submitted email verbatim, so a password typed into
/// the email field was stored. An unknown email is now kept only as a short keyed hash.
#[test]
fn a_password_typed_as_the_email_is_stored_only_as_a_pseudonym() {
    const TYPED_PASSWORD: &str = "Typed-Into-Email-Field-5e81c0";
    const OTHER_TYPO: &str = "another-unknown@example.org";
    let o = Oauthd::new();
    o.add_user(USER, USER_PASSWORD);
    o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve(&[]);
    for email in [TYPED_PASSWORD, TYPED_PASSWORD, OTHER_TYPO] {
        let reply = login(
            &server,
            &login_body(json!({"email": email, "password": "whatever-1"})),
        );
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let wrong_password = login(
        &server,
        &login_body(json!({"email": USER.to_uppercase(), "password": WRONG_PASSWORD})),
    );
    assert_eq!(wrong_password.status, 401);

    let all = o.json(&["audit"]);
    let failures: Vec<&Value> = all
        .as_array()
        .expect("audit array")
        .iter()
        .filter(|e| e["event"] == "login_failed")
        .collect();
    assert_eq!(failures.len(), 4, "{all}");
    let pseudonym = |e: &Value| {
        assert!(e["user_email"].is_null(), "{e}");
        let detail = e["detail"].as_str().expect("detail");
        let (_, tag) = detail
            .split_once("unknown email ")
            .unwrap_or_else(|| panic!("no pseudonym in {detail:?}"));
        assert_eq!(tag.len(), 12, "{detail:?}");
        assert!(tag.chars().all(|c| c.is_ascii_hexdigit()), "{detail:?}");
        tag.to_owned()
    };
    assert_eq!(
        pseudonym(failures[0]),
        pseudonym(failures[1]),
        "repeats correlate"
    );
    assert_ne!(pseudonym(failures[0]), pseudonym(failures[2]));
    // A known account is named by its stored email, not by what was typed.
    assert_eq!(failures[3]["user_email"], USER, "{}", failures[3]);

    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        ("audit --json".into(), all.to_string().into_bytes()),
        ("audit (text)".into(), o.ok(&["audit"]).into_bytes()),
        ("server log".into(), server.logs().into_bytes()),
    ];
    haystacks.extend(o.stored_bytes());
    for (what, bytes) in &haystacks {
        for typed in [TYPED_PASSWORD, OTHER_TYPO] {
            assert!(
                !contains(bytes, typed.as_bytes()),
                "{typed:?} appears in {what}"
            );
        }
    }
}
