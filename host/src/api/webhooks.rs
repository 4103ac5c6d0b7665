//! `/v1/workspaces/{workspace}/webhooks`: add, list, show, delete, rotate the secret, list
//! deliveries. The signing secret is shown once, at creation and at rotation.

use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use crate::api::ApiState;
use crate::api::access::Caller;
use crate::api::error::ApiError;
use crate::api::workspaces::existing;
use crate::boundary::audit::NewEntry;
use crate::server::webhooks::EVENTS;
use crate::store::Webhook;

/// The longest a rotated-out secret may keep signing.
const MAX_GRACE: Duration = Duration::from_secs(7 * 86_400);
/// How long a rotated-out secret keeps signing unless told.
const DEFAULT_GRACE: Duration = Duration::from_secs(86_400);

/// `POST …/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Where deliveries go.
    pub url: String,
    /// The events it receives (default: all).
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// `POST …/webhooks/{id}/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the current secret keeps signing alongside the new one (default a day, at
    /// most a week; 0 ends it now).
    #[serde(default)]
    pub grace_seconds: Option<u64>,
}

/// `?limit=` of the deliveries listing.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// At most this many (default 20, at most 500).
    pub limit: Option<u32>,
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

fn not_found(workspace: &str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no webhook `{id}` in workspace `{workspace}`"),
    )
}

async fn audit(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    hook: &Webhook,
    extra: serde_json::Value,
) -> Result<(), ApiError> {
    let mut details =
        json!({ "url": crate::server::webhooks::origin(&hook.url), "events": hook.events });
    if let (Some(d), Some(extra)) = (details.as_object_mut(), extra.as_object()) {
        d.extend(extra.clone());
    }
    state
        .audit(NewEntry::new(
            caller.actor(),
            action,
            format!("webhook/{}/{}", hook.workspace, hook.id),
            "ok",
            details,
        ))
        .await
}

fn check_events(events: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let events = events.unwrap_or_else(|| EVENTS.iter().map(|e| e.to_string()).collect());
    if events.is_empty() {
        return Err(unprocessable(
            "`events` is empty: name at least one, or leave it out for all",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(unprocessable(format!(
                "unknown event `{e}`; webhooks receive {}",
                EVENTS.join(", ")
            )));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// `GET …/webhooks`.
pub async fn list(
    State(state): State<ApiState>,
    Path(workspace): Path<String>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    Ok(Json(state.server.store.webhooks(&workspace).await?).into_response())
}

/// `POST …/webhooks`: `201` with the webhook and its signing secret (shown this once).
pub async fn create(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(workspace): Path<String>,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    existing(&state, &workspace).await?;
    let events = check_events(body.events)?;
    let url = body.url.trim().to_string();
    state.server.webhooks.check_url(&url).map_err(|e| {
        unprocessable(format!(
            "webhook URL {}: {e}. Webhooks may reach {} (the operator widens this with \
             `sluice serve --webhook-allow`)",
            crate::server::webhooks::origin(&url),
            state
                .server
                .webhooks
                .config()
                .allow
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let (hook, secret) = state
        .server
        .store
        .create_webhook(&workspace, &url, &events)
        .await?;
    audit(&state, &caller, "webhook.created", &hook, json!({})).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "webhook": hook, "secret": secret.expose_secret() })),
    )
        .into_response())
}

async fn found(state: &ApiState, workspace: &str, id: &str) -> Result<Webhook, ApiError> {
    existing(state, workspace).await?;
    state
        .server
        .store
        .webhook(workspace, id)
        .await?
        .ok_or_else(|| not_found(workspace, id))
}

/// `GET …/webhooks/{id}`.
pub async fn show(
    State(state): State<ApiState>,
    Path((workspace, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(Json(found(&state, &workspace, &id).await?).into_response())
}

/// `DELETE …/webhooks/{id}`: its pending deliveries go with it.
pub async fn remove(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let hook = found(&state, &workspace, &id).await?;
    if !state.server.store.remove_webhook(&workspace, &id).await? {
        return Err(not_found(&workspace, &id));
    }
    audit(&state, &caller, "webhook.deleted", &hook, json!({})).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST …/webhooks/{id}/rotate`: a new secret (shown this once); the current one keeps
/// signing, alongside it, for the grace period.
pub async fn rotate(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((workspace, id)): Path<(String, String)>,
    body: Option<Json<RotateBody>>,
) -> Result<Response, ApiError> {
    found(&state, &workspace, &id).await?;
    let grace = match body.and_then(|b| b.0.grace_seconds) {
        None => DEFAULT_GRACE,
        Some(s) if Duration::from_secs(s) <= MAX_GRACE => Duration::from_secs(s),
        Some(s) => {
            return Err(unprocessable(format!(
                "`grace_seconds` {s} is longer than a week ({})",
                MAX_GRACE.as_secs()
            )));
        }
    };
    let secret = state
        .server
        .store
        .rotate_webhook_secret(&workspace, &id, grace)
        .await?
        .ok_or_else(|| not_found(&workspace, &id))?;
    let hook = found(&state, &workspace, &id).await?;
    audit(
        &state,
        &caller,
        "webhook.secret_rotated",
        &hook,
        json!({ "grace_seconds": grace.as_secs() }),
    )
    .await?;
    Ok(Json(json!({ "webhook": hook, "secret": secret.expose_secret() })).into_response())
}

/// `GET …/webhooks/{id}/deliveries`: newest first, with each one's attempts and last result.
pub async fn deliveries(
    State(state): State<ApiState>,
    Path((workspace, id)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    found(&state, &workspace, &id).await?;
    let limit = q.limit.unwrap_or(20).clamp(1, 500);
    Ok(Json(state.server.store.webhook_deliveries(&id, limit).await?).into_response())
}
