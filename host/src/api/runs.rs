//! Runs: trigger one (`POST …/connections/{name}/runs`, answered as soon as the run exists),
//! list a connection's, read one with its per-stream stats, read its log lines.
//!
//! Runs of one connection never overlap: the connection's lock is taken by the run itself, so
//! a trigger while one is running is refused (409), whoever started the other.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiState;
use super::access::Caller;
use super::connections::resolve;
use super::error::ApiError;
use super::workspaces::existing;
use crate::connection::Connection;
use crate::store::{LockError, RunRecord, connection_key};
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
struct Claim {
    running: Arc<Running>,
    key: String,
    stop: Stop,
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
    fn claim(self: &Arc<Self>, key: &str) -> Option<Claim> {
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
pub enum Outcome {
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
    pub done: tokio::task::JoinHandle<Outcome>,
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A run of the connection is in progress (here, in the CLI or another server), or the
    /// server is shutting down.
    #[error("a run of this connection is in progress")]
    Busy,
    /// The run could not begin (the store, the data dir); the server log has more.
    #[error("{0}")]
    Failed(String),
}

/// Start a run of `conn` (connection key `key`) in the background, holding `slot` until it
/// ends; returns once the run exists in the store.
pub async fn start(
    state: &ApiState,
    key: String,
    conn: Connection,
    actor: String,
    fresh: bool,
    slot: Slot,
) -> Result<Started, StartError> {
    let claim = state.running.claim(&key).ok_or(StartError::Busy)?;
    let (tx, mut started) = tokio::sync::mpsc::channel(1);
    let options = RunOptions {
        fresh,
        progress: Arc::new(Progress::default()),
        actor,
        started: Some(tx),
        stop: claim.stop.clone(),
    };
    let (store, runtime) = (state.store.clone(), state.runtime.clone());
    let state = state.clone();
    let task = tokio::spawn(async move {
        let report = sync::run(&runtime, &store, &conn, options).await;
        drop(claim);
        drop(slot);
        if let Ok(r) = &report
            && let Some((workspace, _)) = key.split_once('/')
        {
            match store.run(r.run_id).await {
                Ok(Some(run)) => super::webhooks::deliver::run_ended(&state, workspace, &run).await,
                Ok(None) => {}
                Err(e) => tracing::error!("cannot read run {} for its webhooks: {e}", r.run_id),
            }
        }
        match report {
            Ok(r) if r.succeeded() => {
                tracing::info!(run = r.run_id, "run of `{}` succeeded", conn.name);
                Ok(Outcome::Succeeded)
            }
            Ok(r) if matches!(r.error, Some(SyncError::Stopped(_))) => {
                tracing::info!(
                    run = r.run_id,
                    "run of `{}` stopped: {}",
                    conn.name,
                    r.error_message.as_deref().unwrap_or("")
                );
                Ok(Outcome::Stopped)
            }
            Ok(r) => {
                let why = r.error_message.unwrap_or_default();
                tracing::warn!(run = r.run_id, "run of `{}` failed: {why}", conn.name);
                Ok(Outcome::Failed(why))
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
                    Ok(Err(e)) => Outcome::Failed(e.to_string()),
                    Err(e) => Outcome::Failed(format!("the run task ended abnormally: {e}")),
                }
            }),
        }),
        // The run never began: say why.
        None => match task.await {
            // Started elsewhere (the CLI, another server on the same data dir).
            Ok(Err(SyncError::Lock(LockError::Busy(_)))) => Err(StartError::Busy),
            Ok(Err(e)) => Err(StartError::Failed(e.to_string())),
            Ok(Ok(_)) | Err(_) => Err(StartError::Failed(
                "the run ended before it was recorded".to_string(),
            )),
        },
    }
}

/// `POST …/connections/{name}/runs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// Start over instead of resuming an unfinished run.
    #[serde(default)]
    pub fresh: bool,
}

/// `?limit=` of a listing.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// At most this many (default 20, at most 500).
    pub limit: Option<u32>,
}

/// A run as the API shows it (also the `data.run` of webhook events).
pub(crate) fn run_json(r: &RunRecord, workspace: &str) -> serde_json::Value {
    let name = r
        .connection
        .strip_prefix(&format!("{workspace}/"))
        .unwrap_or(&r.connection);
    json!({
        "id": r.id,
        "connection": name,
        "status": r.status,
        "attempt": r.attempt,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "error": r.error,
        "streams": r.streams,
        "records": r.streams.iter().map(|s| s.records).sum::<u64>(),
        "bytes": r.streams.iter().map(|s| s.bytes).sum::<u64>(),
    })
}

/// The run `id` if it belongs to a connection of `workspace` (404 otherwise, so other
/// workspaces' runs are not even confirmed to exist).
async fn run_in(state: &ApiState, workspace: &str, id: i64) -> Result<RunRecord, ApiError> {
    state
        .store
        .run(id)
        .await?
        .filter(|r| r.connection.starts_with(&format!("{workspace}/")))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no run {id} in workspace `{workspace}`"),
            )
        })
}

/// `POST …/connections/{name}/runs`: start a run in the background; `202` with its id.
pub async fn trigger(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, name)): Path<(String, String)>,
    body: Option<Json<TriggerBody>>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let def = state
        .store
        .connection_def(&workspace, &name)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no connection `{name}` in workspace `{workspace}`"),
            )
        })?;
    if def.status != "active" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("connection `{name}` is paused: PUT it with \"status\": \"active\" first"),
        ));
    }
    let busy = || {
        ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "connection `{name}` is running; runs of one connection never overlap \
                 (try again when it has finished)"
            ),
        )
    };
    // Fast refusals before building the run: one this server started, or one holding the
    // connection's lock (the CLI, another server). The run takes the lock itself later.
    if state.running.contains(&def.key()) {
        return Err(busy());
    }
    match state.store.lock(&def.key()) {
        Ok(probe) => drop(probe),
        Err(LockError::Busy(_)) => return Err(busy()),
        Err(e) => {
            tracing::error!("cannot take the lock of `{}`: {e}", def.key());
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the run could not start (see the server log)",
            ));
        }
    }
    let conn = resolve(&state.store, &def).await?;
    let slot = state.running.try_slot().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} runs are in progress, the most this server runs at once \
                 (`sluice serve --max-runs`); try again when one has finished",
                state.running.max()
            ),
        )
        .retry_after(RETRY_WHEN_FULL)
    })?;
    let fresh = body.map(|b| b.0.fresh).unwrap_or(false);
    match start(&state, def.key(), conn, caller.actor(), fresh, slot).await {
        Ok(started) => {
            let run = state.store.run(started.run_id).await?;
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "run": run.map(|r| run_json(&r, &workspace)) })),
            )
                .into_response())
        }
        Err(StartError::Busy) => Err(busy()),
        Err(StartError::Failed(e)) => {
            tracing::error!(
                "run of `{}` did not start: {e}",
                connection_key(&workspace, &name)
            );
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the run could not start (see the server log)",
            ))
        }
    }
}

/// What a trigger refused for want of a free run slot suggests as `Retry-After`.
const RETRY_WHEN_FULL: std::time::Duration = std::time::Duration::from_secs(30);

/// `GET …/connections/{name}/runs`: newest first.
pub async fn list(
    State(state): State<ApiState>,
    Path((workspace, name)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let limit = q.limit.unwrap_or(20).clamp(1, 500);
    let runs = state
        .store
        .runs(Some(&connection_key(&workspace, &name)), limit)
        .await?;
    Ok(Json(
        runs.iter()
            .map(|r| run_json(r, &workspace))
            .collect::<Vec<_>>(),
    )
    .into_response())
}

/// `GET …/runs/{id}`: status and per-stream stats.
pub async fn show(
    State(state): State<ApiState>,
    Path((workspace, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let run = run_in(&state, &workspace, id).await?;
    let masked = state.store.masking(id).await?;
    let mut v = run_json(&run, &workspace);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("masked".into(), json!(masked.lines()));
    }
    Ok(Json(v).into_response())
}

/// `GET …/runs/{id}/logs`: what the connectors logged (secrets and PII already scrubbed).
pub async fn logs(
    State(state): State<ApiState>,
    Path((workspace, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    run_in(&state, &workspace, id).await?;
    let lines: Vec<_> = state
        .store
        .logs(id)
        .await?
        .into_iter()
        .map(|(connector, level, message)| {
            json!({ "connector": connector, "level": level, "message": message })
        })
        .collect();
    Ok(Json(lines).into_response())
}

/// `POST …/runs/{id}/cancel`: ask a running run to stop. It commits what the destination has
/// received and ends `interrupted`; the next run resumes from there. `202`: poll the run.
pub async fn cancel(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let run = run_in(&state, &workspace, id).await?;
    let stop = state.running.map().get(&run.connection).cloned();
    let Some(stop) = stop.filter(|_| run.status == crate::store::RunStatus::Running) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "run {id} is not running in this server (it is {}); only a run this server \
                 started can be cancelled here",
                serde_json::to_value(run.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        ));
    };
    stop.stop(format!("cancelled by {}", caller.actor()));
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run": run_json(&run, &workspace), "stopping": true })),
    )
        .into_response())
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
