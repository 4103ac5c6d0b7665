//! `/v1/keys`: API keys (the organization's members). Owners manage every key; admins manage
//! every key except owners' and cannot make one an owner. There is always an active owner key:
//! revoking or demoting the last one is refused (409).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{Caller, Role};
use super::error::ApiError;
use super::{ApiState, allowlist};
use crate::boundary::audit::NewEntry;
use crate::store::{ApiKey, KeyChange};

/// Longest grace period a rotation may leave the old key valid for: 30 days.
const MAX_GRACE_HOURS: u32 = 720;

/// `POST /v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Its organization role.
    pub role: Role,
    /// What it is for.
    #[serde(default)]
    pub name: String,
    /// Expire it after this many days (default: never).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    /// The CIDRs it may be used from (default: any address).
    #[serde(default)]
    pub allowed_ips: Option<Value>,
    /// Require signed requests: the answer carries its signing secret, once.
    #[serde(default)]
    pub signed: bool,
}

/// `PATCH /v1/keys/{id}`: any of these.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// A new organization role.
    #[serde(default)]
    pub role: Option<Role>,
    /// New CIDRs it may be used from; `null` for any address.
    #[serde(default, deserialize_with = "allowlist::present")]
    pub allowed_ips: Option<Value>,
    /// `true`: require signed requests with a new signing secret (in the answer, once; this
    /// also replaces an existing one); `false`: stop requiring them.
    #[serde(default)]
    pub signed: Option<bool>,
}

/// `POST /v1/keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the old key keeps working (default 24, at most 720 hours; 0 ends it now).
    #[serde(default)]
    pub grace_hours: Option<u32>,
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message)
}

/// Admins may not touch owner keys, nor hand out the owner role.
fn may_manage(caller: &Caller, target_role: &str, new_role: Option<Role>) -> Result<(), ApiError> {
    if caller.role == Role::Owner {
        return Ok(());
    }
    if target_role == Role::Owner.as_str() || new_role == Some(Role::Owner) {
        return Err(forbidden("only an owner may create or change owner keys"));
    }
    Ok(())
}

fn no_key(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no active key `{id}`"))
}

async fn target(state: &ApiState, id: &str) -> Result<ApiKey, ApiError> {
    state
        .server
        .store
        .api_key(id)
        .await?
        .filter(|k| k.revoked_at.is_none())
        .ok_or_else(|| no_key(id))
}

/// What the store did to key `id`, as an answer.
fn changed(id: &str, change: KeyChange) -> Result<(), ApiError> {
    match change {
        KeyChange::Done => Ok(()),
        KeyChange::NotFound => Err(no_key(id)),
        KeyChange::LastOwner => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "`{id}` is the last active owner key, and there is always an owner: create \
                 another owner key first"
            ),
        )),
    }
}

/// `GET /v1/keys`: every key, never a secret.
pub async fn list(State(state): State<ApiState>) -> Result<Response, ApiError> {
    Ok(Json(state.server.store.api_keys().await?).into_response())
}

/// `POST /v1/keys`: the token is in this answer only.
pub async fn create(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    may_manage(&caller, "", Some(body.role))?;
    let allowed_ips = match &body.allowed_ips {
        Some(v) => allowlist::parse(v)?,
        None => None,
    };
    let expires = body
        .expires_in_days
        .map(|d| time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(d)));
    let (key, token) = state
        .server
        .store
        .create_api_key(&body.name, body.role.as_str(), expires)
        .await?;
    if allowed_ips.is_some() {
        state
            .server
            .store
            .set_api_key_ips(&key.id, allowed_ips.as_deref())
            .await?;
    }
    let signing = if body.signed {
        state
            .server
            .store
            .set_api_key_signing(&key.id, true)
            .await?
            .flatten()
    } else {
        None
    };
    let key = state.server.store.api_key(&key.id).await?.unwrap_or(key);
    state
        .audit(NewEntry::new(
            caller.actor(),
            "api_key.created",
            format!("api_key/{}", key.id),
            "ok",
            json!({
                "role": key.role, "name": key.name, "expires_at": key.expires_at,
                "allowed_ips": key.allowed_ips, "signed": key.signed,
            }),
        ))
        .await?;
    let mut answer = json!({ "key": key, "token": token.expose_secret() });
    if let Some(secret) = signing {
        answer["signing_secret"] = json!(secret.expose_secret());
    }
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `PATCH /v1/keys/{id}`: change its role, its allowlist, whether it signs requests.
pub async fn update(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Json(body): Json<UpdateBody>,
) -> Result<Response, ApiError> {
    let key = target(&state, &id).await?;
    may_manage(&caller, &key.role, body.role)?;
    if body.role.is_none() && body.allowed_ips.is_none() && body.signed.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing to change: give `role`, `allowed_ips` or `signed`",
        ));
    }
    let allowed_ips = match &body.allowed_ips {
        Some(v) => Some(allowlist::parse(v)?),
        None => None,
    };
    if let Some(role) = body.role {
        changed(
            &id,
            state
                .server
                .store
                .set_api_key_role(&id, role.as_str())
                .await?,
        )?;
        state
            .audit(NewEntry::new(
                caller.actor(),
                "api_key.role_changed",
                format!("api_key/{id}"),
                "ok",
                json!({ "from": key.role, "to": role.as_str() }),
            ))
            .await?;
    }
    if let Some(ips) = &allowed_ips {
        state
            .server
            .store
            .set_api_key_ips(&id, ips.as_deref())
            .await?;
    }
    let signing = match body.signed {
        Some(on) => state
            .server
            .store
            .set_api_key_signing(&id, on)
            .await?
            .flatten(),
        None => None,
    };
    if allowed_ips.is_some() || body.signed.is_some() {
        state
            .audit(NewEntry::new(
                caller.actor(),
                "api_key.policy_changed",
                format!("api_key/{id}"),
                "ok",
                json!({
                    "allowed_ips": allowed_ips,
                    "signed": body.signed,
                    "new_signing_secret": signing.is_some(),
                }),
            ))
            .await?;
    }
    let mut answer =
        serde_json::to_value(state.server.store.api_key(&id).await?).unwrap_or_default();
    if let Some(secret) = signing {
        answer["signing_secret"] = json!(secret.expose_secret());
    }
    Ok(Json(answer).into_response())
}

/// `DELETE /v1/keys/{id}`: revoke it.
pub async fn revoke(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let key = target(&state, &id).await?;
    may_manage(&caller, &key.role, None)?;
    changed(&id, state.server.store.revoke_api_key(&id).await?)?;
    state
        .audit(NewEntry::new(
            caller.actor(),
            "api_key.revoked",
            format!("api_key/{id}"),
            "ok",
            json!({ "role": key.role }),
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/keys/{id}/rotate`: a new key (token in this answer only); the old one keeps
/// working for the grace period, so clients can switch without downtime.
pub async fn rotate(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Option<Json<RotateBody>>,
) -> Result<Response, ApiError> {
    let key = target(&state, &id).await?;
    may_manage(&caller, &key.role, None)?;
    let hours = body.and_then(|b| b.0.grace_hours).unwrap_or(24);
    if hours > MAX_GRACE_HOURS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("grace_hours is at most {MAX_GRACE_HOURS}"),
        ));
    }
    let Some((new, token)) = state
        .server
        .store
        .rotate_api_key(&id, time::Duration::hours(i64::from(hours)))
        .await?
    else {
        return Err(no_key(&id));
    };
    let old = state.server.store.api_key(&id).await?;
    state
        .audit(NewEntry::new(
            caller.actor(),
            "api_key.rotated",
            format!("api_key/{id}"),
            "ok",
            json!({ "new_key": new.id, "grace_hours": hours, "old_expires_at": old.as_ref().and_then(|k| k.expires_at.clone()) }),
        ))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": new, "token": token.expose_secret(), "old_key": old })),
    )
        .into_response())
}
