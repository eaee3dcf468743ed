//! Housekeeping: deleting what the retention policy (`oauth::Retention`) says is dead.
//! On SQLite the writer thread runs [`step`] in its idle time, on PostgreSQL a sweeper task
//! (`pg::sweeper`) runs [`walk`] every [`SWEEP_INTERVAL`]; either way one small window of
//! grants per transaction, so housekeeping never holds a lock for long. The store reads each
//! grant's facts and carries out the policy's answers; what is kept, and for how long,
//! is the policy's.
//!
//! - audit rows for the audit retention (`serve --audit-retention`, 365 days by default);
//!   older ones are deleted, the oldest first, [`AUDIT_ROWS_PER_STEP`] rows examined per
//!   transaction.
//! - ACME challenge offers past their `expires_at` (ones an instance left behind when it
//!   died mid-order), [`ACME_CHALLENGES_PER_STEP`] rows per transaction.
//!
//! Users, clients, brands and organizations are never deleted here.

use std::time::Duration;

use super::sql::Db;
use super::StoreError;
use crate::oauth::{GrantUse, Retention};

/// A housekeeping sweep starts this long after the previous one finished. Expired rows
/// live at most this much longer than the retention rules say.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// The first sweep waits this long after start, so starting stays fast.
pub const FIRST_SWEEP_DELAY: Duration = Duration::from_secs(5);

/// Grants examined per step: a write that arrives during a step waits for it. Measured
/// on the loaded 2-core VM (debug build of oauthd, optimised SQLite), with 128 grants a
/// step that deleted them all took 16 ms median (36 ms max, its fsync included) and one
/// that deleted nothing 1.8 ms median; with 32, a deleting step took 8 ms median (12 ms
/// p90, 43 ms max), mostly its commit's fsync.
const GRANTS_PER_STEP: i64 = 32;
/// Rotated-out refresh tokens deleted per step at most; a grant with a longer history
/// (one that rotated thousands of times since the last sweep) is trimmed over several
/// steps.
const HISTORY_ROWS_PER_STEP: i64 = 2048;

/// Audit rows examined per transaction at most, so pruning a long trail never holds the
/// write lock for long.
pub const AUDIT_ROWS_PER_STEP: i64 = 512;

/// Expired ACME challenge offers deleted per transaction at most.
pub const ACME_CHALLENGES_PER_STEP: i64 = 256;

/// Deletes up to [`ACME_CHALLENGES_PER_STEP`] challenge offers that expired by `now`
/// (Unix seconds). Each step starts from the beginning (`after` is unused: deleted rows
/// are gone), and the walk ends at the first step that found fewer than a full window.
pub fn prune_acme_challenges(tx: &impl Db, _after: i64, now: i64) -> Result<Step, StoreError> {
    let deleted = tx.execute(
        "DELETE FROM acme_challenges WHERE (kind, name) IN (
             SELECT kind, name FROM acme_challenges WHERE expires_at <= ?1 LIMIT ?2)",
        &[&now, &ACME_CHALLENGES_PER_STEP],
    )?;
    Ok(Step {
        next: (deleted as i64 == ACME_CHALLENGES_PER_STEP).then_some(0),
        deleted,
    })
}

/// Deletes the audit rows older than `cutoff` (Unix seconds) among the
/// [`AUDIT_ROWS_PER_STEP`] next ones by id after `after`. Rows are appended in time
/// order, so the old ones come first: the walk ends (`next` is `None`) at the first window
/// without an old row, and a step never scans the whole table.
pub fn prune_audit(tx: &impl Db, after: i64, cutoff: i64) -> Result<Step, StoreError> {
    let window =
        "SELECT max(id) FROM (SELECT id FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2) AS w";
    let Some(last) = window_end(tx, window, after, AUDIT_ROWS_PER_STEP)? else {
        return Ok(Step::DONE);
    };
    let deleted = tx.execute(
        "DELETE FROM audit_log WHERE id > ?1 AND id <= ?2 AND at < ?3",
        &[&after, &last, &cutoff],
    )?;
    Ok(Step {
        next: (deleted > 0).then_some(last),
        deleted,
    })
}

/// The `at` before which audit rows are past `retention` at Unix time `now`.
pub fn audit_cutoff(retention: Duration, now: i64) -> i64 {
    let retention = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    now.saturating_sub(retention)
}

/// Runs `step` from the start (`after` = 0) to the end of a walk, each call one window
/// (its caller's transaction); returns the rows deleted. Stops early, between windows,
/// once `stopping` says so.
pub fn walk(
    mut step: impl FnMut(i64) -> Result<Step, StoreError>,
    stopping: impl Fn() -> bool,
) -> Result<usize, StoreError> {
    let (mut after, mut deleted) = (0, 0);
    while !stopping() {
        let done = step(after)?;
        deleted += done.deleted;
        match done.next {
            Some(next) => after = next,
            None => break,
        }
    }
    Ok(deleted)
}

/// The outcome of one step of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Where the next step starts (grant ids above it); `None`: the sweep is complete.
    pub next: Option<i64>,
    /// Rows deleted directly (not counting cascaded codes and tokens of deleted grants).
    pub deleted: usize,
}

impl Step {
    /// Nothing left to visit.
    const DONE: Step = Step {
        next: None,
        deleted: 0,
    };
}

/// The last id of the window `query` selects (`?1`: the id it starts after, `?2`: its
/// size); `None` when the window is empty.
fn window_end(tx: &impl Db, query: &str, after: i64, size: i64) -> Result<Option<i64>, StoreError> {
    tx.query_one(query, &[&after, &size], |r| r.get(0))
}

/// Applies `retention` to the next [`GRANTS_PER_STEP`] grants with an id above `after`,
/// at Unix time `now`. Runs inside the caller's write transaction.
pub fn step(tx: &impl Db, after: i64, now: i64, retention: &Retention) -> Result<Step, StoreError> {
    let window =
        "SELECT max(id) FROM (SELECT id FROM grants WHERE id > ?1 ORDER BY id LIMIT ?2) AS w";
    let Some(last) = window_end(tx, window, after, GRANTS_PER_STEP)? else {
        return Ok(Step::DONE);
    };
    let dead: Vec<String> = grant_uses(tx, after, last)?
        .into_iter()
        .filter(|(_, grant)| retention.grant_is_dead(grant, now))
        .map(|(grant_id, _)| grant_id.to_string())
        .collect();
    // One statement for the window's dead grants (their ids as one text `,1,5,`, which
    // both databases match with LIKE); their codes and tokens go with them (ON DELETE
    // CASCADE).
    let mut deleted = if dead.is_empty() {
        0
    } else {
        tx.execute(
            "DELETE FROM grants WHERE id > ?1 AND id <= ?2 AND ?3 LIKE '%,' || id || ',%'",
            &[&after, &last, &format!(",{},", dead.join(","))],
        )?
    };
    let expired_by = retention.expired_by(now);
    deleted += tx.execute(
        "DELETE FROM access_tokens WHERE grant_id > ?1 AND grant_id <= ?2 AND expires_at <= ?3",
        &[&after, &last, &expired_by],
    )?;
    deleted += tx.execute(
        "DELETE FROM refresh_tokens WHERE grant_id > ?1 AND grant_id <= ?2 AND expires_at <= ?3",
        &[&after, &last, &expired_by],
    )?;
    let (trimmed, complete) =
        trim_refresh_history(tx, after, last, retention.refresh_history_per_grant)?;
    deleted += trimmed;
    Ok(Step {
        // A window whose history was not trimmed completely is visited again.
        next: Some(if complete { last } else { after }),
        deleted,
    })
}

/// The facts the retention decision needs about each grant in (after, last].
fn grant_uses(tx: &impl Db, after: i64, last: i64) -> Result<Vec<(i64, GrantUse)>, StoreError> {
    tx.query_all(
        "SELECT g.id, g.revoked_at IS NOT NULL,
                (SELECT max(c.expires_at) FROM authorization_codes c
                 WHERE c.grant_id = g.id AND c.used_at IS NULL),
                (SELECT max(a.expires_at) FROM access_tokens a WHERE a.grant_id = g.id),
                (SELECT max(r.expires_at) FROM refresh_tokens r WHERE r.grant_id = g.id),
                EXISTS (SELECT 1 FROM refresh_tokens r
                        WHERE r.grant_id = g.id AND r.expires_at IS NULL)
         FROM grants g WHERE g.id > ?1 AND g.id <= ?2",
        &[&after, &last],
        |r| {
            Ok((
                r.get(0)?,
                GrantUse {
                    revoked: r.get(1)?,
                    last_unused_code_expiry: r.get(2)?,
                    last_access_expiry: r.get(3)?,
                    last_refresh_expiry: r.get(4)?,
                    refresh_never_expires: r.get(5)?,
                },
            ))
        },
    )
}

/// Deletes rotated-out refresh tokens beyond the newest `keep` of each grant in
/// (after, last], at most [`HISTORY_ROWS_PER_STEP`] rows. Returns the rows deleted and
/// whether every grant of the window is now within the bound.
fn trim_refresh_history(
    tx: &impl Db,
    after: i64,
    last: i64,
    keep: i64,
) -> Result<(usize, bool), StoreError> {
    let long_histories: Vec<i64> = tx.query_all(
        "SELECT grant_id FROM refresh_tokens
         WHERE grant_id > ?1 AND grant_id <= ?2 AND rotated_at IS NOT NULL
         GROUP BY grant_id HAVING count(*) > ?3",
        &[&after, &last, &keep],
        |r| r.get(0),
    )?;
    let mut deleted = 0usize;
    let mut budget = HISTORY_ROWS_PER_STEP;
    for grant_id in long_histories {
        if budget == 0 {
            return Ok((deleted, false));
        }
        // Newest first by rotation time; skip the ones kept, delete up to the budget.
        let n = tx.execute(
            "DELETE FROM refresh_tokens WHERE token_hash IN (
                 SELECT token_hash FROM refresh_tokens
                 WHERE grant_id = ?1 AND rotated_at IS NOT NULL
                 ORDER BY rotated_at DESC, created_at DESC
                 LIMIT ?3 OFFSET ?2)",
            &[&grant_id, &keep, &budget],
        )?;
        deleted += n;
        budget -= n as i64;
    }
    Ok((deleted, budget > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::RETENTION;
    use crate::store::test_backends::{on_both_backends, seed_user_and_client};

    const NOW: i64 = 1_000_000;

    fn sweep(db: &impl Db) -> usize {
        walk(|after| step(db, after, NOW, &RETENTION), || false).expect("sweep")
    }

    /// The first column of every row `sql` returns, as text (bytes read as UTF-8).
    fn ids(db: &impl Db, sql: &str) -> Vec<String> {
        db.query_all(sql, &[], |r| {
            Ok(String::from_utf8(r.get::<Vec<u8>>(0)?).expect("UTF-8"))
        })
        .expect("query")
    }

    fn insert(db: &impl Db, sql: &str, rows: &[&[&dyn crate::store::sql::Param]]) {
        for row in rows {
            db.execute(sql, row).expect(sql);
        }
    }

    fn a_sweep_deletes_dead_rows_and_keeps_live_ones(db: &impl Db) {
        seed_user_and_client(db);
        let (later, earlier, never) = (NOW + 60, NOW - 60, None::<i64>);
        let (expired, five) = (Some(earlier), Some(5i64));
        insert(
            db,
            "INSERT INTO grants (id, user_id, client_id, created_at, revoked_at)
             VALUES (?1, 'u', 'c', 0, ?2)",
            &[
                &[&1i64, &Some(10i64)], // revoked
                &[&2i64, &never],       // code expired unused
                &[&3i64, &never],       // code pending
                &[&4i64, &never],       // live refresh token, one expired access token
                &[&5i64, &never],       // every token expired
                &[&6i64, &never],       // long rotation history
                &[&7i64, &never],       // only a live access token
            ],
        );
        // Codes are named 'c<grant>', access tokens 'a…', refresh tokens 'r…'.
        insert(
            db,
            "INSERT INTO authorization_codes (code_hash, grant_id, redirect_uri, created_at, expires_at, used_at)
             VALUES (?1, ?2, 'r', 0, ?3, ?4)",
            &[
                &[&b"c1", &1i64, &later, &never],
                &[&b"c2", &2i64, &NOW, &never],
                &[&b"c3", &3i64, &later, &never],
                &[&b"c4", &4i64, &100i64, &Some(50i64)],
                &[&b"c5", &5i64, &100i64, &Some(50i64)],
                &[&b"c6", &6i64, &100i64, &Some(50i64)],
                &[&b"c7", &7i64, &100i64, &Some(50i64)],
            ],
        );
        insert(
            db,
            "INSERT INTO access_tokens (token_hash, grant_id, created_at, expires_at)
             VALUES (?1, ?2, 0, ?3)",
            &[
                &[&b"a1", &1i64, &later],
                &[&b"a4-old", &4i64, &NOW],
                &[&b"a4-new", &4i64, &later],
                &[&b"a5", &5i64, &earlier],
                &[&b"a7", &7i64, &later],
            ],
        );
        let history: Vec<(Vec<u8>, i64)> = (1..=12)
            .map(|n| (format!("r6-{n:02}").into_bytes(), n))
            .collect();
        let mut refresh: Vec<[&dyn crate::store::sql::Param; 5]> = vec![
            [&b"r4", &4i64, &0i64, &never, &never],
            [&b"r4-expired", &4i64, &0i64, &expired, &five],
            [&b"r5", &5i64, &0i64, &expired, &never],
            [&b"r6", &6i64, &0i64, &never, &never],
        ];
        for (hash, n) in &history {
            refresh.push([hash, &6i64, n, &never, n]);
        }
        let refresh: Vec<&[&dyn crate::store::sql::Param]> =
            refresh.iter().map(|r| &r[..]).collect();
        insert(
            db,
            "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, rotated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &refresh,
        );

        assert!(sweep(db) > 0);
        let grants: Vec<i64> = db
            .query_all("SELECT id FROM grants ORDER BY id", &[], |r| r.get(0))
            .expect("grants");
        assert_eq!(grants, [3, 4, 6, 7]);
        assert_eq!(
            ids(db, "SELECT code_hash FROM authorization_codes ORDER BY 1"),
            ["c3", "c4", "c6", "c7"],
            "a used code stays while its grant lives, for replay detection"
        );
        assert_eq!(
            ids(db, "SELECT token_hash FROM access_tokens ORDER BY 1"),
            ["a4-new", "a7"]
        );
        let mut kept_history: Vec<String> = (5..=12).map(|n| format!("r6-{n:02}")).collect();
        kept_history.insert(0, "r6".into());
        kept_history.insert(0, "r4".into());
        assert_eq!(
            ids(db, "SELECT token_hash FROM refresh_tokens ORDER BY 1"),
            kept_history,
            "the newest 8 rotated-out tokens of a live grant stay"
        );
        assert_eq!(sweep(db), 0, "a second sweep finds nothing");
    }
    on_both_backends!(a_sweep_deletes_dead_rows_and_keeps_live_ones);

    fn a_step_examines_a_bounded_window_of_grants(db: &impl Db) {
        seed_user_and_client(db);
        for id in 1..=300i64 {
            db.execute(
                "INSERT INTO grants (id, user_id, client_id, created_at, revoked_at)
                 VALUES (?1, 'u', 'c', 0, 1)",
                &[&id],
            )
            .expect("grant");
        }
        let first = step(db, 0, NOW, &RETENTION).expect("step");
        assert_eq!(first.next, Some(GRANTS_PER_STEP));
        assert_eq!(first.deleted, GRANTS_PER_STEP as usize);
        assert_eq!(sweep(db), 300 - GRANTS_PER_STEP as usize);
    }
    on_both_backends!(a_step_examines_a_bounded_window_of_grants);

    fn old_audit_rows_are_pruned_in_windows(db: &impl Db) {
        for (id, at) in [(1i64, 10i64), (2, 20), (3, 30), (4, 40)] {
            db.execute(
                "INSERT INTO audit_log (id, at, event) VALUES (?1, ?2, 'e')",
                &[&id, &at],
            )
            .expect("audit row");
        }
        let pruned = prune_audit(db, 0, 25).expect("prune");
        assert_eq!(
            pruned,
            Step {
                next: Some(4),
                deleted: 2
            }
        );
        assert_eq!(prune_audit(db, 4, 25).expect("prune"), Step::DONE);
        let left: Vec<i64> = db
            .query_all("SELECT id FROM audit_log ORDER BY id", &[], |r| r.get(0))
            .expect("left");
        assert_eq!(left, [3, 4]);
    }
    on_both_backends!(old_audit_rows_are_pruned_in_windows);

    fn expired_acme_challenge_offers_go_and_live_ones_stay(db: &impl Db) {
        use crate::store::acme::{challenge, offer_challenge};
        let expired = ACME_CHALLENGES_PER_STEP + 3;
        for n in 0..expired {
            offer_challenge(db, "http-01", &format!("dead{n}"), "k", NOW - n).expect("offer");
        }
        offer_challenge(db, "tls-alpn-01", "a.example", "live", NOW + 1).expect("offer");
        let step = prune_acme_challenges(db, 0, NOW).expect("prune");
        assert_eq!(
            step,
            Step {
                next: Some(0),
                deleted: ACME_CHALLENGES_PER_STEP as usize
            },
            "one bounded window"
        );
        let rest = walk(|after| prune_acme_challenges(db, after, NOW), || false);
        assert_eq!(rest.expect("walk"), 3);
        let left: Vec<String> = db
            .query_all("SELECT name FROM acme_challenges", &[], |r| r.get(0))
            .expect("left");
        assert_eq!(left, ["a.example"]);
        let live = challenge(db, "tls-alpn-01", "a.example").expect("read");
        assert_eq!(live, Some(("live".to_owned(), NOW + 1)));
    }
    on_both_backends!(expired_acme_challenge_offers_go_and_live_ones_stay);

    #[test]
    fn a_walk_stops_between_windows_when_asked() {
        let calls = std::cell::Cell::new(0);
        let step = |after: i64| {
            calls.set(calls.get() + 1);
            Ok(Step {
                next: Some(after + 1),
                deleted: 1,
            })
        };
        assert_eq!(walk(step, || calls.get() == 3).expect("walk"), 3);
    }

    #[test]
    fn the_audit_cutoff_saturates() {
        assert_eq!(audit_cutoff(Duration::from_secs(10), 100), 90);
        assert_eq!(audit_cutoff(Duration::MAX, 100), 100 - i64::MAX);
    }
}
