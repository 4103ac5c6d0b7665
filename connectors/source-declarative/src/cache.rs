//! The response cache of parent streams, as Airbyte's runtime keeps one: a stream that another
//! stream partitions on (a `SubstreamPartitionRouter` parent) has its successful GETs cached for
//! the run, unless its requester says `use_cache: false`, so a parent read by three substreams
//! and by itself is requested once — the requests an API sees (and its rate limits) are the
//! same as under the CDK. Bounded: past [`MAX_CACHE_BYTES`] nothing more is kept.

use std::collections::HashMap;

use serde_json::Value;

use crate::request::{HttpRequest, HttpResponse, Transport};
use sluice_sdk::Result;

/// Most bytes of response bodies the cache keeps (past it, responses are not cached).
pub const MAX_CACHE_BYTES: usize = 64 << 20;

/// Set `use_cache: true` on the requester of every stream some stream partitions on (the
/// parent configs themselves and the top-level streams of those names), leaving an explicit
/// `use_cache` as it is. Works on the resolved manifest, before it is decoded.
pub fn mark_parents(manifest: &mut Value) {
    let mut parents = Vec::new();
    collect_parent_names(manifest, &mut parents);
    mark(manifest, &parents);
}

fn stream_name(stream: &Value) -> Option<&str> {
    stream
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| stream.pointer("/$parameters/name").and_then(Value::as_str))
}

fn collect_parent_names(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(configs)) = m.get("parent_stream_configs") {
                for c in configs {
                    if let Some(name) = c.get("stream").and_then(stream_name) {
                        out.push(name.to_string());
                    }
                }
            }
            m.values().for_each(|x| collect_parent_names(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_parent_names(x, out)),
        _ => {}
    }
}

fn mark(v: &mut Value, parents: &[String]) {
    match v {
        Value::Object(m) => {
            let is_stream = m.get("type").and_then(Value::as_str) == Some("DeclarativeStream")
                || m.contains_key("retriever");
            let name = m.get("name").and_then(Value::as_str).or_else(|| {
                m.get("$parameters")
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
            });
            let named = name.is_some_and(|n| parents.iter().any(|p| p == n));
            if is_stream
                && named
                && let Some(Value::Object(req)) =
                    m.get_mut("retriever").and_then(|r| r.get_mut("requester"))
            {
                req.entry("use_cache").or_insert(Value::Bool(true));
            }
            m.values_mut().for_each(|x| mark(x, parents));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mark(x, parents)),
        _ => {}
    }
}

/// A transport that answers cacheable requests it has seen from memory. The key is the whole
/// request (method, URL, headers, body), as the CDK's cache matches headers too; only GETs
/// answered 200 are kept.
pub struct Cached<T> {
    inner: T,
    entries: HashMap<CacheKey, HttpResponse>,
    bytes: usize,
}

type CacheKey = (String, String, Vec<(String, String)>, Option<Vec<u8>>);

impl<T> Cached<T> {
    /// An empty cache in front of `inner`.
    pub fn new(inner: T) -> Self {
        Cached {
            inner,
            entries: HashMap::new(),
            bytes: 0,
        }
    }
}

impl<T: Transport> Transport for Cached<T> {
    fn send(&mut self, req: &HttpRequest) -> Result<HttpResponse> {
        if !(req.cacheable && req.method == "GET") {
            return self.inner.send(req);
        }
        let mut headers = req.headers.clone();
        headers.sort();
        let key = (
            req.method.clone(),
            req.url.clone(),
            headers,
            req.body.clone(),
        );
        if let Some(hit) = self.entries.get(&key) {
            return Ok(hit.clone());
        }
        let resp = self.inner.send(req)?;
        let size = resp.body.len() + req.url.len();
        if resp.status == 200 && self.bytes + size <= MAX_CACHE_BYTES {
            self.bytes += size;
            self.entries.insert(key, resp.clone());
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parents_are_marked_wherever_they_appear_and_an_explicit_false_stays() {
        let mut m = json!({
            "streams": [
                {"type": "DeclarativeStream", "name": "projects", "retriever": {"requester": {}}},
                {"type": "DeclarativeStream", "name": "users", "retriever": {"requester": {"use_cache": false}}},
                {"type": "DeclarativeStream", "name": "other", "retriever": {"requester": {}}},
                {"type": "DeclarativeStream", "name": "tasks", "retriever": {"requester": {},
                    "partition_router": {"type": "SubstreamPartitionRouter", "parent_stream_configs": [
                        {"stream": {"type": "DeclarativeStream", "$parameters": {"name": "projects"}, "retriever": {"requester": {}}}},
                        {"stream": {"type": "DeclarativeStream", "name": "users", "retriever": {"requester": {"use_cache": false}}}}
                    ]}}}
            ]
        });
        mark_parents(&mut m);
        assert_eq!(
            m.pointer("/streams/0/retriever/requester/use_cache"),
            Some(&json!(true))
        );
        assert_eq!(
            m.pointer("/streams/1/retriever/requester/use_cache"),
            Some(&json!(false))
        );
        assert_eq!(m.pointer("/streams/2/retriever/requester/use_cache"), None);
        assert_eq!(m.pointer("/streams/3/retriever/requester/use_cache"), None);
        let parent = "/streams/3/retriever/partition_router/parent_stream_configs";
        assert_eq!(
            m.pointer(&format!("{parent}/0/stream/retriever/requester/use_cache")),
            Some(&json!(true))
        );
        assert_eq!(
            m.pointer(&format!("{parent}/1/stream/retriever/requester/use_cache")),
            Some(&json!(false))
        );
    }

    struct Counting(usize, u16);
    impl Transport for Counting {
        fn send(&mut self, _: &HttpRequest) -> Result<HttpResponse> {
            self.0 += 1;
            Ok(HttpResponse {
                status: self.1,
                headers: vec![],
                body: b"{}".to_vec(),
            })
        }
    }

    fn get(url: &str, cacheable: bool) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: vec![("A".into(), "1".into())],
            body: None,
            cacheable,
        }
    }

    #[test]
    fn only_cacheable_successful_gets_are_answered_from_memory() {
        let mut t = Cached::new(Counting(0, 200));
        t.send(&get("http://a/x", true)).unwrap();
        t.send(&get("http://a/x", true)).unwrap();
        assert_eq!(t.inner.0, 1, "the second is a hit");
        t.send(&get("http://a/x?page=2", true)).unwrap();
        t.send(&get("http://a/y", false)).unwrap();
        t.send(&get("http://a/y", false)).unwrap();
        assert_eq!(t.inner.0, 4, "another URL and uncacheable requests go out");
        let mut post = get("http://a/x", true);
        post.method = "POST".into();
        t.send(&post).unwrap();
        assert_eq!(t.inner.0, 5, "a POST is never cached");

        let mut failing = Cached::new(Counting(0, 500));
        failing.send(&get("http://a/x", true)).unwrap();
        failing.send(&get("http://a/x", true)).unwrap();
        assert_eq!(failing.inner.0, 2, "an error is asked again");
    }
}
