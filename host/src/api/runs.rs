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

use super::ApiState;
use super::access::Caller;
use super::connections::resolve;
use super::error::ApiError;
use super::workspaces::existing;
use crate::store::{LockError, RunRecord, connection_key};
use crate::sync::{self, Progress, RunOptions, SyncError};

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

fn run_json(r: &RunRecord, workspace: &str) -> serde_json::Value {
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
    let conn = resolve(&state.store, &def).await?;
    let (tx, mut started) = tokio::sync::mpsc::channel(1);
    let options = RunOptions {
        fresh: body.map(|b| b.0.fresh).unwrap_or(false),
        progress: Arc::new(Progress::default()),
        actor: caller.actor(),
        started: Some(tx),
    };
    let (store, runtime) = (state.store.clone(), state.runtime.clone());
    let task = tokio::spawn(async move {
        let report = sync::run(&runtime, &store, &conn, options).await;
        match &report {
            Ok(r) if r.succeeded() => {
                tracing::info!(run = r.run_id, "run of `{}` succeeded", conn.name);
            }
            Ok(r) => tracing::warn!(
                run = r.run_id,
                "run of `{}` failed: {}",
                conn.name,
                r.error_message.as_deref().unwrap_or("")
            ),
            Err(e) => tracing::warn!("run of `{}` did not start: {e}", conn.name),
        }
        report.map(|_| ())
    });
    match started.recv().await {
        Some(id) => {
            let run = state.store.run(id).await?;
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "run": run.map(|r| run_json(&r, &workspace)) })),
            )
                .into_response())
        }
        // The run never began: say why.
        None => match task.await {
            Ok(Err(SyncError::Lock(LockError::Busy(_)))) => Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "connection `{name}` is running; runs of one connection never overlap \
                     (try again when it has finished)"
                ),
            )),
            Ok(Err(e)) => {
                tracing::error!(
                    "run of `{}` did not start: {e}",
                    connection_key(&workspace, &name)
                );
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the run could not start (see the server log)",
                ))
            }
            Ok(Ok(())) | Err(_) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the run ended before it was recorded (see the server log)",
            )),
        },
    }
}

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
