//! The SQLite backend of the store: the one database file, its pragmas, the pool of
//! reading connections and (for the server) the group-committing writer and the file watch.
//! [`super::Store`] wraps it; its closures get the rusqlite connection itself.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{diagnose, files, health, migrate, writer, StoreError, READ_CONNECTIONS};

/// SQLite page cache per pooled (reading) connection, in KiB. The OS page cache holds the
/// file anyway; SQLite's default (2 MB) on every connection made RSS grow with the number
/// of connections under load.
const READER_CACHE_KIB: i64 = 512;
/// The writer's page cache, in KiB: the pages every insert touches (index interiors).
pub(crate) const WRITER_CACHE_KIB: i64 = 2048;
/// After a checkpoint has copied the whole WAL into the database, SQLite truncates the WAL
/// file to this size (bytes) when it next reuses it, so one long reader cannot leave a
/// WAL of hundreds of MB behind for good.
const JOURNAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// How long a writer waits for the lock before SQLite reports "database is locked".
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the server looks at its database path when no request does.
const FILE_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// How every connection after the first opens the database: read-write, never creating
/// it, each connection used by one thread at a time.
pub(crate) const OPEN_EXISTING: OpenFlags =
    OpenFlags::SQLITE_OPEN_READ_WRITE.union(OpenFlags::SQLITE_OPEN_NO_MUTEX);

/// A pool of connections to one oauthd database file, plus (for the server) the one
/// group-committing writer. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    path: std::path::PathBuf,
    /// The file the path named when the store was opened.
    opened: files::FileId,
    /// The server's view of the file; `None` for the admin CLI.
    health: Option<Arc<health::Health>>,
    writer: Option<writer::Writer>,
}

impl SqliteStore {
    /// Opens (creating if absent) the database at `path`, refusing any file that is not an
    /// oauthd database or is newer than this binary, without modifying it. Only `serve`,
    /// `restore` and the commands that add something may create a database.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, OPEN_EXISTING | OpenFlags::SQLITE_OPEN_CREATE)
    }

    /// As [`SqliteStore::open`], but refuses a path that names no file: a mistyped `--db` must
    /// not leave an empty database behind for commands that read, change or remove.
    pub fn open_existing(path: &Path) -> Result<SqliteStore, StoreError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::Missing(path.to_owned()))
            }
            _ => SqliteStore::open_with(path, OPEN_EXISTING),
        }
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<SqliteStore, StoreError> {
        migrate::refuse_foreign_file(path)?;
        // Open and migrate on one plain connection first: a path that cannot be opened or
        // created fails here at once with the reason, instead of the pool retrying for its
        // whole connection timeout.
        let mut first =
            Connection::open_with_flags(path, flags).map_err(|e| diagnose::diagnose(path, &e))?;
        let opened = files::FileId::of(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            cause: e.to_string(),
        })?;
        configure_connection(&mut first).map_err(|e| diagnose::diagnose(path, &e))?;
        migrate::migrate(&mut first, path).map_err(|e| match e {
            StoreError::Sqlite(e) => diagnose::diagnose(path, &e),
            other => other,
        })?;
        drop(first);
        // Later connections never create the file, and refuse to start on a file other
        // than the one opened here: if it vanishes or is replaced, they fail instead of
        // starting an empty database at the path or applying the old -wal to a new file.
        let init_path = path.to_owned();
        let manager = SqliteConnectionManager::file(path)
            .with_flags(OPEN_EXISTING)
            .with_init(move |conn| {
                configure_connection(conn)?;
                match files::FileId::of(&init_path) {
                    Ok(id) if id == opened => Ok(()),
                    _ => Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                        Some("the database file was removed or replaced".into()),
                    )),
                }
            });
        SqliteStore::over_pool(manager, READ_CONNECTIONS, path, opened)
    }

    /// A store (no writer yet) over a pool of at most `connections` made by `manager`.
    /// The pool's first connection is open when this returns (`build`, not
    /// `build_unchecked`): a background thread still connecting after the store was
    /// dropped would hold the file open, and keep a stop from truncating the WAL.
    fn over_pool(
        manager: SqliteConnectionManager,
        connections: u32,
        path: &Path,
        opened: files::FileId,
    ) -> Result<SqliteStore, StoreError> {
        let pool = Pool::builder()
            .max_size(connections)
            // Connections open on demand: an idle server keeps one, not eight (memory, start time).
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            // Failures reach callers as errors of `get()`; don't also log each retry.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)?;
        Ok(SqliteStore {
            pool,
            path: path.to_owned(),
            opened,
            health: None,
            writer: None,
        })
    }

    /// Opens an existing, current oauthd database for commands that only read (`check`,
    /// `audit`, `backup`, the `list` and `show` commands). It never creates, migrates or
    /// writes, so it takes no write lock and works while another process holds one; every
    /// connection is `query_only`. A missing file, or one an older binary wrote, is
    /// refused.
    pub fn open_for_reading(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_error = |cause: String| StoreError::Open {
            path: path.to_owned(),
            cause,
        };
        if std::fs::symlink_metadata(path).is_err() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        migrate::refuse_foreign_file(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut first =
            Connection::open_with_flags(path, flags).map_err(|e| diagnose::diagnose(path, &e))?;
        let opened = files::FileId::of(path).map_err(|e| open_error(e.to_string()))?;
        configure_reader(&mut first).map_err(|e| diagnose::diagnose(path, &e))?;
        migrate::require_current(&first, path)?;
        drop(first);
        let manager = SqliteConnectionManager::file(path)
            .with_flags(flags)
            .with_init(configure_reader);
        SqliteStore::over_pool(manager, 2, path, opened)
    }

    /// A pooled connection, for synchronous callers (the admin CLI, blocking threads).
    pub fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` with a connection on the current (blocking) thread.
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        f(&mut conn)
    }

    /// The writer's metrics (unrecorded ones when no writer runs).
    pub fn writer_metrics(&self) -> crate::metrics::WriterMetrics {
        self.writer
            .as_ref()
            .map(writer::Writer::metrics)
            .unwrap_or_default()
    }

    /// The sizes of the `.db` file and its `-wal` (0 when missing or unreadable), read
    /// now: two `stat`s.
    pub fn storage_size(&self) -> super::StorageSize {
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        super::StorageSize {
            database_bytes: size(&self.path),
            wal_bytes: Some(size(&files::with_suffix(&self.path, "-wal"))),
        }
    }

    /// Starts the group-committing writer thread used by [`SqliteStore::write`]; the server
    /// calls this once after opening.
    /// Audit rows older than `audit_retention` are deleted in its idle time.
    pub fn start_writer(&mut self, audit_retention: std::time::Duration) -> Result<(), StoreError> {
        let writer = writer::Writer::start_retaining(&self.path, audit_retention)?;
        if files::FileId::of(&self.path).ok() != Some(self.opened) {
            return Err(health::Problem::Replaced.into());
        }
        self.health = Some(writer.health());
        self.writer = Some(writer);
        self.start_file_watch()
    }

    /// Looks at the path once a second, so an idle server also notices at once that its
    /// file was replaced and empties the stale WAL before anything opens the new file
    /// (and a crash cannot leave it behind). One `stat` per second.
    fn start_file_watch(&self) -> Result<(), StoreError> {
        // The pool and the health only: holding the writer here would keep its queue open
        // for ever.
        let (pool, health) = (self.pool.clone(), self.health.clone());
        std::thread::Builder::new()
            .name("oauthd-file-watch".into())
            .spawn(move || loop {
                std::thread::sleep(FILE_WATCH_INTERVAL);
                if let Some(health) = &health {
                    let _ = check_file(&pool, health);
                }
            })
            .map(|_| ())
            .map_err(|e| StoreError::Open {
                path: self.path.clone(),
                cause: format!("cannot start the file watch thread: {e}"),
            })
    }

    /// Proves that a commit reaches the disk, with a small real write: `serve`
    /// refuses to start on a database it cannot write (read-only mode or mount, a full
    /// disk) instead of failing every request later.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let probed = self.with_conn(|conn| {
            let tx = write_tx(conn)?;
            health::probe_write(&*tx)?;
            tx.commit()?;
            Ok(())
        });
        probed.map_err(|e| match e {
            StoreError::Sqlite(e) => diagnose::diagnose(&self.path, &e),
            other => other,
        })
    }

    /// `Ok` when the server's database can be trusted, else the first problem: the file
    /// removed or replaced, read-only, or writes failing. After a failed write it probes
    /// with a real commit (on a pooled connection, beside the writer), so an idle server
    /// turns healthy again once writes work.
    pub async fn health(&self) -> Result<(), StoreError> {
        let Some(health) = self.health.clone() else {
            return Ok(());
        };
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            check_file(&store.pool, &health)?;
            health.writable()?;
            health
                .writes()
                .recheck(|| store.transaction(health::probe_write))?;
            store.with_conn(|conn| super::ping(&*conn))
        })
        .await
        .map_err(|_| StoreError::TaskFailed)?
    }

    /// Commits the writes still queued, checkpoints and truncates the WAL (so the `.db`
    /// file alone holds every committed write), and stops the writer thread. Blocks: for
    /// the end of `serve`, after the last request.
    pub fn stop_writer(&self) {
        if let Some(writer) = &self.writer {
            writer.stop();
        }
    }

    /// Runs `f` inside one write transaction (BEGIN IMMEDIATE) on the current thread and
    /// commits only when `f` succeeds: a change and its audit entry land together or not at
    /// all. For synchronous callers such as the admin CLI.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_conn(|conn| {
            let tx = write_tx(conn)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .map_err(|e| match e {
            // "attempt to write a readonly database" does not say which file or why.
            StoreError::Sqlite(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) =>
            {
                diagnose::diagnose(&self.path, &e)
            }
            other => other,
        })
    }

    /// Runs the write `f` on the writer thread, batched with concurrent writes into one
    /// transaction, and returns once that transaction is committed (durable). `f` runs in
    /// its own savepoint: an `Err` undoes its changes only. Without a started writer (tests,
    /// tools) it runs in its own transaction on the blocking pool.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write(f).await,
            None => {
                let store = self.clone();
                tokio::task::spawn_blocking(move || store.transaction(f))
                    .await
                    .map_err(|_| StoreError::TaskFailed)?
            }
        }
    }

    /// Runs the read `f` with a pooled connection on tokio's blocking pool: the only way
    /// async code may read SQLite, because `pool.get()` and every statement can block.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            // Nothing is answered from a file the path no longer names.
            if let Some(health) = &store.health {
                check_file(&store.pool, health)?;
            }
            store.with_conn(f)
        })
        .await
        .map_err(|_| StoreError::TaskFailed)?
    }
}

/// Whether the path still names the opened file. When it names another file, the stale
/// WAL is emptied through an idle pooled connection (all of them are open on the old file,
/// see `with_init`); `try_get` does not wait for the pool to open a new connection, which
/// would fail.
fn check_file(
    pool: &Pool<SqliteConnectionManager>,
    health: &health::Health,
) -> Result<(), StoreError> {
    let checked = health.file();
    if checked == Err(health::Problem::Replaced) {
        if let Some(conn) = pool.try_get() {
            health.empty_stale_wal(&conn);
        }
    }
    Ok(checked?)
}

/// Pragmas every connection needs. WAL lets readers run beside the one writer;
/// synchronous=FULL makes a commit durable before it returns (an acknowledged token
/// survives power loss), at the cost of one fsync per commit.
pub(crate) fn configure_connection(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;",
    )?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// A connection of a reading command: the usual pragmas, and `query_only`, so nothing it
/// runs can write (nor take the write lock).
fn configure_reader(conn: &mut Connection) -> rusqlite::Result<()> {
    configure_connection(conn)?;
    conn.pragma_update(None, "query_only", true)
}

/// Starts a write transaction that takes the write lock at once (BEGIN IMMEDIATE), so two
/// writers queue on the busy timeout instead of failing with SQLITE_BUSY on upgrade.
pub fn write_tx(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_schema_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).expect("open new");
        let version: i64 = store
            .with_conn(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .expect("version");
        assert_eq!(version, migrate::SCHEMA_VERSION);
        drop(store);
        SqliteStore::open(&path).expect("reopen");
    }

    #[test]
    fn open_refuses_non_sqlite_file_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, b"hello, not a database\n").expect("write");
        let err = SqliteStore::open(&path).err().expect("must refuse");
        assert!(matches!(err, StoreError::NotSqlite(_)), "{err}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"hello, not a database\n"
        );
    }

    #[test]
    fn open_refuses_foreign_sqlite_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("other.db");
        {
            let c = Connection::open(&path).expect("open");
            c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                .expect("create");
        }
        let before = std::fs::read(&path).expect("read");
        let err = SqliteStore::open(&path).err().expect("must refuse");
        assert!(matches!(err, StoreError::Foreign(_)), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn open_refuses_newer_schema_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new.db");
        drop(SqliteStore::open(&path).expect("create"));
        {
            let c = Connection::open(&path).expect("open");
            c.busy_timeout(Duration::from_secs(10))
                .expect("busy timeout");
            // Leaving WAL takes an exclusive lock without consulting the busy handler, so
            // a connection still closing makes it fail at once: retry for a while.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while let Err(e) = c.execute_batch("PRAGMA journal_mode = DELETE;") {
                assert!(std::time::Instant::now() < deadline, "leave WAL: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            c.execute_batch("PRAGMA user_version = 999;").expect("bump");
        }
        let before = std::fs::read(&path).expect("read");
        let err = SqliteStore::open(&path).err().expect("must refuse");
        assert!(
            matches!(err, StoreError::TooNew { found: 999, .. }),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn open_refuses_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = SqliteStore::open(dir.path()).err().expect("must refuse");
        assert!(matches!(err, StoreError::IsDirectory(_)), "{err}");
    }
}
