//! The wall as a stage of the pump: every message a source sends is checked here (and its
//! batches masked by the PII policy) in a task of its own between the source and the
//! destination, several batches at once on the blocking pool and passed on in order, so the
//! checks run on whichever cores neither connector is using, and a batch that waits in a spill
//! file has already been masked.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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

/// How many messages are checked at once: the work of one batch (the walk, the detectors) is
/// the gate's cost, and batches are independent, so they are checked on several cores and
/// passed on in the order they came.
fn width() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// One message checked, with what checking it found (merged into the outcome in order).
struct Checked {
    result: Result<Option<Message>, Failure>,
    /// Records and bytes of a batch passed on, counted when it is (in order).
    counted: (u64, u64),
    masked: MaskStats,
    skipped: u64,
    invalid: Vec<validate::Invalid>,
}

fn check(cfg: &GateConfig, message: Message) -> Checked {
    let mut out = GateOutcome::default();
    let mut counted = (0, 0);
    let result = match message {
        Message::Batch(batch) => check_batch(cfg, batch, &mut out).map(|b| {
            b.map(|(batch, records, bytes)| {
                counted = (records, bytes);
                Message::Batch(batch)
            })
        }),
        Message::State(state) => {
            validate::state(&state, &cfg.catalog).map(|()| Some(Message::State(state)))
        }
    };
    Checked {
        result,
        counted,
        masked: out.masked,
        skipped: out.skipped,
        invalid: out.invalid,
    }
}

/// Check and pass on every message from `rx` to `tx`, in order. Up to [`width`] messages are
/// checked at once on the blocking pool; a refusal passes on nothing after it.
pub(super) async fn gate(
    cfg: GateConfig,
    mut rx: mpsc::Receiver<Message>,
    tx: mpsc::Sender<Message>,
) -> GateOutcome {
    let cfg = Arc::new(cfg);
    let width = width();
    let mut out = GateOutcome::default();
    let mut pending: VecDeque<JoinHandle<Checked>> = VecDeque::new();
    let mut open = true;
    loop {
        // The oldest check first, when it is done; else take more work while there is room.
        let checked = tokio::select! {
            biased;
            done = async { pending.front_mut().expect("not empty").await }, if !pending.is_empty() => {
                pending.pop_front();
                match done {
                    Ok(c) => c,
                    // A check that panicked is the host's fault: the pump reports it so.
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }
            message = rx.recv(), if open && pending.len() < width => {
                match message {
                    Some(m) => {
                        let cfg = cfg.clone();
                        pending.push_back(tokio::task::spawn_blocking(move || check(&cfg, m)));
                    }
                    None => open = false,
                }
                continue;
            }
            else => break,
        };
        out.masked.merge(&checked.masked);
        out.skipped += checked.skipped;
        let room = cfg.keep_invalid.saturating_sub(out.invalid.len());
        out.invalid.extend(checked.invalid.into_iter().take(room));
        match checked.result {
            Ok(Some(message)) => {
                let (records, bytes) = checked.counted;
                cfg.progress.records.fetch_add(records, Ordering::Relaxed);
                cfg.progress.bytes.fetch_add(bytes, Ordering::Relaxed);
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

/// Check (and mask) one batch, with its records and bytes; `None` when nothing in it is left
/// to write.
fn check_batch(
    cfg: &GateConfig,
    mut batch: Batch,
    out: &mut GateOutcome,
) -> Result<Option<(Batch, u64, u64)>, Failure> {
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
    Ok(Some((batch, records, bytes)))
}

/// The records in a batch the gate passed: one per line.
pub(super) fn records(batch: &Batch) -> u64 {
    batch.records.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DestinationMode, StreamState, SyncMode};

    /// A gate with every detector on (findings redacted).
    fn config() -> GateConfig {
        let masker = Masker::new(
            crate::boundary::pii::PiiPolicy::default(),
            zeroize::Zeroizing::new([7; 32]),
        );
        GateConfig {
            catalog: Arc::new(crate::sync::tests::one_stream(
                "s",
                SyncMode::Incremental,
                DestinationMode::Append,
            )),
            max_batch_bytes: 1 << 20,
            max_json_depth: 64,
            masker: Some(Arc::new(masker)),
            on_invalid: OnInvalid::Fail,
            keep_invalid: 10,
            progress: Arc::new(Progress::default()),
        }
    }

    fn batch(line: String) -> Message {
        Message::Batch(Batch {
            stream: "s".into(),
            records: format!("{line}\n").into_bytes(),
        })
    }

    /// Batches (of different sizes, so their checks finish out of order) each followed by a
    /// state; batch `bad` is not JSON.
    async fn through(cfg: GateConfig, n: usize, bad: Option<usize>) -> (GateOutcome, Vec<String>) {
        let (tx, rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let gate = tokio::spawn(gate(cfg, rx, out_tx));
        tokio::spawn(async move {
            for i in 0..n {
                let pad = "x".repeat((n - i) * 200);
                let line = if bad == Some(i) {
                    "not json".to_string()
                } else {
                    format!(r#"{{"i":{i},"email":"u{i}@example.com","pad":"{pad}"}}"#)
                };
                let state = Message::State(StreamState {
                    stream: "s".into(),
                    state: i.to_string(),
                });
                if tx.send(batch(line)).await.is_err() || tx.send(state).await.is_err() {
                    return;
                }
            }
        });
        let mut seen = Vec::new();
        while let Some(m) = out_rx.recv().await {
            seen.push(match m {
                Message::Batch(b) => {
                    let v: serde_json::Value = serde_json::from_slice(&b.records).unwrap();
                    assert_eq!(v["email"], "[email]", "masked before it is passed on");
                    format!("b{}", v["i"])
                }
                Message::State(s) => format!("s{}", s.state),
            });
        }
        (gate.await.unwrap(), seen)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_checked_at_once_pass_on_in_the_order_they_came() {
        let cfg = config();
        let progress = cfg.progress.clone();
        let (out, seen) = through(cfg, 60, None).await;
        let want: Vec<String> = (0..60)
            .flat_map(|i| [format!("b{i}"), format!("s{i}")])
            .collect();
        assert_eq!(seen, want);
        assert!(out.refused.is_none());
        assert_eq!(out.masked.total(), 60, "every email counted once");
        assert_eq!(progress.records.load(Ordering::Relaxed), 60);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_batch_passes_on_nothing_after_it() {
        let cfg = config();
        let progress = cfg.progress.clone();
        let (out, seen) = through(cfg, 40, Some(25)).await;
        let want: Vec<String> = (0..25)
            .flat_map(|i| [format!("b{i}"), format!("s{i}")])
            .collect();
        assert_eq!(seen, want, "everything before the refusal, nothing after");
        assert!(out.refused.is_some());
        assert_eq!(out.masked.total(), 25, "counts of batches passed on only");
        assert_eq!(progress.records.load(Ordering::Relaxed), 25);
    }
}
