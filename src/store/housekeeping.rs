//! Housekeeping: deleting what the retention policy (`oauth::Retention`) says is dead.
//! The writer thread runs [`step`] in its idle time, one small window of grants per
//! transaction, so housekeeping never holds the write lock for long. The store reads each
//! grant's facts and carries out the policy's answers; what is kept, and for how long,
//! is the policy's.
//!
//! - audit rows for the audit retention (`serve --audit-retention`, 365 days by default);
//!   older ones are deleted, the oldest first, [`AUDIT_ROWS_PER_STEP`] rows examined per
//!   transaction.
//!
//! Users, clients, brands and organizations are never deleted here.

use rusqlite::{params, Connection};

use super::StoreError;
use crate::oauth::{GrantUse, Retention};

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

/// Deletes the audit rows older than `cutoff` (Unix seconds) among the
/// [`AUDIT_ROWS_PER_STEP`] next ones by id after `after`. Rows are appended in time
/// order, so the old ones come first: the walk ends (`next` is `None`) at the first window
/// without an old row, and a step never scans the whole table.
pub fn prune_audit(tx: &Connection, after: i64, cutoff: i64) -> Result<Step, StoreError> {
    let window =
        "SELECT max(id) FROM (SELECT id FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2)";
    let Some(last) = window_end(tx, window, after, AUDIT_ROWS_PER_STEP)? else {
        return Ok(Step::DONE);
    };
    let deleted = tx
        .prepare_cached("DELETE FROM audit_log WHERE id > ?1 AND id <= ?2 AND at < ?3")?
        .execute(params![after, last, cutoff])?;
    Ok(Step {
        next: (deleted > 0).then_some(last),
        deleted,
    })
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
fn window_end(
    tx: &Connection,
    query: &str,
    after: i64,
    size: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .prepare_cached(query)?
        .query_row(params![after, size], |r| r.get(0))?)
}

/// Applies `retention` to the next [`GRANTS_PER_STEP`] grants with an id above `after`,
/// at Unix time `now`. Runs inside the caller's write transaction.
pub fn step(
    tx: &Connection,
    after: i64,
    now: i64,
    retention: &Retention,
) -> Result<Step, StoreError> {
    let window = "SELECT max(id) FROM (SELECT id FROM grants WHERE id > ?1 ORDER BY id LIMIT ?2)";
    let Some(last) = window_end(tx, window, after, GRANTS_PER_STEP)? else {
        return Ok(Step::DONE);
    };
    let dead: Vec<String> = grant_uses(tx, after, last)?
        .into_iter()
        .filter(|(_, grant)| retention.grant_is_dead(grant, now))
        .map(|(grant_id, _)| grant_id.to_string())
        .collect();
    // One statement for the window's dead grants (their ids as a JSON array); their codes
    // and tokens go with them (ON DELETE CASCADE).
    let mut deleted = if dead.is_empty() {
        0
    } else {
        tx.prepare_cached("DELETE FROM grants WHERE id IN (SELECT value FROM json_each(?1))")?
            .execute([format!("[{}]", dead.join(","))])?
    };
    let expired_by = retention.expired_by(now);
    deleted += tx
        .prepare_cached(
            "DELETE FROM access_tokens WHERE grant_id > ?1 AND grant_id <= ?2 AND expires_at <= ?3",
        )?
        .execute(params![after, last, expired_by])?;
    deleted += tx
        .prepare_cached(
            "DELETE FROM refresh_tokens WHERE grant_id > ?1 AND grant_id <= ?2 AND expires_at <= ?3",
        )?
        .execute(params![after, last, expired_by])?;
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
fn grant_uses(tx: &Connection, after: i64, last: i64) -> Result<Vec<(i64, GrantUse)>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT g.id, g.revoked_at IS NOT NULL,
                (SELECT max(c.expires_at) FROM authorization_codes c
                 WHERE c.grant_id = g.id AND c.used_at IS NULL),
                (SELECT max(a.expires_at) FROM access_tokens a WHERE a.grant_id = g.id),
                (SELECT max(r.expires_at) FROM refresh_tokens r WHERE r.grant_id = g.id),
                EXISTS (SELECT 1 FROM refresh_tokens r
                        WHERE r.grant_id = g.id AND r.expires_at IS NULL)
         FROM grants g WHERE g.id > ?1 AND g.id <= ?2",
    )?;
    let rows = stmt.query_map(params![after, last], |r| {
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
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes rotated-out refresh tokens beyond the newest `keep` of each grant in
/// (after, last], at most [`HISTORY_ROWS_PER_STEP`] rows. Returns the rows deleted and
/// whether every grant of the window is now within the bound.
fn trim_refresh_history(
    tx: &Connection,
    after: i64,
    last: i64,
    keep: i64,
) -> Result<(usize, bool), StoreError> {
    let long_histories: Vec<i64> = tx
        .prepare_cached(
            "SELECT grant_id FROM refresh_tokens
             WHERE grant_id > ?1 AND grant_id <= ?2 AND rotated_at IS NOT NULL
             GROUP BY grant_id HAVING count(*) > ?3",
        )?
        .query_map(params![after, last, keep], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut deleted = 0usize;
    let mut budget = HISTORY_ROWS_PER_STEP;
    for grant_id in long_histories {
        if budget == 0 {
            return Ok((deleted, false));
        }
        // Newest first by rotation time; skip the ones kept, delete up to the budget.
        let n = tx
            .prepare_cached(
                "DELETE FROM refresh_tokens WHERE token_hash IN (
                     SELECT token_hash FROM refresh_tokens
                     WHERE grant_id = ?1 AND rotated_at IS NOT NULL
                     ORDER BY rotated_at DESC, created_at DESC
                     LIMIT ?3 OFFSET ?2)",
            )?
            .execute(params![grant_id, keep, budget])?;
        deleted += n;
        budget -= n as i64;
    }
    Ok((deleted, budget > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::RETENTION;
    use crate::store::Store;

    const NOW: i64 = 1_000_000;

    fn store_with_user_and_client() -> (tempfile::TempDir, Store) {
        crate::store::seeded_store("")
    }

    fn sweep(store: &Store) -> usize {
        let mut after = 0;
        let mut deleted = 0;
        loop {
            let done = store
                .transaction(|tx| step(tx.sqlite()?, after, NOW, &RETENTION))
                .expect("step");
            deleted += done.deleted;
            match done.next {
                Some(next) => after = next,
                None => return deleted,
            }
        }
    }

    fn ids(store: &Store, sql: &str) -> Vec<String> {
        store
            .with_conn(|c| {
                let mut stmt = c.sqlite()?.prepare(sql)?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .expect("query")
    }

    #[test]
    fn a_sweep_deletes_dead_rows_and_keeps_live_ones() {
        let (_dir, store) = store_with_user_and_client();
        store
            .transaction(|tx| {
                // Codes are named 'c<grant>', access tokens 'a…', refresh tokens 'r…'.
                tx.sqlite()?.execute_batch(&format!(
                    "INSERT INTO grants (id, user_id, client_id, created_at, revoked_at) VALUES
                         (1, 'u', 'c', 0, 10),   -- revoked
                         (2, 'u', 'c', 0, NULL), -- code expired unused
                         (3, 'u', 'c', 0, NULL), -- code pending
                         (4, 'u', 'c', 0, NULL), -- live refresh token, one expired access token
                         (5, 'u', 'c', 0, NULL), -- every token expired
                         (6, 'u', 'c', 0, NULL), -- long rotation history
                         (7, 'u', 'c', 0, NULL); -- only a live access token
                     INSERT INTO authorization_codes (code_hash, grant_id, redirect_uri, created_at, expires_at, used_at) VALUES
                         (CAST('c1' AS BLOB), 1, 'r', 0, {later}, NULL),
                         (CAST('c2' AS BLOB), 2, 'r', 0, {NOW}, NULL),
                         (CAST('c3' AS BLOB), 3, 'r', 0, {later}, NULL),
                         (CAST('c4' AS BLOB), 4, 'r', 0, 100, 50),
                         (CAST('c5' AS BLOB), 5, 'r', 0, 100, 50),
                         (CAST('c6' AS BLOB), 6, 'r', 0, 100, 50),
                         (CAST('c7' AS BLOB), 7, 'r', 0, 100, 50);
                     INSERT INTO access_tokens (token_hash, grant_id, created_at, expires_at) VALUES
                         (CAST('a1' AS BLOB), 1, 0, {later}),
                         (CAST('a4-old' AS BLOB), 4, 0, {NOW}),
                         (CAST('a4-new' AS BLOB), 4, 0, {later}),
                         (CAST('a5' AS BLOB), 5, 0, {earlier}),
                         (CAST('a7' AS BLOB), 7, 0, {later});
                     INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, rotated_at) VALUES
                         (CAST('r4' AS BLOB), 4, 0, NULL, NULL),
                         (CAST('r4-expired' AS BLOB), 4, 0, {earlier}, 5),
                         (CAST('r5' AS BLOB), 5, 0, {earlier}, NULL),
                         (CAST('r6' AS BLOB), 6, 0, NULL, NULL);",
                    later = NOW + 60,
                    earlier = NOW - 60,
                ))?;
                for n in 1..=12 {
                    tx.sqlite()?.execute(
                        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, rotated_at)
                         VALUES (CAST(?1 AS BLOB), 6, ?2, ?2)",
                        params![format!("r6-{n:02}"), n],
                    )?;
                }
                Ok(())
            })
            .expect("rows");
        assert!(sweep(&store) > 0);
        assert_eq!(
            ids(&store, "SELECT CAST(id AS TEXT) FROM grants ORDER BY id"),
            ["3", "4", "6", "7"]
        );
        assert_eq!(
            ids(
                &store,
                "SELECT CAST(code_hash AS TEXT) FROM authorization_codes ORDER BY 1"
            ),
            ["c3", "c4", "c6", "c7"],
            "a used code stays while its grant lives, for replay detection"
        );
        assert_eq!(
            ids(
                &store,
                "SELECT CAST(token_hash AS TEXT) FROM access_tokens ORDER BY 1"
            ),
            ["a4-new", "a7"]
        );
        let mut kept_history: Vec<String> = (5..=12).map(|n| format!("r6-{n:02}")).collect();
        kept_history.insert(0, "r6".into());
        kept_history.insert(0, "r4".into());
        assert_eq!(
            ids(
                &store,
                "SELECT CAST(token_hash AS TEXT) FROM refresh_tokens ORDER BY 1"
            ),
            kept_history,
            "the newest 8 rotated-out tokens of a live grant stay"
        );
        assert_eq!(sweep(&store), 0, "a second sweep finds nothing");
    }

    #[test]
    fn a_step_examines_a_bounded_window_of_grants() {
        let (_dir, store) = store_with_user_and_client();
        store
            .transaction(|tx| {
                for id in 1..=300 {
                    tx.sqlite()?.execute(
                        "INSERT INTO grants (id, user_id, client_id, created_at, revoked_at)
                         VALUES (?1, 'u', 'c', 0, 1)",
                        [id],
                    )?;
                }
                Ok(())
            })
            .expect("grants");
        let first = store
            .transaction(|tx| step(tx.sqlite()?, 0, NOW, &RETENTION))
            .expect("step");
        assert_eq!(first.next, Some(GRANTS_PER_STEP));
        assert_eq!(first.deleted, GRANTS_PER_STEP as usize);
        assert_eq!(sweep(&store), 300 - GRANTS_PER_STEP as usize);
    }
}
