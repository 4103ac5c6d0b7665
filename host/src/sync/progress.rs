//! Live counters of a run, shared by the pump's stages and whoever displays them.

use std::sync::atomic::AtomicU64;

/// Live counters for a progress display: records and bytes read from the source so far.
#[derive(Debug, Default)]
pub struct Progress {
    /// Records.
    pub records: AtomicU64,
    /// Bytes.
    pub bytes: AtomicU64,
}
