//! The WebAssembly runtime: one engine, a cache of compiled components, and one sandboxed store
//! per connector instance with a memory limit, a per-call deadline and a bounded stack.
//!
//! Default deny: a store gets no environment, no arguments, no sockets (the `wasi:sockets`
//! interfaces are not even in the linker), no directories but those its grant names, and its
//! stdout/stderr go to the run log.

mod bindings;
mod cache;
mod call;
mod classify;
mod convert;
mod destination;
mod fs_events;
pub mod log;
mod sandbox;
mod source;
mod sql;
mod stdio;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

pub use cache::CacheOutcome;
pub use destination::{DestinationInstance, WasmWriter};
pub use log::{LineFilter, RunLog};
pub use sandbox::{ConnectorState, Limits, Sandbox};
pub use source::{SourceInstance, WasmReader};

use crate::capability::bundle::Bundle;
use crate::capability::manifest::Manifest;
use crate::capability::net::{Resolve, SystemResolver};
use crate::protocol::{ConnectorError, ConnectorKind, Failure};
use bindings::destination::{Destination, DestinationPre};
use bindings::source::{Source, SourcePre};

/// The interface names a component must export to be a connector of each kind.
const SOURCE_EXPORT: &str = "sluice:connector/source-connector@0.1.0";
const DESTINATION_EXPORT: &str = "sluice:connector/destination-connector@0.1.0";

/// How often the epoch ticks: the granularity of deadlines and of yielding to other tasks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// The key cache entries are authenticated with (the keyring's
    /// [`cache_key`](crate::boundary::crypto::Keyring::cache_key)); `None` draws one for this
    /// process, so entries of other processes are recompiled rather than trusted.
    pub cache_key: Option<zeroize::Zeroizing<[u8; 32]>>,
    /// Maximum WebAssembly stack per call, in bytes.
    pub max_wasm_stack: usize,
    /// Pre-reserve slots for this many concurrent instances (the pooling allocator): faster
    /// instantiation for hosts that start many. `None` allocates on demand.
    pub pooling: Option<Pooling>,
    /// How outbound requests' host names are resolved (the system's resolver by default).
    pub resolver: Arc<dyn Resolve>,
}

/// Pooling allocator sizing.
#[derive(Debug, Clone, Copy)]
pub struct Pooling {
    /// Instances alive at once.
    pub instances: u32,
    /// Maximum linear memory per instance, in bytes.
    pub max_memory: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            cache_key: None,
            max_wasm_stack: 1 << 20,
            pooling: None,
            resolver: Arc::new(SystemResolver),
        }
    }
}

/// Why the runtime or a component could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be configured.
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    /// The connector file could not be read.
    #[error("cannot read connector {}: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a component that implements the contract.
    #[error("{} is not a sluice connector: {reason}", path.display())]
    NotAConnector {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The component imports something no sandbox is ever given (sockets, say).
    #[error("{} is refused: {reason}", path.display())]
    Forbidden {
        /// The path.
        path: PathBuf,
        /// What it imports and what it may import instead.
        reason: String,
    },
}

/// Why component bytes cannot be loaded as a connector.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a component implementing the contract (or no valid manifest).
    #[error("{0}")]
    NotAConnector(String),
    /// It imports something no sandbox is given.
    #[error("{0}")]
    Forbidden(String),
}

/// The engine, the linkers and the compiled-component cache. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    source_linker: Linker<ConnectorState>,
    destination_linker: Linker<ConnectorState>,
    cache: cache::ComponentCache,
    resolver: Arc<dyn Resolve>,
}

impl Runtime {
    /// Configure the engine and start its epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Arc<Self>, RuntimeError> {
        let engine_err = |e: wasmtime::Error| RuntimeError::Engine(e.to_string());
        let mut c = Config::new();
        c.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .async_stack_size(config.max_wasm_stack + (1 << 20))
            .parallel_compilation(true);
        if let Some(p) = config.pooling {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(p.instances)
                .total_core_instances(p.instances * 4)
                .total_memories(p.instances * 2)
                .total_tables(p.instances * 4)
                .total_stacks(p.instances)
                .max_memory_size(p.max_memory as usize);
            c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&c).map_err(engine_err)?;
        let source_linker = linker(&engine, ConnectorKind::Source).map_err(engine_err)?;
        let destination_linker = linker(&engine, ConnectorKind::Destination).map_err(engine_err)?;
        start_epoch_ticker(&engine);
        let key = config.cache_key.unwrap_or_else(|| {
            let mut k = zeroize::Zeroizing::new([0u8; 32]);
            crate::boundary::crypto::random(k.as_mut());
            k
        });
        let cache = cache::ComponentCache::new(&engine, config.cache_dir, key);
        Ok(Arc::new(Runtime {
            engine,
            source_linker,
            destination_linker,
            cache,
            resolver: config.resolver,
        }))
    }

    /// The resolver outbound requests use.
    pub fn resolver(&self) -> &Arc<dyn Resolve> {
        &self.resolver
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Load a connector component from a file: compile it (or take it from the cache), work out
    /// whether it is a source or a destination, and link it.
    pub fn load(&self, path: &Path) -> Result<Connector, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("connector")
            .replace('_', "-");
        self.load_bytes(&name, &bytes).map_err(|e| match e {
            LoadError::NotAConnector(reason) => RuntimeError::NotAConnector {
                path: path.to_path_buf(),
                reason,
            },
            LoadError::Forbidden(reason) => RuntimeError::Forbidden {
                path: path.to_path_buf(),
                reason,
            },
        })
    }

    /// Load a connector component from memory, naming it `name`.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Connector, LoadError> {
        self.load_inner(name, bytes, true)
    }

    /// Compile and check a component exactly as [`Runtime::load_bytes`] does, without reading
    /// or writing the compiled cache: for vetting a connector before anything is kept.
    pub fn load_uncached(&self, name: &str, bytes: &[u8]) -> Result<Connector, LoadError> {
        self.load_inner(name, bytes, false)
    }

    /// Keep a loaded connector's compiled code in the cache (so its first run skips
    /// Cranelift); returns the cache file, or `None` when there is no cache.
    pub fn cache_compiled(&self, connector: &Connector) -> Result<Option<PathBuf>, RuntimeError> {
        self.cache
            .insert(&connector.digest, &connector.component)
            .map_err(|e| RuntimeError::Engine(format!("cannot write the compiled cache: {e:#}")))
    }

    /// The cache file a component with this digest is compiled into, if there is a cache.
    pub fn cache_entry(&self, digest: &str) -> Option<PathBuf> {
        self.cache.entry_path(digest)
    }

    fn load_inner(&self, name: &str, bytes: &[u8], cached: bool) -> Result<Connector, LoadError> {
        let not = LoadError::NotAConnector;
        if wasmtime::Engine::detect_precompiled(bytes).is_some() {
            return Err(not(
                "it is precompiled native code; give the .wasm component".into(),
            ));
        }
        let manifest = Manifest::from_component(bytes).map_err(|e| not(e.to_string()))?;
        let bundle = Bundle::from_component(bytes).map_err(|e| not(e.to_string()))?;
        let digest = crate::boundary::crypto::sha256_hex(bytes);
        let compile_err = |e: wasmtime::Error| {
            not(format!(
                "it does not compile as a WebAssembly component: {e:#}"
            ))
        };
        let (component, cache) = if cached {
            self.cache
                .load(&self.engine, bytes, &digest)
                .map_err(compile_err)?
        } else {
            (
                Component::new(&self.engine, bytes).map_err(compile_err)?,
                CacheOutcome::Uncached,
            )
        };
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let has = |e: &str| exports.iter().any(|x| x == e);
        let exported = match (has(SOURCE_EXPORT), has(DESTINATION_EXPORT)) {
            (true, false) => Some(ConnectorKind::Source),
            (false, true) => Some(ConnectorKind::Destination),
            _ => None,
        };
        if let Some(kind) = exported
            && kind != manifest.kind
        {
            return Err(not(format!(
                "its manifest says it is a {}, but it exports the {kind} interface",
                manifest.kind
            )));
        }
        let pre = match (has(SOURCE_EXPORT), has(DESTINATION_EXPORT)) {
            (true, false) => {
                let pre = self
                    .source_linker
                    .instantiate_pre(&component)
                    .map_err(|e| LoadError::Forbidden(link_error(&e)))?;
                ConnectorPre::Source(SourcePre::new(pre).map_err(|e| not(format!("{e:#}")))?)
            }
            (false, true) => {
                let pre = self
                    .destination_linker
                    .instantiate_pre(&component)
                    .map_err(|e| LoadError::Forbidden(link_error(&e)))?;
                ConnectorPre::Destination(
                    DestinationPre::new(pre).map_err(|e| not(format!("{e:#}")))?,
                )
            }
            (true, true) => {
                return Err(not(
                    "it exports both the source and the destination interface".into(),
                ));
            }
            (false, false) => {
                return Err(not(format!(
                    "it exports neither `{SOURCE_EXPORT}` nor `{DESTINATION_EXPORT}` \
                     (it exports: {}); build it with sluice-sdk's export macros",
                    if exports.is_empty() {
                        "nothing".to_string()
                    } else {
                        exports.join(", ")
                    }
                )));
            }
        };
        Ok(Connector {
            name: name.to_string(),
            digest,
            cache,
            pre,
            component,
            manifest,
            bundle: Arc::new(bundle),
        })
    }

    fn store(
        &self,
        connector: &Connector,
        sandbox: &Sandbox,
    ) -> Result<Store<ConnectorState>, ConnectorError> {
        let state = ConnectorState::new(
            &connector.name,
            sandbox,
            &self.resolver,
            connector.bundle.clone(),
        )
        .map_err(|e| {
            ConnectorError::new(
                &connector.name,
                "instantiate",
                Failure::Start {
                    message: e.to_string(),
                },
            )
        })?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s);
        store.epoch_deadline_callback(ConnectorState::on_epoch);
        Ok(store)
    }
}

fn link_error(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    let hint = if text.contains("wasi:sockets") {
        "; sluice never gives connectors sockets: outbound requests go through \
         `wasi:http/outgoing-handler`, which the host filters by the connection's grant"
    } else {
        ""
    };
    format!(
        "it needs an import the sandbox does not provide ({text}){hint}; connectors may import \
         `sluice:connector/logging`, `sql` and `bundle`, `wasi:http/outgoing-handler` and WASI \
         0.2 clocks, random, \
         cli and filesystem, nothing else"
    )
}

/// A compiled, linked connector, ready to be instantiated any number of times.
pub struct Connector {
    name: String,
    digest: String,
    cache: CacheOutcome,
    pre: ConnectorPre,
    component: Component,
    manifest: Manifest,
    bundle: Arc<Bundle>,
}

enum ConnectorPre {
    Source(SourcePre<ConnectorState>),
    Destination(DestinationPre<ConnectorState>),
}

impl Connector {
    /// Its name (from the file name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rename it (for messages and logs).
    pub fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }

    /// Hex SHA-256 of the component.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// What it says it is and asks for.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The files packed into it (none for most connectors).
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// Whether loading hit the compiled cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// Source or destination.
    pub fn kind(&self) -> ConnectorKind {
        match self.pre {
            ConnectorPre::Source(_) => ConnectorKind::Source,
            ConnectorPre::Destination(_) => ConnectorKind::Destination,
        }
    }

    fn start_error(&self, message: String) -> ConnectorError {
        ConnectorError::new(&self.name, "instantiate", Failure::Start { message })
    }

    /// A fresh sandboxed instance of this source.
    pub async fn source(
        &self,
        runtime: &Runtime,
        sandbox: &Sandbox,
    ) -> Result<SourceInstance, ConnectorError> {
        let ConnectorPre::Source(pre) = &self.pre else {
            return Err(self.start_error(format!("`{}` is a destination, not a source", self.name)));
        };
        let mut store = runtime.store(self, sandbox)?;
        store.data_mut().arm_deadline();
        store.set_epoch_deadline(1);
        let bindings: Source = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify::trap(&self.name, "instantiate", &store, e))?;
        store.data_mut().disarm_deadline();
        Ok(SourceInstance::new(store, bindings))
    }

    /// A fresh sandboxed instance of this destination.
    pub async fn destination(
        &self,
        runtime: &Runtime,
        sandbox: &Sandbox,
    ) -> Result<DestinationInstance, ConnectorError> {
        let ConnectorPre::Destination(pre) = &self.pre else {
            return Err(self.start_error(format!("`{}` is a source, not a destination", self.name)));
        };
        let mut store = runtime.store(self, sandbox)?;
        store.data_mut().arm_deadline();
        store.set_epoch_deadline(1);
        let bindings: Destination = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify::trap(&self.name, "instantiate", &store, e))?;
        store.data_mut().disarm_deadline();
        Ok(DestinationInstance::new(store, bindings))
    }
}

/// WASI I/O resources live in the store's resource table.
struct HasIo;

impl wasmtime::component::HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// A linker with exactly what connectors may import: the sluice interfaces, the WASI 0.2
/// interfaces a Rust std program needs, and outbound `wasi:http` (filtered by the send hook);
/// never `wasi:sockets`.
fn linker(engine: &Engine, kind: ConnectorKind) -> wasmtime::Result<Linker<ConnectorState>> {
    use wasmtime_wasi::WasiView;
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi_io::bindings::wasi::io;

    type T = ConnectorState;
    let mut l = Linker::<T>::new(engine);
    fn table(t: &mut ConnectorState) -> &mut ResourceTable {
        WasiView::ctx(t).table
    }
    io::error::add_to_linker::<T, HasIo>(&mut l, table)?;
    io::poll::add_to_linker::<T, HasIo>(&mut l, table)?;
    io::streams::add_to_linker::<T, HasIo>(&mut l, table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(&mut l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(&mut l, T::clocks)?;
    filesystem::types::add_to_linker::<T, WasiFilesystem>(&mut l, T::filesystem)?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(&mut l, T::filesystem)?;
    random::random::add_to_linker::<T, WasiRandom>(&mut l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(&mut l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(&mut l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(&mut l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(&mut l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(&mut l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(&mut l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(&mut l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(&mut l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(&mut l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(&mut l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(&mut l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(&mut l, T::cli)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut l)?;
    fs_events::add_to_linker(&mut l)?;
    match kind {
        ConnectorKind::Source => Source::add_to_linker::<T, HasSelf<T>>(&mut l, |s| s)?,
        ConnectorKind::Destination => Destination::add_to_linker::<T, HasSelf<T>>(&mut l, |s| s)?,
    }
    Ok(l)
}

/// Tick the engine's epoch until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
}
