//! `/v1/workspaces/{workspace}/sources` and `…/destinations`: an installed connector, its config
//! and its grant. Secret values are write-only: sent in `secrets`, sealed in the store, shown
//! only as set or unset.
//!
//! A grant given through the API may reach less of the server than a connection file: its
//! directories are relative paths inside the workspace's file area (`DATA_DIR/files/WORKSPACE/`),
//! its secrets come only from values sent with it (never the server's environment, files or
//! secret store), and its SQLite files stay inside the workspace's own warehouse folder
//! (`DATA_DIR/workspaces/WORKSPACE/warehouse/`).

use std::collections::BTreeMap;
use std::path::{Component, Path as FsPath};

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
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
use crate::capability::Grant;
use crate::store::{EndpointDef, EndpointKind};

/// The routes of `…/sources` and `…/destinations`.
pub(super) fn routes() -> Vec<Endpoint> {
    use EndpointKind::{Destination, Source};
    let mut all = of(
        Source,
        "/v1/workspaces/{workspace}/sources",
        "/v1/workspaces/{workspace}/sources/{name}",
    );
    all.extend(of(
        Destination,
        "/v1/workspaces/{workspace}/destinations",
        "/v1/workspaces/{workspace}/destinations/{name}",
    ));
    all
}

fn of(kind: EndpointKind, all: &'static str, one: &'static str) -> Vec<Endpoint> {
    use StatusCode as S;
    let (listed, added, shown, replaced, removed) = match kind {
        EndpointKind::Source => (
            "The workspace's sources",
            "Add a source: an installed connector, its config and grant",
            "A source (secret values never shown)",
            "Replace a source's config and grant",
            "Remove a source no connection uses",
        ),
        EndpointKind::Destination => (
            "The workspace's destinations",
            "Add a destination: an installed connector, its config and grant",
            "A destination (secret values never shown)",
            "Replace a destination's config and grant",
            "Remove a destination no connection uses",
        ),
    };
    vec![
        get(all, READ, listed, move |s, p| list(kind, s, p))
            .answers_list::<EndpointDef>(S::OK, "Them all"),
        post(all, WRITE, added, move |s, c, p, b| {
            create(kind, s, c, p, b)
        })
        .takes_as(new_endpoint)
        .answers::<EndpointDef>(S::CREATED, "Created")
        .creates(one, "/name"),
        get(one, READ, shown, move |s, p| show(kind, s, p)).answers::<EndpointDef>(S::OK, "It"),
        put(one, WRITE, replaced, move |s, c, p, b| {
            update(kind, s, c, p, b)
        })
        .takes::<EndpointBody>()
        .answers::<EndpointDef>(S::OK, "It as it is now"),
        delete(one, WRITE, removed, move |s, c, p| remove(kind, s, c, p))
            .answers_empty(S::NO_CONTENT, "Removed"),
    ]
}

/// The `POST` body: [`EndpointBody`] with its `name`.
fn new_endpoint(out: &mut Schemas) -> RefOr<Schema> {
    routes::requiring::<EndpointBody>(out, "NewEndpoint", "name")
}

/// A source or destination as sent: `POST` names it, `PUT` takes the name from the path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    /// Its name in the workspace (`POST` only, where it is required; a `PUT` may repeat it).
    #[serde(default, deserialize_with = "super::fields::not_null")]
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", nullable = false)]
    pub name: Option<String>,
    /// The installed connector's name.
    #[schema(example = "source-faker")]
    pub connector: String,
    /// Its config: a JSON object the connector's spec accepts, secrets as `{{secret:NAME}}`
    /// placeholders.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// The grant, in the connection file's shape (`dirs`, `network`, `secrets`, `sql`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub grant: Option<Value>,
    /// Secret values by name (strings); each must be named in `grant.secrets`.
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub secrets: Option<BTreeMap<String, Value>>,
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

fn not_found(kind: EndpointKind, workspace: &str, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no {} `{name}` in workspace `{workspace}`", kind.as_str()),
    )
}

/// A relative path that stays where it is put: no root, no `..`.
fn inside(p: &FsPath) -> bool {
    p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Check the grant's shape and what the API allows; returns it as stored (secrets marked as
/// held by the API).
fn check_grant(grant: Option<Value>) -> Result<Value, ApiError> {
    let mut grant = grant.unwrap_or_else(|| json!({}));
    let parsed: Grant = serde_json::from_value(grant.clone()).map_err(|e| {
        unprocessable(format!(
            "grant: {}",
            super::body::without_values(&e.to_string())
        ))
    })?;
    for (i, d) in parsed.dirs.iter().enumerate() {
        if !inside(&d.host) {
            return Err(unprocessable(format!(
                "grant.dirs[{i}].host must be a relative path inside the workspace's file area \
                 (no leading `/`, no `..`)"
            )));
        }
    }
    for (i, s) in parsed.secrets.iter().enumerate() {
        if s.env.is_some() || s.file.is_some() || s.stored {
            return Err(unprocessable(format!(
                "grant.secrets[{i}] (`{}`): through the API a secret's value is sent in \
                 `secrets`, not read from the server's environment, files or secret store; \
                 remove `env`, `file` and `stored`",
                s.name
            )));
        }
    }
    if let Some(net) = &parsed.network {
        // Its numbers are judged now, not first when a run starts (the retry budget against
        // the connection's call timeout still is).
        let longest = crate::boundary::limits::seconds(crate::boundary::limits::SETTING_SECONDS);
        net.config(longest.unwrap_or_default())
            .map_err(|why| unprocessable(format!("grant: {why}")))?;
    }
    for (i, q) in parsed.sql.iter().enumerate() {
        if let Some(url) = &q.url {
            let checked = crate::capability::sql::pg_url::parse(url)
                .map_err(|why| unprocessable(format!("grant.sql[{i}].url {why}")))?;
            if checked.names_a_file() {
                return Err(unprocessable(format!(
                    "grant.sql[{i}].url: `sslrootcert` names a file on the server, which a grant \
                     made over the API may not do; the platform's roots are used"
                )));
            }
        }
        if let Some(p) = &q.sqlite
            && !inside(p)
        {
            return Err(unprocessable(format!(
                "grant.sql[{i}].sqlite must be a relative path inside the warehouse folder"
            )));
        }
    }
    if let Some(list) = grant.get_mut("secrets").and_then(Value::as_array_mut) {
        for s in list {
            if let Some(obj) = s.as_object_mut() {
                obj.insert("stored".into(), Value::Bool(true));
            }
        }
    }
    Ok(grant)
}

/// Check the body against the installed connectors and the grant rules; the endpoint to store
/// and the new secret values.
async fn prepare(
    state: &ApiState,
    kind: EndpointKind,
    workspace: &str,
    name: &str,
    body: EndpointBody,
    previous: Option<&EndpointDef>,
) -> Result<(EndpointDef, BTreeMap<String, SecretString>), ApiError> {
    let installed = state
        .server
        .store
        .installed_connector(&body.connector)
        .await?
        .ok_or_else(|| {
            unprocessable(format!(
                "connector `{}` is not installed (an owner or admin installs it with \
                 `POST /v1/connectors`)",
                body.connector
            ))
        })?;
    if installed.kind.to_string() != kind.as_str() {
        return Err(unprocessable(format!(
            "connector `{}` is a {}, not a {}",
            body.connector,
            installed.kind,
            kind.as_str()
        )));
    }
    let connector = body.connector;
    let config = body.config.unwrap_or_else(|| json!({}));
    if !config.is_object() {
        return Err(unprocessable("config must be a JSON object"));
    }
    let grant = check_grant(body.grant)?;
    let named: Vec<String> = grant
        .get("secrets")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut values = BTreeMap::new();
    for (secret, value) in body.secrets.unwrap_or_default() {
        if !named.contains(&secret) {
            return Err(unprocessable(format!(
                "secret `{secret}` is not bound by the grant: add {{\"name\": \"{secret}\", \
                 \"to\": [...]}} to grant.secrets"
            )));
        }
        // Never echo the value, even in a type error.
        let Value::String(text) = value else {
            return Err(unprocessable(format!("secrets.{secret} must be a string")));
        };
        if text.len() < crate::boundary::scrub::MIN_LEN {
            return Err(unprocessable(format!(
                "secret `{secret}` is shorter than {} characters: too short to scrub from logs \
                 reliably",
                crate::boundary::scrub::MIN_LEN
            )));
        }
        values.insert(secret, SecretString::from(text));
    }
    let kept: Vec<&str> = previous
        .map(|p| {
            p.secrets
                .iter()
                .filter(|s| s.set)
                .map(|s| s.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    for secret in &named {
        if !values.contains_key(secret) && !kept.contains(&secret.as_str()) {
            return Err(unprocessable(format!(
                "secret `{secret}` has no value: send it in `secrets`"
            )));
        }
    }
    // A kept value goes only where it went: a change that would send it somewhere new (another
    // host, another header, a database URL) needs the value sent again by whoever changes it.
    if let Some(previous) = previous {
        let before: Grant = serde_json::from_value(previous.grant.clone())
            .map_err(|e| unprocessable(format!("the stored grant no longer parses: {e}")))?;
        let after: Grant = serde_json::from_value(grant.clone())
            .map_err(|e| unprocessable(format!("grant: {e}")))?;
        for secret in named.iter().filter(|s| !values.contains_key(*s)) {
            let (was, now) = (before.reach_of(secret), after.reach_of(secret));
            let why = was.change(&now).or_else(|| {
                (now.inside() && previous.connector != connector)
                    .then_some("another connector would hold it")
            });
            if let Some(why) = why {
                return Err(unprocessable(format!(
                    "secret `{secret}` would now go somewhere new ({why}): its stored value is \
                     kept only while it goes where it went; send its value again in `secrets` \
                     with this change"
                )));
            }
        }
    }
    Ok((
        EndpointDef {
            workspace: workspace.to_string(),
            kind,
            name: name.to_string(),
            connector,
            config,
            grant,
            secrets: Vec::new(),
            created_at: String::new(),
            updated_at: String::new(),
        },
        values,
    ))
}

async fn audit(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    e: &EndpointDef,
    secrets: &BTreeMap<String, SecretString>,
) -> Result<(), ApiError> {
    state
        .audit(NewEntry::new(
            caller.actor(),
            format!("{}.{action}", e.kind.as_str()),
            format!("workspace/{}/{}s/{}", e.workspace, e.kind.as_str(), e.name),
            "ok",
            json!({
                "connector": e.connector,
                // Which secrets got a new value; never the values.
                "secrets_set": secrets.keys().collect::<Vec<_>>(),
            }),
        ))
        .await
}

/// `GET …/sources` or `…/destinations`.
pub async fn list(
    kind: EndpointKind,
    State(state): State<ApiState>,
    Path(workspace): Path<String>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    Ok(Json(state.server.store.endpoints(&workspace, kind).await?).into_response())
}

/// `GET …/sources/{name}` or `…/destinations/{name}`.
pub async fn show(
    kind: EndpointKind,
    State(state): State<ApiState>,
    Path((workspace, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    match state.server.store.endpoint(&workspace, kind, &name).await? {
        Some(e) => Ok(Json(e).into_response()),
        None => Err(not_found(kind, &workspace, &name)),
    }
}

/// `POST …/sources` or `…/destinations`.
pub async fn create(
    kind: EndpointKind,
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(workspace): Path<String>,
    JsonBody(body): JsonBody<EndpointBody>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let name = body
        .name
        .clone()
        .ok_or_else(|| unprocessable("`name` is required"))?;
    check_name(kind.as_str(), &name)?;
    if state
        .server
        .store
        .endpoint(&workspace, kind, &name)
        .await?
        .is_some()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} `{name}` exists in `{workspace}` (PUT it to change it)",
                kind.as_str()
            ),
        ));
    }
    let (e, secrets) = prepare(&state, kind, &workspace, &name, body, None).await?;
    state.server.store.put_endpoint(&e, &secrets).await?;
    audit(&state, &caller, "created", &e, &secrets).await?;
    let stored = state
        .server
        .store
        .endpoint(&workspace, kind, &name)
        .await?
        .ok_or_else(|| not_found(kind, &workspace, &name))?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `PUT …/sources/{name}` or `…/destinations/{name}`: replace config and grant; secrets not
/// sent keep their values.
pub async fn update(
    kind: EndpointKind,
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<EndpointBody>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let previous = state
        .server
        .store
        .endpoint(&workspace, kind, &name)
        .await?
        .ok_or_else(|| not_found(kind, &workspace, &name))?;
    if body.name.as_ref().is_some_and(|n| *n != name) {
        return Err(unprocessable("a source or destination cannot be renamed"));
    }
    let (e, secrets) = prepare(&state, kind, &workspace, &name, body, Some(&previous)).await?;
    state.server.store.put_endpoint(&e, &secrets).await?;
    audit(&state, &caller, "updated", &e, &secrets).await?;
    let stored = state
        .server
        .store
        .endpoint(&workspace, kind, &name)
        .await?
        .ok_or_else(|| not_found(kind, &workspace, &name))?;
    Ok(Json(stored).into_response())
}

/// `DELETE …/sources/{name}` or `…/destinations/{name}`: refused while a connection uses it.
pub async fn remove(
    kind: EndpointKind,
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let users = state
        .server
        .store
        .endpoint_users(&workspace, kind, &name)
        .await?;
    if !users.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} `{name}` is used by connection(s) {}: delete or change those first",
                kind.as_str(),
                users.join(", ")
            ),
        ));
    }
    if !state
        .server
        .store
        .delete_endpoint(&workspace, kind, &name)
        .await?
    {
        return Err(not_found(kind, &workspace, &name));
    }
    state
        .audit(NewEntry::new(
            caller.actor(),
            format!("{}.deleted", kind.as_str()),
            format!("workspace/{workspace}/{}s/{name}", kind.as_str()),
            "ok",
            json!({}),
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
