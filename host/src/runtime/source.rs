//! A sandboxed source instance and its reader.

use wasmtime::component::ResourceAny;

use super::bindings::source::Source;
use super::call::{Guarded, timed};
use super::convert;
use super::sandbox::ConnectorState;
use crate::protocol::{
    Catalog, ConfiguredCatalog, ConnectorError, Message, SourceReader, Spec, StreamState,
};

/// One sandboxed instance of a source connector.
pub struct SourceInstance {
    g: Guarded,
    bindings: Source,
}

impl SourceInstance {
    pub(super) fn new(store: wasmtime::Store<ConnectorState>, bindings: Source) -> Self {
        SourceInstance {
            g: Guarded::new(store),
            bindings,
        }
    }

    /// `spec()`.
    pub async fn spec(&mut self) -> Result<Spec, ConnectorError> {
        self.g.enter("spec")?;
        let limit = self.g.limit();
        let api = self.bindings.sluice_connector_source_connector();
        let r = timed(limit, api.call_spec(&mut self.g.store)).await.map(Ok);
        let spec = self.g.leave("spec", r)?;
        convert::spec(spec).map_err(|f| self.g.protocol("spec", f))
    }

    /// `check(config)`.
    pub async fn check(&mut self, config: &String) -> Result<(), ConnectorError> {
        self.g.enter("check")?;
        let limit = self.g.limit();
        let api = self.bindings.sluice_connector_source_connector();
        let r = timed(limit, api.call_check(&mut self.g.store, config)).await;
        self.g.leave("check", r)
    }

    /// `discover(config)`.
    pub async fn discover(&mut self, config: &String) -> Result<Catalog, ConnectorError> {
        self.g.enter("discover")?;
        let limit = self.g.limit();
        let api = self.bindings.sluice_connector_source_connector();
        let r = timed(limit, api.call_discover(&mut self.g.store, config)).await;
        let catalog = self.g.leave("discover", r)?;
        convert::catalog(catalog).map_err(|f| self.g.protocol("discover", f))
    }

    /// `read(config, catalog, state)`: consumes the instance into a reader.
    pub async fn read(
        mut self,
        config: &String,
        catalog: &ConfiguredCatalog,
        state: &[StreamState],
    ) -> Result<WasmReader, ConnectorError> {
        self.g.enter("read")?;
        let limit = self.g.limit();
        let api = self.bindings.sluice_connector_source_connector();
        let state: Vec<_> = state
            .iter()
            .map(|s| super::bindings::types::StreamState {
                stream: s.stream.clone(),
                state: s.state.clone(),
            })
            .collect();
        let catalog = convert::configured_catalog(catalog);
        let r = timed(
            limit,
            api.call_read(&mut self.g.store, config, &catalog, &state),
        )
        .await;
        let reader = self.g.leave("read", r)?;
        Ok(WasmReader {
            g: self.g,
            bindings: self.bindings,
            reader,
        })
    }
}

/// A read in progress inside a sandbox.
pub struct WasmReader {
    g: Guarded,
    bindings: Source,
    reader: ResourceAny,
}

impl SourceReader for WasmReader {
    fn name(&self) -> &str {
        self.g.name()
    }

    async fn next(&mut self, max_records: u32) -> Result<Option<Message>, ConnectorError> {
        self.g.enter("next")?;
        let limit = self.g.limit();
        let api = self.bindings.sluice_connector_source_connector().reader();
        let r = timed(
            limit,
            api.call_next(&mut self.g.store, self.reader, max_records),
        )
        .await;
        match self.g.leave("next", r)? {
            Some(m) => convert::message(m)
                .map(Some)
                .map_err(|f| self.g.protocol("next", f)),
            None => Ok(None),
        }
    }
}
