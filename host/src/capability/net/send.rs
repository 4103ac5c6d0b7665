//! The send hook: every `wasi:http/outgoing-handler.handle` call of a connector ends here.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderName;
use http::header::{HOST, HeaderValue, RETRY_AFTER};
use http::request::Parts;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full, Limited};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use super::body::{Metered, Report};
use super::{NetPolicy, classify};
use crate::boundary::events::{Capability, Outcome};
use crate::boundary::ratelimit::{Backoff, is_retryable, parse_retry_after};
use crate::capability::allow::{Scheme, normalize_host};
use crate::capability::secrets;

/// The `wasi:http` hooks of one sandbox: its connector's [`NetPolicy`].
#[derive(Debug, Clone)]
pub struct HttpHooks {
    policy: Arc<NetPolicy>,
}

impl HttpHooks {
    /// Hooks enforcing `policy`.
    pub fn new(policy: Arc<NetPolicy>) -> Self {
        HttpHooks { policy }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture = Box<dyn Future<Output = Result<(Response<WasiBody>, IoFuture), Error>> + Send>;

impl WasiHttpHooks for HttpHooks {
    /// wasi-http's own list (hop-by-hop headers and `Host`, which the host sets from the URL),
    /// with every attempt recorded: a connector setting `Host` is trying to steer a request
    /// somewhere its URL does not say.
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        let policy = self.policy.clone();
        Arc::new(move |name: &HeaderName| {
            let forbidden = DEFAULT_FORBIDDEN_HEADERS.contains(name);
            if forbidden {
                policy.events.refused(
                    &policy.connector,
                    Capability::Network,
                    &format!("set header `{name}`"),
                    if *name == HOST {
                        "the Host header comes from the request's URL; a connector cannot set it"
                    } else {
                        "hop-by-hop headers are managed by the host"
                    },
                );
            }
            forbidden
        })
    }

    fn default_scheme(&mut self) -> Option<http::uri::Scheme> {
        // A request must say where it goes; nothing is implied.
        None
    }

    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let policy = self.policy.clone();
        Box::new(async move {
            let response = policy.send(request, options).await?;
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

/// Why a request was refused, and what the connector is told.
#[derive(Debug)]
pub(super) struct Refusal {
    capability: Capability,
    pub(super) reason: String,
    code: Error,
}

impl Refusal {
    fn network(reason: String) -> Self {
        Refusal {
            capability: Capability::Network,
            reason,
            code: Error::HttpRequestDenied,
        }
    }

    fn secret(reason: String) -> Self {
        Refusal {
            capability: Capability::Secret,
            reason,
            code: Error::HttpRequestDenied,
        }
    }

    fn reflected(reason: String) -> Self {
        Refusal {
            capability: Capability::Secret,
            reason,
            code: reflected_error(),
        }
    }

    fn address(reason: String) -> Self {
        Refusal {
            capability: Capability::Network,
            reason,
            code: Error::DestinationIpProhibited,
        }
    }
}

/// Where an admitted request goes.
#[derive(Debug, Clone)]
pub(super) struct Target {
    scheme: Scheme,
    /// Normalized host (IPv6 without brackets).
    host: String,
    port: u16,
    /// The matching allowlist entry names this host exactly.
    exact: bool,
}

impl Target {
    /// Refuse `ip`, an address the host resolves to, if it is not a public internet address
    /// and the host was not granted by its exact name.
    pub(super) fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        match classify(ip) {
            // Metadata and link-local: a name never reaches them, however exactly granted (its
            // DNS could answer anything); only a grant of the address itself.
            Some(special)
                if super::addr::only_by_address(special)
                    && self.host.parse::<IpAddr>().ok() != Some(ip) =>
            {
                Err(Refusal::address(format!(
                    "{} resolves to {ip}, {}; such an address is reachable only when the grant \
                     names it literally (`http://{ip}`), never through a name",
                    self.origin(),
                    special.describe()
                )))
            }
            Some(special) if !self.exact => Err(Refusal::address(format!(
                "{} resolves to {ip}, {}; only a host granted by its exact name may reach such \
                 addresses",
                self.origin(),
                special.describe()
            ))),
            _ => Ok(()),
        }
    }

    /// [`Target::check_ip`] for a host written as an address (nothing to resolve).
    pub(super) fn check_literal(&self) -> Result<(), Refusal> {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => self.check_ip(ip),
            Err(_) => Ok(()),
        }
    }

    /// `https://api.example.com:443`, for messages and events.
    pub(super) fn origin(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// What the connector is told when a response carried a bound secret.
pub(super) fn reflected_error() -> Error {
    Error::InternalError(Some(
        "the response carried a bound secret's value; the host refused it".into(),
    ))
}

/// Where in a request a placeholder stands.
#[derive(Debug, Clone, Copy)]
enum Place<'a> {
    Header(&'a str),
    Query(&'a str),
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Header(h) => write!(f, "header `{h}`"),
            Place::Query(q) => write!(f, "query parameter `{q}`"),
        }
    }
}

/// Whether a request holds a `{{secret:…}}` placeholder anywhere the host would look: a header
/// value, the path or the query (percent-encoded or not).
fn carries_placeholder(parts: &Parts) -> bool {
    parts
        .headers
        .values()
        .any(|v| secrets::has_placeholder(&String::from_utf8_lossy(v.as_bytes())))
        || secrets::has_placeholder(&percent_decode(
            parts.uri.path_and_query().map_or("", |p| p.as_str()),
        ))
}

/// Percent-decoded text (invalid UTF-8 replaced), for judging where a placeholder stands.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// `METHOD scheme://host:port/path` with no query string (queries carry secrets and data).
fn describe(method: &http::Method, uri: &Uri) -> String {
    let path = uri.path();
    match (uri.scheme_str(), uri.authority()) {
        (Some(s), Some(a)) => format!("{method} {s}://{a}{path}"),
        _ => format!("{method} {path}"),
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn option_timeout(ours: Duration, theirs: Option<Duration>) -> Duration {
    theirs.map_or(ours, |t| t.min(ours))
}

impl NetPolicy {
    fn refuse(&self, action: &str, r: Refusal) -> Error {
        self.events
            .refused(&self.connector, r.capability, action, &r.reason);
        r.code
    }

    fn failed(&self, action: &str, detail: &str) {
        self.events.record(
            &self.connector,
            Capability::Network,
            Outcome::Failed,
            action,
            detail,
        );
    }

    /// Send one request for the connector, or refuse it.
    pub(super) async fn send(
        self: Arc<Self>,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Response<WasiBody>, Error> {
        let started = Instant::now();
        let (mut parts, body) = request.into_parts();
        let action = describe(&parts.method, &parts.uri);
        // Held until the response body ends or is dropped: what a connector can make the host
        // hold open (connections, buffered bodies) is bounded.
        let permit = self.in_flight.clone().try_acquire_owned().map_err(|_| {
            self.refuse(
                &action,
                Refusal::network(format!(
                    "{} requests are in flight already, the most one connector may have; read \
                     or drop a response before sending more",
                    crate::boundary::limits::HTTP_IN_FLIGHT
                )),
            )
        })?;
        // A connector holding bound secrets gets every answer scanned for them before it reads
        // a byte (not only answers to requests carrying one: a server may hand back a secret
        // it was sent earlier); a compressed answer could not be scanned.
        let scanned = !self.reflected.is_empty();
        let target = self
            .admit(&mut parts)
            .map_err(|r| self.refuse(&action, r))?;
        if scanned {
            parts.headers.insert(
                http::header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }
        let body = match Limited::new(body, self.limits.max_request_bytes as usize)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let too_big = e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                let reason = if too_big {
                    format!(
                        "the request body is larger than {} bytes (raise `network.max_request_mib`)",
                        self.limits.max_request_bytes
                    )
                } else {
                    format!("the request body could not be read: {e}")
                };
                self.failed(&action, &reason);
                return Err(Error::HttpRequestBodySize(Some(
                    self.limits.max_request_bytes,
                )));
            }
        };
        let addrs = self
            .resolve_checked(&target)
            .await
            .map_err(|r| self.refuse(&action, r))?;

        let mut backoff = Backoff::new(self.retry);
        loop {
            self.limiter.until_ready(&target.host).await;
            let response = match self
                .attempt(&target, &addrs, &parts, body.clone(), options)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    self.failed(&action, &format!("failed: {e}"));
                    return Err(e);
                }
            };
            let status = response.status().as_u16();
            if is_retryable(status) {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                if let Some(delay) = backoff.next_delay(retry_after) {
                    // Not the action: it is guest text, and this log is not scrubbed.
                    tracing::debug!(
                        connector = self.connector,
                        "answer {status}, retrying in {delay:?}"
                    );
                    drop(response);
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            self.check_reflection(&action, &response)?;
            let report = Report {
                _permit: permit,
                policy: self.clone(),
                action,
                status,
                sent: body.len() as u64,
                retries: backoff.retries(),
                started,
            };
            let idle = option_timeout(
                self.limits.timeout,
                options.and_then(|o| o.between_bytes_timeout),
            );
            return Ok(response.map(|incoming| {
                Metered::new(
                    incoming,
                    self.limits.max_response_bytes,
                    idle,
                    self.reflected.clone(),
                    report,
                )
                .boxed_unsync()
            }));
        }
    }

    /// Refuse a response whose headers carry a bound secret (a redirect whose `Location` echoes
    /// the query, say), or that is compressed (and so could not be scanned for one).
    fn check_reflection<B>(&self, action: &str, response: &Response<B>) -> Result<(), Error> {
        if self.reflected.is_empty() {
            return Ok(());
        }
        for (name, value) in response.headers() {
            if let Some(secret) = self.reflected.find(value.as_bytes()) {
                return Err(self.refuse(
                    action,
                    Refusal::reflected(format!(
                        "the response's `{name}` header carries the value of secret `{secret}`; \
                         the connector never sees a bound secret, so the response is refused"
                    )),
                ));
            }
        }
        if let Some(coding) = response.headers().get(http::header::CONTENT_ENCODING)
            && !coding.as_bytes().eq_ignore_ascii_case(b"identity")
        {
            return Err(self.refuse(
                action,
                Refusal::reflected(format!(
                    "the response is `{}`-encoded although the host asked for `identity`: a \
                     compressed answer cannot be checked for the connector's bound secrets",
                    String::from_utf8_lossy(coding.as_bytes())
                )),
            ));
        }
        Ok(())
    }

    /// Decide from the request alone whether it may leave, and substitute bound secrets.
    pub(super) fn admit(&self, parts: &mut Parts) -> Result<Target, Refusal> {
        let uri = parts.uri.clone();
        let scheme = uri.scheme_str().and_then(Scheme::parse).ok_or_else(|| {
            Refusal::network("only absolute http:// and https:// URLs may leave the sandbox".into())
        })?;
        let authority = uri.authority().ok_or_else(|| {
            Refusal::network(
                "the URL has no host: a request's destination comes from its absolute URL only"
                    .into(),
            )
        })?;
        if authority.as_str().contains('@') {
            return Err(Refusal::network(
                "credentials in the URL are refused; use a bound secret in a header".into(),
            ));
        }
        let host = normalize_host(authority.host());
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        // The Host header, if any, must name the URL's authority: it is never a second source
        // of truth about the destination.
        for value in parts.headers.get_all(HOST) {
            let agrees = value
                .to_str()
                .is_ok_and(|v| v.eq_ignore_ascii_case(authority.as_str()));
            if !agrees {
                return Err(Refusal::network(format!(
                    "the Host header {:?} disagrees with the URL's authority `{authority}`",
                    String::from_utf8_lossy(value.as_bytes())
                )));
            }
        }
        let target = Target {
            scheme,
            host,
            port,
            exact: false,
        };
        // A rule naming the host exactly wins over a wildcard that also matches: it is what
        // lets the host reach a private address, whatever order the rules are in.
        let matching = || {
            self.allow
                .iter()
                .filter(|r| r.matches(scheme, &target.host, port))
        };
        let Some(rule) = matching()
            .find(|r| r.host.is_exact())
            .or_else(|| matching().next())
        else {
            let why = if self.allow.is_empty() {
                "this connector has no network grant".to_string()
            } else {
                format!(
                    "it is not in the network allowlist ({})",
                    self.allow
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(Refusal::network(format!(
                "{} is refused: {why}; add it to the connection's `grant.network.allow` if the \
                 connector should reach it",
                target.origin()
            )));
        };
        let target = Target {
            exact: rule.host.is_exact(),
            ..target
        };
        self.substitute_secrets(parts, &target)?;
        Ok(target)
    }

    /// Replace `{{secret:NAME}}` in query values and headers with bound secrets, each only in
    /// the headers and query parameters its grant names.
    fn substitute_secrets(&self, parts: &mut Parts, target: &Target) -> Result<(), Refusal> {
        // `{{secret:NAME}}`, or `{{secret:NAME|base64}}` for values that travel encoded
        // (HTTP Basic credentials `user:password`).
        let value_for = |placeholder: &str, place: Place<'_>| -> Result<String, Refusal> {
            let (name, filter) = match placeholder.split_once('|') {
                Some((n, f)) => (n, Some(f)),
                None => (placeholder, None),
            };
            let secret = self
                .secrets
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| {
                    Refusal::secret(format!(
                        "`{{{{secret:{name}}}}}` names no secret bound to this connector"
                    ))
                })?;
            if !secret
                .to
                .iter()
                .any(|r| r.matches(target.scheme, &target.host, target.port))
            {
                return Err(Refusal::secret(format!(
                    "secret `{name}` may only be sent to {}, not to {}",
                    if secret.to.is_empty() {
                        "no destination".to_string()
                    } else {
                        secret
                            .to
                            .iter()
                            .map(|r| r.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    target.origin()
                )));
            }
            let allowed = match place {
                Place::Header(h) => secret.places.header(h),
                Place::Query(q) => secret.places.query(q),
            };
            if !allowed {
                return Err(Refusal::secret(format!(
                    "secret `{name}` may be substituted only in {}, not in {place}; name the \
                     place in the grant's `headers` or `query` if it belongs there",
                    secret.places.describe()
                )));
            }
            match filter {
                None => Ok(secret.expose().to_string()),
                Some("base64") => {
                    use base64::Engine;
                    Ok(base64::engine::general_purpose::STANDARD.encode(secret.expose()))
                }
                Some(other) => Err(Refusal::secret(format!(
                    "`{{{{secret:{name}|{other}}}}}`: the only filter is `base64`"
                ))),
            }
        };
        if !carries_placeholder(parts) {
            return Ok(());
        }
        let method = parts.method.as_str();
        if ["TRACE", "TRACK", "CONNECT"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
        {
            return Err(Refusal::secret(format!(
                "secrets are never substituted in a {} request: the server answers with the \
                 request itself",
                parts.method
            )));
        }
        if secrets::has_placeholder(&percent_decode(parts.uri.path())) {
            return Err(Refusal::secret(
                "secret placeholders are substituted in headers and query values only, not in \
                 the URL path"
                    .into(),
            ));
        }
        if let Some(query) = parts.uri.query() {
            let mut out = Vec::new();
            let mut changed = false;
            for pair in query.split('&') {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let name = percent_decode(key);
                if secrets::has_placeholder(&name) {
                    return Err(Refusal::secret(
                        "secret placeholders are substituted in query values only, not in a \
                         parameter's name"
                            .into(),
                    ));
                }
                let decoded = percent_decode(value);
                if secrets::has_placeholder(&decoded) && !secrets::has_placeholder(value) {
                    return Err(Refusal::secret(format!(
                        "query parameter `{name}` holds a percent-encoded placeholder; write \
                         `{{{{secret:NAME}}}}` as it is"
                    )));
                }
                if !secrets::has_placeholder(value) {
                    out.push(pair.to_string());
                    continue;
                }
                // Some servers split parameters at `;` too: `key=a;token={{secret:t}}` would
                // put the secret in a parameter the grant does not name.
                if value.contains(';') {
                    return Err(Refusal::secret(format!(
                        "query parameter `{name}` holds a `;` beside a placeholder: servers that \
                         split parameters at `;` would read the secret as another parameter"
                    )));
                }
                changed = true;
                let value = secrets::substitute(value, |p| {
                    value_for(p, Place::Query(&name)).map(|v| {
                        percent_encoding::utf8_percent_encode(
                            &v,
                            percent_encoding::NON_ALPHANUMERIC,
                        )
                        .to_string()
                    })
                })?;
                out.push(format!("{key}={value}"));
            }
            if changed {
                let mut p = parts.uri.clone().into_parts();
                let path_and_query = format!("{}?{}", parts.uri.path(), out.join("&"));
                p.path_and_query = Some(path_and_query.parse().map_err(|_| {
                    Refusal::secret("the query is not valid after substitution".into())
                })?);
                parts.uri = Uri::from_parts(p).map_err(|_| {
                    Refusal::secret("the URL is not valid after substitution".into())
                })?;
            }
        }
        for (name, value) in parts.headers.iter_mut() {
            let text = String::from_utf8_lossy(value.as_bytes());
            if !secrets::has_placeholder(&text) {
                continue;
            }
            let Ok(text) = value.to_str() else {
                return Err(Refusal::secret(format!(
                    "header `{name}` holds a placeholder among bytes that are not text"
                )));
            };
            let replaced =
                secrets::substitute(text, |p| value_for(p, Place::Header(name.as_str())))?;
            let mut v = HeaderValue::from_str(&replaced).map_err(|_| {
                Refusal::secret("a secret's value cannot be sent in a header".into())
            })?;
            v.set_sensitive(true);
            *value = v;
        }
        Ok(())
    }

    /// Resolve the host once and check every address.
    pub(super) async fn resolve_checked(
        &self,
        target: &Target,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        let ips: Vec<IpAddr> = match target.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let lookup = self.resolver.resolve(&target.host, target.port);
                match tokio::time::timeout(self.limits.timeout, lookup).await {
                    Ok(Ok(ips)) if !ips.is_empty() => ips,
                    Ok(Ok(_)) => {
                        return Err(Refusal {
                            capability: Capability::Network,
                            reason: format!("`{}` has no addresses", target.host),
                            code: Error::DnsError {
                                rcode: Some("NXDOMAIN".into()),
                                info_code: None,
                            },
                        });
                    }
                    Ok(Err(e)) => {
                        return Err(Refusal {
                            capability: Capability::Network,
                            reason: format!("`{}` does not resolve: {e}", target.host),
                            code: Error::DnsError {
                                rcode: None,
                                info_code: None,
                            },
                        });
                    }
                    Err(_) => {
                        return Err(Refusal {
                            capability: Capability::Network,
                            reason: format!("resolving `{}` timed out", target.host),
                            code: Error::DnsTimeout,
                        });
                    }
                }
            }
        };
        // Fail closed: one forbidden address in the answer refuses the request.
        for ip in &ips {
            target.check_ip(*ip)?;
        }
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, target.port))
            .collect())
    }

    /// One attempt: connect to a checked address, TLS if asked, send, wait for the head.
    pub(super) async fn attempt(
        &self,
        target: &Target,
        addrs: &[SocketAddr],
        parts: &Parts,
        body: Bytes,
        options: Option<RequestOptions>,
    ) -> Result<Response<hyper::body::Incoming>, Error> {
        let connect_timeout =
            option_timeout(self.limits.timeout, options.and_then(|o| o.connect_timeout));
        let first_byte = option_timeout(
            self.limits.timeout,
            options.and_then(|o| o.first_byte_timeout),
        );
        let mut last = Error::ConnectionRefused;
        let mut stream = None;
        for addr in addrs {
            match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    stream = Some(s);
                    break;
                }
                Ok(Err(e)) => last = Error::Connect(e),
                Err(_) => last = Error::ConnectionTimeout,
            }
        }
        let stream = stream.ok_or(last)?;
        let _ = stream.set_nodelay(true);
        let io: Box<dyn Io> = match target.scheme {
            Scheme::Http => Box::new(stream),
            Scheme::Https => {
                let config = self
                    .tls
                    .clone()
                    .ok_or_else(|| Error::InternalError(Some("TLS is not configured".into())))?;
                let name = match target.host.parse::<IpAddr>() {
                    Ok(ip) => ServerName::from(ip),
                    Err(_) => ServerName::try_from(target.host.clone())
                        .map_err(|_| Error::TlsProtocolError)?,
                };
                let tls = tokio_rustls::TlsConnector::from(config);
                let connect = tls.connect(name, stream);
                let s = tokio::time::timeout(connect_timeout, connect)
                    .await
                    .map_err(|_| Error::ConnectionTimeout)?
                    .map_err(tls_error)?;
                Box::new(s)
            }
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(Error::Hyper)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("outbound connection ended: {e}");
            }
        });
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut req = Request::builder()
            .method(parts.method.clone())
            .uri(path)
            .body(Full::new(body))
            .map_err(|e| Error::InternalError(Some(e.to_string())))?;
        *req.headers_mut() = parts.headers.clone();
        let authority = parts.uri.authority().map_or("", |a| a.as_str());
        req.headers_mut().insert(
            HOST,
            HeaderValue::from_str(authority).map_err(|_| Error::HttpRequestUriInvalid)?,
        );
        tokio::time::timeout(first_byte, sender.send_request(req))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::Hyper)
    }
}

fn tls_error(e: std::io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
        Some(rustls::Error::AlertReceived(alert)) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Error::Tls(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::allow::Scheme;

    fn target(host: &str, exact: bool) -> Target {
        Target {
            scheme: Scheme::Http,
            host: host.into(),
            port: 80,
            exact,
        }
    }

    #[test]
    fn metadata_and_link_local_are_reached_only_by_their_literal_address() {
        // An exactly granted name whose DNS answers the metadata service: refused (an outside
        // review reached it this way).
        for ip in [
            "169.254.169.254",
            "169.254.170.2",
            "fe80::1",
            "fd00:ec2::254",
            "100.100.100.200",
            "168.63.129.16",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let e = target("metadata.internal", true).check_ip(ip).unwrap_err();
            assert!(
                e.reason.contains("names it literally"),
                "{ip}: {}",
                e.reason
            );
        }
        // The address itself, granted exactly: the operator meant it.
        let ip: IpAddr = "169.254.169.254".parse().unwrap();
        assert!(target("169.254.169.254", true).check_ip(ip).is_ok());
        assert!(target("169.254.169.254", false).check_ip(ip).is_err());
        // Other private addresses stay reachable through an exactly granted name.
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        assert!(target("db.internal", true).check_ip(ip).is_ok());
        assert!(target("db.internal", false).check_ip(ip).is_err());
    }
}
