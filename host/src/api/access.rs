//! Authentication and role checks, as one layer in front of every route: the API key from
//! `Authorization: Bearer …`, then the caller's role against [`super::ROUTES`].

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::RequestExt;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde::{Deserialize, Serialize};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use secrecy::ExposeSecret;

use super::error::ApiError;
use super::{ApiState, Peer, ROUTES, allowlist, signing};
use crate::store::{ApiKey, KeyRefusal};

/// How long a failed authentication waits before it is answered, so guessing is slow.
const FAILED_AUTH_DELAY: Duration = Duration::from_millis(150);

/// Requests per second a key may make unless the server is told otherwise.
pub const DEFAULT_RATE: u32 = 50;

/// What the access layer keeps between requests: each key's request rate, and the signatures
/// already seen.
#[derive(Debug)]
pub struct Guards {
    rate: DefaultKeyedRateLimiter<String>,
    replays: signing::Replays,
}

impl Default for Guards {
    fn default() -> Self {
        Guards::new(DEFAULT_RATE)
    }
}

impl Guards {
    /// At most `per_second` requests per second per key (bursts up to the same number).
    pub fn new(per_second: u32) -> Self {
        let n = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        Guards {
            rate: DefaultKeyedRateLimiter::keyed(Quota::per_second(n)),
            replays: signing::Replays::default(),
        }
    }

    /// `Err(wait)` when `key_id` is over its rate.
    fn check_rate(&self, key_id: &str) -> Result<(), Duration> {
        if self.rate.len() > 10_000 {
            self.rate.retain_recent();
        }
        self.rate
            .check_key(&key_id.to_string())
            .map_err(|not_until| not_until.wait_time_from(self.rate.clock().now()))
    }
}

/// Organization roles.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
pub enum RouteAccess {
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
        // A path the API has, asked with a method it does not: 405, naming the methods it
        // has (the handler never runs either way).
        let allowed: Vec<&str> = ROUTES
            .iter()
            .filter(|r| Some(r.path) == route_path.as_deref())
            .map(|r| r.method.as_str())
            .collect();
        if !allowed.is_empty() {
            note.refusal = Some("method not allowed");
            let allow = allowed.join(", ");
            let mut resp = refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("this path answers {allow} only"),
                note,
            );
            if let Ok(v) = http::HeaderValue::from_str(&allow) {
                resp.headers_mut().insert(http::header::ALLOW, v);
            }
            return resp;
        }
        note.refusal = Some("route without an access rule");
        return refuse(
            StatusCode::FORBIDDEN,
            "no access rule covers this route",
            note,
        );
    };
    if route.access == RouteAccess::Public {
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
    let key = match state.server.store.authenticate_api_key(token).await {
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
    if let Err(wait) = state.guards.check_rate(&key.id) {
        note.refusal = Some("rate limited");
        let mut resp = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "this key is over its request rate: wait as long as Retry-After says",
        )
        .retry_after(wait)
        .into_response();
        resp.extensions_mut().insert(note);
        return resp;
    }
    let ip = client_ip(&req);
    if let Some(list) = &key.allowed_ips
        && !ip.is_some_and(|ip| allowlist::allows(list, ip))
    {
        note.refusal = Some("address outside the key's allowlist");
        return refuse(
            StatusCode::FORBIDDEN,
            &format!("this key may not be used from {}", shown(ip)),
            note,
        );
    }
    if key.signed {
        req = match check_signature(&state, &key, req).await {
            Ok(req) => req,
            Err(Ok(refusal)) => {
                note.refusal = Some(refusal.reason());
                tokio::time::sleep(FAILED_AUTH_DELAY).await;
                return refuse(StatusCode::UNAUTHORIZED, &refusal.message(), note);
            }
            Err(Err(e)) => return e.into_response(),
        };
    }
    let Some(role) = Role::parse(&key.role) else {
        note.refusal = Some("key with an unknown role");
        return refuse(StatusCode::FORBIDDEN, "this key has no usable role", note);
    };
    note.role = Some(role);
    let allowed = match route.access {
        RouteAccess::Public => Ok(()),
        RouteAccess::Org(roles) if roles.contains(&role) => Ok(()),
        RouteAccess::Org(_) => Err(format!("the {} role may not do this", role.as_str())),
        RouteAccess::Workspace(need) => {
            match workspace_access(&state, &mut req, &key.id, role, need, ip, &mut note).await {
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
    ip: Option<IpAddr>,
    note: &mut AccessNote,
) -> Result<Result<(), String>, Response> {
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
    // The workspace's allowlist holds for every caller, owners included (they change it
    // through `PATCH /v1/workspaces/{workspace}`, which it does not cover).
    let allowed = state
        .server
        .store
        .workspace(&workspace)
        .await
        .map_err(|e| ApiError::from(e).into_response())?
        .and_then(|w| w.allowed_ips);
    if let Some(list) = allowed
        && !ip.is_some_and(|ip| allowlist::allows(&list, ip))
    {
        note.refusal = Some("address outside the workspace's allowlist");
        return Ok(Err(format!(
            "workspace `{workspace}` may not be reached from {}",
            shown(ip)
        )));
    }
    match role {
        Role::Owner | Role::Admin => return Ok(Ok(())),
        Role::Billing => {
            return Ok(Err(
                "the billing role has no access to workspaces".to_string()
            ));
        }
        Role::Member => {}
    }
    let ws_role = state
        .server
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

/// The client's address, when the listener recorded it.
fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.0.ip().to_canonical())
}

fn shown(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "an unknown address".to_string(), |ip| ip.to_string())
}

/// Check the signature of a request from a signing key, reading its body (and putting it
/// back). `Err(Ok(why))` for a refusal, `Err(Err(error))` for a store failure.
async fn check_signature(
    state: &ApiState,
    key: &ApiKey,
    req: Request,
) -> Result<Request, Result<signing::Refusal, ApiError>> {
    let secret = match state.server.store.api_key_signing_secret(&key.id).await {
        Ok(Some(secret)) => secret,
        // Signing was turned off in between: nothing to check.
        Ok(None) => return Ok(req),
        Err(e) => return Err(Err(ApiError::from(e))),
    };
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, signing::MAX_BODY)
        .await
        .map_err(|_| Ok(signing::Refusal::TooLarge))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
    signing::verify(
        secret.expose_secret().as_bytes(),
        &parts.headers,
        &parts.method,
        path_and_query,
        &body,
        now,
        &state.guards.replays,
    )
    .map_err(Ok)?;
    Ok(Request::from_parts(parts, Body::from(body)))
}
