//! How a run is shown outside: by the API, and as the `data.run` of webhook events.

use serde_json::json;

use crate::store::RunRecord;

/// A run as the API shows it (also the `data.run` of webhook events).
pub fn run_json(r: &RunRecord, workspace: &str) -> serde_json::Value {
    let name = r
        .connection
        .strip_prefix(&format!("{workspace}/"))
        .unwrap_or(&r.connection);
    json!({
        "id": r.id,
        "connection": name,
        "status": r.status,
        "attempt": r.attempt,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "error": r.error,
        "streams": r.streams,
        "records": r.streams.iter().map(|s| s.records).sum::<u64>(),
        "bytes": r.streams.iter().map(|s| s.bytes).sum::<u64>(),
    })
}
