//! What the writer thread does when no write is waiting: housekeeping sweeps in small
//! steps, and truncating the WAL once the writes have stopped. Each piece of idle work is
//! one short transaction, and the writer checks its queue between pieces, so a write
//! never waits behind more than one step.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

pub use super::super::housekeeping::SWEEP_INTERVAL;
use super::super::housekeeping::{self, FIRST_SWEEP_DELAY};
use super::super::{now, StoreError, BUSY_TIMEOUT};
use crate::oauth::RETENTION;
/// The WAL is truncated once no write has come for this long.
const QUIET_BEFORE_TRUNCATE: Duration = Duration::from_secs(1);
/// A truncation that a reader blocked is retried this often.
const TRUNCATE_RETRY: Duration = Duration::from_secs(1);

pub struct IdleWork {
    wal: PathBuf,
    sweep_interval: Duration,
    /// The grant id the running sweep has reached; `None` between sweeps.
    sweep_after: Option<i64>,
    next_sweep: Instant,
    /// When to truncate the WAL; `None` when it is known to be empty.
    truncate_at: Option<Instant>,
    /// Audit rows older than this are deleted after each sweep of the grants.
    audit_retention: Duration,
    /// The audit row id the sweep's audit pruning has reached; `None` when the sweep is
    /// not pruning the audit trail.
    audit_after: Option<i64>,
    /// Expired ACME challenge offers are deleted next (the last phase of a sweep).
    acme_due: bool,
}

impl IdleWork {
    pub fn new(wal: &Path, sweep_interval: Duration, audit_retention: Duration) -> IdleWork {
        let now = Instant::now();
        IdleWork {
            wal: wal.to_owned(),
            sweep_interval,
            sweep_after: None,
            next_sweep: now + FIRST_SWEEP_DELAY.min(sweep_interval),
            // The WAL may hold frames from before this start.
            truncate_at: Some(now + QUIET_BEFORE_TRUNCATE),
            audit_retention,
            audit_after: None,
            acme_due: false,
        }
    }

    /// How long the writer may wait for a job before idle work is due. Zero while a sweep
    /// runs: its next step is due whenever the queue is empty.
    pub fn timeout(&self) -> Duration {
        if self.sweep_after.is_some() || self.audit_after.is_some() || self.acme_due {
            return Duration::ZERO;
        }
        let due = match self.truncate_at {
            Some(at) => at.min(self.next_sweep),
            None => self.next_sweep,
        };
        due.saturating_duration_since(Instant::now())
    }

    /// A batch was committed: the WAL grew, and truncating it waits for quiet again.
    pub fn wrote(&mut self) {
        self.truncate_at = Some(Instant::now() + QUIET_BEFORE_TRUNCATE);
    }

    /// Does the one piece of idle work that is due, if any.
    pub fn run_step(&mut self, conn: &Connection) {
        let now_instant = Instant::now();
        if self.audit_after.is_some() {
            self.audit_step(conn);
        } else if self.acme_due {
            self.acme_step(conn);
        } else if self.sweep_after.is_some() || now_instant >= self.next_sweep {
            self.sweep_step(conn);
        } else if self.truncate_at.is_some_and(|at| now_instant >= at) {
            self.truncate_at = match truncate_wal(conn) {
                Ok(true) => None,
                Ok(false) => Some(now_instant + TRUNCATE_RETRY),
                Err(e) => {
                    tracing::warn!(error = %e, "WAL truncation failed");
                    Some(now_instant + TRUNCATE_RETRY)
                }
            };
        }
    }

    fn sweep_step(&mut self, conn: &Connection) {
        let after = self.sweep_after.unwrap_or(0);
        let started = Instant::now();
        match in_transaction(conn, |tx| housekeeping::step(tx, after, now(), &RETENTION)) {
            Ok(step) => {
                tracing::debug!(
                    after,
                    deleted = step.deleted,
                    micros = started.elapsed().as_micros() as u64,
                    "housekeeping step"
                );
                if step.deleted > 0 {
                    self.wrote();
                }
                self.sweep_after = step.next;
            }
            Err(e) => {
                tracing::warn!(error = %e, "housekeeping step failed; retried next sweep");
                self.sweep_after = None;
            }
        }
        // The grants are done: the audit trail is next.
        if self.sweep_after.is_none() {
            self.audit_after = Some(0);
        }
    }

    /// Deletes the audit rows past the retention in the next window; the sweep ends at
    /// the first window without one.
    fn audit_step(&mut self, conn: &Connection) {
        let after = self.audit_after.unwrap_or(0);
        let cutoff = housekeeping::audit_cutoff(self.audit_retention, now());
        match in_transaction(conn, |tx| housekeeping::prune_audit(tx, after, cutoff)) {
            Ok(step) => {
                tracing::debug!(after, deleted = step.deleted, "audit retention step");
                if step.deleted > 0 {
                    self.wrote();
                }
                self.audit_after = step.next;
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit retention step failed; retried next sweep");
                self.audit_after = None;
            }
        }
        // The audit trail is done: the expired challenge offers are next.
        if self.audit_after.is_none() {
            self.acme_due = true;
        }
    }

    /// Deletes the next window of expired ACME challenge offers; the sweep ends at the
    /// first window that is not full.
    fn acme_step(&mut self, conn: &Connection) {
        match in_transaction(conn, |tx| housekeeping::prune_acme_challenges(tx, 0, now())) {
            Ok(step) => {
                tracing::debug!(deleted = step.deleted, "ACME challenge offers step");
                if step.deleted > 0 {
                    self.wrote();
                }
                self.acme_due = step.next.is_some();
            }
            Err(e) => {
                tracing::warn!(error = %e, "ACME challenge offers step failed; retried next sweep");
                self.acme_due = false;
            }
        }
        if !self.acme_due {
            self.next_sweep = Instant::now() + self.sweep_interval;
            // Other processes (the admin CLI) write to the WAL too.
            if self.truncate_at.is_none() && wal_has_frames(&self.wal) {
                self.truncate_at = Some(Instant::now());
            }
        }
    }
}

/// Runs `f` in its own write transaction, committed when it succeeds.
fn in_transaction<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match f(conn) {
        Ok(value) => {
            conn.execute_batch("COMMIT")?;
            Ok(value)
        }
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

fn wal_has_frames(wal: &Path) -> bool {
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

/// Copies the whole WAL into the database file and truncates the WAL to zero bytes.
/// Returns `false` when a reader still uses part of the WAL (the checkpoint then did what
/// it could). It does not wait for readers: a long `oauthd check` must not hold up the
/// writer, and with it every write of the server.
pub fn truncate_wal(conn: &Connection) -> Result<bool, StoreError> {
    conn.busy_timeout(Duration::ZERO)?;
    let result = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(BUSY_TIMEOUT)?;
    match result {
        Ok(busy) => Ok(busy == 0),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}
