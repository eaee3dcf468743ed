//! The server's one writer: a dedicated thread with its own connection that runs every
//! write of the HTTP path, batching concurrent writes into one transaction (group
//! commit). SQLite allows one writer at a time anyway; funnelling writes through one
//! thread makes them queue in FIFO order instead of sleeping in the busy handler, and
//! lets one fsync (synchronous=FULL) make a whole batch durable.
//!
//! Each job runs inside its own SAVEPOINT: a job that fails with a `StoreError` is rolled
//! back alone, and the others in the batch still commit. Results are handed back only
//! after COMMIT returns, so a caller never reports success for a write that could still be
//! lost.

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::health::Health;
use super::StoreError;

/// Jobs committed together at most; a bigger backlog is split over several commits.
const MAX_BATCH: usize = 256;
/// The writer checkpoints (copies the WAL into the database file and lets SQLite reuse
/// the WAL) after this many batches, instead of SQLite's page-count autocheckpoint.
/// Measured on a 2-core VM (bench/run.sh W1/W3, fresh databases): every 32 or 64 batches
/// makes each checkpoint long enough (6–15 ms) to dominate p99; every 8 costs ~10 %
/// throughput (each checkpoint fsyncs the main file, dearer on a big database); a
/// background checkpointer thread never catches up under load, so the WAL grew without
/// bound. 12 kept W3b p99 at ~6 ms with the throughput of 16.
const CHECKPOINT_EVERY_BATCHES: u32 = 12;

/// One queued write: runs in the open transaction, then learns whether COMMIT succeeded.
trait Job: Send {
    fn run(&mut self, conn: &Connection);
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct TypedJob<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) {
        let Some(work) = self.work.take() else { return };
        let result = in_savepoint(conn, work);
        self.result = Some(result);
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let result = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::TaskFailed),
            (Err(cause), _) => Err(StoreError::CommitFailed(cause)),
        };
        // The caller may have gone away (client disconnected); the write stands anyway.
        let _ = self.reply.send(result);
    }
}

/// Runs `work` inside a savepoint, rolling back to it when `work` fails.
fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    // A panicking job must not take the writer thread (and with it every later write)
    // down: it is rolled back and reported like any failed job.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
        .unwrap_or(Err(StoreError::TaskFailed));
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

/// The sending side of the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
}

impl Writer {
    /// Opens the writer's own connection and starts its thread, which consults `health`
    /// around every batch.
    pub fn start(path: &Path, health: Arc<Health>) -> Result<Writer, StoreError> {
        let mut conn = Connection::open_with_flags(path, super::OPEN_EXISTING).map_err(|e| {
            StoreError::Open {
                path: path.to_owned(),
                cause: e.to_string(),
            }
        })?;
        super::configure_connection(&mut conn)?;
        // Checkpoints are scheduled by the write loop, between batches.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (jobs, receiver) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("oauthd-writer".into())
            .spawn(move || write_loop(conn, receiver, &health))
            .map_err(|e| StoreError::Open {
                path: path.to_owned(),
                cause: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Writer { jobs })
    }

    /// Queues `work` and waits until its batch is committed.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = TypedJob {
            work: Some(work),
            result: None,
            reply,
        };
        self.jobs
            .send(Box::new(job))
            .map_err(|_| StoreError::TaskFailed)?;
        answer.await.map_err(|_| StoreError::TaskFailed)?
    }
}

/// Takes the first waiting job, then every job already queued behind it (up to
/// [`MAX_BATCH`]), runs them in one transaction and commits once.
fn write_loop(
    conn: Connection,
    mut receiver: mpsc::UnboundedReceiver<Box<dyn Job>>,
    health: &Health,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut batches_since_checkpoint = 0u32;
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let committed = guarded_batch(&conn, &mut batch, health);
        tracing::debug!(
            jobs = batch.len(),
            micros = started.elapsed().as_micros() as u64,
            "write batch"
        );
        if let Err(cause) = &committed {
            crate::log_limit::storage_error("write batch failed", cause);
        }
        for job in batch.drain(..) {
            job.finish(committed.clone());
        }
        batches_since_checkpoint += 1;
        if batches_since_checkpoint >= CHECKPOINT_EVERY_BATCHES {
            batches_since_checkpoint = 0;
            let started = std::time::Instant::now();
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
            tracing::debug!(micros = started.elapsed().as_micros() as u64, "checkpoint");
        }
    }
}

/// Runs the batch only while the path still names the file the writer opened, and reports
/// it as failed when the path names another file (or none) right after COMMIT: nothing is
/// acknowledged that is not in the file the path names.
fn guarded_batch(
    conn: &Connection,
    batch: &mut [Box<dyn Job>],
    health: &Health,
) -> Result<(), String> {
    let outcome = health
        .before_write(conn)
        .map_err(|problem| problem.to_string())
        .and_then(|()| run_batch(conn, batch))
        .and_then(|()| health.file().map_err(|problem| problem.to_string()));
    health.record_write(&outcome);
    outcome
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())?;
    for job in batch.iter_mut() {
        job.run(conn);
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::files::FileId;
    use super::super::Store;
    use super::*;

    fn test_writer(path: &Path) -> Writer {
        let health = Arc::new(Health::new(path, FileId::of(path).expect("stat")));
        Writer::start(path, health).expect("writer")
    }

    #[tokio::test]
    async fn a_failed_job_rolls_back_alone_and_others_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        let store = Store::open(&path).expect("open");
        let writer = test_writer(&path);
        let insert = |name: &'static str| {
            move |conn: &Connection| -> Result<(), StoreError> {
                conn.execute(
                    "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?1, 0)",
                    [name],
                )?;
                Ok(())
            }
        };
        let failing = |conn: &Connection| -> Result<(), StoreError> {
            conn.execute(
                "INSERT INTO organizations (id, name, created_at) VALUES ('x', 'x', 0)",
                [],
            )?;
            Err(StoreError::Conflict("test"))
        };
        let (a, b, c) = tokio::join!(
            writer.write(insert("a")),
            writer.write(failing),
            writer.write(insert("c"))
        );
        assert!(a.is_ok() && c.is_ok());
        assert!(matches!(b, Err(StoreError::Conflict("test"))));
        let names: Vec<String> = store
            .with_conn(|conn| {
                let mut stmt = conn.prepare("SELECT name FROM organizations ORDER BY name")?;
                let names = stmt
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(names)
            })
            .expect("names");
        assert_eq!(names, ["a", "c"]);
    }

    #[tokio::test]
    async fn a_panicking_job_is_rolled_back_and_the_writer_survives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        let _store = Store::open(&path).expect("open");
        let writer = test_writer(&path);
        let panicked = writer
            .write(|conn: &Connection| -> Result<(), StoreError> {
                conn.execute(
                    "INSERT INTO organizations (id, name, created_at) VALUES ('p', 'p', 0)",
                    [],
                )?;
                panic!("a bug in a job");
            })
            .await;
        assert!(matches!(panicked, Err(StoreError::TaskFailed)));
        let count = writer
            .write(|conn: &Connection| -> Result<i64, StoreError> {
                Ok(conn.query_row("SELECT count(*) FROM organizations", [], |r| r.get(0))?)
            })
            .await
            .expect("the writer still works");
        assert_eq!(count, 0, "the panicking job's insert was rolled back");
    }

    #[tokio::test]
    async fn many_concurrent_writes_all_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        let store = Store::open(&path).expect("open");
        let writer = test_writer(&path);
        let tasks: Vec<_> = (0..500)
            .map(|n| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer
                        .write(move |conn| {
                            conn.execute(
                                "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?1, 0)",
                                [format!("org{n}")],
                            )?;
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("join").expect("write");
        }
        let count: i64 = store
            .with_conn(|c| Ok(c.query_row("SELECT count(*) FROM organizations", [], |r| r.get(0))?))
            .expect("count");
        assert_eq!(count, 500);
    }
}
