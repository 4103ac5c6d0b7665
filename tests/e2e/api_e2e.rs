//! A whole workflow through the HTTP API of a real `sluice serve` process, after the two
//! bootstrap steps only an operator at the server can take (trust the publisher, create the
//! first keys): install connectors, create a workspace, a source with a write-only secret, a
//! destination and a connection, trigger a run, poll it to success, read its stats and logs,
//! and read the audit trail of all of it.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use sluice_tests::serve::{Reply, Serve, request, send};
use sluice_tests::server::{Reply as Answer, Seen, TestServer};
use sluice_tests::{Scratch, read_jsonl, root, sluice_cli};

const TOKEN: &str = "api-token-for-the-test-7f3a91";

/// A `sluice serve` process and a way to call it.
pub struct Client {
    pub serve: Serve,
}

impl Client {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let tcp = tokio::net::TcpStream::connect(self.serve.addr)
            .await
            .unwrap();
        send(tcp, request(method, path, Some(token), body.as_ref()))
            .await
            .unwrap()
    }
}

impl Client {
    /// Install first-party connectors from `examples/index`, approving what they ask for.
    pub async fn install(&self, owner: &str, names: &[&str]) {
        for name in names {
            let r = self
                .call(
                    Method::POST,
                    "/v1/connectors",
                    owner,
                    Some(json!({ "name": name })),
                )
                .await;
            let to_approve = r.json()["to_approve"].clone();
            let r = self
                .call(
                    Method::POST,
                    "/v1/connectors",
                    owner,
                    Some(json!({ "name": name, "approved": to_approve })),
                )
                .await;
            assert_eq!(r.status, 201, "{name}: {:?}", r.json());
        }
    }

    /// The audit log, oldest first, each entry's details parsed.
    pub async fn audit(&self, owner: &str) -> Vec<Value> {
        let r = self
            .call(
                Method::GET,
                "/v1/audit?format=jsonl&limit=100000",
                owner,
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        let mut entries: Vec<Value> = String::from_utf8_lossy(&r.body)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for e in &mut entries {
            if let Some(d) = e["details"].as_str() {
                e["details"] = serde_json::from_str(d).unwrap();
            }
        }
        entries.sort_by_key(|e| e["seq"].as_i64());
        entries
    }

    /// Wait (up to `limit`) until `done` holds of the audit log; the log then. Failing, it
    /// shows every entry that is not a request.
    pub async fn audit_until(
        &self,
        owner: &str,
        what: &str,
        limit: std::time::Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let started = std::time::Instant::now();
        loop {
            let entries = self.audit(owner).await;
            if done(&entries) {
                return entries;
            }
            assert!(
                started.elapsed() < limit,
                "never saw {what}; audit: {:#?}",
                entries
                    .iter()
                    .filter(|e| e["action"] != "api.request")
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// A real `sluice serve` on `s` that installs from the first-party index (trusted), started
/// with `args` besides `--index`; with a new owner key's token.
pub fn serve_first_party(s: &Scratch, args: &[&str]) -> (Client, String) {
    let index = trust_first_party(s);
    let owner = key(s, "owner");
    let args: Vec<&str> = ["--index", index.as_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    (
        Client {
            serve: Serve::start(s, &args),
        },
        owner,
    )
}

/// Trust the first-party publisher in `s`; the index's path, for `--index`.
pub fn trust_first_party(s: &Scratch) -> String {
    let index = root().join("examples/index");
    let (code, _, err) = sluice_cli(
        s,
        &[
            "trust",
            "add",
            &index.join("sluice.pub").display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    index.display().to_string()
}

pub fn key(s: &Scratch, role: &str) -> String {
    let (code, out, err) = sluice_cli(s, &["admin", "create-key", "--role", role, "--name", role]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

pub fn key_id(token: &str) -> &str {
    &token["sluice_".len().."sluice_".len() + 16]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_defined_run_and_audited_through_the_api_only() {
    // The API the source reads: three things, only with the right bearer token, slowly enough
    // that a second trigger arrives while the first run is still reading.
    let upstream = TestServer::start(|req: &Seen| {
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Answer::status(403, "no");
        }
        std::thread::sleep(Duration::from_millis(700));
        Answer::json(&json!([{ "id": 1 }, { "id": 2 }, { "id": 3 }]))
    });
    let port = upstream.port();

    let s = Scratch::new();
    let index = root().join("examples/index");
    let (code, _, err) = sluice_cli(
        &s,
        &[
            "trust",
            "add",
            &index.join("sluice.pub").display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let owner = key(&s, "owner");
    let editor = key(&s, "member");
    let api = Client {
        serve: Serve::start(&s, &["--index", &index.display().to_string()]),
    };

    // Install the two connectors: each needs its capabilities approved explicitly.
    for name in ["source-http", "destination-file"] {
        let r = api
            .call(
                Method::POST,
                "/v1/connectors",
                &owner,
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(r.status, 422, "{name}: {:?}", r.json());
        let to_approve = r.json()["to_approve"].clone();
        let r = api
            .call(
                Method::POST,
                "/v1/connectors",
                &owner,
                Some(json!({ "name": name, "approved": to_approve })),
            )
            .await;
        assert_eq!(r.status, 201, "{name}: {:?}", r.json());
    }

    // A workspace, with the member key as its editor.
    let r = api
        .call(
            Method::POST,
            "/v1/workspaces",
            &owner,
            Some(json!({ "name": "analytics" })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    let r = api
        .call(
            Method::PUT,
            &format!("/v1/workspaces/analytics/members/{}", key_id(&editor)),
            &owner,
            Some(json!({ "role": "editor" })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());

    // The editor defines everything else.
    let ws = "/v1/workspaces/analytics";
    let upstream_url = format!("http://127.0.0.1:{port}");
    let source = json!({
        "name": "things-api",
        "connector": "source-http",
        "config": {
            "base_url": upstream_url,
            "auth": { "type": "bearer", "token": "{{secret:api_token}}" },
            "streams": [{ "name": "things", "path": "/things" }],
        },
        "grant": {
            "network": { "allow": [upstream_url] },
            "secrets": [{ "name": "api_token", "to": [upstream_url] }],
        },
        "secrets": { "api_token": TOKEN },
    });
    let r = api
        .call(
            Method::POST,
            &format!("{ws}/sources"),
            &editor,
            Some(source),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(
        r.json()["secrets"],
        json!([{ "name": "api_token", "set": true, "updated_at": r.json()["secrets"][0]["updated_at"] }])
    );
    let r = api
        .call(
            Method::GET,
            &format!("{ws}/sources/things-api"),
            &editor,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        !String::from_utf8_lossy(&r.body).contains(TOKEN),
        "a secret value came back"
    );
    // A grant that reaches for the server's environment is refused.
    let r = api
        .call(
            Method::POST,
            &format!("{ws}/sources"),
            &editor,
            Some(json!({
                "name": "sneaky",
                "connector": "source-http",
                "grant": { "secrets": [{ "name": "home", "env": "HOME", "to": [upstream_url] }] },
            })),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("not read from the server's environment")
    );

    let destination = json!({
        "name": "files",
        "connector": "destination-file",
        "config": { "path": "/output", "format": "jsonl" },
        "grant": { "dirs": [{ "host": "out", "guest": "/output" }] },
    });
    let r = api
        .call(
            Method::POST,
            &format!("{ws}/destinations"),
            &editor,
            Some(destination),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    // A directory outside the workspace's file area is refused.
    let r = api
        .call(
            Method::POST,
            &format!("{ws}/destinations"),
            &editor,
            Some(json!({
                "name": "escape",
                "connector": "destination-file",
                "grant": { "dirs": [{ "host": "../../etc", "guest": "/output" }] },
            })),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.json());

    let r = api
        .call(
            Method::POST,
            &format!("{ws}/connections"),
            &editor,
            Some(json!({ "name": "things-to-files", "source": "things-api", "destination": "files" })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());

    // Trigger: answered at once with the run's id; a second trigger meanwhile is refused.
    let runs = format!("{ws}/connections/things-to-files/runs");
    let r = api.call(Method::POST, &runs, &editor, None).await;
    assert_eq!(r.status, 202, "{:?}", r.json());
    let run_id = r.json()["run"]["id"].as_i64().unwrap();
    assert_eq!(r.json()["run"]["status"], "running");
    let again = api.call(Method::POST, &runs, &editor, None).await;
    assert_eq!(again.status, 409, "{:?}", again.json());
    assert!(
        again.json()["error"]
            .as_str()
            .unwrap()
            .contains("never overlap")
    );

    // Poll to success.
    let started = Instant::now();
    let run = loop {
        let r = api
            .call(Method::GET, &format!("{ws}/runs/{run_id}"), &editor, None)
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json());
        let run = r.json();
        if run["status"] != "running" {
            break run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["connection"], "things-to-files");
    assert_eq!(run["records"], 3);
    assert_eq!(run["streams"][0]["stream"], "things");
    assert_eq!(run["streams"][0]["records"], 3);
    let written = read_jsonl(&s.data_dir().join("files/analytics/out/things.jsonl"));
    assert_eq!(written.len(), 3);

    let r = api.call(Method::GET, &runs, &editor, None).await;
    assert_eq!(r.json()[0]["id"], run_id);
    let r = api
        .call(
            Method::GET,
            &format!("{ws}/runs/{run_id}/logs"),
            &editor,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json().is_array());
    assert!(!String::from_utf8_lossy(&r.body).contains(TOKEN));

    // The run is not reachable through another workspace, even by its id.
    let r = api
        .call(
            Method::POST,
            "/v1/workspaces",
            &owner,
            Some(json!({ "name": "other" })),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = api
        .call(
            Method::GET,
            &format!("/v1/workspaces/other/runs/{run_id}"),
            &owner,
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = api
        .call(
            Method::GET,
            &format!("/v1/workspaces/other/runs/{run_id}"),
            &editor,
            None,
        )
        .await;
    assert_eq!(r.status, 403);

    // A misspelled filter is refused rather than matching everything.
    let r = api
        .call(Method::GET, "/v1/audit?acton=run", &owner, None)
        .await;
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("acton"));

    // The audit trail of all of it, through the API, as JSON lines.
    let r = api
        .call(
            Method::GET,
            "/v1/audit?format=jsonl&limit=100000",
            &owner,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/x-ndjson");
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(!text.contains(TOKEN), "a secret reached the audit log");
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let editor_actor = format!("api:{}", key_id(&editor));
    let owner_actor = format!("api:{}", key_id(&owner));
    let has = |actor: &str, action: &str, resource: &str| {
        entries.iter().any(|e| {
            e["actor"] == actor
                && e["action"] == action
                && e["resource"].as_str().unwrap().starts_with(resource)
        })
    };
    assert!(has(
        &owner_actor,
        "connector.installed",
        "connector/source-http"
    ));
    assert!(has(
        &owner_actor,
        "workspace.created",
        "workspace/analytics"
    ));
    assert!(has(
        &owner_actor,
        "workspace.member_set",
        "workspace/analytics/members/"
    ));
    assert!(has(
        &editor_actor,
        "source.created",
        "workspace/analytics/sources/things-api"
    ));
    assert!(has(
        &editor_actor,
        "destination.created",
        "workspace/analytics/destinations/files"
    ));
    assert!(has(
        &editor_actor,
        "connection.created",
        "workspace/analytics/connections/things-to-files"
    ));
    assert!(has(
        &editor_actor,
        "run.started",
        "connection/analytics/things-to-files"
    ));
    assert!(has(&editor_actor, "secret.read", "secret/api_token"));
    assert!(has(
        &editor_actor,
        "api.request",
        "POST /v1/workspaces/analytics/connections/things-to-files/runs"
    ));
    assert!(entries.iter().any(|e| e["action"] == "run.finished"
        && e["resource"] == "connection/analytics/things-to-files"
        && e["outcome"] == "ok"));
    // The refused trigger and the refused cross-workspace read are there too.
    assert!(entries.iter().any(|e| e["action"] == "api.request"
        && e["actor"] == editor_actor.as_str()
        && e["outcome"] == "refused"
        && e["resource"] == format!("GET /v1/workspaces/other/runs/{run_id}")));
    // And the chain verifies.
    let api_serve = api.serve;
    assert_eq!(api_serve.stop(), Some(0));
    let (code, out, err) = sluice_cli(&s, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_cancelled_or_stopped_by_shutdown_after_committing_and_resumes_later() {
    let s = Scratch::new();
    let index_arg = trust_first_party(&s);
    let owner = key(&s, "owner");
    let api = Client {
        serve: Serve::start(&s, &["--index", &index_arg]),
    };
    api.install(&owner, &["source-faker", "destination-file"])
        .await;
    let ws = "/v1/workspaces/w";
    for (path, body) in [
        ("/v1/workspaces".to_string(), json!({ "name": "w" })),
        (
            format!("{ws}/sources"),
            // Far more than a test waits for: it only ends by being stopped.
            json!({ "name": "lots", "connector": "source-faker", "config": { "count": 1_000_000_000u64, "seed": 1 } }),
        ),
        (
            format!("{ws}/destinations"),
            json!({
                "name": "files", "connector": "destination-file",
                "config": { "path": "/output", "format": "jsonl" },
                "grant": { "dirs": [{ "host": "out", "guest": "/output" }] },
            }),
        ),
        (
            format!("{ws}/connections"),
            json!({
                "name": "big", "source": "lots", "destination": "files",
                "streams": [{ "name": "users" }],
                "limits": { "checkpoint_interval_secs": 0.2 },
            }),
        ),
    ] {
        let r = api.call(Method::POST, &path, &owner, Some(body)).await;
        assert_eq!(r.status, 201, "{path}: {:?}", r.json());
    }
    let runs = format!("{ws}/connections/big/runs");

    // Wait until a run has committed something; `run` is its state then.
    async fn committed(api: &Client, owner: &str, ws: &str, id: i64) -> Value {
        let started = Instant::now();
        loop {
            let run = api
                .call(Method::GET, &format!("{ws}/runs/{id}"), owner, None)
                .await
                .json();
            if run["records"].as_u64().unwrap_or(0) > 0 {
                return run;
            }
            assert_eq!(run["status"], "running", "{run}");
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "nothing committed: {run}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Cancel: the run commits what it wrote and ends interrupted, saying who stopped it.
    let r = api.call(Method::POST, &runs, &owner, None).await;
    assert_eq!(r.status, 202, "{:?}", r.json());
    let id = r.json()["run"]["id"].as_i64().unwrap();
    let before = committed(&api, &owner, ws, id).await;
    let r = api
        .call(
            Method::POST,
            &format!("{ws}/runs/{id}/cancel"),
            &owner,
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json());
    let started = Instant::now();
    let run = loop {
        let run = api
            .call(Method::GET, &format!("{ws}/runs/{id}"), &owner, None)
            .await
            .json();
        if run["status"] != "running" {
            break run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the cancel was not heard"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(run["status"], "interrupted", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("cancelled by api:{}", key_id(&owner))),
        "{error}"
    );
    assert!(run["records"].as_u64().unwrap() >= before["records"].as_u64().unwrap());
    let r = api
        .call(
            Method::POST,
            &format!("{ws}/runs/{id}/cancel"),
            &owner,
            None,
        )
        .await;
    assert_eq!(r.status, 409, "a finished run cannot be cancelled");

    // The next trigger resumes the same run; a shutdown stops it the same way.
    let r = api.call(Method::POST, &runs, &owner, None).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["run"]["id"], id, "resumed, not restarted");
    assert_eq!(r.json()["run"]["attempt"], 2);
    let resumed_from = run["records"].as_u64().unwrap();
    let started = Instant::now();
    loop {
        let run = api
            .call(Method::GET, &format!("{ws}/runs/{id}"), &owner, None)
            .await
            .json();
        if run["records"].as_u64().unwrap() > resumed_from {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        api.serve.stop(),
        Some(0),
        "a clean exit once the run stopped"
    );

    let api = Client {
        serve: Serve::start(&s, &["--index", &index_arg]),
    };
    let run = api
        .call(Method::GET, &format!("{ws}/runs/{id}"), &owner, None)
        .await
        .json();
    assert_eq!(run["status"], "interrupted", "{run}");
    assert_eq!(run["attempt"], 2);
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("the server is shutting down"),
        "{run}"
    );
    assert!(run["records"].as_u64().unwrap() > resumed_from);
    let audit = api
        .call(Method::GET, "/v1/audit?action=run.finished", &owner, None)
        .await
        .json();
    let stopped: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "stopped")
        .collect();
    assert_eq!(stopped.len(), 2, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_workspace_has_its_own_warehouse_and_no_grant_names_another_ones_file() {
    let s = Scratch::new();
    let (api, owner) = serve_first_party(&s, &[]);
    api.install(&owner, &["source-faker", "destination-sqlite"])
        .await;
    let mut editors = Vec::new();
    for (ws, count) in [("alpha", 5), ("beta", 7)] {
        let editor = key(&s, "member");
        let r = api
            .call(
                Method::POST,
                "/v1/workspaces",
                &owner,
                Some(json!({ "name": ws })),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json());
        let path = format!("/v1/workspaces/{ws}/members/{}", key_id(&editor));
        let r = api
            .call(
                Method::PUT,
                &path,
                &owner,
                Some(json!({ "role": "editor" })),
            )
            .await;
        assert!(r.status < 300, "{:?}", r.json());
        let base = format!("/v1/workspaces/{ws}");
        let source = json!({ "name": "fake", "connector": "source-faker", "config": { "count": count, "seed": 1 } });
        let r = api
            .call(
                Method::POST,
                &format!("{base}/sources"),
                &editor,
                Some(source),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json());
        // Both editors name the same file.
        let wh = json!({
            "name": "wh", "connector": "destination-sqlite",
            "grant": { "sql": [{ "name": "warehouse", "sqlite": "shared.db", "table_prefix": "raw_" }] },
        });
        let r = api
            .call(
                Method::POST,
                &format!("{base}/destinations"),
                &editor,
                Some(wh),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json());
        let conn = json!({ "name": "load", "source": "fake", "destination": "wh" });
        let r = api
            .call(
                Method::POST,
                &format!("{base}/connections"),
                &editor,
                Some(conn),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json());
        editors.push((ws, count, editor));
    }
    // An editor of alpha reaching for beta's file, however it is spelt, is refused.
    let (_, _, alpha) = &editors[0];
    for file in [
        "../../beta/warehouse/shared.db".to_string(),
        "../beta/shared.db".to_string(),
        s.data_dir()
            .join("workspaces/beta/warehouse/shared.db")
            .display()
            .to_string(),
    ] {
        let wh = json!({
            "name": "steal", "connector": "destination-sqlite",
            "grant": { "sql": [{ "name": "warehouse", "sqlite": file, "table_prefix": "raw_" }] },
        });
        let r = api
            .call(
                Method::POST,
                "/v1/workspaces/alpha/destinations",
                alpha,
                Some(wh),
            )
            .await;
        assert_eq!(r.status, 422, "{file}: {:?}", r.json());
    }
    // Each run writes its own workspace's file.
    for (ws, _, editor) in &editors {
        let runs = format!("/v1/workspaces/{ws}/connections/load/runs");
        let r = api.call(Method::POST, &runs, editor, None).await;
        assert_eq!(r.status, 202, "{:?}", r.json());
        let id = r.json()["run"]["id"].as_i64().unwrap();
        let started = Instant::now();
        loop {
            let run = api
                .call(
                    Method::GET,
                    &format!("/v1/workspaces/{ws}/runs/{id}"),
                    editor,
                    None,
                )
                .await
                .json();
            if run["status"] != "running" {
                assert_eq!(run["status"], "succeeded", "{run}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "never finished"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(
        !s.data_dir().join("warehouse/shared.db").exists(),
        "not the shared folder"
    );
    // Staging lives per workspace too (each run's own removed when it ended).
    for ws in ["alpha", "beta"] {
        let staging = s.data_dir().join(format!("workspaces/{ws}/staging"));
        assert!(staging.is_dir(), "{ws} staged its runs in its own folder");
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    }
    assert!(
        !s.data_dir().join("staging").exists(),
        "nothing in the shared staging"
    );
    for (ws, count, _) in &editors {
        let file = s
            .data_dir()
            .join(format!("workspaces/{ws}/warehouse/shared.db"));
        let url = format!("sqlite://{}?mode=ro", file.display());
        let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{ws}: {e}"));
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM raw_users")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(n, *count as i64, "{ws} has exactly its own rows");
    }
}
