//! The link doctor, `oauthd client log`: each kind of token-endpoint attempt appears with
//! its exact reason (a redirect URI mismatch with both values), nothing secret is stored,
//! and a hammering client keeps at most 200 rows.

use serde_json::{json, Value};

use crate::flow_support::*;
use crate::support::Reply;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE_S256: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const WRONG_SECRET: &str = "wrong-secret-Zq8pXv3";

fn token(s: &Seeded, form: &[(&str, &str)], secret: &str) -> Reply {
    post_form(
        &s.server,
        "/api/oauth_access_token",
        form,
        Some(&basic(CLIENT_ID, secret)),
    )
}

/// Polls `client log --json` until `done` holds (detached writes land a moment later).
fn log_until(s: &Seeded, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let log: Value = s.o.json(&["client", "log", CLIENT_ID]);
        let entries = log.as_array().expect("array").clone();
        if done(&entries) || std::time::Instant::now() > deadline {
            return entries;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn reasons(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or(""))
        .collect()
}

#[test]
fn client_log_shows_each_attempt_with_its_reason_and_no_secret() {
    let s = seeded(&[]);
    // Wrong secret.
    let code = login_code(&s.server, json!({}));
    let exchange_form = |code: &str, redirect: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect.to_owned()),
        ]
    };
    let form = exchange_form(&code, REDIRECT);
    let send = |form: Vec<(&str, String)>, secret: &str| {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        token(&s, &pairs, secret)
    };
    assert_oauth_error(&send(form, WRONG_SECRET), 401, "invalid_client");
    // Redirect URI mismatch, with a long presented value (cut to 200 characters).
    let presented = format!("{REDIRECT}/{}", "x".repeat(300));
    assert_oauth_error(
        &send(exchange_form(&code, &presented), &s.secret),
        400,
        "invalid_grant",
    );
    // Success, then the same code again: a replay.
    tokens(&send(exchange_form(&code, REDIRECT), &s.secret));
    assert_oauth_error(
        &send(exchange_form(&code, REDIRECT), &s.secret),
        400,
        "invalid_grant",
    );
    // PKCE mismatch.
    let pkce_code = login_code(
        &s.server,
        json!({"code_challenge": CHALLENGE_S256, "code_challenge_method": "S256"}),
    );
    let mut form = exchange_form(&pkce_code, REDIRECT);
    form.push(("code_verifier", format!("{VERIFIER}-not")));
    assert_oauth_error(&send(form, &s.secret), 400, "invalid_grant");

    let expected = [
        "pkce_mismatch",
        "code_replayed",
        "success",
        "redirect_uri_mismatch",
        "client_auth_failed",
    ];
    let entries = log_until(&s, |e| e.len() >= expected.len());
    // The refused client authentication is written detached, so only the set is fixed.
    let (mut got, mut want) = (reasons(&entries), expected.to_vec());
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "{entries:#?}");
    let mismatch = entries
        .iter()
        .find(|e| e["reason"] == "redirect_uri_mismatch")
        .expect("mismatch");
    assert_eq!(mismatch["registered_redirect_uri"], REDIRECT);
    let shown = mismatch["presented_redirect_uri"]
        .as_str()
        .expect("presented");
    assert_eq!(shown, &presented[..200]);
    for entry in &entries {
        assert_eq!(entry["endpoint"], "token");
        assert_eq!(entry["grant_type"], "authorization_code");
        let outcome = if entry["reason"] == "success" {
            "ok"
        } else {
            "refused"
        };
        assert_eq!(entry["outcome"], outcome);
    }
    let text = String::from_utf8_lossy(&s.o.cli(&["client", "log", CLIENT_ID]).stdout).into_owned();
    assert!(text.contains("redirect_uri_mismatch"), "{text}");

    // Nothing secret in the files: not the presented secret, the code or the verifier.
    drop(s.server);
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", s.o.db.display());
        bytes.extend(std::fs::read(path).unwrap_or_default());
    }
    for needle in [WRONG_SECRET, code.as_str(), pkce_code.as_str(), VERIFIER] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle:?} is in the database files"
        );
    }
}

#[test]
fn client_log_keeps_at_most_200_attempts_per_client_and_none_for_unknown_clients() {
    let s = seeded(&[]);
    let form = [("grant_type", "refresh_token"), ("refresh_token", "nope")];
    for _ in 0..230 {
        assert_oauth_error(&token(&s, &form, WRONG_SECRET), 401, "invalid_client");
    }
    for _ in 0..5 {
        let r = post_form(
            &s.server,
            "/api/oauth_access_token",
            &form,
            Some(&basic("no-such-client", WRONG_SECRET)),
        );
        assert_oauth_error(&r, 401, "invalid_client");
    }
    assert_oauth_error(&token(&s, &form, &s.secret), 400, "invalid_grant");
    // Detached writes may land in any order: wait for the last synchronous one.
    let entries = log_until(&s, |e| {
        e.len() == 200 && e.iter().any(|f| f["reason"] == "refresh_unknown")
    });
    assert_eq!(entries.len(), 200, "the log must stay bounded per client");
    assert!(reasons(&entries)
        .iter()
        .all(|r| ["client_auth_failed", "refresh_unknown"].contains(r)));
    let limited: Value =
        s.o.json(&["client", "log", CLIENT_ID, "--limit", "3", "--since", "1h"]);
    assert_eq!(limited.as_array().map(Vec::len), Some(3));
    let unknown = s.o.cli(&["client", "log", "no-such-client"]);
    assert!(!unknown.status.success(), "an unknown client is an error");
    assert_eq!(
        s.o.cli(&["client", "log", CLIENT_ID, "--since", "yesterday"])
            .status
            .code(),
        Some(2)
    );
}
