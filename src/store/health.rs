//! Whether the server may trust its database right now: the path still names the file it
//! opened at start (not removed, not replaced), the file is writable, and the last write
//! committed. The writer asks before and after every batch, reads ask before they run,
//! and `/healthz` reports the first problem found.
//!
//! A removed or replaced file is never written again: writes into a deleted inode would
//! be answered 200 and lost at the next restart, and a new connection on the path would
//! apply the old `-wal` to the new file and corrupt it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::files::FileId;

/// How long a failed write keeps `/healthz` at 503 although a probe write succeeds: on a
/// nearly full disk a one-page probe can fit where real batches do not, so only a real
/// batch that commits, or this long without a failure, clears it.
const FAILURE_MEMORY: Duration = Duration::from_secs(10);

/// The first reason the database cannot be trusted. The texts name no request data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the database file was removed")]
    Removed,
    #[error("the database file was replaced by another file; restart to use the new one")]
    Replaced,
    #[error("cannot look at the database file: {0}")]
    Unreachable(String),
    #[error("the database is read-only: {0}")]
    ReadOnly(&'static str),
    #[error("writes are failing: {0}")]
    WritesFailing(String),
}

/// The server's view of its database file, shared by the writer, readers and `/healthz`.
pub struct Health {
    path: PathBuf,
    opened: FileId,
    writes: WriteFailures,
    /// Set once the stale WAL of a replaced file has been emptied.
    replaced_handled: AtomicBool,
}

impl Health {
    pub fn new(path: &Path, opened: FileId) -> Health {
        Health {
            path: path.to_owned(),
            opened,
            writes: WriteFailures::default(),
            replaced_handled: AtomicBool::new(false),
        }
    }

    /// Whether the path still names the file opened at start. One `stat`, cheap enough
    /// for every write batch and every read.
    pub fn file(&self) -> Result<(), Problem> {
        match FileId::of(&self.path) {
            Ok(id) if id == self.opened => Ok(()),
            Ok(_) => Err(Problem::Replaced),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Problem::Removed),
            Err(e) => Err(Problem::Unreachable(e.to_string())),
        }
    }

    /// The writer's check before a batch, on its own connection. When the file was
    /// replaced, the first check also checkpoints the old file's WAL into it and truncates
    /// the `-wal`, so whatever opens the new file at the path later does not apply the old
    /// file's pages to it.
    pub fn before_write(&self, conn: &Connection) -> Result<(), Problem> {
        let checked = self.file();
        if checked == Err(Problem::Replaced) {
            self.empty_stale_wal(conn);
        }
        checked
    }

    /// Once per replaced file: checkpoints the WAL into the old file (`conn` must be open
    /// on it) and truncates the `-wal`. Readers call this too, so a replacement is handled
    /// at the first request that touches the database.
    pub fn empty_stale_wal(&self, conn: &Connection) {
        if !self.replaced_handled.swap(true, Ordering::SeqCst) {
            match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                Ok(()) => tracing::warn!("database file replaced; its old WAL was emptied"),
                Err(e) => crate::log_limit::storage_error("emptying the old WAL failed", &e),
            }
        }
    }

    /// The outcomes of the writer's batches, for `/healthz`.
    pub fn writes(&self) -> &WriteFailures {
        &self.writes
    }

    /// Whether this process may still write the file: a read-only mount or a mode that
    /// lets this user not write it would fail the next write, or the next start.
    pub fn writable(&self) -> Result<(), Problem> {
        if super::diagnose::read_only_mount(&self.path) {
            return Err(Problem::ReadOnly("the filesystem is mounted read-only"));
        }
        if !super::diagnose::may_access(&self.path, libc::W_OK) {
            return Err(Problem::ReadOnly(
                "the database file is not writable by this user",
            ));
        }
        Ok(())
    }
}

/// Whether the last write failed, and why and when: on a full disk, `/healthz` reports
/// it until a write commits again.
#[derive(Default)]
pub struct WriteFailures {
    /// Why and when the last write failed; `None` once one commits.
    last: Mutex<Option<(String, Instant)>>,
}

impl WriteFailures {
    /// Remembers how the last write ended.
    pub fn record(&self, outcome: &Result<(), String>) {
        *self.locked() = outcome
            .as_ref()
            .err()
            .map(|reason| (reason.clone(), Instant::now()));
    }

    /// Whether the last write failed (and why).
    pub fn last(&self) -> Result<(), Problem> {
        match self.locked().as_ref() {
            Some((reason, _)) => Err(Problem::WritesFailing(reason.clone())),
            None => Ok(()),
        }
    }

    /// `/healthz` after a failed write: commits `probe` (a [`probe_write`]), then forgets
    /// a failure older than [`FAILURE_MEMORY`] (an idle server becomes healthy again once
    /// the disk has room) and still reports a recent one.
    pub fn recheck(
        &self,
        probe: impl FnOnce() -> Result<(), super::StoreError>,
    ) -> Result<(), super::StoreError> {
        if self.last().is_ok() {
            return Ok(());
        }
        probe()?;
        let mut failure = self.locked();
        match failure.as_ref() {
            Some((reason, at)) if at.elapsed() < FAILURE_MEMORY => {
                Err(Problem::WritesFailing(reason.clone()).into())
            }
            _ => {
                *failure = None;
                Ok(())
            }
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, Option<(String, Instant)>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A small real write: proves that commits reach the disk (used at start and by
/// `/healthz` after a failed write). It must change the stored value, since SQLite skips
/// writing a page whose content an UPDATE leaves the same. On PostgreSQL, `serve`'s
/// proof that it may write there.
pub fn probe_write(db: &impl super::sql::Db) -> Result<(), super::StoreError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_default();
    db.execute(
        "INSERT INTO oauthd_meta (key, value) VALUES ('last_write_probe', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&stamp],
    )?;
    Ok(())
}

/// On PostgreSQL, whether the server may write there: the database answers, and its
/// sessions' transactions are not read-only (`default_transaction_read_only` switched on,
/// or a hot standby), which would fail every write until it is switched back.
#[cfg(feature = "postgres")]
pub fn postgres_writable(db: &impl super::sql::Db) -> Result<(), super::StoreError> {
    let read_only: String = db.query_one(
        "SELECT current_setting('transaction_read_only')",
        &[],
        |r| r.get(0),
    )?;
    if read_only == "on" {
        return Err(Problem::ReadOnly(
            "PostgreSQL refuses writes (default_transaction_read_only is on, or it is a standby)",
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn a_read_only_postgres_session_is_reported() {
        use crate::store::sql::Db;
        crate::store::test_backends::with_postgres(|db| {
            postgres_writable(db).expect("writable");
            db.execute("SET default_transaction_read_only = on", &[])
                .expect("set");
            let refused = postgres_writable(db).expect_err("read-only");
            assert!(
                matches!(
                    refused,
                    crate::store::StoreError::Unavailable(Problem::ReadOnly(_))
                ),
                "{refused}"
            );
            db.execute("SET default_transaction_read_only = off", &[])
                .expect("reset");
        });
    }

    #[test]
    fn a_removed_or_replaced_file_is_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        std::fs::write(&path, b"x").expect("write");
        let health = Health::new(&path, FileId::of(&path).expect("stat"));
        assert_eq!(health.file(), Ok(()));
        let other = dir.path().join("other");
        std::fs::write(&other, b"y").expect("write");
        std::fs::rename(&other, &path).expect("rename");
        assert_eq!(health.file(), Err(Problem::Replaced));
        std::fs::remove_file(&path).expect("rm");
        assert_eq!(health.file(), Err(Problem::Removed));
    }

    #[test]
    fn a_failed_write_is_reported_until_one_commits() {
        let writes = WriteFailures::default();
        writes.record(&Err("database or disk is full".into()));
        let failing = Problem::WritesFailing("database or disk is full".into());
        assert_eq!(writes.last(), Err(failing.clone()));
        let mut probed = false;
        let rechecked = writes.recheck(|| {
            probed = true;
            Ok(())
        });
        assert!(probed, "a failure is rechecked with a probe write");
        assert!(
            matches!(rechecked, Err(super::super::StoreError::Unavailable(ref p)) if *p == failing),
            "a recent failure is remembered: {rechecked:?}"
        );
        writes.record(&Ok(()));
        assert_eq!(writes.last(), Ok(()));
        assert!(writes
            .recheck(|| panic!("no probe without a failure"))
            .is_ok());
    }
}
