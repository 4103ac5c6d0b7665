//! `/v1/retention`: how long each class of data is kept (the data dir's `retention.toml`, the
//! same settings `sluice purge` and runs read), and purging what is overdue now. The server
//! also purges on its own, every [`PURGE_EVERY`], audited as actor `retention`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::ApiState;
use super::access::Caller;
use super::error::ApiError;
use crate::boundary::audit::log::NewEntry;
use crate::boundary::retention::{Retention, RetentionSettings};
use crate::store::{PurgeReport, Store, StoreError};

/// How often a server purges what retention says is overdue.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Who the audit log says purged on schedule.
pub const ACTOR: &str = "retention";

fn current(state: &ApiState) -> Result<Retention, ApiError> {
    Retention::load(state.store.dir()).map_err(|e| {
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
    Json(body): Json<RetentionSettings>,
) -> Result<Response, ApiError> {
    let new = Retention::from_settings(body)
        .and_then(|r| r.check_floor(state.audit_floor).map(|()| r))
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    // What was in force before, for the audit log (an unreadable file: said so).
    let before = Retention::load(state.store.dir())
        .map(|r| json!(r.settings()))
        .unwrap_or_else(|e| json!({ "unreadable": e.reason }));
    let dir = state.store.dir().to_path_buf();
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
    let retention = current(&state)?.floored(state.audit_floor);
    let report = purge(&state.store, &retention, &caller.actor()).await?;
    Ok(Json(report).into_response())
}

/// Purge what `retention` says is overdue, audited as `actor` (and sealed into the audit
/// chain's digests, as `sluice purge` does).
async fn purge(
    store: &Store,
    retention: &Retention,
    actor: &str,
) -> Result<PurgeReport, StoreError> {
    let report = store
        .purge(retention, time::OffsetDateTime::now_utc())
        .await?;
    store
        .audit(&[NewEntry::new(
            actor,
            "retention.purged",
            "data-dir",
            "ok",
            serde_json::to_value(&report).unwrap_or_default(),
        )])
        .await?;
    store.audit_seal().await?;
    Ok(report)
}

/// Purge every `every` until the task is aborted (the first right away). Nothing removed is
/// not audited, so a quiet server does not fill its log with empty purges.
pub async fn auto_purge(state: ApiState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let retention = match Retention::load(state.store.dir()) {
            Ok(r) => r.floored(state.audit_floor),
            Err(e) => {
                tracing::error!("not purging: {e}");
                continue;
            }
        };
        let report = state
            .store
            .purge(&retention, time::OffsetDateTime::now_utc())
            .await;
        match report {
            Ok(r) if r.is_empty() => {}
            Ok(r) => {
                let entry = NewEntry::new(
                    ACTOR,
                    "retention.purged",
                    "data-dir",
                    "ok",
                    serde_json::to_value(&r).unwrap_or_default(),
                );
                if let Err(e) = state.store.audit(&[entry]).await {
                    tracing::error!("cannot audit the purge: {e}");
                }
                if let Err(e) = state.store.audit_seal().await {
                    tracing::error!("cannot seal the audit log after the purge: {e}");
                }
            }
            Err(e) => tracing::error!("purge failed: {e}"),
        }
    }
}
