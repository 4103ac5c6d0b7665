//! The connection file: which source and destination, their configs and grants, which streams
//! and how, and the limits of a run. `sluice run CONNECTION.toml` reads one.
//!
//! Relative paths (connectors, granted directories) are relative to the file itself, so a
//! connection file means the same thing whatever directory it is run from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use serde::Deserialize;

use crate::boundary::pii::{PiiFile, PiiPolicy};
use crate::capability::{Access, Grant, Preopen};
use crate::protocol::{
    Catalog, ConfiguredCatalog, ConfiguredStream, DestinationMode, Spec, SyncMode,
};
use crate::runtime::Limits;

/// Why a connection file cannot be used. Each variant names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The file could not be read.
    #[error("cannot read connection file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, a field is missing, misspelled or of the wrong type.
    #[error("connection file {} is invalid: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the parser said, with line, column and field.
        message: String,
    },
    /// A connector file does not exist.
    #[error(
        "{field} in {} points to {}, which does not exist (build the connectors with \
         `cargo xtask build`, or fix the path; relative paths are relative to the connection file)",
        file.display(), path.display()
    )]
    ConnectorNotFound {
        /// The connection file.
        file: PathBuf,
        /// `source.connector` or `destination.connector`.
        field: &'static str,
        /// The resolved path.
        path: PathBuf,
    },
    /// A granted directory cannot be used.
    #[error("{field} in {}: {reason}", file.display())]
    Grant {
        /// The connection file.
        file: PathBuf,
        /// Which grant.
        field: String,
        /// Why.
        reason: String,
    },
    /// The stream selection does not fit the source's catalog or the destination's modes.
    #[error("streams in {}: {message}", file.display())]
    Streams {
        /// The connection file.
        file: PathBuf,
        /// What does not fit.
        message: String,
    },
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    workspace: Option<String>,
    #[serde(default)]
    pii: Option<PiiFile>,
    #[serde(default)]
    failed_records: FailedRecordsFile,
    source: EndpointFile,
    destination: EndpointFile,
    #[serde(default)]
    streams: Option<Vec<StreamSelection>>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointFile {
    connector: PathBuf,
    #[serde(default)]
    config: Option<toml::Table>,
    #[serde(default)]
    grant: Grant,
}

/// How one stream is moved, as the connection file selects it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSelection {
    /// The stream's name in the source's catalog.
    pub name: String,
    /// Default: full refresh.
    pub sync_mode: Option<SyncMode>,
    /// Default: overwrite for full refresh, append for incremental.
    pub destination_mode: Option<DestinationMode>,
    /// Default: the stream's own cursor.
    pub cursor_field: Option<Vec<String>>,
    /// Default: the stream's own key.
    pub primary_key: Option<Vec<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailedRecordsFile {
    #[serde(default)]
    on_invalid: OnInvalid,
    samples: Option<usize>,
    max_sample_bytes: Option<usize>,
}

/// What the wall does with a record that is not a JSON object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    /// Stop the run (nothing after it is written; the next run resumes).
    #[default]
    Fail,
    /// Leave the record out, count it, and keep a sample if samples are on.
    Skip,
}

/// Failed records: what happens to them and how many samples are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedRecords {
    /// Fail or skip.
    pub on_invalid: OnInvalid,
    /// Samples kept per run attempt (0: none, the default).
    pub samples: usize,
    /// Bytes kept per sample (longer records are cut).
    pub max_sample_bytes: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    memory_mib: Option<u64>,
    call_timeout_secs: Option<f64>,
    batch_records: Option<u32>,
    max_batch_mib: Option<u64>,
    max_json_depth: Option<usize>,
    checkpoint_interval_secs: Option<f64>,
    spill_mib: Option<u64>,
}

/// Limits of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunLimits {
    /// Per connector instance.
    pub connector: Limits,
    /// Records the host asks for per pull.
    pub batch_records: u32,
    /// Largest batch the host accepts, in bytes.
    pub max_batch_bytes: usize,
    /// How deeply a record may nest objects and arrays.
    pub max_json_depth: usize,
    /// How often the destination is flushed and checkpoints committed (at most).
    pub checkpoint_interval: Duration,
    /// Bytes that may wait for a slow destination in sealed spill files, so the source is not
    /// held back; 0 (the default): the source waits.
    pub spill_bytes: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            connector: Limits::default(),
            batch_records: 1000,
            max_batch_bytes: 64 << 20,
            max_json_depth: crate::boundary::limits::JSON_DEPTH,
            checkpoint_interval: Duration::from_secs(1),
            spill_bytes: 0,
        }
    }
}

/// Which connector a side runs: a component file, or one installed from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorRef {
    /// A `.wasm` file (resolved against the connection file's directory).
    File(PathBuf),
    /// A connector installed with `sluice connector install`, by name (its component is
    /// checked against the digest recorded at install every time it is loaded).
    Installed(String),
}

impl ConnectorRef {
    /// A value without `/` or `.` is an installed connector's name (`source-faker`); anything
    /// else is a path (`./source-faker.wasm`, `../dist/x.wasm`).
    fn parse(value: &Path, base: &Path) -> ConnectorRef {
        match value.to_str() {
            Some(s) if !s.is_empty() && !s.contains(['/', '.', '\\']) => {
                ConnectorRef::Installed(s.to_string())
            }
            _ => ConnectorRef::File(base.join(value)),
        }
    }
}

impl std::fmt::Display for ConnectorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectorRef::File(p) => write!(f, "{}", p.display()),
            ConnectorRef::Installed(n) => write!(f, "installed connector `{n}`"),
        }
    }
}

/// One side of a connection, resolved.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The component file, or the installed connector.
    pub connector: ConnectorRef,
    /// Its config as JSON text.
    pub config: String,
    /// The grant as written; checked against the connector's manifest when the run starts.
    pub grant: Grant,
    /// The grant's directories, resolved (in the order of `grant.dirs`).
    pub dirs: Vec<Preopen>,
    /// The directory relative paths in the grant are relative to.
    pub base: PathBuf,
}

/// A connection file, parsed and resolved.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Its name: the key of its state and run history.
    pub name: String,
    /// Where it was read from.
    pub file: PathBuf,
    /// The source.
    pub source: Endpoint,
    /// The destination.
    pub destination: Endpoint,
    /// The streams to move; `None` moves all.
    pub streams: Option<Vec<StreamSelection>>,
    /// Limits.
    pub limits: RunLimits,
    /// The workspace: hashed PII is stable within it and differs across workspaces.
    pub workspace: String,
    /// The PII policy; `None` passes values through unchanged.
    pub pii: Option<PiiPolicy>,
    /// Invalid records and their samples.
    pub failed_records: FailedRecords,
    /// For a connection defined through the API: the values of its `stored` secrets, which come
    /// from its own source and destination only, never from the data dir's secret store.
    /// `None` (connection files): `stored` secrets are read from the secret store.
    pub held_secrets: Option<BTreeMap<String, SecretString>>,
    /// The folder its run keeps things in — `warehouse/` (SQLite grants' files), `staging/`,
    /// `samples/` — when not the data dir itself: a workspace's connections have their own, so
    /// no grant names another workspace's file and no workspace's leftovers mix with another's.
    pub area: Option<PathBuf>,
    /// The worker labels its runs require (`[labels] region = "eu"`: data residency, or a node
    /// that holds a granted directory): a queued run waits for a worker that has them all.
    pub labels: BTreeMap<String, String>,
}

impl Connection {
    /// Read and resolve a connection file.
    pub fn load(path: &Path) -> Result<Connection, ConnectionError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConnectionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parse `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Connection, ConnectionError> {
        Self::from_toml(path, path.parent().unwrap_or(Path::new(".")), text)
    }

    /// Parse `text` (a connection file's TOML) named `path` in messages, with relative paths
    /// relative to `base`.
    pub fn from_toml(path: &Path, base: &Path, text: &str) -> Result<Connection, ConnectionError> {
        let invalid = |message: String| ConnectionError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let name = match file.name {
            Some(n) if n.trim().is_empty() => return Err(invalid("`name` is empty".into())),
            Some(n) => n,
            None => path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("connection")
                .to_string(),
        };
        let l = file.limits;
        let defaults = RunLimits::default();
        let positive = |field: &str, v: f64| {
            crate::boundary::limits::seconds(v).ok_or_else(|| {
                invalid(format!(
                    "`limits.{field}` must be a positive number of seconds, at most {}",
                    crate::boundary::limits::SETTING_SECONDS
                ))
            })
        };
        let mib = |field: &str, v: u64, max: u64| {
            if (1..=max).contains(&v) {
                Ok(v << 20)
            } else {
                Err(invalid(format!(
                    "`limits.{field}` must be between 1 and {max} (MiB)"
                )))
            }
        };
        use crate::boundary::limits::{BATCH_MIB, MEMORY_MIB};
        let limits = RunLimits {
            connector: Limits {
                memory: match l.memory_mib {
                    Some(m) => mib("memory_mib", m, MEMORY_MIB)?,
                    None => defaults.connector.memory,
                },
                call_timeout: match l.call_timeout_secs {
                    Some(v) => positive("call_timeout_secs", v)?,
                    None => defaults.connector.call_timeout,
                },
            },
            batch_records: l.batch_records.unwrap_or(defaults.batch_records).max(1),
            max_batch_bytes: match l.max_batch_mib {
                Some(m) => mib("max_batch_mib", m, BATCH_MIB)? as usize,
                None => defaults.max_batch_bytes,
            },
            max_json_depth: match l.max_json_depth {
                None => defaults.max_json_depth,
                Some(d) if (1..=crate::boundary::limits::MAX_JSON_DEPTH).contains(&d) => d,
                Some(_) => {
                    return Err(invalid(format!(
                        "`limits.max_json_depth` must be between 1 and {}",
                        crate::boundary::limits::MAX_JSON_DEPTH
                    )));
                }
            },
            checkpoint_interval: match l.checkpoint_interval_secs {
                Some(v) => positive("checkpoint_interval_secs", v)?,
                None => defaults.checkpoint_interval,
            },
            spill_bytes: l
                .spill_mib
                .map_or(defaults.spill_bytes, |m| m.saturating_mul(1 << 20)),
        };
        let source = endpoint(path, base, "source", file.source, Access::ReadOnly)?;
        let destination = endpoint(
            path,
            base,
            "destination",
            file.destination,
            Access::ReadWrite,
        )?;
        let workspace = match file.workspace {
            Some(w) if w.trim().is_empty() => return Err(invalid("`workspace` is empty".into())),
            Some(w) => w,
            None => "default".to_string(),
        };
        let pii = file
            .pii
            .map(PiiFile::check)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        let f = file.failed_records;
        let failed_records = FailedRecords {
            on_invalid: f.on_invalid,
            samples: f.samples.unwrap_or(0).min(10_000),
            max_sample_bytes: f.max_sample_bytes.unwrap_or(4096).clamp(64, 1 << 20),
        };
        for (k, v) in &file.labels {
            crate::store::check_label(k, v).map_err(|e| invalid(format!("[labels]: {e}")))?;
        }
        Ok(Connection {
            name,
            file: path.to_path_buf(),
            source,
            destination,
            streams: file.streams,
            limits,
            workspace,
            pii,
            failed_records,
            held_secrets: None,
            area: None,
            labels: file.labels,
        })
    }

    /// The configured catalog for this run: the selected streams of the source's `catalog`,
    /// checked against what the destination (`destination`'s spec) supports.
    pub fn configure(
        &self,
        catalog: &Catalog,
        destination: &Spec,
    ) -> Result<ConfiguredCatalog, ConnectionError> {
        configure(catalog, self.streams.as_deref(), destination).map_err(|message| {
            ConnectionError::Streams {
                file: self.file.clone(),
                message,
            }
        })
    }
}

fn endpoint(
    file: &Path,
    base: &Path,
    side: &'static str,
    e: EndpointFile,
    access: Access,
) -> Result<Endpoint, ConnectionError> {
    let connector = ConnectorRef::parse(&e.connector, base);
    if let ConnectorRef::File(path) = &connector
        && !path.is_file()
    {
        return Err(ConnectionError::ConnectorNotFound {
            file: file.to_path_buf(),
            field: if side == "source" {
                "source.connector"
            } else {
                "destination.connector"
            },
            path: path.clone(),
        });
    }
    let config = serde_json::to_string(&e.config.unwrap_or_default()).map_err(|err| {
        ConnectionError::Invalid {
            path: file.to_path_buf(),
            message: format!("`{side}.config` cannot be turned into JSON: {err}"),
        }
    })?;
    let mut dirs = Vec::new();
    for (i, d) in e.grant.dirs.iter().enumerate() {
        let field = format!("{side}.grant.dirs[{i}]");
        // A destination's output directory is created on first use; a source's must exist.
        if access == Access::ReadWrite {
            let _ = std::fs::create_dir_all(base.join(&d.host));
        }
        let p = d
            .resolve(base, access)
            .map_err(|err| ConnectionError::Grant {
                file: file.to_path_buf(),
                field,
                reason: err.to_string(),
            })?;
        dirs.push(p);
    }
    Ok(Endpoint {
        connector,
        config,
        grant: e.grant,
        dirs,
        base: base.to_path_buf(),
    })
}

/// Select and configure streams. Defaults: every stream; full refresh; overwrite for full
/// refresh and append for incremental; the stream's own cursor and key.
pub fn configure(
    catalog: &Catalog,
    selections: Option<&[StreamSelection]>,
    destination: &Spec,
) -> Result<ConfiguredCatalog, String> {
    let all: Vec<StreamSelection>;
    let selections = match selections {
        Some(s) => s,
        None => {
            all = catalog
                .streams
                .iter()
                .map(|s| StreamSelection {
                    name: s.name.clone(),
                    sync_mode: None,
                    destination_mode: None,
                    cursor_field: None,
                    primary_key: None,
                })
                .collect();
            &all
        }
    };
    if selections.is_empty() {
        return Err(
            "no stream is selected; list at least one `[[streams]]` or omit them all".into(),
        );
    }
    let mut streams = Vec::with_capacity(selections.len());
    for sel in selections {
        let Some(stream) = catalog.get(&sel.name) else {
            let names: Vec<&str> = catalog.streams.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "stream `{}` is not in the source's catalog (it has: {})",
                sel.name,
                names.join(", ")
            ));
        };
        if streams
            .iter()
            .any(|s: &ConfiguredStream| s.stream.name == sel.name)
        {
            return Err(format!("stream `{}` is selected twice", sel.name));
        }
        let sync_mode = sel.sync_mode.unwrap_or(SyncMode::FullRefresh);
        if !stream.supported_sync_modes.contains(&sync_mode) {
            return Err(format!(
                "stream `{}` does not support {sync_mode:?} (it supports {:?})",
                sel.name, stream.supported_sync_modes
            ));
        }
        let cursor_field = sel
            .cursor_field
            .clone()
            .unwrap_or_else(|| stream.default_cursor_field.clone());
        if sync_mode == SyncMode::Incremental && cursor_field.is_empty() {
            return Err(format!(
                "stream `{}` is incremental but has no cursor; set `cursor_field`",
                sel.name
            ));
        }
        let destination_mode = sel.destination_mode.unwrap_or(match sync_mode {
            SyncMode::FullRefresh => DestinationMode::Overwrite,
            SyncMode::Incremental => DestinationMode::Append,
        });
        if !destination
            .supported_destination_modes
            .contains(&destination_mode)
        {
            return Err(format!(
                "stream `{}`: the destination does not support {destination_mode:?} \
                 (it supports {:?})",
                sel.name, destination.supported_destination_modes
            ));
        }
        let primary_key = sel
            .primary_key
            .clone()
            .unwrap_or_else(|| stream.primary_key.clone());
        if destination_mode == DestinationMode::AppendDedup && primary_key.is_empty() {
            return Err(format!(
                "stream `{}` uses append_dedup but has no primary key; set `primary_key`",
                sel.name
            ));
        }
        streams.push(ConfiguredStream {
            stream: stream.clone(),
            sync_mode,
            destination_mode,
            cursor_field,
            primary_key,
        });
    }
    Ok(ConfiguredCatalog { streams })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::StreamDescriptor;

    fn setup(text: &str) -> (tempfile::TempDir, Result<Connection, ConnectionError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("d.wasm"), b"x").unwrap();
        let path = dir.path().join("conn.toml");
        std::fs::write(&path, text).unwrap();
        let c = Connection::load(&path);
        (dir, c)
    }

    const GOOD: &str = r#"
name = "demo"
[source]
connector = "s.wasm"
config = { count = 5, nested = { a = [1, 2] } }
[destination]
connector = "d.wasm"
[[destination.grant.dirs]]
host = "out"
guest = "/output"
[limits]
memory_mib = 64
call_timeout_secs = 0.5
"#;

    #[test]
    fn a_good_file_resolves_paths_config_and_limits() {
        let (dir, c) = setup(GOOD);
        let c = c.unwrap();
        assert_eq!(c.name, "demo");
        assert_eq!(
            c.source.connector,
            ConnectorRef::File(dir.path().join("s.wasm"))
        );
        let config: serde_json::Value = serde_json::from_str(&c.source.config).unwrap();
        assert_eq!(config["nested"]["a"][1], 2);
        assert_eq!(c.destination.config, "{}");
        assert_eq!(c.destination.dirs[0].guest, "/output");
        assert!(
            dir.path().join("out").is_dir(),
            "destination dirs are created"
        );
        assert_eq!(c.limits.connector.memory, 64 << 20);
        assert_eq!(c.limits.connector.call_timeout, Duration::from_millis(500));
    }

    fn error_of(text: &str) -> String {
        setup(text).1.unwrap_err().to_string()
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = error_of("[source]\nconnector = \"s.wasm\"\n");
        assert!(e.contains("missing field `destination`"), "{e}");
        let e = error_of("[source]\n[destination]\nconnector = \"d.wasm\"\n");
        assert!(e.contains("missing field `connector`"), "{e}");
        assert!(
            e.contains("line 1") && e.contains("[source]"),
            "points at the table: {e}"
        );
    }

    #[test]
    fn a_wrong_type_is_named_with_its_line() {
        let e = error_of(&GOOD.replace("memory_mib = 64", "memory_mib = \"lots\""));
        assert!(e.contains("memory_mib"), "{e}");
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn a_misspelled_field_is_refused() {
        let e = error_of(&GOOD.replace("memory_mib", "memroy_mib"));
        assert!(e.contains("unknown field `memroy_mib`"), "{e}");
    }

    #[test]
    fn a_bare_name_means_an_installed_connector() {
        let (_dir, c) = setup(&GOOD.replace("\"s.wasm\"", "\"source-faker\""));
        assert_eq!(
            c.unwrap().source.connector,
            ConnectorRef::Installed("source-faker".into())
        );
    }

    #[test]
    fn an_unknown_connector_path_is_named() {
        let e = error_of(&GOOD.replace("\"s.wasm\"", "\"nope/source.wasm\""));
        assert!(e.contains("source.connector"), "{e}");
        assert!(e.contains("nope/source.wasm"), "{e}");
    }

    /// Found by an outside review: `call_timeout_secs = 1e300` panicked in
    /// `Duration::from_secs_f64` (a PUT over the API took the handler down), and a huge
    /// `memory_mib` wrapped round to a small one. Every such value is refused by name.
    #[test]
    fn limits_past_their_range_are_refused_by_name_not_panicked_on_or_wrapped() {
        let limits = "[limits]\nmemory_mib = 64\ncall_timeout_secs = 0.5\n";
        for (setting, value) in [
            ("call_timeout_secs", "1e300"),
            ("call_timeout_secs", "inf"),
            ("call_timeout_secs", "nan"),
            ("call_timeout_secs", "40000000"),
            ("checkpoint_interval_secs", "1e300"),
            ("memory_mib", "17592186044417"),
            ("memory_mib", "0"),
            ("max_batch_mib", "1125899906842624"),
        ] {
            let text = GOOD.replace(limits, &format!("[limits]\n{setting} = {value}\n"));
            let got = std::panic::catch_unwind(|| error_of(&text));
            let e = got.unwrap_or_else(|_| panic!("{setting} = {value} panicked"));
            assert!(e.contains(setting), "{setting} = {value}: {e}");
        }
        let (_dir, c) = setup(&GOOD.replace(
            limits,
            "[limits]\nmemory_mib = 4096\ncall_timeout_secs = 86400\n",
        ));
        let c = c.unwrap();
        assert_eq!(c.limits.connector.memory, 4096 << 20);
        assert_eq!(c.limits.connector.call_timeout, Duration::from_secs(86_400));
    }

    #[test]
    fn a_bad_grant_is_named() {
        let e = error_of(&GOOD.replace("/output", "output"));
        assert!(e.contains("destination.grant.dirs[0]"), "{e}");
        let e = error_of(
            &format!("{GOOD}\n[[source.grant.dirs]]\nhost = \"missing\"\nguest = \"/in\"\n")
                .replace("[limits]\nmemory_mib = 64\ncall_timeout_secs = 0.5\n", ""),
        );
        assert!(
            e.contains("source.grant.dirs[0]") && e.contains("missing"),
            "{e}"
        );
    }

    fn catalog() -> Catalog {
        Catalog {
            streams: vec![
                StreamDescriptor {
                    name: "users".into(),
                    json_schema: serde_json::json!({}),
                    supported_sync_modes: vec![SyncMode::FullRefresh, SyncMode::Incremental],
                    default_cursor_field: vec!["updated_at".into()],
                    primary_key: vec![vec!["id".into()]],
                },
                StreamDescriptor {
                    name: "files".into(),
                    json_schema: serde_json::json!({}),
                    supported_sync_modes: vec![SyncMode::FullRefresh],
                    default_cursor_field: vec![],
                    primary_key: vec![],
                },
            ],
        }
    }

    fn dest(modes: &[DestinationMode]) -> Spec {
        Spec {
            config_schema: serde_json::json!({}),
            documentation_url: None,
            supported_destination_modes: modes.to_vec(),
        }
    }

    fn sel(name: &str, sync: Option<SyncMode>, dm: Option<DestinationMode>) -> StreamSelection {
        StreamSelection {
            name: name.into(),
            sync_mode: sync,
            destination_mode: dm,
            cursor_field: None,
            primary_key: None,
        }
    }

    #[test]
    fn defaults_move_every_stream_by_full_refresh_overwrite() {
        let c = configure(&catalog(), None, &dest(&[DestinationMode::Overwrite])).unwrap();
        assert_eq!(c.streams.len(), 2);
        assert!(
            c.streams
                .iter()
                .all(|s| s.sync_mode == SyncMode::FullRefresh
                    && s.destination_mode == DestinationMode::Overwrite)
        );
    }

    #[test]
    fn incremental_appends_with_the_stream_cursor() {
        let both = dest(&[DestinationMode::Append, DestinationMode::Overwrite]);
        let c = configure(
            &catalog(),
            Some(&[sel("users", Some(SyncMode::Incremental), None)]),
            &both,
        )
        .unwrap();
        assert_eq!(c.streams[0].destination_mode, DestinationMode::Append);
        assert_eq!(c.streams[0].cursor_field, ["updated_at"]);
    }

    #[test]
    fn selections_that_do_not_fit_are_refused_with_the_reason() {
        let both = dest(&[DestinationMode::Append, DestinationMode::Overwrite]);
        let e = configure(&catalog(), Some(&[sel("userz", None, None)]), &both).unwrap_err();
        assert!(e.contains("userz") && e.contains("users, files"), "{e}");
        let e = configure(
            &catalog(),
            Some(&[sel("files", Some(SyncMode::Incremental), None)]),
            &both,
        )
        .unwrap_err();
        assert!(e.contains("does not support Incremental"), "{e}");
        let e = configure(
            &catalog(),
            Some(&[sel("users", None, Some(DestinationMode::AppendDedup))]),
            &both,
        )
        .unwrap_err();
        assert!(e.contains("AppendDedup"), "{e}");
        let e = configure(
            &catalog(),
            Some(&[sel("users", None, None), sel("users", None, None)]),
            &both,
        )
        .unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }
}
