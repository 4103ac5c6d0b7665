//! Queueing run events and delivering them: one task per server takes due deliveries from the
//! store's outbox, POSTs each (signed with every valid secret of its webhook), and records how
//! it went. A receiver that does not answer 2xx in time is tried again after a delay that
//! doubles with each attempt (with jitter), until the retries are spent. Every attempt is
//! audited: `webhook.delivered`, `webhook.retry` or `webhook.gave_up`, outcome `refused` when
//! the guard refused the destination.

use std::time::Duration;

use backon::BackoffBuilder;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue};
use serde_json::json;

use super::signature;
use crate::boundary::audit::NewEntry;
use crate::capability::net::PostError;
use crate::server::Server;
use crate::store::{Attempt, Delivery, DueDelivery, RunRecord, RunStatus, Store, now_ms};

/// Who the audit log says delivered webhooks.
pub const ACTOR: &str = "webhooks";
/// Deliveries taken at once.
const BATCH: u32 = 32;
/// Attempts in flight at once.
const CONCURRENCY: usize = 8;
/// How long a taken delivery is left alone (a server that died mid-attempt: tried again then).
const LEASE: Duration = Duration::from_secs(120);
/// How often the outbox is looked at when nothing wakes the task.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// The event type of a run that ended with `status`; `None` for a run still going.
pub fn event_for(status: RunStatus) -> Option<&'static str> {
    match status {
        RunStatus::Succeeded => Some("run.succeeded"),
        RunStatus::Failed => Some("run.failed"),
        RunStatus::Interrupted => Some("run.interrupted"),
        RunStatus::Running => None,
    }
}

/// Queue the event of a run that ended for the webhooks of its workspace, and wake the
/// delivery task. Failures are logged: the run's own record is what matters.
pub async fn run_ended(server: &Server, workspace: &str, run: &RunRecord) {
    if queue_run_ended(&server.store, workspace, run).await {
        server.webhooks.notify();
    }
}

/// Queue the event of `run`'s end for the workspace's webhooks in the outbox (whichever
/// server polls it next delivers it); whether any webhook wants it.
pub async fn queue_run_ended(store: &Store, workspace: &str, run: &RunRecord) -> bool {
    let Some(event) = event_for(run.status) else {
        return false;
    };
    let id = match random_id() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!("cannot queue `{event}` of run {}: {e}", run.id);
            return false;
        }
    };
    let body = json!({
        "id": id,
        "type": event,
        "created_at": crate::store::now_rfc3339(),
        "workspace": workspace,
        "data": { "run": crate::server::view::RunView::new(run, workspace) },
    })
    .to_string();
    match store.enqueue_webhook_event(workspace, event, &body).await {
        Ok(queued) => !queued.is_empty(),
        Err(e) => {
            tracing::error!("cannot queue `{event}` of run {}: {e}", run.id);
            false
        }
    }
}

fn random_id() -> Result<String, getrandom::Error> {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw)?;
    Ok(format!("evt_{}", hex::encode(raw)))
}

/// Deliver queued events until the task is aborted.
pub async fn run(server: Server) {
    loop {
        let due = match server
            .store
            .take_due_deliveries(now_ms(), BATCH, LEASE.as_millis() as i64)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::error!("cannot read the webhook outbox: {e}");
                Vec::new()
            }
        };
        let full = due.len() == BATCH as usize;
        futures_util::stream::iter(due)
            .for_each_concurrent(CONCURRENCY, |d| {
                let server = server.clone();
                async move { attempt(&server, d).await }
            })
            .await;
        if !full {
            tokio::select! {
                _ = server.webhooks.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// The wait before retry `n` (1 for the first): `delay · 2^(n-1)` stretched by up to as much
/// again (jitter), at most an hour.
pub fn retry_delay(delay: Duration, n: usize) -> Duration {
    backon::ExponentialBuilder::new()
        .with_min_delay(delay)
        .with_max_delay(MAX_DELAY)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(n.saturating_sub(1))
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY)
}

async fn attempt(server: &Server, due: DueDelivery) {
    let DueDelivery {
        delivery,
        workspace,
        url,
    } = due;
    let n = delivery.attempts + 1;
    let result = send(server, &delivery, &url).await;
    let (outcome, status, error) = match result {
        Ok(s) if (200..300).contains(&s) => ("ok", Some(s), None),
        Ok(s) => ("failed", Some(s), Some(format!("answered {s}"))),
        Err(PostError::Refused(why)) => ("refused", None, Some(why)),
        Err(PostError::Failed(why)) => ("failed", None, Some(why)),
    };
    let config = server.webhooks.config();
    let recorded = match error {
        None => Attempt::Delivered(status.unwrap_or(200)),
        Some(error) if (n as usize) <= config.retries => Attempt::Retry {
            status,
            error,
            next_at: now_ms() + retry_delay(config.retry_delay, n as usize).as_millis() as i64,
        },
        Some(error) => Attempt::GaveUp { status, error },
    };
    if let Err(e) = server
        .store
        .record_delivery_attempt(&delivery.id, n, &recorded)
        .await
    {
        tracing::error!("cannot record webhook delivery {}: {e}", delivery.id);
    }
    let (action, extra) = match &recorded {
        Attempt::Delivered(_) => ("webhook.delivered", json!({})),
        Attempt::Retry { error, next_at, .. } => (
            "webhook.retry",
            json!({ "error": error, "retry_in_ms": next_at - now_ms() }),
        ),
        Attempt::GaveUp { error, .. } => ("webhook.gave_up", json!({ "error": error })),
    };
    let mut details = json!({
        "delivery": delivery.id,
        "event": delivery.event,
        "attempt": n,
        "status": status,
        "url": super::origin(&url),
    });
    if let (Some(d), Some(extra)) = (details.as_object_mut(), extra.as_object()) {
        d.extend(extra.clone());
    }
    let entry = NewEntry::new(
        ACTOR,
        action,
        format!("webhook/{workspace}/{}", delivery.webhook),
        outcome,
        details,
    );
    if let Err(e) = server.store.audit(&[entry]).await {
        tracing::error!("cannot audit webhook delivery {}: {e}", delivery.id);
    }
}

/// One signed POST of `delivery` to `url`; the answer's status.
async fn send(server: &Server, delivery: &Delivery, url: &str) -> Result<u16, PostError> {
    let secrets = server
        .store
        .webhook_secrets(&delivery.webhook)
        .await
        .map_err(|e| PostError::Failed(format!("cannot read the webhook's secret: {e}")))?;
    let t = now_ms() / 1000;
    let mut headers = HeaderMap::new();
    let value = |s: &str| {
        HeaderValue::from_str(s).map_err(|_| PostError::Failed("bad header value".into()))
    };
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static(concat!("sluice-webhooks/", env!("CARGO_PKG_VERSION"))),
    );
    headers.insert(
        signature::HEADER,
        value(&signature::header(&secrets, t, delivery.body.as_bytes()))?,
    );
    headers.insert(signature::DELIVERY, value(&delivery.id)?);
    headers.insert(signature::EVENT, value(&delivery.event)?);
    server
        .webhooks
        .policy
        .post(url, headers, Bytes::from(delivery.body.clone()))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_with_jitter_and_at_most_an_hour() {
        let d = Duration::from_millis(100);
        for n in 1..=5usize {
            let base = d * 2u32.pow(n as u32 - 1);
            let w = retry_delay(d, n);
            assert!(
                w >= base && w < base * 2,
                "retry {n}: {w:?} not in [{base:?}, 2·)"
            );
        }
        assert_eq!(retry_delay(Duration::from_secs(60), 30), MAX_DELAY);
    }
}
