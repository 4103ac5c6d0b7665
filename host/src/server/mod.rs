//! What a `sluice serve` process runs besides answering HTTP: the registry of the runs it
//! started ([`runs`]), the scheduler ([`scheduler`]), the webhook outbox ([`webhooks`]), the
//! hourly purge ([`purge`]), building runnable connections from stored ones ([`resolve`]),
//! and, on a store a fleet shares, a queue worker ([`worker`]), which is also what
//! `sluice worker` runs alone.
//!
//! [`Server::start`] starts the background services and returns a [`ServerHandle`]; the HTTP
//! layer (`crate::api`) is given the [`Server`] to call and never starts or owns a service.
//! Nothing here knows HTTP.

pub mod purge;
pub mod resolve;
pub mod runs;
pub mod scheduler;
pub mod view;
pub mod webhooks;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::boundary::audit::NewEntry;
use crate::boundary::retention::{AUDIT_FLOOR, Keep};
use crate::marketplace::Location;
use crate::runtime::Runtime;
use crate::store::{Store, StoreError};
use runs::Running;
use scheduler::ScheduleRetry;
use webhooks::{WebhookConfig, Webhooks};

/// The services of one server, shared by its handlers and background tasks. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    /// The store (and data dir).
    pub store: Arc<Store>,
    /// Compiles and runs connectors.
    pub runtime: Arc<Runtime>,
    /// The index installs use when a request names none.
    pub default_index: Option<Location>,
    /// The runs this server started, for cancel and shutdown.
    pub running: Arc<Running>,
    /// The webhook sender (its guard and retry settings).
    pub webhooks: Arc<Webhooks>,
    /// Audit entries younger than this are never purged, and the API cannot set a shorter
    /// audit retention ([`AUDIT_FLOOR`] unless the operator said).
    pub audit_floor: Duration,
    /// On a store a fleet shares (PostgreSQL), this server's worker: its runs go through the
    /// queue, and it claims queued runs that need no labels. `None` on the embedded store.
    pub worker: Option<worker::WorkerConfig>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("data_dir", &self.store.dir())
            .field("running", &self.running.len())
            .finish_non_exhaustive()
    }
}

/// How a server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The index installs use when a request names none.
    pub default_index: Option<Location>,
    /// At most this many runs at once.
    pub max_runs: usize,
    /// How webhooks are delivered.
    pub webhooks: WebhookConfig,
    /// How failed scheduled runs are retried.
    pub retry: ScheduleRetry,
    /// The audit retention floor.
    pub audit_floor: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            default_index: None,
            max_runs: runs::DEFAULT_MAX_RUNS,
            webhooks: WebhookConfig::default(),
            retry: ScheduleRetry::default(),
            audit_floor: AUDIT_FLOOR,
        }
    }
}

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The webhook sender could not be set up (TLS).
    #[error("webhooks: {0}")]
    Webhooks(#[from] crate::capability::net::tls::TlsError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Server {
    /// The services over `store` and `runtime`, not started: for an HTTP layer under test, or
    /// before [`Server::start`].
    pub fn new(
        store: Arc<Store>,
        runtime: Arc<Runtime>,
        config: &ServerConfig,
    ) -> Result<Server, ServerError> {
        Ok(Server {
            runtime,
            default_index: config.default_index.clone(),
            running: Arc::new(Running::new(config.max_runs)),
            webhooks: Arc::new(
                Webhooks::new(config.webhooks.clone()).map_err(ServerError::Webhooks)?,
            ),
            audit_floor: config.audit_floor,
            worker: (store.backend() == crate::store::Backend::Postgres)
                .then(|| worker::WorkerConfig::new(Default::default())),
            store,
        })
    }

    /// Start the background services (scheduler, webhook deliveries, hourly purge); a lowered
    /// audit floor is audited first, by `actor`.
    pub async fn start(
        store: Arc<Store>,
        runtime: Arc<Runtime>,
        config: ServerConfig,
        actor: &str,
    ) -> Result<ServerHandle, ServerError> {
        let server = Server::new(store, runtime, &config)?;
        if server.audit_floor != AUDIT_FLOOR {
            let floor = Keep::For(server.audit_floor).to_string();
            server
                .store
                .audit_sealed(&[NewEntry::new(
                    actor,
                    "retention.audit_floor",
                    "retention",
                    "ok",
                    serde_json::json!({ "floor": floor, "default": "365d" }),
                )])
                .await?;
        }
        let mut tasks = vec![
            tokio::spawn(scheduler::run(server.clone(), config.retry)),
            tokio::spawn(webhooks::deliver::run(server.clone())),
            tokio::spawn(purge::auto_purge(server.clone(), purge::PURGE_EVERY)),
        ];
        if let Some(config) = &server.worker {
            tasks.push(tokio::spawn(worker::work(
                server.store.clone(),
                server.runtime.clone(),
                config.clone(),
                server.running.clone(),
            )));
        }
        Ok(ServerHandle { server, tasks })
    }
}

/// A started server: its services and their background tasks.
#[derive(Debug)]
pub struct ServerHandle {
    server: Server,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The services, for the HTTP layer.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Start no more runs, ask every run to stop (each commits what it wrote and ends
    /// `interrupted`) and wait up to `limit` for them; then stop the background tasks.
    /// Deliveries not made yet stay in the outbox for the next start. Whether every run ended
    /// in time (the others resume on their next run).
    pub async fn shutdown(self, limit: Duration) -> bool {
        self.server.running.stop_all("the server is shutting down");
        let drained = self.server.running.drained(limit).await;
        for task in self.tasks {
            task.abort();
        }
        drained
    }
}
