//! One connector instance's store state: its WASI context (built from its grant), its limits,
//! its deadline and its handle on the run log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreContextMut, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::{bundle, logging, types};
use super::log::RunLog;
use super::stdio::LogStream;
use crate::boundary::events::EventLog;
use crate::capability::bundle::Bundle;
use crate::capability::net::{HttpHooks, NetPolicy, Resolve};
use crate::capability::{Database, Preopen, fs};
use crate::protocol::LogLevel;

/// Resource limits of one connector instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Maximum linear memory, in bytes.
    pub memory: u64,
    /// Maximum wall-clock time of one call into the connector.
    pub call_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 512 << 20,
            call_timeout: Duration::from_secs(60),
        }
    }
}

/// What one sandbox is given.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    /// Limits.
    pub limits: Limits,
    /// Directories preopened for it.
    pub dirs: Vec<Preopen>,
    /// What it may send; `None`: no network (every request refused and recorded).
    pub net: Option<Arc<NetPolicy>>,
    /// Where its logs and output go.
    pub log: RunLog,
    /// Where what it did and was refused is recorded.
    pub events: EventLog,
    /// Databases it may open through `sluice:connector/sql`.
    pub sql: Vec<Arc<Database>>,
}

/// Raised (as a trap) when a call runs past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline of {0:?} exceeded")]
pub struct DeadlineExceeded(pub Duration);

/// Raised (as a trap) when memory would grow past the limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {requested})")]
pub struct MemoryLimitExceeded {
    /// The limit.
    pub limit: u64,
    /// The size asked for.
    pub requested: u64,
}

/// Store data of one connector instance.
pub struct ConnectorState {
    name: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: HttpHooks,
    limits: Limits,
    deadline: Option<Instant>,
    log: RunLog,
    events: EventLog,
    sql: Vec<Arc<Database>>,
    /// SQL sessions the connector holds open now.
    pub(crate) sql_open: usize,
    bundle: Arc<Bundle>,
}

impl ConnectorState {
    /// A sandbox for `name`: no environment, no arguments, no sockets, only the granted
    /// directories and outbound requests, stdio into the run log.
    pub fn new(
        name: &str,
        sandbox: &Sandbox,
        resolver: &Arc<dyn Resolve>,
        bundle: Arc<Bundle>,
    ) -> Result<Self, fs::FsGrantError> {
        let mut builder = WasiCtxBuilder::new();
        // File I/O runs inline on the calling task instead of a blocking-pool hop per call.
        builder.allow_blocking_current_thread(true);
        builder.stdout(LogStream::new(name, LogLevel::Info, sandbox.log.clone()));
        builder.stderr(LogStream::new(name, LogLevel::Warn, sandbox.log.clone()));
        builder
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        fs::apply(&mut builder, &sandbox.dirs)?;
        let policy = match &sandbox.net {
            Some(p) => p.clone(),
            None => Arc::new(NetPolicy::deny_all(
                name,
                resolver.clone(),
                sandbox.events.clone(),
            )),
        };
        Ok(ConnectorState {
            name: name.into(),
            wasi: builder.build(),
            table: {
                // Every stream, field, request and session a guest makes is an entry: bounded.
                let mut t = ResourceTable::new();
                t.set_max_capacity(crate::boundary::limits::RESOURCE_TABLE_ENTRIES);
                t
            },
            http: WasiHttpCtx::new(),
            hooks: HttpHooks::new(policy),
            limits: sandbox.limits,
            deadline: None,
            log: sandbox.log.clone(),
            events: sandbox.events.clone(),
            sql: sandbox.sql.clone(),
            sql_open: 0,
            bundle,
        })
    }

    /// Where refusals of this sandbox are recorded.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// The granted database named `name`, if any.
    pub fn database(&self, name: &str) -> Option<Arc<Database>> {
        self.sql.iter().find(|d| d.name == name).cloned()
    }

    /// The table of resources the connector holds handles to.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The connector's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The run log this connector writes to.
    pub fn log(&self) -> &RunLog {
        &self.log
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Start the clock for one call.
    pub fn arm_deadline(&mut self) {
        self.deadline = Some(Instant::now() + self.limits.call_timeout);
    }

    /// Stop the clock.
    pub fn disarm_deadline(&mut self) {
        self.deadline = None;
    }

    /// Called on every epoch tick while the connector runs: yield to other tasks, or stop the
    /// call once its deadline has passed.
    pub fn on_epoch(ctx: StoreContextMut<'_, Self>) -> wasmtime::Result<UpdateDeadline> {
        let state = ctx.data();
        match state.deadline {
            Some(d) if Instant::now() >= d => {
                Err(DeadlineExceeded(state.limits.call_timeout).into())
            }
            _ => Ok(UpdateDeadline::Yield(1)),
        }
    }
}

impl WasiView for ConnectorState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ConnectorState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl ResourceLimiter for ConnectorState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.memory {
            return Err(MemoryLimitExceeded {
                limit: self.limits.memory,
                requested: desired as u64,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// The `types` interface has no functions; the trait only marks it as provided.
impl types::Host for ConnectorState {}

impl logging::Host for ConnectorState {
    fn log(&mut self, level: logging::Level, message: String) {
        let level = match level {
            logging::Level::Trace => LogLevel::Trace,
            logging::Level::Debug => LogLevel::Debug,
            logging::Level::Info => LogLevel::Info,
            logging::Level::Warn => LogLevel::Warn,
            logging::Level::Error => LogLevel::Error,
        };
        self.log.push(&self.name, level, &message);
    }
}

/// The files packed into the component: read-only, its own.
impl bundle::Host for ConnectorState {
    fn names(&mut self) -> Vec<String> {
        self.bundle.names()
    }

    fn read(&mut self, name: String) -> Option<Vec<u8>> {
        self.bundle.get(&name).map(<[u8]>::to_vec)
    }
}
