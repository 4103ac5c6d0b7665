//! Building requests, reading pages, and finding the next one.

use std::cmp::Ordering;

use base64::Engine;
use serde_json_path::JsonPath;
use sluice_sdk::http::{self, Response, encode_query_value};
use sluice_sdk::{Error, Result, Value};

use crate::config::{Auth, Config, KeyLocation, Pagination, StreamConfig};

/// Where the next page is.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Query parameters to add to the stream's own (page number, offset, cursor).
    Params(Vec<(String, String)>),
    /// A full URL (from a `Link` header).
    Url(String),
}

/// Page `page` of page-number pagination.
fn page_params(param: &str, page: u64, size_param: &Option<String>, size: &Option<u64>) -> Next {
    let mut p = vec![(param.to_string(), page.to_string())];
    if let (Some(sp), Some(n)) = (size_param, size) {
        p.push((sp.clone(), n.to_string()));
    }
    Next::Params(p)
}

/// The page at `offset` of offset pagination.
fn offset_params(param: &str, offset: u64, limit_param: &str, limit: u64) -> Next {
    Next::Params(vec![
        (param.to_string(), offset.to_string()),
        (limit_param.to_string(), limit.to_string()),
    ])
}

/// The first page's request.
pub fn first(stream: &StreamConfig) -> Next {
    match &stream.pagination {
        Pagination::None | Pagination::Link | Pagination::Cursor { .. } => Next::Params(vec![]),
        Pagination::Page {
            param,
            start,
            size_param,
            size,
        } => page_params(param, *start, size_param, size),
        Pagination::Offset {
            param,
            limit_param,
            limit,
        } => offset_params(param, 0, limit_param, *limit),
    }
}

/// The URL of a page.
pub fn url(config: &Config, stream: &StreamConfig, next: &Next, since: Option<&Value>) -> String {
    if let Next::Url(u) = next {
        return u.clone();
    }
    let mut params: Vec<(String, String)> = stream
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Next::Params(p) = next {
        params.extend(p.iter().cloned());
    }
    if let (Some(inc), Some(since)) = (&stream.incremental, since)
        && let Some(param) = &inc.param
    {
        let v = match since {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        params.push((param.clone(), v));
    }
    if let Auth::ApiKey {
        name,
        value,
        location: KeyLocation::Query,
    } = &config.auth
    {
        params.push((name.clone(), value.clone()));
    }
    let base = config.base_url.trim_end_matches('/');
    let path = if stream.path.starts_with('/') || stream.path.is_empty() {
        stream.path.clone()
    } else {
        format!("/{}", stream.path)
    };
    let mut url = format!("{base}{path}");
    for (i, (k, v)) in params.iter().enumerate() {
        url.push(if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        });
        url.push_str(&encode_query_value(k));
        url.push('=');
        url.push_str(&encode_query_value(v));
    }
    url
}

/// The request of a page, with the config's headers and auth.
pub fn request(config: &Config, url: &str) -> http::Request {
    let mut req = http::get(url).header("Accept", "application/json");
    for (k, v) in &config.headers {
        req = req.header(k, v);
    }
    match &config.auth {
        Auth::None => req,
        Auth::Bearer { token } => req.header("Authorization", format!("Bearer {token}")),
        Auth::ApiKey {
            name,
            value,
            location: KeyLocation::Header,
        } => req.header(name, value),
        Auth::ApiKey { .. } => req,
        Auth::Basic {
            credentials: Some(c),
            ..
        } => {
            // `{{secret:NAME}}` → `{{secret:NAME|base64}}`: the host encodes `user:password`.
            let encoded = match c.strip_suffix("}}") {
                Some(head) if c.starts_with("{{secret:") => format!("{head}|base64}}}}"),
                _ => base64::engine::general_purpose::STANDARD.encode(c),
            };
            req.header("Authorization", format!("Basic {encoded}"))
        }
        Auth::Basic {
            username, password, ..
        } => {
            let pair = format!(
                "{}:{}",
                username.as_deref().unwrap_or(""),
                password.as_deref().unwrap_or("")
            );
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            req.header("Authorization", format!("Basic {encoded}"))
        }
    }
}

/// The records of a response body.
pub fn records(stream: &StreamConfig, body: &Value) -> Result<Vec<Value>> {
    let found: Vec<Value> = match &stream.records {
        None => match body {
            Value::Array(a) => a.clone(),
            _ => {
                return Err(Error::config(format!(
                    "stream `{}`: the response is not an array of records; set `records` to the \
                     JSONPath where they are (e.g. \"$.data\")",
                    stream.name
                )));
            }
        },
        Some(p) => {
            let path =
                JsonPath::parse(p).map_err(|e| Error::config(format!("`records` {p:?}: {e}")))?;
            let nodes = path.query(body).all();
            match nodes.as_slice() {
                [Value::Array(a)] => a.clone(),
                nodes => nodes.iter().map(|v| (*v).clone()).collect(),
            }
        }
    };
    for r in &found {
        if !r.is_object() {
            return Err(Error::fatal(format!(
                "stream `{}`: a record is not a JSON object: {}",
                stream.name,
                truncate(&r.to_string())
            )));
        }
    }
    Ok(found)
}

fn truncate(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Where the page after this one is, or `None` at the end.
pub fn next(
    stream: &StreamConfig,
    current: &Next,
    url: &str,
    response: &Response,
    body: &Value,
    count: usize,
) -> Result<Option<Next>> {
    let param_value = |name: &str| -> Option<u64> {
        match current {
            Next::Params(p) => p.iter().find(|(k, _)| k == name)?.1.parse().ok(),
            Next::Url(_) => None,
        }
    };
    Ok(match &stream.pagination {
        Pagination::None => None,
        Pagination::Page {
            param,
            start,
            size_param,
            size,
        } => {
            let short = size.is_some_and(|n| (count as u64) < n);
            if count == 0 || short {
                None
            } else {
                let page = param_value(param).unwrap_or(*start) + 1;
                Some(page_params(param, page, size_param, size))
            }
        }
        Pagination::Offset {
            param,
            limit_param,
            limit,
        } => {
            if (count as u64) < *limit {
                None
            } else {
                let offset = param_value(param).unwrap_or(0) + count as u64;
                Some(offset_params(param, offset, limit_param, *limit))
            }
        }
        Pagination::Cursor { param, cursor_path } => {
            let path = JsonPath::parse(cursor_path)
                .map_err(|e| Error::config(format!("`cursor_path` {cursor_path:?}: {e}")))?;
            let cursor = match path.query(body).first() {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            };
            match cursor {
                None => None,
                Some(c) => {
                    if let Next::Params(p) = current
                        && p.iter().any(|(k, v)| k == param && *v == c)
                    {
                        return Err(Error::fatal(format!(
                            "stream `{}`: the server returned the same cursor twice ({c}); \
                             stopping instead of looping",
                            stream.name
                        )));
                    }
                    Some(Next::Params(vec![(param.clone(), c)]))
                }
            }
        }
        Pagination::Link => match response.header("link").and_then(next_link) {
            None => None,
            Some(target) => Some(Next::Url(http::resolve_location(url, &target)?)),
        },
    })
}

/// The `rel="next"` target of a `Link` header (RFC 8288): `<url>; rel="next", <url>; rel=…`.
pub fn next_link(header: &str) -> Option<String> {
    let mut rest = header;
    loop {
        let open = rest.find('<')?;
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let after = &rest[close + 1..];
        let end = after.find('<').unwrap_or(after.len());
        let params = &after[..end];
        let is_next = params.split(';').any(|p| {
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_string());
        }
        rest = &after[end..];
    }
}

/// Order cursor values: numbers numerically, strings as text (ISO-8601 timestamps sort right),
/// mixed kinds by their JSON text.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::json;

    fn stream(v: Value) -> StreamConfig {
        serde_json::from_value(v).unwrap()
    }

    fn config(v: Value) -> Config {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn urls_carry_params_pages_cursor_and_query_keys() {
        let c = config(json!({
            "base_url": "https://api.example.com/v1/",
            "auth": {"type": "api_key", "name": "key", "value": "{{secret:k}}", "in": "query"},
            "streams": [{"name": "u", "path": "users", "params": {"sort": "updated"},
                         "pagination": {"type": "page", "size_param": "per_page", "size": 50},
                         "incremental": {"cursor_field": "updated_at", "param": "since"}}]
        }));
        let s = &c.streams[0];
        let u = url(&c, s, &first(s), Some(&json!("2024-01-01")));
        assert_eq!(
            u,
            "https://api.example.com/v1/users?sort=updated&page=1&per_page=50&since=2024-01-01&key={{secret:k}}"
        );
    }

    #[test]
    fn each_pagination_style_finds_the_next_page_and_the_end() {
        let resp = |link: Option<&str>| Response {
            status: 200,
            headers: link
                .map(|l| ("link".into(), l.into()))
                .into_iter()
                .collect(),
            body: vec![],
        };
        let page =
            stream(json!({"name": "s", "path": "/", "pagination": {"type": "page", "size": 2}}));
        let p1 = first(&page);
        let p2 = next(&page, &p1, "", &resp(None), &json!([]), 2)
            .unwrap()
            .unwrap();
        assert_eq!(p2, Next::Params(vec![("page".into(), "2".into())]));
        assert_eq!(
            next(&page, &p2, "", &resp(None), &json!([]), 1).unwrap(),
            None
        );

        let off = stream(
            json!({"name": "s", "path": "/", "pagination": {"type": "offset", "limit": 10}}),
        );
        let o2 = next(&off, &first(&off), "", &resp(None), &json!([]), 10)
            .unwrap()
            .unwrap();
        assert_eq!(
            o2,
            Next::Params(vec![
                ("offset".into(), "10".into()),
                ("limit".into(), "10".into())
            ])
        );
        assert_eq!(
            next(&off, &o2, "", &resp(None), &json!([]), 3).unwrap(),
            None
        );

        let cur = stream(json!({"name": "s", "path": "/",
            "pagination": {"type": "cursor", "cursor_path": "$.meta.next"}}));
        let c2 = next(
            &cur,
            &first(&cur),
            "",
            &resp(None),
            &json!({"meta": {"next": "abc"}}),
            5,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c2, Next::Params(vec![("cursor".into(), "abc".into())]));
        assert_eq!(
            next(
                &cur,
                &c2,
                "",
                &resp(None),
                &json!({"meta": {"next": null}}),
                5
            )
            .unwrap(),
            None
        );
        assert!(
            next(
                &cur,
                &c2,
                "",
                &resp(None),
                &json!({"meta": {"next": "abc"}}),
                5
            )
            .is_err()
        );

        let link = stream(json!({"name": "s", "path": "/", "pagination": {"type": "link"}}));
        let l2 = next(
            &link,
            &first(&link),
            "https://a.example.com/items?page=1",
            &resp(Some(
                r#"<https://a.example.com/items?page=1>; rel="prev", </items?page=2>; rel="next""#,
            )),
            &json!([]),
            5,
        )
        .unwrap()
        .unwrap();
        assert_eq!(l2, Next::Url("https://a.example.com/items?page=2".into()));
        assert_eq!(
            next(&link, &l2, "", &resp(None), &json!([]), 5).unwrap(),
            None
        );
    }

    #[test]
    fn link_headers_are_read_per_rfc_8288() {
        assert_eq!(next_link(r#"<a>; rel=next"#).as_deref(), Some("a"));
        assert_eq!(
            next_link(r#"<p>; rel="prev first", <n>; title="x"; rel="next""#).as_deref(),
            Some("n")
        );
        assert_eq!(next_link(r#"<p>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn records_are_selected_by_jsonpath_and_must_be_objects() {
        let s = stream(json!({"name": "s", "path": "/", "records": "$.data"}));
        assert_eq!(
            records(&s, &json!({"data": [{"a": 1}, {"a": 2}]}))
                .unwrap()
                .len(),
            2
        );
        let s = stream(json!({"name": "s", "path": "/", "records": "$.data[*].item"}));
        assert_eq!(
            records(
                &s,
                &json!({"data": [{"item": {"a": 1}}, {"item": {"a": 2}}]})
            )
            .unwrap(),
            vec![json!({"a": 1}), json!({"a": 2})]
        );
        let s = stream(json!({"name": "s", "path": "/"}));
        assert!(
            records(&s, &json!({"data": []}))
                .unwrap_err()
                .to_string()
                .contains("records")
        );
        assert!(
            records(&s, &json!([1, 2]))
                .unwrap_err()
                .to_string()
                .contains("not a JSON object")
        );
    }

    #[test]
    fn basic_credentials_stay_placeholders_for_the_host() {
        let c = config(json!({"base_url": "https://a.example.com", "streams": [],
            "auth": {"type": "basic", "credentials": "{{secret:creds}}"}}));
        let req = request(&c, "https://a.example.com/x");
        assert!(
            format!("{req:?}").contains("Basic {{secret:creds|base64}}"),
            "{req:?}"
        );
        let c = config(json!({"base_url": "https://a.example.com", "streams": [],
            "auth": {"type": "basic", "username": "alice", "password": "pw"}}));
        let req = request(&c, "https://a.example.com/x");
        assert!(format!("{req:?}").contains("Basic YWxpY2U6cHc="), "{req:?}");
    }

    #[test]
    fn cursors_compare_numbers_and_timestamps() {
        assert_eq!(compare(&json!(9), &json!(10)), Ordering::Less);
        assert_eq!(
            compare(
                &json!("2024-02-01T00:00:00Z"),
                &json!("2024-01-31T23:59:59Z")
            ),
            Ordering::Greater
        );
    }
}
