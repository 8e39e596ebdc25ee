//! Group commit. Requests hand their checked positions to one batcher task; it gathers points
//! from every connection into a batch and writes each batch in one transaction, up to
//! `parallel_writes` at once. A batch goes as soon as a write slot is free (after a short
//! linger), so while earlier batches commit the next one grows, up to `batch_max_points`: batch
//! size follows the load, and an idle tracker answers in one commit's time. Each request's
//! future resolves only after its batch committed.
//!
//! Back-pressure: at most `queue_points` points wait at once (a semaphore), so memory stays
//! bounded; beyond it, and while the database is unreachable, requests are refused at once with
//! [`Unavailable`] (the HTTP layer turns it into 503 with `Retry-After`). A failed batch fails its
//! requests, the writer probes the database with backoff and resumes by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::TrackerConfig;
use crate::metric;
use crate::position::Position;
use crate::store::PositionStore;

/// Why positions were not accepted for storage now; the client should resend later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The database is unreachable; the writer is waiting for it.
    #[error("the database is unreachable")]
    DatabaseDown,
    /// The batch holding these positions failed to commit.
    #[error("writing the batch failed")]
    WriteFailed,
    /// Too many points are already waiting.
    #[error("too many positions are waiting to be stored")]
    QueueFull,
    /// The commit did not come within the acknowledgement timeout (it may still happen).
    #[error("the commit did not come in time")]
    Timeout,
    /// The tracker is shutting down.
    #[error("the tracker is shutting down")]
    ShuttingDown,
}

impl Unavailable {
    /// The metric label.
    pub const fn cause(self) -> &'static str {
        match self {
            Unavailable::DatabaseDown => "database_down",
            Unavailable::WriteFailed => "write_failed",
            Unavailable::QueueFull => "queue_full",
            Unavailable::Timeout => "timeout",
            Unavailable::ShuttingDown => "shutting_down",
        }
    }
}

struct Job {
    rows: Vec<Position>,
    done: oneshot::Sender<Result<(), Unavailable>>,
    /// Released when the job is answered: the queue bound.
    _permit: OwnedSemaphorePermit,
}

/// The handle requests submit through; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    queue: Arc<Semaphore>,
    healthy: Arc<AtomicBool>,
    ack_timeout: Duration,
}

/// The batcher task, to wait for at shutdown.
pub struct WriterTask {
    handle: JoinHandle<()>,
}

impl WriterTask {
    /// Waits until every accepted position has been written or failed.
    pub async fn join(self) {
        let _ = self.handle.await;
    }
}

impl Writer {
    /// Starts the batcher on `store`; it drains and stops when `shutdown` turns true.
    pub fn start(
        store: Arc<dyn PositionStore>,
        config: &TrackerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> (Writer, WriterTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        let healthy = Arc::new(AtomicBool::new(true));
        metrics::gauge!(metric::DATABASE_UP).set(1.0);
        let batcher = Batcher {
            store,
            jobs: rx,
            healthy: healthy.clone(),
            slots: Arc::new(Semaphore::new(config.parallel_writes.max(1))),
            parallel: u32::try_from(config.parallel_writes.max(1)).unwrap_or(1),
            max_points: config.batch_max_points.max(1),
            linger: config.batch_linger,
            probing: Arc::new(AtomicBool::new(false)),
        };
        let handle = tokio::spawn(batcher.run(shutdown));
        let writer = Writer {
            jobs: tx,
            queue: Arc::new(Semaphore::new(config.queue_points.max(1))),
            healthy,
            ack_timeout: config.ack_timeout,
        };
        (writer, WriterTask { handle })
    }

    /// Whether the database is reachable, as far as the writer knows.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Stores `rows` and returns once they are committed.
    ///
    /// # Errors
    /// [`Unavailable`] when they could not be committed in time; some may still be.
    pub async fn store(&self, rows: Vec<Position>) -> Result<(), Unavailable> {
        if rows.is_empty() {
            return Ok(());
        }
        if !self.is_healthy() {
            return Err(Unavailable::DatabaseDown);
        }
        let n = u32::try_from(rows.len()).map_err(|_| Unavailable::QueueFull)?;
        let permit = self
            .queue
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| Unavailable::QueueFull)?;
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                rows,
                done,
                _permit: permit,
            })
            .map_err(|_| Unavailable::ShuttingDown)?;
        match tokio::time::timeout(self.ack_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Unavailable::ShuttingDown),
            Err(_) => Err(Unavailable::Timeout),
        }
    }
}

struct Batcher {
    store: Arc<dyn PositionStore>,
    jobs: mpsc::UnboundedReceiver<Job>,
    healthy: Arc<AtomicBool>,
    /// One permit per write allowed in flight.
    slots: Arc<Semaphore>,
    /// How many permits `slots` has in all.
    parallel: u32,
    max_points: usize,
    linger: Duration,
    /// Whether a probe task is already waiting for the database.
    probing: Arc<AtomicBool>,
}

struct Batch {
    jobs: Vec<Job>,
    points: usize,
}

impl Batch {
    fn push(&mut self, job: Job) {
        self.points += job.rows.len();
        self.jobs.push(job);
    }
}

impl Batcher {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let first = tokio::select! {
                job = self.jobs.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            let mut batch = Batch {
                points: 0,
                jobs: Vec::new(),
            };
            batch.push(first);
            self.drain_ready(&mut batch);
            // Wait for a free write slot, gathering more meanwhile: under load the batch grows
            // while earlier ones commit; when idle it goes at once.
            let slot = loop {
                if batch.points >= self.max_points {
                    break self.slots.clone().acquire_owned().await;
                }
                tokio::select! {
                    biased;
                    slot = self.slots.clone().acquire_owned() => break slot,
                    job = self.jobs.recv() => match job {
                        Some(job) => batch.push(job),
                        None => break self.slots.clone().acquire_owned().await,
                    },
                }
            };
            // A short linger lets requests that arrive together share the commit.
            if batch.points < self.max_points && !self.linger.is_zero() {
                let deadline = tokio::time::Instant::now() + self.linger;
                while batch.points < self.max_points {
                    tokio::select! {
                        job = self.jobs.recv() => match job {
                            Some(job) => batch.push(job),
                            None => break,
                        },
                        _ = tokio::time::sleep_until(deadline) => break,
                    }
                }
            }
            self.drain_ready(&mut batch);
            let Ok(slot) = slot else { break };
            self.dispatch(batch, slot);
        }
        // Shutting down: write what is still queued, then wait for writes in flight.
        self.jobs.close();
        while let Some(job) = self.jobs.recv().await {
            let mut batch = Batch {
                points: 0,
                jobs: Vec::new(),
            };
            batch.push(job);
            while batch.points < self.max_points {
                match self.jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if let Ok(slot) = self.slots.clone().acquire_owned().await {
                self.dispatch(batch, slot);
            }
        }
        let _ = self.slots.acquire_many(self.parallel).await;
    }

    /// Adds the jobs already waiting, up to a full batch.
    fn drain_ready(&mut self, batch: &mut Batch) {
        while batch.points < self.max_points {
            match self.jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
    }

    fn dispatch(&self, batch: Batch, slot: OwnedSemaphorePermit) {
        if !self.healthy.load(Ordering::Relaxed) {
            answer(batch.jobs, Err(Unavailable::DatabaseDown));
            return;
        }
        let store = self.store.clone();
        let healthy = self.healthy.clone();
        let probing = self.probing.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut batch = batch;
            // Moved, not copied. The same fix twice in one batch is the store's to skip, like
            // a fix stored before.
            let mut rows: Vec<Position> = Vec::with_capacity(batch.points);
            for job in &mut batch.jobs {
                rows.append(&mut job.rows);
            }
            let started = Instant::now();
            match store.write(&rows).await {
                Ok(inserted) => {
                    metrics::histogram!(metric::BATCH_WRITE_SECONDS)
                        .record(started.elapsed().as_secs_f64());
                    metrics::histogram!(metric::BATCH_POINTS).record(rows.len() as f64);
                    metrics::counter!(metric::POSITIONS_STORED).increment(inserted);
                    let duplicates = batch.points as u64 - inserted.min(batch.points as u64);
                    metrics::counter!(metric::POSITIONS_DUPLICATE).increment(duplicates);
                    answer(batch.jobs, Ok(()));
                }
                Err(e) => {
                    metrics::counter!(metric::BATCH_WRITE_FAILED, "cause" => e.cause())
                        .increment(1);
                    tracing::warn!(error = %e, points = rows.len(), "Writing a batch of positions failed.");
                    answer(batch.jobs, Err(Unavailable::WriteFailed));
                    mark_down(store, healthy, probing);
                }
            }
        });
    }
}

fn answer(jobs: Vec<Job>, result: Result<(), Unavailable>) {
    for job in jobs {
        // The request may have timed out and gone: nothing to tell then.
        let _ = job.done.send(result);
    }
}

/// Marks the database down and probes it with backoff until it answers.
fn mark_down(store: Arc<dyn PositionStore>, healthy: Arc<AtomicBool>, probing: Arc<AtomicBool>) {
    healthy.store(false, Ordering::Relaxed);
    metrics::gauge!(metric::DATABASE_UP).set(0.0);
    if probing.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(100);
        loop {
            tokio::time::sleep(delay).await;
            if store.ping().await.is_ok() {
                break;
            }
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        tracing::info!("The database answers again; storing positions resumes.");
        probing.store(false, Ordering::Release);
        healthy.store(true, Ordering::Relaxed);
        metrics::gauge!(metric::DATABASE_UP).set(1.0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use optimizer::model::{Coordinates, CourierId};
    use time::macros::datetime;

    fn position(second: i64) -> Position {
        Position {
            courier_id: CourierId::parse("c1").unwrap(),
            device_id: Arc::from("d1"),
            fix_time: datetime!(2026-11-21 12:00 UTC) + time::Duration::seconds(second),
            coords: Coordinates::parse(52.5, 13.4).unwrap(),
            speed_mps: None,
            heading_deg: None,
            altitude_m: None,
            accuracy_m: None,
            battery_pct: None,
            source: crate::position::Source::Osmand,
        }
    }

    fn start(
        store: Arc<MemoryStore>,
        config: TrackerConfig,
    ) -> (Writer, watch::Sender<bool>, WriterTask) {
        let (stop, stop_rx) = watch::channel(false);
        let (writer, task) = Writer::start(store, &config, stop_rx);
        (writer, stop, task)
    }

    #[tokio::test]
    async fn a_request_is_answered_only_after_its_batch_committed() {
        let store = Arc::new(MemoryStore::default());
        store.delay_ms.store(50, Ordering::Relaxed);
        let (writer, stop, task) = start(store.clone(), TrackerConfig::default());
        let (a, b) = tokio::join!(
            writer.store(vec![position(1)]),
            writer.store(vec![position(2), position(1)])
        );
        assert_eq!((a, b), (Ok(()), Ok(())));
        assert_eq!(
            store.rows.lock().unwrap().len(),
            2,
            "the duplicate is stored once"
        );
        stop.send(true).unwrap();
        task.join().await;
    }

    #[tokio::test]
    async fn an_unreachable_database_is_answered_at_once_and_storing_resumes_by_itself() {
        let store = Arc::new(MemoryStore::default());
        let (writer, stop, task) = start(store.clone(), TrackerConfig::default());
        store.down.store(true, Ordering::Relaxed);
        assert_eq!(
            writer.store(vec![position(1)]).await,
            Err(Unavailable::WriteFailed)
        );
        let started = Instant::now();
        assert_eq!(
            writer.store(vec![position(2)]).await,
            Err(Unavailable::DatabaseDown)
        );
        assert!(started.elapsed() < Duration::from_millis(50));
        store.down.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(writer.is_healthy());
        assert_eq!(writer.store(vec![position(3)]).await, Ok(()));
        stop.send(true).unwrap();
        task.join().await;
    }

    #[tokio::test]
    async fn a_full_queue_refuses_more_points_and_a_slow_commit_times_out() {
        let store = Arc::new(MemoryStore::default());
        store.delay_ms.store(300, Ordering::Relaxed);
        let config = TrackerConfig {
            queue_points: 3,
            ack_timeout: Duration::from_millis(100),
            ..TrackerConfig::default()
        };
        let (writer, stop, task) = start(store.clone(), config);
        let w = writer.clone();
        let first = tokio::spawn(async move { w.store(vec![position(1), position(2)]).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            writer.store(vec![position(3), position(4)]).await,
            Err(Unavailable::QueueFull)
        );
        assert_eq!(first.await.unwrap(), Err(Unavailable::Timeout));
        // The commit still happens; a resend is then a duplicate.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(store.rows.lock().unwrap().len(), 2);
        stop.send(true).unwrap();
        task.join().await;
    }

    #[tokio::test]
    async fn shutdown_writes_what_was_accepted() {
        let store = Arc::new(MemoryStore::default());
        let (writer, stop, task) = start(store.clone(), TrackerConfig::default());
        let w = writer.clone();
        let pending = tokio::spawn(async move { w.store(vec![position(1)]).await });
        tokio::task::yield_now().await;
        stop.send(true).unwrap();
        task.join().await;
        assert_eq!(pending.await.unwrap(), Ok(()));
        assert_eq!(store.rows.lock().unwrap().len(), 1);
    }
}
