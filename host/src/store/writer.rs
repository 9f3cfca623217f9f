//! The write path: every write is a *job* (a function that runs its statements on a
//! connection inside a transaction), handed to [`Store::write`](super::Store::write).
//!
//! **SQLite** has one writer at a time, and a durable commit costs an fsync (milliseconds).
//! One committer task, on a thread of its own, owns the only write connection: it takes every
//! job waiting (up to [`MAX_BATCH_JOBS`]), runs them one after the other inside one
//! transaction, and commits once, so the fsync and the transaction's overhead are shared by
//! the whole batch (group commit; `synchronous = FULL` stays). Each caller still gets its own
//! result, and only after the commit that made it durable. A job that fails is rolled back
//! alone: the batch is rolled back and run again without it (jobs are plain functions of
//! their input, so running one again is running the same transaction again). The committer's
//! own thread keeps the many statement round trips to SQLite's connection thread from
//! queueing behind HTTP work on the async runtime.
//!
//! **PostgreSQL** runs each job in a transaction of its own on the pool: many run at once, and
//! PostgreSQL already shares WAL flushes between concurrent commits.
//!
//! Either way, a job must do nothing but database work on its connection (no network calls, no
//! waiting on other tasks), and must not ask the store for another write (on SQLite that
//! waits forever).

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::{Connection, Executor};
use tokio::sync::{mpsc, oneshot};

use super::Tx;

/// A write job: its statements, run on `tx` (inside a transaction) with `input`. It may run
/// more than once (see the module's doc), so it must be a function of its input and the
/// database only.
pub type Job<I, T, E> = for<'c> fn(&'c mut Tx, &'c I) -> BoxFuture<'c, Result<T, E>>;

/// Most jobs one commit carries: bounds a batch's latency and what a failure re-runs.
pub const MAX_BATCH_JOBS: usize = 128;

/// Jobs waiting for the committer, at most: callers wait for room beyond it.
const QUEUE_JOBS: usize = 8192;

/// What the committer has done, for operators and benchmarks.
#[derive(Debug, Default)]
pub struct WriteStats {
    pub batches: AtomicU64,
    pub jobs: AtomicU64,
    /// Batches run again because one of their jobs failed.
    pub reruns: AtomicU64,
    pub largest_batch: AtomicU64,
    /// Batches by size: 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64-127, 128.
    pub sizes: [AtomicU64; 8],
}

impl WriteStats {
    fn record(&self, jobs: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.jobs.fetch_add(jobs as u64, Ordering::Relaxed);
        self.largest_batch.fetch_max(jobs as u64, Ordering::Relaxed);
        let bucket = (usize::BITS - jobs.max(1).leading_zeros() - 1).min(7) as usize;
        self.sizes[bucket].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let batches = load(&self.batches);
        serde_json::json!({
            "batches": batches,
            "jobs": load(&self.jobs),
            "reruns": load(&self.reruns),
            "largest_batch": load(&self.largest_batch),
            "mean_batch": if batches == 0 { 0.0 } else { load(&self.jobs) as f64 / batches as f64 },
            "batches_by_size": {
                "1": load(&self.sizes[0]), "2-3": load(&self.sizes[1]), "4-7": load(&self.sizes[2]),
                "8-15": load(&self.sizes[3]), "16-31": load(&self.sizes[4]),
                "32-63": load(&self.sizes[5]), "64-127": load(&self.sizes[6]),
                "128": load(&self.sizes[7]),
            },
        })
    }
}

/// How a job's caller learns its outcome.
enum Reply<T, E> {
    Done(Result<T, E>),
    /// The job panicked: the caller panics with the same payload.
    Panicked(Box<dyn Any + Send>),
}

/// A job with its input and the way back to its caller, its types erased for the queue.
trait Queued: Send {
    /// Runs the job on `tx`; `false` when it failed (its result is then its error).
    fn run<'c>(&'c mut self, tx: &'c mut Tx) -> BoxFuture<'c, bool>;
    /// Sends the caller its result, or `failed` if the batch did not commit.
    fn finish(self: Box<Self>, failed: Option<&sqlx::Error>);
}

struct Typed<I, T, E> {
    input: I,
    job: Job<I, T, E>,
    outcome: Option<Reply<T, E>>,
    reply: oneshot::Sender<Reply<T, E>>,
}

impl<I, T, E> Queued for Typed<I, T, E>
where
    I: Send + Sync + 'static,
    T: Send + 'static,
    E: From<sqlx::Error> + Send + 'static,
{
    fn run<'c>(&'c mut self, tx: &'c mut Tx) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let ran = AssertUnwindSafe((self.job)(tx, &self.input))
                .catch_unwind()
                .await;
            let ok = matches!(ran, Ok(Ok(_)));
            self.outcome = Some(match ran {
                Ok(result) => Reply::Done(result),
                Err(panic) => Reply::Panicked(panic),
            });
            ok
        })
    }

    fn finish(self: Box<Self>, failed: Option<&sqlx::Error>) {
        let reply = match (failed, self.outcome) {
            // A job that failed or panicked keeps its own outcome (its writes are gone anyway).
            (_, Some(outcome @ (Reply::Done(Err(_)) | Reply::Panicked(_)))) => outcome,
            (None, Some(done)) => done,
            (Some(error), _) => Reply::Done(Err(E::from(commit_failed(error)))),
            (None, None) => Reply::Done(Err(E::from(commit_failed(&sqlx::Error::WorkerCrashed)))),
        };
        let _ = self.reply.send(reply);
    }
}

/// The error every job of a batch gets when the batch could not be committed.
fn commit_failed(error: &sqlx::Error) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!(
        "the write could not be committed: {error}"
    )))
}

/// The handle to the SQLite committer; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    queue: mpsc::Sender<Box<dyn Queued>>,
    pub stats: Arc<WriteStats>,
}

impl Committer {
    /// Starts the committer on a thread of its own, owning `connection`.
    pub fn start(connection: Tx) -> Self {
        let (queue, jobs) = mpsc::channel::<Box<dyn Queued>>(QUEUE_JOBS);
        let stats = Arc::new(WriteStats::default());
        let counters = stats.clone();
        std::thread::Builder::new()
            .name("coffer-writer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the writer's runtime starts");
                runtime.block_on(commit_forever(connection, jobs, counters));
            })
            .expect("the writer thread starts");
        Self { queue, stats }
    }

    /// Queues `job` with `input` and waits for its outcome (after its batch committed).
    pub async fn write<I, T, E>(&self, input: I, job: Job<I, T, E>) -> Result<T, E>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let queued = Box::new(Typed {
            input,
            job,
            outcome: None,
            reply,
        });
        if self.queue.send(queued).await.is_err() {
            return Err(E::from(sqlx::Error::PoolClosed));
        }
        match outcome.await {
            Ok(Reply::Done(result)) => result,
            Ok(Reply::Panicked(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(E::from(sqlx::Error::WorkerCrashed)),
        }
    }
}

/// The committer: takes every waiting job, runs them in one transaction, commits once.
async fn commit_forever(
    mut connection: Tx,
    mut queue: mpsc::Receiver<Box<dyn Queued>>,
    stats: Arc<WriteStats>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH_JOBS);
    while queue.recv_many(&mut batch, MAX_BATCH_JOBS).await > 0 {
        stats.record(batch.len());
        run_batch(&mut connection, std::mem::take(&mut batch), &stats).await;
    }
    let _ = connection.close().await;
}

/// Runs `batch` in one transaction. A job that fails is taken out and the others run again
/// in a fresh transaction, so its writes never reach the commit; at most once per job.
async fn run_batch(connection: &mut Tx, mut batch: Vec<Box<dyn Queued>>, stats: &WriteStats) {
    let mut failed = Vec::new();
    while !batch.is_empty() {
        if let Err(error) = connection.execute("BEGIN IMMEDIATE").await {
            finish_all(batch, failed, Some(&error));
            return;
        }
        let mut failure = None;
        for (i, job) in batch.iter_mut().enumerate() {
            if !job.run(connection).await {
                failure = Some(i);
                break;
            }
        }
        match failure {
            None => {
                let committed = connection.execute("COMMIT").await;
                if committed.is_err() {
                    let _ = connection.execute("ROLLBACK").await;
                }
                finish_all(batch, failed, committed.err().as_ref());
                return;
            }
            Some(i) => {
                if let Err(error) = connection.execute("ROLLBACK").await {
                    finish_all(batch, failed, Some(&error));
                    return;
                }
                failed.push(batch.remove(i));
                if !batch.is_empty() {
                    stats.reruns.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    finish_all(batch, failed, None);
}

fn finish_all(
    batch: Vec<Box<dyn Queued>>,
    failed: Vec<Box<dyn Queued>>,
    error: Option<&sqlx::Error>,
) {
    for job in batch.into_iter().chain(failed) {
        job.finish(error);
    }
}
