//! source-http against a real HTTP server on 127.0.0.1 (granted by its exact address): every
//! pagination style, auth through secrets the connector never sees, incremental reads, and the
//! host's handling of 429 and 503.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sluice::boundary::events::{Capability, Outcome};
use sluice::sync::RunReport;
use sluice_tests::server::{Reply, Seen, TestServer};
use sluice_tests::{Scratch, connector, read_jsonl, source_to_file, toml_path};

#[derive(Debug, Clone)]
struct Item {
    id: u64,
    updated_at: String,
}

/// A small API over `items`: one endpoint per pagination style, a bearer token, `since`.
struct Api {
    items: Arc<Mutex<Vec<Item>>>,
    server: TestServer,
}

fn ts(day: u64) -> String {
    format!("2024-01-{day:02}T00:00:00Z")
}

fn json_items(items: &[Item]) -> Vec<serde_json::Value> {
    items
        .iter()
        .map(|i| serde_json::json!({"id": i.id, "name": format!("item {}", i.id), "updated_at": i.updated_at}))
        .collect()
}

impl Api {
    fn start(token: &'static str) -> Api {
        let items: Arc<Mutex<Vec<Item>>> = Arc::new(Mutex::new(
            (1..=25)
                .map(|id| Item {
                    id,
                    // Not in id order: pages are not sorted by the cursor.
                    updated_at: ts(1 + (id * 7) % 20),
                })
                .collect(),
        ));
        let data = items.clone();
        let server = TestServer::start(move |req: &Seen| {
            if req.header("authorization") != Some(&format!("Bearer {token}")) {
                return Reply::status(401, "bad token");
            }
            let mut all = data.lock().unwrap().clone();
            if let Some(since) = req.query("since") {
                all.retain(|i| i.updated_at > since);
            }
            let n = |name: &str, default: usize| {
                req.query(name)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default)
            };
            let slice = |from: usize, len: usize| {
                json_items(&all[from.min(all.len())..(from + len).min(all.len())])
            };
            match req.path() {
                "/page" => {
                    let (page, per) = (n("page", 1), n("per_page", 10));
                    Reply::json(&serde_json::json!({ "items": slice((page - 1) * per, per) }))
                }
                "/offset" => Reply::json(&serde_json::Value::Array(slice(
                    n("offset", 0),
                    n("limit", 10),
                ))),
                "/cursor" => {
                    let from = n("cursor", 0);
                    let next = (from + 10 < all.len()).then(|| (from + 10).to_string());
                    Reply::json(
                        &serde_json::json!({ "data": slice(from, 10), "meta": { "next": next } }),
                    )
                }
                "/link" => {
                    let page = n("page", 1);
                    let mut r = Reply::json(&serde_json::Value::Array(slice((page - 1) * 10, 10)));
                    if page * 10 < all.len() {
                        r = r.header("link", &format!("</link?page={}>; rel=\"next\"", page + 1));
                    }
                    r
                }
                _ => Reply::status(404, "no such endpoint"),
            }
        });
        Api { items, server }
    }
}

/// A source-http → destination-file connection to `api`, the token bound as a secret.
fn conn(port: u16, streams: &str, selections: &str, extra_grant: &str) -> String {
    let source = format!(
        r#"
connector = {src}
[source.config]
base_url = "http://127.0.0.1:{port}"
auth = {{ type = "bearer", token = "{{{{secret:api_token}}}}" }}
{streams}
[source.grant.network]
allow = ["http://127.0.0.1:{port}"]
retry_budget_secs = 5
{extra_grant}
[[source.grant.secrets]]
name = "api_token"
file = "token.txt"
to = ["http://127.0.0.1:{port}"]
"#,
        src = toml_path(&connector("source-http")),
    );
    source_to_file("http", &source, selections)
}

const STREAMS: &str = r#"
[[source.config.streams]]
name = "paged"
path = "/page"
records = "$.items"
pagination = { type = "page", size_param = "per_page", size = 10 }
[[source.config.streams]]
name = "offset"
path = "offset"
pagination = { type = "offset", limit = 10 }
[[source.config.streams]]
name = "cursor"
path = "/cursor"
records = "$.data[*]"
pagination = { type = "cursor", cursor_path = "$.meta.next" }
[[source.config.streams]]
name = "linked"
path = "/link"
pagination = { type = "link" }
"#;

async fn run(s: &Scratch, text: &str) -> RunReport {
    s.write("c.toml", text);
    s.run("c.toml").await
}

fn ids(s: &Scratch, stream: &str) -> Vec<u64> {
    read_jsonl(&s.path(&format!("out/{stream}.jsonl")))
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pagination_style_reads_every_record_once() {
    let api = Api::start("s3cr3t-token");
    let s = Scratch::new();
    s.write("token.txt", "s3cr3t-token\n");
    let r = run(&s, &conn(api.server.port(), STREAMS, "", "")).await;
    assert!(r.succeeded(), "{:?}\n{:#?}", r.error, r.log);
    let all: Vec<u64> = (1..=25).collect();
    for stream in ["paged", "offset", "cursor", "linked"] {
        assert_eq!(ids(&s, stream), all, "{stream}");
    }
    let seen = api.server.seen();
    for path in ["/page", "/offset", "/cursor", "/link"] {
        let n = seen.iter().filter(|q| q.path() == path).count();
        assert_eq!(n, 3, "{path}: 10 + 10 + 5 records in three requests");
    }
    // The host substituted the token; the connector, the events and the log never had it.
    assert!(
        seen.iter()
            .all(|q| q.header("authorization") == Some("Bearer s3cr3t-token"))
    );
    let events = format!("{:?}", r.events);
    assert!(!events.contains("s3cr3t-token"));
    assert!(!format!("{:?}", r.log).contains("s3cr3t-token"));
    let requests = r
        .events
        .iter()
        .filter(|e| e.capability == Capability::Network && e.outcome == Outcome::Allowed)
        .count();
    assert_eq!(requests, 12, "every request is on the record");
    assert!(
        !events.contains("per_page"),
        "query strings are not recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_an_auth_error() {
    let api = Api::start("right");
    let s = Scratch::new();
    s.write("token.txt", "wrong");
    let r = run(&s, &conn(api.server.port(), STREAMS, "", "")).await;
    let err = r.error.expect("401").to_string();
    assert!(err.contains("auth error") && err.contains("401"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_basic_credentials_come_from_bound_secrets() {
    let server = TestServer::start(|req: &Seen| {
        let key_ok = req.query("api_key").as_deref() == Some("k&y=1");
        // "alice:pa ss" in base64
        let basic_ok = req.header("authorization") == Some("Basic YWxpY2U6cGEgc3M=");
        if key_ok || basic_ok {
            Reply::json(
                &serde_json::json!([{ "id": 1, "via": if key_ok { "key" } else { "basic" } }]),
            )
        } else {
            Reply::status(403, "no")
        }
    });
    let port = server.port();
    let stream = "[[source.config.streams]]\nname = \"things\"\npath = \"/things\"\n";
    let api_key =
        r#"{ type = "api_key", name = "api_key", value = "{{secret:api_token}}", in = "query" }"#;
    let bound = format!("to = [\"http://127.0.0.1:{port}\"]\n");
    for (auth, secret, via, places) in [
        (api_key, "k&y=1", "key", "query = [\"api_key\"]\n"),
        (
            r#"{ type = "basic", credentials = "{{secret:api_token}}" }"#,
            "alice:pa ss",
            "basic",
            "",
        ),
    ] {
        let s = Scratch::new();
        s.write("token.txt", secret);
        let text = conn(port, stream, "", "")
            .replace(
                r#"auth = { type = "bearer", token = "{{secret:api_token}}" }"#,
                &format!("auth = {auth}"),
            )
            .replace(&bound, &format!("{bound}{places}"));
        let r = run(&s, &text).await;
        assert!(r.succeeded(), "{via}: {:?}", r.error);
        assert_eq!(read_jsonl(&s.path("out/things.jsonl"))[0]["via"], via);
    }
    // A query parameter the grant does not name never carries the secret: by default it goes
    // in `Authorization` only.
    let s = Scratch::new();
    s.write("token.txt", "k&y=1");
    let text = conn(port, stream, "", "").replace(
        r#"auth = { type = "bearer", token = "{{secret:api_token}}" }"#,
        &format!("auth = {api_key}"),
    );
    let r = run(&s, &text).await;
    let err = r.error.as_ref().expect("refused").to_string();
    assert!(
        r.events.iter().any(|e| e
            .detail
            .contains("only in header `authorization`, not in query parameter `api_key`")),
        "{err} {:#?}",
        r.events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_reads_move_only_what_changed() {
    let api = Api::start("test-token");
    let port = api.server.port();
    let streams = r#"
[[source.config.streams]]
name = "items"
path = "/offset"
primary_key = ["id"]
pagination = { type = "offset", limit = 10 }
incremental = { cursor_field = "updated_at", param = "since" }
"#;
    let select = "[[streams]]\nname = \"items\"\nsync_mode = \"incremental\"\n";
    let s = Scratch::new();
    s.write("token.txt", "test-token");
    let text = conn(port, streams, select, "");
    let first = run(&s, &text).await;
    assert!(first.succeeded(), "{:?}", first.error);
    assert_eq!(first.records(), 25);
    let states = s.store().await.states("http").await.unwrap();
    assert_eq!(
        states[0].state.state,
        r#"{"cursor":"2024-01-20T00:00:00Z"}"#
    );

    // Three items change; the next run moves exactly those.
    {
        let mut items = api.items.lock().unwrap();
        for (i, id) in [3u64, 11, 24].iter().enumerate() {
            let item = items.iter_mut().find(|x| x.id == *id).unwrap();
            item.updated_at = ts(25 + i as u64);
        }
    }
    let second = run(&s, &text).await;
    assert!(second.succeeded(), "{:?}", second.error);
    assert_eq!(second.records(), 3);
    let last = api.server.seen().last().unwrap().clone();
    assert_eq!(last.query("since").as_deref(), Some("2024-01-20T00:00:00Z"));
    let all = ids(&s, "items");
    assert_eq!(all.len(), 28, "appended");
    assert_eq!(&all[25..], &[3, 11, 24]);

    let third = run(&s, &text).await;
    assert!(third.succeeded(), "{:?}", third.error);
    assert_eq!(third.records(), 0, "a state in the future returns nothing");
}

/// A server answering `status` (with `retry_after`, if any) `failures` times, then records.
fn flaky(
    status: u16,
    retry_after: Option<&'static str>,
    failures: usize,
) -> (TestServer, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let server = TestServer::start(move |_| {
        if h.fetch_add(1, Ordering::SeqCst) < failures {
            let r = Reply::status(status, "slow down");
            match retry_after {
                Some(v) => r.header("retry-after", v),
                None => r,
            }
        } else {
            Reply::json(&serde_json::json!([{ "id": 1 }, { "id": 2 }]))
        }
    });
    (server, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_responses_are_retried_by_the_host() {
    let stream = "[[source.config.streams]]\nname = \"things\"\npath = \"/things\"\n";
    for (status, retry_after) in [(429, Some("1")), (503, None), (429, None)] {
        let (server, hits) = flaky(status, retry_after, 2);
        let s = Scratch::new();
        s.write("token.txt", "test-token");
        let r = run(&s, &conn(server.port(), stream, "", "")).await;
        assert!(r.succeeded(), "{status} {retry_after:?}: {:?}", r.error);
        assert_eq!(
            hits.load(Ordering::SeqCst),
            3,
            "two retries, then the records"
        );
        assert_eq!(read_jsonl(&s.path("out/things.jsonl")).len(), 2);
        let request = r
            .events
            .iter()
            .find(|e| e.capability == Capability::Network)
            .unwrap();
        assert!(
            request.detail.starts_with("200") && request.detail.contains("2 retries"),
            "one request on the record, with its retries: {request:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_retry_budget_is_spent_the_connector_is_rate_limited() {
    let (server, hits) = flaky(429, Some("1"), usize::MAX);
    let stream = "[[source.config.streams]]\nname = \"things\"\npath = \"/things\"\n";
    let s = Scratch::new();
    s.write("token.txt", "test-token");
    let text = conn(server.port(), stream, "", "")
        .replace("retry_budget_secs = 5", "retry_budget_secs = 2.5");
    let r = run(&s, &text).await;
    let err = r.error.expect("rate limited").to_string();
    assert!(err.contains("rate limited") && err.contains("429"), "{err}");
    let n = hits.load(Ordering::SeqCst);
    assert!(
        (2..=4).contains(&n),
        "retried within the budget, then gave up: {n} requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_the_configured_streams() {
    let api = Api::start("test-token");
    let s = Scratch::new();
    s.write("token.txt", "test-token");
    let text = conn(
        api.server.port(),
        STREAMS,
        "[[streams]]\nname = \"nope\"\n",
        "",
    );
    let r = run(&s, &text).await;
    let err = r.error.expect("unknown stream").to_string();
    assert!(err.contains("paged, offset, cursor, linked"), "{err}");
}
