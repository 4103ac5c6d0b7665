//! `/v1/workspaces/{workspace}/webhooks`: add, list, show, delete, rotate the secret, list
//! deliveries. The signing secret is shown once, at creation and at rotation.

use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::access::Caller;
use super::body::JsonBody;
use super::error::ApiError;
use super::fields::Page;
use super::routes::{Endpoint, delete, get, post};
use super::workspaces::existing;
use super::{ApiState, READ, WRITE};
use crate::boundary::audit::NewEntry;
use crate::server::webhooks::EVENTS;
use crate::store::{Delivery, Webhook};

/// The routes of `…/webhooks`.
pub(super) fn routes() -> Vec<Endpoint> {
    use StatusCode as S;
    let all = "/v1/workspaces/{workspace}/webhooks";
    let one = "/v1/workspaces/{workspace}/webhooks/{id}";
    vec![
        get(all, READ, "The workspace's webhooks", list)
            .answers_list::<Webhook>(S::OK, "Its webhooks (never a secret)"),
        post(all, WRITE, "Add a webhook", create)
            .takes::<CreateBody>()
            .answers::<WithSecret>(
                S::CREATED,
                "The webhook, with its signing secret (shown this once)",
            )
            .creates(one, "/webhook/id"),
        get(one, READ, "A webhook", show).answers::<Webhook>(S::OK, "The webhook"),
        delete(
            one,
            WRITE,
            "Remove a webhook and its pending deliveries",
            remove,
        )
        .answers_empty(S::NO_CONTENT, "Removed"),
        post(
            "/v1/workspaces/{workspace}/webhooks/{id}/rotate",
            WRITE,
            "A new signing secret; the current one signs alongside it for a grace period",
            rotate,
        )
        .may_take::<RotateBody>()
        .answers::<WithSecret>(S::OK, "The webhook, with its new secret (shown this once)"),
        get(
            "/v1/workspaces/{workspace}/webhooks/{id}/deliveries",
            READ,
            "A webhook's deliveries, newest first",
            deliveries,
        )
        .query::<Page>()
        .answers_list::<Delivery>(S::OK, "Its deliveries, with attempts and last result"),
    ]
}

/// A webhook event (the schema of [`EVENTS`]; a test holds them equal).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[cfg_attr(not(test), allow(dead_code, reason = "only its schema is used"))]
pub enum Event {
    /// A run finished and moved everything.
    #[serde(rename = "run.succeeded")]
    Succeeded,
    /// A run stopped on an error.
    #[serde(rename = "run.failed")]
    Failed,
    /// A run was stopped or its process went away.
    #[serde(rename = "run.interrupted")]
    Interrupted,
}

/// A webhook with its signing secret: the one answer that shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WithSecret {
    /// The webhook.
    pub webhook: Webhook,
    /// `whsec_…`: deliveries are signed with it (`Sluice-Signature`).
    pub secret: String,
}

/// The longest a rotated-out secret may keep signing.
const MAX_GRACE: Duration = Duration::from_secs(7 * 86_400);
/// How long a rotated-out secret keeps signing unless told.
const DEFAULT_GRACE: Duration = Duration::from_secs(86_400);

/// `POST …/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewWebhook)]
pub struct CreateBody {
    /// Where deliveries go: an https URL the server's `--webhook-allow` rules allow.
    pub url: String,
    /// The events it receives (default: all).
    #[serde(default, deserialize_with = "super::fields::not_null")]
    #[schema(value_type = Option<Vec<Event>>, min_items = 1, nullable = false)]
    pub events: Option<Vec<String>>,
}

/// `POST …/webhooks/{id}/rotate`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookRotation)]
pub struct RotateBody {
    /// How long the current secret keeps signing alongside the new one (default a day, at
    /// most a week; 0 ends it now).
    #[serde(default, deserialize_with = "super::fields::whole")]
    #[schema(maximum = 604_800)]
    pub grace_seconds: Option<u64>,
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
    JsonBody(body): JsonBody<CreateBody>,
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
        Json(WithSecret {
            webhook: hook,
            secret: secret.expose_secret().to_string(),
        }),
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
    body: Option<JsonBody<RotateBody>>,
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
    Ok(Json(WithSecret {
        webhook: hook,
        secret: secret.expose_secret().to_string(),
    })
    .into_response())
}

/// `GET …/webhooks/{id}/deliveries`: newest first, with each one's attempts and last result.
pub async fn deliveries(
    State(state): State<ApiState>,
    Path((workspace, id)): Path<(String, String)>,
    Query(q): Query<Page>,
) -> Result<Response, ApiError> {
    found(&state, &workspace, &id).await?;
    let limit = q.limit()?;
    Ok(Json(state.server.store.webhook_deliveries(&id, limit).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_schema_names_every_event() {
        let all = [Event::Succeeded, Event::Failed, Event::Interrupted];
        let named: Vec<String> = all
            .iter()
            .map(|e| {
                serde_json::to_value(e)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(named, EVENTS);
    }
}
