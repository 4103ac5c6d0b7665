//! The control API under load, with its access and audit layers on (every request authenticated
//! and written to the audit log), on loopback.
//!
//! The server is the real router on a real TCP listener, in its own two-worker runtime; the load
//! generator runs on another thread. Open loop: requests are sent at a fixed rate whatever the
//! answers do, and each latency counts from when its request was *due*, so a stalled server
//! shows as latency rather than as fewer requests (no coordinated omission).
//!
//! Routes, each at the target rate:
//! - `GET /healthz` — no key, still audited: the floor (TCP, HTTP, the audit write).
//! - `GET /v1/workspaces/{ws}/runs/{id}` — key, role, workspace membership, run + stats read.
//! - `POST /v1/workspaces/{ws}/connections/{name}/runs` — the trigger path (workspace check,
//!   connection read, building the run's connection, the connection lock), answered `409`
//!   because the bench holds that lock (a real run per request would measure the connectors).
//!
//! Then a closed-loop run of the `GET` with 16 connections as fast as they go: the ceiling.
//! `cargo xtask bench --bench api`. Knobs: SLUICE_BENCH_RATE (default 2000 requests/s),
//! SLUICE_BENCH_SECS (default 5).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use secrecy::ExposeSecret;
use serde_json::json;
use sluice::api::{ApiState, Guards};
use sluice::server::{Server, ServerConfig};
use sluice::store::{ConnectionDef, EndpointDef, EndpointKind, RunStatus, Store};
use sluice_tests::Scratch;
use sluice_tests::bench::env_u64;

/// Connections the open-loop generator spreads requests over.
const CONNECTIONS: usize = 32;

struct Target {
    addr: std::net::SocketAddr,
    token: String,
}

fn request(method: &Method, path: &str, token: Option<&str>) -> Request<Empty<Bytes>> {
    let mut r = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("host", "127.0.0.1");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Empty::new()).unwrap()
}

async fn connect(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// What one load run saw.
struct Seen {
    latencies: Vec<Duration>,
    statuses: BTreeMap<u16, usize>,
    elapsed: Duration,
}

impl Seen {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut v = self.latencies.clone();
        v.sort();
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
    }
}

/// `rate` requests per second for `secs`, spread over [`CONNECTIONS`] keep-alive connections.
async fn open_loop(
    t: &Target,
    method: Method,
    path: &str,
    auth: bool,
    rate: u64,
    secs: u64,
) -> Seen {
    let total = rate * secs;
    let per_conn = total as usize / CONNECTIONS;
    let interval = Duration::from_secs_f64(CONNECTIONS as f64 / rate as f64);
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (addr, token, method, path) =
            (t.addr, t.token.clone(), method.clone(), path.to_string());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            // Stagger the connections across one interval.
            let offset = interval.mul_f64(c as f64 / CONNECTIONS as f64);
            let mut out = Vec::with_capacity(per_conn);
            for i in 0..per_conn {
                let due = start + offset + interval * i as u32;
                tokio::time::sleep_until(due).await;
                sender.ready().await.unwrap();
                let resp = sender
                    .send_request(request(&method, &path, auth.then_some(token.as_str())))
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                resp.into_body().collect().await.unwrap();
                out.push((due.elapsed(), status));
            }
            out
        }));
    }
    let began = Instant::now();
    let mut seen = Seen {
        latencies: Vec::new(),
        statuses: BTreeMap::new(),
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        for (lat, status) in t.await.unwrap() {
            seen.latencies.push(lat);
            *seen.statuses.entry(status).or_default() += 1;
        }
    }
    seen.elapsed = began.elapsed().saturating_sub(Duration::from_millis(100));
    seen
}

/// As fast as `conns` connections go, for `secs`.
async fn closed_loop(t: &Target, path: &str, conns: usize, secs: u64) -> Seen {
    let until = Instant::now() + Duration::from_secs(secs);
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (addr, token, path) = (t.addr, t.token.clone(), path.to_string());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            let mut out = Vec::new();
            while Instant::now() < until {
                let sent = Instant::now();
                sender.ready().await.unwrap();
                let resp = sender
                    .send_request(request(&Method::GET, &path, Some(&token)))
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                resp.into_body().collect().await.unwrap();
                out.push((sent.elapsed(), status));
            }
            out
        }));
    }
    let mut seen = Seen {
        latencies: Vec::new(),
        statuses: BTreeMap::new(),
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        for (lat, status) in t.await.unwrap() {
            seen.latencies.push(lat);
            *seen.statuses.entry(status).or_default() += 1;
        }
    }
    seen.elapsed = began.elapsed();
    seen
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rate = env_u64("SLUICE_BENCH_RATE", 2000);
    let secs = env_u64("SLUICE_BENCH_SECS", 5);
    let (server_rt, runtime, _cache) = sluice_tests::bench::runtimes();
    let s = Scratch::new();

    // A workspace with a source, a destination, a connection and one finished run with stats.
    let (store, token, run_id, _lock) = server_rt.block_on(async {
        let store = Arc::new(Store::open(&s.data_dir()).await.unwrap());
        let (key, token) = store.create_api_key("bench", "member", None).await.unwrap();
        store.create_workspace("w").await.unwrap();
        store.set_member("w", &key.id, "editor").await.unwrap();
        for (kind, name, connector) in [
            (EndpointKind::Source, "users", "source-faker"),
            (EndpointKind::Destination, "files", "destination-file"),
        ] {
            let e = EndpointDef {
                workspace: "w".into(),
                kind,
                name: name.into(),
                connector: connector.into(),
                config: json!({}),
                grant: json!({}),
                secrets: vec![],
                created_at: String::new(),
                updated_at: String::new(),
            };
            store.put_endpoint(&e, &BTreeMap::new()).await.unwrap();
        }
        let def = ConnectionDef {
            workspace: "w".into(),
            name: "c".into(),
            source: "users".into(),
            destination: "files".into(),
            settings: json!({}),
            schedule: None,
            status: "active".into(),
            created_at: String::new(),
            updated_at: String::new(),
        };
        store.put_connection(&def).await.unwrap();
        let lock = store.lock(&def.key()).unwrap();
        let run = store.begin_run(&lock, &def.key(), false).await.unwrap();
        store
            .finish_run(run.run_id, run.attempt, RunStatus::Succeeded, None, &[], 0)
            .await
            .unwrap();
        // Held for the whole bench: every trigger finds the connection running.
        (store, token.expose_secret().to_string(), run.run_id, lock)
    });
    let server = Server::new(store.clone(), runtime, &ServerConfig::default()).unwrap();
    // Far above the load: the limiter is consulted on every request but never refuses.
    let state = ApiState::new(server, Guards::new(1_000_000));
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    server_rt.spawn(sluice::api::serve(listener, state, std::future::pending()));

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let target = Target { addr, token };
    let run_path = format!("/v1/workspaces/w/runs/{run_id}");
    let trigger_path = "/v1/workspaces/w/connections/c/runs";
    // Warm up (connections, SQLite pages, the allocator).
    client.block_on(open_loop(&target, Method::GET, &run_path, true, 500, 1));

    println!(
        "\n## Control API under load ({rate} requests/s for {secs} s, open loop, {CONNECTIONS} connections, auth + audit on)\n"
    );
    println!("| route | sent/s | answered | p50 | p99 | max | p99 / floor p99 |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let floor = client.block_on(open_loop(
        &target,
        Method::GET,
        "/healthz",
        false,
        rate,
        secs,
    ));
    let get = client.block_on(open_loop(&target, Method::GET, &run_path, true, rate, secs));
    let post = client.block_on(open_loop(
        &target,
        Method::POST,
        trigger_path,
        true,
        rate,
        secs,
    ));
    for (name, seen) in [
        ("GET /healthz (floor)", &floor),
        ("GET …/runs/{id}", &get),
        ("POST …/connections/{name}/runs", &post),
    ] {
        println!(
            "| {name} | {:.0} | {:?} | {} | {} | {} | {:.2} |",
            seen.rate(),
            seen.statuses,
            ms(seen.percentile(0.50)),
            ms(seen.percentile(0.99)),
            ms(seen.percentile(1.0)),
            seen.percentile(0.99).as_secs_f64() / floor.percentile(0.99).as_secs_f64(),
        );
    }
    let ceiling = client.block_on(closed_loop(&target, &run_path, 16, secs));
    println!(
        "\nClosed loop, 16 connections, `GET …/runs/{{id}}`: {:.0} requests/s ({:.2}x the target), p50 {}, p99 {}, statuses {:?}",
        ceiling.rate(),
        ceiling.rate() / rate as f64,
        ms(ceiling.percentile(0.50)),
        ms(ceiling.percentile(0.99)),
        ceiling.statuses
    );
    let target_ms = 5.0;
    for (name, seen) in [("GET", &get), ("POST", &post)] {
        let p99 = seen.percentile(0.99).as_secs_f64() * 1000.0;
        println!(
            "{name}: p99 {p99:.2} ms against the {target_ms} ms target ({})",
            if p99 < target_ms { "met" } else { "NOT met" }
        );
    }
    let audited = server_rt
        .block_on(store.audit_entries(&Default::default()))
        .unwrap()
        .len();
    println!("audit entries written: {audited}");
}
