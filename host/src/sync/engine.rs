//! The pump: the source and the destination run concurrently with a bounded queue between them;
//! checkpoints are committed only after the destination flushed everything before them.
//!
//! Generic over [`SourceReader`] and [`DestinationWriter`], so the same engine moves data between
//! sandboxed components and, in benchmarks, between the same connectors compiled natively.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::gate::{self, GateConfig};
use super::progress::Progress;
use super::spill::{self, SpillConfig, SpillStats};
use super::validate;
use crate::boundary::pii::{MaskStats, Masker};
use crate::connection::OnInvalid;
use crate::protocol::StreamStats;
use crate::protocol::{
    ConfiguredCatalog, ConnectorError, DestinationWriter, Message, SourceReader, StreamState,
};

/// Knobs of the pump.
#[derive(Debug, Clone)]
pub struct PumpConfig {
    /// Records asked for per pull.
    pub batch_records: u32,
    /// Largest batch accepted.
    pub max_batch_bytes: usize,
    /// How deeply a record may nest.
    pub max_json_depth: usize,
    /// Flush and commit at most this often.
    pub checkpoint_interval: Duration,
    /// Batches in flight between source and destination.
    pub queue_depth: usize,
    /// The connection's PII policy, applied to every batch before the destination sees it.
    pub masker: Option<Arc<Masker>>,
    /// Fail the run on a record that is not a JSON object, or leave it out.
    pub on_invalid: OnInvalid,
    /// Invalid records kept (unmasked, in memory) for samples.
    pub keep_invalid: usize,
    /// Spill to sealed files when the destination falls behind; `None`: the source waits.
    pub spill: Option<SpillConfig>,
    /// Stop early when asked.
    pub stop: Stop,
}

impl Default for PumpConfig {
    fn default() -> Self {
        PumpConfig {
            batch_records: 1000,
            max_batch_bytes: 64 << 20,
            max_json_depth: crate::boundary::limits::JSON_DEPTH,
            checkpoint_interval: Duration::from_secs(1),
            queue_depth: 8,
            masker: None,
            on_invalid: OnInvalid::Fail,
            keep_invalid: 0,
            spill: None,
            stop: Stop::default(),
        }
    }
}

/// Where committed checkpoints go (the store, in a real run).
pub trait Checkpoints: Send {
    /// Why a commit failed.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Commit these states, with the stats (records the destination durably holds so far in
    /// this attempt) they cover.
    fn commit(
        &mut self,
        states: Vec<StreamState>,
        stats: Vec<StreamStats>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Why the pump ended early. It knows connectors, the spill and its [`Checkpoints`], nothing
/// of the store or of a run.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    /// A connector call failed, or the wall refused what it sent.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// A batch spilled to disk could not be written or read back.
    #[error(transparent)]
    Spill(#[from] spill::SpillError),
    /// Asked to stop before the source finished; what was written is committed.
    #[error("stopped before the end: {0}")]
    Stopped(String),
    /// Committing a checkpoint failed.
    #[error("cannot commit a checkpoint: {0}")]
    Commit(Box<dyn std::error::Error + Send + Sync>),
    /// A task of the pump failed (a bug in the host).
    #[error("internal error: {0}")]
    Internal(String),
}

/// A request to stop a run early (an operator's cancel, the server shutting down). The source
/// stops being pulled at once; what the destination already received is flushed and its
/// checkpoints committed, so the next run resumes from there.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<StopInner>);

#[derive(Debug, Default)]
struct StopInner {
    why: std::sync::Mutex<Option<String>>,
    notify: tokio::sync::Notify,
}

impl Stop {
    /// Ask the run to stop, saying why (kept for the run's error and audit entry). The first
    /// reason wins.
    pub fn stop(&self, why: impl Into<String>) {
        let mut w = self.0.why.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = Some(why.into());
        }
        drop(w);
        self.0.notify.notify_waiters();
    }

    /// Why it was asked to stop, if it was.
    pub fn reason(&self) -> Option<String> {
        self.0.why.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Completes once a stop is asked for.
    pub async fn stopped(&self) {
        loop {
            // Created before the check: a `notify_waiters` after it is not missed.
            let notified = self.0.notify.notified();
            if self.reason().is_some() {
                return;
            }
            notified.await;
        }
    }
}

/// What a pump did.
#[derive(Debug)]
pub struct PumpOutcome<E = PumpError> {
    /// Per stream, in catalog order: what the destination durably holds from this attempt.
    pub stats: Vec<StreamStats>,
    /// Checkpoints committed.
    pub commits: u64,
    /// Per stream, in catalog order: from its first batch reaching the destination to its last
    /// batch written (the time the stream was moving).
    pub active: Vec<Duration>,
    /// Values masked by the PII policy, in batches the destination durably holds or not.
    pub masked: MaskStats,
    /// Invalid records left out (`OnInvalid::Skip`).
    pub skipped: u64,
    /// The first of them, up to `keep_invalid`, for samples. Not masked yet.
    pub invalid: Vec<validate::Invalid>,
    /// What waited for the destination in sealed spill files.
    pub spilled: SpillStats,
    /// How it ended.
    pub result: Result<(), E>,
}

impl<E> PumpOutcome<E> {
    /// The same outcome with its error converted (into a run's, say).
    pub fn map_err<F>(self, f: impl FnOnce(E) -> F) -> PumpOutcome<F> {
        PumpOutcome {
            stats: self.stats,
            commits: self.commits,
            active: self.active,
            masked: self.masked,
            skipped: self.skipped,
            invalid: self.invalid,
            spilled: self.spilled,
            result: self.result.map_err(f),
        }
    }

    /// A pump that never started.
    pub fn failed(e: E) -> PumpOutcome<E> {
        PumpOutcome {
            stats: Vec::new(),
            masked: MaskStats::default(),
            skipped: 0,
            invalid: Vec::new(),
            commits: 0,
            active: Vec::new(),
            spilled: SpillStats::default(),
            result: Err(e),
        }
    }
}

/// Move everything from `reader` to `writer`.
pub async fn pump<R, W, C>(
    mut reader: R,
    mut writer: W,
    catalog: Arc<ConfiguredCatalog>,
    mut checkpoints: C,
    cfg: PumpConfig,
    progress: Arc<Progress>,
) -> PumpOutcome
where
    R: SourceReader + 'static,
    W: DestinationWriter,
    C: Checkpoints,
{
    let depth = cfg.queue_depth.max(1);
    let (tx, source_rx) = mpsc::channel::<Message>(depth);
    let (gate_tx, mut rx) = mpsc::channel::<Message>(depth);
    // source → gate (the wall's checks and the PII policy) → [spooler] → destination: each a
    // task, so the work spreads over the cores.
    let gate = tokio::spawn(gate::gate(
        GateConfig {
            catalog: catalog.clone(),
            max_batch_bytes: cfg.max_batch_bytes,
            max_json_depth: cfg.max_json_depth,
            masker: cfg.masker.clone(),
            on_invalid: cfg.on_invalid,
            keep_invalid: cfg.keep_invalid,
            progress: progress.clone(),
        },
        source_rx,
        gate_tx,
    ));
    // With spilling, a spooler keeps the source moving while the destination is behind; what
    // it seals to disk has passed the gate (and so been masked) already.
    let spooler = cfg.spill.clone().map(|spill_cfg| {
        let (spool_tx, spool_rx) = mpsc::channel::<Message>(depth);
        let gate_rx = std::mem::replace(&mut rx, spool_rx);
        tokio::spawn(spill::spool(spill_cfg, gate_rx, spool_tx))
    });
    let source_name = reader.name().to_string();
    // The source task only pulls: the sandboxed call is the expensive part.
    let batch_records = cfg.batch_records;
    let stop = cfg.stop.clone();
    let source = tokio::spawn(async move {
        loop {
            // A stop drops the call in flight: nothing it would have returned is checkpointed.
            let next = tokio::select! {
                biased;
                () = stop.stopped() => {
                    return Err(PumpError::Stopped(stop.reason().unwrap_or_default()));
                }
                next = reader.next(batch_records) => next.map_err(PumpError::from)?,
            };
            let Some(message) = next else { break };
            if tx.send(message).await.is_err() {
                // The destination stopped; its error tells the story.
                break;
            }
        }
        Ok::<(), PumpError>(())
    });
    let wall = |f| PumpError::from(ConnectorError::new(&source_name, "next", f));

    let mut written: Vec<StreamStats> = catalog
        .streams
        .iter()
        .map(|s| StreamStats {
            stream: s.stream.name.clone(),
            ..Default::default()
        })
        .collect();
    let mut durable = written.clone();
    let mut spans: Vec<Option<(Instant, Instant)>> = vec![None; written.len()];
    let mut pending: BTreeMap<String, StreamState> = BTreeMap::new();
    let mut commits = 0;
    let mut last_flush = Instant::now();

    // Flush, then commit every pending state: all batches before them are now durable.
    macro_rules! flush_and_commit {
        () => {
            async {
                writer.flush().await?;
                durable.clone_from(&written);
                last_flush = Instant::now();
                if !pending.is_empty() {
                    let states = std::mem::take(&mut pending).into_values().collect();
                    checkpoints
                        .commit(states, durable.clone())
                        .await
                        .map_err(|e| PumpError::Commit(Box::new(e)))?;
                    commits += 1;
                }
                Ok::<(), PumpError>(())
            }
        };
    }

    // The loop ends with Err when the destination failed, and with Ok when its input ended:
    // the source finished, failed, or its data was refused at the gate. The destination is
    // then still healthy, and what it wrote is flushed and committed below.
    let mut destination: Result<(), PumpError> = async {
        while let Some(message) = rx.recv().await {
            match message {
                Message::Batch(batch) => {
                    let records = gate::records(&batch);
                    let bytes = batch.records.len() as u64;
                    let i = written.iter().position(|s| s.stream == batch.stream);
                    if let Some(i) = i {
                        written[i].records += records;
                        written[i].bytes += bytes;
                        spans[i].get_or_insert_with(|| (Instant::now(), Instant::now()));
                    }
                    writer.write(batch).await?;
                    if let Some(Some((_, end))) = i.map(|i| &mut spans[i]) {
                        *end = Instant::now();
                    }
                }
                Message::State(state) => {
                    pending.insert(state.stream.clone(), state);
                    if last_flush.elapsed() >= cfg.checkpoint_interval {
                        flush_and_commit!().await?;
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    drop(rx);

    if destination.is_err() {
        // The source may be mid-call; nothing it produces now will be written.
        source.abort();
        if let Some(s) = &spooler {
            s.abort();
        }
    }
    // A gate that panicked is the host's fault, not the source's.
    let (gated, gate_result) = match gate.await {
        Ok(g) => (g, Ok(())),
        Err(e) => (
            gate::GateOutcome::default(),
            Err(PumpError::Internal(format!(
                "the check at the wall failed: {e}"
            ))),
        ),
    };
    let refused = gated.refused.map(wall);
    if refused.is_some() {
        source.abort();
    }
    let (spilled, spill_result) = match spooler {
        None => (SpillStats::default(), Ok(())),
        Some(s) => match s.await {
            Ok(Ok(stats)) => (stats, Ok(())),
            Ok(Err(e)) => (SpillStats::default(), Err(PumpError::from(e))),
            Err(e) if e.is_cancelled() => (SpillStats::default(), Ok(())),
            Err(e) => (
                SpillStats::default(),
                Err(PumpError::Internal(format!("the spill task failed: {e}"))),
            ),
        },
    };
    let source = match source.await {
        Ok(r) => r,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(PumpError::Internal(format!("the source task failed: {e}"))),
    };
    if destination.is_ok() {
        // Whether the source finished or failed (or a spill segment did not open), what was written is made durable and the
        // checkpoints covering it are committed, so the next attempt resumes from there.
        destination = flush_and_commit!().await;
    }
    let source = match refused {
        Some(e) => Err(e),
        None => source,
    };
    let result = destination.and(spill_result).and(gate_result).and(source);
    PumpOutcome {
        spilled,
        stats: durable,
        masked: gated.masked,
        skipped: gated.skipped,
        invalid: gated.invalid,
        commits,
        active: spans
            .into_iter()
            .map(|s| s.map_or(Duration::ZERO, |(a, b)| b - a))
            .collect(),
        result,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::protocol::{Batch, DestinationMode, ReportedError, SyncMode};

    /// What the fakes saw, in order.
    #[derive(Debug, Clone, PartialEq)]
    enum Seen {
        Write(String),
        Flush,
        Commit(Vec<String>),
    }

    type Log = Arc<Mutex<Vec<Seen>>>;

    struct Source(std::collections::VecDeque<Message>);

    impl SourceReader for Source {
        fn name(&self) -> &str {
            "fake-source"
        }
        async fn next(&mut self, _: u32) -> Result<Option<Message>, ConnectorError> {
            Ok(self.0.pop_front())
        }
    }

    struct Destination {
        log: Log,
        /// Fail the flush with this number (1-based).
        fail_flush: Option<usize>,
        flushes: usize,
    }

    impl DestinationWriter for Destination {
        fn name(&self) -> &str {
            "fake-destination"
        }
        async fn write(&mut self, batch: Batch) -> Result<(), ConnectorError> {
            let text = String::from_utf8(batch.records).unwrap();
            self.log.lock().unwrap().push(Seen::Write(text));
            Ok(())
        }
        async fn flush(&mut self) -> Result<(), ConnectorError> {
            self.flushes += 1;
            if self.fail_flush == Some(self.flushes) {
                return Err(ConnectorError::new(
                    "fake-destination",
                    "flush",
                    crate::protocol::Failure::Reported(ReportedError::Transient("disk".into())),
                ));
            }
            self.log.lock().unwrap().push(Seen::Flush);
            Ok(())
        }
    }

    struct Commits(Log);

    impl Checkpoints for Commits {
        type Error = std::convert::Infallible;
        async fn commit(
            &mut self,
            states: Vec<StreamState>,
            _: Vec<StreamStats>,
        ) -> Result<(), Self::Error> {
            let states = states.into_iter().map(|s| s.state).collect();
            self.0.lock().unwrap().push(Seen::Commit(states));
            Ok(())
        }
    }

    fn catalog() -> Arc<ConfiguredCatalog> {
        Arc::new(crate::sync::tests::one_stream(
            "s",
            SyncMode::Incremental,
            DestinationMode::Append,
        ))
    }

    /// Batches `b1`..`bn`, each followed by the state `n`.
    fn messages(n: usize) -> std::collections::VecDeque<Message> {
        (1..=n)
            .flat_map(|i| {
                [
                    Message::Batch(Batch {
                        stream: "s".into(),
                        records: format!("{{\"b\":{i}}}\n").into_bytes(),
                    }),
                    Message::State(StreamState {
                        stream: "s".into(),
                        state: i.to_string(),
                    }),
                ]
            })
            .collect()
    }

    async fn run(
        n: usize,
        fail_flush: Option<usize>,
        interval: Duration,
    ) -> (PumpOutcome, Vec<Seen>) {
        let log: Log = Arc::default();
        let cfg = PumpConfig {
            checkpoint_interval: interval,
            ..PumpConfig::default()
        };
        let outcome = pump(
            Source(messages(n)),
            Destination {
                log: log.clone(),
                fail_flush,
                flushes: 0,
            },
            catalog(),
            Commits(log.clone()),
            cfg,
            Arc::new(Progress::default()),
        )
        .await;
        let seen = log.lock().unwrap().clone();
        (outcome, seen)
    }

    /// Each committed state `k` must come after a flush that follows the write of batch `k`.
    fn assert_commits_follow_their_flush(seen: &[Seen]) {
        for (at, s) in seen.iter().enumerate() {
            let Seen::Commit(states) = s else { continue };
            for k in states {
                let written = seen
                    .iter()
                    .position(|x| *x == Seen::Write(format!("{{\"b\":{k}}}\n")))
                    .unwrap_or_else(|| {
                        panic!("state {k} committed, batch {k} never written: {seen:?}")
                    });
                assert!(
                    seen[written..at].contains(&Seen::Flush),
                    "state {k} committed at {at} with no flush after its batch: {seen:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_checkpoint_is_committed_only_after_the_flush_of_everything_before_it() {
        for interval in [Duration::ZERO, Duration::from_secs(3600)] {
            let (outcome, seen) = run(5, None, interval).await;
            outcome.result.unwrap();
            assert_commits_follow_their_flush(&seen);
            let last = seen.iter().rev().find_map(|s| match s {
                Seen::Commit(states) => states.last().cloned(),
                _ => None,
            });
            assert_eq!(
                last.as_deref(),
                Some("5"),
                "the last state is committed: {seen:?}"
            );
            assert_eq!(outcome.stats[0].records, 5);
        }
    }

    #[tokio::test]
    async fn a_failed_flush_commits_nothing_it_did_not_make_durable() {
        let (outcome, seen) = run(5, Some(2), Duration::ZERO).await;
        assert!(outcome.result.is_err(), "{seen:?}");
        assert_commits_follow_their_flush(&seen);
        let flushes = seen.iter().filter(|s| **s == Seen::Flush).count();
        let commits = seen.iter().filter(|s| matches!(s, Seen::Commit(_))).count();
        assert_eq!(flushes, 1, "{seen:?}");
        assert!(commits <= flushes, "{seen:?}");
    }
}
