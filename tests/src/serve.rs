//! `sluice serve` as a real process, and a small HTTP/1.1 client (plain or TLS) to talk to it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{Scratch, sluice_bin};

/// A running `sluice serve`; killed when dropped.
pub struct Serve {
    child: Child,
    /// Where the API listens.
    pub addr: SocketAddr,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// The redirect listener, when one was asked for.
    pub redirect: Option<SocketAddr>,
}

impl Serve {
    /// Start `sluice --data-dir … serve --listen 127.0.0.1:0 ARGS…` and wait until it listens.
    pub fn start(s: &Scratch, args: &[&str]) -> Serve {
        let mut child = Command::new(sluice_bin())
            .current_dir(s.path("."))
            .arg("--data-dir")
            .arg(s.data_dir())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sluice serve starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut redirect = None;
        loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                let status = child.wait();
                panic!("sluice serve exited before saying where it listens: {status:?}");
            };
            if let Some(rest) = line.strip_prefix("redirecting http://") {
                redirect = Some(rest.split(' ').next().unwrap().parse().unwrap());
            } else if let Some(rest) = line.strip_prefix("listening on ") {
                let (scheme, addr) = rest.split_once("://").unwrap();
                return Serve {
                    child,
                    addr: addr.trim().parse().unwrap(),
                    tls: scheme == "https",
                    redirect,
                };
            }
        }
    }

    /// Stop it with SIGTERM and wait for it to exit; its exit code.
    pub fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status, headers and body.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Send one request over `io` (a TCP or TLS stream) and read the whole answer.
pub async fn send<S>(io: S, req: http::Request<String>) -> Result<Reply, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(req.map(|b| Full::new(bytes::Bytes::from(b))))
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A TLS client trusting only `ca_pem`, speaking only the given protocol versions.
pub fn tls_client(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A request with an optional bearer token and JSON body.
pub fn request(
    method: http::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> http::Request<String> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("user-agent", "sluice-tests");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(b.to_string()),
        None => req.body(String::new()),
    }
    .unwrap()
}
