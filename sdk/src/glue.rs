//! The WebAssembly side of the contract: bindings generated from `wit/` and the adapters that
//! the export macros point them at. Connector authors never touch this module.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::destination::{self, Destination, Writer};
use crate::source::{self, Message, Reader, ReaderDriver, Source};
use crate::{Catalog, ConfiguredCatalog, ConfiguredStream, DestinationMode, Error, Spec, Stream};
use crate::{SyncMode, log::Level};

/// Bindings of the `source` world.
pub mod source_world {
    wit_bindgen::generate!({
        world: "source",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_source_world",
        default_bindings_module: "sluice_sdk::__private::source_world",
        runtime_path: "sluice_sdk::__private::wit_bindgen::rt",
    });
}

/// Bindings of the `destination` world; shared types come from the source world's module.
pub mod destination_world {
    wit_bindgen::generate!({
        world: "destination",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_destination_world",
        default_bindings_module: "sluice_sdk::__private::destination_world",
        runtime_path: "sluice_sdk::__private::wit_bindgen::rt",
        with: {
            "sluice:connector/types@0.1.0": crate::glue::source_world::sluice::connector::types,
            "sluice:connector/logging@0.1.0": crate::glue::source_world::sluice::connector::logging,
            "sluice:connector/sql@0.1.0": crate::glue::source_world::sluice::connector::sql,
            "sluice:connector/bundle@0.1.0": crate::glue::source_world::sluice::connector::bundle,
        },
    });
}

use destination_world::exports::sluice::connector::destination_connector as dst;
use source_world::exports::sluice::connector::source_connector as src;
use source_world::sluice::connector::{logging, types as w};

/// Send one line to the host's run log.
pub(crate) fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => logging::Level::Trace,
        Level::Debug => logging::Level::Debug,
        Level::Info => logging::Level::Info,
        Level::Warn => logging::Level::Warn,
        Level::Error => logging::Level::Error,
    };
    logging::log(level, message);
}

/// Route panic messages (`panicked at FILE:LINE:COL:\nMESSAGE`) to the run log, so the host can
/// say why a connector trapped.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            log(Level::Error, &info.to_string());
        }));
    });
}

/// The `source-connector` export, implemented for any [`Source`].
pub struct SourceExport<S>(PhantomData<S>);

impl<S: Source + 'static> src::Guest for SourceExport<S> {
    type Reader = SourceReader<S::Reader>;

    fn spec() -> w::ConnectorSpec {
        install_panic_hook();
        source::wire::spec::<S>().into()
    }

    fn check(config: w::Json) -> Result<(), w::Error> {
        install_panic_hook();
        Ok(source::wire::check::<S>(&config)?)
    }

    fn discover(config: w::Json) -> Result<w::Catalog, w::Error> {
        install_panic_hook();
        Ok(source::wire::discover::<S>(&config)?.into())
    }

    fn read(
        config: w::Json,
        catalog: w::ConfiguredCatalog,
        state: Vec<w::StreamState>,
    ) -> Result<src::Reader, w::Error> {
        install_panic_hook();
        let state = state.into_iter().map(|s| (s.stream, s.state)).collect();
        let driver = source::wire::read::<S>(&config, catalog.into(), state)?;
        Ok(src::Reader::new(SourceReader(RefCell::new(driver))))
    }
}

/// The `reader` resource, wrapping a [`ReaderDriver`].
pub struct SourceReader<R>(RefCell<ReaderDriver<R>>);

impl<R: Reader + 'static> src::GuestReader for SourceReader<R> {
    fn next(&self, max_records: u32) -> Result<Option<w::Message>, w::Error> {
        let msg = self.0.borrow_mut().next(max_records)?;
        Ok(msg.map(|m| match m {
            Message::Batch { stream, records } => w::Message::Batch(w::Batch { stream, records }),
            Message::State { stream, state } => w::Message::State(w::StreamState { stream, state }),
        }))
    }
}

/// The `destination-connector` export, implemented for any [`Destination`].
pub struct DestinationExport<D>(PhantomData<D>);

impl<D: Destination + 'static> dst::Guest for DestinationExport<D> {
    type Writer = DestinationWriter<D::Writer>;

    fn spec() -> w::ConnectorSpec {
        install_panic_hook();
        destination::wire::spec::<D>().into()
    }

    fn check(config: w::Json) -> Result<(), w::Error> {
        install_panic_hook();
        Ok(destination::wire::check::<D>(&config)?)
    }

    fn open(config: w::Json, catalog: w::ConfiguredCatalog) -> Result<dst::Writer, w::Error> {
        install_panic_hook();
        let writer = destination::wire::open::<D>(&config, catalog.into())?;
        Ok(dst::Writer::new(DestinationWriter(RefCell::new(writer))))
    }
}

/// The `writer` resource.
pub struct DestinationWriter<W>(RefCell<W>);

impl<W: Writer + 'static> dst::GuestWriter for DestinationWriter<W> {
    fn write(&self, batch: w::Batch) -> Result<(), w::Error> {
        let batch = crate::Batch {
            stream: &batch.stream,
            records: &batch.records,
        };
        Ok(self.0.borrow_mut().write(batch)?)
    }

    fn flush(&self) -> Result<(), w::Error> {
        Ok(self.0.borrow_mut().flush()?)
    }
}

impl From<Error> for w::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Config(m) => w::Error::Config(m),
            Error::Auth(m) => w::Error::Auth(m),
            Error::Transient(m) => w::Error::Transient(m),
            Error::RateLimited {
                retry_after,
                message,
            } => w::Error::RateLimited(w::RateLimit {
                retry_after_ms: retry_after.as_millis().try_into().unwrap_or(u64::MAX),
                message,
            }),
            Error::Fatal(m) => w::Error::Fatal(m),
        }
    }
}

impl From<Spec> for w::ConnectorSpec {
    fn from(s: Spec) -> Self {
        w::ConnectorSpec {
            config_schema: s.config_schema.to_string(),
            documentation_url: s.documentation_url,
            supported_destination_modes: s.destination_modes.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Catalog> for w::Catalog {
    fn from(c: Catalog) -> Self {
        w::Catalog {
            streams: c.streams.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Stream> for w::StreamDescriptor {
    fn from(s: Stream) -> Self {
        w::StreamDescriptor {
            name: s.name,
            json_schema: s.json_schema.to_string(),
            supported_sync_modes: s.sync_modes.into_iter().map(Into::into).collect(),
            default_cursor_field: s.cursor_field,
            primary_key: s.primary_key,
        }
    }
}

impl From<w::StreamDescriptor> for Stream {
    fn from(s: w::StreamDescriptor) -> Self {
        Stream {
            name: s.name,
            // The host sends back the schema the source produced; anything else reads as null.
            json_schema: serde_json::from_str(&s.json_schema).unwrap_or_default(),
            sync_modes: s.supported_sync_modes.into_iter().map(Into::into).collect(),
            cursor_field: s.default_cursor_field,
            primary_key: s.primary_key,
        }
    }
}

impl From<w::ConfiguredCatalog> for ConfiguredCatalog {
    fn from(c: w::ConfiguredCatalog) -> Self {
        ConfiguredCatalog {
            streams: c
                .streams
                .into_iter()
                .map(|s| ConfiguredStream {
                    stream: s.stream.into(),
                    sync_mode: s.sync_mode.into(),
                    destination_mode: s.destination_mode.into(),
                    cursor_field: s.cursor_field,
                    primary_key: s.primary_key,
                })
                .collect(),
        }
    }
}

impl From<SyncMode> for w::SyncMode {
    fn from(m: SyncMode) -> Self {
        match m {
            SyncMode::FullRefresh => w::SyncMode::FullRefresh,
            SyncMode::Incremental => w::SyncMode::Incremental,
        }
    }
}

impl From<w::SyncMode> for SyncMode {
    fn from(m: w::SyncMode) -> Self {
        match m {
            w::SyncMode::FullRefresh => SyncMode::FullRefresh,
            w::SyncMode::Incremental => SyncMode::Incremental,
        }
    }
}

impl From<DestinationMode> for w::DestinationMode {
    fn from(m: DestinationMode) -> Self {
        match m {
            DestinationMode::Append => w::DestinationMode::Append,
            DestinationMode::Overwrite => w::DestinationMode::Overwrite,
            DestinationMode::AppendDedup => w::DestinationMode::AppendDedup,
        }
    }
}

impl From<w::DestinationMode> for DestinationMode {
    fn from(m: w::DestinationMode) -> Self {
        match m {
            w::DestinationMode::Append => DestinationMode::Append,
            w::DestinationMode::Overwrite => DestinationMode::Overwrite,
            w::DestinationMode::AppendDedup => DestinationMode::AppendDedup,
        }
    }
}
