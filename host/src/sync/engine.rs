//! The pump: the source and the destination run concurrently with a bounded queue between them;
//! checkpoints are committed only after the destination flushed everything before them.
//!
//! Generic over [`SourceReader`] and [`DestinationWriter`], so the same engine moves data between
//! sandboxed components and, in benchmarks, between the same connectors compiled natively.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{SyncError, validate};
use crate::protocol::{
    Batch, ConfiguredCatalog, ConnectorError, DestinationWriter, Message, SourceReader, StreamState,
};
use crate::store::StreamStats;

/// Knobs of the pump.
#[derive(Debug, Clone, Copy)]
pub struct PumpConfig {
    /// Records asked for per pull.
    pub batch_records: u32,
    /// Largest batch accepted.
    pub max_batch_bytes: usize,
    /// Flush and commit at most this often.
    pub checkpoint_interval: Duration,
    /// Batches in flight between source and destination.
    pub queue_depth: usize,
}

impl Default for PumpConfig {
    fn default() -> Self {
        PumpConfig {
            batch_records: 1000,
            max_batch_bytes: 64 << 20,
            checkpoint_interval: Duration::from_secs(1),
            queue_depth: 8,
        }
    }
}

/// Where committed checkpoints go (the store, in a real run).
pub trait Checkpoints: Send {
    /// Commit these states, with the stats (records the destination durably holds so far in
    /// this attempt) they cover.
    fn commit(
        &mut self,
        states: Vec<StreamState>,
        stats: Vec<StreamStats>,
    ) -> impl Future<Output = Result<(), SyncError>> + Send;
}

/// Live counters for a progress display: records and bytes read from the source so far.
#[derive(Debug, Default)]
pub struct Progress {
    /// Records.
    pub records: AtomicU64,
    /// Bytes.
    pub bytes: AtomicU64,
}

/// What a pump did.
#[derive(Debug)]
pub struct PumpOutcome {
    /// Per stream, in catalog order: what the destination durably holds from this attempt.
    pub stats: Vec<StreamStats>,
    /// Checkpoints committed.
    pub commits: u64,
    /// Per stream, in catalog order: from its first batch reaching the destination to its last
    /// batch written (the time the stream was moving).
    pub active: Vec<Duration>,
    /// How it ended.
    pub result: Result<(), SyncError>,
}

enum Item {
    Batch(Batch, u64),
    State(StreamState),
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
    let (tx, mut rx) = mpsc::channel::<Item>(cfg.queue_depth.max(1));
    let source_catalog = catalog.clone();
    let source = tokio::spawn(async move {
        let catalog = source_catalog;
        loop {
            let item = match reader.next(cfg.batch_records).await? {
                None => return Ok::<(), ConnectorError>(()),
                Some(Message::Batch(mut batch)) => {
                    let records = validate::batch(&mut batch, &catalog, cfg.max_batch_bytes)
                        .map_err(|f| ConnectorError::new(reader.name(), "next", f))?;
                    if records == 0 {
                        continue;
                    }
                    progress.records.fetch_add(records, Ordering::Relaxed);
                    progress
                        .bytes
                        .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
                    Item::Batch(batch, records)
                }
                Some(Message::State(state)) => {
                    validate::state(&state, &catalog)
                        .map_err(|f| ConnectorError::new(reader.name(), "next", f))?;
                    Item::State(state)
                }
            };
            if tx.send(item).await.is_err() {
                // The destination stopped; its error tells the story.
                return Ok(());
            }
        }
    });

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
                    checkpoints.commit(states, durable.clone()).await?;
                    commits += 1;
                }
                Ok::<(), SyncError>(())
            }
        };
    }

    let mut destination: Result<(), SyncError> = async {
        while let Some(item) = rx.recv().await {
            match item {
                Item::Batch(batch, records) => {
                    let i = written.iter().position(|s| s.stream == batch.stream);
                    if let Some(i) = i {
                        written[i].records += records;
                        written[i].bytes += batch.records.len() as u64;
                        spans[i].get_or_insert_with(|| (Instant::now(), Instant::now()));
                    }
                    writer.write(batch).await?;
                    if let Some(Some((_, end))) = i.map(|i| &mut spans[i]) {
                        *end = Instant::now();
                    }
                }
                Item::State(state) => {
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
        // The source may be mid-call; nothing it produces now can be written.
        source.abort();
    }
    let source = match source.await {
        Ok(r) => r.map_err(SyncError::from),
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(SyncError::Internal(format!("the source task failed: {e}"))),
    };
    if destination.is_ok() {
        // Whether the source finished or failed, what was written is made durable and the
        // checkpoints covering it are committed, so the next attempt resumes from there.
        destination = flush_and_commit!().await;
    }
    let result = destination.and(source);
    PumpOutcome {
        stats: durable,
        commits,
        active: spans
            .into_iter()
            .map(|s| s.map_or(Duration::ZERO, |(a, b)| b - a))
            .collect(),
        result,
    }
}
