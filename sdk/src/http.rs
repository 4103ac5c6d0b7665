//! Outbound HTTP from inside the sandbox.
//!
//! Requests go through `wasi:http/outgoing-handler` to the sluice host, which sends them only to
//! destinations the connection's grant allows, substitutes `{{secret:NAME}}` placeholders in
//! headers and query values for the secrets bound to that destination, paces them per host and
//! retries `429`/`503` itself. A connector sees the final response, or a typed [`Error`].
//!
//! ```text
//! let page = http::get("https://api.example.com/v1/users?page=1")
//!     .header("Authorization", "Bearer {{secret:api_token}}")
//!     .send()?
//!     .error_for_status()?
//!     .json::<serde_json::Value>()?;
//! ```
//!
//! Redirects are followed (up to [`MAX_REDIRECTS`]) as new requests, each checked by the host
//! against the grant again.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Redirect hops [`Request::send`] follows before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// HEAD
    Head,
    /// PATCH
    Patch,
}

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    follow_redirects: bool,
}

/// A `GET` of `url` (absolute: `https://host/path?query`).
pub fn get(url: impl Into<String>) -> Request {
    Request::new(Method::Get, url)
}

/// A `POST` to `url`.
pub fn post(url: impl Into<String>) -> Request {
    Request::new(Method::Post, url)
}

impl Request {
    /// A request with `method` to the absolute `url`.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            follow_redirects: true,
        }
    }

    /// Add a header. Values may hold `{{secret:NAME}}` placeholders.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set a JSON body (and its content type).
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<Self> {
        let body = serde_json::to_vec(value)
            .map_err(|e| Error::fatal(format!("cannot serialize a request body: {e}")))?;
        Ok(self.header("Content-Type", "application/json").body(body))
    }

    /// Return redirect responses as they are instead of following them.
    pub fn no_redirects(mut self) -> Self {
        self.follow_redirects = false;
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Send it and read the whole response.
    pub fn send(self) -> Result<Response> {
        let mut req = self;
        for _ in 0..=MAX_REDIRECTS {
            let resp = wire::send(&req)?;
            let redirect = matches!(resp.status, 301 | 302 | 303 | 307 | 308);
            if !(redirect && req.follow_redirects) {
                return Ok(resp);
            }
            let Some(location) = resp.header("location") else {
                return Ok(resp);
            };
            let next = resolve_location(&req.url, location)?;
            crate::log::log(
                crate::log::Level::Info,
                &format!("following a {} redirect", resp.status),
            );
            if resp.status == 303 {
                req.method = Method::Get;
                req.body.clear();
            }
            req.url = next;
        }
        Err(Error::fatal(format!(
            "more than {MAX_REDIRECTS} redirects from {}",
            req.url
        )))
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body).map_err(|_| Error::fatal("the response body is not UTF-8"))
    }

    /// The body decoded as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::fatal(format!(
                "the response (status {}) is not the JSON expected: {e}",
                self.status
            ))
        })
    }

    /// `Ok(self)` for a 2xx or 3xx status; otherwise the error a connector should return:
    /// `auth` for 401/403, `rate-limited` for 429/503 (the host already retried), `transient`
    /// for other 5xx, `fatal` for other 4xx.
    pub fn error_for_status(self) -> Result<Self> {
        let snippet = |r: &Response| {
            let text = String::from_utf8_lossy(&r.body);
            let t: String = text.chars().take(200).collect();
            if t.is_empty() {
                String::new()
            } else {
                format!(": {t}")
            }
        };
        match self.status {
            200..=399 => Ok(self),
            401 | 403 => Err(Error::auth(format!(
                "the server refused the credentials ({}){}",
                self.status,
                snippet(&self)
            ))),
            429 | 503 => {
                let retry_after = self
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(
                        std::time::Duration::from_secs(60),
                        std::time::Duration::from_secs,
                    );
                Err(Error::RateLimited {
                    retry_after,
                    message: format!(
                        "the server is still limiting requests ({}) after the host's retries",
                        self.status
                    ),
                })
            }
            500..=599 => Err(Error::transient(format!(
                "server error {}{}",
                self.status,
                snippet(&self)
            ))),
            s => Err(Error::fatal(format!(
                "request failed with {s}{}",
                snippet(&self)
            ))),
        }
    }
}

/// Characters left as they are in a query value (RFC 3986 unreserved).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode a query value, leaving `{{secret:NAME}}` placeholders as they are so the host
/// can find and substitute them.
pub fn encode_query_value(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("{{secret:") {
        let Some(j) = rest[i..].find("}}") else { break };
        out.extend(utf8_percent_encode(&rest[..i], QUERY));
        out.push_str(&rest[i..i + j + 2]);
        rest = &rest[i + j + 2..];
    }
    out.extend(utf8_percent_encode(rest, QUERY));
    out
}

/// `scheme`, `authority`, `path?query` of an absolute URL.
pub fn split_url(url: &str) -> Result<(&str, &str, &str)> {
    let bad = || Error::config(format!("`{url}` is not an absolute http(s) URL"));
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(bad());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(bad());
    }
    let path = path.split('#').next().unwrap_or("");
    Ok((scheme, authority, if path.is_empty() { "/" } else { path }))
}

/// Where a `Location` header points, relative to the URL that answered.
pub fn resolve_location(base: &str, location: &str) -> Result<String> {
    if location.contains("://") {
        split_url(location)?;
        return Ok(location.to_string());
    }
    let (scheme, authority, path) = split_url(base)?;
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{location}"));
    }
    let dir = match path.split('?').next().unwrap_or("/").rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    Ok(format!("{scheme}://{authority}{dir}{location}"))
}

#[cfg(target_arch = "wasm32")]
mod wire {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
        Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::{Method, Request, Response, split_url};
    use crate::{Error, Result};

    fn refused(url: &str, code: &ErrorCode) -> Error {
        match code {
            ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => {
                Error::fatal(format!(
                    "the sluice host refused the request to {url}: it is outside this connector's \
                 grant (the run's events say why)"
                ))
            }
            ErrorCode::DnsTimeout
            | ErrorCode::DnsError(_)
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTerminated
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::DestinationUnavailable
            | ErrorCode::HttpResponseTimeout => {
                Error::transient(format!("request to {url} failed: {code:?}"))
            }
            other => Error::fatal(format!("request to {url} failed: {other:?}")),
        }
    }

    pub fn send(req: &Request) -> Result<Response> {
        let url = &req.url;
        let (scheme, authority, path) = split_url(url)?;
        let headers = Fields::new();
        for (k, v) in &req.headers {
            headers
                .append(k, v.as_bytes())
                .map_err(|e| Error::fatal(format!("header `{k}` cannot be sent: {e:?}")))?;
        }
        let out = OutgoingRequest::new(headers);
        let method = match req.method {
            Method::Get => WasiMethod::Get,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Delete => WasiMethod::Delete,
            Method::Head => WasiMethod::Head,
            Method::Patch => WasiMethod::Patch,
        };
        let scheme = if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let bad = |what: &str| Error::config(format!("{url}: bad {what}"));
        out.set_method(&method).map_err(|()| bad("method"))?;
        out.set_scheme(Some(&scheme)).map_err(|()| bad("scheme"))?;
        out.set_authority(Some(authority))
            .map_err(|()| bad("host"))?;
        out.set_path_with_query(Some(path))
            .map_err(|()| bad("path"))?;
        let body = out
            .body()
            .map_err(|()| Error::fatal("request body taken twice"))?;
        let pending = outgoing_handler::handle(out, None).map_err(|e| refused(url, &e))?;
        {
            let stream = body
                .write()
                .map_err(|()| Error::fatal("request body stream taken twice"))?;
            for chunk in req.body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| Error::transient(format!("sending the body to {url}: {e:?}")))?;
            }
        }
        OutgoingBody::finish(body, None)
            .map_err(|e| Error::transient(format!("finishing the body to {url}: {e:?}")))?;
        let response = loop {
            match pending.get() {
                Some(r) => break r,
                None => pending.subscribe().block(),
            }
        };
        let response = response
            .map_err(|()| Error::fatal("response taken twice"))?
            .map_err(|e| refused(url, &e))?;
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| Error::fatal("response body taken twice"))?;
        let mut bytes = Vec::new();
        {
            let stream = incoming
                .stream()
                .map_err(|()| Error::fatal("response body stream taken twice"))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(Error::transient(format!(
                            "reading the response from {url}: {}",
                            e.to_debug_string()
                        )));
                    }
                }
            }
        }
        drop(IncomingBody::finish(incoming));
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod wire {
    use super::{Request, Response};
    use crate::{Error, Result};

    pub fn send(req: &Request) -> Result<Response> {
        Err(Error::fatal(format!(
            "outbound HTTP ({}) is only available inside the sluice sandbox",
            req.url
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_survive_query_encoding() {
        assert_eq!(
            encode_query_value("a b&{{secret:key}}/x"),
            "a%20b%26{{secret:key}}%2Fx"
        );
        assert_eq!(
            encode_query_value("2024-01-01T00:00:00Z"),
            "2024-01-01T00%3A00%3A00Z"
        );
    }

    #[test]
    fn urls_split_and_locations_resolve() {
        assert_eq!(
            split_url("https://api.example.com:8443/v1/x?a=1#f").unwrap(),
            ("https", "api.example.com:8443", "/v1/x?a=1")
        );
        assert_eq!(split_url("http://h").unwrap(), ("http", "h", "/"));
        assert!(split_url("/relative").is_err());
        assert!(split_url("ftp://h/x").is_err());
        assert!(split_url("https:///x").is_err());
        let base = "https://a.example.com/v1/items?page=2";
        assert_eq!(
            resolve_location(base, "/login").unwrap(),
            "https://a.example.com/login"
        );
        assert_eq!(
            resolve_location(base, "next?page=3").unwrap(),
            "https://a.example.com/v1/next?page=3"
        );
        assert_eq!(
            resolve_location(base, "//b.example.com/x").unwrap(),
            "https://b.example.com/x"
        );
        assert_eq!(
            resolve_location(base, "http://10.0.0.1/").unwrap(),
            "http://10.0.0.1/"
        );
    }

    #[test]
    fn statuses_become_the_errors_a_connector_returns() {
        let r = |status: u16, headers: Vec<(&str, &str)>| Response {
            status,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: b"nope".to_vec(),
        };
        assert!(r(200, vec![]).error_for_status().is_ok());
        assert!(matches!(
            r(401, vec![]).error_for_status(),
            Err(Error::Auth(_))
        ));
        match r(429, vec![("retry-after", "7")]).error_for_status() {
            Err(Error::RateLimited { retry_after, .. }) => {
                assert_eq!(retry_after, std::time::Duration::from_secs(7))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r(502, vec![]).error_for_status(),
            Err(Error::Transient(_))
        ));
        assert!(matches!(
            r(404, vec![]).error_for_status(),
            Err(Error::Fatal(_))
        ));
    }
}
