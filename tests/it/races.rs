//! Races between the admin CLI and a running server, and between requests: concurrent
//! `client update`s lose no change, `user disable` ends every token of the user even one
//! a refresh in flight issued, racing consent approvals store one consent, and id_tokens
//! issued across `key rotate` verify against the JWKS published right after.

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Value};

use crate::flow_support::*;
use crate::support::Oauthd;

/// How many CLI processes race.
const RACERS: usize = 8;

/// Starts `oauthd ARGS` without waiting, so several run at once.
fn spawn_cli(o: &Oauthd, args: &[String]) -> Child {
    let mut command: Command = o.command();
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn oauthd")
}

/// Runs every command line at once; their outputs, in order.
fn race_cli(o: &Oauthd, commands: &[Vec<String>]) -> Vec<Output> {
    let children: Vec<Child> = commands.iter().map(|args| spawn_cli(o, args)).collect();
    children
        .into_iter()
        .map(|child| child.wait_with_output().expect("wait"))
        .collect()
}

/// A refused racer must say it was busy (and then it changed nothing: checked by the
/// caller).
fn assert_busy_refusal(out: &Output, args: &[String]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        stderr.contains("busy"),
        "{args:?}: not a busy error: {stderr}"
    );
}

/// The `client_update` audit events of `client_id`.
fn client_updates(o: &Oauthd, client_id: &str) -> usize {
    o.json(&["audit", "--client", client_id, "--limit", "1000"])
        .as_array()
        .expect("audit array")
        .iter()
        .filter(|e| e["event"] == "client_update")
        .count()
}

fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect()
}

/// Eight `client update` processes on one client, each adding its own redirect URI and
/// origin, while the server runs and issues codes for that client; then eight more, half
/// removing URIs the first round added and half adding grants. Each read-modify-write of
/// the client's lists is one `BEGIN IMMEDIATE` transaction, so no change is lost: every
/// successful process's change is there afterwards (a refused one must say "busy" and
/// leave nothing), and the audit trail has exactly one `client_update` per success.
#[test]
fn racing_client_updates_lose_no_change_and_audit_each_once() {
    let o = Oauthd::new();
    o.add_user(EMAIL, PASSWORD);
    o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve(&[]);
    let audited_before = client_updates(&o, CLIENT_ID);
    let uri = |i: usize| format!("https://app{i}.example/cb");
    let origin = |i: usize| format!("https://app{i}.example");
    let update = |extra: &[String]| -> Vec<String> {
        let mut args: Vec<String> = ["client", "update", CLIENT_ID, "--json"]
            .map(String::from)
            .to_vec();
        args.extend_from_slice(extra);
        args
    };

    let round: Vec<Vec<String>> = (0..RACERS)
        .map(|i| {
            update(&[
                "--add-redirect-uri".into(),
                uri(i),
                "--add-allowed-origin".into(),
                origin(i),
            ])
        })
        .collect();
    // The server keeps writing for this client meanwhile (codes, audit rows).
    let stop = AtomicBool::new(false);
    let outputs = std::thread::scope(|scope| {
        let busy_server = scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                login_code(&server, json!({}));
            }
        });
        let outputs = race_cli(&o, &round);
        stop.store(true, Ordering::Relaxed);
        busy_server.join().expect("login loop");
        outputs
    });
    let shown = o.json(&["client", "show", CLIENT_ID]);
    let (uris, origins) = (
        strings(&shown["redirect_uris"]),
        strings(&shown["allowed_origins"]),
    );
    let mut applied = 0;
    for (i, (out, args)) in outputs.iter().zip(&round).enumerate() {
        let present = (uris.contains(&uri(i)), origins.contains(&origin(i)));
        if out.status.success() {
            applied += 1;
            assert_eq!(present, (true, true), "{args:?} succeeded but: {shown}");
        } else {
            assert_busy_refusal(out, args);
            assert_eq!(present, (false, false), "{args:?} refused but: {shown}");
        }
    }
    assert!(applied > 0, "no update applied: {outputs:?}");
    assert_eq!(
        client_updates(&o, CLIENT_ID) - audited_before,
        applied,
        "one audit event per applied change"
    );

    // Round two: removals of round one's URIs race additions of grants.
    let present: Vec<usize> = (0..RACERS).filter(|i| uris.contains(&uri(*i))).collect();
    let grants = ["device_code", "client_credentials"];
    let mut round: Vec<Vec<String>> = present
        .iter()
        .take(RACERS - grants.len())
        .map(|i| update(&["--remove-redirect-uri".into(), uri(*i)]))
        .collect();
    round.extend(
        grants
            .iter()
            .map(|g| update(&["--add-grant".into(), (*g).into()])),
    );
    let audited_before = client_updates(&o, CLIENT_ID);
    let outputs = race_cli(&o, &round);
    let shown = o.json(&["client", "show", CLIENT_ID]);
    let (uris, grant_types) = (
        strings(&shown["redirect_uris"]),
        strings(&shown["grant_types"]),
    );
    let mut applied = 0;
    for (out, args) in outputs.iter().zip(&round) {
        let value = &args[args.len() - 1];
        let changed = if args.contains(&"--add-grant".to_owned()) {
            grant_types.contains(value)
        } else {
            !uris.contains(value)
        };
        if out.status.success() {
            applied += 1;
            assert!(changed, "{args:?} succeeded but: {shown}");
        } else {
            assert_busy_refusal(out, args);
            assert!(!changed, "{args:?} refused but: {shown}");
        }
    }
    assert_eq!(client_updates(&o, CLIENT_ID) - audited_before, applied);
    // The first URI and the original grants were never touched.
    assert!(uris.contains(&REDIRECT.to_owned()), "{shown}");
    for kept in ["authorization_code", "refresh_token"] {
        assert!(grant_types.contains(&kept.to_owned()), "{shown}");
    }
    // The running server follows the stored client.
    login_code(&server, json!({}));
}

/// Every token a refresher saw: the access tokens, and the refresh tokens it presented or
/// was answered.
#[derive(Default)]
struct Issued {
    access: Vec<String>,
    refresh: Vec<String>,
}

/// Refreshes `start` in a loop (as the public client `pub` when `public`, which rotates,
/// else as the confidential seed client, which keeps its token), using each access token
/// as a bearer, until a refresh is refused or `deadline`. Returns what it saw and whether
/// it was stopped by a refusal (see [`assert_refused`]).
fn refresh_loop(
    s: &Seeded,
    public: bool,
    start: String,
    refreshed: &std::sync::atomic::AtomicUsize,
    deadline: std::time::Instant,
) -> (Issued, bool) {
    let mut issued = Issued::default();
    let mut current = start;
    issued.refresh.push(current.clone());
    while std::time::Instant::now() < deadline {
        let r = if public {
            public_refresh(s, &current, None)
        } else {
            refresh(s, &current)
        };
        if r.status != 200 {
            assert_refused(&r);
            return (issued, true);
        }
        let answer = r.json();
        let access = answer["access_token"].as_str().expect("at").to_owned();
        if let Some(next) = answer["refresh_token"].as_str() {
            if next != current {
                issued.refresh.push(next.to_owned());
                current = next.to_owned();
            }
        }
        // A bearer answered 200 here may still predate the revocation; checked after.
        get_bearer(&s.server, "/api/me", &access);
        issued.access.push(access);
        refreshed.fetch_add(1, Ordering::SeqCst);
    }
    (issued, false)
}

/// A refused refresh: `invalid_grant`, or `invalid_client` once the client is removed.
fn assert_refused(r: &crate::support::Reply) {
    if r.status == 401 {
        assert_oauth_error(r, 401, "invalid_client");
    } else {
        assert_oauth_error(r, 400, "invalid_grant");
    }
}

/// Asserts that none of `issued` works any more: refresh refused, bearer 401,
/// introspection inactive.
fn assert_all_dead(s: &Seeded, rs_secret: &str, public: bool, issued: &Issued, when: &str) {
    let introspect = |token: &str| {
        let r = post_form(
            &s.server,
            "/oauth/introspect",
            &[("token", token)],
            Some(&basic("api", rs_secret)),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["active"].clone()
    };
    for token in &issued.access {
        let me = get_bearer(&s.server, "/api/me", token);
        assert_eq!(
            me.status, 401,
            "{when}: an access token still works: {}",
            me.body
        );
        assert_eq!(introspect(token), false, "{when}: access token active");
    }
    for token in &issued.refresh {
        let r = if public {
            public_refresh(s, token, None)
        } else {
            refresh(s, token)
        };
        assert_refused(&r);
        assert_eq!(introspect(token), false, "{when}: refresh token active");
    }
}

/// The tokens four clients (two keeping, two rotating their refresh token) saw while
/// refreshing in a loop, using each new access token, until `revoke` (run once the loops
/// are well under way) had returned. Once it has, no token of the user works: not those
/// issued before, and not one issued by a refresh that was in flight at that moment (the
/// refresh decides and writes in one transaction, which the revocation's transaction
/// orders before or after it as a whole), and every loop ends on a refusal.
fn revocation_racing_refreshes(
    s: &Seeded,
    rs_secret: &str,
    revoke: impl FnOnce(),
    what: &str,
) -> Vec<(bool, Issued)> {
    let starts: Vec<(bool, String)> = (0..4)
        .map(|i| {
            let public = i % 2 == 1;
            let refresh_token = if public {
                public_exchange(s, None).1
            } else {
                tokens(&exchange(s, &login_code(&s.server, json!({})))).1
            };
            (public, refresh_token)
        })
        .collect();
    let refreshed = std::sync::atomic::AtomicUsize::new(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let results: Vec<(bool, Issued, bool)> = std::thread::scope(|scope| {
        let loops: Vec<_> = starts
            .iter()
            .map(|(public, start)| {
                let refreshed = &refreshed;
                scope.spawn(move || {
                    let (issued, refused) =
                        refresh_loop(s, *public, start.clone(), refreshed, deadline);
                    (*public, issued, refused)
                })
            })
            .collect();
        while refreshed.load(Ordering::SeqCst) < 12 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        revoke();
        loops
            .into_iter()
            .map(|l| l.join().expect("refresh loop"))
            .collect()
    });
    for (public, issued, refused) in &results {
        assert!(
            refused,
            "{what}: a refresh loop ran to its deadline, never refused"
        );
        assert_all_dead(s, rs_secret, *public, issued, what);
    }
    let total: usize = results.iter().map(|(_, i, _)| i.access.len()).sum();
    assert!(total >= 12, "{what}: only {total} refreshes before it");
    results
        .into_iter()
        .map(|(public, issued, _)| (public, issued))
        .collect()
}

/// The seeded server with the rotating public client `pub` and the resource server
/// `api` (which may introspect every token); its secret.
fn refreshing_site() -> (Seeded, String) {
    let s = seeded(&[]);
    s.o.add_public_client("pub", &[PUBLIC_REDIRECT], &[]);
    let rs_secret = add_resource_server(&s.o, "api");
    (s, rs_secret)
}

/// `user disable` racing refreshes leaves no token of the user working. `user enable`
/// lets the user sign in again but brings none of the old tokens back (disabling deleted
/// them); a new sign-in's tokens work.
#[test]
fn user_disable_racing_refreshes_leaves_no_token_of_the_user_working() {
    let (s, rs_secret) = refreshing_site();
    let disable = || {
        s.o.ok(&["user", "disable", EMAIL]);
    };
    let seen = revocation_racing_refreshes(&s, &rs_secret, disable, "after user disable");
    s.o.ok(&["user", "enable", EMAIL]);
    for (public, issued) in &seen {
        assert_all_dead(&s, &rs_secret, *public, issued, "after user enable");
    }
    assert_signs_in_again(&s, PASSWORD);
}

/// `user passwd` and `token revoke --user` racing refreshes: the same guarantee (both
/// revoke every grant of the user in one transaction); the user then signs in again
/// (with the new password) and gets working tokens.
#[test]
fn user_passwd_and_token_revoke_racing_refreshes_leave_no_old_token_working() {
    let (s, rs_secret) = refreshing_site();
    let revoke = || {
        s.o.ok(&["token", "revoke", "--user", EMAIL]);
    };
    revocation_racing_refreshes(&s, &rs_secret, revoke, "after token revoke --user");
    let passwd = || {
        let args = ["user", "passwd", EMAIL, "--password-stdin"];
        crate::support::assert_success(&s.o.cli_stdin(&args, "new password\n"), &args);
    };
    revocation_racing_refreshes(&s, &rs_secret, passwd, "after user passwd");
    assert_signs_in_again(&s, "new password");
}

/// The user signs in with `password` and gets tokens that work.
fn assert_signs_in_again(s: &Seeded, password: &str) {
    let code = login_code(&s.server, json!({ "password": password }));
    let (access, refresh_token) = tokens(&exchange(s, &code));
    assert_eq!(get_bearer(&s.server, "/api/me", &access).status, 200);
    assert_eq!(refresh(s, &refresh_token).status, 200);
}

/// `user remove` racing refreshes: once it has returned, no token of the user works.
#[test]
fn user_remove_racing_refreshes_leaves_no_token_of_the_user_working() {
    let (s, rs_secret) = refreshing_site();
    let remove = || {
        s.o.ok(&["user", "remove", EMAIL]);
    };
    revocation_racing_refreshes(&s, &rs_secret, remove, "after user remove");
}

/// `client remove` (of the confidential and the public client) racing their refresh
/// loops: once it has returned, none of their tokens works, including one a refresh in
/// flight issued (the exchange or refresh writes in one transaction with its facts).
#[test]
fn client_remove_racing_refreshes_leaves_no_token_of_the_client_working() {
    let (s, rs_secret) = refreshing_site();
    let remove = || {
        s.o.ok(&["client", "remove", CLIENT_ID]);
        s.o.ok(&["client", "remove", "pub"]);
    };
    revocation_racing_refreshes(&s, &rs_secret, remove, "after client remove");
}

/// Eight tabs of one browser show the consent screen of one third-party client, each for
/// its own extra scope, and all press Allow at once. Each Allow reads the stored consent,
/// widens it and stores it in one write transaction, so there is one consent row holding
/// every scope allowed (none lost to a racing tab), one `consent_granted` event per
/// Allow, and every tab gets a working code.
#[test]
fn racing_consent_approvals_store_one_consent_with_every_scope() {
    let s = crate::consent::third_party();
    let (first, session) = crate::consent::sign_in_for(&s, "openid%20s0");
    let mut pages = vec![first];
    for i in 1..RACERS {
        pages.push(crate::sessions::authorize(
            &s,
            Some(&session),
            &format!("&scope=openid%20s{i}"),
        ));
    }
    for (i, page) in pages.iter().enumerate() {
        let scope = format!("s{i}");
        crate::consent::assert_consent_page(page, &["openid", &scope], "a tab");
    }
    let barrier = std::sync::Barrier::new(RACERS);
    let answers: Vec<crate::support::Reply> = std::thread::scope(|scope| {
        let tabs: Vec<_> = pages
            .iter()
            .map(|page| {
                let (s, session, barrier) = (&s, &session, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    crate::consent::answer(s, page, session, "allow")
                })
            })
            .collect();
        tabs.into_iter().map(|t| t.join().expect("tab")).collect()
    });
    for answer in &answers {
        crate::sessions::assert_code(&s, answer, "a racing Allow");
    }
    let rows: Vec<String> =
        s.o.sql(&format!(
            "SELECT scope FROM consents WHERE client_id = '{CLIENT_ID}'"
        ))
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(rows.len(), 1, "one consent row: {rows:?}");
    let stored: Vec<&str> = rows[0].split(' ').collect();
    for i in 0..RACERS {
        assert!(stored.contains(&format!("s{i}").as_str()), "{rows:?}");
    }
    let granted =
        s.o.json(&["audit", "--client", CLIENT_ID, "--limit", "1000"])
            .as_array()
            .expect("audit")
            .iter()
            .filter(|e| e["event"] == "consent_granted")
            .count();
    assert_eq!(granted, RACERS, "one consent_granted per Allow");
    // Every scope is consented now: prompt=none for all of them answers with a code.
    let all: Vec<String> = (0..RACERS).map(|i| format!("s{i}")).collect();
    let none = crate::sessions::authorize(
        &s,
        Some(&session),
        &format!("&scope=openid%20{}&prompt=none", all.join("%20")),
    );
    crate::sessions::assert_code(&s, &none, "prompt=none after the racing Allows");
}

/// Two clients sign in and exchange codes for id_tokens in a loop while `key rotate`
/// (signing at once, with a delay, at once again) runs three times (an RSA key takes
/// a second or two to generate). Every id_token verifies against
/// the JWKS fetched right after it was issued (its kid is published), and all of them
/// still verify against the JWKS at the end: no key a live id_token names is dropped.
#[test]
fn id_tokens_issued_across_key_rotations_verify_against_the_jwks_right_after() {
    let s = seeded(&[]);
    let jwks = || {
        crate::support::reply(
            crate::support::agent()
                .get(&s.server.url("/oauth/jwks"))
                .call(),
        )
        .json()
    };
    let issue = || -> String {
        let code = login_code(&s.server, json!({"scope": "openid"}));
        let answer = exchange(&s, &code);
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()["id_token"]
            .as_str()
            .expect("id_token")
            .to_owned()
    };
    // The first key exists before the race (made on first use).
    let before = issue();
    let stop = AtomicBool::new(false);
    let issued: Vec<(String, String)> = std::thread::scope(|scope| {
        let loops: Vec<_> = (0..2)
            .map(|_| {
                let (stop, issue, jwks) = (&stop, &issue, &jwks);
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let token = issue();
                        let (header, _) = crate::oidc::verify_against(&jwks(), &token);
                        seen.push((header["kid"].as_str().expect("kid").to_owned(), token));
                    }
                    seen
                })
            })
            .collect();
        for delay in ["0", "3600", "0"] {
            s.o.ok(&["key", "rotate", "--alg", "RS256", "--signing-delay", delay]);
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        stop.store(true, Ordering::SeqCst);
        loops
            .into_iter()
            .flat_map(|l| l.join().expect("issuer"))
            .collect()
    });
    let kids: std::collections::HashSet<&str> = issued.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        kids.len() >= 2,
        "the rotations took effect while tokens were issued: {} tokens, kids {kids:?}",
        issued.len()
    );
    let last = jwks();
    crate::oidc::verify_against(&last, &before);
    for (_, token) in &issued {
        crate::oidc::verify_against(&last, token);
    }
}

/// On a fresh database the first JWKS requests race to create the first signing key:
/// each may generate one, but the write keeps only the first, so every answer publishes
/// the same single key and `key list` shows one.
#[test]
fn racing_first_jwks_requests_store_one_signing_key() {
    let s = seeded(&[]);
    let barrier = std::sync::Barrier::new(4);
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let (s, barrier) = (&s, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let r = crate::support::reply(
                        crate::support::agent()
                            .get(&s.server.url("/oauth/jwks"))
                            .call(),
                    );
                    assert_eq!(r.status, 200, "{}", r.body);
                    r.json()
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|r| r.join().expect("jwks"))
            .collect()
    });
    let keys = s.o.json(&["key", "list"]);
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
    for answer in &answers {
        assert_eq!(answer["keys"].as_array().map(Vec::len), Some(1), "{answer}");
        assert_eq!(answer["keys"][0]["kid"], keys[0]["kid"], "{answer}");
    }
}

/// A sign-in with the old password re-hashes the user's weaker stored hash (the server
/// runs with more PBKDF2 iterations than the hash has); `user passwd` commits while that
/// new hash is being computed. The re-hash must not overwrite the new password with a
/// hash of the old one: afterwards the new password signs in and the old one does not.
#[test]
fn a_rehash_racing_user_passwd_does_not_bring_the_old_password_back() {
    let o = Oauthd::new();
    o.add_user(EMAIL, PASSWORD); // 1000 iterations
    o.add_client(CLIENT_ID, &[REDIRECT]);
    // Hashing at this count takes a second or more, so the new hash is written long
    // after the sign-in read the old one.
    let server = o.serve_with(&[], &[("OAUTHD_PBKDF2_ITERATIONS", "400000")]);
    let (signed_in, passwd_done) = std::thread::scope(|scope| {
        let old = scope.spawn(|| {
            // Two hashes at this cost may take long on a loaded machine: a patient client.
            let patient: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(std::time::Duration::from_secs(180)))
                .build()
                .into();
            let r = crate::support::reply(
                patient
                    .post(&server.url("/api/oauth_login"))
                    .header("content-type", "application/json")
                    .send(login_body(json!({})).to_string()),
            );
            (r, std::time::Instant::now())
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        let args = ["user", "passwd", EMAIL, "--password-stdin"];
        crate::support::assert_success(&o.cli_stdin(&args, "new password\n"), &args);
        let passwd_done = std::time::Instant::now();
        (old.join().expect("sign-in"), passwd_done)
    });
    let (answer, answered_at) = signed_in;
    assert_eq!(
        answer.status, 200,
        "the old password was right: {}",
        answer.body
    );
    assert!(
        answered_at > passwd_done,
        "the race did not happen: the sign-in (and its re-hash) finished before user passwd"
    );
    // Checked by a server hashing at the tests' usual low cost (quick sign-ins).
    drop(server);
    let server = o.serve(&[]);
    let with = |password: &str| login(&server, &login_body(json!({ "password": password })));
    assert_eq!(
        with("new password").status,
        200,
        "the new password signs in"
    );
    assert_eq!(
        with(PASSWORD).status,
        401,
        "the old password no longer does"
    );
}
