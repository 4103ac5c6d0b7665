//! `/v1/workspaces`: workspaces and their members (API keys with an editor or viewer role).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{Caller, Role, WorkspaceRole};
use super::error::ApiError;
use super::names::check_name;
use super::{ApiState, allowlist};
use crate::boundary::audit::NewEntry;

/// `POST /v1/workspaces`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Its name: lowercase letters, digits and `-`.
    pub name: String,
}

/// `PATCH /v1/workspaces/{workspace}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// The CIDRs its routes may be called from, by anyone; `null` for any address.
    #[serde(deserialize_with = "allowlist::present")]
    pub allowed_ips: Option<Value>,
}

/// `PUT /v1/workspaces/{workspace}/members/{key_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    /// `editor` or `viewer`.
    pub role: WorkspaceRole,
}

/// 404 unless `name` exists.
pub async fn existing(state: &ApiState, name: &str) -> Result<(), ApiError> {
    match state.server.store.workspace(name).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no workspace `{name}`"),
        )),
    }
}

/// `GET /v1/workspaces`: all of them for owners and admins; members see theirs.
pub async fn list(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let all = state.server.store.workspaces().await?;
    let visible = if caller.role == Role::Member {
        let mine = state.server.store.workspaces_of(&caller.key_id).await?;
        all.into_iter().filter(|w| mine.contains(&w.name)).collect()
    } else {
        all
    };
    Ok(Json(visible).into_response())
}

/// `PATCH /v1/workspaces/{workspace}`: its IP allowlist. Owners and admins only, and not
/// itself covered by the allowlist, so a wrong list can always be mended.
pub async fn update(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(workspace): Path<String>,
    Json(body): Json<UpdateBody>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let Some(value) = body.allowed_ips else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing to change: give `allowed_ips` (a list of CIDRs, or null)",
        ));
    };
    let ips = allowlist::parse(&value)?;
    state
        .server
        .store
        .set_workspace_ips(&workspace, ips.as_deref())
        .await?;
    state
        .audit(NewEntry::new(
            caller.actor(),
            "workspace.policy_changed",
            format!("workspace/{workspace}"),
            "ok",
            json!({ "allowed_ips": ips }),
        ))
        .await?;
    Ok(Json(state.server.store.workspace(&workspace).await?).into_response())
}

/// `POST /v1/workspaces`.
pub async fn create(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    check_name("workspace", &body.name)?;
    if !state.server.store.create_workspace(&body.name).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("workspace `{}` exists", body.name),
        ));
    }
    state
        .audit(NewEntry::new(
            caller.actor(),
            "workspace.created",
            format!("workspace/{}", body.name),
            "ok",
            json!({}),
        ))
        .await?;
    let ws = state.server.store.workspace(&body.name).await?;
    Ok((StatusCode::CREATED, Json(ws)).into_response())
}

/// `GET /v1/workspaces/{workspace}`.
pub async fn show(
    State(state): State<ApiState>,
    Path(workspace): Path<String>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let ws = state.server.store.workspace(&workspace).await?;
    let connections = state
        .server
        .store
        .connection_defs(Some(&workspace))
        .await?
        .len();
    Ok(Json(json!({ "workspace": ws, "connections": connections })).into_response())
}

/// `GET /v1/workspaces/{workspace}/members`.
pub async fn members(
    State(state): State<ApiState>,
    Path(workspace): Path<String>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    Ok(Json(state.server.store.members(&workspace).await?).into_response())
}

/// `PUT /v1/workspaces/{workspace}/members/{key_id}`: give a member key a workspace role.
pub async fn set_member(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, key_id)): Path<(String, String)>,
    Json(body): Json<MemberBody>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let key = state
        .server
        .store
        .api_keys()
        .await?
        .into_iter()
        .find(|k| k.id == key_id && k.revoked_at.is_none())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no active key `{key_id}`")))?;
    if key.role != Role::Member.as_str() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "key `{key_id}` has the organization role `{}`, which already decides its access \
                 to every workspace; workspace roles are for `member` keys",
                key.role
            ),
        ));
    }
    state
        .server
        .store
        .set_member(&workspace, &key_id, body.role.as_str())
        .await?;
    state
        .audit(NewEntry::new(
            caller.actor(),
            "workspace.member_set",
            format!("workspace/{workspace}/members/{key_id}"),
            "ok",
            json!({ "role": body.role.as_str() }),
        ))
        .await?;
    Ok(Json(json!({ "key_id": key_id, "role": body.role })).into_response())
}

/// `DELETE /v1/workspaces/{workspace}/members/{key_id}`.
pub async fn remove_member(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, key_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    if !state
        .server
        .store
        .remove_member(&workspace, &key_id)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("`{key_id}` is not a member of `{workspace}`"),
        ));
    }
    state
        .audit(NewEntry::new(
            caller.actor(),
            "workspace.member_removed",
            format!("workspace/{workspace}/members/{key_id}"),
            "ok",
            json!({}),
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
