//! The audit layer: one entry per request (who, which route, the outcome, from where), allowed
//! or refused. Never a body, a header value other than the user agent, or a secret.
//!
//! An answer goes out only once its entry is in the log. Entries of concurrent requests are
//! written together (one transaction for all that queued up while the previous write ran), and
//! without waiting for the disk flush ([`Store::audit_unflushed`]: a killed server loses none,
//! a power cut the last moments'), so the log keeps up with thousands of requests per second.
//! What requests *change* is audited by the handlers with a full flush before they answer.

use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::USER_AGENT;
use serde_json::json;

use super::access::AccessNote;
use super::{ApiState, Peer};
use crate::boundary::audit::NewEntry;
use crate::store::Store;

/// The most entries one write takes.
const MAX_BATCH: usize = 1024;

type Queued = (NewEntry, tokio::sync::oneshot::Sender<bool>);

/// The writer request entries queue up for (started on first use).
#[derive(Debug, Default)]
pub struct AuditQueue(OnceLock<tokio::sync::mpsc::UnboundedSender<Queued>>);

impl AuditQueue {
    /// Append `entry` with whatever else is queued; `false` if it could not be written.
    pub async fn record(&self, store: &Arc<Store>, entry: NewEntry) -> bool {
        let tx = self.0.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(write(store.clone(), rx));
            tx
        });
        let (done, written) = tokio::sync::oneshot::channel();
        if tx.send((entry, done)).is_err() {
            return false;
        }
        written.await.unwrap_or(false)
    }
}

async fn write(store: Arc<Store>, mut rx: tokio::sync::mpsc::UnboundedReceiver<Queued>) {
    let mut batch: Vec<Queued> = Vec::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (entries, waiters): (Vec<NewEntry>, Vec<_>) = batch.drain(..).unzip();
        let ok = match store.audit_unflushed(&entries).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("cannot audit {} API request(s): {e}", entries.len());
                false
            }
        };
        for w in waiters {
            let _ = w.send(ok);
        }
    }
}

/// A method as recorded and counted: the ones HTTP defines by name, anything else `OTHER`, so
/// made-up methods neither fill the audit log with text nor grow the metrics without end.
pub fn method_label(m: &http::Method) -> &'static str {
    use http::Method as M;
    match *m {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::TRACE => "TRACE",
        M::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// `path` with any segment that looks like a credential (`sluice_…`, `whsec_…`) replaced: an
/// operator pasting a token into a path must not store it in the signed audit log for good.
pub fn without_tokens(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let lower = seg.to_ascii_lowercase();
            if lower.starts_with("sluice_") || lower.starts_with("whsec_") {
                "[credential]"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The audit layer.
pub async fn record(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let method = method_label(req.method()).to_string();
    let path = without_tokens(req.uri().path());
    let ip = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.0.ip().to_string());
    let agent = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect::<String>());
    let began = std::time::Instant::now();
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
    state.audit_queue.record(&state.server.store, entry).await;
    state.metrics.observe(
        &method,
        note.route.as_deref(),
        status.as_u16(),
        began.elapsed().as_secs_f64(),
        note.refusal,
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_paths_and_made_up_methods_are_not_recorded_as_sent() {
        assert_eq!(
            without_tokens("/v1/keys/sluice_0123456789abcdef_secret"),
            "/v1/keys/[credential]"
        );
        assert_eq!(
            without_tokens("/v1/workspaces/w/webhooks/whsec_abc/rotate"),
            "/v1/workspaces/w/webhooks/[credential]/rotate"
        );
        assert_eq!(
            without_tokens("/v1/keys/0123456789abcdef"),
            "/v1/keys/0123456789abcdef"
        );
        let made_up = http::Method::from_bytes(b"FOO1").unwrap();
        assert_eq!(method_label(&made_up), "OTHER");
        assert_eq!(method_label(&http::Method::PATCH), "PATCH");
    }
}
