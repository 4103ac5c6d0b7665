//! Specs, streams and catalogs: what a connector says about itself and what a run asks of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// Replace what is there.
    Overwrite,
    /// Add, keeping only the newest record per primary key.
    AppendDedup,
}

/// What a connector tells the operator about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// JSON Schema of the config; fields with `"secret": true` hold secrets.
    pub config_schema: Value,
    /// Where to read more, if anywhere.
    pub documentation_url: Option<String>,
    /// For destinations: the modes supported.
    pub destination_modes: Vec<DestinationMode>,
}

impl Spec {
    /// A spec with this config schema and nothing else.
    pub fn new(config_schema: Value) -> Self {
        Spec {
            config_schema,
            documentation_url: None,
            destination_modes: Vec::new(),
        }
    }

    /// Set the documentation URL.
    pub fn documentation(mut self, url: impl Into<String>) -> Self {
        self.documentation_url = Some(url.into());
        self
    }

    /// Declare the destination modes a destination supports.
    pub fn destination_modes(mut self, modes: &[DestinationMode]) -> Self {
        self.destination_modes = modes.to_vec();
        self
    }
}

/// One stream a source can produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// Unique name within the source.
    pub name: String,
    /// JSON Schema of one record.
    pub json_schema: Value,
    /// Supported sync modes; never empty.
    pub sync_modes: Vec<SyncMode>,
    /// Default cursor for incremental reads; empty when none.
    pub cursor_field: Vec<String>,
    /// Primary key field paths; empty when none.
    pub primary_key: Vec<Vec<String>>,
}

impl Stream {
    /// A full-refresh stream with this name and schema.
    pub fn new(name: impl Into<String>, json_schema: Value) -> Self {
        Stream {
            name: name.into(),
            json_schema,
            sync_modes: vec![SyncMode::FullRefresh],
            cursor_field: Vec::new(),
            primary_key: Vec::new(),
        }
    }

    /// Make the stream incremental on a top-level cursor field.
    pub fn incremental_on(mut self, cursor: &str) -> Self {
        self.sync_modes = vec![SyncMode::FullRefresh, SyncMode::Incremental];
        self.cursor_field = vec![cursor.to_string()];
        self
    }

    /// Set a single top-level primary key field.
    pub fn primary_key(mut self, field: &str) -> Self {
        self.primary_key = vec![vec![field.to_string()]];
        self
    }
}

/// Everything a source can produce.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    /// The streams, in preferred read order.
    pub streams: Vec<Stream>,
}

/// One stream as a connection selected it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfiguredStream {
    /// The stream as discovered.
    pub stream: Stream,
    /// How to read it.
    pub sync_mode: SyncMode,
    /// How to write it.
    pub destination_mode: DestinationMode,
    /// The cursor for incremental reads.
    pub cursor_field: Vec<String>,
    /// The key for dedup.
    pub primary_key: Vec<Vec<String>>,
}

/// The streams a run moves.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfiguredCatalog {
    /// The selected streams, in read order.
    pub streams: Vec<ConfiguredStream>,
}

impl ConfiguredCatalog {
    /// The configured stream with this name, if selected.
    pub fn get(&self, name: &str) -> Option<&ConfiguredStream> {
        self.streams.iter().find(|s| s.stream.name == name)
    }
}

/// The last committed state of each stream, as the source checkpointed it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    streams: BTreeMap<String, Value>,
}

impl State {
    /// The committed state of `stream`, if there is one.
    pub fn get(&self, stream: &str) -> Option<&Value> {
        self.streams.get(stream)
    }

    /// The committed state of `stream` decoded into `T`; `None` when absent.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, stream: &str) -> crate::Result<Option<T>> {
        match self.streams.get(stream) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                crate::Error::config(format!(
                    "the saved state of stream `{stream}` is not understood: {e}; \
                     reset the connection's state to read it from the beginning"
                ))
            }),
        }
    }

    /// Record `state` for `stream`.
    pub fn insert(&mut self, stream: impl Into<String>, state: Value) {
        self.streams.insert(stream.into(), state);
    }
}
