//! `/v1/workspaces/{workspace}/connections`: a source and a destination of the workspace and how
//! data moves between them. A connection is checked by building exactly what a run would run
//! (the same parser as connection files), so what is accepted here can run.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::access::Caller;
use super::body::JsonBody;
use super::error::ApiError;
use super::names::check_name;
use super::routes::{self, Endpoint, Schemas, delete, get, post, put};
use super::workspaces::existing;
use super::{ApiState, READ, WRITE};
use crate::boundary::audit::NewEntry;
use crate::server::resolve::{ResolveError, resolve};
use crate::store::{ConnectionDef, RunRecord};

/// The routes of `…/connections`.
pub(super) fn routes() -> Vec<Endpoint> {
    use StatusCode as S;
    let all = "/v1/workspaces/{workspace}/connections";
    let one = "/v1/workspaces/{workspace}/connections/{name}";
    vec![
        get(all, READ, "The workspace's connections", list)
            .answers_list::<ConnectionDef>(S::OK, "Its connections"),
        post(all, WRITE, "Add a connection", create)
            .takes_as(new_connection)
            .answers::<ConnectionDef>(S::CREATED, "Created, checked as a run would build it")
            .creates(one, "/name"),
        get(one, READ, "A connection and its last run", show)
            .answers::<ConnectionView>(S::OK, "The connection"),
        put(one, WRITE, "Replace a connection", update)
            .takes::<ConnectionBody>()
            .answers::<ConnectionDef>(S::OK, "The connection as it is now"),
        delete(
            one,
            WRITE,
            "Remove a connection (its runs and state stay)",
            remove,
        )
        .answers_empty(S::NO_CONTENT, "Removed"),
    ]
}

/// Whether a connection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionStatus {
    /// It runs when triggered and on its schedule.
    Active,
    /// Runs are refused, the schedule waits.
    Paused,
}

/// The `POST` body: [`ConnectionBody`] with its `name`.
fn new_connection(out: &mut Schemas) -> RefOr<Schema> {
    routes::requiring::<ConnectionBody>(out, "NewConnection", "name")
}

/// A connection as sent: `POST` names it, `PUT` takes the name from the path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionBody {
    /// Its name in the workspace (`POST` only, where it is required; a `PUT` may repeat it).
    #[serde(default, deserialize_with = "super::fields::not_null")]
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", nullable = false)]
    pub name: Option<String>,
    /// A source of the same workspace.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub source: String,
    /// A destination of the same workspace.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub destination: String,
    /// Streams and sync modes, as the connection file's `[[streams]]` (default: all).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub streams: Option<Value>,
    /// The PII policy, as the connection file's `[pii]`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub pii: Option<Value>,
    /// Limits, as the connection file's `[limits]`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub limits: Option<Value>,
    /// Invalid records, as the connection file's `[failed_records]`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub failed_records: Option<Value>,
    /// The worker labels its runs require, as the connection file's `[labels]`
    /// (`{"region": "eu"}`: on a shared store only a worker with every one of them runs it).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub labels: Option<Value>,
    /// When it runs on its own: a cron expression in UTC (5 fields, or 6 with seconds first;
    /// `@hourly`, `@daily`…). None: only when triggered.
    #[serde(default)]
    pub schedule: Option<String>,
    /// `active` (default) or `paused` (runs are refused, the schedule waits).
    #[serde(default, deserialize_with = "super::fields::not_null")]
    #[schema(nullable = false)]
    pub status: Option<ConnectionStatus>,
}

/// `GET …/connections/{name}`: the connection and its newest run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// The connection.
    #[serde(flatten)]
    pub connection: ConnectionDef,
    /// Its newest run, if it has run.
    pub last_run: Option<RunRecord>,
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
    let status = match body.status {
        None | Some(ConnectionStatus::Active) => "active",
        Some(ConnectionStatus::Paused) => "paused",
    }
    .to_string();
    let mut settings = Map::new();
    for (k, v) in [
        ("streams", body.streams),
        ("pii", body.pii),
        ("limits", body.limits),
        ("failed_records", body.failed_records),
        ("labels", body.labels),
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

/// The connection as stored now, or 404.
async fn stored(state: &ApiState, workspace: &str, name: &str) -> Result<ConnectionDef, ApiError> {
    state
        .server
        .store
        .connection_def(workspace, name)
        .await?
        .ok_or_else(|| not_found(workspace, name))
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
    Ok(Json(ConnectionView {
        connection: def,
        last_run,
    })
    .into_response())
}

/// `POST …/connections`.
pub async fn create(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(workspace): Path<String>,
    JsonBody(body): JsonBody<ConnectionBody>,
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
    let stored = stored(&state, &workspace, &name).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PUT …/connections/{name}`.
pub async fn update(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<ConnectionBody>,
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
    let stored = stored(&state, &workspace, &name).await?;
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
