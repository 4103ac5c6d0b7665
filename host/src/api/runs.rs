//! Runs: trigger one (`POST …/connections/{name}/runs`, answered as soon as the run exists),
//! list a connection's, read one with its per-stream stats, read its log lines.
//!
//! Runs of one connection never overlap: the connection's lock is taken by the run itself, so
//! a trigger while one is running is refused (409), whoever started the other.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::body::JsonBody;
use super::error::{ApiError, ErrorBody};
use super::fields::Page;
use super::routes::{Endpoint, get, post};
use super::workspaces::existing;
use super::{ApiState, READ, WRITE};
use crate::boundary::pii::MaskCount;
use crate::server::resolve::resolve;
use crate::server::runs::{StartError, start};
use crate::server::view::RunView;
use crate::store::{LockError, RunRecord, connection_key};

/// The routes of runs.
pub(super) fn routes() -> Vec<Endpoint> {
    use StatusCode as S;
    let runs = "/v1/workspaces/{workspace}/connections/{name}/runs";
    let one = "/v1/workspaces/{workspace}/runs/{id}";
    vec![
        get(runs, READ, "A connection's runs, newest first", list)
            .query::<Page>()
            .answers_list::<RunView>(S::OK, "Its runs"),
        post(runs, WRITE, "Start a run now", trigger)
            .may_take::<TriggerBody>()
            .answers::<Started>(S::ACCEPTED, "Started; poll the run")
            .answers::<ErrorBody>(
                S::SERVICE_UNAVAILABLE,
                "As many runs are in progress as the server runs at once",
            )
            .with_header("Retry-After", "Seconds to wait before trying again")
            .creates(one, "/run/id"),
        get(
            one,
            READ,
            "A run: status, per-stream stats, masking counts",
            show,
        )
        .answers::<RunDetail>(S::OK, "The run"),
        get(
            "/v1/workspaces/{workspace}/runs/{id}/logs",
            READ,
            "What the run's connectors logged (secrets and PII scrubbed)",
            logs,
        )
        .answers_list::<LogEntry>(S::OK, "Its log lines, in order"),
        post(
            "/v1/workspaces/{workspace}/runs/{id}/cancel",
            WRITE,
            "Ask a running run to stop",
            cancel,
        )
        .answers::<Cancelling>(S::ACCEPTED, "Stopping; poll the run"),
    ]
}

/// `POST …/connections/{name}/runs`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// Start over instead of resuming an unfinished run.
    #[serde(default)]
    pub fresh: bool,
}

/// A run just started.
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// The run.
    pub run: RunView,
}

/// A run and what its PII policy masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunView,
    /// Values masked, by stream, field and rule.
    pub masked: Vec<MaskCount>,
}

/// One line a run's connector logged.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEntry {
    /// Which connector.
    pub connector: String,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The text, scrubbed.
    pub message: String,
}

/// A run asked to stop.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cancelling {
    /// The run, as it was when asked.
    pub run: RunView,
    /// Always `true`: it is stopping.
    pub stopping: bool,
}
/// The run `id` if it belongs to a connection of `workspace` (404 otherwise, so other
/// workspaces' runs are not even confirmed to exist).
async fn run_in(state: &ApiState, workspace: &str, id: i64) -> Result<RunRecord, ApiError> {
    state
        .server
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
    body: Option<JsonBody<TriggerBody>>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let def = state
        .server
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
    if state.server.running.contains(&def.key()) {
        return Err(busy());
    }
    match state.server.store.lock(&def.key()) {
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
    let conn = resolve(&state.server.store, &def).await?;
    let slot = state.server.running.try_slot().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} runs are in progress, the most this server runs at once \
                 (`sluice serve --max-runs`); try again when one has finished",
                state.server.running.max()
            ),
        )
        .retry_after(RETRY_WHEN_FULL)
    })?;
    let fresh = body.map(|b| b.0.fresh).unwrap_or(false);
    match start(&state.server, def.key(), conn, caller.actor(), fresh, slot).await {
        Ok(started) => {
            let run = state
                .server
                .store
                .run(started.run_id)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the run started but is not in the store (see the server log)",
                    )
                })?;
            Ok((
                StatusCode::ACCEPTED,
                Json(Started {
                    run: RunView::new(&run, &workspace),
                }),
            )
                .into_response())
        }
        Err(StartError::Busy) => Err(busy()),
        Err(StartError::NeedsLabels(labels)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "connection `{name}` runs only on workers labelled {labels}, which this server \
                 is not; `sluice queue add {}` queues it for one",
                connection_key(&workspace, &name)
            ),
        )),
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

/// `GET …/connections/{name}/runs`: newest first; 404 once the connection is deleted.
pub async fn list(
    State(state): State<ApiState>,
    Path((workspace, name)): Path<(String, String)>,
    Query(q): Query<Page>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    // The runs of a connection that is not there (never was, or was deleted) are not listed
    // under it: 404. They stay readable by id (`GET …/runs/{id}`) and in `sluice runs`.
    if state
        .server
        .store
        .connection_def(&workspace, &name)
        .await?
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no connection `{name}` in workspace `{workspace}`"),
        ));
    }
    let limit = q.limit()?;
    let runs = state
        .server
        .store
        .runs(Some(&connection_key(&workspace, &name)), limit)
        .await?;
    Ok(Json(
        runs.iter()
            .map(|r| RunView::new(r, &workspace))
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
    let masked = state.server.store.masking(id).await?;
    Ok(Json(RunDetail {
        run: RunView::new(&run, &workspace),
        masked: masked.lines(),
    })
    .into_response())
}

/// `GET …/runs/{id}/logs`: what the connectors logged (secrets and PII already scrubbed).
pub async fn logs(
    State(state): State<ApiState>,
    Path((workspace, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    run_in(&state, &workspace, id).await?;
    let lines: Vec<_> = state
        .server
        .store
        .logs(id)
        .await?
        .into_iter()
        .map(|(connector, level, message)| LogEntry {
            connector,
            level,
            message,
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
    let why = format!("cancelled by {}", caller.actor());
    let stop = state.server.running.stop_of(&run.connection);
    // On a store a fleet shares, a run another process holds is marked in the queue; its
    // worker sees the mark at its next heartbeat and stops it.
    if stop.is_none()
        && state.server.worker.is_some()
        && run.status == crate::store::RunStatus::Running
        && state.server.store.cancel_run(run.id, &why).await?
    {
        return Ok((
            StatusCode::ACCEPTED,
            Json(Cancelling {
                run: RunView::new(&run, &workspace),
                stopping: true,
            }),
        )
            .into_response());
    }
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
    stop.stop(why);
    Ok((
        StatusCode::ACCEPTED,
        Json(Cancelling {
            run: RunView::new(&run, &workspace),
            stopping: true,
        }),
    )
        .into_response())
}
