//! The runs a server starts: the registry of those in progress (how cancel and shutdown reach
//! them, and the slots that bound how many go at once), and starting one in the background.
//!
//! Runs of one connection never overlap: the connection's lock is taken by the run itself, so
//! a second start while one is running is refused, whoever started the other.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Server;
use crate::connection::Connection;
use crate::store::LockError;
use crate::sync::{self, Progress, RunOptions, Stop, SyncError};

/// The runs this server started and has not seen finish, by connection key: how cancel and
/// shutdown reach them, and a quick refusal of a second trigger. It also holds the run slots:
/// at most `max` runs at once, whoever started them.
#[derive(Debug)]
pub struct Running {
    runs: std::sync::Mutex<HashMap<String, Stop>>,
    slots: Arc<Semaphore>,
    max: usize,
    closed: AtomicBool,
}

impl Default for Running {
    fn default() -> Self {
        Running::new(DEFAULT_MAX_RUNS)
    }
}

/// How many runs a server runs at once unless told otherwise.
pub const DEFAULT_MAX_RUNS: usize = 4;

/// A run registered in [`Running`]; dropping it ends the registration.
#[derive(Debug)]
pub(super) struct Claim {
    running: Arc<Running>,
    key: String,
    /// How to ask the run to stop.
    pub(super) stop: Stop,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.running.map().remove(&self.key);
    }
}

/// A place among the runs that may go at once, held for a run's whole length.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Running {
    /// At most `max` (at least 1) runs at once.
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Running {
            runs: std::sync::Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(max)),
            max,
            closed: AtomicBool::new(false),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stop>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many runs may go at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A free slot now, or `None` when `max` runs are going.
    pub fn try_slot(&self) -> Option<Slot> {
        self.slots.clone().try_acquire_owned().ok().map(Slot)
    }

    /// Wait for a free slot (`None` once the server is shutting down).
    pub async fn slot(&self) -> Option<Slot> {
        let permit = self.slots.clone().acquire_owned().await.ok()?;
        (!self.is_closed()).then_some(Slot(permit))
    }

    /// Whether the server is shutting down (no run starts any more).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Register a run of `key`; `None` when one is registered already or the server is
    /// shutting down. The registration lasts as long as the [`Claim`], however its holder
    /// ends (a panicking run task too).
    pub(super) fn claim(self: &Arc<Self>, key: &str) -> Option<Claim> {
        let mut map = self.map();
        if map.contains_key(key) || self.is_closed() {
            return None;
        }
        let stop = Stop::default();
        map.insert(key.to_string(), stop.clone());
        Some(Claim {
            running: self.clone(),
            key: key.to_string(),
            stop,
        })
    }

    /// How to ask the run of connection `key` to stop, if one is in progress here.
    pub fn stop_of(&self, key: &str) -> Option<Stop> {
        self.map().get(key).cloned()
    }

    /// Whether a run of connection `key` is in progress here.
    pub fn contains(&self, key: &str) -> bool {
        self.map().contains_key(key)
    }

    /// How many runs are in progress.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start no more runs, and ask every run to stop (each commits what it wrote and ends
    /// `interrupted`).
    pub fn stop_all(&self, why: &str) {
        self.closed.store(true, Ordering::SeqCst);
        self.slots.close();
        for stop in self.map().values() {
            stop.stop(why);
        }
    }

    /// Wait until every run has ended, or `limit` passed; whether they all ended.
    pub async fn drained(&self, limit: std::time::Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        while !self.is_empty() {
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        true
    }
}

/// How a run this server started ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Every stream committed.
    Succeeded,
    /// Cancelled or stopped by shutdown (it resumes on the next run).
    Stopped,
    /// Failed, with the run's error.
    Failed(String),
}

/// A run that has begun: its id, and its outcome when it ends.
#[derive(Debug)]
pub struct Started {
    /// The run's id.
    pub run_id: i64,
    /// Resolves when the run ends.
    pub done: tokio::task::JoinHandle<RunEnd>,
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A run of the connection is in progress (here, in the CLI or another server), or the
    /// server is shutting down.
    #[error("a run of this connection is in progress")]
    Busy,
    /// The connection requires worker labels (these) this server does not have: a worker
    /// with them runs it from the queue.
    #[error("the connection requires workers labelled {0}")]
    NeedsLabels(String),
    /// The run could not begin (the store, the data dir); the server log has more.
    #[error("{0}")]
    Failed(String),
}

/// Start a run of `conn` (connection key `key`) in the background, holding `slot` until it
/// ends; returns once the run exists in the store.
pub async fn start(
    server: &Server,
    key: String,
    conn: Connection,
    actor: String,
    fresh: bool,
    slot: Slot,
) -> Result<Started, StartError> {
    let claim = server.running.claim(&key).ok_or(StartError::Busy)?;
    if let Some(worker) = &server.worker {
        return start_queued(server, worker, key, conn, actor, fresh, slot, claim).await;
    }
    let (tx, mut started) = tokio::sync::mpsc::channel(1);
    let options = RunOptions {
        fresh,
        progress: Arc::new(Progress::default()),
        actor,
        started: Some(tx),
        stop: claim.stop.clone(),
    };
    let (store, runtime) = (server.store.clone(), server.runtime.clone());
    let server = server.clone();
    let task = tokio::spawn(async move {
        let report = sync::run(&runtime, &store, &conn, options).await;
        drop(claim);
        drop(slot);
        if let Ok(r) = &report
            && let Some((workspace, _)) = key.split_once('/')
        {
            match store.run(r.run_id).await {
                Ok(Some(run)) => {
                    super::webhooks::deliver::run_ended(&server, workspace, &run).await
                }
                Ok(None) => {}
                Err(e) => tracing::error!("cannot read run {} for its webhooks: {e}", r.run_id),
            }
        }
        match report {
            Ok(r) if r.succeeded() => {
                tracing::info!(run = r.run_id, "run of `{}` succeeded", conn.name);
                Ok(RunEnd::Succeeded)
            }
            Ok(r) if matches!(r.error, Some(SyncError::Stopped(_))) => {
                tracing::info!(
                    run = r.run_id,
                    "run of `{}` stopped: {}",
                    conn.name,
                    r.error_message.as_deref().unwrap_or("")
                );
                Ok(RunEnd::Stopped)
            }
            Ok(r) => {
                let why = r.error_message.unwrap_or_default();
                tracing::warn!(run = r.run_id, "run of `{}` failed: {why}", conn.name);
                Ok(RunEnd::Failed(why))
            }
            Err(e) => {
                tracing::warn!("run of `{}` did not start: {e}", conn.name);
                Err(e)
            }
        }
    });
    match started.recv().await {
        Some(run_id) => Ok(Started {
            run_id,
            done: tokio::spawn(async move {
                match task.await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(e)) => RunEnd::Failed(e.to_string()),
                    Err(e) => RunEnd::Failed(format!("the run task ended abnormally: {e}")),
                }
            }),
        }),
        // The run never began: say why.
        None => match task.await {
            // Started elsewhere (the CLI, another server on the same data dir).
            Ok(Err(SyncError::Lock(LockError::Busy(_))))
            | Ok(Err(SyncError::Store(crate::store::StoreError::Queued(_)))) => {
                Err(StartError::Busy)
            }
            Ok(Err(e)) => Err(StartError::Failed(e.to_string())),
            Ok(Ok(_)) | Err(_) => Err(StartError::Failed(
                "the run ended before it was recorded".to_string(),
            )),
        },
    }
}

/// [`start`] on a store a fleet shares: the run goes into the queue already claimed by this
/// server's worker, so it excludes every other run of the connection in the fleet and is
/// leased, heartbeated and fenced like any queued run.
#[allow(clippy::too_many_arguments)]
async fn start_queued(
    server: &Server,
    worker: &super::worker::WorkerConfig,
    key: String,
    conn: Connection,
    actor: String,
    fresh: bool,
    slot: Slot,
    claim: Claim,
) -> Result<Started, StartError> {
    if !conn
        .labels
        .iter()
        .all(|(k, v)| worker.labels.get(k) == Some(v))
    {
        let wanted: Vec<String> = conn
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        return Err(StartError::NeedsLabels(wanted.join(", ")));
    }
    let claimed = match server
        .store
        .enqueue_claimed(&key, &conn.labels, fresh, &actor, &worker.id, worker.lease)
        .await
    {
        Ok(Some(claimed)) => claimed,
        Ok(None) => return Err(StartError::Busy),
        Err(e) => return Err(StartError::Failed(e.to_string())),
    };
    let run_id = claimed.start.run_id;
    let (store, runtime, worker, running) = (
        server.store.clone(),
        server.runtime.clone(),
        worker.clone(),
        server.running.clone(),
    );
    let notify = server.webhooks.clone();
    let done = tokio::spawn(async move {
        let end = super::worker::execute(
            &store,
            &runtime,
            &claimed,
            &worker,
            &running,
            claim.stop.clone(),
        )
        .await;
        drop(claim);
        drop(slot);
        notify.notify();
        end
    });
    Ok(Started { run_id, done })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by an outside review: a run task that panicked never released its connection,
    /// and every later trigger was answered 409 until the server restarted.
    #[tokio::test]
    async fn a_run_task_that_panics_still_releases_its_connection() {
        let running = Arc::new(Running::new(2));
        let claim = running.claim("w/c").unwrap();
        assert!(
            running.claim("w/c").is_none(),
            "one run of a connection at a time"
        );
        let task = tokio::spawn(async move {
            let _claim = claim;
            panic!("a bug in a run");
        });
        assert!(task.await.is_err());
        assert!(!running.contains("w/c"));
        assert!(running.claim("w/c").is_some());
    }
}
