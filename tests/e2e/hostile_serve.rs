//! Hostile connectors under a real `sluice serve`, installed the way an operator would (signed,
//! from an index, their capabilities approved): while they misbehave all at once, the server
//! answers `/healthz` every time it is asked, and an honest run started beside them finishes
//! with every record. Each hostile run ends on its own with an error naming what stopped it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use sluice::boundary::limits::{HTTP_IN_FLIGHT, RESOURCE_TABLE_ENTRIES, SQL_SESSIONS};
use sluice_tests::serve::{Serve, request, send};
use sluice_tests::server::{Reply as Answer, TestServer};
use sluice_tests::{Scratch, connector, sluice_cli, test_connector};

use crate::api_e2e::{Client, key};

const WS: &str = "/v1/workspaces/lab";

/// Sign each component with a new publisher `lab` (trusted) and publish it into `index/`.
fn lab_index(s: &Scratch, components: &[std::path::PathBuf]) -> String {
    for args in [
        vec!["keys", "publisher", "new", "lab"],
        vec!["trust", "add", "lab.pub"],
    ] {
        let (code, _, err) = sluice_cli(s, &args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    for (i, wasm) in components.iter().enumerate() {
        let pkg = format!("c{i}.slpkg");
        let wasm = wasm.display().to_string();
        for args in [
            vec!["connector", "pack", &wasm, "--out", &pkg],
            vec!["connector", "sign", &pkg, "--key", "lab.key"],
            vec!["connector", "publish", &pkg, "--index", "index"],
        ] {
            let (code, _, err) = sluice_cli(s, &args);
            assert_eq!(code, 0, "{args:?}: {err}");
        }
    }
    s.path("index").display().to_string()
}

async fn created(api: &Client, token: &str, path: &str, body: Value) {
    let r = api.call(Method::POST, path, token, Some(body)).await;
    assert_eq!(r.status, 201, "{path}: {:?}", r.json());
}

/// The workspace's destination `files`: destination-file writing JSONL into its file area's
/// `out/`.
async fn files_destination(api: &Client, token: &str) {
    created(
        api,
        token,
        &format!("{WS}/destinations"),
        json!({
            "name": "files",
            "connector": "destination-file",
            "config": { "path": "/output", "format": "jsonl" },
            "grant": { "dirs": [{ "host": "out", "guest": "/output" }] },
        }),
    )
    .await;
}

/// Trigger `connection`; the run's id.
async fn trigger(api: &Client, token: &str, connection: &str) -> i64 {
    let r = api
        .call(
            Method::POST,
            &format!("{WS}/connections/{connection}/runs"),
            token,
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{connection}: {:?}", r.json());
    r.json()["run"]["id"].as_i64().unwrap()
}

/// Poll run `id` until it is no longer running (at most `limit`); the run.
async fn finished(api: &Client, token: &str, id: i64, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let r = api
            .call(Method::GET, &format!("{WS}/runs/{id}"), token, None)
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json());
        let run = r.json();
        if run["status"] != "running" {
            return run;
        }
        assert!(started.elapsed() < limit, "run {id} never finished: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ask `/healthz` every 50 ms until `stop`; counts answers and failures (a refused connection,
/// a non-200, or an answer slower than two seconds).
fn watch_health(
    serve: &Serve,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    let addr = serve.addr;
    tokio::spawn(async move {
        let (mut ok, mut failures) = (0usize, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            let asked = Instant::now();
            let answer = tokio::time::timeout(Duration::from_secs(2), async {
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| e.to_string())?;
                send(tcp, request(Method::GET, "/healthz", None, None)).await
            })
            .await;
            match answer {
                Ok(Ok(r)) if r.status == 200 && r.body == b"ok" => ok += 1,
                Ok(Ok(r)) => {
                    failures.push(format!("status {} after {:?}", r.status, asked.elapsed()))
                }
                Ok(Err(e)) => failures.push(format!("{e} after {:?}", asked.elapsed())),
                Err(_) => failures.push("no answer within 2 s".into()),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (ok, failures)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connectors_under_serve_never_take_it_down_and_an_honest_run_finishes() {
    let s = Scratch::new();
    let index = lab_index(
        &s,
        &[
            test_connector("chaos-source"),
            test_connector("hostile-source"),
            connector("source-faker"),
            connector("destination-file"),
        ],
    );
    let owner = key(&s, "owner");
    let api = Client {
        serve: Serve::start(&s, &["--index", &index, "--max-runs", "16"]),
    };
    api.install(
        &owner,
        &[
            "chaos-source",
            "hostile-source",
            "source-faker",
            "destination-file",
        ],
    )
    .await;
    created(&api, &owner, "/v1/workspaces", json!({ "name": "lab" })).await;

    // What the hostile source reaches for: a slow upstream it may call, a database it may read,
    // a directory it may read.
    let slow = Arc::new(AtomicUsize::new(0));
    let seen = slow.clone();
    let upstream = TestServer::start(move |_| {
        seen.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(300));
        Answer::status(200, "ok")
    });
    let up = format!("http://127.0.0.1:{}", upstream.port());
    let area = s.data_dir().join("workspaces/lab");
    std::fs::create_dir_all(s.data_dir().join("files/lab/in")).unwrap();
    crate::hostile::sqlite_file(&area.join("warehouse/src.db")).await;

    files_destination(&api, &owner).await;

    // Each attack: a source, and a connection to the files.
    let chaos = |behavior: &str, extra: Value| {
        let mut config = json!({ "behavior": behavior, "records": 10 });
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "connector": "chaos-source", "config": config })
    };
    let hostile = |config: Value, grant: Value| {
        let mut g = json!({ "dirs": [{ "host": "in", "guest": "/input", "access": "read-only" }] });
        g.as_object_mut()
            .unwrap()
            .extend(grant.as_object().unwrap().clone());
        json!({ "connector": "hostile-source", "config": config, "grant": g })
    };
    let pii = json!({ "on_detect": "redact", "detectors": ["email"] });
    let attacks: Vec<(&str, Value, Value, &str)> = vec![
        // The one that aborted the whole process: a record nested 100,000 deep, through a PII
        // policy.
        (
            "deep",
            chaos("deep-record", json!({ "depth": 100_000 })),
            pii.clone(),
            "depth",
        ),
        (
            "wide",
            chaos("wide-record", json!({ "depth": 20_000 })),
            Value::Null,
            "keys",
        ),
        ("alloc", chaos("alloc", json!({})), Value::Null, "memory"),
        (
            "recursion",
            chaos("recursion", json!({})),
            Value::Null,
            "stack",
        ),
        (
            "spin",
            chaos("loop", json!({})),
            Value::Null,
            "call_timeout_secs",
        ),
        (
            "resources",
            hostile(
                json!({ "attack": "resource-flood", "count": RESOURCE_TABLE_ENTRIES + 10 }),
                json!({}),
            ),
            Value::Null,
            "resource table",
        ),
    ];
    // Attacks the host answers by refusing past a cap; the run itself may finish.
    let capped: Vec<(&str, Value)> = vec![
        (
            "requests",
            hostile(
                json!({ "attack": "http-flood", "url": format!("{up}/x"), "count": HTTP_IN_FLIGHT * 4 }),
                json!({ "network": { "allow": [up] } }),
            ),
        ),
        (
            "sessions",
            hostile(
                json!({ "attack": "sql-sessions", "count": SQL_SESSIONS * 4 }),
                json!({ "sql": [{ "name": "db", "sqlite": "src.db" }] }),
            ),
        ),
    ];
    let limits = json!({ "call_timeout_secs": 5 });
    for (name, source, pii, _) in &attacks {
        let mut body = source.clone();
        body["name"] = json!(name);
        created(&api, &owner, &format!("{WS}/sources"), body).await;
        let mut conn =
            json!({ "name": name, "source": name, "destination": "files", "limits": limits });
        if !pii.is_null() {
            conn["pii"] = pii.clone();
        }
        created(&api, &owner, &format!("{WS}/connections"), conn).await;
    }
    for (name, source) in &capped {
        let mut body = source.clone();
        body["name"] = json!(name);
        created(&api, &owner, &format!("{WS}/sources"), body).await;
        created(
            &api,
            &owner,
            &format!("{WS}/connections"),
            json!({ "name": name, "source": name, "destination": "files", "limits": limits }),
        )
        .await;
    }
    created(
        &api,
        &owner,
        &format!("{WS}/sources"),
        json!({ "name": "people", "connector": "source-faker", "config": { "count": 100_000, "seed": 7 } }),
    )
    .await;
    created(
        &api,
        &owner,
        &format!("{WS}/connections"),
        json!({ "name": "honest", "source": "people", "destination": "files", "pii": pii }),
    )
    .await;

    // All at once, the honest run among them, while /healthz is watched.
    let stop = Arc::new(AtomicBool::new(false));
    let health = watch_health(&api.serve, stop.clone());
    let mut ids = Vec::new();
    for (name, ..) in &attacks {
        ids.push((*name, trigger(&api, &owner, name).await));
    }
    for (name, _) in &capped {
        ids.push((*name, trigger(&api, &owner, name).await));
    }
    let honest = trigger(&api, &owner, "honest").await;

    let limit = Duration::from_secs(120);
    let mut ended = std::collections::BTreeMap::new();
    for (name, id) in &ids {
        ended.insert(*name, finished(&api, &owner, *id, limit).await);
    }
    let honest_run = finished(&api, &owner, honest, limit).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failures) = health.await.unwrap();

    assert!(
        failures.is_empty(),
        "/healthz failed while attacked: {failures:?}"
    );
    assert!(ok >= 5, "/healthz was asked only {ok} times");
    assert_eq!(honest_run["status"], "succeeded", "{honest_run}");
    assert_eq!(honest_run["streams"][0]["stream"], "users", "{honest_run}");
    assert_eq!(honest_run["streams"][0]["records"], 100_000, "{honest_run}");
    let written = std::fs::read(s.data_dir().join("files/lab/out/users.jsonl")).unwrap();
    assert_eq!(written.iter().filter(|b| **b == b'\n').count(), 100_000);

    for (name, _, _, needle) in &attacks {
        let run = &ended[name];
        assert_eq!(run["status"], "failed", "{name}: {run}");
        let error = run["error"].as_str().unwrap_or_default().to_lowercase();
        assert!(error.contains(needle), "{name}: `{needle}` not in {error}");
    }
    let audit = api.audit(&owner).await;
    for (name, _) in &capped {
        let run = &ended[name];
        assert_eq!(run["status"], "succeeded", "{name}: {run}");
        let refused: Vec<&str> = audit
            .iter()
            .filter(|e| e["action"] == "capability.refused" && e["details"]["run"] == run["id"])
            .filter_map(|e| e["details"]["reason"].as_str())
            .collect();
        assert!(
            refused
                .iter()
                .any(|r| r.contains("in flight already") || r.contains("open already")),
            "{name}: no refusal past the cap in {refused:?}"
        );
    }
    assert!(
        slow.load(Ordering::Relaxed) > 0,
        "the upstream was never reached"
    );

    // And the server is still the same server: a second honest run after it all.
    let again = trigger(&api, &owner, "honest").await;
    let run = finished(&api, &owner, again, limit).await;
    assert_eq!(run["status"], "succeeded", "{run}");
}

/// Found by an outside review: numbers a client may send that no `Duration` holds (a timeout
/// of `1e300` seconds, a retention of ten million days) panicked a handler, a run task (which
/// then never released its connection) or every later purge. Each is refused with a 422 that
/// names the setting, and the server keeps running runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_past_every_range_are_refused_by_name_over_the_api() {
    let s = Scratch::new();
    let (api, owner) = crate::api_e2e::serve_first_party(&s, &[]);
    api.install(&owner, &["source-faker", "destination-file"])
        .await;
    created(&api, &owner, "/v1/workspaces", json!({ "name": "lab" })).await;
    let refused = |r: &sluice_tests::serve::Reply, setting: &str| {
        assert_eq!(r.status, 422, "{setting}: {:?}", r.json());
        let e = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(e.contains(setting), "{setting} not named in: {e}");
    };
    for (field, value) in [
        ("timeout_secs", json!(1e300)),
        ("retry_budget_secs", json!(1e300)),
    ] {
        let r = api
            .call(
                Method::POST,
                &format!("{WS}/sources"),
                &owner,
                Some(json!({
                    "name": "people",
                    "connector": "source-faker",
                    "grant": { "network": { "allow": ["https://api.example.com"], field: value } },
                })),
            )
            .await;
        refused(&r, field);
    }
    created(
        &api,
        &owner,
        &format!("{WS}/sources"),
        json!({ "name": "people", "connector": "source-faker", "config": { "count": 10, "seed": 1 } }),
    )
    .await;
    files_destination(&api, &owner).await;
    for (setting, value) in [
        ("call_timeout_secs", json!(1e300)),
        ("checkpoint_interval_secs", json!(1e300)),
        ("memory_mib", json!(17_592_186_044_417u64)),
    ] {
        let r = api
            .call(
                Method::POST,
                &format!("{WS}/connections"),
                &owner,
                Some(
                    json!({ "name": "c", "source": "people", "destination": "files",
                             "limits": { setting: value } }),
                ),
            )
            .await;
        refused(&r, setting);
    }
    for value in ["10000000d", "213503982334602d"] {
        let r = api
            .call(
                Method::PUT,
                "/v1/retention",
                &owner,
                Some(json!({ "audit": value })),
            )
            .await;
        refused(&r, "audit");
    }
    let r = api
        .call(Method::POST, "/v1/retention/purge", &owner, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());

    // Beside them, an honest connection runs, twice.
    created(
        &api,
        &owner,
        &format!("{WS}/connections"),
        json!({ "name": "c", "source": "people", "destination": "files",
                "limits": { "call_timeout_secs": 86_400 } }),
    )
    .await;
    for _ in 0..2 {
        let id = trigger(&api, &owner, "c").await;
        let run = finished(&api, &owner, id, Duration::from_secs(60)).await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }
}
