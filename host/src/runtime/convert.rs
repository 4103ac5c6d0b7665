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

/// A refusal of guest data past a host limit, naming it.
fn too_big(what: &str, found: usize, max: usize) -> Failure {
    Failure::Protocol {
        message: format!(
            "its {what} is {found} bytes, over the host's limit of {max} (not configurable)"
        ),
    }
}

/// Check JSON text a connector returned against the host's shape limits.
fn shaped(field: &str, text: &str) -> Result<(), Failure> {
    crate::boundary::limits::check_shape(text.as_bytes(), &Default::default()).map_err(|e| {
        Failure::Protocol {
            message: format!("its {field} {e}"),
        }
    })
}

pub fn spec(s: w::ConnectorSpec) -> Result<Spec, Failure> {
    use crate::boundary::limits::SPEC_BYTES;
    let size = s.config_schema.len() + s.documentation_url.as_ref().map_or(0, String::len);
    if size > SPEC_BYTES {
        return Err(too_big("spec", size, SPEC_BYTES));
    }
    shaped("config schema", &s.config_schema)?;
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
    use crate::boundary::limits::{CATALOG_BYTES, CATALOG_STREAMS};
    if c.streams.len() > CATALOG_STREAMS {
        return Err(Failure::Protocol {
            message: format!(
                "its catalog lists {} streams, over the host's limit of {CATALOG_STREAMS} (not \
                 configurable)",
                c.streams.len()
            ),
        });
    }
    let size: usize = c
        .streams
        .iter()
        .map(|s| s.name.len() + s.json_schema.len())
        .sum();
    if size > CATALOG_BYTES {
        return Err(too_big("catalog", size, CATALOG_BYTES));
    }
    let mut streams = Vec::with_capacity(c.streams.len());
    for s in c.streams {
        shaped(&format!("schema of stream `{}`", s.name), &s.json_schema)?;
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

pub fn message(m: w::Message) -> Result<Message, Failure> {
    Ok(match m {
        w::Message::Batch(b) => Message::Batch(Batch {
            stream: b.stream,
            records: b.records,
        }),
        w::Message::State(s) => {
            use crate::boundary::limits::STATE_BYTES;
            if s.state.len() > STATE_BYTES {
                return Err(too_big(
                    &format!("state for stream `{}`", s.stream),
                    s.state.len(),
                    STATE_BYTES,
                ));
            }
            shaped(&format!("state for stream `{}`", s.stream), &s.state)?;
            Message::State(StreamState {
                stream: s.stream,
                state: s.state,
            })
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boundary::limits::{CATALOG_STREAMS, SPEC_BYTES, STATE_BYTES};

    fn protocol(f: Failure) -> String {
        match f {
            Failure::Protocol { message } => message,
            other => panic!("expected a protocol failure, got {other:?}"),
        }
    }

    #[test]
    fn specs_catalogs_and_states_past_the_host_limits_are_refused_by_name() {
        let spec = |schema: String| w::ConnectorSpec {
            config_schema: schema,
            documentation_url: None,
            supported_destination_modes: vec![],
        };
        assert!(super::spec(spec("{\"type\":\"object\"}".into())).is_ok());
        let big = format!("{{\"d\":\"{}\"}}", "x".repeat(SPEC_BYTES));
        assert!(protocol(super::spec(spec(big)).unwrap_err()).contains("its spec is"));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(protocol(super::spec(spec(deep)).unwrap_err()).contains("nesting depth"));

        let stream = |i: usize| w::StreamDescriptor {
            name: format!("s{i}"),
            json_schema: "{}".into(),
            supported_sync_modes: vec![w::SyncMode::FullRefresh],
            default_cursor_field: vec![],
            primary_key: vec![],
        };
        let many = w::Catalog {
            streams: (0..=CATALOG_STREAMS).map(stream).collect(),
        };
        assert!(protocol(catalog(many).unwrap_err()).contains("streams, over"));
        let few = w::Catalog {
            streams: (0..3).map(stream).collect(),
        };
        assert_eq!(catalog(few).unwrap().streams.len(), 3);

        let state = |text: String| {
            message(w::Message::State(w::StreamState {
                stream: "users".into(),
                state: text,
            }))
        };
        assert!(state("{\"cursor\":\"2024\"}".into()).is_ok());
        let big = format!("\"{}\"", "x".repeat(STATE_BYTES));
        assert!(protocol(state(big).unwrap_err()).contains("state for stream `users`"));
    }
}
