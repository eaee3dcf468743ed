//! One PostgreSQL connection together with the small runtime that drives it, and the
//! deadpool manager that makes them.
//!
//! Verbs run on blocking threads and wait for each statement there. A driver task on a
//! shared runtime would cost every statement two wake-ups between threads (the verb's
//! thread to the driver's and back), as much CPU as PostgreSQL's own work on a bearer
//! check. So each connection owns a current-thread runtime: the thread that holds the
//! connection runs it while it waits, writes the request, sleeps in its own `epoll` until
//! the answer comes, and reads it, with no other thread involved.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use deadpool::managed::{Manager, Metrics, RecycleError, RecycleResult};
use tokio::runtime::Runtime;
use tokio_postgres::{Client, Config, NoTls, Statement};

use futures_util::TryStreamExt;

use super::postgres_sql;
use crate::store::sql::postgres::PgValue;
use crate::store::StoreError;

/// Opens a connection and drives it with a task on the current runtime, which ends with
/// the connection.
pub async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "a PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// A connection, its driver's runtime, and its prepared statements.
pub struct Session {
    client: Client,
    statements: Statements,
    /// Runs the connection's driver task, only while a thread waits in [`Session::block_on`].
    /// Always `Some` until dropped.
    runtime: Option<Runtime>,
}

impl Session {
    /// Opens a connection on a runtime of its own. Blocks: call it from a thread that runs
    /// no async code.
    fn open(config: &Config) -> Result<Session, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Open {
                path: "postgres".into(),
                cause: format!("cannot start a connection's runtime: {e}"),
            })?;
        let client = runtime.block_on(connect(config))?;
        Ok(Session {
            client,
            statements: Statements::default(),
            runtime: Some(runtime),
        })
    }

    /// The driver's client, to send statements with (inside [`Session::block_on`]).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Waits on this thread for `work`, driving the connection meanwhile. Call it from a
    /// thread that runs no async code (a blocking-pool thread, the CLI's main thread).
    pub fn block_on<T>(&self, work: impl Future<Output = T>) -> T {
        match &self.runtime {
            Some(runtime) => runtime.block_on(work),
            None => unreachable!("a session's runtime lives until the session is dropped"),
        }
    }

    /// The prepared statement for `sql`, described by the server the first time only.
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        self.statements.prepare(&self.client, sql).await
    }

    /// [`Statements::query`] on this connection.
    pub async fn query<'p>(
        &self,
        sql: &str,
        params: impl ExactSizeIterator<Item = PgValue<'p>>,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.statements.query(&self.client, sql, params).await
    }

    /// Whether the connection is gone. The driver runs only while someone waits on it, so
    /// it first reads what the server sent meanwhile (a closed socket ends it). Call it from
    /// a thread that runs no async code.
    pub fn is_closed(&self) -> bool {
        // The first yield lets the runtime poll its socket, which wakes the driver task;
        // the second lets that task run before this future is polled again.
        self.block_on(async {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
        });
        self.client.is_closed()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Allowed anywhere, even inside async code, where dropping a runtime would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Makes [`Session`]s for a deadpool pool, and drops the ones whose connection closed.
pub struct SessionManager {
    pub config: Config,
}

impl Manager for SessionManager {
    type Type = Session;
    type Error = StoreError;

    async fn create(&self) -> Result<Session, StoreError> {
        // A runtime cannot be waited on inside another's async code: open it on a blocking
        // thread of the caller's runtime.
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || Session::open(&config))
            .await
            .map_err(|_| StoreError::TaskFailed)?
    }

    async fn recycle(&self, session: &mut Session, _: &Metrics) -> RecycleResult<StoreError> {
        // `is_closed` waits on the session's runtime, which async code may not do: the
        // pool's user checks it when it takes a session out (see `PgStore::conn`).
        if session.client.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        Ok(())
    }
}

/// One connection's prepared statements by PostgreSQL text, so each is described once.
/// The lock is held only to look up or insert, never across an await.
#[derive(Default)]
pub struct Statements(Mutex<HashMap<String, Statement>>);

impl Statements {
    /// Runs shared SQL (`?N` placeholders) on `client` with `params` and collects its
    /// rows, the statement prepared once per connection.
    pub async fn query<'p>(
        &self,
        client: &Client,
        sql: &str,
        params: impl ExactSizeIterator<Item = PgValue<'p>>,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let statement = self.prepare(client, &postgres_sql(sql)).await?;
        Ok(client
            .query_raw(&statement, params)
            .await?
            .try_collect()
            .await?)
    }

    /// The prepared statement for `sql` on `client` (the connection these belong to).
    pub async fn prepare(
        &self,
        client: &Client,
        sql: &str,
    ) -> Result<Statement, tokio_postgres::Error> {
        let cached = self.locked().get(sql).cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let statement = client.prepare(sql).await?;
        self.locked().insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Statement>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
