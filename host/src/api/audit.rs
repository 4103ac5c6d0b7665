//! The audit layer: one entry per request (who, which route, the outcome, from where), allowed
//! or refused. Never a body, a header value other than the user agent, or a secret.

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::USER_AGENT;
use serde_json::json;

use super::access::AccessNote;
use super::{ApiState, Peer};
use crate::boundary::audit::log::NewEntry;

/// The audit layer.
pub async fn record(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let ip = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.0.ip().to_string());
    let agent = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect::<String>());
    let resp = next.run(req).await;
    let note = resp
        .extensions()
        .get::<AccessNote>()
        .cloned()
        .unwrap_or_default();
    let status = resp.status();
    let outcome = if status.is_success() || status.is_redirection() {
        "ok"
    } else if matches!(status.as_u16(), 401 | 403 | 429) {
        "refused"
    } else {
        "failed"
    };
    let actor = match &note.key_id {
        Some(id) => format!("api:{id}"),
        None => "api:anonymous".to_string(),
    };
    let mut entry = NewEntry::new(
        actor,
        "api.request",
        format!("{method} {path}"),
        outcome,
        json!({
            "route": note.route,
            "status": status.as_u16(),
            "role": note.role.map(|r| r.as_str()),
            "workspace_role": note.workspace_role.map(|r| r.as_str()),
            "refusal": note.refusal,
            "user_agent": agent,
        }),
    );
    entry.source_ip = ip;
    if let Err(e) = state.store.audit(&[entry]).await {
        tracing::error!("cannot audit an API request: {e}");
    }
    resp
}
