//! How a run is shown outside: by the API, and as the `data.run` of webhook events.

use serde::Serialize;
use utoipa::ToSchema;

use crate::protocol::StreamStats;
use crate::store::{RunRecord, RunStatus};

/// A run as the API shows it (also the `data.run` of webhook events).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Run)]
pub struct RunView {
    /// The run id.
    pub id: i64,
    /// The connection's name in its workspace.
    pub connection: String,
    /// Where it is.
    pub status: RunStatus,
    /// 1 for the first attempt, +1 per resume.
    pub attempt: i64,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, once finished.
    pub finished_at: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Per-stream committed counts.
    pub streams: Vec<StreamStats>,
    /// Records committed, over every stream.
    pub records: u64,
    /// Bytes committed, over every stream.
    pub bytes: u64,
}

impl RunView {
    /// `r`, a run of a connection of `workspace`.
    pub fn new(r: &RunRecord, workspace: &str) -> RunView {
        let name = r
            .connection
            .strip_prefix(&format!("{workspace}/"))
            .unwrap_or(&r.connection);
        RunView {
            id: r.id,
            connection: name.to_string(),
            status: r.status,
            attempt: r.attempt,
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            error: r.error.clone(),
            streams: r.streams.clone(),
            records: r.streams.iter().map(|s| s.records).sum(),
            bytes: r.streams.iter().map(|s| s.bytes).sum(),
        }
    }
}
