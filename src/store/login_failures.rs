//! Login failure counters that several instances of one PostgreSQL database share, per
//! keyed hash of an account or a client address (`throttle::shared` makes the keys and
//! decides; this module only reads and writes). On PostgreSQL the table is UNLOGGED: no
//! WAL and no fsync per guess. A row is changed only if nobody changed it since it was
//! read (its `version`), so instances counting at once lose no failure.

use super::sql::{Db, Row};
use super::StoreError;

/// One key's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Failures in the current window (since the last lockout).
    pub failures: i64,
    pub lockouts: i64,
    /// Unix milliseconds.
    pub last_failure_ms: i64,
    pub locked_until_ms: Option<i64>,
    /// A refusal during the current lockout was audited.
    pub lockout_noted: bool,
}

/// How often a row is read again after another instance changed it in between.
const MAX_TRIES: usize = 32;

/// The counters of `key`, if any.
pub fn find(db: &impl Db, key: &[u8]) -> Result<Option<Counts>, StoreError> {
    Ok(versioned(db, key)?.map(|(counts, _)| counts))
}

fn versioned(db: &impl Db, key: &[u8]) -> Result<Option<(Counts, i64)>, StoreError> {
    db.query_opt(
        "SELECT failures, lockouts, last_failure_ms, locked_until_ms, lockout_noted, version
         FROM login_failures WHERE key = ?1",
        &[&key],
        |r: &Row<'_>| {
            Ok((
                Counts {
                    failures: r.get(0)?,
                    lockouts: r.get(1)?,
                    last_failure_ms: r.get(2)?,
                    locked_until_ms: r.get(3)?,
                    lockout_noted: r.get(4)?,
                },
                r.get(5)?,
            ))
        },
    )
}

/// Reads the counters of `key` (`None`: no row yet), and stores what `change` makes of
/// them, if it makes anything, as one step: when another instance changed the row in
/// between, reads it again and asks `change` again. Returns `change`'s answer.
pub fn update<T>(
    db: &impl Db,
    key: &[u8],
    mut change: impl FnMut(Option<Counts>) -> (Option<Counts>, T),
) -> Result<T, StoreError> {
    for _ in 0..MAX_TRIES {
        let found = versioned(db, key)?;
        let (new, answer) = change(found.map(|(counts, _)| counts));
        let Some(new) = new else {
            return Ok(answer);
        };
        let params = [
            &new.failures as &dyn super::sql::Param,
            &new.lockouts,
            &new.last_failure_ms,
            &new.locked_until_ms,
            &new.lockout_noted,
            &key,
        ];
        let stored = match found {
            Some((_, version)) => db.execute(
                "UPDATE login_failures SET failures = ?1, lockouts = ?2, last_failure_ms = ?3,
                     locked_until_ms = ?4, lockout_noted = ?5, version = version + 1
                 WHERE key = ?6 AND version = ?7",
                &[params.as_slice(), &[&version]].concat(),
            )?,
            None => db.execute(
                "INSERT INTO login_failures (failures, lockouts, last_failure_ms,
                     locked_until_ms, lockout_noted, key, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                 ON CONFLICT (key) DO NOTHING",
                &params,
            )?,
        };
        if stored == 1 {
            return Ok(answer);
        }
    }
    Err(StoreError::CommitFailed(
        "a login failure counter kept changing while it was counted".into(),
    ))
}

/// Removes the rows whose last failure is older than `before_ms` and that hold no
/// lockout at `now_ms`: they no longer change any decision. How many went.
pub fn forget_stale(db: &impl Db, before_ms: i64, now_ms: i64) -> Result<usize, StoreError> {
    db.execute(
        "DELETE FROM login_failures
         WHERE last_failure_ms < ?1 AND (locked_until_ms IS NULL OR locked_until_ms <= ?2)",
        &[&before_ms, &now_ms],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;

    fn counts(failures: i64, at: i64) -> Counts {
        Counts {
            failures,
            lockouts: 0,
            last_failure_ms: at,
            locked_until_ms: None,
            lockout_noted: false,
        }
    }

    fn login_failure_verbs(db: &impl Db) {
        assert_eq!(find(db, b"k").expect("find"), None);
        let bump = |found: Option<Counts>| {
            let n = found.map_or(0, |c| c.failures) + 1;
            (Some(counts(n, 10 * n)), n)
        };
        assert_eq!(update(db, b"k", bump).expect("insert"), 1);
        assert_eq!(update(db, b"k", bump).expect("update"), 2);
        assert_eq!(find(db, b"k").expect("find"), Some(counts(2, 20)));
        // No change asked: nothing written, the answer returned.
        assert_eq!(update(db, b"k", |_| (None, "kept")).expect("none"), "kept");
        let locked = Counts {
            locked_until_ms: Some(1000),
            lockout_noted: true,
            lockouts: 3,
            ..counts(0, 5)
        };
        update(db, b"locked", |_| (Some(locked), ())).expect("locked");
        assert_eq!(find(db, b"locked").expect("find"), Some(locked));
        // Old and unlocked goes; locked stays until its lockout ends.
        assert_eq!(forget_stale(db, 100, 500).expect("forget"), 1);
        assert_eq!(find(db, b"k").expect("find"), None);
        assert_eq!(forget_stale(db, 100, 1000).expect("forget"), 1);
        assert_eq!(find(db, b"locked").expect("find"), None);
    }
    on_both_backends!(login_failure_verbs);

    /// Two counters changing one row at once: the loser reads again, no count is lost.
    fn a_row_changed_in_between_is_read_again(db: &impl Db) {
        update(db, b"k", |_| (Some(counts(1, 0)), ())).expect("first");
        let mut asked = 0;
        let seen = update(db, b"k", |found| {
            asked += 1;
            if asked == 1 {
                // Another instance counts a failure between this read and this write.
                update(db, b"k", |f| {
                    (Some(counts(f.map_or(0, |c| c.failures) + 1, 0)), ())
                })
                .expect("other");
            }
            let n = found.map_or(0, |c| c.failures);
            (Some(counts(n + 1, 0)), n)
        })
        .expect("update");
        assert_eq!((asked, seen), (2, 2));
        assert_eq!(find(db, b"k").expect("find").map(|c| c.failures), Some(3));
    }
    on_both_backends!(a_row_changed_in_between_is_read_again);
}
