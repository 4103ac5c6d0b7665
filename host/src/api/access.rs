//! Authentication and role checks, as one layer in front of every route: the API key from
//! `Authorization: Bearer …`, then the caller's role against [`super::ROUTES`].

use std::time::Duration;

use axum::RequestExt;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::{ApiState, ROUTES};
use crate::store::KeyRefusal;

/// How long a failed authentication waits before it is answered, so guessing is slow.
const FAILED_AUTH_DELAY: Duration = Duration::from_millis(150);

/// Organization roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including members.
    Owner,
    /// Settings and members (except owners).
    Admin,
    /// Billing and usage only.
    Billing,
    /// Workspaces, by their workspace role.
    Member,
}

impl Role {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Billing => "billing",
            Role::Member => "member",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Owner, Role::Admin, Role::Billing, Role::Member]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Roles within one workspace, for keys whose organization role is `member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceRole {
    /// Sources, destinations, connections and runs: read and change.
    Editor,
    /// Read only.
    Viewer,
}

impl WorkspaceRole {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceRole::Editor => "editor",
            WorkspaceRole::Viewer => "viewer",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<WorkspaceRole> {
        [WorkspaceRole::Editor, WorkspaceRole::Viewer]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// What a workspace route needs of the caller's workspace role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Viewers and editors.
    Read,
    /// Editors only.
    Write,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a key.
    Public,
    /// Keys with one of these organization roles.
    Org(&'static [Role]),
    /// A route under `/v1/workspaces/{workspace}`: owners and admins in every workspace,
    /// members by their role in that workspace, billing never.
    Workspace(Need),
}

/// Who is calling, once authenticated (a request extension).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The API key's id.
    pub key_id: String,
    /// Its organization role.
    pub role: Role,
}

impl Caller {
    /// For the audit log: `api:<key id>`.
    pub fn actor(&self) -> String {
        format!("api:{}", self.key_id)
    }
}

/// What the access layer decided, for the audit layer (a response extension).
#[derive(Debug, Clone, Default)]
pub struct AccessNote {
    /// The key id presented, when there was one.
    pub key_id: Option<String>,
    /// Its role, when authenticated.
    pub role: Option<Role>,
    /// Why access was refused.
    pub refusal: Option<&'static str>,
    /// The route as routed.
    pub route: Option<String>,
    /// The caller's role in the path's workspace, when that was looked at.
    pub workspace_role: Option<WorkspaceRole>,
}

fn refuse(status: StatusCode, message: &str, note: AccessNote) -> Response {
    let mut resp = ApiError::new(status, message).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
    }
    resp.extensions_mut().insert(note);
    resp
}

/// The access layer.
pub async fn authorize(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let route_path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let mut note = AccessNote {
        route: route_path.clone(),
        ..AccessNote::default()
    };
    let Some(route) = ROUTES
        .iter()
        .find(|r| r.method == *req.method() && Some(r.path) == route_path.as_deref())
    else {
        note.refusal = Some("route without an access rule");
        return refuse(
            StatusCode::FORBIDDEN,
            "no access rule covers this route",
            note,
        );
    };
    if route.access == Access::Public {
        let mut resp = next.run(req).await;
        resp.extensions_mut().insert(note);
        return resp;
    }
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        note.refusal = Some("no API key");
        tokio::time::sleep(FAILED_AUTH_DELAY).await;
        return refuse(
            StatusCode::UNAUTHORIZED,
            "an API key is needed: send `Authorization: Bearer <key>` (create one with `sluice admin create-key`)",
            note,
        );
    };
    let key = match state.store.authenticate_api_key(token).await {
        Ok(Ok(key)) => key,
        Ok(Err((why, id))) => {
            note.key_id = id;
            note.refusal = Some(match why {
                KeyRefusal::Unknown => "unknown key or wrong secret",
                KeyRefusal::Expired => "expired key",
                KeyRefusal::Revoked => "revoked key",
            });
            tokio::time::sleep(FAILED_AUTH_DELAY).await;
            // The caller learns only that the key is not accepted; the audit log has why.
            return refuse(
                StatusCode::UNAUTHORIZED,
                "the API key is not valid (unknown, expired or revoked)",
                note,
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    note.key_id = Some(key.id.clone());
    let Some(role) = Role::parse(&key.role) else {
        note.refusal = Some("key with an unknown role");
        return refuse(StatusCode::FORBIDDEN, "this key has no usable role", note);
    };
    note.role = Some(role);
    let allowed = match route.access {
        Access::Public => Ok(()),
        Access::Org(roles) if roles.contains(&role) => Ok(()),
        Access::Org(_) => Err(format!("the {} role may not do this", role.as_str())),
        Access::Workspace(need) => {
            match workspace_access(&state, &mut req, &key.id, role, need, &mut note).await {
                Ok(decision) => decision,
                Err(resp) => return resp,
            }
        }
    };
    if let Err(message) = allowed {
        note.refusal.get_or_insert("role not allowed");
        return refuse(StatusCode::FORBIDDEN, &message, note);
    }
    req.extensions_mut().insert(Caller {
        key_id: key.id,
        role,
    });
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(note);
    resp
}

/// Whether `role` (and, for members, their role in the path's workspace) covers `need`.
/// `Err(response)` for a store failure; `Ok(Err(message))` for a refusal.
async fn workspace_access(
    state: &ApiState,
    req: &mut Request,
    key_id: &str,
    role: Role,
    need: Need,
    note: &mut AccessNote,
) -> Result<Result<(), String>, Response> {
    match role {
        Role::Owner | Role::Admin => return Ok(Ok(())),
        Role::Billing => {
            return Ok(Err(
                "the billing role has no access to workspaces".to_string()
            ));
        }
        Role::Member => {}
    }
    let params = req
        .extract_parts::<RawPathParams>()
        .await
        .map_err(IntoResponse::into_response)?;
    let Some(workspace) = params
        .iter()
        .find(|(k, _)| *k == "workspace")
        .map(|(_, v)| v.to_string())
    else {
        note.refusal = Some("workspace route without a workspace");
        return Ok(Err("no workspace in this route".to_string()));
    };
    let ws_role = state
        .store
        .member_role(&workspace, key_id)
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .and_then(|r| WorkspaceRole::parse(&r));
    note.workspace_role = ws_role;
    Ok(match (ws_role, need) {
        (None, _) => {
            note.refusal = Some("not a member of the workspace");
            Err(format!(
                "this key is not a member of workspace `{workspace}`"
            ))
        }
        (Some(WorkspaceRole::Viewer), Need::Write) => {
            note.refusal = Some("viewer may not change");
            Err(format!("viewers of `{workspace}` may only read"))
        }
        (Some(_), _) => Ok(()),
    })
}
