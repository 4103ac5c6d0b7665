//! Downloads from an HTTP index: one GET, bounded in size and time, TLS verified against the
//! platform's roots (plus the operator's CA for a private index, if given). Plain `http://` is
//! accepted for loopback only (a local mirror, tests).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

/// How long connecting, and the whole download, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a download failed: the URL and what went wrong, never a credential (URLs with user info
/// are refused before anything is sent).
#[derive(Debug, thiserror::Error)]
#[error("cannot download {url}: {reason}")]
pub struct FetchError {
    /// What was asked for.
    pub url: String,
    /// Why it failed.
    pub reason: String,
    /// The body was larger than allowed.
    pub oversized: bool,
}

/// Why a URL may not be fetched at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SchemeError {
    /// It carries a user name or password.
    #[error("URLs with a user name or password are not accepted")]
    Credentials,
    /// Plain HTTP to a host that is not loopback.
    #[error(
        "plain http:// is only accepted for a loopback host (127.0.0.1, ::1, localhost); serve \
         the index over https://"
    )]
    PlainHttp,
    /// Neither https nor http.
    #[error("the index URL must start with https:// (or http:// on loopback)")]
    Scheme,
}

/// Whether `uri` may be fetched at all: `https://`, or `http://` to a loopback address.
pub fn check_scheme(uri: &Uri) -> Result<(), SchemeError> {
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(SchemeError::Credentials);
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback_name(uri.host().unwrap_or("")) => Ok(()),
        Some("http") => Err(SchemeError::PlainHttp),
        _ => Err(SchemeError::Scheme),
    }
}

fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// GET `uri`; at most `limit` bytes of body. `ca`: a PEM file of extra CA certificates to trust.
pub async fn get(uri: &Uri, limit: u64, ca: Option<&Path>) -> Result<Vec<u8>, FetchError> {
    let fail = |reason: String, oversized: bool| FetchError {
        url: uri.to_string(),
        reason,
        oversized,
    };
    check_scheme(uri).map_err(|r| fail(r.to_string(), false))?;
    match tokio::time::timeout(DOWNLOAD_TIMEOUT, get_inner(uri, limit, ca)).await {
        Ok(r) => r.map_err(|(reason, oversized)| fail(reason, oversized)),
        Err(_) => Err(fail(
            format!("no complete answer within {}s", DOWNLOAD_TIMEOUT.as_secs()),
            false,
        )),
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

async fn get_inner(uri: &Uri, limit: u64, ca: Option<&Path>) -> Result<Vec<u8>, (String, bool)> {
    let e = |m: String| (m, false);
    let host = uri.host().ok_or_else(|| e("the URL has no host".into()))?;
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|err| e(format!("cannot resolve `{bare}`: {err}")))?
        .collect();
    if !https && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(e(format!(
            "`{bare}` resolves to a non-loopback address; plain http:// is loopback only"
        )));
    }
    let mut stream = None;
    let mut last = format!("`{bare}` resolves to no address");
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(err)) => last = format!("cannot connect to {addr}: {err}"),
            Err(_) => last = format!("connecting to {addr} timed out"),
        }
    }
    let stream = stream.ok_or_else(|| e(last))?;
    let io: Box<dyn Io> = if https {
        let config =
            crate::capability::net::tls::client_config(ca).map_err(|err| e(err.to_string()))?;
        let name = match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::from(ip),
            Err(_) => ServerName::try_from(bare.to_string())
                .map_err(|_| e(format!("`{bare}` is not a valid server name")))?,
        };
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|err| e(format!("TLS handshake failed: {err}")))?;
        Box::new(tls)
    } else {
        Box::new(stream)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|err| e(format!("HTTP handshake failed: {err}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = Request::get(path)
        .header(HOST, uri.authority().map_or(bare, |a| a.as_str()))
        .header(USER_AGENT, concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new())
        .map_err(|err| e(format!("cannot build the request: {err}")))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|err| e(format!("the request failed: {err}")))?;
    if resp.status() != StatusCode::OK {
        return Err(e(format!("the server answered {}", resp.status())));
    }
    let declared = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err((format!("it is larger than the {limit} bytes allowed"), true));
    }
    let body = Limited::new(resp.into_body(), limit as usize)
        .collect()
        .await
        .map_err(|err| {
            if err.is::<http_body_util::LengthLimitError>() {
                (format!("it is larger than the {limit} bytes allowed"), true)
            } else {
                (format!("the body could not be read: {err}"), false)
            }
        })?;
    Ok(body.to_bytes().to_vec())
}
