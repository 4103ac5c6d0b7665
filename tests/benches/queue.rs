//! The run queue's benchmark, on a real PostgreSQL, every figure next to its baseline in the
//! same run:
//!
//! 1. **Claim latency** with `SLUICE_BENCH_QUEUED` (default 1,000) runs queued: each claim
//!    (`FOR UPDATE SKIP LOCKED`, then the run begun in the same transaction) timed alone while
//!    the queue is kept full; p50 and p99, PostgreSQL and SQLite.
//! 2. **Queue overhead**: `SLUICE_BENCH_RUNS` (default 40) tiny runs (10 faker users → file),
//!    one per connection, run by 1, 2 and 4 in-process workers (each its own store pool and one
//!    run at a time, as `sluice worker --max-runs 1` processes would) claiming from PostgreSQL,
//!    next to the same runs started one at a time by a server on SQLite (`sluice serve`'s path:
//!    `server::runs::start`); runs per second started and finished.
//! 3. **The store under a big sync**: `SLUICE_BENCH_USERS` (default 1,000,000) faker users →
//!    file with the store in PostgreSQL vs in SQLite (the store takes the checkpoints, run
//!    records and audit entries), repetitions interleaved (`SLUICE_BENCH_REPS`, default 3).
//!
//! `cargo xtask bench --bench queue` (it builds the connectors and starts PostgreSQL).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sluice::boundary::crypto::Keyring;
use sluice::connection::Connection;
use sluice::server::runs::Running;
use sluice::server::worker::{WorkerConfig, work};
use sluice::server::{Server, ServerConfig};
use sluice::store::{ConnectionDef, EndpointDef, EndpointKind, Labels, RunStatus, Store};
use sluice::sync::{self, RunOptions};
use sluice_tests::bench::{env_u64, median, runtimes};
use sluice_tests::pg::pg;
use sluice_tests::{Scratch, connector, toml_path};

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds of each of `claims` claims with `queued` runs queued on `store`.
async fn claim_latencies(store: &Store, queued: u64, claims: u64) -> Vec<f64> {
    let none = Labels::new();
    for i in 0..queued {
        store
            .enqueue_run(&format!("w/c{i}"), &none, false, "bench")
            .await
            .unwrap()
            .unwrap();
    }
    let mut out = Vec::new();
    for i in 0..claims {
        let start = Instant::now();
        let c = store
            .claim_run("bench", &none, Duration::from_secs(60))
            .await
            .unwrap()
            .expect("a queued run");
        out.push(start.elapsed().as_secs_f64() * 1000.0);
        store
            .finish_run(
                c.start.run_id,
                c.start.attempt,
                RunStatus::Succeeded,
                None,
                &[],
                0,
            )
            .await
            .unwrap();
        store.release_run(&c).await.unwrap();
        // Keep the queue full.
        store
            .enqueue_run(&format!("w/more{i}"), &none, false, "bench")
            .await
            .unwrap()
            .unwrap();
    }
    out
}

/// `runs` tiny connections `w/t0…` (10 faker users each into a file) in `store`.
async fn tiny_connections(store: &Store, runs: u64) {
    store.create_workspace("w").await.unwrap();
    for i in 0..runs {
        let name = format!("t{i}");
        for (kind, connector_name, config, grant) in [
            (
                EndpointKind::Source,
                "source-faker",
                json!({ "count": 10, "seed": i }),
                json!({}),
            ),
            // Each node's own file area (runs of one node go one at a time).
            (
                EndpointKind::Destination,
                "destination-file",
                json!({ "path": "/output", "format": "jsonl" }),
                json!({ "dirs": [{ "host": ".", "guest": "/output" }] }),
            ),
        ] {
            let e = EndpointDef {
                workspace: "w".into(),
                kind,
                name: name.clone(),
                connector: connector(connector_name).display().to_string(),
                config,
                grant,
                secrets: vec![],
                created_at: String::new(),
                updated_at: String::new(),
            };
            store.put_endpoint(&e, &BTreeMap::new()).await.unwrap();
        }
        let def = ConnectionDef {
            workspace: "w".into(),
            name: name.clone(),
            source: name.clone(),
            destination: name,
            settings: json!({ "streams": [{ "name": "users" }] }),
            schedule: None,
            status: "active".into(),
            created_at: String::new(),
            updated_at: String::new(),
        };
        store.put_connection(&def).await.unwrap();
    }
}

/// Seconds for `workers` in-process workers to run every tiny connection queued in a fresh
/// PostgreSQL database.
async fn queued_runs(rt: &Arc<sluice::runtime::Runtime>, workers: usize, runs: u64) -> f64 {
    let db = pg().database().await;
    let url = db.url_as(&db.user);
    let dir = tempfile::tempdir().unwrap();
    let keyring = Arc::new(Keyring::open(dir.path()).unwrap());
    let setup = Store::open_postgres(&url, &dir.path().join("setup"), keyring.clone())
        .await
        .unwrap();
    tiny_connections(&setup, runs).await;
    for i in 0..runs {
        setup
            .enqueue_run(&format!("w/t{i}"), &Labels::new(), false, "bench")
            .await
            .unwrap()
            .unwrap();
    }
    let mut pools = Vec::new();
    for w in 0..workers {
        pools.push(Arc::new(
            Store::open_postgres(&url, &dir.path().join(format!("node{w}")), keyring.clone())
                .await
                .unwrap(),
        ));
    }
    let start = Instant::now();
    let mut running = Vec::new();
    for store in pools {
        let slots = Arc::new(Running::new(1));
        let mut config = WorkerConfig::new(Labels::new());
        config.poll = Duration::from_millis(50);
        running.push(slots.clone());
        tokio::spawn(work(store, rt.clone(), config, slots));
    }
    loop {
        let done = setup
            .runs(None, runs as u32 + 10)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.status == RunStatus::Succeeded)
            .count();
        if done as u64 == runs && setup.queued_runs().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    for r in running {
        r.stop_all("the bench is over");
    }
    secs
}

/// Seconds for one server on SQLite to run the same tiny connections one after another.
async fn served_runs(rt: &Arc<sluice::runtime::Runtime>, runs: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("data")).await.unwrap());
    tiny_connections(&store, runs).await;
    let config = ServerConfig {
        max_runs: 1,
        ..Default::default()
    };
    let server = Server::new(store.clone(), rt.clone(), &config).unwrap();
    let start = Instant::now();
    for i in 0..runs {
        let def = store
            .connection_def("w", &format!("t{i}"))
            .await
            .unwrap()
            .unwrap();
        let conn = sluice::server::resolve::resolve(&store, &def)
            .await
            .unwrap();
        let slot = server.running.slot().await.unwrap();
        let started =
            sluice::server::runs::start(&server, def.key(), conn, "bench".into(), false, slot)
                .await
                .unwrap();
        let end = started.done.await.unwrap();
        assert_eq!(end, sluice::server::runs::RunEnd::Succeeded);
    }
    start.elapsed().as_secs_f64()
}

/// One big sync into a file with the store `store`; seconds.
async fn big_sync(rt: &sluice::runtime::Runtime, store: &Store, s: &Scratch, users: u64) -> f64 {
    let conn = Connection::load(&s.path("c.toml")).unwrap();
    let start = Instant::now();
    let r = sync::run(
        rt,
        store,
        &conn,
        RunOptions {
            fresh: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(r.succeeded(), "{:?}", r.error);
    assert_eq!(r.streams.iter().map(|s| s.records).sum::<u64>(), users);
    secs
}

fn main() {
    let (tokio, rt, _cache) = runtimes();
    tokio.block_on(async {
        let queued = env_u64("SLUICE_BENCH_QUEUED", 1_000);
        let claims = env_u64("SLUICE_BENCH_CLAIMS", 300);
        let runs = env_u64("SLUICE_BENCH_RUNS", 40);
        let users = env_u64("SLUICE_BENCH_USERS", 1_000_000);
        let reps = env_u64("SLUICE_BENCH_REPS", 3).max(1);

        // 1. Claim latency.
        let db = pg().database().await;
        let dir = tempfile::tempdir().unwrap();
        let keyring = Arc::new(Keyring::open(dir.path()).unwrap());
        let on_pg = Store::open_postgres(&db.url_as(&db.user), &dir.path().join("pg"), keyring)
            .await
            .unwrap();
        let on_sqlite = Store::open(&dir.path().join("sqlite")).await.unwrap();
        for (name, store) in [("postgres", &on_pg), ("sqlite", &on_sqlite)] {
            let ms = claim_latencies(store, queued, claims).await;
            println!(
                "claim, {queued} queued, {name}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({claims} claims)",
                percentile(ms.clone(), 0.5),
                percentile(ms.clone(), 0.99),
                percentile(ms, 1.0),
            );
        }

        // 2. Queue overhead, warmed up (the components compiled into the cache) first.
        served_runs(&rt, 2).await;
        let base = served_runs(&rt, runs).await;
        println!(
            "{runs} tiny runs, one server on SQLite, one at a time: {:.1} runs/s (baseline)",
            runs as f64 / base
        );
        for workers in [1, 2, 4] {
            let secs = queued_runs(&rt, workers, runs).await;
            println!(
                "{runs} tiny runs, {workers} worker(s) on PostgreSQL: {:.1} runs/s ({:.2}× the baseline)",
                runs as f64 / secs,
                base / secs
            );
        }

        // 3. A big sync with the store in each.
        let s = Scratch::new();
        std::fs::create_dir_all(s.path("out")).unwrap();
        s.write(
            "c.toml",
            &format!(
                r#"
name = "big"
[source]
connector = {faker}
config = {{ count = {users}, seed = 7 }}
[destination]
connector = {file}
config = {{ path = "/output", format = "jsonl" }}
[[destination.grant.dirs]]
host = "out"
guest = "/output"
[[streams]]
name = "users"
[limits]
batch_records = 5000
"#,
                faker = toml_path(&connector("source-faker")),
                file = toml_path(&connector("destination-file")),
            ),
        );
        big_sync(&rt, &on_sqlite, &s, users).await;
        let (mut sqlite, mut postgres) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            sqlite.push(big_sync(&rt, &on_sqlite, &s, users).await);
            postgres.push(big_sync(&rt, &on_pg, &s, users).await);
        }
        let (sqlite, postgres) = (median(sqlite), median(postgres));
        println!(
            "{users} faker users → file: store in SQLite {:.0} users/s, in PostgreSQL {:.0} users/s ({:.2}× SQLite)",
            users as f64 / sqlite,
            users as f64 / postgres,
            sqlite / postgres
        );
    });
}
