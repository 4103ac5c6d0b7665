//! The wall as a stage of the pump: every message a source sends is checked here (and its
//! batches masked by the PII policy) in a task of its own between the source and the
//! destination, so the checks run on whichever core neither connector is using, and a batch
//! that waits in a spill file has already been masked.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::progress::Progress;
use super::validate;
use crate::boundary::pii::{MaskStats, Masker};
use crate::connection::OnInvalid;
use crate::protocol::{Batch, ConfiguredCatalog, Failure, Message};

/// What the gate checks against.
pub(super) struct GateConfig {
    pub catalog: Arc<ConfiguredCatalog>,
    pub max_batch_bytes: usize,
    pub max_json_depth: usize,
    pub masker: Option<Arc<Masker>>,
    pub on_invalid: OnInvalid,
    pub keep_invalid: usize,
    pub progress: Arc<Progress>,
}

/// What the gate did, returned when its input ends, its output closes, or it refuses.
#[derive(Default)]
pub(super) struct GateOutcome {
    pub masked: MaskStats,
    pub skipped: u64,
    pub invalid: Vec<validate::Invalid>,
    /// The source's data was refused: nothing after it was passed on.
    pub refused: Option<Failure>,
}

/// Check and pass on every message from `rx` to `tx`, in order.
pub(super) async fn gate(
    cfg: GateConfig,
    mut rx: mpsc::Receiver<Message>,
    tx: mpsc::Sender<Message>,
) -> GateOutcome {
    let mut out = GateOutcome::default();
    while let Some(message) = rx.recv().await {
        let checked = match message {
            Message::Batch(batch) => {
                check_batch(&cfg, batch, &mut out).map(|b| b.map(Message::Batch))
            }
            Message::State(state) => {
                validate::state(&state, &cfg.catalog).map(|()| Some(Message::State(state)))
            }
        };
        match checked {
            Ok(Some(message)) => {
                if tx.send(message).await.is_err() {
                    // The destination stopped; its error tells the story.
                    break;
                }
            }
            Ok(None) => {}
            Err(f) => {
                out.refused = Some(f);
                break;
            }
        }
    }
    out
}

/// Check (and mask) one batch; `None` when nothing in it is left to write.
fn check_batch(
    cfg: &GateConfig,
    mut batch: Batch,
    out: &mut GateOutcome,
) -> Result<Option<Batch>, Failure> {
    if cfg.on_invalid == OnInvalid::Skip {
        out.skipped += validate::take_invalid(&mut batch, &mut out.invalid, cfg.keep_invalid);
    }
    validate::envelope(&mut batch, &cfg.catalog, cfg.max_batch_bytes)?;
    validate::depth(&batch, cfg.max_json_depth)?;
    let bytes = batch.records.len() as u64;
    // The masker's walk checks each record as it rewrites it; without one, the records get
    // the same check on their own.
    let records = match &cfg.masker {
        None => validate::records(&batch)?,
        Some(m) => {
            let (masked, n) = m
                .apply(&batch.stream, &batch.records, &mut out.masked)
                .map_err(|e| validate::line_failure(&e.stream, e.line, e.not_json.as_deref()))?;
            batch.records = masked;
            n
        }
    };
    if records == 0 {
        return Ok(None);
    }
    cfg.progress.records.fetch_add(records, Ordering::Relaxed);
    cfg.progress.bytes.fetch_add(bytes, Ordering::Relaxed);
    Ok(Some(batch))
}

/// The records in a batch the gate passed: one per line.
pub(super) fn records(batch: &Batch) -> u64 {
    batch.records.iter().filter(|&&b| b == b'\n').count() as u64
}
