//! `/v1/keys`: API keys (the organization's members). Owners manage every key; admins manage
//! every key except owners' and cannot make one an owner. There is always an active owner key:
//! revoking or demoting the last one is refused (409).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::access::{Caller, Role};
use super::body::JsonBody;
use super::error::ApiError;
use super::routes::{Endpoint, delete, get, patch, post};
use super::{ApiState, MANAGERS, allowlist, fields};
use crate::boundary::audit::NewEntry;
use crate::store::{ApiKey, KeyChange};

/// Longest grace period a rotation may leave the old key valid for: 30 days.
const MAX_GRACE_HOURS: u32 = 720;

/// Longest name a key may be given.
const MAX_NAME: usize = 200;

/// Longest expiry a key may be given: 100 years.
const MAX_EXPIRY_DAYS: u32 = 36_500;

/// The routes of `/v1/keys`.
pub(super) fn routes() -> Vec<Endpoint> {
    use StatusCode as S;
    vec![
        get("/v1/keys", MANAGERS, "Every API key (never a secret)", list)
            .answers_list::<ApiKey>(S::OK, "The keys, revoked ones too"),
        post("/v1/keys", MANAGERS, "Create an API key", create)
            .takes::<CreateBody>()
            .answers::<CreatedKey>(S::CREATED, "The key, with its token (shown this once)")
            .creates("/v1/keys/{id}", "/key/id"),
        patch(
            "/v1/keys/{id}",
            MANAGERS,
            "Change a key's role, allowlist or request signing",
            update,
        )
        .takes::<UpdateBody>()
        .answers::<UpdatedKey>(S::OK, "The key as it is now"),
        delete("/v1/keys/{id}", MANAGERS, "Revoke a key", revoke)
            .answers_empty(S::NO_CONTENT, "Revoked"),
        post(
            "/v1/keys/{id}/rotate",
            MANAGERS,
            "Replace a key; the old one works for a grace period",
            rotate,
        )
        .may_take::<RotateBody>()
        .answers::<RotatedKey>(S::CREATED, "The new key with its token (shown this once)")
        .creates("/v1/keys/{id}", "/key/id"),
    ]
}

/// `POST /v1/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewKey)]
pub struct CreateBody {
    /// Its organization role.
    pub role: Role,
    /// What it is for.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub name: String,
    /// Expire it after this many days (default: never; 1 to 36,500: a key expiring at once
    /// would be dead on arrival).
    #[serde(default, deserialize_with = "fields::whole")]
    #[schema(minimum = 1, maximum = 36_500)]
    pub expires_in_days: Option<u32>,
    /// The CIDRs it may be used from (default: any address).
    #[serde(default)]
    #[schema(value_type = Option<Vec<allowlist::Cidr>>, min_items = 1)]
    pub allowed_ips: Option<Value>,
    /// Require signed requests: the answer carries its signing secret, once.
    #[serde(default)]
    pub signed: bool,
}

/// `PATCH /v1/keys/{id}`: any of these, at least one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
#[schema(as = KeyChange)]
pub struct UpdateBody {
    /// A new organization role.
    #[serde(default, deserialize_with = "super::fields::not_null")]
    #[schema(nullable = false)]
    pub role: Option<Role>,
    /// New CIDRs it may be used from; `null` for any address.
    #[serde(default, deserialize_with = "allowlist::present")]
    #[schema(value_type = Option<Vec<allowlist::Cidr>>, min_items = 1)]
    pub allowed_ips: Option<Value>,
    /// `true`: require signed requests with a new signing secret (in the answer, once; this
    /// also replaces an existing one); `false`: stop requiring them.
    #[serde(default, deserialize_with = "super::fields::not_null")]
    #[schema(nullable = false)]
    pub signed: Option<bool>,
}

/// `POST /v1/keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KeyRotation)]
pub struct RotateBody {
    /// How long the old key keeps working (default 24, at most 720 hours; 0 ends it now).
    #[serde(default, deserialize_with = "fields::whole")]
    #[schema(maximum = 720)]
    pub grace_hours: Option<u32>,
}

/// A key just created: its token is in this answer only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key.
    pub key: ApiKey,
    /// `sluice_<id>_<secret>`: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// The secret its requests are signed with, when `signed` (this answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// A key after a change; a new signing secret only when one was made.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdatedKey {
    /// The key as it is now.
    #[serde(flatten)]
    pub key: ApiKey,
    /// A new signing secret (this answer only), when `signed: true` made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// A rotation: the new key and its token, and the old key with its new expiry.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    /// The new key.
    pub key: ApiKey,
    /// Its token (this answer only).
    pub token: String,
    /// The old key, working until its `expires_at`.
    pub old_key: Option<ApiKey>,
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
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    may_manage(&caller, "", Some(body.role))?;
    if body.name.chars().count() > MAX_NAME {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a key's name is at most {MAX_NAME} characters"),
        ));
    }
    if body
        .expires_in_days
        .is_some_and(|d| !(1..=MAX_EXPIRY_DAYS).contains(&d))
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "expires_in_days is 1 to {MAX_EXPIRY_DAYS} (0 would make a key that is expired \
                 when created); leave it out for a key that does not expire"
            ),
        ));
    }
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
    let answer = CreatedKey {
        key,
        token: token.expose_secret().to_string(),
        signing_secret: signing.map(|s| s.expose_secret().to_string()),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `PATCH /v1/keys/{id}`: change its role, its allowlist, whether it signs requests.
pub async fn update(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
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
    let key = state
        .server
        .store
        .api_key(&id)
        .await?
        .ok_or_else(|| no_key(&id))?;
    Ok(Json(UpdatedKey {
        key,
        signing_secret: signing.map(|s| s.expose_secret().to_string()),
    })
    .into_response())
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
    body: Option<JsonBody<RotateBody>>,
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
        Json(RotatedKey {
            key: new,
            token: token.expose_secret().to_string(),
            old_key: old,
        }),
    )
        .into_response())
}
