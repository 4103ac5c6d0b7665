//! `/v1/workspaces`: workspaces and their members (API keys with an editor or viewer role).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::access::{Caller, Role, WorkspaceRole};
use super::body::JsonBody;
use super::error::ApiError;
use super::names::check_name;
use super::routes::{Endpoint, delete, get, patch, post, put};
use super::{ApiState, MANAGERS, READ, RouteAccess, allowlist};
use crate::boundary::audit::NewEntry;
use crate::store::{Member, Workspace};

/// The routes of `/v1/workspaces`.
pub(super) fn routes() -> Vec<Endpoint> {
    use StatusCode as S;
    let ws = "/v1/workspaces/{workspace}";
    vec![
        get(
            "/v1/workspaces",
            RouteAccess::Org(&[Role::Owner, Role::Admin, Role::Member]),
            "The workspaces the caller may see",
            list,
        )
        .answers_list::<Workspace>(S::OK, "Every workspace (a member: theirs)"),
        post("/v1/workspaces", MANAGERS, "Create a workspace", create)
            .takes::<CreateBody>()
            .answers::<Workspace>(S::CREATED, "Created")
            .creates(ws, "/name"),
        get(
            ws,
            READ,
            "A workspace and how many connections it has",
            show,
        )
        .answers::<WorkspaceView>(S::OK, "The workspace"),
        patch(ws, MANAGERS, "Set a workspace's IP allowlist", update)
            .takes::<UpdateBody>()
            .answers::<Workspace>(S::OK, "The workspace as it is now"),
        get(
            "/v1/workspaces/{workspace}/members",
            READ,
            "The keys with a role in the workspace",
            members,
        )
        .answers_list::<Member>(S::OK, "Its members"),
        put(
            "/v1/workspaces/{workspace}/members/{key_id}",
            MANAGERS,
            "Give a member key a role in the workspace",
            set_member,
        )
        .takes::<MemberBody>()
        .answers::<Member>(S::OK, "The member's role"),
        delete(
            "/v1/workspaces/{workspace}/members/{key_id}",
            MANAGERS,
            "Take a key's role in the workspace away",
            remove_member,
        )
        .answers_empty(S::NO_CONTENT, "Removed"),
    ]
}

/// `GET /v1/workspaces/{workspace}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    /// The workspace.
    pub workspace: Workspace,
    /// How many connections it has.
    pub connections: u64,
}

/// `POST /v1/workspaces`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewWorkspace)]
pub struct CreateBody {
    /// Its name: 1 to 63 lowercase letters, digits, `-` and `_`, starting with a letter or digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub name: String,
}

/// `PATCH /v1/workspaces/{workspace}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WorkspaceChange)]
pub struct UpdateBody {
    /// The CIDRs its routes may be called from, by anyone; `null` for any address.
    #[serde(deserialize_with = "allowlist::present")]
    #[schema(value_type = Option<Vec<allowlist::Cidr>>, min_items = 1, required = true)]
    pub allowed_ips: Option<Value>,
}

/// `PUT /v1/workspaces/{workspace}/members/{key_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MemberRole)]
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
    JsonBody(body): JsonBody<UpdateBody>,
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
    Ok(Json(shown(&state, &workspace).await?).into_response())
}

/// The workspace `name`, or 404.
async fn shown(state: &ApiState, name: &str) -> Result<Workspace, ApiError> {
    state
        .server
        .store
        .workspace(name)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no workspace `{name}`")))
}

/// `POST /v1/workspaces`.
pub async fn create(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CreateBody>,
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
    let ws = shown(&state, &body.name).await?;
    Ok((StatusCode::CREATED, Json(ws)).into_response())
}

/// `GET /v1/workspaces/{workspace}`.
pub async fn show(
    State(state): State<ApiState>,
    Path(workspace): Path<String>,
) -> Result<Response, ApiError> {
    let ws = shown(&state, &workspace).await?;
    let connections = state
        .server
        .store
        .connection_defs(Some(&workspace))
        .await?
        .len();
    Ok(Json(WorkspaceView {
        workspace: ws,
        connections: connections as u64,
    })
    .into_response())
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
    JsonBody(body): JsonBody<MemberBody>,
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
    Ok(Json(Member {
        key_id,
        role: body.role.as_str().to_string(),
    })
    .into_response())
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
