//! Racing exchanges of one code and refreshes with one token on one PostgreSQL database,
//! each in its own transaction on its own connection as on separate instances: the
//! outcomes are those of the same requests one after another (on SQLite's one writer).

use super::*;
use crate::oauth::ExchangeDecision::{Issue, RevokeReplayed};
use crate::oauth::RefreshDecision::{RevokeReused, Rotate, RotateAgain};
use crate::store::grants::test_code;
use crate::store::pg::{PgConn, PgStore};
use crate::store::test_backends::{race, seeded_postgres};

const RACERS: usize = 6;
/// Each test races this many times, on a fresh code or token each time.
const ROUNDS: usize = 3;
const ORIGIN: Origin<'static> = Origin {
    remote_addr: "test",
};
const GRACE_SECS: i64 = 300;

/// Public client `c`, without a secret: its refresh tokens rotate.
const PUBLIC_CLIENT: Presenter<'static> = Presenter {
    client_id: "c",
    public: true,
    secret_hash: None,
};

/// Distinct tokens for racer `n` (of every round).
fn tokens(n: usize) -> NewTokens {
    let n = u8::try_from(n).expect("few racers");
    NewTokens {
        access_hash: [n; 32],
        access_ttl_secs: 60,
        refresh_hash: [n | 0x80; 32],
        refresh_ttl_secs: None,
    }
}

/// Issues a fresh code for user `u` and client `c`; returns its grant's id.
fn issue(store: &PgStore, code_hash: &SecretHash) -> i64 {
    let code = test_code(*code_hash);
    store
        .transaction(|db| {
            grants::issue_code(db, &code, ORIGIN, "u@x.org")?;
            let facts = grants::find_code(db, code_hash)?;
            Ok(facts.expect("issued").grant_id)
        })
        .expect("issue a code")
}

fn exchange_as(db: &PgConn, code_hash: &SecretHash, tokens: &NewTokens) -> ExchangeDecision {
    let job = Exchange {
        code_hash,
        request: ExchangeRequest {
            presenter: PUBLIC_CLIENT,
            redirect_uri: None,
            code_verifier: None,
        },
        tokens,
        with_refresh: true,
        origin: ORIGIN,
    };
    exchange(db, &job).expect("exchange").0
}

/// Refreshes as an instance of its own (its own rotation clock) would.
fn refresh_as(
    db: &PgConn,
    refresh_hash: &SecretHash,
    tokens: &NewTokens,
) -> Result<RefreshDecision, StoreError> {
    let rotations = RotationClock::new(GRACE_SECS, crate::rotation_clock::CAPACITY);
    let job = Refresh {
        refresh_hash,
        presenter: PUBLIC_CLIENT,
        requested_scope: None,
        grace_secs: GRACE_SECS,
        rotations: &rotations,
        tokens,
        origin: ORIGIN,
    };
    Ok(refresh(db, &job)?.0)
}

fn count(store: &PgStore, sql: &str, grant_id: i64) -> i64 {
    store
        .with_conn(|db| db.query_one(sql, &[&grant_id], |r| r.get(0)))
        .expect("count")
}

fn grant_revoked(store: &PgStore, grant_id: i64) -> bool {
    count(
        store,
        "SELECT count(*) FROM grants WHERE id = ?1 AND revoked_at IS NOT NULL",
        grant_id,
    ) == 1
}

#[test]
fn racing_exchanges_of_one_code_issue_once_and_the_replays_revoke_the_grant() {
    let store = seeded_postgres();
    for round in 0..ROUNDS {
        let code_hash = [0x40 + u8::try_from(round).expect("few rounds"); 32];
        let grant_id = issue(&store, &code_hash);
        let decisions = race(&store, RACERS, |db, i| {
            Ok(exchange_as(db, &code_hash, &tokens(round * RACERS + i)))
        });
        let issued = decisions
            .iter()
            .filter(|d| matches!(d, Issue { .. }))
            .count();
        assert_eq!(issued, 1, "round {round}: {decisions:?}");
        assert!(
            decisions
                .iter()
                .all(|d| matches!(d, Issue { .. } | RevokeReplayed { .. })),
            "round {round}: every other exchange is a replay: {decisions:?}"
        );
        assert!(grant_revoked(&store, grant_id), "round {round}");
        let tokens_left = count(
            &store,
            "SELECT (SELECT count(*) FROM access_tokens WHERE grant_id = ?1)
                  + (SELECT count(*) FROM refresh_tokens WHERE grant_id = ?1)",
            grant_id,
        );
        assert_eq!(tokens_left, 0, "round {round}: the replays revoked them");
    }
}

#[test]
fn racing_refreshes_with_one_token_leave_one_live_successor_and_reuse_is_detected_after() {
    let store = seeded_postgres();
    for round in 0..ROUNDS {
        let code_hash = [0x60 + u8::try_from(round).expect("few rounds"); 32];
        let grant_id = issue(&store, &code_hash);
        let first = tokens(100 + round);
        store
            .with_conn(|db| Ok(exchange_as(db, &code_hash, &first)))
            .expect("exchange");
        let base = round * RACERS;
        let decisions = race(&store, RACERS, |db, i| {
            refresh_as(db, &first.refresh_hash, &tokens(base + i))
        });
        let rotated: Vec<usize> = (0..RACERS)
            .filter(|i| matches!(decisions[*i], Rotate { .. }))
            .collect();
        assert_eq!(rotated.len(), 1, "round {round}: {decisions:?}");
        assert!(
            decisions
                .iter()
                .all(|d| matches!(d, Rotate { .. } | RotateAgain { .. })),
            "round {round}: the others are grace retries: {decisions:?}"
        );
        let live = count(
            &store,
            "SELECT count(*) FROM refresh_tokens WHERE grant_id = ?1 AND rotated_at IS NULL",
            grant_id,
        );
        assert_eq!(live, 1, "round {round}: one live successor");
        // The first successor was superseded by a grace retry: presenting it is reuse.
        let superseded = tokens(base + rotated[0]).refresh_hash;
        let reused = store
            .transaction(|db| refresh_as(db, &superseded, &tokens(base + RACERS)))
            .expect("refresh");
        assert!(
            matches!(reused, RevokeReused { .. }),
            "round {round}: {reused:?}"
        );
        assert!(grant_revoked(&store, grant_id), "round {round}");
    }
}
