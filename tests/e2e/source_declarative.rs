//! source-declarative against a real HTTP server on 127.0.0.1: an Airbyte-style manifest with
//! `$ref`s, `$parameters`, page numbers, a substream and a bearer token the host fills in from
//! a bound secret; and a manifest with Python components refused before anything is sent.

use serde_json::{Value, json};
use sluice_tests::server::{Reply, Seen, TestServer};
use sluice_tests::{Scratch, connector, read_jsonl};

/// An API of 5 projects (pages of 2) and 3 tasks per project, behind a bearer token.
fn api(token: &'static str) -> TestServer {
    TestServer::start(move |req: &Seen| {
        if req.header("authorization") != Some(&format!("Bearer {token}")) {
            return Reply::status(401, "bad token");
        }
        let page: usize = req.query("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let path = req.path().to_string();
        if path == "/api/projects" {
            let ids: Vec<Value> = (1..=5)
                .skip((page - 1) * 2)
                .take(2)
                .map(|id| json!({"id": id, "name": format!("project {id}")}))
                .collect();
            return Reply::json(&json!({ "data": ids }));
        }
        if let Some(rest) = path.strip_prefix("/api/projects/")
            && let Some(id) = rest.strip_suffix("/tasks")
        {
            let tasks: Vec<Value> = (1..=3)
                .map(|t| json!({"id": format!("{id}-{t}"), "internal": "x"}))
                .collect();
            return Reply::json(&json!({ "data": tasks }));
        }
        Reply::status(404, "no such endpoint")
    })
}

fn manifest() -> Value {
    json!({
        "version": "6.0.0",
        "type": "DeclarativeSource",
        "check": {"type": "CheckStream", "stream_names": ["projects"]},
        "definitions": {
            "requester": {
                "type": "HttpRequester",
                "url_base": "{{ config.base_url }}/api",
                "authenticator": {"type": "BearerAuthenticator", "api_token": "{{ config['api_token'] }}"}
            },
            "projects": {
                "type": "DeclarativeStream",
                "$parameters": {"name": "projects", "path": "/projects", "primary_key": "id"},
                "retriever": {
                    "type": "SimpleRetriever",
                    "requester": {"$ref": "#/definitions/requester"},
                    "record_selector": {"type": "RecordSelector", "extractor": {"type": "DpathExtractor", "field_path": ["data"]}},
                    "paginator": {
                        "type": "DefaultPaginator",
                        "pagination_strategy": {"type": "PageIncrement", "page_size": 2, "start_from_page": 1},
                        "page_token_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "page"}
                    }
                }
            }
        },
        "streams": [
            "#/definitions/projects",
            {
                "type": "DeclarativeStream",
                "$parameters": {"name": "tasks", "primary_key": "id"},
                "retriever": {
                    "type": "SimpleRetriever",
                    "requester": {"$ref": "#/definitions/requester", "path": "/projects/{{ stream_partition.project_id }}/tasks"},
                    "record_selector": {"type": "RecordSelector", "extractor": {"type": "DpathExtractor", "field_path": ["data"]}},
                    "partition_router": {"type": "SubstreamPartitionRouter", "parent_stream_configs": [
                        {"type": "ParentStreamConfig", "stream": "#/definitions/projects", "parent_key": "id", "partition_field": "project_id"}
                    ]}
                },
                "transformations": [
                    {"type": "AddFields", "fields": [{"path": ["project_id"], "value": "{{ stream_partition.project_id }}"}]},
                    {"type": "RemoveFields", "field_pointers": [["internal"]]}
                ]
            }
        ]
    })
}

/// The connection file: source-declarative with `manifest`, reading `port`, into files.
fn connection(port: u16, manifest: &Value) -> String {
    let conn = json!({
        "name": "declarative",
        "source": {
            "connector": connector("source-declarative").display().to_string(),
            "config": {
                "manifest": manifest,
                "config": {"base_url": format!("http://127.0.0.1:{port}"), "api_token": "{{secret:api_token}}"}
            },
            "grant": {
                "network": {"allow": [format!("http://127.0.0.1:{port}")]},
                "secrets": [{"name": "api_token", "file": "token.txt", "to": [format!("http://127.0.0.1:{port}")]}]
            }
        },
        "destination": {
            "connector": connector("destination-file").display().to_string(),
            "config": {"path": "/output", "format": "jsonl"},
            "grant": {"dirs": [{"host": "out", "guest": "/output"}]}
        }
    });
    let table = toml::Value::try_from(conn).expect("the connection is TOML");
    toml::to_string(&table).expect("TOML text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_reads_pages_and_substreams_through_the_host() {
    let server = api("t0k3n-secret");
    let s = Scratch::new();
    s.write("token.txt", "t0k3n-secret\n");
    s.write("c.toml", &connection(server.port(), &manifest()));
    let r = s.run("c.toml").await;
    assert!(r.succeeded(), "{:?}\n{:#?}", r.error, r.log);

    let projects: Vec<Value> = read_jsonl(&s.path("out/projects.jsonl"))
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(projects, (1..=5).map(Value::from).collect::<Vec<_>>());
    let tasks = read_jsonl(&s.path("out/tasks.jsonl"));
    assert_eq!(tasks.len(), 15, "three tasks of each of five projects");
    assert_eq!(tasks[0], json!({"id": "1-1", "project_id": 1}));
    assert!(tasks.iter().all(|t| t.get("internal").is_none()));

    // Pages 1..3 of the projects once (a parent stream's responses are cached for the run, as
    // Airbyte's runtime caches them, so the tasks' parent reads them from memory), then one
    // request per project.
    let seen = server.seen();
    assert_eq!(
        seen.len(),
        3 + 5,
        "{:?}",
        seen.iter()
            .map(|q| q.path().to_string())
            .collect::<Vec<_>>()
    );
    assert!(
        seen.iter()
            .all(|q| q.header("authorization") == Some("Bearer t0k3n-secret"))
    );
    assert!(!format!("{:?}{:?}", r.log, r.events).contains("t0k3n-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_components_are_refused_by_name_before_any_request() {
    let server = api("long-enough-token");
    let s = Scratch::new();
    s.write("token.txt", "long-enough-token");
    let mut m = manifest();
    m["streams"][1]["retriever"]["record_selector"]["extractor"] =
        json!({"type": "CustomRecordExtractor", "class_name": "source_acme.components.Extractor"});
    s.write("c.toml", &connection(server.port(), &m));
    let r = s.run("c.toml").await;
    let err = r.error.expect("refused").to_string();
    assert!(err.contains("config error"), "{err}");
    assert!(
        err.contains("streams[1].retriever.record_selector.extractor"),
        "{err}"
    );
    assert!(err.contains("source_acme.components.Extractor"), "{err}");
    assert!(server.seen().is_empty(), "nothing was sent");
}
