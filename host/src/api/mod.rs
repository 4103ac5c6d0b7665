//! The control API (`sluice serve`): JSON over HTTP, versioned under `/v1`.
//!
//! Access control lives in layers, not in handlers: [`access`] authenticates the API key and
//! checks the caller's role against the one table of routes ([`ROUTES`]), refusing any route
//! that has no entry; [`audit`] records every request, allowed or not (never bodies or
//! secrets). Handlers only do the work.
//!
//! This is the first slice of the control plane: API keys with roles and expiry, the audit of
//! every call, and the connectors resource (list, show, install with explicit approval of the
//! capabilities, remove). Plain HTTP is served on loopback only.

mod access;
mod audit;
mod connectors;
mod error;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::response::Response;
use axum::routing::get;
use axum::serve::IncomingStream;
use http::Method;
use tokio::net::TcpListener;

use crate::marketplace::Location;
use crate::runtime::Runtime;
use crate::store::Store;

pub use access::Role;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The store (and data dir).
    pub store: Arc<Store>,
    /// For compiling connectors on install.
    pub runtime: Arc<Runtime>,
    /// The index installs use when a request names none.
    pub default_index: Option<Location>,
}

/// A route and the organization roles allowed to call it (none: public).
#[derive(Debug, Clone)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path as routed (`{name}` for a parameter).
    pub path: &'static str,
    /// Who may call it; empty for a public route.
    pub roles: &'static [Role],
}

/// Connectors are managed by owners and admins only (issue 7): members see them through the
/// connections that use them, once connections are in the API.
const MANAGERS: &[Role] = &[Role::Owner, Role::Admin];

/// Every route the API serves, with who may call it. The access layer refuses a route missing
/// from this table, so adding a route without deciding who may call it fails closed.
pub const ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/healthz",
        roles: &[],
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors",
        roles: MANAGERS,
    },
    Route {
        method: Method::POST,
        path: "/v1/connectors",
        roles: MANAGERS,
    },
    Route {
        method: Method::GET,
        path: "/v1/connectors/{name}",
        roles: MANAGERS,
    },
    Route {
        method: Method::DELETE,
        path: "/v1/connectors/{name}",
        roles: MANAGERS,
    },
];

async fn healthz() -> &'static str {
    "ok"
}

/// The API's router, with its access and audit layers.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/v1/connectors",
            get(connectors::list).post(connectors::install),
        )
        .route(
            "/v1/connectors/{name}",
            get(connectors::show).delete(connectors::remove),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .with_state(state)
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
