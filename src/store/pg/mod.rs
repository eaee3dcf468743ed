//! The PostgreSQL side of the store (feature `postgres`): a pool of connections to one
//! database and the [`Db`] implementation the shared verbs run on.
//!
//! Verbs stay synchronous and run on blocking threads, as with SQLite. Each pooled
//! connection (tokio-postgres, pooled by deadpool) brings its own small runtime, which the
//! thread holding it runs while it waits for a statement (see `session.rs`). The pool's
//! timers and the housekeeping sweeper run on a runtime of the store's own, whose thread
//! also owns it, so that runtime is never dropped inside async code.

pub mod copy;
pub mod migrate;
mod server_reads;
mod session;
mod sweeper;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use deadpool::managed::{Object, Pool, PoolError};
use tokio::runtime::Handle;

pub use server_reads::{ReadLine, ServerReads};
use session::SessionManager;

use super::health::{self, WriteFailures};
use super::sql::postgres::{OwnedValue, PgValue};
use super::sql::{cached_text, dollar_placeholders, Db, Param, Row, TextCache};
use super::{housekeeping, StoreError, READ_CONNECTIONS};
use crate::metrics::WriterMetrics;

/// How long a caller waits for a pooled connection (and a new one to connect).
const POOL_WAIT: Duration = Duration::from_secs(30);

/// Pooled connections at most, and so the server's blocking threads on PostgreSQL. Each
/// write waits for its own commit's flush, and PostgreSQL flushes the commits waiting
/// together at once: more writes in flight share more of each flush (twice the SQLite
/// store's readers; two instances stay well below PostgreSQL's default 100 connections).
pub const CONNECTIONS: u32 = 2 * READ_CONNECTIONS;

/// A pool of connections to one oauthd PostgreSQL database, migrated to this binary's
/// schema. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<SessionManager>,
    runtime: Arc<DriverRuntime>,
    /// The URL without its password, for messages.
    name: String,
    /// The housekeeping sweeper `serve` started, stopped when the last clone goes.
    sweeper: Option<Arc<sweeper::Sweeper>>,
    /// The database's size and when it was read, for metrics scrapes.
    size: Arc<Mutex<Option<(Instant, u64)>>>,
    /// Each server write as a batch of one, timed from BEGIN to the end of COMMIT.
    writes: WriterMetrics,
    /// Whether the last server write failed for want of disk (or another resource).
    write_failures: Arc<WriteFailures>,
    /// The request handlers' own reading connections (see `server_reads.rs`).
    server_reads: Arc<ServerReads>,
}

impl PgStore {
    /// Connects to the database `url` names (`postgres://user@host:port/db`) and migrates
    /// it, refusing a database that is not empty and not oauthd's, or whose schema is
    /// newer than this binary's, without changing it.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        PgStore::connect_then(url, migrate::migrate)
    }

    /// As [`PgStore::connect`], for commands that only read: an empty database or an
    /// older oauthd schema is refused, not migrated.
    pub fn connect_for_reading(url: &str) -> Result<PgStore, StoreError> {
        PgStore::connect_then(url, migrate::migrate_unless_older)
    }

    /// Connects, then runs `schema` (what to do with the schema found) in a transaction.
    fn connect_then(
        url: &str,
        schema: fn(&PgConn, &str) -> Result<(), StoreError>,
    ) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| StoreError::Open {
                    path: redacted(url).into(),
                    cause: e.to_string(),
                })?;
        config.connect_timeout(POOL_WAIT);
        let runtime = Arc::new(DriverRuntime::start()?);
        let server_reads = Arc::new(ServerReads::new(config.clone()));
        let pool = Pool::builder(SessionManager { config })
            .max_size(CONNECTIONS as usize)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Open {
                path: redacted(url).into(),
                cause: e.to_string(),
            })?;
        let store = PgStore {
            pool,
            runtime,
            name: redacted(url),
            sweeper: None,
            size: Arc::default(),
            writes: WriterMetrics::default(),
            write_failures: Arc::default(),
            server_reads,
        };
        store.transaction(|db| schema(db, &store.name))?;
        Ok(store)
    }

    /// Runs `f` with a pooled connection on the current (blocking) thread; each statement
    /// commits on its own.
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&PgConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.conn()?;
        f(&conn)
    }

    /// Runs `f` inside one transaction and commits only when `f` succeeds, as
    /// `Store::transaction` does on SQLite.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&PgConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn()?.transaction(f)
    }

    /// A server's write: [`PgStore::transaction`], recorded in the write metrics (a batch
    /// of one: PostgreSQL group-commits concurrent transactions by itself).
    pub fn write<T>(
        &self,
        f: impl FnOnce(&PgConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let written = self.transaction(f);
        self.writes.record_batch(1, started.elapsed());
        match &written {
            Ok(_) => self.write_failures.record(&Ok(())),
            Err(e) if is_storage_failure(e) => self.write_failures.record(&Err(e.to_string())),
            // The request's own failure (a conflict, a lost race) says nothing of the disk.
            Err(_) => {}
        }
        written
    }

    /// `/healthz`: the database answers and accepts writes, and the last server write did
    /// not fail for want of disk, or a probe write commits again and that failure is old.
    pub fn health(&self) -> Result<(), StoreError> {
        self.with_conn(health::postgres_writable)?;
        self.write_failures
            .recheck(|| self.transaction(health::probe_write))
    }

    /// Reads a request handler awaits on the server's runtime, without a blocking thread.
    pub fn server_reads(&self) -> &ServerReads {
        &self.server_reads
    }

    /// The write metrics [`PgStore::write`] records into.
    pub fn writer_metrics(&self) -> WriterMetrics {
        self.writes.clone()
    }

    /// Runs `f` on one connection whose session holds the advisory lock `key`, or returns
    /// `None` at once when another session (another instance) holds it: work that one
    /// instance at a time should do. The lock is released when `f` returns; when `f` or
    /// the release fails, the connection is closed instead of pooled, which releases it.
    pub fn with_advisory_lock<T>(
        &self,
        key: i64,
        f: impl FnOnce(&PgConn) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let conn = self.conn()?;
        let taken = conn.query_one("SELECT pg_try_advisory_lock(?1)", &[&key], |r| {
            r.get::<bool>(0)
        })?;
        if !taken {
            return Ok(None);
        }
        let done = f(&conn);
        let released = done.is_ok()
            && conn
                .query_one("SELECT pg_advisory_unlock(?1)", &[&key], |r| {
                    r.get::<bool>(0)
                })
                .unwrap_or(false);
        if !released {
            conn.close();
        }
        done.map(Some)
    }

    /// Starts the housekeeping sweeper (see `sweeper.rs`) for a server; it stops when
    /// [`PgStore::stop_sweeper`] is called or the last clone of this store goes.
    pub fn start_sweeper(&mut self, audit_retention: Duration) {
        self.start_sweeper_every(housekeeping::FIRST_SWEEP_DELAY, audit_retention);
    }

    /// As [`PgStore::start_sweeper`], the first sweep after `first` (tests use short ones).
    fn start_sweeper_every(&mut self, first: Duration, audit_retention: Duration) {
        let worker = self.clone();
        self.sweeper = Some(Arc::new(sweeper::Sweeper::start(
            worker,
            first,
            audit_retention,
        )));
    }

    /// Stops the sweeper between two of its windows, if one runs.
    pub fn stop_sweeper(&self) {
        if let Some(sweeper) = &self.sweeper {
            sweeper.stop();
        }
    }

    /// The storage metrics: the database's size on the server's disk, read at most every
    /// [`SIZE_MAX_AGE`] (the server stats every file of the database for it); the last
    /// size read (or 0) when the database does not answer.
    pub fn storage_size(&self) -> super::StorageSize {
        let mut cached = self.size.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = cached.filter(|(at, _)| at.elapsed() < SIZE_MAX_AGE);
        let database_bytes = match fresh {
            Some((_, bytes)) => bytes,
            None => match self.with_conn(database_size) {
                Ok(bytes) => {
                    *cached = Some((Instant::now(), bytes));
                    bytes
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the database's size");
                    cached.map_or(0, |(_, bytes)| bytes)
                }
            },
        };
        super::StorageSize {
            database_bytes,
            wal_bytes: None,
        }
    }

    /// A pooled connection for this thread. One whose server closed it while it sat idle
    /// (a restarted PostgreSQL) is dropped and another taken, at most once per slot.
    fn conn(&self) -> Result<PgConn, StoreError> {
        let get = || {
            self.runtime
                .handle
                .block_on(self.pool.get())
                .map_err(pool_error)
        };
        let mut client = get()?;
        for _ in 0..CONNECTIONS {
            if !client.is_closed() {
                break;
            }
            drop(Object::take(client));
            client = get()?;
        }
        Ok(PgConn {
            client,
            begin_pending: Cell::new(false),
            in_transaction: Cell::new(false),
            later: RefCell::new(Vec::new()),
        })
    }
}

/// Whether `e` is PostgreSQL out of a resource or failing below SQL (SQLSTATE classes 53
/// and 58: a full disk, no memory, an I/O error), which fails every write alike until an
/// operator acts.
fn is_storage_failure(e: &StoreError) -> bool {
    match e {
        StoreError::Postgres(e) => e
            .code()
            .is_some_and(|code| matches!(&code.code()[..2], "53" | "58")),
        _ => false,
    }
}

/// The pool's error as the store's: a failed connect keeps its cause.
fn pool_error(e: PoolError<StoreError>) -> StoreError {
    match e {
        PoolError::Backend(e) => e,
        other => StoreError::PostgresPool(other.to_string()),
    }
}

/// How long a database size read for metrics is reported before it is read again.
const SIZE_MAX_AGE: Duration = Duration::from_secs(5);

/// The current database's size on disk, in bytes.
fn database_size(db: &impl Db) -> Result<u64, StoreError> {
    let bytes: i64 = db.query_one("SELECT pg_database_size(current_database())", &[], |r| {
        r.get(0)
    })?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// One pooled PostgreSQL connection, given to verbs as their [`Db`].
pub struct PgConn {
    client: Object<SessionManager>,
    /// A transaction was asked for and its BEGIN is not sent yet: it is pipelined with the
    /// first statement (PostgreSQL runs them in order), one round trip instead of two.
    begin_pending: Cell<bool>,
    /// Inside [`PgStore::transaction`]: writes may wait for the next statement.
    in_transaction: Cell<bool>,
    /// Writes [`Db::execute_later`] queued (statement text rewritten for PostgreSQL, owned
    /// parameters), sent ahead of the next statement in the same flight.
    later: RefCell<Vec<(Arc<str>, Vec<OwnedValue>)>>,
}

impl PgConn {
    /// Runs `f` inside one transaction on this connection and commits only when `f`
    /// succeeds.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&PgConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // BEGIN goes out with the first statement, saving a round trip per write.
        self.begin_pending.set(true);
        self.in_transaction.set(true);
        let outcome = f(self);
        self.in_transaction.set(false);
        match outcome {
            Ok(value) => {
                // Sends what is still pending (BEGIN, later writes) ahead of the COMMIT.
                if !self.begin_pending.get() || !self.later.borrow().is_empty() {
                    self.batch("COMMIT")?;
                }
                // Nothing ran: no BEGIN is owed to the next use of this connection.
                self.begin_pending.set(false);
                Ok(value)
            }
            Err(e) => {
                self.later.borrow_mut().clear();
                if !self.begin_pending.replace(false) {
                    // A failed rollback leaves the connection broken: the pool drops it.
                    let _ = self.batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    /// Closes the connection instead of returning it to the pool, ending its session
    /// (and whatever the session holds).
    fn close(self) {
        drop(Object::take(self.client));
    }

    /// Runs SQL without parameters (transaction control, schema steps).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.run(async { Ok(self.client.client().batch_execute(sql).await?) })
    }

    /// Waits on this thread for `work`, a statement, sending a pending BEGIN and the queued
    /// later writes ahead of it in one flight: tokio-postgres writes each request when its
    /// future is first polled, and `join` polls in order, so PostgreSQL gets them in order.
    fn run<T>(&self, work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let begin = self.begin_pending.replace(false);
        let later = std::mem::take(&mut *self.later.borrow_mut());
        if !begin && later.is_empty() {
            return self.client.block_on(work);
        }
        self.client.block_on(async {
            // A statement new to this connection is described first (its own round trip),
            // so that every queued one goes out at its first poll, in order.
            let mut prepared = Vec::with_capacity(later.len());
            for (sql, _) in &later {
                prepared.push(self.client.prepare_cached(sql).await?);
            }
            let begun = async {
                if begin {
                    self.client.client().batch_execute("BEGIN").await?;
                }
                Ok::<_, StoreError>(())
            };
            let queued = futures_util::future::join_all(prepared.iter().zip(&later).map(
                |(statement, (_, params))| {
                    self.client
                        .client()
                        .execute_raw(statement, params.iter().map(|p| PgValue(p.value())))
                },
            ));
            let (begun, queued, done) = futures_util::future::join3(begun, queued, work).await;
            begun?;
            // The first failure is the cause; statements after it in the transaction
            // only report that it is aborted.
            for result in queued {
                result?;
            }
            done
        })
    }

    /// The prepared statement for shared SQL, cached per connection.
    async fn prepare(&self, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
        Ok(self.client.prepare_cached(&postgres_sql(sql)).await?)
    }

    fn query(
        &self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.run(self.client.query(sql, bound(params)))
    }
}

/// The parameters as the driver binds them, converted as it sends each.
fn bound<'p>(params: &'p [&'p dyn Param]) -> impl ExactSizeIterator<Item = PgValue<'p>> {
    params.iter().map(|p| PgValue(p.value()))
}

impl Db for PgConn {
    fn for_update(&self) -> &'static str {
        " FOR UPDATE"
    }

    fn skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }

    fn statements_cross_a_network(&self) -> bool {
        true
    }

    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize, StoreError> {
        let changed = self.run(async {
            let stmt = self.prepare(sql).await?;
            Ok::<_, StoreError>(
                self.client
                    .client()
                    .execute_raw(&stmt, bound(params))
                    .await?,
            )
        })?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    fn execute_later(&self, sql: &str, params: &[&dyn Param]) -> Result<(), StoreError> {
        if !self.in_transaction.get() {
            return self.execute(sql, params).map(drop);
        }
        let owned = params.iter().map(|p| OwnedValue::from(p.value())).collect();
        self.later.borrow_mut().push((postgres_sql(sql), owned));
        Ok(())
    }

    fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        decode: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self.query(sql, params)?.first() {
            Some(row) => Ok(Some(decode(&Row::postgres(row))?)),
            None => Ok(None),
        }
    }

    fn query_all<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut decode: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = self.query(sql, params)?;
        rows.iter().map(|r| decode(&Row::postgres(r))).collect()
    }
}

/// Shared SQL with PostgreSQL placeholders, rewritten once per statement text.
fn postgres_sql(sql: &str) -> Arc<str> {
    static REWRITTEN: TextCache = OnceLock::new();
    cached_text(&REWRITTEN, sql, |_| true, || dollar_placeholders(sql))
}

/// `url` without the password, if it has one, for messages and logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "the PostgreSQL URL".to_owned(),
    }
}

/// The driver's runtime: one worker thread, owned by a thread of its own that drops it
/// when the last store clone goes (dropping a runtime inside async code would panic).
struct DriverRuntime {
    handle: Handle,
    /// Dropping this lets the owning thread shut the runtime down.
    _stop: mpsc::Sender<()>,
}

impl DriverRuntime {
    fn start() -> Result<DriverRuntime, StoreError> {
        let failed = |e: std::io::Error| StoreError::Open {
            path: "postgres".into(),
            cause: format!("cannot start the PostgreSQL driver's runtime: {e}"),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("oauthd-postgres")
            .enable_all()
            .build()
            .map_err(failed)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("oauthd-postgres-owner".into())
            .spawn(move || {
                // Returns once every sender is gone.
                let _ = stopped.recv();
                runtime.shutdown_timeout(Duration::from_secs(5));
            })
            .map_err(failed)?;
        Ok(DriverRuntime {
            handle,
            _stop: stop,
        })
    }
}

#[cfg(test)]
#[path = "../../../tests/it/pg_support.rs"]
pub(crate) mod test_cluster;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate::SCHEMA_VERSION;

    #[test]
    fn the_interface_behaves_as_on_sqlite() {
        let cluster = test_cluster::shared();
        let store = PgStore::connect(&cluster.new_database()).expect("connect");
        store
            .with_conn(|db| {
                db.batch("CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT, flag BIGINT, b BYTEA)")
            })
            .expect("create");
        store
            .with_conn(|db| {
                crate::store::sql::checks::exercise(db);
                Ok(())
            })
            .expect("exercise");
    }

    #[test]
    fn a_connection_the_server_closed_while_idle_is_replaced() {
        let cluster = test_cluster::shared();
        let url = cluster.new_database();
        let store = PgStore::connect(&url).expect("connect");
        let pid = || {
            store.with_conn(|db| db.query_one("SELECT pg_backend_pid()", &[], |r| r.get::<i64>(0)))
        };
        let first = pid().expect("first statement");
        // Another client ends that session while it sits in the pool.
        let other = PgStore::connect(&url).expect("connect");
        let ended = other
            .with_conn(|db| {
                db.query_one("SELECT pg_terminate_backend(?1)", &[&first], |r| {
                    r.get::<bool>(0)
                })
            })
            .expect("terminate");
        assert!(ended);
        let deadline = Instant::now() + Duration::from_secs(30);
        while other
            .with_conn(|db| {
                db.query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ?1",
                    &[&first],
                    |r| r.get::<i64>(0),
                )
            })
            .expect("activity")
            > 0
        {
            assert!(Instant::now() < deadline, "the backend never ended");
            std::thread::sleep(Duration::from_millis(20));
        }
        let second = pid().expect("a statement after the server closed the idle connection");
        assert_ne!(first, second);
    }

    #[test]
    fn a_transaction_commits_only_when_it_succeeds() {
        let cluster = test_cluster::shared();
        let store = PgStore::connect(&cluster.new_database()).expect("connect");
        let add = |db: &PgConn, key: &str| {
            db.execute(
                "INSERT INTO oauthd_meta (key, value) VALUES (?1, 'x')",
                &[&key],
            )
        };
        store.transaction(|db| add(db, "kept")).expect("commit");
        let failed = store.transaction(|db| {
            add(db, "undone")?;
            add(db, "kept")
        });
        assert!(failed.is_err());
        let keys = store
            .with_conn(|db| {
                db.query_all("SELECT key FROM oauthd_meta WHERE value = 'x'", &[], |r| {
                    r.get::<String>(0)
                })
            })
            .expect("keys");
        assert_eq!(keys, ["kept"]);
    }

    #[test]
    fn migration_creates_the_schema_once_and_reopens() {
        let cluster = test_cluster::shared();
        let url = cluster.new_database();
        drop(PgStore::connect(&url).expect("create"));
        let store = PgStore::connect(&url).expect("reopen");
        let version = store
            .with_conn(|db| {
                db.query_one("SELECT version FROM oauthd_schema", &[], |r| {
                    r.get::<i64>(0)
                })
            })
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        let name = url.rsplit('/').next().expect("database name");
        assert_eq!(cluster.sql(name, "SELECT count(*) FROM oauthd_schema"), "1");
    }

    /// Several instances starting at once on one empty database: the advisory lock lets
    /// one migrate and the others find the work done (without it, racing `CREATE TABLE`s
    /// fail).
    #[test]
    fn instances_starting_at_once_migrate_an_empty_database_once() {
        let cluster = test_cluster::shared();
        let url = cluster.new_database();
        let start = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            let starts: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        PgStore::connect(&url).map(drop)
                    })
                })
                .collect();
            for started in starts {
                started
                    .join()
                    .expect("thread")
                    .expect("every instance starts");
            }
        });
        let name = url.rsplit('/').next().expect("database name");
        assert_eq!(
            cluster.sql(name, "SELECT version FROM oauthd_schema"),
            SCHEMA_VERSION.to_string()
        );
        assert_eq!(cluster.sql(name, "SELECT count(*) FROM oauthd_schema"), "1");
    }

    #[test]
    fn a_foreign_database_is_refused_unchanged() {
        let cluster = test_cluster::shared();
        let url = cluster.new_database();
        let name = url.rsplit('/').next().expect("database name");
        cluster.sql(
            name,
            "CREATE TABLE invoices (id BIGINT); INSERT INTO invoices VALUES (1)",
        );
        let before = cluster.sql(name, "SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace");
        let err = PgStore::connect(&url).err().expect("must refuse");
        assert!(matches!(err, StoreError::ForeignPostgres(_)), "{err}");
        assert!(
            err.to_string().contains("neither empty nor an oauthd one"),
            "{err}"
        );
        let after = cluster.sql(name, "SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace");
        assert_eq!(before, after);
    }

    #[test]
    fn a_newer_schema_is_refused_unchanged() {
        let cluster = test_cluster::shared();
        let url = cluster.new_database();
        drop(PgStore::connect(&url).expect("create"));
        let name = url.rsplit('/').next().expect("database name");
        cluster.sql(name, "UPDATE oauthd_schema SET version = 999");
        let err = PgStore::connect(&url).err().expect("must refuse");
        assert!(
            matches!(err, StoreError::TooNewPostgres { found: 999, .. }),
            "{err}"
        );
        assert_eq!(
            cluster.sql(name, "SELECT version FROM oauthd_schema"),
            "999"
        );
    }

    #[test]
    fn the_storage_size_is_the_databases_and_grows_with_its_rows() {
        let store = PgStore::connect(&test_cluster::shared().new_database()).expect("connect");
        let before = store.storage_size();
        assert!(before.database_bytes > 1_000_000, "{before:?}");
        assert_eq!(before.wal_bytes, None);
        store
            .with_conn(|db| {
                db.execute(
                    "INSERT INTO audit_log (at, event, detail)
                     SELECT n, 'e', repeat('x', 200) FROM generate_series(1, 20000) AS n",
                    &[],
                )
            })
            .expect("rows");
        assert_eq!(
            store.storage_size(),
            before,
            "read again only after a while"
        );
        *store.size.lock().expect("size") = None;
        let after = store.storage_size();
        assert!(
            after.database_bytes > before.database_bytes + 4_000_000,
            "{before:?} {after:?}"
        );
    }

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redacted("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert!(!redacted("postgres://u:se cret@").contains("se cret"));
    }
}
