//! The same connectors compiled natively and run in-process behind the sync engine's traits:
//! the ceiling the sandbox is measured against, and a reference for its output.

use sluice::protocol::{
    Batch, ConfiguredCatalog, ConnectorError, DestinationMode, DestinationWriter, Failure, Message,
    ReportedError, SourceReader, StreamState, SyncMode,
};
use sluice_sdk::{Destination, ReaderDriver, Source, Writer};

fn reported(name: &str, call: &'static str, e: sluice_sdk::Error) -> ConnectorError {
    let r = match e {
        sluice_sdk::Error::Config(m) => ReportedError::Config(m),
        sluice_sdk::Error::Auth(m) => ReportedError::Auth(m),
        sluice_sdk::Error::Transient(m) => ReportedError::Transient(m),
        sluice_sdk::Error::RateLimited {
            retry_after,
            message,
        } => ReportedError::RateLimited {
            retry_after,
            message,
        },
        sluice_sdk::Error::Fatal(m) => ReportedError::Fatal(m),
    };
    ConnectorError::new(name, call, Failure::Reported(r))
}

/// The SDK's view of a host catalog.
pub fn sdk_catalog(c: &ConfiguredCatalog) -> sluice_sdk::ConfiguredCatalog {
    sluice_sdk::ConfiguredCatalog {
        streams: c
            .streams
            .iter()
            .map(|s| sluice_sdk::ConfiguredStream {
                stream: sluice_sdk::Stream {
                    name: s.stream.name.clone(),
                    json_schema: s.stream.json_schema.clone(),
                    sync_modes: vec![],
                    cursor_field: s.stream.default_cursor_field.clone(),
                    primary_key: s.stream.primary_key.clone(),
                },
                sync_mode: match s.sync_mode {
                    SyncMode::FullRefresh => sluice_sdk::SyncMode::FullRefresh,
                    SyncMode::Incremental => sluice_sdk::SyncMode::Incremental,
                },
                destination_mode: match s.destination_mode {
                    DestinationMode::Append => sluice_sdk::DestinationMode::Append,
                    DestinationMode::Overwrite => sluice_sdk::DestinationMode::Overwrite,
                    DestinationMode::AppendDedup => sluice_sdk::DestinationMode::AppendDedup,
                },
                cursor_field: s.cursor_field.clone(),
                primary_key: s.primary_key.clone(),
            })
            .collect(),
    }
}

/// The host's view of an SDK catalog, every stream full refresh and overwrite.
pub fn host_catalog(c: &sluice_sdk::Catalog) -> ConfiguredCatalog {
    ConfiguredCatalog {
        streams: c
            .streams
            .iter()
            .map(|s| sluice::protocol::ConfiguredStream {
                stream: sluice::protocol::StreamDescriptor {
                    name: s.name.clone(),
                    json_schema: s.json_schema.clone(),
                    supported_sync_modes: vec![SyncMode::FullRefresh],
                    default_cursor_field: s.cursor_field.clone(),
                    primary_key: s.primary_key.clone(),
                },
                sync_mode: SyncMode::FullRefresh,
                destination_mode: DestinationMode::Overwrite,
                cursor_field: vec![],
                primary_key: vec![],
            })
            .collect(),
    }
}

/// A native source reader.
pub struct NativeReader<S: Source> {
    name: String,
    driver: ReaderDriver<S::Reader>,
}

impl<S: Source> NativeReader<S> {
    /// Open a native read, exactly as the sandbox's `read` would.
    pub fn open(
        name: &str,
        config: &str,
        catalog: &ConfiguredCatalog,
        state: &[StreamState],
    ) -> Result<Self, ConnectorError> {
        let state = state
            .iter()
            .map(|s| (s.stream.clone(), s.state.clone()))
            .collect();
        let driver = sluice_sdk::source::wire::read::<S>(config, sdk_catalog(catalog), state)
            .map_err(|e| reported(name, "read", e))?;
        Ok(NativeReader {
            name: name.to_string(),
            driver,
        })
    }
}

impl<S: Source> SourceReader for NativeReader<S>
where
    S::Reader: Send,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn next(&mut self, max_records: u32) -> Result<Option<Message>, ConnectorError> {
        let msg = self
            .driver
            .next(max_records)
            .map_err(|e| reported(&self.name, "next", e))?;
        Ok(msg.map(|m| match m {
            sluice_sdk::Message::Batch { stream, records } => {
                Message::Batch(Batch { stream, records })
            }
            sluice_sdk::Message::State { stream, state } => {
                Message::State(StreamState { stream, state })
            }
        }))
    }
}

/// A native destination writer.
pub struct NativeWriter<D: Destination> {
    name: String,
    writer: D::Writer,
}

impl<D: Destination> NativeWriter<D> {
    /// Open a native write.
    pub fn open(
        name: &str,
        config: &str,
        catalog: &ConfiguredCatalog,
    ) -> Result<Self, ConnectorError> {
        let writer = sluice_sdk::destination::wire::open::<D>(config, sdk_catalog(catalog))
            .map_err(|e| reported(name, "open", e))?;
        Ok(NativeWriter {
            name: name.to_string(),
            writer,
        })
    }
}

impl<D: Destination> DestinationWriter for NativeWriter<D>
where
    D::Writer: Send,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, batch: Batch) -> Result<(), ConnectorError> {
        let b = sluice_sdk::Batch {
            stream: &batch.stream,
            records: &batch.records,
        };
        self.writer
            .write(b)
            .map_err(|e| reported(&self.name, "write", e))
    }

    async fn flush(&mut self) -> Result<(), ConnectorError> {
        self.writer
            .flush()
            .map_err(|e| reported(&self.name, "flush", e))
    }
}

/// Checkpoints that go nowhere (benchmarks and reference runs have no store).
pub struct NoCheckpoints;

impl sluice::sync::Checkpoints for NoCheckpoints {
    type Error = std::convert::Infallible;
    async fn commit(
        &mut self,
        _states: Vec<StreamState>,
        _stats: Vec<sluice::store::StreamStats>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// source-faker → destination-file, both native, through the host's pump: every stream, full
/// refresh, overwrite, JSONL into `out`.
pub async fn faker_to_file(
    faker_config: &serde_json::Value,
    out: &std::path::Path,
    cfg: sluice::sync::PumpConfig,
) -> sluice::sync::PumpOutcome {
    use source_faker::Faker;
    let config = faker_config.to_string();
    let catalog =
        host_catalog(&sluice_sdk::source::wire::discover::<Faker>(&config).expect("discover"));
    faker_to_file_with(&config, catalog, out, cfg).await
}

/// Like [`faker_to_file`] with a chosen catalog.
pub async fn faker_to_file_with(
    config: &str,
    catalog: ConfiguredCatalog,
    out: &std::path::Path,
    cfg: sluice::sync::PumpConfig,
) -> sluice::sync::PumpOutcome {
    let reader = NativeReader::<source_faker::Faker>::open("source-faker", config, &catalog, &[])
        .expect("native read");
    let dest_config = serde_json::json!({ "path": out, "format": "jsonl" }).to_string();
    let writer = NativeWriter::<destination_file::FileDestination>::open(
        "destination-file",
        &dest_config,
        &catalog,
    )
    .expect("native open");
    sluice::sync::pump(
        reader,
        writer,
        std::sync::Arc::new(catalog),
        NoCheckpoints,
        cfg,
        Default::default(),
    )
    .await
}
