//! The store: the `Store` gate through which everything else reaches the database, an
//! SQLite file (`sqlite.rs`) or, with the `postgres` feature, a PostgreSQL database (`pg/`).
//!
//! Only `store/` contains SQL or imports rusqlite. Each submodule is a list of typed verbs
//! with the SQL beside the function that runs it. Async callers go through
//! [`Store::read`] and [`Store::write`], which run the closure on a blocking thread, so the
//! database never stalls a tokio worker; the synchronous admin CLI calls
//! [`Store::with_conn`] and [`Store::transaction`] directly. Every closure gets a [`Conn`],
//! whichever backend runs.

pub mod account;
pub mod acme;
pub mod audit;
pub mod brands;
pub mod client_log;
pub mod client_tokens;
pub mod clients;
pub mod conn;
pub mod consents;
pub mod devices;
pub mod diagnose;
mod email_key;
pub mod files;
pub mod grants;
pub mod health;
pub mod housekeeping;
pub mod location;
pub mod login_failures;
pub mod maintenance;
mod migrate;
pub mod orgs;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod post_logout;
pub mod restore;
pub mod server_secrets;
pub mod sessions;
pub mod signing_keys;
pub mod sql;
mod sqlite;
#[cfg(test)]
pub(crate) mod test_backends;
pub mod users;
mod writer;

use std::path::{Path, PathBuf};

pub use conn::Conn;
pub use location::Location;
pub use sqlite::SqliteStore;
pub(crate) use sqlite::{
    configure_connection, write_tx, BUSY_TIMEOUT, OPEN_EXISTING, WRITER_CACHE_KIB,
};

/// Pooled connections at most: the server's concurrent reads. The server also caps
/// tokio's blocking pool at this, since every blocking task holds one connection.
pub const READ_CONNECTIONS: u32 = 8;

/// Errors of the storage layer. Callers above map them to a stable message; the cause
/// (which may include SQL) is only logged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}: is a directory, not a database file")]
    IsDirectory(PathBuf),
    #[error("{0}: not an SQLite database; refusing to touch it")]
    NotSqlite(PathBuf),
    #[error("{0}: an SQLite database, but not an oauthd one; refusing to touch it")]
    Foreign(PathBuf),
    #[error("{path}: written by a newer oauthd (schema version {found}, this binary knows up to {known}); refusing to touch it")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{0}: no such file (mistyped --db or OAUTHD_DB?); only `serve`, `restore` and the `add` commands create a database")]
    Missing(PathBuf),
    #[error("{path}: permission denied: {why}")]
    PermissionDenied { path: PathBuf, why: String },
    #[error("{path}: read-only: {why}")]
    ReadOnly { path: PathBuf, why: String },
    #[error("{0}: busy: another process holds the database's lock; try again when it is done")]
    Busy(PathBuf),
    #[error("{path}: corrupt: an SQLite file that cannot be read ({cause}); restore a backup with `oauthd restore`")]
    Corrupt { path: PathBuf, cause: String },
    #[error("{0}")]
    Unavailable(#[from] health::Problem),
    #[error("{path}: schema version {found}, older than this binary's {known}; a command that writes (or `serve`) upgrades it")]
    NeedsMigration {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("cannot open database {path}: {cause}")]
    Open { path: PathBuf, cause: String },
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} accounts share this email when letter case is folded (they predate Unicode folding); name one exactly as `oauthd check` lists it")]
    AmbiguousEmail(usize),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database task was cancelled or panicked")]
    TaskFailed,
    #[error("commit failed: {0}")]
    CommitFailed(String),
    #[cfg(feature = "postgres")]
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[cfg(feature = "postgres")]
    #[error("database connection pool: {0}")]
    PostgresPool(String),
    #[cfg(feature = "postgres")]
    #[error(
        "{0}: a PostgreSQL database that is neither empty nor an oauthd one; refusing to touch it"
    )]
    ForeignPostgres(String),
    #[cfg(feature = "postgres")]
    #[error("{db}: written by a newer oauthd (schema version {found}, this binary knows up to {known}); refusing to touch it")]
    TooNewPostgres { db: String, found: i64, known: i64 },
    #[cfg(all(test, feature = "postgres"))]
    #[error("this is not available on PostgreSQL yet (it still needs an SQLite --db file)")]
    NotOnPostgres,
}

/// Which table holds a presented token: a token of a user's grant (`U`, with its
/// facts), a client's own token, or none. Whether it is live is the caller's call.
pub enum TokenRow<U> {
    User(U),
    Client((client_tokens::ClientAccessInfo, crate::oauth::TokenFacts)),
    None,
}

/// A bearer token as stored ([`Store::find_bearer`]).
pub type BearerRow = TokenRow<(grants::MemberAccess, crate::oauth::TokenFacts)>;

/// An introspected token as stored ([`Store::find_introspected`]).
pub type IntrospectedRow = TokenRow<(grants::AccessInfo, crate::oauth::TokenFacts)>;

/// The one database of a server or a command, SQLite or PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(pg::PgStore),
}

/// How a command opens an SQLite file. A PostgreSQL database is never created by a typo
/// (it must exist); commands that only read refuse an empty database or an older schema
/// there too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// [`Store::open`]: may create the file.
    Create,
    /// [`Store::open_existing`]: refuses a missing file.
    Existing,
    /// [`Store::open_for_reading`]: an existing, current file, never written.
    Reading,
}

impl Store {
    /// Opens the database `location` names: a file as `opening` says, or PostgreSQL.
    pub fn open_at(location: &Location, opening: Opening) -> Result<Store, StoreError> {
        match location {
            Location::File(path) => match opening {
                Opening::Create => Store::open(path),
                Opening::Existing => Store::open_existing(path),
                Opening::Reading => Store::open_for_reading(path),
            },
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => match opening {
                Opening::Reading => pg::PgStore::connect_for_reading(url).map(Store::postgres),
                Opening::Create | Opening::Existing => Store::connect_postgres(url),
            },
        }
    }

    /// Opens (creating if absent) the SQLite database at `path`; see [`SqliteStore::open`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        SqliteStore::open(path).map(Store::sqlite)
    }

    /// As [`Store::open`], but refuses a path that names no file.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        SqliteStore::open_existing(path).map(Store::sqlite)
    }

    /// Opens an existing, current SQLite database for commands that only read.
    pub fn open_for_reading(path: &Path) -> Result<Store, StoreError> {
        SqliteStore::open_for_reading(path).map(Store::sqlite)
    }

    /// Connects to (and migrates) the PostgreSQL database `url` names; see
    /// [`pg::PgStore::connect`].
    #[cfg(feature = "postgres")]
    pub fn connect_postgres(url: &str) -> Result<Store, StoreError> {
        pg::PgStore::connect(url).map(Store::postgres)
    }

    #[cfg(feature = "postgres")]
    fn postgres(pg: pg::PgStore) -> Store {
        Store {
            backend: Backend::Postgres(pg),
        }
    }

    fn sqlite(sqlite: SqliteStore) -> Store {
        Store {
            backend: Backend::Sqlite(sqlite),
        }
    }

    /// The SQLite store, for what only a file has (online backup, file checks); `None`
    /// on PostgreSQL.
    pub fn file(&self) -> Option<&SqliteStore> {
        match &self.backend {
            Backend::Sqlite(sqlite) => Some(sqlite),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => None,
        }
    }

    /// Whether other servers may run on this database at the same time (PostgreSQL): then
    /// what one server keeps in memory is not the whole story.
    pub fn shared_by_servers(&self) -> bool {
        self.file().is_none()
    }

    /// Connections the store pools at most: the server's blocking threads, since each
    /// blocking task holds one.
    pub fn connections(&self) -> usize {
        match &self.backend {
            Backend::Sqlite(_) => READ_CONNECTIONS as usize,
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => pg::CONNECTIONS as usize,
        }
    }

    /// Runs `f` with a connection on the current (blocking) thread; on PostgreSQL each
    /// statement commits on its own.
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sqlite(sqlite) => sqlite.with_conn(|conn| f(&Conn::Sqlite(conn))),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.with_conn(|conn| f(&Conn::Postgres(conn))),
        }
    }

    /// Runs `f` inside one transaction on the current thread and commits only when `f`
    /// succeeds: a change and its audit entry land together or not at all. For
    /// synchronous callers such as the admin CLI.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sqlite(sqlite) => sqlite.transaction(|tx| f(&Conn::Sqlite(tx))),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.transaction(|tx| f(&Conn::Postgres(tx))),
        }
    }

    /// Runs the read `f` on tokio's blocking pool: the only way async code may read,
    /// because taking a pooled connection and every statement can block.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(sqlite) => sqlite.read(move |conn| f(&Conn::Sqlite(conn))).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                let pg = pg.clone();
                blocking(move || pg.with_conn(|conn| f(&Conn::Postgres(conn)))).await
            }
        }
    }

    /// Finds the token of a resource request's `Authorization: Bearer`: a user's access
    /// token with the user's memberships, else a client's own token. On PostgreSQL it is
    /// read on the server's runtime, without a blocking thread (see `pg::ServerReads`).
    pub async fn find_bearer(
        &self,
        token_hash: crate::secret::SecretHash,
    ) -> Result<BearerRow, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => {
                self.read(move |conn| {
                    match grants::find_access_with_memberships(conn, &token_hash)? {
                        Some(user) => Ok(TokenRow::User(user)),
                        None => client_token(conn, &token_hash),
                    }
                })
                .await
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                let reads = pg.server_reads().line().await?;
                let reads = &*reads;
                match grants::find_access_with_memberships_awaited(reads, &token_hash).await? {
                    Some(user) => Ok(TokenRow::User(user)),
                    None => client_token_awaited(reads, &token_hash).await,
                }
            }
        }
    }

    /// The client `client_id` with its lists, for a request that authenticates it or
    /// names it. On PostgreSQL it is read on the server's runtime (see `pg::ServerReads`).
    pub async fn find_client(
        &self,
        client_id: String,
    ) -> Result<Option<clients::Client>, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => self.read(move |conn| clients::find(conn, &client_id)).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                let line = pg.server_reads().line().await?;
                clients::find_awaited(&line, &client_id).await
            }
        }
    }

    /// What an introspection request needs: its client, and the token (`token_hash`), a
    /// user's access or refresh token (looked for in that order, or refresh first when
    /// `refresh_first`), else a client's own token. On PostgreSQL the client and the
    /// first kind of token are read at once on the server's runtime.
    pub async fn find_introspected(
        &self,
        client_id: String,
        token_hash: Option<crate::secret::SecretHash>,
        refresh_first: bool,
    ) -> Result<(Option<clients::Client>, IntrospectedRow), StoreError> {
        use grants::TokenKind::{Access, Refresh};
        let (first, second) = if refresh_first {
            (Refresh, Access)
        } else {
            (Access, Refresh)
        };
        match &self.backend {
            Backend::Sqlite(_) => {
                self.read(move |conn| {
                    let client = clients::find(conn, &client_id)?;
                    let Some(hash) = token_hash else {
                        return Ok((client, TokenRow::None));
                    };
                    let row = match grants::find_token(conn, first, &hash)? {
                        Some(token) => TokenRow::User(token),
                        None => match grants::find_token(conn, second, &hash)? {
                            Some(token) => TokenRow::User(token),
                            None => client_token(conn, &hash)?,
                        },
                    };
                    Ok((client, row))
                })
                .await
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                // One line: the client and the token go out together.
                let reads = pg.server_reads().line().await?;
                let reads = &*reads;
                let client = clients::find_awaited(reads, &client_id);
                let Some(hash) = token_hash else {
                    return Ok((client.await?, TokenRow::None));
                };
                let (client, found) = futures_util::future::join(
                    client,
                    grants::find_token_awaited(reads, first, &hash),
                )
                .await;
                let row = match found? {
                    Some(token) => TokenRow::User(token),
                    None => match grants::find_token_awaited(reads, second, &hash).await? {
                        Some(token) => TokenRow::User(token),
                        None => client_token_awaited(reads, &hash).await?,
                    },
                };
                Ok((client?, row))
            }
        }
    }

    /// Runs the write `f` in a transaction and returns once it is committed (durable).
    /// On SQLite the one writer thread batches concurrent writes into one transaction,
    /// each in its own savepoint (an `Err` undoes its changes only); on PostgreSQL each
    /// write is its own transaction on a pooled connection (the server group-commits).
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(sqlite) => sqlite.write(move |conn| f(&Conn::Sqlite(conn))).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                let pg = pg.clone();
                blocking(move || pg.write(|tx| f(&Conn::Postgres(tx)))).await
            }
        }
    }

    /// Starts what a server needs besides the pool: on SQLite the group-committing writer
    /// and the file watch (housekeeping, and deleting audit rows older than
    /// `audit_retention`, run in the writer's idle time); on PostgreSQL the housekeeping
    /// sweeper.
    pub fn start_writer(&mut self, audit_retention: std::time::Duration) -> Result<(), StoreError> {
        match &mut self.backend {
            Backend::Sqlite(sqlite) => sqlite.start_writer(audit_retention),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                pg.start_sweeper(audit_retention);
                Ok(())
            }
        }
    }

    /// Commits what the SQLite writer still holds and stops it (blocks); on PostgreSQL
    /// every write is committed already: the sweeper stops after its current window, and
    /// dropping the store closes the pool.
    pub fn stop_writer(&self) {
        match &self.backend {
            Backend::Sqlite(sqlite) => sqlite.stop_writer(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.stop_sweeper(),
        }
    }

    /// Proves with a small real commit that the server may write: `serve` refuses to
    /// start on a database it cannot write instead of failing every request later.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(sqlite) => sqlite.check_writable(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.transaction(health::probe_write),
        }
    }

    /// `Ok` when the server's database can be trusted, else the first problem
    /// (`/healthz`). On SQLite: the file, its writability and the last write; on
    /// PostgreSQL: whether the database answers and accepts writes.
    pub async fn health(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(sqlite) => sqlite.health().await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                let pg = pg.clone();
                blocking(move || pg.health()).await
            }
        }
    }

    /// What the storage metrics report, for a scrape (blocks: call it off the runtime's
    /// workers). See [`StorageSize`].
    pub fn storage_size(&self) -> StorageSize {
        match &self.backend {
            Backend::Sqlite(sqlite) => sqlite.storage_size(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.storage_size(),
        }
    }

    /// The write metrics: the SQLite writer's group commits, or on PostgreSQL each write
    /// as a batch of one.
    pub fn writer_metrics(&self) -> crate::metrics::WriterMetrics {
        match &self.backend {
            Backend::Sqlite(sqlite) => sqlite.writer_metrics(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.writer_metrics(),
        }
    }
}

/// How much space the database takes, as the storage metrics report it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StorageSize {
    /// SQLite: the `.db` file; PostgreSQL: the database on the server's disk
    /// (`pg_database_size`, WAL not included).
    pub database_bytes: u64,
    /// SQLite's `-wal` file; `None` on PostgreSQL, whose WAL is the whole cluster's.
    pub wal_bytes: Option<u64>,
}

/// Runs `f` on tokio's blocking pool.
#[cfg(feature = "postgres")]
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StoreError::TaskFailed)?
}

/// A client's own token with `token_hash` as a [`TokenRow`].
fn client_token<U>(
    conn: &Conn<'_>,
    token_hash: &crate::secret::SecretHash,
) -> Result<TokenRow<U>, StoreError> {
    Ok(client_tokens::find(conn, token_hash)?.map_or(TokenRow::None, TokenRow::Client))
}

/// [`client_token`] on PostgreSQL, awaited on the server's runtime.
#[cfg(feature = "postgres")]
async fn client_token_awaited<U>(
    reads: &pg::ReadLine,
    token_hash: &crate::secret::SecretHash,
) -> Result<TokenRow<U>, StoreError> {
    Ok(client_tokens::find_awaited(reads, token_hash)
        .await?
        .map_or(TokenRow::None, TokenRow::Client))
}

/// A trivial query: whether the database answers at all (`/healthz`).
pub fn ping(db: &impl sql::Db) -> Result<(), StoreError> {
    db.query_one("SELECT 1", &[], |r| r.get::<i64>(0))?;
    Ok(())
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Maps a UNIQUE / PRIMARY KEY violation (of either backend) to `Conflict(what)`; other
/// errors pass through.
pub(crate) fn conflict_as<E: Into<StoreError>>(what: &'static str) -> impl Fn(E) -> StoreError {
    move |e| match e.into() {
        e if sql::is_unique_violation(&e) => StoreError::Conflict(what),
        e => e,
    }
}

/// ISO 8601 UTC text for a Unix time, as shown by the CLI and JSON.
pub fn iso8601(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// For unit tests: a fresh database in a temporary folder (kept while the folder lives)
/// holding user `u` (`u@x.org`) and public client `c`, and then what `more_sql` inserts.
#[cfg(test)]
pub(crate) fn seeded_store(more_sql: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("seeded.db")).expect("open");
    store
        .transaction(|tx| {
            let tx = tx.sqlite()?;
            tx.execute_batch(
                "INSERT INTO users (id, email, email_key, password_hash, created_at, updated_at)
                     VALUES ('u', 'u@x.org', 'u@x.org', 'x', 0, 0);
                 INSERT INTO clients (id, name, is_public, created_at) VALUES ('c', 'C', 1, 0);",
            )?;
            tx.execute_batch(more_sql)?;
            Ok(())
        })
        .expect("seed");
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
