//! One run of a connection: load both connectors, discover, configure, then pump from the
//! source through the host's checks into the destination, committing checkpoints as the
//! destination makes data durable. An interrupted or failed run is resumed by the next run.

mod engine;
mod gate;
pub mod spill;
pub mod validate;
pub mod wall;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use engine::{Checkpoints, Progress, PumpConfig, PumpOutcome, Stop, pump};

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::json;

use crate::boundary::audit::log::NewEntry;
use crate::boundary::audit::{Capability, EventLog, Outcome};
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
    pub events: Vec<crate::boundary::audit::Event>,
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

/// Commits into the store, adding the counts of earlier attempts of the same run.
struct StoreCheckpoints<'a> {
    store: &'a Store,
    run_id: i64,
    connection: &'a str,
    base: Vec<StreamStats>,
}

fn add(base: &[StreamStats], this: &[StreamStats]) -> Vec<StreamStats> {
    let mut out = base.to_vec();
    for s in this {
        match out.iter_mut().find(|b| b.stream == s.stream) {
            Some(b) => {
                b.records += s.records;
                b.bytes += s.bytes;
            }
            None => out.push(s.clone()),
        }
    }
    out
}

impl Checkpoints for StoreCheckpoints<'_> {
    async fn commit(
        &mut self,
        states: Vec<StreamState>,
        stats: Vec<StreamStats>,
    ) -> Result<(), SyncError> {
        let total = add(&self.base, &stats);
        self.store
            .commit_checkpoint(self.run_id, self.connection, &states, &total)
            .await?;
        Ok(())
    }
}

/// One side of the connection, loaded and granted.
struct Side {
    connector: Connector,
    sandbox: Sandbox,
    config: String,
    secrets: Vec<Secret>,
}

/// What both sides of a run share while they are prepared.
struct RunCtx<'a> {
    log: &'a RunLog,
    events: &'a EventLog,
    warehouse: &'a Path,
    stored: &'a BTreeMap<String, SecretString>,
}

/// Load a side's connector, check its grant against its manifest, and build its sandbox.
fn prepare_side(
    runtime: &Runtime,
    conn: &Connection,
    endpoint: &Endpoint,
    code: Code,
    expected: ConnectorKind,
    ctx: &RunCtx<'_>,
) -> Result<Side, SyncError> {
    let RunCtx {
        log,
        events,
        warehouse,
        stored,
    } = *ctx;
    let field = match expected {
        ConnectorKind::Source => "source.connector",
        ConnectorKind::Destination => "destination.connector",
    };
    let connector = load(runtime, code, field, expected)?;
    let side = match expected {
        ConnectorKind::Source => "source",
        ConnectorKind::Destination => "destination",
    };
    let caps: Capabilities = endpoint
        .grant
        .check(
            side,
            connector.manifest(),
            &endpoint.dirs,
            &GrantEnv {
                base: &endpoint.base,
                warehouse,
                call_timeout: conn.limits.connector.call_timeout,
                stored,
            },
        )
        .map_err(|source| {
            events.refused(
                connector.name(),
                Capability::Load,
                "grant",
                &source.to_string(),
            );
            SyncError::Grant {
                file: conn.file.clone(),
                source,
            }
        })?;
    let config = caps.config_for_connector(&endpoint.config);
    for s in &caps.inside {
        log.push(
            connector.name(),
            crate::protocol::LogLevel::Info,
            &format!(
                "secret `{}` is handed to the connector inside its config",
                s.name
            ),
        );
    }
    let net = NetPolicy::new(
        connector.name(),
        caps.net,
        runtime.resolver().clone(),
        events.clone(),
    )
    .map_err(|reason| SyncError::Grant {
        file: conn.file.clone(),
        source: GrantError {
            field: format!("{side}.grant.network"),
            reason,
        },
    })?;
    let sandbox = Sandbox {
        limits: conn.limits.connector,
        dirs: caps.dirs,
        net: Some(Arc::new(net)),
        log: log.clone(),
        events: events.clone(),
        sql: caps.sql,
    };
    Ok(Side {
        connector,
        sandbox,
        config,
        secrets: caps.secrets,
    })
}

/// A side's component, found: a file, or an installed connector's bytes (digest checked).
enum Code {
    File(std::path::PathBuf),
    Installed {
        path: std::path::PathBuf,
        bytes: Vec<u8>,
    },
}

/// Find a side's component; an installed one is read and checked against its recorded digest.
async fn find_code(
    store: &Store,
    connector: &ConnectorRef,
    field: &'static str,
) -> Result<Code, SyncError> {
    let name = match connector {
        ConnectorRef::File(p) => return Ok(Code::File(p.clone())),
        ConnectorRef::Installed(name) => name,
    };
    let Some(c) = store.installed_connector(name).await? else {
        return Err(SyncError::NotInstalled {
            field,
            name: name.clone(),
        });
    };
    let path = store.installed_component(&c);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|source| RuntimeError::Read {
            path: path.clone(),
            source,
        })?;
    let actual = crate::boundary::crypto::sha256_hex(&bytes);
    if actual != c.component_sha256 {
        return Err(SyncError::InstalledChanged {
            name: name.clone(),
            version: c.version,
            path,
            expected: c.component_sha256,
            actual,
        });
    }
    Ok(Code::Installed { path, bytes })
}

fn load(
    runtime: &Runtime,
    code: Code,
    field: &'static str,
    expected: ConnectorKind,
) -> Result<Connector, SyncError> {
    let (mut connector, path) = match code {
        Code::File(path) => (runtime.load(&path)?, path),
        Code::Installed { path, bytes } => {
            let name = path.display().to_string();
            let c = runtime.load_bytes(&name, &bytes).map_err(|e| match e {
                LoadError::NotAConnector(reason) => RuntimeError::NotAConnector {
                    path: path.clone(),
                    reason,
                },
                LoadError::Forbidden(reason) => RuntimeError::Forbidden {
                    path: path.clone(),
                    reason,
                },
            })?;
            (c, path)
        }
    };
    // Messages name the connector by its package name, whatever its file is called.
    let package = connector.manifest().name.clone();
    connector.set_name(&package);
    if connector.kind() != expected {
        return Err(SyncError::WrongKind {
            field,
            path: path.display().to_string(),
            actual: connector.kind(),
            expected,
        });
    }
    Ok(connector)
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
    let retention = Retention::load(store.dir())?;
    let lock = store.lock(&conn.name)?;
    let start = store.begin_run(&lock, &conn.name, options.fresh).await?;
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
        .audit(&wall::start_entries(
            &actor,
            conn,
            start.run_id,
            start.attempt,
            last_start.as_ref(),
        ))
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
    let ctx = RunCtx {
        log: &log,
        events: &events,
        warehouse: &warehouse,
        stored: &stored,
    };
    let mut audit = Vec::new();
    let source_code = find_code(store, &conn.source.connector, "source.connector").await;
    let destination_code =
        find_code(store, &conn.destination.connector, "destination.connector").await;
    let sides = source_code
        .and_then(|code| {
            prepare_side(
                runtime,
                conn,
                &conn.source,
                code,
                ConnectorKind::Source,
                &ctx,
            )
        })
        .and_then(|source| {
            let destination = prepare_side(
                runtime,
                conn,
                &conn.destination,
                destination_code?,
                ConnectorKind::Destination,
                &ctx,
            )?;
            Ok((source, destination))
        });
    // Every secret a side loaded is scrubbed from what the connectors log, from the first line.
    let mut secrets = Vec::new();
    if let Ok((source, destination)) = &sides {
        for (side, s) in [("source", source), ("destination", destination)] {
            audit.push(NewEntry::new(
                &actor,
                "connector.loaded",
                format!("connector/{}", s.connector.name()),
                "ok",
                json!({
                    "run": start.run_id,
                    "side": side,
                    "version": s.connector.manifest().version,
                    "digest": s.connector.digest(),
                }),
            ));
            for secret in &s.secrets {
                audit.push(NewEntry::new(
                    &actor,
                    "secret.read",
                    format!("secret/{}", secret.name),
                    "ok",
                    json!({ "run": start.run_id, "connection": conn.name, "side": side }),
                ));
            }
            secrets.extend(wall::named(&s.secrets));
        }
    }
    log.set_filter(wall::text_filter(&secrets, masker.clone()));
    events.set_filter(wall::text_filter(&secrets, masker.clone()));
    let staging =
        wall::Staging::create(&area, start.run_id).map_err(|source| SyncError::Staging {
            path: area.join("staging"),
            source,
        })?;
    let mut outcome = match sides {
        Ok((source, destination)) => {
            let sides = Sides {
                source: &source,
                destination: &destination,
                masker: masker.clone(),
                log: &log,
                events: &events,
                secrets: &mut secrets,
                staging: staging.path(),
            };
            attempt(runtime, store, conn, sides, &start, &options).await
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
    let scrub = wall::text_filter(&secrets, masker.clone());
    // Failed-record samples: masked like everything else, sealed in staging, then kept.
    let mut limits = conn.failed_records;
    if !retention.samples.stores() {
        limits.samples = 0;
    }
    let mut samples = wall::Samples::new(limits, &staging, &area, start.run_id, start.attempt);
    let kept = outcome
        .invalid
        .iter()
        .try_for_each(|r| {
            let record = scrub(&String::from_utf8_lossy(&r.record));
            samples.add(store, &r.stream, r.line, &r.reason, &record)
        })
        .and_then(|()| samples.keep())
        .map_err(|source| SyncError::Staging {
            path: staging.path().to_path_buf(),
            source,
        });
    let sampled = match kept {
        Ok(Some((path, n))) => {
            store.add_samples(start.run_id, &path, n as u64).await?;
            n as u64
        }
        Ok(None) => 0,
        Err(e) => {
            if outcome.result.is_ok() {
                outcome.result = Err(e);
            }
            0
        }
    };
    drop(staging);

    let (status, error) = match &outcome.result {
        Ok(()) => (RunStatus::Succeeded, None),
        Err(e @ SyncError::Stopped(_)) => (RunStatus::Interrupted, Some(scrub(&e.to_string()))),
        Err(e) => (RunStatus::Failed, Some(scrub(&e.to_string()))),
    };
    let lines = log.lines();
    // Events hold guest text (paths, URLs, SQL): scrubbed like log lines, then cut, before
    // they are stored, audited or reported.
    let recorded: Vec<crate::boundary::audit::Event> = events
        .events()
        .iter()
        .map(|e| e.scrubbed(&*scrub))
        .collect();
    if retention.run_logs.stores() {
        store.append_logs(start.run_id, &lines).await?;
        store.append_events(start.run_id, &recorded).await?;
    }
    store.add_masking(start.run_id, &outcome.masked).await?;
    let totals = add(&start.committed, &outcome.stats);
    store
        .finish_run(
            start.run_id,
            status,
            error.as_deref(),
            &totals,
            log.dropped(),
        )
        .await?;
    let refusals = events.counts().0;
    for e in recorded
        .iter()
        .filter(|e| e.outcome == Outcome::Refused)
        .take(MAX_AUDITED_REFUSALS)
    {
        audit.push(NewEntry::new(
            format!("connector:{}", e.connector),
            "capability.refused",
            &resource,
            "refused",
            json!({
                "run": start.run_id,
                "capability": e.capability,
                "action": e.action,
                "reason": e.detail,
            }),
        ));
    }
    audit.push(NewEntry::new(
        &actor,
        "run.finished",
        &resource,
        match status {
            RunStatus::Succeeded => "ok",
            RunStatus::Interrupted => "stopped",
            _ => "failed",
        },
        json!({
            "run": start.run_id,
            "attempt": start.attempt,
            "records": totals.iter().map(|s| s.records).sum::<u64>(),
            "bytes": totals.iter().map(|s| s.bytes).sum::<u64>(),
            "streams": totals,
            "masked": outcome.masked.total(),
            "skipped": outcome.skipped,
            "samples": sampled,
            "spilled_bytes": outcome.spilled.bytes,
            "refusals": refusals,
            "error": error,
        }),
    ));
    store.audit(&audit).await?;
    store.audit_seal().await?;
    drop(lock);
    Ok(RunReport {
        run_id: start.run_id,
        attempt: start.attempt,
        streams: std::mem::take(&mut outcome.stats),
        commits: outcome.commits,
        active: std::mem::take(&mut outcome.active),
        duration: began.elapsed(),
        log: lines,
        log_dropped: log.dropped(),
        events: recorded,
        refusals,
        masked: std::mem::take(&mut outcome.masked),
        skipped: outcome.skipped,
        samples: sampled,
        spilled: outcome.spilled,
        error: outcome.result.err(),
        error_message: error,
    })
}

/// Refusals copied into the audit log per run (all are in the run's events).
const MAX_AUDITED_REFUSALS: usize = 100;

/// Both prepared sides and what the attempt adds to the run's scrubbing.
struct Sides<'a> {
    source: &'a Side,
    destination: &'a Side,
    masker: Option<Arc<Masker>>,
    log: &'a RunLog,
    events: &'a EventLog,
    /// Secrets to scrub; config fields the connectors' specs mark secret are added.
    secrets: &'a mut Vec<(String, SecretString)>,
    /// The run's staging directory (spill segments go there).
    staging: &'a std::path::Path,
}

async fn attempt(
    runtime: &Runtime,
    store: &Store,
    conn: &Connection,
    sides: Sides<'_>,
    start: &crate::store::RunStart,
    options: &RunOptions,
) -> PumpOutcome {
    let Sides {
        source,
        destination,
        masker,
        log,
        events,
        secrets,
        staging,
    } = sides;
    let prepared = async {
        let mut src = source.connector.source(runtime, &source.sandbox).await?;
        let mut dst = destination
            .connector
            .destination(runtime, &destination.sandbox)
            .await?;
        let src_spec = src.spec().await?;
        let spec = dst.spec().await?;
        // Config fields the connectors mark secret are scrubbed like granted secrets.
        for (side, sp) in [(source, &src_spec), (destination, &spec)] {
            let config: serde_json::Value = serde_json::from_str(&side.config).unwrap_or_default();
            for v in crate::boundary::scrub::secret_values(&sp.config_schema, &config) {
                secrets.push((
                    format!("{}.config", side.connector.name()),
                    SecretString::from(v),
                ));
            }
        }
        log.set_filter(wall::text_filter(secrets, masker.clone()));
        events.set_filter(wall::text_filter(secrets, masker.clone()));
        let catalog = src.discover(&source.config).await?;
        let catalog = conn.configure(&catalog, &spec)?;
        if let Some(m) = &masker {
            let names: Vec<&str> = catalog
                .streams
                .iter()
                .map(|s| s.stream.name.as_str())
                .collect();
            let unknown = m.policy().unknown_streams(&names);
            if !unknown.is_empty() {
                log.push(
                    "sluice",
                    crate::protocol::LogLevel::Warn,
                    &format!(
                        "the PII policy names streams this run does not move: {}",
                        unknown.join(", ")
                    ),
                );
            }
        }
        let committed = store.states(&conn.name).await?;
        let (states, dest_catalog) = resume_plan(&catalog, &committed, start.run_id);
        let reader = src.read(&source.config, &catalog, &states).await?;
        let writer = dst.open(&destination.config, &dest_catalog).await?;
        Ok::<_, SyncError>((reader, writer, catalog))
    }
    .await;
    let (reader, writer, catalog) = match prepared {
        Ok(p) => p,
        Err(e) => return PumpOutcome::failed(e),
    };
    let checkpoints = StoreCheckpoints {
        store,
        run_id: start.run_id,
        connection: &conn.name,
        base: start.committed.clone(),
    };
    let cfg = PumpConfig {
        batch_records: conn.limits.batch_records,
        max_batch_bytes: conn.limits.max_batch_bytes,
        max_json_depth: conn.limits.max_json_depth,
        checkpoint_interval: conn.limits.checkpoint_interval,
        masker,
        on_invalid: conn.failed_records.on_invalid,
        keep_invalid: conn.failed_records.samples,
        spill: (conn.limits.spill_bytes > 0).then(|| spill::SpillConfig {
            dir: staging.to_path_buf(),
            ring: store.keyring_arc(),
            identity: format!("run-{}/attempt-{}", start.run_id, start.attempt),
            max_bytes: conn.limits.spill_bytes,
            segment_bytes: spill::SEGMENT_BYTES,
        }),
        stop: options.stop.clone(),
        ..PumpConfig::default()
    };
    pump(
        reader,
        writer,
        Arc::new(catalog),
        checkpoints,
        cfg,
        options.progress.clone(),
    )
    .await
}

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
