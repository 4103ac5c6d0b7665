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
use sluice_tests::Scratch;
use tower::ServiceExt;

const ROLES: [Role; 4] = [Role::Owner, Role::Admin, Role::Billing, Role::Member];

struct Api {
    s: Scratch,
    store: Arc<Store>,
    app: axum::Router,
    /// A token per role, in the order of `ROLES`.
    tokens: Vec<String>,
}

impl Api {
    async fn new(s: Scratch) -> Api {
        let store = Arc::new(Store::open(&s.data_dir()).await.unwrap());
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(s.data_dir().join("cache/compiled")),
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
        let app = router(ApiState {
            store: store.clone(),
            runtime,
            default_index: None,
        });
        Api {
            s,
            store,
            app,
            tokens,
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

    async fn audit(&self) -> Vec<sluice::boundary::audit::log::Entry> {
        self.store.audit_entries(&Default::default()).await.unwrap()
    }
}

/// Method, route as routed, concrete path, body, and the statuses expected.
type Row = (Method, &'static str, String, Option<Value>, [u16; 5]);

/// One row per route: the route as routed, a concrete request to it, and the status expected
/// without a key and for each of `ROLES`. A route the API serves without a row here fails the
/// test, as does a row for a route it does not serve.
fn matrix(index: &str) -> Vec<Row> {
    vec![
        (
            Method::GET,
            "/healthz",
            "/healthz".into(),
            None,
            [200, 200, 200, 200, 200],
        ),
        (
            Method::GET,
            "/v1/connectors",
            "/v1/connectors".into(),
            None,
            [401, 200, 200, 403, 403],
        ),
        (
            Method::POST,
            "/v1/connectors",
            "/v1/connectors".into(),
            Some(json!({ "name": "nope", "index": index })),
            // Allowed callers reach the handler, which finds no such connector.
            [401, 404, 404, 403, 403],
        ),
        (
            Method::GET,
            "/v1/connectors/{name}",
            "/v1/connectors/nope".into(),
            None,
            [401, 404, 404, 403, 403],
        ),
        (
            Method::DELETE,
            "/v1/connectors/{name}",
            "/v1/connectors/nope".into(),
            None,
            [401, 404, 404, 403, 403],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_the_table_says() {
    let api = Api::new(crate::marketplace::setup()).await;
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
    for (method, route, path, body, expected) in &rows {
        let mut callers: Vec<Option<&str>> = vec![None];
        callers.extend(ROLES.iter().map(|r| Some(api.token(*r))));
        for (i, token) in callers.into_iter().enumerate() {
            let (status, answer) = api.call(method.clone(), path, token, body.clone()).await;
            let who = if i == 0 {
                "no key".to_string()
            } else {
                format!("{:?}", ROLES[i - 1])
            };
            assert_eq!(
                status.as_u16(),
                expected[i],
                "{method} {route} as {who}: {answer}"
            );
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
    // Every request was audited, refused ones as refused, with the key and the role.
    let audit = api.audit().await;
    let requests: Vec<_> = audit.iter().filter(|e| e.action == "api.request").collect();
    assert!(requests.len() >= rows.len() * 5, "{}", requests.len());
    assert!(requests.iter().any(|e| e.outcome == "refused"
        && e.details.contains("\"role\":\"billing\"")
        && e.details.contains("role not allowed")));
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
    assert!(api.store.revoke_api_key(&revoked.id).await.unwrap());
    let good = api.token(Role::Owner).to_string();
    let wrong_secret = format!("{}0", &good[..good.len() - 1]);
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
