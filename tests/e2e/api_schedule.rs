//! The scheduler of a real `sluice serve`: connections with a cron schedule run on time, at most
//! `--max-runs` at once, never two runs of one connection together, and failed runs are
//! retried with backoff (resuming the same run) until the retries are spent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use sluice_tests::Scratch;
use sluice_tests::server::{Reply as Answer, Seen, TestServer};

use crate::api_e2e::{Client, serve_first_party};

const WS: &str = "/v1/workspaces/w";

async fn post(api: &Client, token: &str, path: &str, body: Value) -> Value {
    let r = api.call(Method::POST, path, token, Some(body)).await;
    assert_eq!(r.status, 201, "{path}: {:?}", r.json());
    r.json()
}

/// The runs of `connection`, newest first.
async fn runs(api: &Client, token: &str, connection: &str) -> Vec<Value> {
    let r = api
        .call(
            Method::GET,
            &format!("{WS}/connections/{connection}/runs?limit=500"),
            token,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    r.json().as_array().unwrap().clone()
}

/// Wait (up to 90 s: a minute-long schedule's next occurrence and then some) until `done`
/// holds of the audit log.
async fn wait_for_audit(api: &Client, owner: &str, what: &str, done: impl Fn(&[Value]) -> bool) {
    api.audit_until(owner, what, Duration::from_secs(90), done)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_connections_run_on_time_one_at_a_time_under_max_runs() {
    let s = Scratch::new();
    let (api, owner) = serve_first_party(&s, &["--max-runs", "1"]);
    api.install(&owner, &["source-faker", "destination-file"])
        .await;
    post(&api, &owner, "/v1/workspaces", json!({ "name": "w" })).await;
    for (name, count) in [("few", 2_000u64), ("lots", 1_000_000_000)] {
        post(
            &api,
            &owner,
            &format!("{WS}/sources"),
            json!({ "name": name, "connector": "source-faker", "config": { "count": count, "seed": 1 } }),
        )
        .await;
    }
    post(
        &api,
        &owner,
        &format!("{WS}/destinations"),
        json!({
            "name": "files", "connector": "destination-file",
            "config": { "path": "/output", "format": "jsonl" },
            "grant": { "dirs": [{ "host": "out", "guest": "/output" }] },
        }),
    )
    .await;

    // Not a schedule: refused, naming the problem.
    let r = api
        .call(
            Method::POST,
            &format!("{WS}/connections"),
            &owner,
            Some(json!({ "name": "x", "source": "few", "destination": "files", "schedule": "every hour" })),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.json());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("`every hour` is not a cron expression"),
        "{:?}",
        r.json()
    );

    // Two connections due every second, in the same instant: with one run slot they take
    // turns.
    for (name, stream) in [
        ("users-every-second", "users"),
        ("purchases-every-second", "purchases"),
    ] {
        let c = post(
            &api,
            &owner,
            &format!("{WS}/connections"),
            json!({
                "name": name, "source": "few", "destination": "files",
                "streams": [{ "name": stream }], "schedule": "* * * * * *",
            }),
        )
        .await;
        assert_eq!(c["schedule"], "* * * * * *");
    }
    let both_ran_twice = |entries: &[Value]| {
        ["users-every-second", "purchases-every-second"]
            .iter()
            .all(|name| {
                entries
                    .iter()
                    .filter(|e| {
                        e["action"] == "run.finished"
                            && e["outcome"] == "ok"
                            && e["resource"] == format!("connection/w/{name}")
                    })
                    .count()
                    >= 2
            })
    };
    wait_for_audit(&api, &owner, "two scheduled runs of each", both_ran_twice).await;

    // A trigger while the slot is taken is told to come back later. Pause the schedules, then
    // hold the slot with a run that only ends by being cancelled.
    for name in ["users-every-second", "purchases-every-second"] {
        let r = api
            .call(
                Method::PUT,
                &format!("{WS}/connections/{name}"),
                &owner,
                Some(json!({ "source": "few", "destination": "files", "schedule": "* * * * * *", "status": "paused" })),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json());
    }
    for name in ["long", "other"] {
        post(
            &api,
            &owner,
            &format!("{WS}/connections"),
            json!({ "name": name, "source": "lots", "destination": "files", "streams": [{ "name": "users" }] }),
        )
        .await;
    }
    let started = Instant::now();
    let long = loop {
        let r = api
            .call(
                Method::POST,
                &format!("{WS}/connections/long/runs"),
                &owner,
                None,
            )
            .await;
        if r.status == 202 {
            break r.json()["run"]["id"].as_i64().unwrap();
        }
        // A scheduled run that began before the pause may still hold the slot.
        assert_eq!(r.status, 503, "{:?}", r.json());
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let r = api
        .call(
            Method::POST,
            &format!("{WS}/connections/other/runs"),
            &owner,
            None,
        )
        .await;
    assert_eq!(r.status, 503, "{:?}", r.json());
    assert_eq!(r.headers["retry-after"], "30");
    assert!(
        r.json()["error"].as_str().unwrap().contains("--max-runs"),
        "{:?}",
        r.json()
    );
    let r = api
        .call(
            Method::POST,
            &format!("{WS}/runs/{long}/cancel"),
            &owner,
            None,
        )
        .await;
    assert_eq!(r.status, 202);

    // Scheduled runs were started by the scheduler, and no run started while another was
    // going: every run.started is followed by its own run.finished before the next one.
    let entries = api.audit(&owner).await;
    let mut open: Option<(String, i64)> = None;
    let mut scheduled = 0;
    for e in entries.iter() {
        let run = || {
            (
                e["resource"].as_str().unwrap().to_string(),
                e["details"]["run"].as_i64().unwrap(),
            )
        };
        match e["action"].as_str().unwrap() {
            "run.started" => {
                assert!(
                    open.is_none(),
                    "{:?} started while {open:?} was running",
                    run()
                );
                if e["resource"].as_str().unwrap().ends_with("-every-second") {
                    assert_eq!(e["actor"], "scheduler", "{e}");
                    scheduled += 1;
                }
                open = Some(run());
            }
            "run.finished" if open.as_ref() == Some(&run()) => open = None,
            "run.finished" => panic!("{:?} finished but {open:?} was the one running", run()),
            _ => {}
        }
    }
    assert!(scheduled >= 4, "{scheduled} scheduled runs");
    // Paused schedules stop firing.
    let paused = runs(&api, &owner, "users-every-second").await.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(runs(&api, &owner, "users-every-second").await.len(), paused);
    assert_eq!(api.serve.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_scheduled_run_is_retried_with_backoff_then_given_up() {
    // `/flaky` fails twice, then answers; `/broken` always fails.
    let flaky_calls = Arc::new(AtomicUsize::new(0));
    let calls = flaky_calls.clone();
    let upstream = TestServer::start(move |req: &Seen| match req.path() {
        "/flaky" if calls.fetch_add(1, Ordering::SeqCst) >= 2 => {
            Answer::json(&json!([{ "id": 1 }, { "id": 2 }]))
        }
        _ => Answer::status(403, "not today"),
    });
    let url = upstream.url();

    let s = Scratch::new();
    let (api, owner) = serve_first_party(&s, &["--retries", "2", "--retry-delay", "0.2"]);
    api.install(&owner, &["source-http", "destination-file"])
        .await;
    post(&api, &owner, "/v1/workspaces", json!({ "name": "w" })).await;
    for path in ["flaky", "broken"] {
        post(
            &api,
            &owner,
            &format!("{WS}/sources"),
            json!({
                "name": path, "connector": "source-http",
                "config": { "base_url": url, "streams": [{ "name": "things", "path": format!("/{path}") }] },
                "grant": { "network": { "allow": [url] } },
            }),
        )
        .await;
    }
    post(
        &api,
        &owner,
        &format!("{WS}/destinations"),
        json!({
            "name": "files", "connector": "destination-file",
            "config": { "path": "/output", "format": "jsonl" },
            "grant": { "dirs": [{ "host": "out", "guest": "/output" }] },
        }),
    )
    .await;
    // Once a minute, a few seconds from now: one occurrence (and its retries) within the test.
    // (Should a slow machine make the scheduler first see it after that second, the next
    // minute's occurrence is the one: the wait below allows for it.)
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let schedule = format!("{} * * * * *", (now + 4) % 60);
    for name in ["flaky", "broken"] {
        post(
            &api,
            &owner,
            &format!("{WS}/connections"),
            json!({ "name": name, "source": name, "destination": "files", "schedule": schedule }),
        )
        .await;
    }
    let resource = |name: &str| format!("workspace/w/connections/{name}");
    wait_for_audit(
        &api,
        &owner,
        "the flaky run succeed and the broken one given up",
        |es| {
            es.iter().any(|e| {
                e["action"] == "run.finished"
                    && e["outcome"] == "ok"
                    && e["resource"] == "connection/w/flaky"
            }) && es
                .iter()
                .any(|e| e["action"] == "schedule.gave_up" && e["resource"] == resource("broken"))
        },
    )
    .await;

    // The flaky run: two failed attempts, each followed by a retry, then the same run
    // resumed as attempt 3 succeeded.
    let flaky = runs(&api, &owner, "flaky").await;
    assert_eq!(flaky.len(), 1, "{flaky:?}");
    assert_eq!(flaky[0]["status"], "succeeded");
    assert_eq!(flaky[0]["attempt"], 3);
    assert_eq!(flaky[0]["records"], 2);
    let entries = api.audit(&owner).await;
    let retries = |name: &str| -> Vec<Value> {
        entries
            .iter()
            .filter(|e| e["action"] == "schedule.retry" && e["resource"] == resource(name))
            .map(|e| e["details"].clone())
            .collect()
    };
    let flaky_retries = retries("flaky");
    assert_eq!(flaky_retries.len(), 2, "{flaky_retries:?}");
    for (i, r) in flaky_retries.iter().enumerate() {
        assert_eq!(r["failed_attempt"], i + 1);
        assert_eq!(r["run"], flaky[0]["id"]);
        assert!(r["error"].as_str().unwrap().contains("403"), "{r}");
    }
    // Backoff: the second wait is drawn from a longer range than the first.
    let wait = |r: &Value| r["retry_in_ms"].as_u64().unwrap();
    assert!(
        (200..=400).contains(&wait(&flaky_retries[0])),
        "{flaky_retries:?}"
    );
    assert!(
        (400..=800).contains(&wait(&flaky_retries[1])),
        "{flaky_retries:?}"
    );

    // The broken one: the first attempt and two retries, then the scheduler gives up.
    let broken = runs(&api, &owner, "broken").await;
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0]["status"], "failed");
    assert_eq!(broken[0]["attempt"], 3);
    assert_eq!(retries("broken").len(), 2);
    let gave_up = entries
        .iter()
        .find(|e| e["action"] == "schedule.gave_up")
        .unwrap();
    assert_eq!(gave_up["actor"], "scheduler");
    assert_eq!(gave_up["outcome"], "failed");
    assert_eq!(gave_up["details"]["attempts"], 3);
    assert_eq!(gave_up["details"]["run"], broken[0]["id"]);
    assert_eq!(flaky_calls.load(Ordering::SeqCst), 3);
    assert_eq!(api.serve.stop(), Some(0));
}
