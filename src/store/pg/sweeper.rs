//! Housekeeping on PostgreSQL: what the SQLite writer does in its idle time, done by a task
//! of the store's driver runtime. Every [`housekeeping::SWEEP_INTERVAL`] it runs one round
//! on the runtime's blocking pool: the retention policy over every grant, then the audit
//! trail past `serve --audit-retention`, then the expired ACME challenge offers, each window its own short transaction.
//!
//! Several instances on one database would only repeat each other's work (and wait on each
//! other's row locks): a round holds an advisory lock, and an instance that finds it taken
//! skips its round.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{PgConn, PgStore};
use crate::oauth::RETENTION;
use crate::store::{housekeeping, now, StoreError};

/// The advisory lock key of a sweep round ("oauthdSW"); only oauthd's sweeper takes it.
pub const SWEEP_LOCK: i64 = 0x6f61_7574_6864_5357;

/// Each window's transaction gives up a row lock it waits this long for. Deleting a grant
/// locks it and then its codes and tokens, the opposite order of a request that revokes
/// it (a replayed code: the code, then the grant); the sweeper's wait ends well before
/// PostgreSQL's deadlock check (`deadlock_timeout`, 1 s by default) could pick the request
/// as the victim. The window is then retried next round.
const YIELD_TO_REQUESTS: &str = "SET LOCAL lock_timeout = '100ms'";

/// The handle of a running sweeper.
pub struct Sweeper {
    stop: Arc<Stop>,
}

/// Tells the task (and a round between two windows) to stop.
#[derive(Default)]
struct Stop {
    asked: AtomicBool,
    wake: Notify,
}

impl Sweeper {
    /// Spawns the task on `store`'s driver runtime: its first round after `first`, then one
    /// every sweep interval after the previous one ended.
    pub fn start(store: PgStore, first: Duration, audit_retention: Duration) -> Sweeper {
        let stop = Arc::new(Stop::default());
        let handle = store.runtime.handle.clone();
        let task_stop = Arc::clone(&stop);
        handle.spawn(async move {
            let mut wait = first;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = task_stop.wake.notified() => {}
                }
                if task_stop.asked.load(Ordering::Relaxed) {
                    return;
                }
                let (round_store, round_stop) = (store.clone(), Arc::clone(&task_stop));
                let round = tokio::task::spawn_blocking(move || {
                    let stopping = || round_stop.asked.load(Ordering::Relaxed);
                    sweep_round(&round_store, audit_retention, stopping)
                });
                match round.await {
                    Ok(Ok(Some(deleted))) => tracing::debug!(deleted, "housekeeping round"),
                    Ok(Ok(None)) => {
                        tracing::debug!("housekeeping round skipped: another instance sweeps")
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "housekeeping round failed; retried next round")
                    }
                    Err(_) => tracing::warn!("housekeeping round panicked; retried next round"),
                }
                wait = housekeeping::SWEEP_INTERVAL;
            }
        });
        Sweeper { stop }
    }

    /// Asks the task to stop; a round in progress ends after its current window.
    pub fn stop(&self) {
        self.stop.asked.store(true, Ordering::Relaxed);
        self.stop.wake.notify_one();
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One round, unless another instance's round holds the lock (`None`): the grants, then
/// the audit trail, then the expired ACME challenge offers. Returns the rows deleted.
pub fn sweep_round(
    store: &PgStore,
    audit_retention: Duration,
    stopping: impl Fn() -> bool,
) -> Result<Option<usize>, StoreError> {
    store.with_advisory_lock(SWEEP_LOCK, |conn: &PgConn| {
        let grants = housekeeping::walk(
            |after| window(conn, |tx| housekeeping::step(tx, after, now(), &RETENTION)),
            &stopping,
        )?;
        let cutoff = housekeeping::audit_cutoff(audit_retention, now());
        let audit = housekeeping::walk(
            |after| window(conn, |tx| housekeeping::prune_audit(tx, after, cutoff)),
            &stopping,
        )?;
        let challenges = housekeeping::walk(
            |after| {
                window(conn, |tx| {
                    housekeeping::prune_acme_challenges(tx, after, now())
                })
            },
            &stopping,
        )?;
        Ok(grants + audit + challenges)
    })
}

/// One window of a round: its own transaction, yielding to requests' row locks.
fn window<T>(
    conn: &PgConn,
    f: impl FnOnce(&PgConn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.transaction(|tx| {
        tx.batch(YIELD_TO_REQUESTS)?;
        f(tx)
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_cluster;
    use super::*;
    use crate::store::sql::Db;

    const DAY: i64 = 86_400;

    fn audit_rows(store: &PgStore) -> Vec<i64> {
        store
            .with_conn(|db| db.query_all("SELECT at FROM audit_log ORDER BY id", &[], |r| r.get(0)))
            .expect("audit rows")
    }

    fn add_audit_row(store: &PgStore, at: i64) {
        store
            .with_conn(|db| {
                db.execute("INSERT INTO audit_log (at, event) VALUES (?1, 'e')", &[&at])
            })
            .expect("audit row");
    }

    #[test]
    fn while_one_instance_holds_the_sweep_lock_the_other_skips() {
        let url = test_cluster::shared().new_database();
        let (one, other) = (
            PgStore::connect(&url).expect("one"),
            PgStore::connect(&url).expect("other"),
        );
        let skipped = one
            .with_advisory_lock(SWEEP_LOCK, |_| {
                other.with_advisory_lock(SWEEP_LOCK, |_| Ok(()))
            })
            .expect("lock");
        assert_eq!(skipped, Some(None), "the other instance skips");
        let round = sweep_round(&other, Duration::MAX, || false).expect("round");
        assert_eq!(round, Some(0), "released once the holder is done");
        // A failed holder closes its connection, which releases the lock too.
        let failed = one.with_advisory_lock(SWEEP_LOCK, |_| {
            Err::<(), _>(StoreError::CommitFailed("test".into()))
        });
        assert!(failed.is_err());
        let started = std::time::Instant::now();
        while sweep_round(&other, Duration::MAX, || false).expect("round") != Some(0) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "lock never released"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_window_gives_up_a_row_lock_a_request_holds() {
        let store = PgStore::connect(&test_cluster::shared().new_database()).expect("connect");
        add_audit_row(&store, 1);
        let started = std::time::Instant::now();
        let blocked = store
            .transaction(|request| {
                request.query_all("SELECT id FROM audit_log FOR UPDATE", &[], |r| {
                    r.get::<i64>(0)
                })?;
                Ok(window(&store.conn()?, |tx| {
                    housekeeping::prune_audit(tx, 0, i64::MAX)
                }))
            })
            .expect("request");
        assert!(blocked.is_err(), "{blocked:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(audit_rows(&store), [1], "nothing deleted");
    }

    #[test]
    fn a_round_prunes_the_audit_trail_past_its_retention() {
        let store = PgStore::connect(&test_cluster::shared().new_database()).expect("connect");
        let now = now();
        let old = (0..housekeeping::AUDIT_ROWS_PER_STEP + 10).map(|_| now - 10 * DAY);
        for at in old.chain([now - DAY]) {
            add_audit_row(&store, at);
        }
        let week = Duration::from_secs(7 * DAY as u64);
        let deleted = sweep_round(&store, week, || false).expect("round");
        assert_eq!(
            deleted,
            Some(housekeeping::AUDIT_ROWS_PER_STEP as usize + 10)
        );
        assert_eq!(audit_rows(&store), [now - DAY]);
    }

    #[test]
    fn a_started_sweeper_runs_rounds_until_stopped() {
        let mut store = PgStore::connect(&test_cluster::shared().new_database()).expect("connect");
        add_audit_row(&store, 1);
        store.start_sweeper_every(Duration::from_millis(10), Duration::from_secs(DAY as u64));
        let started = std::time::Instant::now();
        while !audit_rows(&store).is_empty() {
            assert!(started.elapsed() < Duration::from_secs(30), "never swept");
            std::thread::sleep(Duration::from_millis(50));
        }
        store.stop_sweeper();
    }
}
