//! Generated binding types to and from the host's protocol types.

use std::time::Duration;

use super::bindings::types as w;
use crate::protocol::*;

/// Parse JSON text a connector returned, or say which field was broken.
fn json(field: &str, text: &str) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::Protocol {
        message: format!("its {field} is not valid JSON: {e}"),
    })
}

pub fn spec(s: w::ConnectorSpec) -> Result<Spec, Failure> {
    Ok(Spec {
        config_schema: json("config schema", &s.config_schema)?,
        documentation_url: s.documentation_url,
        supported_destination_modes: s
            .supported_destination_modes
            .into_iter()
            .map(destination_mode)
            .collect(),
    })
}

pub fn catalog(c: w::Catalog) -> Result<Catalog, Failure> {
    let mut streams = Vec::with_capacity(c.streams.len());
    for s in c.streams {
        let json_schema = json(&format!("schema of stream `{}`", s.name), &s.json_schema)?;
        if s.supported_sync_modes.is_empty() {
            return Err(Failure::Protocol {
                message: format!("stream `{}` supports no sync mode", s.name),
            });
        }
        if streams.iter().any(|x: &StreamDescriptor| x.name == s.name) {
            return Err(Failure::Protocol {
                message: format!("its catalog lists stream `{}` twice", s.name),
            });
        }
        streams.push(StreamDescriptor {
            name: s.name,
            json_schema,
            supported_sync_modes: s.supported_sync_modes.into_iter().map(sync_mode).collect(),
            default_cursor_field: s.default_cursor_field,
            primary_key: s.primary_key,
        });
    }
    Ok(Catalog { streams })
}

pub fn configured_catalog(c: &ConfiguredCatalog) -> w::ConfiguredCatalog {
    w::ConfiguredCatalog {
        streams: c
            .streams
            .iter()
            .map(|s| w::ConfiguredStream {
                stream: w::StreamDescriptor {
                    name: s.stream.name.clone(),
                    json_schema: s.stream.json_schema.to_string(),
                    supported_sync_modes: s
                        .stream
                        .supported_sync_modes
                        .iter()
                        .map(|m| match m {
                            SyncMode::FullRefresh => w::SyncMode::FullRefresh,
                            SyncMode::Incremental => w::SyncMode::Incremental,
                        })
                        .collect(),
                    default_cursor_field: s.stream.default_cursor_field.clone(),
                    primary_key: s.stream.primary_key.clone(),
                },
                sync_mode: match s.sync_mode {
                    SyncMode::FullRefresh => w::SyncMode::FullRefresh,
                    SyncMode::Incremental => w::SyncMode::Incremental,
                },
                destination_mode: match s.destination_mode {
                    DestinationMode::Append => w::DestinationMode::Append,
                    DestinationMode::Overwrite => w::DestinationMode::Overwrite,
                    DestinationMode::AppendDedup => w::DestinationMode::AppendDedup,
                },
                cursor_field: s.cursor_field.clone(),
                primary_key: s.primary_key.clone(),
            })
            .collect(),
    }
}

fn sync_mode(m: w::SyncMode) -> SyncMode {
    match m {
        w::SyncMode::FullRefresh => SyncMode::FullRefresh,
        w::SyncMode::Incremental => SyncMode::Incremental,
    }
}

fn destination_mode(m: w::DestinationMode) -> DestinationMode {
    match m {
        w::DestinationMode::Append => DestinationMode::Append,
        w::DestinationMode::Overwrite => DestinationMode::Overwrite,
        w::DestinationMode::AppendDedup => DestinationMode::AppendDedup,
    }
}

pub fn message(m: w::Message) -> Message {
    match m {
        w::Message::Batch(b) => Message::Batch(Batch {
            stream: b.stream,
            records: b.records,
        }),
        w::Message::State(s) => Message::State(StreamState {
            stream: s.stream,
            state: s.state,
        }),
    }
}

pub fn reported(e: w::Error) -> ReportedError {
    match e {
        w::Error::Config(m) => ReportedError::Config(m),
        w::Error::Auth(m) => ReportedError::Auth(m),
        w::Error::Transient(m) => ReportedError::Transient(m),
        w::Error::RateLimited(r) => ReportedError::RateLimited {
            retry_after: Duration::from_millis(r.retry_after_ms),
            message: r.message,
        },
        w::Error::Fatal(m) => ReportedError::Fatal(m),
    }
}
