//! Device polls answered from memory: after one poll has read a pending code, the next
//! polls are answered without reading it again. That shortcut must still check the client
//! like the full path, and must never say `authorization_pending` once the user's answer
//! is recorded.

use std::time::{Duration, Instant};

use crate::device_flow::{answer, device_server, start};
use crate::flow_support::{assert_oauth_error, basic, post_form};
use crate::support::{Reply, Server};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A poll for `device_code` as `client_id`, with HTTP Basic when `secret` is given.
fn poll_as(server: &Server, device_code: &str, client_id: &str, secret: Option<&str>) -> Reply {
    let auth = secret.map(|s| basic(client_id, s));
    post_form(
        server,
        "/oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ],
        auth.as_deref(),
    )
}

/// A confidential device client: a remembered pending row answers only the client that
/// read it, with its secret; a wrong or missing secret is `invalid_client` and another
/// client `invalid_grant`, as on the full path, and none of them disturbs the device.
#[test]
fn polls_from_memory_check_the_client_like_the_full_path() {
    let (o, server) = device_server(&["--device-interval", "1"]);
    let added = o.json(&[
        "client",
        "add",
        "--name",
        "Set-top box",
        "--id",
        "box",
        "--grant",
        "device_code",
    ]);
    let secret = added["client_secret"].as_str().expect("secret").to_owned();
    let started = post_form(
        &server,
        "/oauth/device_authorization",
        &[("scope", "read")],
        Some(&basic("box", &secret)),
    );
    assert_eq!(started.status, 200, "{}", started.body);
    let code = started.json()["device_code"]
        .as_str()
        .expect("dc")
        .to_owned();

    // The first poll reads the row; the next ones may be answered from memory (polled
    // again at once: slow_down).
    assert_oauth_error(
        &poll_as(&server, &code, "box", Some(&secret)),
        400,
        "authorization_pending",
    );
    assert_oauth_error(
        &poll_as(&server, &code, "box", Some(&secret)),
        400,
        "slow_down",
    );
    let wrong = poll_as(&server, &code, "box", Some("not-the-secret"));
    assert_oauth_error(&wrong, 401, "invalid_client");
    let missing = poll_as(&server, &code, "box", None);
    assert_oauth_error(&missing, 401, "invalid_client");
    let other = poll_as(&server, &code, "tv", None);
    assert_oauth_error(&other, 400, "invalid_grant");
    // The refused polls left the device's memory alone: its own next poll is still early
    // for the interval its slow_down set (6 s).
    assert_oauth_error(
        &poll_as(&server, &code, "box", Some(&secret)),
        400,
        "slow_down",
    );
}

/// Devices polling as fast as they can while the user approves: every poll sent after
/// the approval page answered gets the tokens (once) or `invalid_grant`, never
/// `authorization_pending` or `slow_down` from a row remembered before the approval.
#[test]
fn no_poll_after_an_approval_is_answered_pending() {
    let (_o, server) = device_server(&["--device-interval", "1"]);
    let started = start(&server, "read");
    let code = started["device_code"].as_str().expect("dc").to_owned();
    let typed = started["user_code"].as_str().expect("uc").to_owned();
    assert_oauth_error(
        &poll_as(&server, &code, "tv", None),
        400,
        "authorization_pending",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (server, code) = (&server, code.as_str());
    let approved_at = std::sync::OnceLock::<Instant>::new();
    let approved_at = &approved_at;
    let polls: Vec<Vec<(Instant, u16, String)>> = std::thread::scope(|scope| {
        let pollers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        let r = poll_as(server, code, "tv", None);
                        let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
                        seen.push((sent, r.status, error.clone()));
                        // Done once a poll sent after the approval was answered for good.
                        let after = approved_at.get().is_some_and(|at| sent > *at);
                        if after && (r.status == 200 || error == "invalid_grant") {
                            break;
                        }
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let done = answer(server, &typed, "approve");
        let _ = approved_at.set(Instant::now());
        assert_eq!(done.status, 200, "{}", done.body);
        pollers
            .into_iter()
            .map(|p| p.join().expect("poller"))
            .collect()
    });
    let at = *approved_at.get().expect("approved");
    let all: Vec<&(Instant, u16, String)> = polls.iter().flatten().collect();
    assert_eq!(
        all.iter().filter(|(_, status, _)| *status == 200).count(),
        1,
        "exactly one poll gets the tokens"
    );
    let pending_before = all
        .iter()
        .filter(|(sent, _, e)| *sent < at && e == "slow_down")
        .count();
    assert!(pending_before > 0, "the pollers raced the approval");
    for (sent, status, error) in &all {
        if *sent > at {
            assert!(
                *status == 200 || error == "invalid_grant",
                "a poll sent after the approval got {status} {error}"
            );
        }
    }
}
