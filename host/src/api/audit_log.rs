//! `GET /v1/audit`: the audit log, filtered, as a JSON array or exported as JSON lines
//! (`format=jsonl`). Owners and admins only: it names every key and resource.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use serde::Deserialize;

use super::ApiState;
use super::error::ApiError;
use crate::store::AuditFilter;

/// Default and largest page.
const DEFAULT_LIMIT: u32 = 1000;
const MAX_LIMIT: u32 = 100_000;

/// The filters (all optional), as `sluice audit list` takes them. Spelled out rather than a
/// flattened [`AuditFilter`]: serde's `flatten` cannot read numbers from a query string, and
/// cannot be combined with `deny_unknown_fields` (a misspelled filter must not match everything).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At or after (RFC 3339).
    pub since: Option<String>,
    /// Before (RFC 3339).
    pub until: Option<String>,
    /// Exactly this actor (`api:<key id>`, `cli:alice`, `connector:source-http`).
    pub actor: Option<String>,
    /// This action or those under it (`run` matches `run.started`).
    pub action: Option<String>,
    /// This resource or those under it.
    pub resource: Option<String>,
    /// At most this many, oldest first (default 1000).
    pub limit: Option<u32>,
    /// `json` (default) or `jsonl`.
    pub format: Option<String>,
}

/// `GET /v1/audit`.
pub async fn query(
    State(state): State<ApiState>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let jsonl = match q.format.as_deref() {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(other) => {
            return Err(ApiError::new(
                http::StatusCode::BAD_REQUEST,
                format!("format must be `json` or `jsonl`, not `{other}`"),
            ));
        }
    };
    let filter = AuditFilter {
        since: q.since,
        until: q.until,
        actor: q.actor,
        action: q.action,
        resource: q.resource,
        limit: Some(q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)),
    };
    let entries = state.server.store.audit_entries(&filter).await?;
    if !jsonl {
        return Ok(Json(entries).into_response());
    }
    let mut body = String::new();
    for e in &entries {
        body.push_str(&serde_json::to_string(e).unwrap_or_default());
        body.push('\n');
    }
    Ok(([(CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
