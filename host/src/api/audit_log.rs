//! `GET /v1/audit`: the audit log, filtered, as a JSON array or exported as JSON lines
//! (`format=jsonl`). Owners and admins only: it names every key and resource.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::routes::{Endpoint, get};
use super::{ApiState, MANAGERS};
use crate::boundary::audit::Entry;
use crate::store::AuditFilter;

/// The media type of the JSON lines export.
const JSONL: &str = "application/x-ndjson";

/// The routes of `/v1/audit`.
pub(super) fn routes() -> Vec<Endpoint> {
    vec![
        get(
            "/v1/audit",
            MANAGERS,
            "The audit log, filtered; `format=jsonl` exports it as JSON lines",
            query,
        )
        .query::<AuditQuery>()
        .answers_list::<Entry>(StatusCode::OK, "The entries, oldest first")
        .or_as(JSONL),
    ]
}

/// `format=` of the audit query.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A JSON array.
    Json,
    /// JSON lines (`application/x-ndjson`).
    Jsonl,
}

/// Default and largest page.
const DEFAULT_LIMIT: u32 = 1000;
const MAX_LIMIT: u32 = 100_000;

/// The filters (all optional), as `sluice audit list` takes them. Spelled out rather than a
/// flattened [`AuditFilter`]: serde's `flatten` cannot read numbers from a query string, and
/// cannot be combined with `deny_unknown_fields` (a misspelled filter must not match everything).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At or after (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Before (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Exactly this actor (`api:<key id>`, `cli:alice`, `connector:source-http`).
    pub actor: Option<String>,
    /// This action or those under it (`run` matches `run.started`).
    pub action: Option<String>,
    /// This resource or those under it.
    pub resource: Option<String>,
    /// At most this many, oldest first (default 1000, at most 100,000).
    #[param(minimum = 1, maximum = 100_000)]
    pub limit: Option<u32>,
    /// `json` (default) or `jsonl`.
    #[param(value_type = Option<Format>, inline)]
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
                StatusCode::BAD_REQUEST,
                format!("format must be `json` or `jsonl`, not `{other}`"),
            ));
        }
    };
    for (name, at) in [("since", &q.since), ("until", &q.until)] {
        if let Some(at) = at
            && time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .is_err()
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "{name} must be an RFC 3339 time such as `2026-01-31T12:00:00Z`, not `{}`",
                    at.chars().take(64).collect::<String>()
                ),
            ));
        }
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit is 1 to {MAX_LIMIT}, not {limit}"),
        ));
    }
    let filter = AuditFilter {
        since: q.since,
        until: q.until,
        actor: q.actor,
        action: q.action,
        resource: q.resource,
        limit: Some(limit),
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
    Ok(([(CONTENT_TYPE, JSONL)], body).into_response())
}
