//! A sandboxed destination instance and its writer.

use wasmtime::component::ResourceAny;

use super::bindings::destination::Destination;
use super::bindings::types as w;
use super::call::{Guarded, timed};
use super::convert;
use super::sandbox::ConnectorState;
use crate::protocol::{Batch, ConfiguredCatalog, ConnectorError, DestinationWriter, Spec};

/// One sandboxed instance of a destination connector.
pub struct DestinationInstance {
    g: Guarded,
    bindings: Destination,
}

impl DestinationInstance {
    pub(super) fn new(store: wasmtime::Store<ConnectorState>, bindings: Destination) -> Self {
        DestinationInstance {
            g: Guarded::new(store),
            bindings,
        }
    }

    /// `spec()`.
    pub async fn spec(&mut self) -> Result<Spec, ConnectorError> {
        self.g.enter("spec")?;
        let limit = self.g.limit();
        let api = self.bindings.sluice_connector_destination_connector();
        let r = timed(limit, api.call_spec(&mut self.g.store)).await.map(Ok);
        let spec = self.g.leave("spec", r)?;
        convert::spec(spec).map_err(|f| self.g.protocol("spec", f))
    }

    /// `check(config)`.
    pub async fn check(&mut self, config: &String) -> Result<(), ConnectorError> {
        self.g.enter("check")?;
        let limit = self.g.limit();
        let api = self.bindings.sluice_connector_destination_connector();
        let r = timed(limit, api.call_check(&mut self.g.store, config)).await;
        self.g.leave("check", r)
    }

    /// `open(config, catalog)`: consumes the instance into a writer.
    pub async fn open(
        mut self,
        config: &String,
        catalog: &ConfiguredCatalog,
    ) -> Result<WasmWriter, ConnectorError> {
        self.g.enter("open")?;
        let limit = self.g.limit();
        let api = self.bindings.sluice_connector_destination_connector();
        let catalog = convert::configured_catalog(catalog);
        let r = timed(limit, api.call_open(&mut self.g.store, config, &catalog)).await;
        let writer = self.g.leave("open", r)?;
        Ok(WasmWriter {
            g: self.g,
            bindings: self.bindings,
            writer,
        })
    }
}

/// A write in progress inside a sandbox.
pub struct WasmWriter {
    g: Guarded,
    bindings: Destination,
    writer: ResourceAny,
}

impl DestinationWriter for WasmWriter {
    fn name(&self) -> &str {
        self.g.name()
    }

    async fn write(&mut self, batch: Batch) -> Result<(), ConnectorError> {
        self.g.enter("write")?;
        let limit = self.g.limit();
        let api = self
            .bindings
            .sluice_connector_destination_connector()
            .writer();
        let batch = w::Batch {
            stream: batch.stream,
            records: batch.records,
        };
        let r = timed(
            limit,
            api.call_write(&mut self.g.store, self.writer, &batch),
        )
        .await;
        self.g.leave("write", r)
    }

    async fn flush(&mut self) -> Result<(), ConnectorError> {
        self.g.enter("flush")?;
        let limit = self.g.limit();
        let api = self
            .bindings
            .sluice_connector_destination_connector()
            .writer();
        let r = timed(limit, api.call_flush(&mut self.g.store, self.writer)).await;
        self.g.leave("flush", r)
    }
}
