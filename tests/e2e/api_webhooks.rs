//! Webhooks of a real `sluice serve`: run events POSTed to each subscribed URL, signed
//! Stripe-style (two `v1` during a secret rotation), retried with backoff, every attempt
//! audited; and URLs that point inside the server's network refused, at creation when the URL
//! says so and at delivery when the name resolves there, while other webhooks are served.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use sluice::server::webhooks::signature::{self, TOLERANCE, VerifyError};
use sluice_tests::Scratch;
use sluice_tests::serve::Serve;
use sluice_tests::server::{Reply as Answer, Seen, TestServer};

use crate::api_e2e::{Client, serve_first_party};

const WS: &str = "/v1/workspaces/w";

async fn call(
    api: &Client,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let r = api.call(method, path, token, body).await;
    (r.status, r.json())
}

/// A workspace `w` with a faker source, a file destination and an active connection `c`.
async fn workspace(api: &Client, owner: &str) {
    api.install(owner, &["source-faker", "destination-file"])
        .await;
    for (path, body) in [
        ("/v1/workspaces".to_string(), json!({ "name": "w" })),
        (
            format!("{WS}/sources"),
            json!({ "name": "src", "connector": "source-faker", "config": { "count": 50, "seed": 1 } }),
        ),
        (
            format!("{WS}/destinations"),
            json!({
                "name": "dst", "connector": "destination-file",
                "config": { "path": "/output", "format": "jsonl" },
                "grant": { "dirs": [{ "host": "out", "guest": "/output" }] },
            }),
        ),
        (
            format!("{WS}/connections"),
            json!({ "name": "c", "source": "src", "destination": "dst", "streams": [{ "name": "users" }] }),
        ),
    ] {
        let (status, answer) = call(api, owner, Method::POST, &path, Some(body)).await;
        assert_eq!(status, 201, "{path}: {answer}");
    }
}

/// Trigger a run of `c` and wait for it to succeed; its id.
async fn run(api: &Client, owner: &str) -> i64 {
    let (status, answer) = call(
        api,
        owner,
        Method::POST,
        &format!("{WS}/connections/c/runs"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["run"]["id"].as_i64().unwrap();
    let started = Instant::now();
    loop {
        let (_, r) = call(api, owner, Method::GET, &format!("{WS}/runs/{id}"), None).await;
        match r["status"].as_str() {
            Some("succeeded") => return id,
            Some("running") => {}
            other => panic!("run {id} ended {other:?}: {r}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "run {id} never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait (up to 30 s) until `done` holds of the audit log; the log then.
async fn audit_until(
    api: &Client,
    owner: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    api.audit_until(owner, what, Duration::from_secs(30), done)
        .await
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_events_are_signed_with_every_valid_secret_retried_with_backoff_and_audited() {
    // `/hook` fails twice, then takes the delivery; `/failures-only` would take anything.
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen_at = arrivals.clone();
    let receiver = TestServer::start(move |req: &Seen| {
        if req.path() != "/hook" {
            return Answer::status(200, "");
        }
        let mut at = seen_at.lock().unwrap();
        at.push(Instant::now());
        if at.len() <= 2 {
            Answer::status(500, "not yet")
        } else {
            Answer::status(204, "")
        }
    });
    let s = Scratch::new();
    let (api, owner) = serve_first_party(
        &s,
        &[
            "--webhook-allow",
            &format!("http://127.0.0.1:{}", receiver.port()),
            "--webhook-retries",
            "3",
            "--webhook-retry-delay",
            "0.2",
        ],
    );
    workspace(&api, &owner).await;
    let hooks = format!("{WS}/webhooks");

    // What a webhook cannot be: refused, naming the problem.
    for (body, says) in [
        (
            json!({ "url": format!("{}/hook", receiver.url()), "events": ["run.started"] }),
            "unknown event `run.started`",
        ),
        (
            json!({ "url": format!("{}/hook", receiver.url()), "events": [] }),
            "`events` is empty",
        ),
        (
            json!({ "url": "https://example.com/hook" }),
            "not in the network allowlist",
        ),
        (
            json!({ "url": "ftp://127.0.0.1/hook" }),
            "only absolute http:// and https:// URLs",
        ),
        (
            json!({ "url": format!("http://user:pw@127.0.0.1:{}/hook", receiver.port()) }),
            "credentials in the URL",
        ),
    ] {
        let (status, answer) = call(&api, &owner, Method::POST, &hooks, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }

    let (status, created) = call(
        &api,
        &owner,
        Method::POST,
        &hooks,
        Some(json!({ "url": format!("{}/hook", receiver.url()) })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["webhook"]["id"].as_str().unwrap().to_string();
    let old_secret = created["secret"].as_str().unwrap().to_string();
    assert!(old_secret.starts_with("whsec_"), "{created}");
    assert_eq!(
        created["webhook"]["events"],
        json!(["run.succeeded", "run.failed", "run.interrupted"])
    );
    let (status, failures_only) = call(
        &api,
        &owner,
        Method::POST,
        &hooks,
        Some(
            json!({ "url": format!("{}/failures-only", receiver.url()), "events": ["run.failed"] }),
        ),
    )
    .await;
    assert_eq!(status, 201, "{failures_only}");

    // Rotating: a new secret, shown once; the old one signs alongside it for the grace.
    let (status, rotated) = call(
        &api,
        &owner,
        Method::POST,
        &format!("{hooks}/{id}/rotate"),
        Some(json!({ "grace_seconds": 3600 })),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, old_secret);
    assert!(
        rotated["webhook"]["previous_secret_until"]
            .as_i64()
            .unwrap()
            > now_secs() * 1000
    );
    let (_, listed) = call(&api, &owner, Method::GET, &hooks, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert!(
        !listed.to_string().contains("whsec_"),
        "secrets are shown once: {listed}"
    );

    let run_id = run(&api, &owner).await;
    let started = Instant::now();
    while arrivals.lock().unwrap().len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "3 attempts never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts: Vec<Seen> = receiver
        .seen()
        .into_iter()
        .filter(|r| r.path() == "/hook")
        .collect();
    assert_eq!(attempts.len(), 3);
    assert!(
        receiver.seen().iter().all(|r| r.path() != "/failures-only"),
        "not subscribed to run.succeeded"
    );
    let delivery = attempts[0].header("sluice-delivery").unwrap().to_string();
    for a in &attempts {
        assert_eq!(a.method, "POST");
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.header("sluice-event"), Some("run.succeeded"));
        assert_eq!(
            a.header("sluice-delivery"),
            Some(delivery.as_str()),
            "retries keep the id"
        );
        let body: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(body["type"], "run.succeeded");
        assert_eq!(body["workspace"], "w");
        assert_eq!(body["data"]["run"]["id"], run_id);
        assert_eq!(body["data"]["run"]["status"], "succeeded");
        assert_eq!(body["data"]["run"]["records"], 50);
        let header = a.header("sluice-signature").unwrap();
        assert_eq!(header.matches("v1=").count(), 2, "{header}");
        for secret in [&old_secret, &new_secret] {
            signature::verify(header, &a.body, secret, now_secs(), TOLERANCE).unwrap();
        }
        assert_eq!(
            signature::verify(header, &a.body, "whsec_someone_else", now_secs(), TOLERANCE),
            Err(VerifyError::Wrong)
        );
        let mut tampered = a.body.clone();
        tampered.extend_from_slice(b" ");
        assert_eq!(
            signature::verify(header, &tampered, &new_secret, now_secs(), TOLERANCE),
            Err(VerifyError::Wrong)
        );
    }
    // Backoff: the waits double, with jitter ([d, 2d) for d = 0.2 s, then 0.4 s).
    let at = arrivals.lock().unwrap().clone();
    let (first, second) = (at[1] - at[0], at[2] - at[1]);
    assert!(first >= Duration::from_millis(200), "{first:?}");
    assert!(second >= Duration::from_millis(400), "{second:?}");

    // The delivery's record, and the audit of every attempt.
    let entries = audit_until(&api, &owner, "the delivery audited", |es| {
        es.iter().any(|e| e["action"] == "webhook.delivered")
    })
    .await;
    let (_, deliveries) = call(
        &api,
        &owner,
        Method::GET,
        &format!("{hooks}/{id}/deliveries"),
        None,
    )
    .await;
    let d = &deliveries.as_array().unwrap()[0];
    assert_eq!(d["id"], delivery.as_str());
    assert_eq!(d["status"], "delivered", "{deliveries}");
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["last_status"], 204);
    let resource = format!("webhook/w/{id}");
    let of = |action: &str| -> Vec<&Value> {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["resource"] == resource.as_str())
            .collect()
    };
    let retries = of("webhook.retry");
    assert_eq!(retries.len(), 2, "{retries:?}");
    for r in &retries {
        assert_eq!(r["outcome"], "failed");
        assert_eq!(r["actor"], "webhooks");
        assert!(r["details"].to_string().contains("answered 500"), "{r}");
    }
    assert_eq!(of("webhook.delivered").len(), 1);
    assert_eq!(of("webhook.delivered")[0]["outcome"], "ok");
    assert_eq!(of("webhook.created").len(), 1);
    assert_eq!(of("webhook.secret_rotated").len(), 1);
    let log = serde_json::to_string(&entries).unwrap();
    for secret in [&old_secret, &new_secret] {
        assert!(
            !log.contains(secret.as_str()),
            "a webhook secret in the audit log"
        );
    }

    // Deleting a webhook: gone, audited.
    let (status, _) = call(&api, &owner, Method::DELETE, &format!("{hooks}/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&api, &owner, Method::GET, &format!("{hooks}/{id}"), None).await;
    assert_eq!(status, 404);
    assert_eq!(api.serve.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_pointing_inside_the_network_is_refused_audited_and_others_are_still_served() {
    let receiver = TestServer::start(|_: &Seen| Answer::status(200, ""));
    let s = Scratch::new();
    // Any http host may be a webhook, but only 127.0.0.1 (named exactly) may be inside.
    let (api, owner) = serve_first_party(
        &s,
        &[
            "--webhook-allow",
            "http://*:*",
            "--webhook-allow",
            &format!("http://127.0.0.1:{}", receiver.port()),
            "--webhook-retries",
            "1",
            "--webhook-retry-delay",
            "0.1",
        ],
    );
    workspace(&api, &owner).await;
    let hooks = format!("{WS}/webhooks");
    // Addresses written in the URL are judged at once.
    for url in [
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::1]:{}/steal", receiver.port()),
        format!("http://127.0.0.2:{}/steal", receiver.port()),
        "http://10.1.2.3/steal".to_string(),
    ] {
        let (status, answer) = call(
            &api,
            &owner,
            Method::POST,
            &hooks,
            Some(json!({ "url": url })),
        )
        .await;
        assert_eq!(status, 422, "{url}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("only a host granted by its exact name"),
            "{url}: {answer}"
        );
    }
    // A name is judged by where it resolves, on every delivery.
    let (status, sneaky) = call(
        &api,
        &owner,
        Method::POST,
        &hooks,
        Some(json!({ "url": format!("http://localhost:{}/steal", receiver.port()) })),
    )
    .await;
    assert_eq!(status, 201, "{sneaky}");
    let sneaky = sneaky["webhook"]["id"].as_str().unwrap().to_string();
    let (status, honest) = call(
        &api,
        &owner,
        Method::POST,
        &hooks,
        Some(json!({ "url": format!("{}/ok", receiver.url()) })),
    )
    .await;
    assert_eq!(status, 201, "{honest}");
    let honest = honest["webhook"]["id"].as_str().unwrap().to_string();

    run(&api, &owner).await;
    let entries = audit_until(
        &api,
        &owner,
        "the sneaky delivery given up and the honest one made",
        |es| {
            es.iter().any(|e| e["action"] == "webhook.gave_up")
                && es.iter().any(|e| e["action"] == "webhook.delivered")
        },
    )
    .await;
    let sneaky_entries: Vec<&Value> = entries
        .iter()
        .filter(|e| e["resource"] == format!("webhook/w/{sneaky}") && e["actor"] == "webhooks")
        .collect();
    assert_eq!(
        sneaky_entries.len(),
        2,
        "first attempt and its one retry: {sneaky_entries:?}"
    );
    for e in &sneaky_entries {
        assert_eq!(e["outcome"], "refused", "{e}");
        assert!(
            e["details"].to_string().contains("a loopback address"),
            "{e}"
        );
    }
    assert!(entries.iter().any(|e| e["action"] == "webhook.delivered"
        && e["resource"] == format!("webhook/w/{honest}")
        && e["outcome"] == "ok"));
    assert!(
        receiver.seen().iter().all(|r| r.path() != "/steal"),
        "nothing reached /steal"
    );
    assert_eq!(
        receiver.seen().iter().filter(|r| r.path() == "/ok").count(),
        1
    );
    let (_, deliveries) = call(
        &api,
        &owner,
        Method::GET,
        &format!("{hooks}/{sneaky}/deliveries"),
        None,
    )
    .await;
    assert_eq!(deliveries[0]["status"], "failed", "{deliveries}");
    assert_eq!(deliveries[0]["attempts"], 2);
    // The server still serves.
    let (status, _) = call(&api, &owner, Method::GET, &hooks, None).await;
    assert_eq!(status, 200);
    assert_eq!(api.serve.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_delivery_survives_a_killed_server_and_the_next_one_makes_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let up = Arc::new(AtomicBool::new(false));
    let is_up = up.clone();
    let receiver = TestServer::start(move |_: &Seen| {
        if is_up.load(Ordering::SeqCst) {
            Answer::status(200, "")
        } else {
            Answer::status(503, "down")
        }
    });
    let s = Scratch::new();
    let allow = format!("http://127.0.0.1:{}", receiver.port());
    let args = ["--webhook-allow", &allow, "--webhook-retry-delay", "2"];
    let (api, owner) = serve_first_party(&s, &args);
    workspace(&api, &owner).await;
    let (status, created) = call(
        &api,
        &owner,
        Method::POST,
        &format!("{WS}/webhooks"),
        Some(json!({ "url": format!("{}/hook", receiver.url()) })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["webhook"]["id"].as_str().unwrap().to_string();
    run(&api, &owner).await;
    audit_until(&api, &owner, "the first attempt failing", |es| {
        es.iter().any(|e| e["action"] == "webhook.retry")
    })
    .await;
    // Killed (SIGKILL) while the delivery waits for its retry.
    drop(api);
    up.store(true, Ordering::SeqCst);
    let api = Client {
        serve: Serve::start(&s, &args),
    };
    let entries = audit_until(&api, &owner, "the delivery made by the next server", |es| {
        es.iter().any(|e| e["action"] == "webhook.delivered")
    })
    .await;
    let delivered = entries
        .iter()
        .find(|e| e["action"] == "webhook.delivered")
        .unwrap();
    assert_eq!(delivered["details"]["attempt"], 2, "{delivered}");
    let (_, deliveries) = call(
        &api,
        &owner,
        Method::GET,
        &format!("{WS}/webhooks/{id}/deliveries"),
        None,
    )
    .await;
    assert_eq!(deliveries.as_array().unwrap().len(), 1, "{deliveries}");
    assert_eq!(deliveries[0]["status"], "delivered");
    assert_eq!(deliveries[0]["attempts"], 2);
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2, "one failed attempt, one delivery");
    assert_eq!(
        seen[0].header("sluice-delivery"),
        seen[1].header("sluice-delivery")
    );
    assert_eq!(api.serve.stop(), Some(0));
}
