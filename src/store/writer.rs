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

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::files::FileId;
use super::health::Health;
use super::StoreError;
use crate::metrics::WriterMetrics;

mod idle;

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
        let result = match (self.result, committed) {
            // A job that failed failed, whatever became of the transaction around it.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(cause)) => Err(StoreError::CommitFailed(cause)),
            // Not run: the file was removed or replaced before the batch.
            (None, Err(cause)) => Err(StoreError::CommitFailed(cause)),
            (None, Ok(())) => Err(StoreError::TaskFailed),
        };
        // The caller may have gone away (client disconnected); the write stands anyway.
        let _ = self.reply.send(result);
    }
}

/// Runs `work` inside a savepoint, rolling back to it when `work` fails.
///
/// Some errors (SQLITE_FULL, SQLITE_IOERR, an interrupt, …) make SQLite roll back the
/// whole transaction itself; then the savepoint is gone too, and `work`'s own error is
/// the honest result. The batch notices the lost transaction (see [`run_batch`]).
fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    // A panicking job must not take the writer thread (and with it every later write)
    // down: it is rolled back and reported like any failed job.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
        .unwrap_or(Err(StoreError::TaskFailed));
    if conn.is_autocommit() {
        // The transaction (and the savepoint with it) no longer exists.
        return result;
    }
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

/// What the writer thread receives.
enum Message {
    Job(Box<dyn Job>),
    /// Finish the queued jobs, checkpoint, then answer and stop (clean shutdown).
    Stop(mpsc::Sender<()>),
}

/// The sending side of the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    messages: mpsc::Sender<Message>,
    /// What the writer learns about the file, shared with readers and `/healthz`.
    health: Arc<Health>,
    /// Batch sizes and commit times, read by the metrics registry.
    metrics: WriterMetrics,
}

impl Writer {
    /// As [`Writer::start_retaining`], keeping the whole audit trail.
    #[cfg(test)]
    pub fn start(path: &Path) -> Result<Writer, StoreError> {
        Writer::start_retaining(path, Duration::MAX)
    }

    /// Opens the writer's own connection and starts its thread; audit rows older than
    /// `audit_retention` are deleted in its idle time.
    pub fn start_retaining(path: &Path, audit_retention: Duration) -> Result<Writer, StoreError> {
        Writer::start_with_sweeps_every(path, idle::SWEEP_INTERVAL, audit_retention)
    }

    /// As [`Writer::start_retaining`], with housekeeping sweeps this far apart (tests use
    /// short ones).
    fn start_with_sweeps_every(
        path: &Path,
        sweep_interval: Duration,
        audit_retention: Duration,
    ) -> Result<Writer, StoreError> {
        let mut conn = Connection::open_with_flags(path, super::OPEN_EXISTING).map_err(|e| {
            StoreError::Open {
                path: path.to_owned(),
                cause: e.to_string(),
            }
        })?;
        let opened = FileId::of(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            cause: e.to_string(),
        })?;
        let health = Arc::new(Health::new(path, opened));
        let thread_health = Arc::clone(&health);
        super::configure_connection(&mut conn)?;
        conn.pragma_update(None, "cache_size", -super::WRITER_CACHE_KIB)?;
        // Checkpoints are scheduled by the write loop, between batches.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (messages, receiver) = mpsc::channel();
        let wal = wal_path(path);
        let metrics = WriterMetrics::default();
        let thread_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("oauthd-writer".into())
            .spawn(move || {
                let idle = idle::IdleWork::new(&wal, sweep_interval, audit_retention);
                write_loop(conn, receiver, idle, &thread_health, &thread_metrics)
            })
            .map_err(|e| StoreError::Open {
                path: path.to_owned(),
                cause: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Writer {
            messages,
            health,
            metrics,
        })
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
        // An unbounded std channel: sending never blocks, so it is fine on a tokio worker.
        self.messages
            .send(Message::Job(Box::new(job)))
            .map_err(|_| StoreError::TaskFailed)?;
        answer.await.map_err(|_| StoreError::TaskFailed)?
    }

    /// Commits every write queued so far, checkpoints the WAL into the database file and
    /// truncates it (so the `.db` alone holds every committed write), and stops the thread.
    /// Blocks until done: call it from a plain thread, after the last request. Later
    /// writes fail with `TaskFailed`.
    /// The writer's view of its file (see `health.rs`).
    pub fn health(&self) -> Arc<Health> {
        Arc::clone(&self.health)
    }

    /// The writer's batch-size and commit-time histograms.
    pub fn metrics(&self) -> WriterMetrics {
        self.metrics.clone()
    }

    pub fn stop(&self) {
        let (done, wait) = mpsc::channel();
        if self.messages.send(Message::Stop(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

/// The `-wal` file SQLite keeps beside the database at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Takes the first waiting job, then every job already queued behind it (up to
/// [`MAX_BATCH`]), runs them in one transaction and commits once. Between batches, when
/// no job waits, it does the idle work (housekeeping, WAL truncation).
fn write_loop(
    conn: Connection,
    receiver: mpsc::Receiver<Message>,
    mut idle: idle::IdleWork,
    health: &Health,
    metrics: &WriterMetrics,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut batches_since_checkpoint = 0u32;
    let stop = loop {
        let first = match receiver.recv_timeout(idle.timeout()) {
            Ok(Message::Job(job)) => job,
            Ok(Message::Stop(done)) => break Some(done),
            Err(RecvTimeoutError::Timeout) => {
                idle.run_step(&conn);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break None,
        };
        batch.push(first);
        let mut stop = None;
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Stop(done)) => {
                    stop = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        commit_batch(&conn, &mut batch, health, metrics);
        idle.wrote();
        batches_since_checkpoint += 1;
        if batches_since_checkpoint >= CHECKPOINT_EVERY_BATCHES {
            batches_since_checkpoint = 0;
            let started = std::time::Instant::now();
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
            tracing::debug!(micros = started.elapsed().as_micros() as u64, "checkpoint");
        }
        if stop.is_some() {
            break stop;
        }
    };
    // Shutting down: whatever was queued before the stop still gets committed.
    while let Ok(message) = receiver.try_recv() {
        if let Message::Job(job) = message {
            batch.push(job);
            commit_batch(&conn, &mut batch, health, metrics);
        }
    }
    drop(receiver);
    match idle::truncate_wal(&conn) {
        Ok(true) => tracing::info!("WAL checkpointed into the database file"),
        Ok(false) => tracing::warn!("WAL not fully checkpointed at shutdown: a reader held it"),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint at shutdown failed"),
    }
    drop(conn);
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Runs `batch` (emptying it), then hands each job its exact outcome.
fn commit_batch(
    conn: &Connection,
    batch: &mut Vec<Box<dyn Job>>,
    health: &Health,
    metrics: &WriterMetrics,
) {
    let started = std::time::Instant::now();
    let outcomes = guarded_batch(conn, batch, health);
    metrics.record_batch(batch.len(), started.elapsed());
    tracing::debug!(
        jobs = batch.len(),
        micros = started.elapsed().as_micros() as u64,
        "write batch"
    );
    for (job, committed) in batch.drain(..).zip(outcomes) {
        if let Err(cause) = &committed {
            crate::log_limit::storage_error("write job not committed", cause);
        }
        job.finish(committed);
    }
}

/// Runs the jobs in one transaction and returns, per job, whether its writes committed.
///
/// When a job leaves no transaction open (SQLite rolled the whole transaction back on
/// an I/O error, a full disk, an interrupt), every job run so far in that transaction was
/// undone: they are reported as not committed, and the remaining jobs run in a fresh
/// transaction, so their outcome is reported exactly too.
/// Runs the batch only while the path still names the file the writer opened, and reports
/// it as not committed when the path names another file (or none) right after COMMIT:
/// nothing is acknowledged that is not in the file the path names. Tells `health` how
/// the batch ended.
fn guarded_batch(
    conn: &Connection,
    batch: &mut [Box<dyn Job>],
    health: &Health,
) -> Vec<Result<(), String>> {
    let mut outcomes = match health.before_write(conn) {
        Err(problem) => vec![Err(problem.to_string()); batch.len()],
        Ok(()) => run_batch(conn, batch),
    };
    if let Err(problem) = health.file() {
        for outcome in &mut outcomes {
            *outcome = Err(problem.to_string());
        }
    }
    let failure = outcomes.iter().find_map(|o| o.as_ref().err()).cloned();
    health.writes().record(&failure.map_or(Ok(()), Err));
    outcomes
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Vec<Result<(), String>> {
    let mut outcomes: Vec<Result<(), String>> = Vec::with_capacity(batch.len());
    // The first job of the transaction now open.
    let mut first_in_transaction = 0;
    let mut open = begin(conn);
    for job in batch.iter_mut() {
        if let Err(cause) = &open {
            outcomes.push(Err(cause.clone()));
            continue;
        }
        job.run(conn);
        outcomes.push(Ok(()));
        if conn.is_autocommit() {
            for outcome in &mut outcomes[first_in_transaction..] {
                *outcome = Err("the transaction was rolled back by a failed write".into());
            }
            first_in_transaction = outcomes.len();
            open = begin(conn);
        }
    }
    if open.is_ok() {
        if let Err(cause) = conn.execute_batch("COMMIT") {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            for outcome in &mut outcomes[first_in_transaction..] {
                *outcome = Err(cause.to_string());
            }
        }
    }
    outcomes
}

fn begin(conn: &Connection) -> Result<(), String> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    /// A fresh database in a temporary folder (kept while the folder lives), and its path.
    fn new_store() -> (tempfile::TempDir, std::path::PathBuf, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        let store = Store::open(&path).expect("open");
        (dir, path, store)
    }

    #[tokio::test]
    async fn a_failed_job_rolls_back_alone_and_others_commit() {
        let (_dir, path, store) = new_store();
        let writer = Writer::start(&path).expect("writer");
        let failing = |conn: &Connection| -> Result<(), StoreError> {
            conn.execute(
                "INSERT INTO organizations (id, name, created_at) VALUES ('x', 'x', 0)",
                [],
            )?;
            Err(StoreError::Conflict("test"))
        };
        let (a, b, c) = tokio::join!(
            writer.write(insert_org("a")),
            writer.write(failing),
            writer.write(insert_org("c"))
        );
        assert!(a.is_ok() && c.is_ok());
        assert!(matches!(b, Err(StoreError::Conflict("test"))));
        assert_eq!(org_names(&store), ["a", "c"]);
    }

    #[tokio::test]
    async fn a_panicking_job_is_rolled_back_and_the_writer_survives() {
        let (_dir, path, _store) = new_store();
        let writer = Writer::start(&path).expect("writer");
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
        let (_dir, path, store) = new_store();
        let writer = Writer::start(&path).expect("writer");
        let tasks: Vec<_> = (0..500)
            .map(|n| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(insert_org(format!("org{n}"))).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("join").expect("write");
        }
        let count: i64 = store
            .with_conn(|c| {
                Ok(c.sqlite()?
                    .query_row("SELECT count(*) FROM organizations", [], |r| r.get(0))?)
            })
            .expect("count");
        assert_eq!(count, 500);
    }

    /// A write job that adds the organization `name`.
    fn insert_org(
        name: impl Into<String>,
    ) -> impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static {
        let name = name.into();
        move |conn: &Connection| {
            conn.execute(
                "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?1, 0)",
                [&name],
            )?;
            Ok(())
        }
    }

    /// Queues `work` at once (without awaiting), so a test controls what shares a batch.
    fn queue<T: Send + 'static>(
        writer: &Writer,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> oneshot::Receiver<Result<T, StoreError>> {
        let (reply, answer) = oneshot::channel();
        let job = TypedJob {
            work: Some(work),
            result: None,
            reply,
        };
        writer
            .messages
            .send(Message::Job(Box::new(job)))
            .expect("writer running");
        answer
    }

    fn org_names(store: &Store) -> Vec<String> {
        store
            .with_conn(|conn| {
                let mut stmt = conn
                    .sqlite()?
                    .prepare("SELECT name FROM organizations ORDER BY name")?;
                let names = stmt
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(names)
            })
            .expect("names")
    }

    /// Regression: a job whose failure made SQLite roll back the whole transaction (as it
    /// does on SQLITE_FULL or an I/O error; simulated here by the job running ROLLBACK)
    /// left the later jobs of its batch to commit one by one outside the batch, and then
    /// reported them failed when the batch's COMMIT found no transaction.
    #[tokio::test]
    async fn every_job_gets_its_exact_outcome_when_sqlite_rolls_back_the_batch() {
        let (_dir, path, store) = new_store();
        let writer = Writer::start(&path).expect("writer");
        // Hold the writer in a batch of its own until a, b and c are all queued behind it.
        let (started, running) = std::sync::mpsc::channel::<()>();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let blocker = queue(&writer, move |_| {
            let _ = started.send(());
            let _ = wait.recv();
            Ok(())
        });
        running.recv().expect("blocker runs");
        let a = queue(&writer, insert_org("a"));
        let b = queue(&writer, |conn: &Connection| -> Result<(), StoreError> {
            conn.execute(
                "INSERT INTO organizations (id, name, created_at) VALUES ('b', 'b', 0)",
                [],
            )?;
            conn.execute_batch("ROLLBACK")?;
            Err(StoreError::Conflict("test"))
        });
        let c = queue(&writer, insert_org("c"));
        release.send(()).expect("release");
        blocker.await.expect("reply").expect("blocker commits");
        let (a, b, c) = (
            a.await.expect("reply"),
            b.await.expect("reply"),
            c.await.expect("reply"),
        );
        assert!(
            matches!(a, Err(StoreError::CommitFailed(_))),
            "a was rolled back with the transaction: {a:?}"
        );
        assert!(matches!(b, Err(StoreError::Conflict("test"))), "{b:?}");
        assert!(c.is_ok(), "c committed: {c:?}");
        assert_eq!(org_names(&store), ["c"]);
        // The writer goes on batching normally.
        writer.write(insert_org("d")).await.expect("d");
        assert_eq!(org_names(&store), ["c", "d"]);
    }

    #[tokio::test]
    async fn stop_commits_queued_writes_and_leaves_an_empty_wal() {
        let (dir, path, store) = new_store();
        let writer = Writer::start(&path).expect("writer");
        let pending: Vec<_> = (0..50)
            .map(|n| queue(&writer, insert_org(format!("org{n}"))))
            .collect();
        drop(store);
        writer.stop();
        for answer in pending {
            answer
                .await
                .expect("reply")
                .expect("committed before the stop");
        }
        let wal = wal_path(&path);
        assert_eq!(
            std::fs::metadata(&wal).map_or(0, |m| m.len()),
            0,
            "WAL truncated"
        );
        // The database file alone holds every write.
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).expect("copy");
        let count: i64 = Connection::open(&copy)
            .and_then(|c| c.query_row("SELECT count(*) FROM organizations", [], |r| r.get(0)))
            .expect("count");
        assert_eq!(count, 50);
        let late = writer.write(|_| Ok(())).await;
        assert!(matches!(late, Err(StoreError::TaskFailed)));
    }

    #[tokio::test]
    async fn idle_writer_sweeps_dead_grants_and_truncates_the_wal() {
        let (_dir, path, store) = new_store();
        let writer =
            Writer::start_with_sweeps_every(&path, Duration::from_millis(50), Duration::MAX)
                .expect("writer");
        writer
            .write(|conn| {
                conn.execute_batch(
                    "INSERT INTO users (id, email, email_key, password_hash, created_at, updated_at)
                         VALUES ('u', 'u@x.org', 'u@x.org', 'x', 0, 0);
                     INSERT INTO clients (id, name, is_public, created_at) VALUES ('c', 'C', 1, 0);
                     INSERT INTO grants (id, user_id, client_id, created_at, revoked_at)
                         VALUES (1, 'u', 'c', 0, 5);",
                )?;
                Ok(())
            })
            .await
            .expect("seed");
        let wal = wal_path(&path);
        let started = std::time::Instant::now();
        loop {
            let grants: i64 = store
                .with_conn(|c| {
                    Ok(c.sqlite()?
                        .query_row("SELECT count(*) FROM grants", [], |r| r.get(0))?)
                })
                .expect("count");
            let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
            if grants == 0 && wal_len == 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "grants {grants}, WAL {wal_len} bytes"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
