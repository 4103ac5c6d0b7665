//! `/v1/retention`: how long each class of data is kept (the data dir's `retention.toml`, the
//! same settings `sluice purge` and runs read), and purging what is overdue now. The server
//! also purges on its own ([`crate::server::purge`]).

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::access::Caller;
use super::body::JsonBody;
use super::error::ApiError;
use super::routes::{Endpoint, get, post, put};
use super::{ApiState, MANAGERS};
use crate::boundary::audit::NewEntry;
use crate::boundary::retention::{Retention, RetentionSettings};
use crate::store::PurgeReport;

/// The routes of `/v1/retention`.
pub(super) fn routes() -> Vec<Endpoint> {
    use StatusCode as S;
    vec![
        get(
            "/v1/retention",
            MANAGERS,
            "How long each class of data is kept",
            show,
        )
        .answers::<RetentionSettings>(S::OK, "Every class, defaults filled in"),
        put(
            "/v1/retention",
            MANAGERS,
            "Replace the retention settings (a class left out gets its default)",
            update,
        )
        .takes::<RetentionSettings>()
        .answers::<RetentionSettings>(S::OK, "The settings in force now"),
        post(
            "/v1/retention/purge",
            MANAGERS,
            "Remove what is overdue now",
            purge_now,
        )
        .answers::<PurgeReport>(S::OK, "What was removed, per class"),
    ]
}

fn current(state: &ApiState) -> Result<Retention, ApiError> {
    Retention::load(state.server.store.dir()).map_err(|e| {
        tracing::error!("{e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}; PUT /v1/retention to replace it", e.reason),
        )
    })
}

/// `GET /v1/retention`: every class, defaults filled in.
pub async fn show(State(state): State<ApiState>) -> Result<Response, ApiError> {
    Ok(Json(current(&state)?.settings()).into_response())
}

/// `PUT /v1/retention`: replace the settings (a class left out gets its default); the next
/// purge applies them.
pub async fn update(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<RetentionSettings>,
) -> Result<Response, ApiError> {
    let new = Retention::from_settings(body)
        .and_then(|r| r.check_floor(state.server.audit_floor).map(|()| r))
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    // What was in force before, for the audit log (an unreadable file: said so).
    let before = Retention::load(state.server.store.dir())
        .map(|r| json!(r.settings()))
        .unwrap_or_else(|e| json!({ "unreadable": e.reason }));
    let dir = state.server.store.dir().to_path_buf();
    tokio::task::spawn_blocking(move || new.save(&dir))
        .await
        .map_err(std::io::Error::other)
        .flatten()
        .map_err(|e| {
            tracing::error!("cannot write the retention settings: {e}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the retention settings could not be written (see the server log)",
            )
        })?;
    state
        .audit(NewEntry::new(
            caller.actor(),
            "retention.changed",
            "retention",
            "ok",
            json!({ "before": before, "after": new.settings() }),
        ))
        .await?;
    Ok(Json(new.settings()).into_response())
}

/// `POST /v1/retention/purge`: remove what is overdue now; what was removed.
pub async fn purge_now(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let retention = current(&state)?.floored(state.server.audit_floor);
    let report =
        crate::server::purge::purge(&state.server.store, &retention, &caller.actor()).await?;
    Ok(Json(report).into_response())
}
