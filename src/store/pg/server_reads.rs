//! Single-statement reads that a server's request handlers await on the server's own
//! runtime, without a blocking thread: the bearer check of every resource request, an
//! introspection's client and token, a token request's client.
//!
//! A verb on a blocking thread waits for PostgreSQL's answer by sleeping, and the hop to
//! that thread and back costs more context switches: on the test machine about 50 µs of
//! CPU per bearer check, more than PostgreSQL's own work. Here the request's task sends
//! the statement and yields; the connection's driver task runs on the server's runtime
//! too. Concurrent reads share a few connections and are pipelined on them
//! (tokio-postgres sends requests polled together in one flight), so PostgreSQL answers
//! several per wake-up as well.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio_postgres::{Client, Config};

use super::session::{self, Statements};
use crate::store::sql::postgres::{OwnedValue, PgValue};
use crate::store::sql::{Param, Row};
use crate::store::StoreError;

/// Connections the reads share. Each is one PostgreSQL backend answering its pipeline in
/// order: two keep both cores of a small machine busy.
const LINES: usize = 2;

/// The server's reading connections, opened at first use, and again after one closed.
pub struct ServerReads {
    config: Config,
    lines: [tokio::sync::Mutex<Option<Arc<ReadLine>>>; LINES],
    next: AtomicUsize,
}

/// One of the connections, with its prepared statements.
pub struct ReadLine {
    client: Client,
    statements: Statements,
}

impl ServerReads {
    pub fn new(config: Config) -> ServerReads {
        ServerReads {
            config,
            lines: Default::default(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next connection in turn, opened if it is not open (PostgreSQL restarted, or
    /// first use). Its slot stays locked while it opens, so concurrent reads wait for
    /// that one connect instead of each opening their own. Await it, and its reads, only
    /// on the server's runtime, which drives the connections it opens.
    pub async fn line(&self) -> Result<Arc<ReadLine>, StoreError> {
        let slot = &self.lines[self.next.fetch_add(1, Ordering::Relaxed) % LINES];
        let mut slot = slot.lock().await;
        if let Some(line) = slot.as_ref().filter(|l| !l.client.is_closed()) {
            return Ok(Arc::clone(line));
        }
        let client = session::connect(&self.config).await?;
        let line = Arc::new(ReadLine {
            client,
            statements: Statements::default(),
        });
        *slot = Some(Arc::clone(&line));
        Ok(line)
    }
}

impl ReadLine {
    /// Runs one shared-SQL read (`?N` placeholders) and decodes its rows. The parameters
    /// are copied at once, so the read may move between threads. Reads awaited together
    /// on one line go out together and are answered in one wake-up of its backend.
    pub fn query_all<'r, T: Send + 'r>(
        &'r self,
        sql: &'r str,
        params: &[&dyn Param],
        mut decode: impl FnMut(&Row<'_>) -> Result<T, StoreError> + Send + 'r,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send + 'r {
        let params: Vec<OwnedValue> = params.iter().map(|p| OwnedValue::from(p.value())).collect();
        async move {
            let rows = self
                .statements
                .query(&self.client, sql, params.iter().map(|p| PgValue(p.value())))
                .await?;
            rows.iter().map(|r| decode(&Row::postgres(r))).collect()
        }
    }

    /// [`ReadLine::query_all`] for at most one row.
    pub fn query_opt<'r, T: Send + 'r>(
        &'r self,
        sql: &'r str,
        params: &[&dyn Param],
        decode: impl FnMut(&Row<'_>) -> Result<T, StoreError> + Send + 'r,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send + 'r {
        let rows = self.query_all(sql, params, decode);
        async move { Ok(rows.await?.into_iter().next()) }
    }
}
