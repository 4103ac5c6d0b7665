//! Writing a source: implement [`Source`] and [`Reader`], emit records through an [`Emitter`].

use std::collections::VecDeque;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Catalog, ConfiguredCatalog, Error, Result, Spec, State};

/// A source connector.
///
/// The SDK decodes the config JSON into [`Source::Config`] before every call, so a malformed
/// config becomes a clear [`Error::Config`] naming the field, without code in the connector.
pub trait Source {
    /// The connector's config, decoded from JSON.
    type Config: DeserializeOwned;
    /// A read in progress.
    type Reader: Reader + 'static;

    /// Describe the connector and its config.
    fn spec() -> Spec;
    /// Check the config and, where possible, that the data is reachable.
    fn check(config: &Self::Config) -> Result<()>;
    /// List the streams this config can read.
    fn discover(config: &Self::Config) -> Result<Catalog>;
    /// Start reading `catalog`, resuming each stream from its committed `state`.
    fn read(config: Self::Config, catalog: ConfiguredCatalog, state: State)
    -> Result<Self::Reader>;
}

/// A read in progress.
pub trait Reader {
    /// Emit the next records and checkpoints into `out`, about [`Emitter::wants_more`] of them.
    /// Return `Ok(false)` once everything has been emitted.
    fn read(&mut self, out: &mut Emitter) -> Result<bool>;
}

/// What crosses the wall on one pull: a batch of JSONL records or a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Newline-delimited JSON records of one stream.
    Batch {
        /// The stream.
        stream: String,
        /// The records, one JSON object per line.
        records: Vec<u8>,
    },
    /// A checkpoint covering everything emitted before it.
    State {
        /// The stream.
        stream: String,
        /// The state, as JSON text.
        state: String,
    },
}

/// Soft limit on one batch's size: a batch is closed once it holds this many bytes.
const BATCH_SOFT_BYTES: usize = 4 << 20;

/// Collects what a [`Reader`] emits and splits it into batches for the host.
#[derive(Debug)]
pub struct Emitter {
    queue: VecDeque<Message>,
    max_records: usize,
    /// Records in the batch at the back of the queue.
    tail_records: usize,
    /// Records queued since the host last pulled.
    pending: usize,
    /// Bytes of the last full batch: the next one starts with this capacity instead of
    /// growing (and copying) its way up to it.
    batch_hint: usize,
}

impl Emitter {
    fn new() -> Self {
        Emitter {
            queue: VecDeque::new(),
            max_records: 1,
            tail_records: 0,
            pending: 0,
            batch_hint: 64 * 1024,
        }
    }

    /// Whether the host still wants records for this pull. Emitting more is allowed (they wait
    /// for the next pull), but stopping here keeps memory flat.
    pub fn wants_more(&self) -> bool {
        self.pending < self.max_records
    }

    /// Emit one record of `stream`. It must serialize to a JSON object.
    pub fn record<T: Serialize + ?Sized>(&mut self, stream: &str, record: &T) -> Result<()> {
        let buf = self.tail_batch(stream);
        serde_json::to_writer(&mut *buf, record)
            .map_err(|e| Error::fatal(format!("cannot serialize a `{stream}` record: {e}")))?;
        buf.push(b'\n');
        Ok(())
    }

    /// Emit one record already encoded as a single line of JSON (no trailing newline needed).
    pub fn raw_record(&mut self, stream: &str, json: &[u8]) {
        let buf = self.tail_batch(stream);
        buf.extend_from_slice(json);
        if json.last() != Some(&b'\n') {
            buf.push(b'\n');
        }
    }

    /// Checkpoint `stream`: once the host has written everything emitted so far, it commits
    /// `state` and hands it back to the next read.
    pub fn checkpoint<T: Serialize + ?Sized>(&mut self, stream: &str, state: &T) -> Result<()> {
        let state = serde_json::to_string(state)
            .map_err(|e| Error::fatal(format!("cannot serialize the `{stream}` state: {e}")))?;
        self.queue.push_back(Message::State {
            stream: stream.to_string(),
            state,
        });
        Ok(())
    }

    /// The buffer of the batch records of `stream` go into, opening a new batch when the stream
    /// changes or the current batch is full.
    fn tail_batch(&mut self, stream: &str) -> &mut Vec<u8> {
        let reuse = matches!(
            self.queue.back(),
            Some(Message::Batch { stream: s, records })
                if s == stream && self.tail_records < self.max_records && records.len() < BATCH_SOFT_BYTES
        );
        if !reuse {
            if let Some(Message::Batch { records, .. }) = self.queue.back() {
                self.batch_hint = records.len().clamp(64 * 1024, BATCH_SOFT_BYTES + 64 * 1024);
            }
            self.queue.push_back(Message::Batch {
                stream: stream.to_string(),
                records: Vec::with_capacity(self.batch_hint),
            });
            self.tail_records = 0;
        }
        self.tail_records += 1;
        self.pending += 1;
        match self.queue.back_mut() {
            Some(Message::Batch { records, .. }) => records,
            _ => unreachable!("a batch was just pushed"),
        }
    }
}

/// Drives a [`Reader`] the way the host pulls it: one message per `next` call.
///
/// The WebAssembly export glue and native in-process runs (benchmarks, tests) share it, so both
/// batch records identically.
pub struct ReaderDriver<R> {
    reader: R,
    out: Emitter,
    finished: bool,
}

impl<R: Reader> ReaderDriver<R> {
    /// Wrap a reader.
    pub fn new(reader: R) -> Self {
        ReaderDriver {
            reader,
            out: Emitter::new(),
            finished: false,
        }
    }

    /// The next message holding at most `max_records` records, or `None` when the read is done.
    pub fn next(&mut self, max_records: u32) -> Result<Option<Message>> {
        self.out.max_records = (max_records as usize).max(1);
        while self.out.queue.is_empty() && !self.finished {
            self.out.pending = 0;
            if !self.reader.read(&mut self.out)? {
                self.finished = true;
            }
        }
        let msg = self.out.queue.pop_front();
        if self.out.queue.is_empty() {
            self.out.pending = 0;
        }
        Ok(msg)
    }
}

/// Decode a config, turning serde's message into a config error.
pub(crate) fn decode_config<C: DeserializeOwned>(config: &str) -> Result<C> {
    serde_json::from_str(config).map_err(|e| Error::config(format!("invalid config: {e}")))
}

/// The wire-level source calls, shared by the WebAssembly glue and native runs.
pub mod wire {
    use super::*;

    /// `spec()`.
    pub fn spec<S: Source>() -> Spec {
        S::spec()
    }

    /// `check(config)`.
    pub fn check<S: Source>(config: &str) -> Result<()> {
        S::check(&decode_config(config)?)
    }

    /// `discover(config)`.
    pub fn discover<S: Source>(config: &str) -> Result<Catalog> {
        S::discover(&decode_config(config)?)
    }

    /// `read(config, catalog, state)`.
    pub fn read<S: Source>(
        config: &str,
        catalog: ConfiguredCatalog,
        state: Vec<(String, String)>,
    ) -> Result<ReaderDriver<S::Reader>> {
        let config = decode_config(config)?;
        let mut decoded = State::default();
        for (stream, json) in state {
            let value = serde_json::from_str(&json).map_err(|e| {
                Error::config(format!(
                    "the saved state of stream `{stream}` is not JSON: {e}"
                ))
            })?;
            decoded.insert(stream, value);
        }
        Ok(ReaderDriver::new(S::read(config, catalog, decoded)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Emits `n` records of `a`, a checkpoint, then `n` of `b`.
    struct Two {
        n: usize,
        step: usize,
    }

    impl Reader for Two {
        fn read(&mut self, out: &mut Emitter) -> Result<bool> {
            match self.step {
                0 => {
                    for i in 0..self.n {
                        out.record("a", &serde_json::json!({ "i": i }))?;
                    }
                    out.checkpoint("a", &self.n)?;
                }
                1 => {
                    for i in 0..self.n {
                        out.record("b", &serde_json::json!({ "i": i }))?;
                    }
                }
                _ => return Ok(false),
            }
            self.step += 1;
            Ok(true)
        }
    }

    fn drain(driver: &mut ReaderDriver<Two>, max: u32) -> Vec<Message> {
        let mut all = Vec::new();
        while let Some(m) = driver.next(max).unwrap() {
            all.push(m);
        }
        all
    }

    #[test]
    fn batches_never_exceed_max_records_and_keep_order() {
        let mut d = ReaderDriver::new(Two { n: 5, step: 0 });
        let msgs = drain(&mut d, 2);
        let shape: Vec<String> = msgs
            .iter()
            .map(|m| match m {
                Message::Batch { stream, records } => {
                    format!(
                        "{stream}{}",
                        records.iter().filter(|&&b| b == b'\n').count()
                    )
                }
                Message::State { stream, state } => format!("S{stream}={state}"),
            })
            .collect();
        assert_eq!(shape, ["a2", "a2", "a1", "Sa=5", "b2", "b2", "b1"]);
    }

    #[test]
    fn records_are_json_lines() {
        let mut d = ReaderDriver::new(Two { n: 2, step: 0 });
        match d.next(10).unwrap() {
            Some(Message::Batch { records, .. }) => {
                assert_eq!(records, b"{\"i\":0}\n{\"i\":1}\n");
            }
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[test]
    fn bad_config_names_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct C {
            count: u64,
        }
        let err = decode_config::<C>(r#"{"count": "many"}"#).unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("invalid type")),
            "{err}"
        );
        let err = decode_config::<C>("{}").unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("missing field `count`")),
            "{err}"
        );
    }
}
