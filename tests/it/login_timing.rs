//! No user enumeration by timing (issue 8 item 5): an unknown email costs what a known
//! one costs, whatever iteration counts the stored hashes were made with.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::flow_support::*;
use crate::support::{agent, assert_success, Oauthd, Server};

/// Stored hashes stronger and weaker than the server's setting.
const SETTING: &str = "20000";
const STRONGER: &str = "100000";
const WEAKER: &str = "2000";
/// Accounts per kind; each gets `ROUNDS` wrong passwords, below the lockout of 5.
const ACCOUNTS: usize = 6;
const ROUNDS: usize = 2;

/// What a wrong-password login for `email` costs: the server's CPU time (robust on a
/// loaded machine, where waiting for a core is not work) and the wall-clock time a client
/// sees. From a fresh client address each time, so the per-IP throttle never adds to it;
/// every kind of account gets the same sequence of per-account failure delays, since each
/// is tried the same number of times.
fn wrong_login_cost(server: &Server, email: &str, from: usize) -> (Duration, Duration) {
    let body = login_body(json!({ "email": email, "password": "not the password" }));
    let cpu_before = server_cpu_time(server);
    let started = Instant::now();
    let status = agent()
        .post(&server.url("/api/oauth_login"))
        .header("content-type", "application/json")
        .header(
            "x-forwarded-for",
            &format!("198.51.{}.{}", from / 250, from % 250 + 1),
        )
        .send(body.to_string())
        .expect("login")
        .status()
        .as_u16();
    let wall = started.elapsed();
    assert_eq!(status, 401, "{email}");
    (server_cpu_time(server) - cpu_before, wall)
}

/// The server process's CPU time so far (user + system), from `/proc/PID/stat`.
fn server_cpu_time(server: &Server) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.child.id()))
        .expect("/proc/PID/stat");
    let after_name = stat.rsplit_once(')').expect("stat format").1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), utime and stime, in clock ticks (100 per second).
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Regression: with stored hashes at another count than `--pbkdf2-iterations`, an
/// existing email took ~103 ms and an unknown one ~178 ms. Each known login is paired with
/// the unknown login beside it (in alternating order); the median of the pairs' ratios of
/// server CPU time must lie within ±20 %. CPU time, not the wall clock, because on a
/// loaded machine the wall clock mostly measures waiting for a core; the wall-clock
/// ratios are printed too.
#[test]
fn unknown_emails_cost_what_known_ones_cost_whatever_their_iterations() {
    let o = Oauthd::new();
    let account = |kind: &str, n: usize| format!("{kind}{n}@example.com");
    for (kind, iterations) in [("stronger", STRONGER), ("weaker", WEAKER)] {
        for n in 0..ACCOUNTS {
            let email = account(kind, n);
            let args = [
                "--pbkdf2-iterations",
                iterations,
                "user",
                "add",
                &email,
                "--password-stdin",
            ];
            assert_success(&o.cli_stdin(&args, "the password\n"), &args);
        }
    }
    o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve_with(
        &["--trust-forwarded-for"],
        &[("OAUTHD_PBKDF2_ITERATIONS", SETTING)],
    );
    let mut from = 0;
    let mut next_address = || {
        from += 1;
        from
    };
    let ratio = |known: Duration, unknown: Duration| known.as_secs_f64() / unknown.as_secs_f64();
    let (mut cpu, mut wall) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for round in 0..ROUNDS {
        for n in 0..ACCOUNTS {
            let mut cost =
                |kind: &str| wrong_login_cost(&server, &account(kind, n), next_address());
            let (s, u, w) = if (round + n) % 2 == 0 {
                (cost("stronger"), cost("unknown"), cost("weaker"))
            } else {
                let w = cost("weaker");
                let u = cost("unknown");
                (cost("stronger"), u, w)
            };
            for (kind, known) in [s, w].into_iter().enumerate() {
                cpu[kind].push(ratio(known.0, u.0));
                wall[kind].push(ratio(known.1, u.1));
            }
        }
    }
    let [stronger, weaker] = cpu.map(median);
    let [stronger_wall, weaker_wall] = wall.map(median);
    eprintln!(
        "known/unknown login cost: stronger {stronger:.3} (wall {stronger_wall:.3}), \
         weaker {weaker:.3} (wall {weaker_wall:.3})"
    );
    assert!(
        (0.8..=1.2).contains(&stronger) && (0.8..=1.2).contains(&weaker),
        "known/unknown login CPU time: stronger hash {stronger:.2}, weaker hash {weaker:.2}"
    );
}
