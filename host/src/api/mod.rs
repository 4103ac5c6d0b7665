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
mod body;
mod connections;
mod connectors;
mod endpoints;
mod error;
mod fields;
mod keys;
pub mod metrics;
mod names;
pub mod openapi;
pub mod retention;
pub mod routes;
mod runs;
pub mod signing;
pub mod tls;
mod webhooks;
mod workspaces;

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use tokio::net::TcpListener;

use crate::boundary::audit::NewEntry;
use crate::server::Server;
use error::ApiError;
use routes::Endpoint;

pub use access::{DEFAULT_RATE, Guards, Need, Role, RouteAccess, WorkspaceRole};
pub use routes::Route;

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

/// Connectors are managed by owners and admins only (issue 7): members use them through the
/// sources and destinations of their workspaces.
const MANAGERS: RouteAccess = RouteAccess::Org(&[Role::Owner, Role::Admin]);
const READ: RouteAccess = RouteAccess::Workspace(Need::Read);
const WRITE: RouteAccess = RouteAccess::Workspace(Need::Write);

/// Every route with its handler, as the resource modules declare them.
fn endpoints() -> Vec<Endpoint> {
    use http::StatusCode as S;
    let mut all = vec![
        routes::get(
            "/healthz",
            RouteAccess::Public,
            "Whether the server is serving",
            healthz,
        )
        .answers_text(S::OK, "text/plain; charset=utf-8", "`ok`"),
        routes::get(
            "/openapi.json",
            RouteAccess::Public,
            "This document",
            openapi::serve,
        )
        .answers_as(S::OK, "The OpenAPI 3.1 document", routes::object),
    ];
    for module in [
        metrics::routes,
        audit_log::routes,
        retention::routes,
        keys::routes,
        connectors::routes,
        workspaces::routes,
        endpoints::routes,
        connections::routes,
        runs::routes,
        webhooks::routes,
    ] {
        all.extend(module());
    }
    all
}

/// Every route the API serves, with who may call it and what it takes and answers. The access
/// layer refuses a route missing from this table, and a route cannot be declared without an
/// access rule, so adding one without deciding who may call it fails to build.
pub static ROUTES: LazyLock<Vec<Route>> =
    LazyLock::new(|| endpoints().into_iter().map(|e| e.route).collect());

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
    let mut router = Router::new();
    for e in endpoints() {
        router = router.route(e.route.path, e.handler);
    }
    router
        .route_layer(axum::middleware::from_fn(contain_panic))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
        // Outside the access layer, so its own plain-text refusals become JSON too.
        .route_layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit_layer::record,
        ))
        // And once more outermost: a panic in the access or audit layer answers 500 too.
        .layer(axum::middleware::from_fn(contain_panic))
        .with_state(state)
}

/// The longest plain-text error [`json_errors`] carries over; a longer one is answered with
/// its status and a generic message.
const MAX_TEXT_ERROR: usize = 16 * 1024;

/// Errors axum's extractors answer themselves (a body that is not JSON, a path or query that
/// does not parse) come as plain text; the API answers every error as `{"error": "…"}`, as
/// documented, so they are rewritten here.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let text = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !text {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let message = match axum::body::to_bytes(body, MAX_TEXT_ERROR).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => "the request was refused".to_string(),
    };
    let mut answer = ApiError::new(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != http::header::CONTENT_TYPE && name != http::header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
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
