//! One run of a connection: load both connectors, discover, configure, then pump from the
//! source through the host's checks into the destination, committing checkpoints as the
//! destination makes data durable. An interrupted or failed run is resumed by the next run.

mod attempt;
mod engine;
mod finish;
mod gate;
mod load;
mod progress;
pub mod spill;
pub mod validate;
pub mod wall;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use engine::{Checkpoints, PumpConfig, PumpError, PumpOutcome, Stop, pump};
pub use progress::Progress;

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::json;

use crate::boundary::audit::NewEntry;
use crate::boundary::events::{Capability, EventLog, Outcome};
use crate::boundary::pii::{MaskStats, Masker};
use crate::boundary::retention::{Retention, RetentionError};
use crate::capability::net::NetPolicy;
use crate::capability::{Capabilities, GrantEnv, GrantError, Secret};
use crate::connection::{Connection, ConnectionError, ConnectorRef, Endpoint};
use crate::protocol::LogLine;
use crate::protocol::{
    ConfiguredCatalog, ConnectorError, ConnectorKind, DestinationMode, StreamState, SyncMode,
};
use crate::runtime::{Connector, LoadError, RunLog, Runtime, RuntimeError, Sandbox};
use crate::store::{LockError, RunStatus, Store, StoreError, StreamStats};

impl From<PumpError> for SyncError {
    fn from(e: PumpError) -> SyncError {
        match e {
            PumpError::Connector(e) => SyncError::Connector(e),
            PumpError::Spill(e) => SyncError::Spill(e),
            PumpError::Stopped(why) => SyncError::Stopped(why),
            PumpError::Commit(e) => match e.downcast::<StoreError>() {
                Ok(e) => SyncError::Store(*e),
                Err(e) => SyncError::Internal(format!("cannot commit a checkpoint: {e}")),
            },
            PumpError::Internal(why) => SyncError::Internal(why),
        }
    }
}

/// Why a run could not start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The connection file.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// Loading a connector.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A connector call.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another process runs this connection.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The connection grants more than the connector requests, or a grant cannot be given.
    #[error("the grant in {} is refused: {source}", file.display())]
    Grant {
        /// The connection file.
        file: std::path::PathBuf,
        /// What is wrong.
        source: GrantError,
    },
    /// A connector of the wrong kind in a slot.
    #[error("{field} ({path}) is a {actual}, but a {expected} is needed there")]
    WrongKind {
        /// `source.connector` or `destination.connector`.
        field: &'static str,
        /// Its path.
        path: String,
        /// What it is.
        actual: ConnectorKind,
        /// What the slot needs.
        expected: ConnectorKind,
    },
    /// A connection names an installed connector that is not installed.
    #[error(
        "{field} names the installed connector `{name}`, which is not installed here (install it with `sluice connector install {name}`, or give a path to a .wasm file)"
    )]
    NotInstalled {
        /// `source.connector` or `destination.connector`.
        field: &'static str,
        /// The name.
        name: String,
    },
    /// An installed connector's component is not the one that was vetted at install.
    #[error(
        "the installed connector `{name}` has changed on disk since it was installed ({path}: SHA-256 {actual}, installed {expected}); reinstall it with `sluice connector install {name}@{version}`"
    )]
    InstalledChanged {
        /// The connector.
        name: String,
        /// The installed version.
        version: String,
        /// Its component file.
        path: std::path::PathBuf,
        /// Recorded at install.
        expected: String,
        /// Now.
        actual: String,
    },
    /// The run's staging directory or its samples.
    #[error("cannot write the run's staging files under {}: {source}", path.display())]
    Staging {
        /// Where.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The data dir's retention settings.
    #[error(transparent)]
    Retention(#[from] RetentionError),
    /// A batch spilled to disk could not be written or read back.
    #[error(transparent)]
    Spill(#[from] spill::SpillError),
    /// Asked to stop before the source finished; what was written is committed.
    #[error(
        "stopped before the end: {0}; what was written up to the last checkpoint is kept, and \
         the next run resumes from there"
    )]
    Stopped(String),
    /// A bug in the host.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Start a new run even if the last one is unfinished (abandon its progress).
    pub fresh: bool,
    /// Live counters, for a progress display.
    pub progress: Arc<Progress>,
    /// Who started it, for the audit log (`cli:alice`, `scheduler`…); empty means `cli`.
    pub actor: String,
    /// Told the run's id as soon as the run exists (so an API can answer before it ends).
    pub started: Option<tokio::sync::mpsc::Sender<i64>>,
    /// Stop early when asked (cancel, shutdown): the run ends `interrupted` after committing.
    pub stop: Stop,
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// The run id in the store.
    pub run_id: i64,
    /// 1, or more when resuming.
    pub attempt: i64,
    /// Per stream: records and bytes durably written by this attempt.
    pub streams: Vec<StreamStats>,
    /// Checkpoints committed.
    pub commits: u64,
    /// Per stream (same order as `streams`): how long it was moving.
    pub active: Vec<Duration>,
    /// Wall-clock time of the attempt.
    pub duration: Duration,
    /// Connector log lines kept.
    pub log: Vec<LogLine>,
    /// Connector log lines dropped (over the bound).
    pub log_dropped: u64,
    /// What the connectors did and were refused at the wall.
    pub events: Vec<crate::boundary::events::Event>,
    /// Refusals recorded (kept in `events` or not).
    pub refusals: u64,
    /// Values the PII policy masked, per stream, field and rule or detector.
    pub masked: MaskStats,
    /// Records left out as invalid (`failed_records.on_invalid = "skip"`).
    pub skipped: u64,
    /// Failed-record samples kept (sealed, under `DATA_DIR/samples/`).
    pub samples: u64,
    /// What waited for the destination in sealed spill files (`limits.spill_mib`).
    pub spilled: spill::SpillStats,
    /// `None` when it succeeded.
    pub error: Option<SyncError>,
    /// The error as it may be shown and stored: secret values scrubbed.
    pub error_message: Option<String>,
}

impl RunReport {
    /// Whether the run succeeded.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// Records moved, all streams.
    pub fn records(&self) -> u64 {
        self.streams.iter().map(|s| s.records).sum()
    }

    /// Bytes moved, all streams.
    pub fn bytes(&self) -> u64 {
        self.streams.iter().map(|s| s.bytes).sum()
    }
}

/// Run `conn` once: resume its unfinished run, or start a new one.
///
/// Errors before a run exists (the connection's lock, the store) are returned as `Err`;
/// everything after, from loading the connectors and checking their grants on, is recorded in
/// the store, the audit log and the report.
pub async fn run(
    runtime: &Runtime,
    store: &Store,
    conn: &Connection,
    options: RunOptions,
) -> Result<RunReport, SyncError> {
    let lock = store.lock(&conn.name)?;
    let start = store.begin_run(&lock, &conn.name, options.fresh).await?;
    let report = run_begun(runtime, store, conn, options, start).await;
    drop(lock);
    report
}

/// Run `conn` as the run `start` says, begun (or resumed) already: how a worker runs the run
/// it claimed from the queue, holding the claim's lease instead of the connection's lock.
pub async fn run_begun(
    runtime: &Runtime,
    store: &Store,
    conn: &Connection,
    options: RunOptions,
    start: crate::store::RunStart,
) -> Result<RunReport, SyncError> {
    let retention = Retention::load(store.dir())?;
    if let Some(tx) = &options.started {
        let _ = tx.try_send(start.run_id);
    }
    let actor = if options.actor.is_empty() {
        "cli".to_string()
    } else {
        options.actor.clone()
    };
    let resource = format!("connection/{}", conn.name);
    let last_start = store
        .last_audit("run.started", &resource)
        .await?
        .and_then(|e| serde_json::from_str(&e.details).ok());
    store
        .audit_as_attempt(
            start.run_id,
            start.attempt,
            &wall::start_entries(
                &actor,
                conn,
                start.run_id,
                start.attempt,
                last_start.as_ref(),
            ),
        )
        .await?;
    tracing::info!(
        run = start.run_id,
        attempt = start.attempt,
        "run of `{}` started",
        conn.name
    );
    let began = Instant::now();
    let log = RunLog::new();
    let events = EventLog::new();
    let masker = conn.pii.clone().map(|p| {
        Arc::new(Masker::new(
            p,
            store.keyring().pseudonym_key(&conn.workspace),
        ))
    });
    let stored = wall::stored_secrets(store, conn).await?;
    let area = conn
        .area
        .clone()
        .unwrap_or_else(|| store.dir().to_path_buf());
    let warehouse = area.join("warehouse");
    let ctx = load::RunCtx {
        log: &log,
        events: &events,
        warehouse: &warehouse,
        stored: &stored,
    };
    let sides = load::sides(runtime, store, conn, &ctx).await;
    // Every secret a side loaded is scrubbed from what the connectors log, from the first line.
    let mut secrets = Vec::new();
    let mut audit = Vec::new();
    if let Ok(sides) = &sides {
        audit = load::loaded_entries(&actor, start.run_id, conn, sides);
        secrets = sides.secrets();
    }
    log.set_filter(wall::text_filter(&secrets, masker.clone()));
    events.set_filter(wall::text_filter(&secrets, masker.clone()));
    let staging =
        wall::Staging::create(&area, start.run_id).map_err(|source| SyncError::Staging {
            path: area.join("staging"),
            source,
        })?;
    let outcome = match sides {
        Ok(load::Loaded {
            source,
            destination,
        }) => {
            let sides = attempt::Sides {
                source: &source,
                destination: &destination,
                masker: masker.clone(),
                log: &log,
                events: &events,
                secrets: &mut secrets,
                staging: staging.path(),
            };
            attempt::attempt(runtime, store, conn, sides, &start, &options).await
        }
        Err(e) => {
            if let SyncError::Runtime(RuntimeError::Forbidden { path, reason }) = &e {
                events.refused(
                    &path.display().to_string(),
                    Capability::Load,
                    "load",
                    reason,
                );
            }
            PumpOutcome::failed(e)
        }
    };
    finish::finish(
        store,
        finish::Finishing {
            conn,
            retention: &retention,
            start: &start,
            actor: &actor,
            resource: &resource,
            began,
            log: &log,
            events: &events,
            secrets: &secrets,
            masker,
            staging,
            area: &area,
            audit,
        },
        outcome,
    )
    .await
}

/// Refusals copied into the audit log per run (all are in the run's events).
const MAX_AUDITED_REFUSALS: usize = 100;

/// Which committed states the source gets, and how the destination applies each stream.
///
/// - Incremental streams always continue from their committed state.
/// - Full-refresh streams start from nothing, unless this run already committed a checkpoint
///   for them (a resumed run): then they continue from it.
/// - A stream this run already committed to is appended to, never overwritten again: the
///   destination holds this run's records up to the checkpoint.
pub fn resume_plan(
    catalog: &ConfiguredCatalog,
    committed: &[crate::store::CommittedState],
    run_id: i64,
) -> (Vec<StreamState>, ConfiguredCatalog) {
    let mut states = Vec::new();
    let mut dest = catalog.clone();
    for s in &mut dest.streams {
        let Some(c) = committed.iter().find(|c| c.state.stream == s.stream.name) else {
            continue;
        };
        let this_run = c.run_id == run_id;
        if s.sync_mode == SyncMode::Incremental || this_run {
            states.push(c.state.clone());
        }
        if this_run && s.destination_mode == DestinationMode::Overwrite {
            s.destination_mode = DestinationMode::Append;
        }
    }
    (states, dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::*;
    use crate::store::CommittedState;

    /// A catalog of one stream with an empty schema, for the pump's unit tests.
    pub(super) fn one_stream(
        name: &str,
        sync_mode: SyncMode,
        destination_mode: DestinationMode,
    ) -> ConfiguredCatalog {
        ConfiguredCatalog {
            streams: vec![stream(name, sync_mode, destination_mode)],
        }
    }

    fn stream(name: &str, sync: SyncMode, dm: DestinationMode) -> ConfiguredStream {
        ConfiguredStream {
            stream: StreamDescriptor {
                name: name.into(),
                json_schema: serde_json::json!({}),
                supported_sync_modes: vec![sync],
                default_cursor_field: vec![],
                primary_key: vec![],
            },
            sync_mode: sync,
            destination_mode: dm,
            cursor_field: vec![],
            primary_key: vec![],
        }
    }

    fn committed(stream: &str, run_id: i64) -> CommittedState {
        CommittedState {
            state: StreamState {
                stream: stream.into(),
                state: "{}".into(),
            },
            run_id,
        }
    }

    #[test]
    fn a_fresh_run_rereads_full_refresh_streams_and_continues_incremental_ones() {
        let catalog = ConfiguredCatalog {
            streams: vec![
                stream("full", SyncMode::FullRefresh, DestinationMode::Overwrite),
                stream("inc", SyncMode::Incremental, DestinationMode::Append),
            ],
        };
        let (states, dest) = resume_plan(&catalog, &[committed("full", 1), committed("inc", 1)], 2);
        assert_eq!(
            states.iter().map(|s| s.stream.as_str()).collect::<Vec<_>>(),
            ["inc"]
        );
        assert_eq!(dest.streams[0].destination_mode, DestinationMode::Overwrite);
    }

    #[test]
    fn a_resumed_run_continues_and_appends_what_it_already_wrote() {
        let catalog = ConfiguredCatalog {
            streams: vec![
                stream("done", SyncMode::FullRefresh, DestinationMode::Overwrite),
                stream(
                    "untouched",
                    SyncMode::FullRefresh,
                    DestinationMode::Overwrite,
                ),
            ],
        };
        let (states, dest) = resume_plan(
            &catalog,
            &[committed("done", 7), committed("untouched", 6)],
            7,
        );
        assert_eq!(states.len(), 1);
        assert_eq!(dest.streams[0].destination_mode, DestinationMode::Append);
        assert_eq!(dest.streams[1].destination_mode, DestinationMode::Overwrite);
    }
}
