//! The contract's data, host side: what crosses the sandbox wall, independent of wasmtime.
//!
//! These mirror `wit/connector.wit`. The runtime converts the generated bindings into them; the
//! sync engine, the store and the CLI only ever see these.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a source reads a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Read everything, every run.
    FullRefresh,
    /// Read only what changed since the last committed state.
    Incremental,
}

/// How a destination applies a stream's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationMode {
    /// Add to what is there.
    Append,
    /// Replace what is there with this run's records.
    Overwrite,
    /// Add, keeping the newest record per primary key.
    AppendDedup,
}

/// What a connector says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// JSON Schema of the config.
    pub config_schema: serde_json::Value,
    /// Where to read more.
    pub documentation_url: Option<String>,
    /// For destinations, the modes supported.
    pub supported_destination_modes: Vec<DestinationMode>,
}

/// One stream a source can produce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamDescriptor {
    /// Unique name within the source.
    pub name: String,
    /// JSON Schema of a record.
    pub json_schema: serde_json::Value,
    /// Supported sync modes.
    pub supported_sync_modes: Vec<SyncMode>,
    /// Default cursor field path; empty when none.
    pub default_cursor_field: Vec<String>,
    /// Primary key field paths.
    pub primary_key: Vec<Vec<String>>,
}

/// Everything a source can produce.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Catalog {
    /// The streams.
    pub streams: Vec<StreamDescriptor>,
}

impl Catalog {
    /// The stream with this name.
    pub fn get(&self, name: &str) -> Option<&StreamDescriptor> {
        self.streams.iter().find(|s| s.name == name)
    }
}

/// One stream as a connection selected it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredStream {
    /// The stream as discovered.
    pub stream: StreamDescriptor,
    /// How the source reads it.
    pub sync_mode: SyncMode,
    /// How the destination applies it.
    pub destination_mode: DestinationMode,
    /// Cursor for incremental reads.
    pub cursor_field: Vec<String>,
    /// Key for dedup.
    pub primary_key: Vec<Vec<String>>,
}

/// The streams one run moves.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConfiguredCatalog {
    /// Selected streams in read order.
    pub streams: Vec<ConfiguredStream>,
}

impl ConfiguredCatalog {
    /// The configured stream with this name.
    pub fn get(&self, name: &str) -> Option<&ConfiguredStream> {
        self.streams.iter().find(|s| s.stream.name == name)
    }
}

/// Records of one stream crossing the wall together, as newline-delimited JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The stream.
    pub stream: String,
    /// JSONL bytes.
    pub records: Vec<u8>,
}

/// A checkpoint of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// The stream.
    pub stream: String,
    /// The source's position, JSON text.
    pub state: String,
}

/// What a reader hands over on each pull.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Records.
    Batch(Batch),
    /// A checkpoint.
    State(StreamState),
}

/// An error a connector reported through the contract (as opposed to a trap or a limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportedError {
    /// The configuration is wrong.
    Config(String),
    /// Credentials were refused.
    Auth(String),
    /// Temporary; retrying may help.
    Transient(String),
    /// Asked to slow down.
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
        /// What was limited.
        message: String,
    },
    /// Anything else.
    Fatal(String),
}

impl ReportedError {
    /// The kind, as a word for messages and run records.
    pub fn kind(&self) -> &'static str {
        match self {
            ReportedError::Config(_) => "config",
            ReportedError::Auth(_) => "auth",
            ReportedError::Transient(_) => "transient",
            ReportedError::RateLimited { .. } => "rate-limited",
            ReportedError::Fatal(_) => "fatal",
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ReportedError::Transient(_) | ReportedError::RateLimited { .. }
        )
    }
}

impl fmt::Display for ReportedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportedError::Config(m) => write!(f, "config error: {m}"),
            ReportedError::Auth(m) => write!(f, "auth error: {m}"),
            ReportedError::Transient(m) => write!(f, "transient error: {m}"),
            ReportedError::RateLimited {
                retry_after,
                message,
            } => write!(
                f,
                "rate limited, retry after {} ms: {message}",
                retry_after.as_millis()
            ),
            ReportedError::Fatal(m) => write!(f, "fatal error: {m}"),
        }
    }
}

/// Which side of the contract a connector implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    /// Exports `source-connector`.
    Source,
    /// Exports `destination-connector`.
    Destination,
}

impl fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectorKind::Source => "source",
            ConnectorKind::Destination => "destination",
        })
    }
}

/// Severity of a connector log line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Tracing detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Progress.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

/// Records and bytes of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StreamStats {
    /// The stream.
    pub stream: String,
    /// Records.
    pub records: u64,
    /// Bytes of JSONL.
    pub bytes: u64,
}

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// Which connector wrote it.
    pub connector: String,
    /// Its level (stdout lines are `info`, stderr lines `warn`).
    pub level: LogLevel,
    /// The text, cut to the run log's line limit.
    pub message: String,
}

/// Why a connector call failed, from the host's point of view.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The connector returned an error through the contract.
    #[error("reported a {}", .0)]
    Reported(ReportedError),
    /// A call ran past its deadline.
    #[error(
        "ran longer than its per-call limit of {}s and was stopped (an endless loop, or work too \
         slow for one call); if it legitimately needs longer, raise `limits.call_timeout_secs` \
         in the connection file",
        limit.as_secs_f64()
    )]
    Timeout {
        /// The limit that was hit.
        limit: Duration,
    },
    /// Memory growth past the limit.
    #[error(
        "tried to grow its memory to {} MiB, over its limit of {} MiB, and was stopped; if it \
         legitimately needs more, raise `limits.memory_mib` in the connection file",
        requested / (1 << 20),
        limit / (1 << 20)
    )]
    MemoryLimit {
        /// The limit in bytes.
        limit: u64,
        /// What it asked for in bytes.
        requested: u64,
    },
    /// The WebAssembly call stack overflowed.
    #[error("overflowed its call stack (runaway recursion?) and was stopped")]
    StackOverflow,
    /// The connector panicked.
    #[error("panicked: {message}")]
    Panic {
        /// The panic message it logged.
        message: String,
    },
    /// Any other trap.
    #[error("crashed: {message}")]
    Trap {
        /// What the trap was.
        message: String,
    },
    /// The connector broke the contract (bad data, unknown stream, oversized batch).
    #[error("broke the contract: {message}")]
    Protocol {
        /// What was wrong.
        message: String,
    },
    /// The host could not load or start it.
    #[error("could not be started: {message}")]
    Start {
        /// What went wrong.
        message: String,
    },
}

impl Failure {
    /// Whether the connector instance is still usable after this failure. Traps and limits end
    /// it; a reported error leaves it as it was.
    pub fn instance_survives(&self) -> bool {
        matches!(self, Failure::Reported(_))
    }
}

/// A failed call into a named connector: `connector `source-faker` failed in `next`: ...`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("connector `{connector}` failed in `{call}`: {failure}")]
pub struct ConnectorError {
    /// The connector's name.
    pub connector: String,
    /// The contract call: spec, check, discover, read, next, open, write, flush.
    pub call: &'static str,
    /// What happened.
    pub failure: Failure,
}

impl ConnectorError {
    /// A failure of `call` in `connector`.
    pub fn new(connector: &str, call: &'static str, failure: Failure) -> Self {
        ConnectorError {
            connector: connector.to_string(),
            call,
            failure,
        }
    }
}

/// A source the sync engine pulls from: a sandboxed component, or native code in benchmarks.
pub trait SourceReader: Send {
    /// The connector's name, for errors.
    fn name(&self) -> &str;
    /// The next message holding at most `max_records` records; `None` when the read is done.
    fn next(
        &mut self,
        max_records: u32,
    ) -> impl Future<Output = Result<Option<Message>, ConnectorError>> + Send;
}

/// A destination the sync engine writes into.
pub trait DestinationWriter: Send {
    /// The connector's name, for errors.
    fn name(&self) -> &str;
    /// Write one batch.
    fn write(&mut self, batch: Batch) -> impl Future<Output = Result<(), ConnectorError>> + Send;
    /// Make everything written so far durable.
    fn flush(&mut self) -> impl Future<Output = Result<(), ConnectorError>> + Send;
}
