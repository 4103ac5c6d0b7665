//! Building one HTTP request of a stream: the requester's URL, parameters, headers and body,
//! the paginator's and the partitions' options, and the authenticator's credentials.
//!
//! Secrets stay placeholders: a config value `{{secret:NAME}}` is rendered into a header or
//! query value as it is, and the host substitutes it on the way out.

use base64::Engine as _;
use serde_json::{Map, Value};
use sluice_sdk::{Error, Result};

use crate::interp::{self, Context};
use crate::model::{Authenticator, HttpRequester, Inject, RequestOption};

/// A request, ready for the transport.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// `GET`, `POST`…
    pub method: String,
    /// The absolute URL with its query.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body, when there is one.
    pub body: Option<Vec<u8>>,
    /// Its requester caches responses (a parent stream's: see [`crate::cache`]).
    pub cacheable: bool,
}

/// A response, read whole.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`{}` when it is not JSON, as the CDK's decoder gives).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The headers as templates see them, `link` parsed into its relations.
    pub fn headers_value(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.headers {
            m.entry(k.to_ascii_lowercase())
                .or_insert_with(|| Value::String(v.clone()));
        }
        if let Some(link) = self.header("link") {
            m.insert("link".into(), parse_link(link));
        }
        Value::Object(m)
    }
}

/// Sends requests: the sandbox's outbound HTTP, or a test double.
pub trait Transport {
    /// Send `req` and read the whole response.
    fn send(&mut self, req: &HttpRequest) -> Result<HttpResponse>;
}

/// An RFC 8288 `Link` header as `requests` parses it: `{rel: {"url": …, "rel": …}}`.
fn parse_link(header: &str) -> Value {
    let mut out = Map::new();
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let Some(url) = pieces.next() else { continue };
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        let mut link = Map::new();
        link.insert("url".into(), Value::String(url.to_string()));
        for p in pieces {
            if let Some((k, v)) = p.split_once('=') {
                link.insert(
                    k.trim().to_string(),
                    Value::String(v.trim().trim_matches(['"', '\'']).to_string()),
                );
            }
        }
        let key = link
            .get("rel")
            .and_then(Value::as_str)
            .unwrap_or(url)
            .to_string();
        out.insert(key, Value::Object(link));
    }
    Value::Object(out)
}

/// What a request is being built from, besides the requester.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Query parameters from the paginator, partitions and cursor, in order.
    pub params: Vec<(String, String)>,
    /// Headers likewise.
    pub headers: Vec<(String, String)>,
    /// Form body fields.
    pub body_data: Map<String, Value>,
    /// JSON body fields.
    pub body_json: Map<String, Value>,
    /// A path (or URL) that replaces the requester's (`RequestPath` pagination).
    pub path: Option<String>,
}

impl Options {
    /// Put `value` where `option` says.
    pub fn inject(&mut self, option: &RequestOption, value: &Value, ctx: &Context) -> Result<()> {
        let field = option.field_name.as_deref().unwrap_or_default();
        let ctx = ctx.with("parameters", &Value::Object(option.parameters.clone()));
        let Some(name) = interp::text(field, &ctx)? else {
            return Err(Error::config(
                "a RequestOption needs a `field_name` that renders to text",
            ));
        };
        let text = interp::json_str(value);
        match option.inject_into {
            Inject::RequestParameter => self.params.push((name, text)),
            Inject::Header => self.headers.push((name, text)),
            Inject::BodyData => {
                self.body_data.insert(name, Value::String(text));
            }
            Inject::BodyJson => {
                self.body_json.insert(name, value.clone());
            }
        }
        Ok(())
    }
}

/// Evaluate a request's mapping (`request_parameters`, `request_headers`): a map of templates,
/// or one template of a map. Values that render empty or to None are left out.
/// With `as_text` (query parameters and form bodies), a rendered value is read as a Python
/// literal only when that gives a string or a list, else the rendered text is kept — the CDK's
/// `valid_value_types=(str, list)`: `{{ config.get('lang') }}` sends `None`, `"1.50"` stays.
fn mapping(
    value: &Option<Value>,
    ctx: &Context,
    what: &str,
    as_text: bool,
) -> Result<Vec<(String, Value)>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let map = match value {
        Value::Object(m) => m.clone(),
        Value::String(t) => match interp::eval(t, ctx)? {
            Some(Value::Object(m)) => m,
            None => Map::new(),
            Some(other) => {
                return Err(Error::config(format!(
                    "`{what}` must render to a map, not `{other}`"
                )));
            }
        },
        other => {
            return Err(Error::config(format!(
                "`{what}` must be a map, not `{other}`"
            )));
        }
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let Some(key) = interp::text(&k, ctx)? else {
            continue;
        };
        let value = match v {
            Value::String(t) if as_text => {
                interp::text(&t, ctx)?.map(|text| match crate::literal::eval(&text) {
                    Some(v @ (Value::String(_) | Value::Array(_))) => v,
                    _ => Value::String(text),
                })
            }
            Value::String(t) => interp::eval(&t, ctx)?,
            other => Some(other),
        };
        match value {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(v) => out.push((key, v)),
        }
    }
    Ok(out)
}

/// A nested mapping (`request_body_json`): every string inside is a template.
fn nested(value: &Value, ctx: &Context) -> Result<Value> {
    Ok(match value {
        Value::String(t) => interp::eval(t, ctx)?.unwrap_or(Value::Null),
        Value::Array(a) => Value::Array(a.iter().map(|v| nested(v, ctx)).collect::<Result<_>>()?),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = interp::text(k, ctx)?.unwrap_or_default();
                out.insert(key, nested(v, ctx)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Join the base URL and a path the way the CDK does: one `/` between them; a path that is a
/// whole URL (a `next` link) replaces the base.
pub fn join_url(base: &str, path: &str) -> String {
    if path.starts_with("http://") || path.starts_with("https://") {
        return path.to_string();
    }
    if path.is_empty() {
        return base.to_string();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Build the request `requester` makes with `options`, in context `ctx` (which holds
/// `stream_slice`, `stream_state` and `next_page_token`).
pub fn build(requester: &HttpRequester, options: &Options, ctx: &Context) -> Result<HttpRequest> {
    let ctx = ctx.with("parameters", &Value::Object(requester.parameters.clone()));
    let base = interp::text(&requester.url_base, &ctx)?.ok_or_else(|| {
        Error::config(format!(
            "`url_base` `{}` renders empty: is the config complete?",
            requester.url_base
        ))
    })?;
    let path = match &options.path {
        Some(p) => p.clone(),
        None => match &requester.path {
            Some(p) => interp::text(p, &ctx)?.unwrap_or_default(),
            None => String::new(),
        },
    };
    let mut url = join_url(&base, &path);

    let mut params: Vec<(String, String)> = mapping(
        &requester.request_parameters,
        &ctx,
        "request_parameters",
        true,
    )?
    .into_iter()
    .flat_map(|(k, v)| match v {
        // `requests` sends each item of a list as the same parameter.
        Value::Array(items) => items
            .iter()
            .map(|i| (k.clone(), interp::json_str(i)))
            .collect::<Vec<_>>(),
        v => vec![(k, interp::json_str(&v))],
    })
    .collect();
    let mut headers: Vec<(String, String)> =
        mapping(&requester.request_headers, &ctx, "request_headers", false)?
            .into_iter()
            .map(|(k, v)| (k, interp::json_str(&v)))
            .collect();
    params.extend(options.params.iter().cloned());
    headers.extend(options.headers.iter().cloned());
    if let Some(auth) = &requester.authenticator {
        authenticate(auth, &ctx, &mut headers, &mut params)?;
    }

    let mut body = None;
    let mut json_body = match &requester.request_body_json {
        Some(v) => match nested(v, &ctx)? {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => {
                return Err(Error::config(format!(
                    "`request_body_json` must be a map, not `{other}`"
                )));
            }
        },
        None => None,
    };
    if !options.body_json.is_empty() {
        let m = json_body.get_or_insert_with(Map::new);
        for (k, v) in &options.body_json {
            m.insert(k.clone(), v.clone());
        }
    }
    if let Some(m) = json_body {
        body = Some(serde_json::to_vec(&Value::Object(m)).unwrap_or_default());
        headers.push(("Content-Type".into(), "application/json".into()));
    } else {
        let mut form: Vec<(String, String)> = match &requester.request_body_data {
            Some(Value::String(t)) if !t.trim_start().starts_with('{') => {
                if let Some(raw) = interp::text(t, &ctx)? {
                    body = Some(raw.into_bytes());
                }
                Vec::new()
            }
            other => mapping(other, &ctx, "request_body_data", true)?
                .into_iter()
                .map(|(k, v)| (k, interp::json_str(&v)))
                .collect(),
        };
        form.extend(
            options
                .body_data
                .iter()
                .map(|(k, v)| (k.clone(), interp::json_str(v))),
        );
        if !form.is_empty() {
            body = Some(encode_pairs(&form).into_bytes());
            headers.push((
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
        }
    }

    // A parameter the URL already carries with the same value (a next-page URL that repeats
    // them) is not sent twice: the CDK's `_dedupe_query_params`.
    if let Some((_, query)) = url.split_once('?') {
        let mut first: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            // (`parse_qs` leaves blank values out)
            if !v.is_empty() && !first.iter().any(|(f, _)| *f == k) {
                first.push((k.into_owned(), v.into_owned()));
            }
        }
        params.retain(|(k, v)| !first.iter().any(|(f, fv)| f == k && fv == v));
    }
    if !params.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&encode_pairs(&params));
    }
    Ok(HttpRequest {
        method: requester.http_method.to_ascii_uppercase(),
        url,
        headers,
        body,
        cacheable: requester.use_cache == Some(true),
    })
}

fn encode_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                sluice_sdk::http::encode_query_value(k),
                sluice_sdk::http::encode_query_value(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Add `auth`'s credentials.
fn authenticate(
    auth: &Authenticator,
    ctx: &Context,
    headers: &mut Vec<(String, String)>,
    params: &mut Vec<(String, String)>,
) -> Result<()> {
    match auth {
        Authenticator::NoAuth {} => {}
        Authenticator::BearerAuthenticator {
            api_token,
            parameters,
        } => {
            let ctx = ctx.with("parameters", &Value::Object(parameters.clone()));
            let token = interp::string(api_token, &ctx)?.unwrap_or_default();
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        Authenticator::ApiKeyAuthenticator {
            api_token,
            header,
            inject_into,
            parameters,
        } => {
            let ctx = ctx.with("parameters", &Value::Object(parameters.clone()));
            let token = match api_token {
                Some(t) => interp::string(t, &ctx)?.unwrap_or_default(),
                None => String::new(),
            };
            match (inject_into, header) {
                (Some(opt), _) => {
                    let mut o = Options::default();
                    o.inject(opt, &Value::String(token), &ctx)?;
                    headers.extend(o.headers);
                    params.extend(o.params);
                    if !o.body_data.is_empty() || !o.body_json.is_empty() {
                        return Err(Error::config(
                            "an API key in the request body is not supported: the host can put \
                             secrets only in headers and query parameters",
                        ));
                    }
                }
                (None, Some(h)) => {
                    let name = interp::text(h, &ctx)?.unwrap_or_default();
                    headers.push((name, token));
                }
                (None, None) => {
                    return Err(Error::config(
                        "an ApiKeyAuthenticator needs `inject_into` (or `header`)",
                    ));
                }
            }
        }
        Authenticator::BasicHttpAuthenticator {
            username,
            password,
            parameters,
        } => {
            let ctx = ctx.with("parameters", &Value::Object(parameters.clone()));
            let user = interp::string(username, &ctx)?.unwrap_or_default();
            let pass = match password {
                Some(p) => interp::string(p, &ctx)?.unwrap_or_default(),
                None => String::new(),
            };
            let pair = format!("{user}:{pass}");
            let encoded = if pair.contains("{{secret:") {
                // The host encodes a secret on the way out (`|base64`), but only a whole one:
                // the pair must be one secret holding `user:password`.
                match pair.strip_suffix(':').and_then(whole_placeholder) {
                    Some(name) => format!("{{{{secret:{name}|base64}}}}"),
                    None => {
                        return Err(Error::config(
                            "HTTP Basic credentials from secrets must be one secret holding \
                             `user:password`, given as the username with an empty password",
                        ));
                    }
                }
            } else {
                base64::engine::general_purpose::STANDARD.encode(pair)
            };
            headers.push(("Authorization".into(), format!("Basic {encoded}")));
        }
    }
    Ok(())
}

/// `NAME` when `text` is exactly `{{secret:NAME}}`.
fn whole_placeholder(text: &str) -> Option<&str> {
    let name = text.strip_prefix("{{secret:")?.strip_suffix("}}")?;
    (!name.is_empty() && !name.contains(['{', '}', '|'])).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn requester(v: Value) -> HttpRequester {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_request_gathers_its_parts_and_keeps_placeholders() {
        let r = requester(json!({
            "url_base": "https://{{ config.sub }}.example.com/api/",
            "path": "/users/{{ stream_slice.id }}",
            "request_parameters": {"limit": "100", "since": "{{ config.start }}", "empty": "{{ config.nope }}", "flag": "{{ config.flag }}"},
            "request_headers": {"Accept": "application/json"},
            "authenticator": {"type": "ApiKeyAuthenticator", "api_token": "{{ config.key }}",
                "inject_into": {"inject_into": "request_parameter", "field_name": "api_key"}}
        }));
        let mut ctx = Context::new(
            &json!({"sub": "acme", "start": "2024-01-01 00:00", "flag": true, "key": "{{secret:key}}"}),
            &Map::new(),
        );
        ctx.set("stream_slice", &json!({"id": 7}));
        let mut o = Options::default();
        o.params.push(("page".into(), "2".into()));
        let req = build(&r, &o, &ctx).unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(
            req.url,
            "https://acme.example.com/api/users/7?limit=100&since=2024-01-01%2000%3A00&flag=True&page=2&api_key={{secret:key}}"
        );
        assert_eq!(
            req.headers,
            vec![("Accept".to_string(), "application/json".to_string())]
        );
        assert_eq!(req.body, None);
    }

    #[test]
    fn query_values_are_the_rendered_text_unless_it_is_a_string_or_list_literal() {
        let r = requester(json!({
            "url_base": "https://x.example.com",
            "request_parameters": {"price": "1.50", "lang": "{{ config.get('lang') }}",
                "ids": "{{ [1, 2] }}", "quoted": "'a b'", "gone": "{{ config.nope }}"}
        }));
        let req = build(
            &r,
            &Options::default(),
            &Context::new(&json!({}), &Map::new()),
        )
        .unwrap();
        assert_eq!(
            req.url, "https://x.example.com?price=1.50&lang=None&ids=1&ids=2&quoted=a%20b",
            "as the CDK sends them"
        );
    }

    #[test]
    fn a_next_page_url_that_repeats_the_parameters_does_not_get_them_twice() {
        let r = requester(json!({
            "url_base": "https://x.example.com",
            "request_parameters": {"per_page": "100", "since": "2024-01-01 00:00", "other": "1"}
        }));
        let ctx = Context::new(&json!({}), &Map::new());
        let o = Options {
            path: Some(
                "https://x.example.com/people?per_page=100&since=2024-01-01+00%3A00&other=2&page=2"
                    .into(),
            ),
            ..Options::default()
        };
        let req = build(&r, &o, &ctx).unwrap();
        assert_eq!(
            req.url,
            "https://x.example.com/people?per_page=100&since=2024-01-01+00%3A00&other=2&page=2&other=1",
            "same key and value: dropped; another value: sent, as the CDK does"
        );
    }

    #[test]
    fn bodies_and_basic_auth() {
        let r = requester(json!({
            "url_base": "https://x.example.com", "path": "search", "http_method": "POST",
            "request_body_json": {"query": {"since": "{{ config.n }}"}, "list": ["{{ config.n }}", 2]},
            "authenticator": {"type": "BasicHttpAuthenticator", "username": "{{ config.u }}", "password": "{{ config.p }}"}
        }));
        let ctx = Context::new(&json!({"n": 5, "u": "me", "p": "pw"}), &Map::new());
        let req = build(&r, &Options::default(), &ctx).unwrap();
        assert_eq!(req.url, "https://x.example.com/search");
        let body: Value = serde_json::from_slice(req.body.as_ref().unwrap()).unwrap();
        assert_eq!(body, json!({"query": {"since": 5}, "list": [5, 2]}));
        assert!(
            req.headers
                .contains(&("Authorization".into(), "Basic bWU6cHc=".into()))
        );

        let ctx = Context::new(
            &json!({"n": 1, "u": "{{secret:basic}}", "p": ""}),
            &Map::new(),
        );
        let req = build(&r, &Options::default(), &ctx).unwrap();
        assert!(req.headers.contains(&(
            "Authorization".into(),
            "Basic {{secret:basic|base64}}".into()
        )));
        let ctx = Context::new(
            &json!({"n": 1, "u": "me", "p": "{{secret:pw}}"}),
            &Map::new(),
        );
        let e = build(&r, &Options::default(), &ctx)
            .unwrap_err()
            .to_string();
        assert!(e.contains("one secret"), "{e}");
    }

    #[test]
    fn links_parse_like_requests() {
        let resp = HttpResponse {
            status: 200,
            headers: vec![(
                "Link".into(),
                "<https://x/p2>; rel=\"next\", <https://x/p9>; rel=\"last\"".into(),
            )],
            body: vec![],
        };
        assert_eq!(resp.headers_value()["link"]["next"]["url"], "https://x/p2");
        assert_eq!(join_url("https://x/api/", "/v1"), "https://x/api/v1");
        assert_eq!(join_url("https://x/api", ""), "https://x/api");
        assert_eq!(
            join_url("https://x/api", "https://y/next?p=2"),
            "https://y/next?p=2"
        );
    }
}
