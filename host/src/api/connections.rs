//! `/v1/workspaces/{workspace}/connections`: a source and a destination of the workspace and how
//! data moves between them. A connection is checked by building exactly what a run would run
//! (the same parser as connection files), so what is accepted here can run.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ApiState;
use super::access::Caller;
use super::error::ApiError;
use super::names::check_name;
use super::workspaces::existing;
use crate::boundary::audit::NewEntry;
use crate::server::resolve::{ResolveError, resolve};
use crate::store::ConnectionDef;

/// A connection as sent: `POST` names it, `PUT` takes the name from the path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionBody {
    /// Its name in the workspace (`POST` only).
    #[serde(default)]
    pub name: Option<String>,
    /// A source of the same workspace.
    pub source: String,
    /// A destination of the same workspace.
    pub destination: String,
    /// Streams and sync modes, as the connection file's `[[streams]]` (default: all).
    #[serde(default)]
    pub streams: Option<Value>,
    /// The PII policy, as the connection file's `[pii]`.
    #[serde(default)]
    pub pii: Option<Value>,
    /// Limits, as the connection file's `[limits]`.
    #[serde(default)]
    pub limits: Option<Value>,
    /// Invalid records, as the connection file's `[failed_records]`.
    #[serde(default)]
    pub failed_records: Option<Value>,
    /// When it runs on its own: a cron expression in UTC (5 fields, or 6 with seconds first;
    /// `@hourly`, `@daily`…). None: only when triggered.
    #[serde(default)]
    pub schedule: Option<String>,
    /// `active` (default) or `paused` (runs are refused, the schedule waits).
    #[serde(default)]
    pub status: Option<String>,
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> ApiError {
        match e {
            ResolveError::Store(s) => s.into(),
            other => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
        }
    }
}

fn not_found(workspace: &str, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no connection `{name}` in workspace `{workspace}`"),
    )
}

/// A connection's schedule, parsed; a 422 that names the problem when it is not one.
fn check_schedule(schedule: &str) -> Result<croner::Cron, ApiError> {
    crate::server::scheduler::parse(schedule).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "schedule `{schedule}` is not a cron expression ({e}): give 5 fields \
                 (minute hour day-of-month month day-of-week, e.g. `0 * * * *` for hourly), \
                 6 with seconds first, or `@hourly`/`@daily`/`@weekly`"
            ),
        )
    })
}

/// The definition a body describes, checked by building it.
async fn prepare(
    state: &ApiState,
    workspace: &str,
    name: &str,
    body: ConnectionBody,
) -> Result<ConnectionDef, ApiError> {
    let status = body.status.unwrap_or_else(|| "active".to_string());
    if status != "active" && status != "paused" {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("status must be `active` or `paused`, not `{status}`"),
        ));
    }
    let mut settings = Map::new();
    for (k, v) in [
        ("streams", body.streams),
        ("pii", body.pii),
        ("limits", body.limits),
        ("failed_records", body.failed_records),
    ] {
        if let Some(v) = v {
            settings.insert(k.into(), v);
        }
    }
    let def = ConnectionDef {
        workspace: workspace.to_string(),
        name: name.to_string(),
        source: body.source,
        destination: body.destination,
        settings: Value::Object(settings),
        schedule: body
            .schedule
            .map(|s| check_schedule(&s).map(|_| s))
            .transpose()?,
        status,
        created_at: String::new(),
        updated_at: String::new(),
    };
    resolve(&state.server.store, &def).await?;
    Ok(def)
}

async fn audit(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    def: &ConnectionDef,
) -> Result<(), ApiError> {
    state
        .audit(NewEntry::new(
            caller.actor(),
            format!("connection.{action}"),
            format!("workspace/{}/connections/{}", def.workspace, def.name),
            "ok",
            json!({ "source": def.source, "destination": def.destination, "status": def.status }),
        ))
        .await
}

/// `GET …/connections`.
pub async fn list(
    State(state): State<ApiState>,
    Path(workspace): Path<String>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    Ok(Json(state.server.store.connection_defs(Some(&workspace)).await?).into_response())
}

/// `GET …/connections/{name}`.
pub async fn show(
    State(state): State<ApiState>,
    Path((workspace, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let def = state
        .server
        .store
        .connection_def(&workspace, &name)
        .await?
        .ok_or_else(|| not_found(&workspace, &name))?;
    let last_run = state.server.store.runs(Some(&def.key()), 1).await?.pop();
    let mut v = serde_json::to_value(&def).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("last_run".into(), json!(last_run));
    }
    Ok(Json(v).into_response())
}

/// `POST …/connections`.
pub async fn create(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(workspace): Path<String>,
    Json(body): Json<ConnectionBody>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let name = body
        .name
        .clone()
        .ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "`name` is required"))?;
    check_name("connection", &name)?;
    if state
        .server
        .store
        .connection_def(&workspace, &name)
        .await?
        .is_some()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("connection `{name}` exists in `{workspace}` (PUT it to change it)"),
        ));
    }
    let def = prepare(&state, &workspace, &name, body).await?;
    state.server.store.put_connection(&def).await?;
    audit(&state, &caller, "created", &def).await?;
    let stored = state.server.store.connection_def(&workspace, &name).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PUT …/connections/{name}`.
pub async fn update(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, name)): Path<(String, String)>,
    Json(body): Json<ConnectionBody>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    if state
        .server
        .store
        .connection_def(&workspace, &name)
        .await?
        .is_none()
    {
        return Err(not_found(&workspace, &name));
    }
    if body.name.as_ref().is_some_and(|n| *n != name) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a connection cannot be renamed",
        ));
    }
    let def = prepare(&state, &workspace, &name, body).await?;
    state.server.store.put_connection(&def).await?;
    audit(&state, &caller, "updated", &def).await?;
    let stored = state.server.store.connection_def(&workspace, &name).await?;
    Ok(Json(stored).into_response())
}

/// `DELETE …/connections/{name}`: its run history and state stay (under `WORKSPACE/NAME`).
pub async fn remove(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let def = state
        .server
        .store
        .connection_def(&workspace, &name)
        .await?
        .ok_or_else(|| not_found(&workspace, &name))?;
    state
        .server
        .store
        .delete_connection(&workspace, &name)
        .await?;
    audit(&state, &caller, "deleted", &def).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
