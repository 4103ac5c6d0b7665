//! A worker: claims queued runs from the store, runs them, and holds each under a lease it
//! renews by heartbeat until the run has finished.
//!
//! Any number of workers (in `sluice worker` processes, or inside `sluice serve`) share one
//! store. A worker that dies leaves its runs' leases to lapse; the next worker to claim such a
//! run resumes it from its last committed checkpoint at the next attempt, and the store refuses
//! the old attempt's checkpoints and finish from then on ([`crate::store::StoreError::Fenced`]).
//! A worker that finds its lease taken over (it was paused, or cut off from the store) stops
//! its run and says so in its log.

use std::sync::Arc;
use std::time::Duration;

use super::resolve::resolve;
use super::runs::{RunEnd, Running};
use crate::runtime::Runtime;
use crate::store::{Claimed, Labels, Lease, RunStatus, Store, StoreError};
use crate::sync::{self, Progress, RunOptions, Stop, SyncError};

/// How a worker works.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Its id in the store (unique per process: host, pid and a random part).
    pub id: String,
    /// Its labels: it claims only runs whose required labels are all among them.
    pub labels: Labels,
    /// How long a claim holds without a heartbeat; heartbeats come every third of it.
    pub lease: Duration,
    /// How often an idle worker looks for queued runs.
    pub poll: Duration,
}

impl WorkerConfig {
    /// A worker with a fresh id and `labels`.
    pub fn new(labels: Labels) -> WorkerConfig {
        WorkerConfig {
            id: worker_id(),
            labels,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(250),
        }
    }
}

/// `HOST:PID:RANDOM`: unique among the fleet, and says where to look.
fn worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "host".into());
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    format!(
        "{host}:{}:{}",
        std::process::id(),
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Claim and run queued runs, as many at once as `running` has slots, until `running` is
/// stopped ([`Running::stop_all`]: each run in progress commits what it wrote and ends
/// `interrupted`); returns once they have ended. A freed slot is filled at once; an idle
/// worker looks for queued runs every `poll`. Each run is registered in `running` under its
/// connection, which is how a server's cancel reaches a run its worker claimed.
pub async fn work(
    store: Arc<Store>,
    runtime: Arc<Runtime>,
    config: WorkerConfig,
    running: Arc<Running>,
) {
    tracing::info!(worker = %config.id, labels = ?config.labels, "worker started");
    // Recorded every third of a lease, busy or not: `sluice queue list` tells live workers
    // from gone ones by it.
    let seen = {
        let (store, config) = (store.clone(), config.clone());
        tokio::spawn(async move {
            loop {
                if let Err(e) = store.worker_seen(&config.id, &config.labels).await {
                    tracing::warn!("worker {}: cannot record its heartbeat: {e}", config.id);
                }
                tokio::time::sleep(config.lease / 3).await;
            }
        })
    };
    while let Some(slot) = running.slot().await {
        let claimed = match store
            .claim_run(&config.id, &config.labels, config.lease)
            .await
        {
            Ok(Some(c)) => c,
            Ok(None) => {
                drop(slot);
                tokio::time::sleep(config.poll).await;
                continue;
            }
            Err(e) => {
                drop(slot);
                tracing::error!("worker {}: cannot claim a run: {e}", config.id);
                tokio::time::sleep(config.poll * 4).await;
                continue;
            }
        };
        let Some(registered) = running.claim(&claimed.connection) else {
            // Shutting down (or, against the queue's one job per connection, a run of it here
            // already): the claim's lease lapses and another worker resumes the run.
            tracing::warn!(
                run = claimed.start.run_id,
                "worker {} cannot take the run of `{}` it claimed; its lease will lapse",
                config.id,
                claimed.connection
            );
            continue;
        };
        let (store, runtime, config, running) = (
            store.clone(),
            runtime.clone(),
            config.clone(),
            running.clone(),
        );
        tokio::spawn(async move {
            execute(
                &store,
                &runtime,
                &claimed,
                &config,
                &running,
                registered.stop.clone(),
            )
            .await;
            drop(registered);
            drop(slot);
        });
    }
    running.stop_all("the worker is shutting down");
    running.drained(Duration::from_secs(3600)).await;
    seen.abort();
    tracing::info!(worker = %config.id, "worker stopped");
}

/// Run one claimed run under its lease as `worker`, then let the job go; how it ended. A run
/// stopped because `running` is shutting down is handed back for another worker to resume at
/// once; one whose connection now requires labels `worker` lacks is handed back unrun.
pub async fn execute(
    store: &Store,
    runtime: &Runtime,
    claimed: &Claimed,
    worker: &WorkerConfig,
    running: &Running,
    stop: Stop,
) -> RunEnd {
    let lease = worker.lease;
    let run_id = claimed.start.run_id;
    let attempt = claimed.start.attempt;
    tracing::info!(
        run = run_id,
        attempt,
        worker = %claimed.worker,
        "claimed the run of `{}`",
        claimed.connection
    );
    let heartbeat = {
        let (store, claimed, stop) = (store.clone(), claimed.clone(), stop.clone());
        tokio::spawn(async move { heartbeat(&store, &claimed, lease, &stop).await })
    };
    let conn = match connection(store, &claimed.connection).await {
        Ok(conn) => conn,
        Err(why) => {
            heartbeat.abort();
            tracing::warn!(run = run_id, "cannot run `{}`: {why}", claimed.connection);
            let _ = store
                .finish_run(run_id, attempt, RunStatus::Failed, Some(&why), &[], 0)
                .await;
            let _ = store.release_run(claimed).await;
            return RunEnd::Failed(why);
        }
    };
    // The labels the connection requires now, not when it was queued: a residency rule added
    // since is kept.
    if !conn
        .labels
        .iter()
        .all(|(k, v)| worker.labels.get(k) == Some(v))
    {
        heartbeat.abort();
        tracing::warn!(
            run = run_id,
            "worker {} may not run `{}`: it requires labels {:?}; handed back for a worker \
             that has them",
            worker.id,
            conn.name,
            conn.labels
        );
        if let Err(e) = store.hand_back(claimed, &conn.labels).await {
            tracing::error!(run = run_id, "cannot hand the run back: {e}");
        }
        return RunEnd::Stopped;
    }
    let options = RunOptions {
        fresh: false,
        progress: Arc::new(Progress::default()),
        actor: claimed.actor.clone(),
        started: None,
        stop: stop.clone(),
    };
    let report = sync::run_begun(runtime, store, &conn, options, claimed.start.clone()).await;
    heartbeat.abort();
    let end = match report {
        Err(SyncError::Store(e @ StoreError::Fenced { .. })) => {
            // Another worker runs it now; the job is its to release.
            tracing::warn!(run = run_id, "run of `{}` refused: {e}", conn.name);
            return RunEnd::Stopped;
        }
        Err(e) => {
            tracing::warn!(run = run_id, "run of `{}` did not finish: {e}", conn.name);
            let _ = store
                .finish_run(
                    run_id,
                    attempt,
                    RunStatus::Failed,
                    Some(&e.to_string()),
                    &[],
                    0,
                )
                .await;
            RunEnd::Failed(e.to_string())
        }
        Ok(r) => {
            tracing::info!(
                run = run_id,
                attempt,
                "run of `{}` ended: {}",
                conn.name,
                r.error_message.as_deref().unwrap_or("succeeded")
            );
            if let Some((workspace, _)) = conn.name.split_once('/')
                && let Ok(Some(run)) = store.run(run_id).await
            {
                super::webhooks::deliver::queue_run_ended(store, workspace, &run).await;
            }
            if r.succeeded() {
                RunEnd::Succeeded
            } else if matches!(r.error, Some(SyncError::Stopped(_))) {
                RunEnd::Stopped
            } else {
                RunEnd::Failed(r.error_message.unwrap_or_default())
            }
        }
    };
    if end == RunEnd::Stopped && running.is_closed() {
        // Stopped by this worker's shutdown, not by a cancel: another worker resumes it now.
        match store.hand_back(claimed, &conn.labels).await {
            Ok(true) => tracing::info!(run = run_id, "handed the run of `{}` back", conn.name),
            Ok(false) => {}
            Err(e) => tracing::error!(run = run_id, "cannot hand the run back: {e}"),
        }
        return end;
    }
    if let Err(e) = store.release_run(claimed).await {
        tracing::error!(run = run_id, "cannot release the run's job: {e}");
    }
    end
}

/// Renew the lease every third of it; stop the run when it is lost or cancelled.
async fn heartbeat(store: &Store, claimed: &Claimed, lease: Duration, stop: &Stop) {
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(lease / 3).await;
        let result = store.renew_lease(claimed, lease).await;
        if matches!(result, Ok(Lease::Held { .. })) {
            renewed = tokio::time::Instant::now();
        }
        match result {
            Ok(Lease::Held { cancel: None }) => {}
            Ok(Lease::Held { cancel: Some(why) }) => stop.stop(&why),
            Ok(Lease::Lost) => {
                tracing::warn!(
                    run = claimed.start.run_id,
                    attempt = claimed.start.attempt,
                    "worker {} lost its lease on the run of `{}`: another worker took it over; \
                     stopping this attempt (its next checkpoint would be refused)",
                    claimed.worker,
                    claimed.connection
                );
                stop.stop("the lease was lost: another worker runs it now");
                return;
            }
            // The store is unreachable: keep trying, but stop the run before the lease can
            // lapse, so a worker cut off from the store stops writing to the destination
            // before another takes the run over (the store would refuse its commits anyway).
            Err(e) => {
                tracing::warn!(run = claimed.start.run_id, "cannot renew the lease: {e}");
                if renewed.elapsed() >= lease * 2 / 3 {
                    stop.stop("the lease could not be renewed: the store is unreachable");
                    return;
                }
                continue;
            }
        }
    }
}

/// The runnable connection stored under `key` (`WORKSPACE/NAME`).
async fn connection(store: &Store, key: &str) -> Result<crate::connection::Connection, String> {
    let (workspace, name) = key
        .split_once('/')
        .ok_or_else(|| format!("`{key}` is not a workspace's connection"))?;
    let def = store
        .connection_def(workspace, name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("connection `{key}` no longer exists"))?;
    resolve(store, &def).await.map_err(|e| e.to_string())
}
