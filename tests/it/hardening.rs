//! Attack, load and fault resistance (SPEC §2, §4, §5): concurrent code exchange, parallel
//! logins without "database is locked", durability across SIGKILL, strict parsing, slow
//! clients, and logins that never stall token validation.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::flow_support::*;
use crate::support::{agent, reply};

#[test]
fn same_code_posted_concurrently_yields_exactly_one_success() {
    let s = Arc::new(seeded(&[]));
    for _round in 0..3 {
        let code = Arc::new(login_code(&s.server, json!({})));
        let barrier = Arc::new(Barrier::new(24));
        let handles: Vec<_> = (0..24)
            .map(|_| {
                let (s, code, barrier) = (Arc::clone(&s), Arc::clone(&code), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    exchange(&s, &code).status
                })
            })
            .collect();
        let statuses: Vec<u16> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 400),
            "{statuses:?}"
        );
    }
}

#[test]
fn hundreds_of_parallel_logins_and_exchanges_complete_without_lock_errors() {
    let s = Arc::new(seeded(&[]));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for _ in 0..16 {
                    let r = login(&s.server, &login_body(json!({})));
                    if r.status != 200 {
                        failures.push(format!("login {}: {}", r.status, r.body));
                        continue;
                    }
                    let code = r.json()["oauthCode"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let t = exchange(&s, &code);
                    if t.status != 200 {
                        failures.push(format!("exchange {}: {}", t.status, t.body));
                        continue;
                    }
                    let access = t.json()["access_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let me = get_bearer(&s.server, "/api/auth/verify", &access);
                    if me.status != 200 {
                        failures.push(format!("verify {}", me.status));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    let logs = s.server.logs();
    assert!(!logs.contains("database is locked"), "{logs}");
    assert!(!logs.contains("storage failure"), "{logs}");
}

#[test]
fn issued_tokens_survive_sigkill_and_the_database_stays_intact() {
    let mut s = seeded(&[]);
    let issued: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server_url = s.server.url("");
    let secret = s.secret.clone();
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (issued, stop, server_url, secret) = (
                Arc::clone(&issued),
                Arc::clone(&stop),
                server_url.clone(),
                secret.clone(),
            );
            std::thread::spawn(move || {
                let agent = agent();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let login = agent
                        .post(&format!("{server_url}/api/oauth_login"))
                        .header("content-type", "application/json")
                        .send(login_body(json!({})).to_string());
                    let Ok(mut login) = login else { break };
                    let Ok(body) = login.body_mut().read_to_string() else {
                        break;
                    };
                    let Some(code) = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["oauthCode"].as_str().map(str::to_owned))
                    else {
                        continue;
                    };
                    let form = format!("grant_type=authorization_code&code={code}");
                    let exchange = agent
                        .post(&format!("{server_url}/api/oauth_access_token"))
                        .header("authorization", &basic(CLIENT_ID, &secret))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .send(form);
                    let Ok(mut exchange) = exchange else { break };
                    if exchange.status() != 200 {
                        continue;
                    }
                    let Ok(body) = exchange.body_mut().read_to_string() else {
                        break;
                    };
                    if let Some(token) = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["access_token"].as_str().map(str::to_owned))
                    {
                        issued.lock().expect("lock").push(token);
                    }
                }
            })
        })
        .collect();
    // Kill the server mid-load, once a good number of tokens were acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    while issued.lock().expect("lock").len() < 60 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    s.server.child.kill().expect("SIGKILL");
    s.server.child.wait().expect("wait");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let tokens = issued.lock().expect("lock").clone();
    assert!(
        tokens.len() >= 60,
        "only {} tokens issued before the deadline",
        tokens.len()
    );
    let check = s.o.cli(&["check", "--json"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&check.stdout).expect("check json");
    assert_eq!(summary["integrity"], crate::support::expected_integrity());
    s.server = s.o.serve(&[]);
    for token in &tokens {
        assert_eq!(
            get_bearer(&s.server, "/api/auth/verify", token).status,
            200,
            "acknowledged token lost after SIGKILL"
        );
    }
}

#[test]
fn malformed_parameters_get_clear_errors() {
    let s = seeded(&[]);
    let auth = basic(CLIENT_ID, &s.secret);
    for (body, why) in [
        (
            b"grant_type=authorization_code&code=%ff%fe".to_vec(),
            "non-UTF-8",
        ),
        (
            b"grant_type=authorization_code&code=a%00b".to_vec(),
            "NUL byte",
        ),
        (
            format!("grant_type=authorization_code&code={}", "x".repeat(5000)).into_bytes(),
            "oversized value",
        ),
    ] {
        let r = reply(
            agent()
                .post(&s.server.url("/oauth/token"))
                .header("authorization", &auth)
                .header("content-type", "application/x-www-form-urlencoded")
                .send(&body[..]),
        );
        assert_oauth_error(&r, 400, "invalid_request");
        assert!(
            !r.json()["error_description"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{why}"
        );
    }
    let r = reply(
        agent()
            .post(&s.server.url("/api/oauth_login"))
            .header("content-type", "application/json")
            .send(r#"{"email":"a@b.c","email":"x@y.z","password":"p","response_type":"code","client_id":"123"}"#),
    );
    assert_eq!(r.status, 400, "duplicate JSON key: {}", r.body);
    let r = reply(
        agent()
            .post(&s.server.url("/api/oauth_login"))
            .header("content-type", "application/json")
            .send(&[b'{', b'"', 0xff, b'"', b':', b'1', b'}'][..]),
    );
    assert_eq!(r.status, 400, "non-UTF-8 JSON");
    let r = reply(
        agent()
            .get(
                &s.server
                    .url("/oauth/authorize?client_id=123&response_type=code&state=%ff"),
            )
            .call(),
    );
    assert_eq!(r.status, 400);
    let r = reply(
        agent()
            .post(&s.server.url("/oauth/token"))
            .header("authorization", &auth)
            .header("content-type", "application/xml")
            .send("<grant/>"),
    );
    assert_oauth_error(&r, 400, "invalid_request");
    // The server is still up and well.
    assert_eq!(
        reply(agent().get(&s.server.url("/healthz")).call()).status,
        200
    );
}

#[test]
fn slow_clients_cannot_hold_connections() {
    use std::io::{Read, Write};
    let s = seeded(&[]);
    let started = Instant::now();
    // Headers that never finish.
    let mut headers_only = std::net::TcpStream::connect(s.server.addr).expect("connect");
    headers_only
        .write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    // A body that never finishes.
    let mut slow_body = std::net::TcpStream::connect(s.server.addr).expect("connect");
    slow_body
        .write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type")
        .expect("write");
    for stream in [&mut headers_only, &mut slow_body] {
        stream
            .set_read_timeout(Some(Duration::from_secs(40)))
            .expect("timeout");
    }
    let mut answer = Vec::new();
    let _ = slow_body.read_to_end(&mut answer);
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let mut rest = Vec::new();
    let n = headers_only.read_to_end(&mut rest).unwrap_or(0);
    assert!(
        n == 0 || String::from_utf8_lossy(&rest).contains("408"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        started.elapsed() < Duration::from_secs(35),
        "connections were held for {:?}",
        started.elapsed()
    );
}

/// Token validation keeps answering while PBKDF2 keeps every core busy. Regression (issue
/// 8 item 17): this failed on a loaded machine when its own storm logins hit the client
/// timeout. It now bounds only what it measures: validation latency, relative to what
/// one login costs on the same machine at the same time. A storm login may take any
/// time or be refused; only the first login (needed for a token) must succeed, with a
/// patient client.
#[test]
fn a_burst_of_logins_does_not_stall_token_validation() {
    let o = crate::support::Oauthd::new();
    // Real-cost hashes: the storm below keeps every core busy with PBKDF2.
    let iterations = "600000";
    let args = [
        "--pbkdf2-iterations",
        iterations,
        "user",
        "add",
        EMAIL,
        "--password-stdin",
    ];
    crate::support::assert_success(&o.cli_stdin(&args, "bbb\n"), &args);
    let secret = o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve_with(&[], &[("OAUTHD_PBKDF2_ITERATIONS", iterations)]);
    let s = Arc::new(Seeded { o, server, secret });
    let patient = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build();
    let patient: ureq::Agent = patient.into();
    let first = reply(
        patient
            .post(&s.server.url("/api/oauth_login"))
            .header("content-type", "application/json")
            .send(login_body(json!({})).to_string()),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let code = first.json()["oauthCode"].as_str().expect("code").to_owned();
    let access = exchange(&s, &code).json()["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let login_times: Arc<std::sync::Mutex<Vec<Duration>>> = Arc::default();
    let stormers: Vec<_> = (0..12)
        .map(|_| {
            let (s, stop, times, patient) = (
                Arc::clone(&s),
                Arc::clone(&stop),
                Arc::clone(&login_times),
                patient.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = patient
                        .post(&s.server.url("/api/oauth_login"))
                        .header("content-type", "application/json")
                        .send(login_body(json!({})).to_string());
                    match answer.map(|r| r.status().as_u16()) {
                        Ok(200) => times.lock().expect("lock").push(started.elapsed()),
                        // Refused (busy or queue full): back off a little, try again.
                        _ => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        })
        .collect();
    // At least 40 validations, and at least one storm login completed, so the login cost
    // is known; a deadline only against a server that stopped answering altogether.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut validations = Vec::new();
    while validations.len() < 40 || login_times.lock().expect("lock").is_empty() {
        assert!(Instant::now() < deadline, "no storm login completed");
        let started = Instant::now();
        assert_eq!(
            get_bearer(&s.server, "/api/auth/verify", &access).status,
            200
        );
        validations.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(25));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for stormer in stormers {
        stormer.join().expect("stormer");
    }
    validations.sort();
    let validation = validations[validations.len() / 2];
    let one_login = *login_times
        .lock()
        .expect("lock")
        .iter()
        .min()
        .expect("a login");
    eprintln!("median validation {validation:?}, fastest storm login {one_login:?}");
    // Validation queued behind the storm would wait about one hash (half on average,
    // never much less); unhindered it takes a tiny fraction of one.
    assert!(
        validation * 4 < one_login,
        "median validation {validation:?} during a storm whose fastest login took {one_login:?}"
    );
}

fn failed_login_from(s: &Seeded, forwarded_for: &str) -> String {
    let r = reply(
        agent()
            .post(&s.server.url("/api/oauth_login"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", forwarded_for)
            .send(login_body(json!({"password": "wrong"})).to_string()),
    );
    assert_eq!(r.status, 401);
    let audit = s.o.json(&["audit", "--user", EMAIL]);
    let last = audit
        .as_array()
        .and_then(|a| a.last())
        .expect("an audit entry");
    assert_eq!(last["event"], "login_failed");
    last["remote_addr"]
        .as_str()
        .expect("remote_addr")
        .to_owned()
}

#[test]
fn forwarded_for_is_ignored_unless_trusted() {
    let s = seeded(&[]);
    assert_eq!(failed_login_from(&s, "198.51.100.7"), "127.0.0.1");
}

#[test]
fn forwarded_for_from_a_local_proxy_names_the_client_when_trusted() {
    let s = seeded(&["--trust-forwarded-for"]);
    assert_eq!(
        failed_login_from(&s, "203.0.113.1, 198.51.100.7"),
        "198.51.100.7"
    );
}
