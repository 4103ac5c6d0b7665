//! The control API (`sluice serve`): JSON over HTTP, versioned under `/v1`.
//!
//! Access control lives in layers, not in handlers: [`access`] authenticates the API key and
//! checks the caller's role against the one table of routes ([`ROUTES`]), refusing any route
//! that has no entry; [`audit_layer`] records every request, allowed or not (never bodies or
//! secrets). Handlers only do the work.
//!
//! Resources: API keys, installed connectors, workspaces and their members, sources and
//! destinations (secret values write-only), connections, runs, webhooks, retention settings, and the audit log. Plain HTTP is
//! served on loopback only; anything else is TLS ([`tls`]). See docs/api.md.

mod access;
pub mod allowlist;
pub mod audit_layer;
mod audit_log;
mod connections;
mod connectors;
mod endpoints;
mod error;
mod keys;
pub mod metrics;
mod names;
pub mod openapi;
pub mod retention;
mod runs;
pub mod signing;
pub mod tls;
mod webhooks;
mod workspaces;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::serve::IncomingStream;
use http::Method;
use tokio::net::TcpListener;

use crate::boundary::audit::NewEntry;
use crate::server::Server;
use crate::store::EndpointKind;
use error::ApiError;

pub use access::{DEFAULT_RATE, Guards, Need, Role, RouteAccess, WorkspaceRole};

/// What the handlers share: the server's services, and what only the HTTP layer keeps.
#[derive(Clone)]
pub struct ApiState {
    /// The services the handlers call.
    pub server: Server,
    /// Per-key request rates and seen signatures.
    pub guards: Arc<Guards>,
    /// Where the audit layer's entries queue up to be written together.
    pub audit_queue: Arc<audit_layer::AuditQueue>,
    /// What the audit layer counts for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
}

impl ApiState {
    /// The HTTP layer over `server`, with `guards` for rates and signatures.
    pub fn new(server: Server, guards: Guards) -> ApiState {
        ApiState {
            server,
            guards: Arc::new(guards),
            audit_queue: Default::default(),
            metrics: Default::default(),
        }
    }
}

/// A route and who may call it.
#[derive(Debug, Clone)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path as routed (`{name}` for a parameter).
    pub path: &'static str,
    /// Who may call it.
    pub access: RouteAccess,
}

/// Connectors are managed by owners and admins only (issue 7): members use them through the
/// sources and destinations of their workspaces.
const MANAGERS: RouteAccess = RouteAccess::Org(&[Role::Owner, Role::Admin]);
const READ: RouteAccess = RouteAccess::Workspace(Need::Read);
const WRITE: RouteAccess = RouteAccess::Workspace(Need::Write);

const fn route(method: Method, path: &'static str, access: RouteAccess) -> Route {
    Route {
        method,
        path,
        access,
    }
}

/// Every route the API serves, with who may call it. The access layer refuses a route missing
/// from this table, so adding a route without deciding who may call it fails closed.
pub const ROUTES: &[Route] = &[
    route(Method::GET, "/healthz", RouteAccess::Public),
    route(Method::GET, "/openapi.json", RouteAccess::Public),
    route(
        Method::GET,
        "/metrics",
        RouteAccess::Org(&[Role::Owner, Role::Admin, Role::Billing]),
    ),
    route(Method::GET, "/v1/audit", MANAGERS),
    route(Method::GET, "/v1/retention", MANAGERS),
    route(Method::PUT, "/v1/retention", MANAGERS),
    route(Method::POST, "/v1/retention/purge", MANAGERS),
    route(Method::GET, "/v1/keys", MANAGERS),
    route(Method::POST, "/v1/keys", MANAGERS),
    route(Method::PATCH, "/v1/keys/{id}", MANAGERS),
    route(Method::DELETE, "/v1/keys/{id}", MANAGERS),
    route(Method::POST, "/v1/keys/{id}/rotate", MANAGERS),
    route(Method::GET, "/v1/connectors", MANAGERS),
    route(Method::POST, "/v1/connectors", MANAGERS),
    route(Method::GET, "/v1/connectors/{name}", MANAGERS),
    route(Method::DELETE, "/v1/connectors/{name}", MANAGERS),
    route(
        Method::GET,
        "/v1/workspaces",
        RouteAccess::Org(&[Role::Owner, Role::Admin, Role::Member]),
    ),
    route(Method::POST, "/v1/workspaces", MANAGERS),
    route(Method::GET, "/v1/workspaces/{workspace}", READ),
    route(Method::PATCH, "/v1/workspaces/{workspace}", MANAGERS),
    route(Method::GET, "/v1/workspaces/{workspace}/members", READ),
    route(
        Method::PUT,
        "/v1/workspaces/{workspace}/members/{key_id}",
        MANAGERS,
    ),
    route(
        Method::DELETE,
        "/v1/workspaces/{workspace}/members/{key_id}",
        MANAGERS,
    ),
    route(Method::GET, "/v1/workspaces/{workspace}/sources", READ),
    route(Method::POST, "/v1/workspaces/{workspace}/sources", WRITE),
    route(
        Method::GET,
        "/v1/workspaces/{workspace}/sources/{name}",
        READ,
    ),
    route(
        Method::PUT,
        "/v1/workspaces/{workspace}/sources/{name}",
        WRITE,
    ),
    route(
        Method::DELETE,
        "/v1/workspaces/{workspace}/sources/{name}",
        WRITE,
    ),
    route(Method::GET, "/v1/workspaces/{workspace}/destinations", READ),
    route(
        Method::POST,
        "/v1/workspaces/{workspace}/destinations",
        WRITE,
    ),
    route(
        Method::GET,
        "/v1/workspaces/{workspace}/destinations/{name}",
        READ,
    ),
    route(
        Method::PUT,
        "/v1/workspaces/{workspace}/destinations/{name}",
        WRITE,
    ),
    route(
        Method::DELETE,
        "/v1/workspaces/{workspace}/destinations/{name}",
        WRITE,
    ),
    route(Method::GET, "/v1/workspaces/{workspace}/connections", READ),
    route(
        Method::POST,
        "/v1/workspaces/{workspace}/connections",
        WRITE,
    ),
    route(
        Method::GET,
        "/v1/workspaces/{workspace}/connections/{name}",
        READ,
    ),
    route(
        Method::PUT,
        "/v1/workspaces/{workspace}/connections/{name}",
        WRITE,
    ),
    route(
        Method::DELETE,
        "/v1/workspaces/{workspace}/connections/{name}",
        WRITE,
    ),
    route(
        Method::GET,
        "/v1/workspaces/{workspace}/connections/{name}/runs",
        READ,
    ),
    route(
        Method::POST,
        "/v1/workspaces/{workspace}/connections/{name}/runs",
        WRITE,
    ),
    route(Method::GET, "/v1/workspaces/{workspace}/runs/{id}", READ),
    route(
        Method::GET,
        "/v1/workspaces/{workspace}/runs/{id}/logs",
        READ,
    ),
    route(
        Method::POST,
        "/v1/workspaces/{workspace}/runs/{id}/cancel",
        WRITE,
    ),
    route(Method::GET, "/v1/workspaces/{workspace}/webhooks", READ),
    route(Method::POST, "/v1/workspaces/{workspace}/webhooks", WRITE),
    route(
        Method::GET,
        "/v1/workspaces/{workspace}/webhooks/{id}",
        READ,
    ),
    route(
        Method::DELETE,
        "/v1/workspaces/{workspace}/webhooks/{id}",
        WRITE,
    ),
    route(
        Method::POST,
        "/v1/workspaces/{workspace}/webhooks/{id}/rotate",
        WRITE,
    ),
    route(
        Method::GET,
        "/v1/workspaces/{workspace}/webhooks/{id}/deliveries",
        READ,
    ),
];

async fn healthz() -> &'static str {
    "ok"
}

impl ApiState {
    /// Record `entry` in the audit log before the answer goes out: a change that cannot be
    /// audited is reported as failed.
    pub async fn audit(&self, entry: NewEntry) -> Result<(), ApiError> {
        // A change is the end of a unit of work: signed and anchored before the answer.
        self.server
            .store
            .audit_sealed(&[entry])
            .await
            .map_err(ApiError::from)
    }
}

/// The API's router, with its access and audit layers.
pub fn router(state: ApiState) -> Router {
    use EndpointKind::{Destination, Source};
    let ws = "/v1/workspaces/{workspace}";
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi::serve))
        .route("/metrics", get(metrics::scrape))
        .route("/v1/audit", get(audit_log::query))
        .route("/v1/retention", get(retention::show).put(retention::update))
        .route(
            "/v1/retention/purge",
            axum::routing::post(retention::purge_now),
        )
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route(
            "/v1/keys/{id}",
            axum::routing::patch(keys::update).delete(keys::revoke),
        )
        .route("/v1/keys/{id}/rotate", axum::routing::post(keys::rotate))
        .route(
            "/v1/connectors",
            get(connectors::list).post(connectors::install),
        )
        .route(
            "/v1/connectors/{name}",
            get(connectors::show).delete(connectors::remove),
        )
        .route(
            "/v1/workspaces",
            get(workspaces::list).post(workspaces::create),
        )
        .route(ws, get(workspaces::show).patch(workspaces::update))
        .route(&format!("{ws}/members"), get(workspaces::members))
        .route(
            &format!("{ws}/members/{{key_id}}"),
            put(workspaces::set_member).delete(workspaces::remove_member),
        )
        .route(
            &format!("{ws}/sources"),
            get(|s, p| endpoints::list(Source, s, p))
                .post(|s, c, p, b| endpoints::create(Source, s, c, p, b)),
        )
        .route(
            &format!("{ws}/sources/{{name}}"),
            get(|s, p| endpoints::show(Source, s, p))
                .put(|s, c, p, b| endpoints::update(Source, s, c, p, b))
                .delete(|s, c, p| endpoints::remove(Source, s, c, p)),
        )
        .route(
            &format!("{ws}/destinations"),
            get(|s, p| endpoints::list(Destination, s, p))
                .post(|s, c, p, b| endpoints::create(Destination, s, c, p, b)),
        )
        .route(
            &format!("{ws}/destinations/{{name}}"),
            get(|s, p| endpoints::show(Destination, s, p))
                .put(|s, c, p, b| endpoints::update(Destination, s, c, p, b))
                .delete(|s, c, p| endpoints::remove(Destination, s, c, p)),
        )
        .route(
            &format!("{ws}/connections"),
            get(connections::list).post(connections::create),
        )
        .route(
            &format!("{ws}/connections/{{name}}"),
            get(connections::show)
                .put(connections::update)
                .delete(connections::remove),
        )
        .route(
            &format!("{ws}/connections/{{name}}/runs"),
            get(runs::list).post(runs::trigger),
        )
        .route(&format!("{ws}/runs/{{id}}"), get(runs::show))
        .route(&format!("{ws}/runs/{{id}}/logs"), get(runs::logs))
        .route(
            &format!("{ws}/runs/{{id}}/cancel"),
            axum::routing::post(runs::cancel),
        )
        .route(
            &format!("{ws}/webhooks"),
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            &format!("{ws}/webhooks/{{id}}"),
            get(webhooks::show).delete(webhooks::remove),
        )
        .route(
            &format!("{ws}/webhooks/{{id}}/rotate"),
            axum::routing::post(webhooks::rotate),
        )
        .route(
            &format!("{ws}/webhooks/{{id}}/deliveries"),
            get(webhooks::deliveries),
        )
        .route_layer(axum::middleware::from_fn(contain_panic))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit_layer::record,
        ))
        .with_state(state)
}

/// A handler that panics answers 500 (audited like any answer) instead of dropping the
/// connection; the panic itself goes to the server log. Bodies are checked before they reach
/// code that could panic, so this is the last wall, not the first.
async fn contain_panic(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed on this request; nothing was changed by the part that failed, \
             and the server log has more"
                .to_string(),
        )
        .into_response(),
    }
}

/// The client's address, as the audit layer records it (`ConnectInfo<Peer>`), for plain and
/// TLS listeners alike.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, tls::TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tls::TlsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

async fn hsts(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        http::header::STRICT_TRANSPORT_SECURITY,
        http::HeaderValue::from_static(tls::HSTS),
    );
    resp
}

/// Serve the API over plain HTTP on `listener` (the caller checks it is loopback) until
/// `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serve the API over TLS (every answer carries HSTS) until `shutdown` completes.
pub async fn serve_tls(
    listener: tls::TlsListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).layer(axum::middleware::map_response(hsts));
    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Answer every plain HTTP request on `listener` with a redirect to HTTPS on `https_port`.
pub async fn serve_redirect(
    listener: TcpListener,
    https_port: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, tls::redirect_router(https_port))
        .with_graceful_shutdown(shutdown)
        .await
}
