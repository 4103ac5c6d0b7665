//! The control API, in process through its router (access and audit layers included): the
//! authorization matrix, API keys that must be refused, and installing a connector through it.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sluice::api::{ApiState, ROUTES, Role, router};
use sluice::runtime::{Runtime, RuntimeConfig};
use sluice::store::Store;
use sluice_tests::{Scratch, sluice_cli};
use tower::ServiceExt;

const ROLES: [Role; 4] = [Role::Owner, Role::Admin, Role::Billing, Role::Member];

/// The callers of the matrix, in the order of its columns.
const CALLERS: [&str; 6] = ["no key", "owner", "admin", "billing", "editor", "viewer"];

struct Api {
    s: Scratch,
    store: Arc<Store>,
    app: axum::Router,
    /// A token per role, in the order of `ROLES`; the member key is an editor of `own`.
    tokens: Vec<String>,
    /// A second member key, a viewer of `own` (once `workspaces()` ran).
    viewer: String,
}

impl Api {
    async fn new(s: Scratch) -> Api {
        // The matrix sends hundreds of requests per key at once: no rate in the way.
        Api::with_rate(s, 1_000_000).await
    }

    async fn with_rate(s: Scratch, per_second: u32) -> Api {
        let store = Arc::new(Store::open(&s.data_dir()).await.unwrap());
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(s.data_dir().join("cache/compiled")),
            cache_key: Some(store.keyring().cache_key()),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let mut tokens = Vec::new();
        for r in ROLES {
            let (_, t) = store
                .create_api_key("test", r.as_str(), None)
                .await
                .unwrap();
            tokens.push(t.expose_secret().to_string());
        }
        let (_, viewer) = store
            .create_api_key("viewer", "member", None)
            .await
            .unwrap();
        let server = sluice::server::Server::new(
            store.clone(),
            runtime,
            &sluice::server::ServerConfig::default(),
        )
        .unwrap();
        let app = router(ApiState::new(server, sluice::api::Guards::new(per_second)));
        Api {
            s,
            store,
            app,
            tokens,
            viewer: viewer.expose_secret().to_string(),
        }
    }

    /// The token of a matrix caller (`None` for "no key").
    fn caller(&self, i: usize) -> Option<&str> {
        match i {
            0 => None,
            1..=4 => Some(&self.tokens[i - 1]),
            _ => Some(&self.viewer),
        }
    }

    fn token(&self, role: Role) -> &str {
        &self.tokens[ROLES.iter().position(|r| *r == role).unwrap()]
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, v)
    }

    /// A request from `from`, with extra headers; the status, headers and body.
    async fn send_from(
        &self,
        from: &str,
        req: http::request::Builder,
        body: &str,
    ) -> (StatusCode, http::HeaderMap, Value) {
        let addr: std::net::SocketAddr = format!("{from}:40000").parse().unwrap();
        let mut req = req.body(Body::from(body.to_string())).unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(sluice::api::Peer(addr)));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, v)
    }

    /// The last request's audit entry.
    async fn last_request(&self) -> sluice::boundary::audit::Entry {
        self.audit()
            .await
            .into_iter()
            .rev()
            .find(|e| e.action == "api.request")
            .unwrap()
    }

    async fn audit(&self) -> Vec<sluice::boundary::audit::Entry> {
        self.store.audit_entries(&Default::default()).await.unwrap()
    }
}

/// The key id of a token (`sluice_<id>_<secret>`).
fn key_id(token: &str) -> &str {
    &token["sluice_".len().."sluice_".len() + 16]
}

/// Install source-faker and destination-file from the first-party index (`cargo xtask build`).
fn install_first_party(s: &Scratch) {
    let index = sluice_tests::root().join("examples/index");
    let pubkey = index.join("sluice.pub").display().to_string();
    let (code, _, err) = sluice_cli(s, &["trust", "add", &pubkey]);
    assert_eq!(code, 0, "{err}");
    for name in ["source-faker", "destination-file"] {
        let (code, _, err) = sluice_cli(
            s,
            &[
                "connector",
                "install",
                name,
                "--index",
                &index.display().to_string(),
                "--approve",
            ],
        );
        assert_eq!(code, 0, "{name}: {err}");
    }
}

fn faker_source(name: &str, count: u32) -> Value {
    json!({ "name": name, "connector": "source-faker", "config": { "count": count, "seed": 7 } })
}

fn file_destination(name: &str) -> Value {
    json!({
        "name": name,
        "connector": "destination-file",
        "config": { "path": "/output", "format": "jsonl" },
        "grant": { "dirs": [{ "host": "out", "guest": "/output" }] },
    })
}

impl Api {
    /// Workspaces `own` and `other`, each with source `src`, destination `dst` and connection
    /// `conn` (paused); the member key is an editor of `own`, the viewer key a viewer of it.
    async fn workspaces(&self) {
        let owner = self.token(Role::Owner).to_string();
        let ok = |what: &str, (status, body): (StatusCode, Value)| {
            assert!(status.is_success(), "{what}: {status} {body}");
        };
        for ws in ["own", "other"] {
            let r = self
                .call(
                    Method::POST,
                    "/v1/workspaces",
                    Some(&owner),
                    Some(json!({ "name": ws })),
                )
                .await;
            ok("workspace", r);
            let base = format!("/v1/workspaces/{ws}");
            let r = self
                .call(
                    Method::POST,
                    &format!("{base}/sources"),
                    Some(&owner),
                    Some(faker_source("src", 10)),
                )
                .await;
            ok("source", r);
            let r = self
                .call(
                    Method::POST,
                    &format!("{base}/destinations"),
                    Some(&owner),
                    Some(file_destination("dst")),
                )
                .await;
            ok("destination", r);
            let conn = json!({ "name": "conn", "source": "src", "destination": "dst", "status": "paused" });
            let r = self
                .call(
                    Method::POST,
                    &format!("{base}/connections"),
                    Some(&owner),
                    Some(conn),
                )
                .await;
            ok("connection", r);
        }
        let editor = key_id(self.token(Role::Member)).to_string();
        let viewer = key_id(&self.viewer).to_string();
        for (key, role) in [(editor, "editor"), (viewer, "viewer")] {
            let r = self
                .call(
                    Method::PUT,
                    &format!("/v1/workspaces/own/members/{key}"),
                    Some(&owner),
                    Some(json!({ "role": role })),
                )
                .await;
            ok("member", r);
        }
    }
}

/// Expected statuses per caller (`CALLERS` order) in the caller's own workspace and in another.
type Expect = ([u16; 6], [u16; 6]);

/// Reading a workspace's things: members by their workspace role, billing never.
fn read(x: u16) -> Expect {
    ([401, x, x, 403, x, x], [401, x, x, 403, 403, 403])
}

/// Changing a workspace's things: editors, not viewers.
fn write(x: u16) -> Expect {
    ([401, x, x, 403, x, 403], [401, x, x, 403, 403, 403])
}

/// Organization-wide management: owners and admins.
fn managers(x: u16) -> Expect {
    ([401, x, x, 403, 403, 403], [401, x, x, 403, 403, 403])
}

/// One row per route: the route as routed, a concrete request (`{ws}` becomes the caller's own
/// workspace, then another), and the statuses expected. A route the API serves without a row
/// here fails the test, as does a row for a route it does not serve. Requests are chosen to
/// change nothing (invalid bodies, unknown names, a paused connection), so rows do not depend
/// on their order.
fn matrix(index: &str) -> Vec<(Method, &'static str, &'static str, Option<Value>, Expect)> {
    let bad_source = json!({ "name": "x", "connector": "nope" });
    let bad_conn = json!({ "name": "x", "source": "nope", "destination": "dst" });
    vec![
        (
            Method::GET,
            "/healthz",
            "/healthz",
            None,
            ([200; 6], [200; 6]),
        ),
        (
            Method::GET,
            "/openapi.json",
            "/openapi.json",
            None,
            ([200; 6], [200; 6]),
        ),
        (
            Method::GET,
            "/metrics",
            "/metrics",
            None,
            (
                [401, 200, 200, 200, 403, 403],
                [401, 200, 200, 200, 403, 403],
            ),
        ),
        (
            Method::GET,
            "/v1/audit",
            "/v1/audit?action=workspace&limit=5",
            None,
            managers(200),
        ),
        (
            Method::GET,
            "/v1/retention",
            "/v1/retention",
            None,
            managers(200),
        ),
        (
            Method::PUT,
            "/v1/retention",
            "/v1/retention",
            Some(json!({ "samples": "two weeks" })),
            managers(422),
        ),
        (
            Method::POST,
            "/v1/retention/purge",
            "/v1/retention/purge",
            None,
            managers(200),
        ),
        (Method::GET, "/v1/keys", "/v1/keys", None, managers(200)),
        (
            Method::POST,
            "/v1/keys",
            "/v1/keys",
            Some(json!({ "role": "nope" })),
            managers(422),
        ),
        (
            Method::PATCH,
            "/v1/keys/{id}",
            "/v1/keys/nope",
            Some(json!({ "role": "member" })),
            managers(404),
        ),
        (
            Method::DELETE,
            "/v1/keys/{id}",
            "/v1/keys/nope",
            None,
            managers(404),
        ),
        (
            Method::POST,
            "/v1/keys/{id}/rotate",
            "/v1/keys/nope/rotate",
            None,
            managers(404),
        ),
        (
            Method::GET,
            "/v1/connectors",
            "/v1/connectors",
            None,
            managers(200),
        ),
        // Allowed callers reach the handler, which finds no such connector.
        (
            Method::POST,
            "/v1/connectors",
            "/v1/connectors",
            Some(json!({ "name": "nope", "index": index })),
            managers(404),
        ),
        (
            Method::GET,
            "/v1/connectors/{name}",
            "/v1/connectors/nope",
            None,
            managers(404),
        ),
        (
            Method::DELETE,
            "/v1/connectors/{name}",
            "/v1/connectors/nope",
            None,
            managers(404),
        ),
        (
            Method::GET,
            "/v1/workspaces",
            "/v1/workspaces",
            None,
            (
                [401, 200, 200, 403, 200, 200],
                [401, 200, 200, 403, 200, 200],
            ),
        ),
        (
            Method::POST,
            "/v1/workspaces",
            "/v1/workspaces",
            Some(json!({ "name": "Not Valid" })),
            managers(422),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}",
            "/v1/workspaces/{ws}",
            None,
            read(200),
        ),
        (
            Method::PATCH,
            "/v1/workspaces/{workspace}",
            "/v1/workspaces/{ws}",
            Some(json!({})),
            managers(422),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/members",
            "/v1/workspaces/{ws}/members",
            None,
            read(200),
        ),
        (
            Method::PUT,
            "/v1/workspaces/{workspace}/members/{key_id}",
            "/v1/workspaces/{ws}/members/nope",
            Some(json!({ "role": "editor" })),
            managers(404),
        ),
        (
            Method::DELETE,
            "/v1/workspaces/{workspace}/members/{key_id}",
            "/v1/workspaces/{ws}/members/nope",
            None,
            managers(404),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/sources",
            "/v1/workspaces/{ws}/sources",
            None,
            read(200),
        ),
        (
            Method::POST,
            "/v1/workspaces/{workspace}/sources",
            "/v1/workspaces/{ws}/sources",
            Some(bad_source.clone()),
            write(422),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/sources/{name}",
            "/v1/workspaces/{ws}/sources/src",
            None,
            read(200),
        ),
        (
            Method::PUT,
            "/v1/workspaces/{workspace}/sources/{name}",
            "/v1/workspaces/{ws}/sources/src",
            Some(json!({ "connector": "nope" })),
            write(422),
        ),
        // In use by `conn`: refused, and nothing changes.
        (
            Method::DELETE,
            "/v1/workspaces/{workspace}/sources/{name}",
            "/v1/workspaces/{ws}/sources/src",
            None,
            write(409),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/destinations",
            "/v1/workspaces/{ws}/destinations",
            None,
            read(200),
        ),
        (
            Method::POST,
            "/v1/workspaces/{workspace}/destinations",
            "/v1/workspaces/{ws}/destinations",
            Some(bad_source),
            write(422),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/destinations/{name}",
            "/v1/workspaces/{ws}/destinations/dst",
            None,
            read(200),
        ),
        (
            Method::PUT,
            "/v1/workspaces/{workspace}/destinations/{name}",
            "/v1/workspaces/{ws}/destinations/dst",
            Some(json!({ "connector": "nope" })),
            write(422),
        ),
        (
            Method::DELETE,
            "/v1/workspaces/{workspace}/destinations/{name}",
            "/v1/workspaces/{ws}/destinations/dst",
            None,
            write(409),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/connections",
            "/v1/workspaces/{ws}/connections",
            None,
            read(200),
        ),
        (
            Method::POST,
            "/v1/workspaces/{workspace}/connections",
            "/v1/workspaces/{ws}/connections",
            Some(bad_conn.clone()),
            write(422),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/connections/{name}",
            "/v1/workspaces/{ws}/connections/conn",
            None,
            read(200),
        ),
        (
            Method::PUT,
            "/v1/workspaces/{workspace}/connections/{name}",
            "/v1/workspaces/{ws}/connections/conn",
            Some(bad_conn),
            write(422),
        ),
        (
            Method::DELETE,
            "/v1/workspaces/{workspace}/connections/{name}",
            "/v1/workspaces/{ws}/connections/nope",
            None,
            write(404),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/connections/{name}/runs",
            "/v1/workspaces/{ws}/connections/conn/runs",
            None,
            read(200),
        ),
        // `conn` is paused: a trigger is refused without starting anything.
        (
            Method::POST,
            "/v1/workspaces/{workspace}/connections/{name}/runs",
            "/v1/workspaces/{ws}/connections/conn/runs",
            None,
            write(409),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/runs/{id}",
            "/v1/workspaces/{ws}/runs/999999",
            None,
            read(404),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/runs/{id}/logs",
            "/v1/workspaces/{ws}/runs/999999/logs",
            None,
            read(404),
        ),
        (
            Method::POST,
            "/v1/workspaces/{workspace}/runs/{id}/cancel",
            "/v1/workspaces/{ws}/runs/999999/cancel",
            None,
            write(404),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/webhooks",
            "/v1/workspaces/{ws}/webhooks",
            None,
            read(200),
        ),
        (
            Method::POST,
            "/v1/workspaces/{workspace}/webhooks",
            "/v1/workspaces/{ws}/webhooks",
            Some(json!({ "url": "ftp://example.com/hook" })),
            write(422),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/webhooks/{id}",
            "/v1/workspaces/{ws}/webhooks/wh_nope",
            None,
            read(404),
        ),
        (
            Method::DELETE,
            "/v1/workspaces/{workspace}/webhooks/{id}",
            "/v1/workspaces/{ws}/webhooks/wh_nope",
            None,
            write(404),
        ),
        (
            Method::POST,
            "/v1/workspaces/{workspace}/webhooks/{id}/rotate",
            "/v1/workspaces/{ws}/webhooks/wh_nope/rotate",
            None,
            write(404),
        ),
        (
            Method::GET,
            "/v1/workspaces/{workspace}/webhooks/{id}/deliveries",
            "/v1/workspaces/{ws}/webhooks/wh_nope/deliveries",
            None,
            read(404),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_in_its_own_and_another_workspace_as_the_table_says() {
    let s = crate::marketplace::setup();
    install_first_party(&s);
    let api = Api::new(s).await;
    api.workspaces().await;
    let index = api.s.path("index").display().to_string();
    let rows = matrix(&index);
    let served: BTreeSet<(String, &str)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    let tested: BTreeSet<(String, &str)> = rows.iter().map(|r| (r.0.to_string(), r.1)).collect();
    assert_eq!(
        served, tested,
        "every route has exactly one row in the matrix"
    );
    let mut requests = 0;
    for (method, route, path, body, (own, other)) in &rows {
        let places: Vec<(&str, &[u16; 6])> = if path.contains("{ws}") {
            vec![("own", own), ("other", other)]
        } else {
            assert_eq!(own, other, "{route}: not a workspace route");
            vec![("", own)]
        };
        for (ws, expected) in places {
            let path = path.replace("{ws}", ws);
            for (i, who) in CALLERS.iter().enumerate() {
                let (status, answer) = api
                    .call(method.clone(), &path, api.caller(i), body.clone())
                    .await;
                requests += 1;
                assert_eq!(
                    status.as_u16(),
                    expected[i],
                    "{method} {path} as {who}: {answer}"
                );
            }
        }
    }
    // A path no route serves is not found, whoever asks.
    let (status, _) = api
        .call(
            Method::GET,
            "/v1/nothing",
            Some(api.token(Role::Owner)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Members see only their workspaces in the list; owners see all.
    let (_, mine) = api
        .call(Method::GET, "/v1/workspaces", api.caller(4), None)
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["name"], "own");
    let (_, all) = api
        .call(Method::GET, "/v1/workspaces", api.caller(1), None)
        .await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    // Nothing the matrix sent changed anything: both workspaces hold what they held.
    for ws in ["own", "other"] {
        let (_, c) = api
            .call(
                Method::GET,
                &format!("/v1/workspaces/{ws}/connections/conn"),
                api.caller(1),
                None,
            )
            .await;
        assert_eq!(c["status"], "paused");
        assert_eq!(c["last_run"], Value::Null, "no run was started");
        let (_, srcs) = api
            .call(
                Method::GET,
                &format!("/v1/workspaces/{ws}/sources"),
                api.caller(1),
                None,
            )
            .await;
        assert_eq!(srcs.as_array().unwrap().len(), 1, "{srcs}");
    }
    // Every request was audited, refused ones as refused, with the key, the role and why.
    let audit = api.audit().await;
    let entries: Vec<_> = audit.iter().filter(|e| e.action == "api.request").collect();
    assert!(entries.len() >= requests, "{} < {requests}", entries.len());
    assert!(entries.iter().any(|e| e.outcome == "refused"
        && e.details.contains("\"role\":\"billing\"")
        && e.details.contains("role not allowed")));
    assert!(entries.iter().any(|e| e.outcome == "refused"
        && e.resource.starts_with("POST /v1/workspaces/own/")
        && e.details.contains("viewer may not change")));
    assert!(entries.iter().any(|e| e.outcome == "refused"
        && e.resource.starts_with("GET /v1/workspaces/other/")
        && e.details.contains("not a member of the workspace")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_are_unknown_expired_revoked_or_wrong_are_refused_and_audited() {
    let api = Api::new(Scratch::new()).await;
    let past = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let (expired, expired_token) = api
        .store
        .create_api_key("old", "owner", Some(past))
        .await
        .unwrap();
    let (revoked, revoked_token) = api
        .store
        .create_api_key("gone", "owner", None)
        .await
        .unwrap();
    assert_eq!(
        api.store.revoke_api_key(&revoked.id).await.unwrap(),
        sluice::store::KeyChange::Done
    );
    let good = api.token(Role::Owner).to_string();
    // The last hex digit changed (to one it is not: a fixed replacement would be the same
    // digit one time in sixteen).
    let last = if good.ends_with('0') { '1' } else { '0' };
    let wrong_secret = format!("{}{last}", &good[..good.len() - 1]);
    assert_ne!(wrong_secret, good);
    let cases = [
        (expired_token.expose_secret().to_string(), "expired key"),
        (revoked_token.expose_secret().to_string(), "revoked key"),
        (wrong_secret.clone(), "unknown key or wrong secret"),
        (
            "sluice_0123456789abcdef_nope".to_string(),
            "unknown key or wrong secret",
        ),
        (
            "not-a-sluice-key".to_string(),
            "unknown key or wrong secret",
        ),
    ];
    for (token, why) in &cases {
        let (status, body) = api
            .call(Method::GET, "/v1/connectors", Some(token), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        // The caller is told the same for every bad key; the audit log has why.
        assert_eq!(
            body["error"], "the API key is not valid (unknown, expired or revoked)",
            "{why}"
        );
        let audit = api.audit().await;
        let last = audit
            .iter()
            .rev()
            .find(|e| e.action == "api.request")
            .unwrap();
        assert_eq!(last.outcome, "refused");
        assert!(last.details.contains(why), "{why}: {:?}", last.details);
    }
    let (status, _) = api
        .call(Method::GET, "/v1/connectors", Some(&good), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the valid key still works");
    // The expired and revoked keys are named in the audit log; no token ever is.
    let text = format!("{:?}", api.audit().await);
    assert!(
        text.contains(&format!("api:{}", expired.id))
            && text.contains(&format!("api:{}", revoked.id))
    );
    for (token, _) in &cases {
        if let Some(secret) = token.rsplit('_').next().filter(|s| s.len() > 8) {
            assert!(
                !text.contains(secret),
                "a token's secret reached the audit log"
            );
        }
    }
    assert!(!text.contains(&good[good.len() - 20..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_is_installed_through_the_api_only_with_its_capabilities_approved() {
    let api = Api::new(crate::marketplace::setup()).await;
    let index = api.s.path("index").display().to_string();
    let admin = api.token(Role::Admin).to_string();
    let body = json!({ "name": "source-faker", "version": "0.2.0", "index": index });
    let (status, answer) = api
        .call(
            Method::POST,
            "/v1/connectors",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(
        answer["to_approve"],
        json!(["network https://*.example.com"])
    );
    let (_, list) = api
        .call(Method::GET, "/v1/connectors", Some(&admin), None)
        .await;
    assert_eq!(list, json!([]), "nothing installed without approval");

    let mut approved = body.clone();
    approved["approved"] = json!(["network https://*.example.com"]);
    let (status, answer) = api
        .call(Method::POST, "/v1/connectors", Some(&admin), Some(approved))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["connector"]["version"], "0.2.0");
    let (status, shown) = api
        .call(
            Method::GET,
            "/v1/connectors/source-faker",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["approved"], json!(["network https://*.example.com"]));

    let (status, _) = api
        .call(
            Method::DELETE,
            "/v1/connectors/source-faker",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .call(
            Method::GET,
            "/v1/connectors/source-faker",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let audit = api.audit().await;
    let admin_id = &admin["sluice_".len().."sluice_".len() + 16];
    for action in [
        "connector.install",
        "connector.installed",
        "connector.removed",
    ] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == action && e.actor == format!("api:{admin_id}")),
            "{action} by the admin's key"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_with_a_grace_period_and_the_last_owner_cannot_be_removed() {
    let api = Api::new(Scratch::new()).await;
    let owner = api.token(Role::Owner).to_string();
    let admin = api.token(Role::Admin).to_string();
    let owner_id = key_id(&owner).to_string();

    // The only owner cannot revoke or demote itself; nor can an admin touch it.
    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/v1/keys/{owner_id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("last active owner")
    );
    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("/v1/keys/{owner_id}"),
            Some(&owner),
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/keys/{owner_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins do not mint owners");
    let (status, _) = api
        .call(Method::GET, "/v1/connectors", Some(&owner), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the owner key still works");

    // With a second owner, the first may be demoted.
    let (status, created) = api
        .call(
            Method::POST,
            "/v1/keys",
            Some(&owner),
            Some(json!({ "role": "owner", "name": "second" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let second = created["token"].as_str().unwrap().to_string();
    let listed = api
        .call(Method::GET, "/v1/keys", Some(&second), None)
        .await
        .1
        .to_string();
    assert!(
        !listed.contains(&second[second.len() - 16..]),
        "a listing shows no secret"
    );
    let (status, changed) = api
        .call(
            Method::PATCH,
            &format!("/v1/keys/{owner_id}"),
            Some(&second),
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["role"], "admin");
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/keys",
            Some(&owner),
            Some(json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the demoted key acts as an admin now"
    );

    // Rotation with a grace period: old and new both work until the grace ends.
    let admin_id = key_id(&admin).to_string();
    let (status, rotated) = api
        .call(
            Method::POST,
            &format!("/v1/keys/{admin_id}/rotate"),
            Some(&second),
            Some(json!({ "grace_hours": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let fresh = rotated["token"].as_str().unwrap().to_string();
    assert_eq!(rotated["key"]["role"], "admin");
    assert!(rotated["old_key"]["expires_at"].is_string());
    for token in [&admin, &fresh] {
        let (status, _) = api
            .call(Method::GET, "/v1/connectors", Some(token), None)
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "both keys work during the grace period"
        );
    }
    // Rotating again with no grace ends the previous key at once.
    let fresh_id = key_id(&fresh).to_string();
    let (status, again) = api
        .call(
            Method::POST,
            &format!("/v1/keys/{fresh_id}/rotate"),
            Some(&second),
            Some(json!({ "grace_hours": 0 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let newest = again["token"].as_str().unwrap().to_string();
    let (status, _) = api
        .call(Method::GET, "/v1/connectors", Some(&fresh), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the rotated-out key is refused"
    );
    let (status, _) = api
        .call(Method::GET, "/v1/connectors", Some(&newest), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let audit = api.audit().await;
    let last_refusal = audit
        .iter()
        .rev()
        .find(|e| e.action == "api.request" && e.outcome == "refused")
        .unwrap();
    assert!(
        last_refusal.details.contains("expired key"),
        "{}",
        last_refusal.details
    );
    assert_eq!(last_refusal.actor, format!("api:{fresh_id}"));
    assert!(
        audit
            .iter()
            .any(|e| e.action == "api_key.rotated" && e.resource == format!("api_key/{admin_id}"))
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "api_key.role_changed"
                && e.resource == format!("api_key/{owner_id}"))
    );
    let text = format!("{audit:?}");
    for token in [&second, &fresh, &newest] {
        assert!(
            !text.contains(&token[token.len() - 32..]),
            "a token reached the audit log"
        );
    }
}

fn get(path: &str, token: &str) -> http::request::Builder {
    Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlists_of_keys_and_workspaces_refuse_other_addresses_and_audit_why() {
    let api = Api::new(Scratch::new()).await;
    let owner = api.token(Role::Owner).to_string();
    let (status, created) = api
        .call(
            Method::POST,
            "/v1/keys",
            Some(&owner),
            Some(json!({ "role": "admin", "name": "office", "allowed_ips": ["203.0.113.0/24", "2001:db8::1"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["key"]["allowed_ips"],
        json!(["203.0.113.0/24", "2001:db8::1/128"])
    );
    let office = created["token"].as_str().unwrap().to_string();
    for (from, expect) in [
        ("203.0.113.9", StatusCode::OK),
        ("[2001:db8::1]", StatusCode::OK),
        ("[::ffff:203.0.113.7]", StatusCode::OK),
        ("198.51.100.1", StatusCode::FORBIDDEN),
        ("127.0.0.1", StatusCode::FORBIDDEN),
    ] {
        let (status, _, body) = api.send_from(from, get("/v1/keys", &office), "").await;
        assert_eq!(status, expect, "{from}: {body}");
        if expect == StatusCode::FORBIDDEN {
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .contains("may not be used from")
            );
            let e = api.last_request().await;
            assert_eq!(e.outcome, "refused");
            assert!(
                e.details.contains("address outside the key's allowlist"),
                "{e:?}"
            );
        }
    }
    // Bad lists are refused, naming the entry.
    let id = created["key"]["id"].as_str().unwrap().to_string();
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/v1/keys/{id}"),
            Some(&owner),
            Some(json!({ "allowed_ips": ["10.0.0.0/40"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"].as_str().unwrap().contains("`10.0.0.0/40`"),
        "{body}"
    );
    // `null` lifts the list.
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/v1/keys/{id}"),
            Some(&owner),
            Some(json!({ "allowed_ips": null })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = api
        .send_from("198.51.100.1", get("/v1/keys", &office), "")
        .await;
    assert_eq!(status, StatusCode::OK);

    // A workspace's list holds for everyone reaching its routes, owners included, but not for
    // the route that changes it.
    for ws in ["own", "other"] {
        assert!(api.store.create_workspace(ws).await.unwrap());
    }
    api.store
        .set_member("own", key_id(api.token(Role::Member)), "editor")
        .await
        .unwrap();
    let (status, body) = api
        .call(
            Method::PATCH,
            "/v1/workspaces/own",
            Some(&owner),
            Some(json!({ "allowed_ips": ["10.9.0.0/16"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["allowed_ips"], json!(["10.9.0.0/16"]));
    let editor = api.token(Role::Member).to_string();
    for token in [&owner, &editor] {
        let (status, _, _) = api
            .send_from("10.9.3.4", get("/v1/workspaces/own/connections", token), "")
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, body) = api
            .send_from("10.8.3.4", get("/v1/workspaces/own/connections", token), "")
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let e = api.last_request().await;
        assert!(
            e.details
                .contains("address outside the workspace's allowlist"),
            "{e:?}"
        );
        // Other workspaces are not affected.
        let (status, _, _) = api
            .send_from(
                "10.8.3.4",
                get("/v1/workspaces/other/connections", &owner),
                "",
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let patch = Request::builder()
        .method(Method::PATCH)
        .uri("/v1/workspaces/own")
        .header("authorization", format!("Bearer {owner}"))
        .header("content-type", "application/json");
    let (status, _, body) = api
        .send_from("10.8.3.4", patch, r#"{"allowed_ips": null}"#)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the owner can always mend the list: {body}"
    );
    let audit = format!("{:?}", api.audit().await);
    assert!(audit.contains("workspace.policy_changed") && audit.contains("api_key.policy_changed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_need_a_fresh_correct_signature_once_and_each_refusal_is_audited() {
    let api = Api::new(Scratch::new()).await;
    let owner = api.token(Role::Owner).to_string();
    let (status, created) = api
        .call(
            Method::POST,
            "/v1/keys",
            Some(&owner),
            Some(json!({ "role": "owner", "name": "signed", "signed": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["key"]["signed"], true);
    let token = created["token"].as_str().unwrap().to_string();
    let secret = created["signing_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("sluice_sig_"));
    // The secret is shown once: not in listings, not in the audit log.
    let (_, keys) = api.call(Method::GET, "/v1/keys", Some(&owner), None).await;
    assert!(!keys.to_string().contains(&secret));

    let body = r#"{"name": "signed-ws"}"#;
    let signed = |ts: u64, path: &str, body: &str, key: &str| {
        let ts = ts.to_string();
        let sig = sluice::api::signing::sign(
            key.as_bytes(),
            &sluice::api::signing::payload(&ts, &Method::POST, path, body.as_bytes()),
        );
        Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("x-sluice-timestamp", ts)
            .header("x-sluice-signature", sig)
    };
    let now = now_secs();
    let unsigned = Request::builder()
        .method(Method::POST)
        .uri("/v1/workspaces")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    let cases = [
        (unsigned, body, "unsigned request from a signing key"),
        (
            signed(now, "/v1/workspaces", body, "sluice_sig_wrong"),
            body,
            "wrong signature",
        ),
        // Signed for one body, sent with another.
        (
            signed(now, "/v1/workspaces", body, &secret),
            r#"{"name": "other-ws"}"#,
            "wrong signature",
        ),
        (
            signed(now - 301, "/v1/workspaces", body, &secret),
            body,
            "stale signature timestamp",
        ),
        (
            signed(now + 400, "/v1/workspaces", body, &secret),
            body,
            "stale signature timestamp",
        ),
    ];
    for (req, sent, why) in cases {
        let (status, _, answer) = api.send_from("127.0.0.1", req, sent).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {answer}");
        let e = api.last_request().await;
        assert_eq!(e.outcome, "refused");
        assert!(e.details.contains(why), "{why}: {e:?}");
    }
    assert!(api.store.workspace("signed-ws").await.unwrap().is_none());
    assert!(api.store.workspace("other-ws").await.unwrap().is_none());
    // Signed right: accepted once; the same request again is a replay.
    let (status, _, answer) = api
        .send_from(
            "127.0.0.1",
            signed(now, "/v1/workspaces", body, &secret),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, _, answer) = api
        .send_from(
            "127.0.0.1",
            signed(now, "/v1/workspaces", body, &secret),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(
        api.last_request()
            .await
            .details
            .contains("replayed request")
    );
    // The query is signed too.
    let path = "/v1/audit?limit=1";
    let ts = now_secs().to_string();
    let sig = sluice::api::signing::sign(
        secret.as_bytes(),
        &sluice::api::signing::payload(&ts, &Method::GET, "/v1/audit?limit=2", b""),
    );
    let req = get(path, &token)
        .header("x-sluice-timestamp", &ts)
        .header("x-sluice-signature", &sig);
    let (status, _, _) = api.send_from("127.0.0.1", req, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Turning signing off lets plain requests in again.
    let id = created["key"]["id"].as_str().unwrap();
    let (status, answer) = api
        .call(
            Method::PATCH,
            &format!("/v1/keys/{id}"),
            Some(&owner),
            Some(json!({ "signed": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = api.call(Method::GET, "/v1/keys", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let audit = format!("{:?}", api.audit().await);
    assert!(
        !audit.contains(&secret[12..]),
        "the signing secret reached the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_others_are_served() {
    let api = Api::with_rate(Scratch::new(), 3).await;
    let owner = api.token(Role::Owner).to_string();
    let admin = api.token(Role::Admin).to_string();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let (status, headers, _) = api
            .send_from("127.0.0.1", get("/v1/keys", &owner), "")
            .await;
        statuses.push(status.as_u16());
        if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after = headers.get("retry-after").cloned();
        }
    }
    // A burst of 3, then refusals (a new one trickles in every third of a second).
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let secs: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=1).contains(&secs), "Retry-After {secs}");
    let e = api.last_request().await;
    assert_eq!(e.outcome, "refused");
    assert!(e.details.contains("rate limited"), "{e:?}");
    // Another key is not held back by this one.
    let (status, _, _) = api
        .send_from("127.0.0.1", get("/v1/keys", &admin), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    // After waiting as told, the key is served again.
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    let (status, _, _) = api
        .send_from("127.0.0.1", get("/v1/keys", &owner), "")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_refusals_latencies_runs_records_and_bytes() {
    let api = Api::new(Scratch::new()).await;
    let owner = api.token(Role::Owner).to_string();
    let billing = api.token(Role::Billing).to_string();
    for _ in 0..3 {
        let (status, _) = api.call(Method::GET, "/v1/keys", Some(&owner), None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = api
        .call(Method::GET, "/v1/keys", Some(&billing), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.call(Method::GET, "/v1/keys", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Two runs in the store: one succeeded with 5 records, one failed.
    for (status, records) in [
        (sluice::store::RunStatus::Succeeded, 5),
        (sluice::store::RunStatus::Failed, 0),
    ] {
        let lock = api.store.lock("w/c").unwrap();
        let run = api.store.begin_run(&lock, "w/c", true).await.unwrap();
        let stats = [sluice::store::StreamStats {
            stream: "users".into(),
            records,
            bytes: records * 100,
        }];
        api.store
            .finish_run(run.run_id, run.attempt, status, None, &stats, 0)
            .await
            .unwrap();
    }

    let (_, headers, body) = api
        .send_from("127.0.0.1", get("/metrics", &billing), "")
        .await;
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = body.as_str().unwrap().to_string();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse().unwrap()))
            .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
    };
    assert_eq!(
        value(r#"sluice_api_requests_total{method="GET",route="/v1/keys",status="200"}"#),
        3.0
    );
    assert_eq!(
        value(r#"sluice_api_requests_total{method="GET",route="/v1/keys",status="403"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sluice_api_refusals_total{reason="role not allowed"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sluice_api_refusals_total{reason="no API key"}"#),
        1.0
    );
    assert_eq!(
        value(r#"sluice_api_request_duration_seconds_count{method="GET",route="/v1/keys"}"#),
        5.0
    );
    assert!(text.contains(r#"sluice_api_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/keys"} 5"#)
        || text.contains(r#"sluice_api_request_duration_seconds_bucket{method="GET",route="/v1/keys",le="+Inf"} 5"#),
        "{text}");
    assert_eq!(value(r#"sluice_runs{status="succeeded"}"#), 1.0);
    assert_eq!(value(r#"sluice_runs{status="failed"}"#), 1.0);
    assert_eq!(value("sluice_records_written "), 5.0);
    assert_eq!(value("sluice_bytes_written "), 500.0);
    assert_eq!(value("sluice_runs_in_progress "), 0.0);
    assert!(text.trim_end().ends_with("# EOF"));
    // Members see none of it.
    let (status, _) = api
        .call(Method::GET, "/metrics", Some(api.token(Role::Member)), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid_and_covers_every_route_the_router_serves() {
    let api = Api::new(Scratch::new()).await;
    let (status, doc) = api.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "sluice control API");
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    let mut ids = BTreeSet::new();
    let mut links = Vec::new();
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path}");
        let declared: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(
                ["get", "post", "put", "patch", "delete"].contains(&method.as_str()),
                "{method} {path}"
            );
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_string()),
                "duplicate id in {method} {path}"
            );
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
            // Every path parameter is declared, required, and nothing else is.
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|p| p["in"] == "path")
                        .inspect(|p| assert_eq!(p["required"], true))
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(params, declared, "{method} {path}");
            // Each success answer says what it carries: a schema per media type, or nothing
            // (204).
            let answers = op["responses"].as_object().unwrap();
            let successes: Vec<_> = answers.iter().filter(|(c, _)| c.starts_with('2')).collect();
            assert!(
                !successes.is_empty(),
                "{method} {path} has no success answer"
            );
            for (code, answer) in successes {
                match answer["content"].as_object() {
                    None => assert_eq!(code, "204", "{method} {path} {code} has no body"),
                    Some(content) => {
                        for (media, body) in content {
                            assert!(body["schema"].is_object(), "{method} {path} {code} {media}");
                        }
                    }
                }
                for (_, link) in answer["links"].as_object().into_iter().flatten() {
                    links.push(link["operationId"].as_str().unwrap().to_string());
                }
            }
            // Every error answer is `{"error": …}`.
            assert_eq!(
                answers["4XX"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Error"
            );
            // A body is an object of known fields: unknown ones are refused, and say so.
            if let Some(body) = op.get("requestBody") {
                let schema = &body["content"]["application/json"]["schema"];
                let name = schema["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
                let component = &doc["components"]["schemas"][name];
                assert_eq!(component["type"], "object", "{method} {path}");
                assert_eq!(
                    component["additionalProperties"], false,
                    "{method} {path}: unknown fields are refused, so the schema says so"
                );
            }
            // It matches the access table, and says so.
            let route = ROUTES
                .iter()
                .find(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(method))
                .unwrap_or_else(|| panic!("{method} {path} is documented but not in ROUTES"));
            let public = route.access == sluice::api::RouteAccess::Public;
            assert_eq!(op["security"].is_null(), public, "{method} {path}");
            assert!(
                op["description"]
                    .as_str()
                    .unwrap()
                    .starts_with("Who may call it")
            );
        }
    }
    assert_eq!(
        operations,
        ROUTES.len(),
        "every route in ROUTES is documented"
    );
    // Links name operations that exist, and every reference resolves.
    assert!(links.len() > 20, "{links:?}");
    for id in &links {
        assert!(ids.contains(id), "a link to `{id}`, which is no operation");
    }
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} resolves to nothing"
        );
    }
    // Every documented route is served by the router: a request to it, with made-up
    // parameters and no key, is answered by the route (401 or its own answer), never 404/405.
    // (A route the router serves but ROUTES lacks cannot be called at all: the access layer
    // refuses it, and the matrix test holds ROUTES to its table.)
    for r in ROUTES.iter() {
        let concrete = r
            .path
            .replace("{id}", "1")
            .replace('{', "x")
            .replace('}', "");
        let (status, body) = api.call(r.method.clone(), &concrete, None, None).await;
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{} {concrete}: {status} {body}",
            r.method
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_read_changed_and_applied_over_the_api_and_each_change_audited() {
    use sluice::boundary::retention::{Keep, Retention};
    let api = Api::new(Scratch::new()).await;
    let owner = api.token(Role::Owner).to_string();
    let admin = api.token(Role::Admin).to_string();
    let (status, defaults) = api
        .call(Method::GET, "/v1/retention", Some(&owner), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        defaults,
        json!({ "staging": "14d", "run_logs": "30d", "samples": "30d", "audit": "365d", "state": "forever" })
    );
    // Bad settings are refused, naming the class and what to write; nothing is written.
    for (body, says) in [
        (
            json!({ "samples": "two weeks" }),
            "`samples = \"two weeks\"`",
        ),
        (
            json!({ "audit": "do_not_store" }),
            "`audit` and `state` cannot be",
        ),
        (json!({ "forever": "1d" }), "unknown field `forever`"),
        // The audit log cannot be shortened through the API: an outside review erased it with
        // `{"audit": "0s"}` and a purge.
        (
            json!({ "audit": "0s" }),
            "below this server's audit floor of 365d",
        ),
        (json!({ "audit": "364d" }), "never the API"),
    ] {
        let (status, answer) = api
            .call(
                Method::PUT,
                "/v1/retention",
                Some(&owner),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let text = match &answer {
            Value::String(t) => t.as_str(),
            v => v["error"].as_str().unwrap_or_default(),
        };
        assert!(text.contains(says), "{body}: {answer}");
    }
    assert!(!api.store.dir().join("retention.toml").exists());

    // A run that finished with log lines.
    let lock = api.store.lock("w/c").unwrap();
    let run = api.store.begin_run(&lock, "w/c", true).await.unwrap();
    let line = sluice::protocol::LogLine {
        connector: "source-faker".into(),
        level: sluice::protocol::LogLevel::Info,
        message: "hello".into(),
    };
    api.store
        .append_logs(run.run_id, &[line.clone(), line])
        .await
        .unwrap();
    api.store
        .finish_run(
            run.run_id,
            run.attempt,
            sluice::store::RunStatus::Succeeded,
            None,
            &[],
            0,
        )
        .await
        .unwrap();
    drop(lock);
    // With the defaults nothing is overdue.
    let (status, report) = api
        .call(Method::POST, "/v1/retention/purge", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["run_log_lines"], 0, "{report}");

    // Run logs kept for one second; a class left out gets its default.
    let (status, changed) = api
        .call(
            Method::PUT,
            "/v1/retention",
            Some(&admin),
            Some(json!({ "run_logs": "1s", "samples": "do_not_store" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        changed,
        json!({ "staging": "14d", "run_logs": "1s", "samples": "do_not_store", "audit": "365d", "state": "forever" })
    );
    // Written where runs and `sluice purge` read it.
    let on_disk = Retention::load(api.store.dir()).unwrap();
    assert_eq!(
        on_disk.run_logs,
        Keep::For(std::time::Duration::from_secs(1))
    );
    assert_eq!(on_disk.samples, Keep::DoNotStore);
    let (_, read_back) = api
        .call(Method::GET, "/v1/retention", Some(&owner), None)
        .await;
    assert_eq!(read_back, changed);

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, report) = api
        .call(Method::POST, "/v1/retention/purge", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["run_log_lines"], 2, "{report}");
    assert!(api.store.logs(run.run_id).await.unwrap().is_empty());

    let audit = api.audit().await;
    let change = audit
        .iter()
        .find(|e| e.action == "retention.changed")
        .expect("the change is audited");
    assert_eq!(change.actor, format!("api:{}", key_id(&admin)));
    assert!(change.details.contains("\"before\""), "{}", change.details);
    assert!(
        change.details.contains("\"run_logs\":\"30d\""),
        "{}",
        change.details
    );
    assert!(
        change.details.contains("\"run_logs\":\"1s\""),
        "{}",
        change.details
    );
    let purges: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "retention.purged")
        .collect();
    assert_eq!(purges.len(), 2);
    assert!(
        purges[1].details.contains("\"run_log_lines\":2"),
        "{}",
        purges[1].details
    );
}

/// Install first-party connectors by name from the example index.
fn install(s: &Scratch, names: &[&str]) {
    let index = sluice_tests::root().join("examples/index");
    let pubkey = index.join("sluice.pub").display().to_string();
    let (code, _, err) = sluice_cli(s, &["trust", "add", &pubkey]);
    assert_eq!(code, 0, "{err}");
    for name in names {
        let index = index.display().to_string();
        let args = ["connector", "install", name, "--index", &index, "--approve"];
        let (code, _, err) = sluice_cli(s, &args);
        assert_eq!(code, 0, "{name}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_cannot_send_a_stored_secret_somewhere_new_without_sending_it_again() {
    let api = Api::new(Scratch::new()).await;
    install_first_party(&api.s);
    install(&api.s, &["source-http", "destination-postgres"]);
    api.workspaces().await;
    let editor = api.token(Role::Member).to_string();
    let call = |method: Method, path: &'static str, body: Value| {
        let editor = editor.clone();
        let api = &api;
        async move { api.call(method, path, Some(&editor), Some(body)).await }
    };
    let api_source = |to: &str, allow: &[&str], extra: Value| {
        let mut secret = json!({ "name": "tok", "to": [to] });
        for (k, v) in extra.as_object().unwrap() {
            secret[k] = v.clone();
        }
        json!({
            "connector": "source-http",
            "config": { "base_url": "https://api.example.com", "auth": { "type": "bearer", "token": "{{secret:tok}}" },
                        "streams": [{ "name": "users", "path": "/users" }] },
            "grant": { "network": { "allow": allow }, "secrets": [secret] },
        })
    };
    let pg = |url: &str| {
        json!({
            "connector": "destination-postgres",
            "config": {},
            "grant": { "sql": [{ "name": "warehouse", "url": url, "schema": "raw" }],
                       "secrets": [{ "name": "pw" }] },
        })
    };
    let good = "postgres://loader:{{secret:pw}}@db.example.com:5432/wh?sslmode=require";

    // The editor creates both, with their secrets.
    let mut body = api_source(
        "https://api.example.com",
        &["https://api.example.com"],
        json!({}),
    );
    body["name"] = json!("api");
    body["secrets"] = json!({ "tok": "tok-value-stays-home" });
    let (status, answer) = call(Method::POST, "/v1/workspaces/own/sources", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let mut body = pg(good);
    body["name"] = json!("wh");
    body["secrets"] = json!({ "pw": "pw-value-stays-home" });
    let (status, answer) = call(Method::POST, "/v1/workspaces/own/destinations", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // Honest edits that send the values nowhere new keep them.
    let mut same = api_source(
        "https://api.example.com",
        &["https://api.example.com"],
        json!({}),
    );
    same["config"]["streams"][0]["path"] = json!("/v2/users");
    let (status, answer) = call(Method::PUT, "/v1/workspaces/own/sources/api", same).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Each redirection is refused without the value, naming the secret and what changed, and
    // the stored endpoint stays as it was.
    let attacker = "https://attacker.example";
    let both = ["https://api.example.com", "https://attacker.example"];
    for (path, body, why) in [
        (
            "/v1/workspaces/own/sources/api",
            api_source(attacker, &both, json!({})),
            "`to` list",
        ),
        (
            "/v1/workspaces/own/sources/api",
            api_source(
                "https://*.example.com",
                &["https://*.example.com"],
                json!({}),
            ),
            "`to` list",
        ),
        (
            "/v1/workspaces/own/sources/api",
            api_source("https://api.example.com", &both, json!({})),
            "network rules",
        ),
        (
            "/v1/workspaces/own/sources/api",
            api_source(
                "https://api.example.com",
                &["https://api.example.com"],
                json!({ "query": ["t"] }),
            ),
            "query parameters",
        ),
        (
            "/v1/workspaces/own/destinations/wh",
            pg("postgres://loader:{{secret:pw}}@attacker.example:5432/x?sslmode=disable"),
            "database URL",
        ),
        (
            "/v1/workspaces/own/destinations/wh",
            pg("postgres://loader:{{secret:pw}}@db.example.com:5432/wh?sslmode=disable"),
            "database URL",
        ),
    ] {
        let (status, answer) = call(Method::PUT, path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let text = answer["error"].as_str().unwrap_or_default();
        assert!(
            text.contains(why) && text.contains("send its value again"),
            "{text}"
        );
    }
    let (_, stored) = api
        .call(
            Method::GET,
            "/v1/workspaces/own/destinations/wh",
            Some(&editor),
            None,
        )
        .await;
    assert_eq!(
        stored["grant"]["sql"][0]["url"], good,
        "unchanged: {stored}"
    );
    let (_, stored) = api
        .call(
            Method::GET,
            "/v1/workspaces/own/sources/api",
            Some(&editor),
            None,
        )
        .await;
    assert_eq!(
        stored["grant"]["secrets"][0]["to"],
        json!(["https://api.example.com"])
    );

    // Sent again with the change, it is the editor's own value that goes there: accepted.
    let mut moved = api_source(attacker, &both, json!({}));
    moved["secrets"] = json!({ "tok": "a-new-value-for-there" });
    let (status, answer) = call(Method::PUT, "/v1/workspaces/own/sources/api", moved).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_grant_over_the_api_borrows_no_credentials_of_the_server() {
    let api = Api::new(Scratch::new()).await;
    install_first_party(&api.s);
    install(&api.s, &["destination-postgres"]);
    api.workspaces().await;
    let editor = api.token(Role::Member).to_string();
    for (url, says) in [
        // No password: sqlx would take PGPASSWORD or ~/.pgpass.
        ("postgres://postgres@127.0.0.1:5432/postgres", "PGPASSWORD"),
        // No user: PGUSER, or the server's own user name.
        ("postgres://:{{secret:pw}}@127.0.0.1/postgres", "PGUSER"),
        // A Unix socket, where peer authentication logs in as the server's user.
        (
            "postgres://u:{{secret:pw}}@%2Fvar%2Frun%2Fpostgresql/db",
            "Unix sockets",
        ),
        (
            "postgres://u:{{secret:pw}}@127.0.0.1/db?host=/var/run/postgresql",
            "not `host`",
        ),
        (
            "postgres://u:{{secret:pw}}@127.0.0.1/db?sslkey=/root/.postgresql/postgresql.key",
            "not `sslkey`",
        ),
        (
            "postgres://u:{{secret:pw}}@127.0.0.1/db?options=-c%20role%3Dpostgres",
            "not `options`",
        ),
        (
            "postgres://u:{{secret:pw}}@127.0.0.1/db?sslrootcert=/etc/shadow",
            "names a file on the server",
        ),
    ] {
        let body = json!({
            "name": "wh",
            "connector": "destination-postgres",
            "config": {},
            "grant": { "sql": [{ "name": "warehouse", "url": url, "schema": "raw" }],
                       "secrets": [{ "name": "pw" }] },
            "secrets": { "pw": "a-password-of-theirs" },
        });
        let (status, answer) = api
            .call(
                Method::POST,
                "/v1/workspaces/own/destinations",
                Some(&editor),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {answer}");
        let text = answer["error"].as_str().unwrap_or_default();
        assert!(
            text.contains(says) && text.contains("grant.sql[0].url"),
            "{url}: {text}"
        );
    }
    let (_, list) = api
        .call(
            Method::GET,
            "/v1/workspaces/own/destinations",
            Some(&editor),
            None,
        )
        .await;
    assert!(
        !list.to_string().contains("\"wh\""),
        "nothing stored: {list}"
    );
}

/// A path the API has, asked with a method it lacks, is answered 405 with `Allow` (found by
/// schemathesis: TRACE was answered 403), keyed or not, and the handler never runs; a path it
/// does not have stays 404-free of hints (the access layer's refusal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_path_does_not_have_is_answered_405_with_allow() {
    let api = Api::new(Scratch::new()).await;
    let owner = api.token(Role::Owner).to_string();
    for method in ["TRACE", "OPTIONS", "PATCH", "DELETE"] {
        for token in [None, Some(owner.as_str())] {
            let req = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri("/v1/workspaces");
            let req = match token {
                Some(t) => req.header("authorization", format!("Bearer {t}")),
                None => req,
            };
            let resp = api
                .app
                .clone()
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
            assert_eq!(
                resp.headers().get("allow").and_then(|v| v.to_str().ok()),
                Some("GET, POST"),
                "{method}"
            );
        }
    }
    let e = api.last_request().await;
    assert!(e.details.contains("method not allowed"), "{}", e.details);
    // The allowed methods still answer as before.
    let (status, _) = api
        .call(Method::GET, "/v1/workspaces", Some(&owner), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_an_object_of_known_fields_read_as_its_schema_says() {
    let api = Api::new(Scratch::new()).await;
    let owner = api.token(Role::Owner).to_string();
    // serde alone would read an array as a struct's fields in order: `[null, null]` was a key
    // change, `[]` a rotation (schemathesis found both).
    for (path, method, body) in [
        ("/v1/workspaces", Method::POST, json!(["acme"])),
        ("/v1/keys", Method::POST, json!(["owner"])),
        ("/v1/retention", Method::PUT, json!([])),
        ("/v1/workspaces", Method::POST, json!("acme")),
    ] {
        let (status, answer) = api.call(method, path, Some(&owner), Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("must be a JSON object"),
            "{answer}"
        );
    }
    let (status, answer) = api
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(&owner),
            Some(json!({ "name": "acme", "owner": "me" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `owner`")
    );
    // A whole number written as `24.0` is the number 24, as the schema's `integer` means;
    // `2.5` is not.
    let (status, created) = api
        .call(
            Method::POST,
            "/v1/keys",
            Some(&owner),
            Some(json!({ "role": "member", "expires_in_days": 30.0 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // A key that would expire as it is made (schemathesis: created, then 404 on rotate) is
    // refused by name.
    let (status, answer) = api
        .call(
            Method::POST,
            "/v1/keys",
            Some(&owner),
            Some(json!({ "role": "member", "expires_in_days": 0 })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("expires_in_days is 1 to"),
        "{answer}"
    );
    let id = created["key"]["id"].as_str().unwrap().to_string();
    let (status, answer) = api
        .call(
            Method::POST,
            &format!("/v1/keys/{id}/rotate"),
            Some(&owner),
            Some(json!({ "grace_hours": 2.5 })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("grace_hours"),
        "{answer}"
    );
    // A field that may be left out is not thereby nullable.
    let (status, answer) = api
        .call(
            Method::PATCH,
            &format!("/v1/keys/{id}"),
            Some(&owner),
            Some(json!({ "role": null, "signed": true })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    // The body's errors, like every other, are JSON: a body that is not JSON at all too.
    let (status, _, answer) = api
        .send_from(
            "127.0.0.1",
            Request::builder()
                .method(Method::POST)
                .uri("/v1/workspaces")
                .header("authorization", format!("Bearer {owner}"))
                .header("content-type", "text/plain"),
            "name=acme",
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{answer}"
    );
    // Limits past their range are refused, not quietly clamped.
    let (status, answer) = api
        .call(Method::GET, "/v1/audit?limit=0", Some(&owner), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = api
        .call(Method::GET, "/v1/audit?since=yesterday", Some(&owner), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("RFC 3339"));
    // A body sent without `Content-Type` is refused, not quietly replaced by the defaults (a
    // rotation's `grace_hours: 0` would have been a day); no body at all is the defaults.
    let rotate = |body: &'static str, typed: bool| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(format!("/v1/keys/{id}/rotate"))
            .header("authorization", format!("Bearer {owner}"));
        if typed {
            req = req.header("content-type", "application/json");
        }
        (req, body)
    };
    let (req, body) = rotate(r#"{"grace_hours": 0}"#, false);
    let (status, _, answer) = api.send_from("127.0.0.1", req, body).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{answer}");
    let (req, body) = rotate("", true);
    let (status, _, rotated) = api.send_from("127.0.0.1", req, body).await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    // A wrongly typed value is never quoted back: it may be a secret.
    api.call(
        Method::POST,
        "/v1/workspaces",
        Some(&owner),
        Some(json!({ "name": "acme" })),
    )
    .await;
    for body in [
        json!({ "name": "s", "connector": "source-faker", "secrets": "ghp_not_for_your_eyes" }),
        json!({ "name": "s", "connector": "source-faker", "grant": { "secrets": ["ghp_not_for_your_eyes"] } }),
    ] {
        let (status, answer) = api
            .call(
                Method::POST,
                "/v1/workspaces/acme/sources",
                Some(&owner),
                Some(body),
            )
            .await;
        assert!(status.is_client_error(), "{status} {answer}");
        assert!(!answer.to_string().contains("ghp_not"), "{answer}");
    }
    // A path the access layer cannot read answers JSON like every other error.
    let (status, answer) = api
        .call(
            Method::GET,
            "/v1/workspaces/%FF/sources",
            Some(&owner),
            None,
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    assert!(answer["error"].is_string(), "{answer}");
    // A token pasted into a path is not kept in the audit log.
    let leaked = format!("/v1/keys/{owner}");
    api.call(Method::DELETE, &leaked, Some(&owner), None).await;
    let (_, entries) = api
        .call(
            Method::GET,
            "/v1/audit?action=api.request",
            Some(&owner),
            None,
        )
        .await;
    let text = entries.to_string();
    assert!(!text.contains(&owner), "the token is in the audit log");
    assert!(text.contains("DELETE /v1/keys/[credential]"), "{text}");
    // And the honest request beside them all succeeds.
    let (status, answer) = api
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(&owner),
            Some(json!({ "name": "acme2" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

/// Found in review: a connection's worker labels could not be set through the API, so any PUT
/// (a pause, say) dropped a residency rule written some other way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_worker_labels_are_set_and_checked_through_the_api() {
    let s = crate::marketplace::setup();
    install_first_party(&s);
    let api = Api::new(s).await;
    api.workspaces().await;
    let owner = api.token(Role::Owner).to_string();
    let path = "/v1/workspaces/own/connections/conn";
    let body = |labels: Value| json!({ "source": "src", "destination": "dst", "status": "paused", "labels": labels });
    let (status, answer) = api
        .call(
            Method::PUT,
            path,
            Some(&owner),
            Some(body(json!({ "region": "eu" }))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, got) = api.call(Method::GET, path, Some(&owner), None).await;
    assert_eq!(
        got["settings"]["labels"],
        json!({ "region": "eu" }),
        "{got}"
    );
    let def = api
        .store
        .connection_def("own", "conn")
        .await
        .unwrap()
        .unwrap();
    let conn = sluice::server::resolve::resolve(&api.store, &def)
        .await
        .unwrap();
    assert_eq!(conn.labels.get("region").map(String::as_str), Some("eu"));
    let (status, answer) = api
        .call(
            Method::PUT,
            path,
            Some(&owner),
            Some(body(json!({ "region": "e u" }))),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer.to_string().contains("[labels]"), "{answer}");
    // The refused PUT changed nothing.
    let (_, got) = api.call(Method::GET, path, Some(&owner), None).await;
    assert_eq!(
        got["settings"]["labels"],
        json!({ "region": "eu" }),
        "{got}"
    );
}
