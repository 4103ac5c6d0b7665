//! Retention on a schedule: what is overdue is purged every hour, audited when anything went.

use std::time::Duration;

use super::Server;
use crate::boundary::audit::NewEntry;
use crate::boundary::retention::Retention;
use crate::store::{PurgeReport, Store, StoreError};

/// How often a server purges what retention says is overdue.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Who the audit log says purged on schedule.
pub const ACTOR: &str = "retention";

/// Purge what `retention` says is overdue, audited as `actor` (and sealed into the audit
/// chain's digests, as `sluice purge` does).
pub async fn purge(
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

/// How long schedule occurrences and workers' heartbeats are kept (a day, in ms).
const QUEUE_KEPT_MS: i64 = 24 * 60 * 60 * 1000;

/// Purge every `every` until the task is aborted (the first right away). Nothing removed is
/// not audited, so a quiet server does not fill its log with empty purges.
pub async fn auto_purge(server: Server, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The queue's bookkeeping: occurrences and workers older than a day.
        match server
            .store
            .prune_queue(crate::store::now_ms() - QUEUE_KEPT_MS)
            .await
        {
            Ok((0, 0)) => {}
            Ok((occurrences, workers)) => tracing::info!(
                "forgot {occurrences} schedule occurrences and {workers} workers older than a day"
            ),
            Err(e) => tracing::error!("cannot prune the run queue's records: {e}"),
        }
        let retention = match Retention::load(server.store.dir()) {
            Ok(r) => r.floored(server.audit_floor),
            Err(e) => {
                tracing::error!("not purging: {e}");
                continue;
            }
        };
        let report = server
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
                if let Err(e) = server.store.audit(&[entry]).await {
                    tracing::error!("cannot audit the purge: {e}");
                }
                if let Err(e) = server.store.audit_seal().await {
                    tracing::error!("cannot seal the audit log after the purge: {e}");
                }
            }
            Err(e) => tracing::error!("purge failed: {e}"),
        }
    }
}
