//! Refresh-token theft detection for rotating public clients: a successor superseded by a
//! grace retry stays known as rotated-out, so presenting it later revokes the whole grant
//! and audits `refresh_reuse`; however many copies of one refresh token race, at most one
//! successor stays live, and presenting any losing successor is reuse.

use std::sync::Barrier;

use serde_json::Value;

use crate::flow_support::*;

const RESOURCE_SERVER: &str = "api";

/// The seeded server plus the public client `pub`, and a resource server that may
/// introspect any token (to tell which successors are live); returns its secret.
fn with_public_client() -> (Seeded, String) {
    let s = seeded(&[]);
    s.o.add_public_client("pub", &[PUBLIC_REDIRECT], &[]);
    let secret = add_resource_server(&s.o, RESOURCE_SERVER);
    (s, secret)
}

fn reuse_events(s: &Seeded) -> usize {
    let entries: Value = s.o.json(&["audit"]);
    entries
        .as_array()
        .expect("audit array")
        .iter()
        .filter(|e| e["event"] == "refresh_reuse")
        .count()
}

#[test]
fn refresh_reuse_a_successor_superseded_by_a_thiefs_grace_retry_revokes_the_grant() {
    let (s, _) = with_public_client();
    let (_, stolen) = public_exchange(&s, None);
    // The victim refreshes; the thief replays the old token inside the grace window while
    // the victim's successor is still unused, and gets a successor of its own.
    let (_, victims) = tokens(&public_refresh(&s, &stolen, None));
    let (thiefs_access, thiefs) = tokens(&public_refresh(&s, &stolen, None));
    assert_eq!(get_bearer(&s.server, "/api/me", &thiefs_access).status, 200);
    assert_eq!(reuse_events(&s), 0);
    // The victim's next refresh presents the superseded successor: that is reuse.
    assert_oauth_error(&public_refresh(&s, &victims, None), 400, "invalid_grant");
    assert_eq!(reuse_events(&s), 1, "reuse is audited");
    assert_eq!(
        get_bearer(&s.server, "/api/me", &thiefs_access).status,
        401,
        "reuse revokes the whole grant, the thief's tokens included"
    );
    assert_oauth_error(&public_refresh(&s, &thiefs, None), 400, "invalid_grant");
}

#[test]
fn refresh_reuse_parallel_presentations_leave_one_live_successor_and_losers_are_reuse() {
    const COPIES: usize = 20;
    let (s, rs_secret) = with_public_client();
    let (_, original) = public_exchange(&s, None);
    let barrier = Barrier::new(COPIES);
    let answers: Vec<(String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..COPIES)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    tokens(&public_refresh(&s, &original, None))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let live: Vec<&(String, String)> = answers
        .iter()
        .filter(|(_, successor)| introspect(&s, &rs_secret, successor)["active"] == true)
        .collect();
    assert_eq!(live.len(), 1, "exactly one successor stays live");
    let (winners_access, winner) = live[0];
    let loser = answers
        .iter()
        .map(|(_, successor)| successor)
        .find(|successor| *successor != winner)
        .expect("a losing successor");
    assert_oauth_error(&public_refresh(&s, loser, None), 400, "invalid_grant");
    assert_eq!(reuse_events(&s), 1);
    assert_oauth_error(&public_refresh(&s, winner, None), 400, "invalid_grant");
    for (access, _) in &answers {
        assert_eq!(get_bearer(&s.server, "/api/me", access).status, 401);
    }
    assert_eq!(get_bearer(&s.server, "/api/me", winners_access).status, 401);
}

/// Introspects `token` as the resource server.
fn introspect(s: &Seeded, rs_secret: &str, token: &str) -> Value {
    let r = post_form(
        &s.server,
        "/oauth/introspect",
        &[("token", token), ("token_type_hint", "refresh_token")],
        Some(&basic(RESOURCE_SERVER, rs_secret)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}
