//! The link doctor, `oauthd client log`: each kind of token-endpoint, authorization and
//! device-page attempt appears with its exact reason (a redirect URI mismatch with both
//! values; a disabled user), nothing secret is stored, and a hammering client keeps at
//! most 200 rows, also when its attempts come at once.

use serde_json::{json, Value};

use crate::flow_support::*;
use crate::support::{agent, reply, Oauthd, Reply};

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
    client_log_until(&s.o, CLIENT_ID, done)
}

/// [`log_until`] for any database and client.
fn client_log_until(o: &Oauthd, client: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let log: Value = o.json(&["client", "log", client]);
        let entries = log.as_array().expect("array").clone();
        if done(&entries) || std::time::Instant::now() > deadline {
            return entries;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn token_entries(entries: &[Value]) -> Vec<Value> {
    let token = entries.iter().filter(|e| e["endpoint"] == "token");
    token.cloned().collect()
}

/// `endpoint reason` of each entry, sorted: detached writes may land in any order.
fn sorted_pairs(entries: &[Value]) -> Vec<String> {
    let mut pairs: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["endpoint"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    pairs.sort_unstable();
    pairs
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
    let entries = log_until(&s, |e| token_entries(e).len() >= expected.len());
    // The two codes issued at the authorization endpoint are logged there.
    let issued = entries.iter().filter(|e| e["endpoint"] == "authorize");
    assert_eq!(
        issued.map(|e| &e["reason"]).collect::<Vec<_>>(),
        ["success"; 2]
    );
    let entries = token_entries(&entries);
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
    let bytes: Vec<u8> = s.o.stored_bytes().into_iter().flat_map(|f| f.1).collect();
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
    // Each attempt trims the log to the newest 200 it sees. Detached writes land in any
    // order, and on PostgreSQL writers commit side by side, each trimming without the
    // rows the others have not committed yet: once they settle, the next attempt's trim
    // sees them all. A log that is not trimmed grows by one per round and never passes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let entries = loop {
        assert_oauth_error(&token(&s, &form, &s.secret), 400, "invalid_grant");
        let entries = log_until(&s, |_| true);
        if entries.len() == 200 || std::time::Instant::now() > deadline {
            break entries;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(entries.len(), 200, "the log must stay bounded per client");
    assert!(entries.iter().any(|e| e["reason"] == "refresh_unknown"));
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

/// One confidential client's attempts at once (good refreshes, unknown refresh tokens,
/// wrong secrets from 8 threads): each writes its log row and trims the client's log, so
/// on PostgreSQL the trims run side by side (they skip the rows another holds instead of
/// deadlocking, which answered 503). Every answer is the attempt's own (200, 400, 401),
/// and once they settle one more attempt's trim brings the log back to at most 200 rows.
/// Without the skipping, about one run in three of this size met a deadlock (a 503); 100
/// attempts a thread take about 1.2 s there.
#[test]
fn client_log_concurrent_attempts_of_one_client_never_answer_5xx() {
    const THREADS: usize = 8;
    const ATTEMPTS: usize = 100;
    let s = seeded(&[]);
    let code = login_code(&s.server, json!({}));
    let (_, refresh_token) = tokens(&exchange(&s, &code));
    let good = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
    ];
    let unknown = [("grant_type", "refresh_token"), ("refresh_token", "nope")];
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let s = &s;
                scope.spawn(move || {
                    (0..ATTEMPTS)
                        .map(|n| match (t + n) % 3 {
                            0 => token(s, &good, &s.secret).status,
                            1 => token(s, &unknown, &s.secret).status,
                            _ => token(s, &good, WRONG_SECRET).status,
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut by_status = std::collections::BTreeMap::new();
    for status in &statuses {
        *by_status.entry(*status).or_insert(0usize) += 1;
    }
    let count = |status: u16| by_status.get(&status).copied().unwrap_or(0);
    let (ok, bad_grant, bad_client) = (count(200), count(400), count(401));
    assert_eq!(
        ok + bad_grant + bad_client,
        THREADS * ATTEMPTS,
        "only 200, 400 and 401, by status: {by_status:?}\n{}",
        s.server
            .logs()
            .lines()
            .filter(|line| line.contains("error"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(ok > 0 && bad_grant > 0 && bad_client > 0, "{statuses:?}");
    let rows = || -> i64 {
        let sql = format!("SELECT count(*) FROM client_attempts WHERE client_id = '{CLIENT_ID}'");
        s.o.sql(&sql).parse().expect("count")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert_oauth_error(&token(&s, &unknown, &s.secret), 400, "invalid_grant");
        let now = rows();
        if now <= 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log stays at {now} rows"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!(
        "{} attempts from {THREADS} threads in {elapsed:?}: {ok}× 200, {bad_grant}× 400, {bad_client}× 401",
        THREADS * ATTEMPTS
    );
}

/// `GET /oauth/authorize` for the seed's client with the given query tail.
fn authorize(s: &Seeded, query: &str) -> Reply {
    let url = s.server.url(&format!(
        "/oauth/authorize?client_id={CLIENT_ID}&state=st8{query}"
    ));
    reply(agent().get(&url).call())
}

const SEED_REDIRECT: &str = "&redirect_uri=http%3A%2F%2Facme.com";
const CODE: &str = "&response_type=code";

#[test]
fn client_log_shows_authorization_attempts_and_disabled_users() {
    let s = seeded(&[]);
    let evil = "https://evil.example/cb";
    // Not the registered redirect URI: an error page, logged with both values.
    let r = authorize(
        &s,
        "&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // An unknown client has no log; nothing is recorded for it.
    let r = reply(
        agent()
            .get(
                &s.server
                    .url("/oauth/authorize?response_type=code&client_id=nobody"),
            )
            .call(),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // Refusals reported to the registered redirect URI.
    let challenge = format!("&code_challenge={CHALLENGE_S256}");
    for (query, error) in [
        (
            "&response_type=token".to_owned(),
            "unsupported_response_type",
        ),
        (
            format!("{CODE}&code_challenge_method=S256"),
            "invalid_request",
        ),
        (format!("{CODE}&code_challenge=short"), "invalid_request"),
        (
            format!("{CODE}{challenge}&code_challenge_method=S512"),
            "invalid_request",
        ),
        (format!("{CODE}&prompt=none"), "login_required"),
    ] {
        let query = format!("{SEED_REDIRECT}{query}");
        let r = authorize(&s, &query);
        assert_eq!(r.status, 302, "{query}: {}", r.body);
        let location = r.header("location").unwrap_or_default();
        assert!(
            location.contains(&format!("error={error}")),
            "{query}: {location}"
        );
    }
    // Success: a code issued, before the user is disabled; then one more code.
    let first = login_code(&s.server, json!({}));
    let (_, refresh_token) = tokens(&exchange(&s, &first));
    let second = login_code(&s.server, json!({}));
    s.o.ok(&["user", "disable", EMAIL]);
    // The disabled user's code, refresh token and sign-in.
    assert_oauth_error(&exchange(&s, &second), 400, "invalid_grant");
    assert_oauth_error(&refresh(&s, &refresh_token), 400, "invalid_grant");
    assert_ne!(login(&s.server, &login_body(json!({}))).status, 200);

    let mut expected = vec![
        "authorize login_required",
        "authorize pkce_challenge_invalid",
        "authorize pkce_method_invalid",
        "authorize pkce_method_without_challenge",
        "authorize redirect_uri_not_registered",
        "authorize response_type_unsupported",
        "authorize success",
        "authorize success",
        "authorize user_disabled",
        "token success",
        "token user_disabled",
        "token user_disabled",
    ];
    expected.sort_unstable();
    let entries = log_until(&s, |e| e.len() >= expected.len());
    assert_eq!(sorted_pairs(&entries), expected, "{entries:#?}");
    let mismatch = entries
        .iter()
        .find(|e| e["reason"] == "redirect_uri_not_registered")
        .expect("mismatch");
    assert_eq!(mismatch["registered_redirect_uri"], REDIRECT);
    assert_eq!(mismatch["presented_redirect_uri"], evil);
    let grants: Vec<&str> = entries
        .iter()
        .filter(|e| e["reason"] == "user_disabled")
        .map(|e| e["grant_type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(grants.len(), 3, "{entries:#?}");
    for grant in ["authorization_code", "refresh_token"] {
        assert!(grants.contains(&grant), "{grants:?}");
    }
    let text = String::from_utf8_lossy(&s.o.cli(&["client", "log", CLIENT_ID]).stdout).into_owned();
    assert!(
        text.contains(&format!("authorize authorization_code refused redirect_uri_not_registered registered=\"{REDIRECT}\" presented=\"{evil}\"")),
        "{text}"
    );

    // Neither code nor the refresh token is in the files.
    drop(s.server);
    let bytes: Vec<u8> = s.o.stored_bytes().into_iter().flat_map(|f| f.1).collect();
    for needle in [first.as_str(), second.as_str(), refresh_token.as_str()] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle:?} is in the database files"
        );
    }
}

#[test]
fn client_log_shows_denied_consent_and_consent_required() {
    let s = crate::consent::third_party();
    let (page, session) = crate::consent::sign_in_for(&s, "openid");
    let denied = crate::consent::answer(&s, &page, &session, "deny");
    assert_eq!(denied.status, 302, "{}", denied.body);
    let none = crate::sessions::authorize(&s, Some(&session), "&scope=openid&prompt=none");
    assert_eq!(none.status, 302, "{}", none.body);
    let (page, session) = crate::consent::sign_in_for(&s, "openid");
    let allowed = crate::consent::answer(&s, &page, &session, "allow");
    assert_eq!(allowed.status, 302, "{}", allowed.body);
    let expected = [
        "authorize consent_denied",
        "authorize consent_required",
        "authorize success",
    ];
    let entries = log_until(&s, |e| e.len() >= expected.len());
    assert_eq!(sorted_pairs(&entries), expected, "{entries:#?}");
}

#[test]
fn client_log_shows_the_device_page_answers_and_a_disabled_user() {
    use crate::device_flow::{answer, device_server, start};
    let (o, server) = device_server(&[]);
    for action in ["deny", "approve"] {
        let started = start(&server, "read");
        let typed = started["user_code"].as_str().expect("user_code");
        assert_eq!(answer(&server, typed, action).status, 200);
    }
    let started = start(&server, "read");
    let typed = started["user_code"].as_str().expect("user_code");
    o.ok(&["user", "disable", crate::device_flow::EMAIL]);
    assert_ne!(answer(&server, typed, "approve").status, 200);
    let expected = [
        "device device_denied",
        "device success",
        "device user_disabled",
    ];
    let entries = client_log_until(&o, "tv", |e| e.len() >= expected.len());
    assert_eq!(sorted_pairs(&entries), expected, "{entries:#?}");
    assert!(
        entries.iter().all(|e| e["grant_type"] == "device_code"),
        "{entries:#?}"
    );
}
