//! Whole reads of manifests against a scripted API: the requests made, the records emitted and
//! the states committed.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_sdk::{
    ConfiguredCatalog, ConfiguredStream, DestinationMode, Message, ReaderDriver, Result, State,
    SyncMode,
};
use source_declarative::request::{HttpRequest, HttpResponse, Transport};
use source_declarative::{Config, ManifestReader, check_with, describe, load};

/// A scripted answer: status, body, headers.
type Answer = (u16, Value, Vec<(String, String)>);
/// Records or states, each with its stream.
type Emitted = Vec<(String, Value)>;

/// Answers by URL; records every request.
struct Api {
    answers: BTreeMap<String, Answer>,
    seen: Vec<HttpRequest>,
}

impl Api {
    fn new(answers: Vec<(&str, u16, Value)>) -> Api {
        Api {
            answers: answers
                .into_iter()
                .map(|(u, s, b)| (u.to_string(), (s, b, vec![])))
                .collect(),
            seen: vec![],
        }
    }
}

impl Transport for &mut Api {
    fn send(&mut self, req: &HttpRequest) -> Result<HttpResponse> {
        self.seen.push(req.clone());
        let (status, body, headers) = self.answers.get(&req.url).cloned().unwrap_or((
            404,
            json!({"error": "no such page"}),
            vec![],
        ));
        Ok(HttpResponse {
            status,
            headers,
            body: serde_json::to_vec(&body).unwrap(),
        })
    }
}

fn catalog(config: &Config, modes: &[(&str, SyncMode)]) -> ConfiguredCatalog {
    let source = load::manifest(&config.manifest).unwrap();
    ConfiguredCatalog {
        streams: modes
            .iter()
            .map(|(name, mode)| {
                let s = source.streams.iter().find(|s| s.name == *name).unwrap();
                ConfiguredStream {
                    stream: describe(s, &config.config).unwrap(),
                    sync_mode: *mode,
                    destination_mode: DestinationMode::Append,
                    cursor_field: vec![],
                    primary_key: vec![],
                }
            })
            .collect(),
    }
}

fn run(
    config: Config,
    catalog: ConfiguredCatalog,
    state: State,
    api: &mut Api,
) -> (Emitted, Emitted) {
    let reader = ManifestReader::new(config, catalog, state, api).unwrap();
    let mut driver = ReaderDriver::new(reader);
    let (mut records, mut states) = (vec![], vec![]);
    while let Some(m) = driver.next(1000).unwrap() {
        match m {
            Message::Batch {
                stream,
                records: lines,
            } => {
                for l in String::from_utf8(lines).unwrap().lines() {
                    records.push((stream.clone(), serde_json::from_str(l).unwrap()));
                }
            }
            Message::State { stream, state } => {
                states.push((stream, serde_json::from_str(&state).unwrap()));
            }
        }
    }
    (records, states)
}

fn manifest() -> Value {
    json!({
        "version": "6.0.0",
        "type": "DeclarativeSource",
        "check": {"type": "CheckStream", "stream_names": ["projects"]},
        "definitions": {
            "requester": {
                "type": "HttpRequester",
                "url_base": "https://{{ config.subdomain }}.example.com/api",
                "http_method": "GET",
                "authenticator": {"type": "BearerAuthenticator", "api_token": "{{ config.token }}"},
                "request_headers": {"Accept": "application/json"}
            },
            "paginator": {
                "type": "DefaultPaginator",
                "pagination_strategy": {"type": "PageIncrement", "page_size": 2, "start_from_page": 1},
                "page_token_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "page"},
                "page_size_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "per_page"}
            },
            "base": {
                "type": "DeclarativeStream",
                "retriever": {
                    "type": "SimpleRetriever",
                    "requester": {"$ref": "#/definitions/requester"},
                    "paginator": {"$ref": "#/definitions/paginator"},
                    "record_selector": {"type": "RecordSelector", "extractor": {"type": "DpathExtractor", "field_path": ["data"]}}
                }
            },
            "projects": {
                "$ref": "#/definitions/base",
                "$parameters": {"name": "projects", "path": "/projects", "primary_key": "id"}
            }
        },
        "streams": [
            "#/definitions/projects",
            {
                "$ref": "#/definitions/base",
                "$parameters": {"name": "tasks", "primary_key": "id"},
                "retriever": {
                    "type": "SimpleRetriever",
                    "requester": {"$ref": "#/definitions/requester", "path": "/projects/{{ stream_partition.project_id }}/tasks"},
                    "record_selector": {"type": "RecordSelector", "extractor": {"type": "DpathExtractor", "field_path": ["data"]},
                        "record_filter": {"type": "RecordFilter", "condition": "{{ record.state != 'deleted' }}"}},
                    "paginator": {"type": "NoPagination"},
                    "partition_router": {
                        "type": "SubstreamPartitionRouter",
                        "parent_stream_configs": [{"type": "ParentStreamConfig", "stream": "#/definitions/projects",
                            "parent_key": "id", "partition_field": "project_id"}]
                    }
                },
                "incremental_sync": {
                    "type": "DatetimeBasedCursor", "cursor_field": "updated_at",
                    "datetime_format": "%Y-%m-%dT%H:%M:%SZ",
                    "start_datetime": {"type": "MinMaxDatetime", "datetime": "{{ config.start_date }}", "datetime_format": "%Y-%m-%d"},
                    "end_datetime": "2024-01-10T00:00:00Z",
                    "start_time_option": {"type": "RequestOption", "inject_into": "request_parameter", "field_name": "since"}
                },
                "transformations": [
                    {"type": "AddFields", "fields": [{"type": "AddedFieldDefinition", "path": ["project_id"], "value": "{{ stream_partition.project_id }}"}]},
                    {"type": "RemoveFields", "field_pointers": [["internal"]]}
                ]
            }
        ],
        "spec": {"type": "Spec", "connection_specification": {"type": "object", "required": ["subdomain", "token"],
            "properties": {"subdomain": {"type": "string"}, "token": {"type": "string", "airbyte_secret": true}, "start_date": {"type": "string"}}}}
    })
}

fn config() -> Config {
    Config {
        manifest: manifest(),
        config: json!({"subdomain": "acme", "token": "{{secret:token}}", "start_date": "2024-01-01"}),
    }
}

fn scripted() -> Api {
    let base = "https://acme.example.com/api";
    Api::new(vec![
        (
            &format!("{base}/projects?per_page=2"),
            200,
            json!({"data": [{"id": 1}, {"id": 2}]}),
        ),
        (
            &format!("{base}/projects?per_page=2&page=2"),
            200,
            json!({"data": [{"id": 3}]}),
        ),
        (
            &format!("{base}/projects/1/tasks?since=2024-01-01T00%3A00%3A00Z"),
            200,
            json!({"data": [{"id": "a", "updated_at": "2024-01-02T00:00:00Z", "internal": 1}, {"id": "b", "state": "deleted", "updated_at": "2024-01-09T00:00:00Z"}]}),
        ),
        (
            &format!("{base}/projects/2/tasks?since=2024-01-01T00%3A00%3A00Z"),
            200,
            json!({"data": [{"id": "c", "updated_at": "2024-01-05T00:00:00Z"}]}),
        ),
        (
            &format!("{base}/projects/3/tasks?since=2024-01-01T00%3A00%3A00Z"),
            200,
            json!({"data": []}),
        ),
        (
            &format!("{base}/projects/1/tasks?since=2024-01-05T00%3A00%3A00Z"),
            200,
            json!({"data": []}),
        ),
        (
            &format!("{base}/projects/2/tasks?since=2024-01-05T00%3A00%3A00Z"),
            200,
            json!({"data": []}),
        ),
        (
            &format!("{base}/projects/3/tasks?since=2024-01-05T00%3A00%3A00Z"),
            200,
            json!({"data": []}),
        ),
    ])
}

#[test]
fn a_manifest_with_pages_substreams_and_a_cursor_reads_every_record_once() {
    let c = config();
    let cat = catalog(
        &c,
        &[
            ("projects", SyncMode::FullRefresh),
            ("tasks", SyncMode::Incremental),
        ],
    );
    let mut api = scripted();
    let (records, states) = run(c.clone(), cat.clone(), State::default(), &mut api);
    let ids: Vec<(String, Value)> = records
        .iter()
        .map(|(s, r)| (s.clone(), r["id"].clone()))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("projects".into(), json!(1)),
            ("projects".into(), json!(2)),
            ("projects".into(), json!(3)),
            ("tasks".into(), json!("a")),
            ("tasks".into(), json!("c")),
        ]
    );
    let a = &records[3].1;
    assert_eq!(
        a,
        &json!({"id": "a", "updated_at": "2024-01-02T00:00:00Z", "project_id": 1})
    );
    assert_eq!(
        states.last().unwrap(),
        &(
            "tasks".to_string(),
            json!({"updated_at": "2024-01-05T00:00:00Z"})
        )
    );
    // The token stays a placeholder for the host to fill; no request holds a secret.
    for r in &api.seen {
        assert!(
            r.headers
                .contains(&("Authorization".into(), "Bearer {{secret:token}}".into())),
            "{r:?}"
        );
        assert!(
            api.answers.contains_key(&r.url),
            "unexpected request {}",
            r.url
        );
    }
    // The projects are read twice: as a stream and as the tasks' parent.
    assert_eq!(api.seen.len(), 2 + 2 + 3);

    // From the final state the next read starts at the cursor.
    let mut state = State::default();
    state.insert("tasks", json!({"updated_at": "2024-01-05T00:00:00Z"}));
    let cat = catalog(&c, &[("tasks", SyncMode::Incremental)]);
    let mut api = scripted();
    let (records, states) = run(c, cat, state, &mut api);
    assert!(records.is_empty(), "{records:?}");
    assert_eq!(
        states.last().unwrap().1,
        json!({"updated_at": "2024-01-05T00:00:00Z"})
    );
    assert!(
        api.seen
            .iter()
            .skip(2)
            .all(|r| r.url.contains("since=2024-01-05")),
        "{:?}",
        api.seen
    );
}

#[test]
fn check_reads_the_check_stream_and_names_a_refusal() {
    let c = config();
    let mut api = scripted();
    check_with(&c, &mut &mut api).unwrap();
    assert_eq!(api.seen.len(), 1);

    let mut bad = config();
    bad.config["subdomain"] = json!("nope");
    let e = check_with(&bad, &mut &mut api).unwrap_err().to_string();
    assert!(e.contains("404"), "{e}");

    let mut custom = config();
    custom.manifest["streams"][1]["retriever"]["paginator"] =
        json!({"type": "CustomPaginator", "class_name": "source_acme.components.Pager"});
    let e = check_with(&custom, &mut &mut api).unwrap_err().to_string();
    assert!(e.contains("streams[1].retriever.paginator"), "{e}");
    assert!(e.contains("source_acme.components.Pager"), "{e}");
}

#[test]
fn an_ignored_status_ends_the_partition_and_a_failing_one_says_why() {
    let mut c = config();
    c.manifest["definitions"]["requester"]["error_handler"] = json!({
        "type": "DefaultErrorHandler",
        "response_filters": [
            {"type": "HttpResponseFilter", "action": "IGNORE", "http_codes": [404]},
            {"type": "HttpResponseFilter", "action": "FAIL", "http_codes": [400], "error_message": "bad request: {{ response.error }}"}
        ]
    });
    let cat = catalog(&c, &[("projects", SyncMode::FullRefresh)]);
    let mut api = Api::new(vec![]);
    let (records, _) = run(c.clone(), cat.clone(), State::default(), &mut api);
    assert!(records.is_empty());
    assert_eq!(api.seen.len(), 1, "an ignored page is the last");

    let mut api = Api::new(vec![(
        "https://acme.example.com/api/projects?per_page=2",
        400,
        json!({"error": "no"}),
    )]);
    let reader = ManifestReader::new(c, cat, State::default(), &mut api).unwrap();
    let mut driver = ReaderDriver::new(reader);
    let e = driver.next(100).unwrap_err().to_string();
    assert!(e.contains("bad request: no"), "{e}");
}

/// Answers from a queue, whatever the request.
struct Queue(Vec<(u16, Value)>, usize);

impl Transport for Queue {
    fn send(&mut self, _req: &HttpRequest) -> Result<HttpResponse> {
        self.1 += 1;
        let (status, body) = self.0.remove(0);
        Ok(HttpResponse {
            status,
            headers: vec![],
            body: serde_json::to_vec(&body).unwrap(),
        })
    }
}

#[test]
fn server_errors_are_retried_as_the_manifest_says_and_limits_are_not_retried_again() {
    let mut c = config();
    c.manifest["definitions"]["requester"]["error_handler"] = json!({
        "type": "DefaultErrorHandler", "max_retries": 2,
        "backoff_strategies": [{"type": "ConstantBackoffStrategy", "backoff_time_in_seconds": 0}]
    });
    let cat = catalog(&c, &[("projects", SyncMode::FullRefresh)]);
    let q = Queue(
        vec![
            (500, json!({})),
            (502, json!({})),
            (200, json!({"data": [{"id": 1}]})),
        ],
        0,
    );
    let mut driver = ReaderDriver::new(
        ManifestReader::new(c.clone(), cat.clone(), State::default(), q).unwrap(),
    );
    assert!(matches!(
        driver.next(10).unwrap(),
        Some(Message::Batch { .. })
    ));

    let q = Queue(
        vec![(500, json!({})), (500, json!({})), (500, json!({}))],
        0,
    );
    let mut driver = ReaderDriver::new(
        ManifestReader::new(c.clone(), cat.clone(), State::default(), q).unwrap(),
    );
    let e = driver.next(10).unwrap_err();
    assert!(matches!(e, sluice_sdk::Error::Transient(_)), "{e}");
    assert!(
        e.to_string().contains("after the manifest's retries"),
        "{e}"
    );

    // The host already waited out 429s: the connector reports it at once.
    let q = Queue(vec![(429, json!({}))], 0);
    let mut driver = ReaderDriver::new(ManifestReader::new(c, cat, State::default(), q).unwrap());
    let e = driver.next(10).unwrap_err();
    assert!(matches!(e, sluice_sdk::Error::RateLimited { .. }), "{e}");
}

/// Airbyte's runtime caches a parent stream's responses for the run: the projects a substream
/// partitions on are requested once, however many streams read them.
#[test]
fn a_parent_streams_pages_are_requested_once_for_itself_and_its_substreams() {
    use source_declarative::cache::Cached;
    let c = config();
    let cat = catalog(
        &c,
        &[
            ("projects", SyncMode::FullRefresh),
            ("tasks", SyncMode::Incremental),
        ],
    );
    let mut api = scripted();
    let reader = ManifestReader::new(c, cat, State::default(), Cached::new(&mut api)).unwrap();
    let mut driver = ReaderDriver::new(reader);
    let mut records = 0;
    while let Some(m) = driver.next(1000).unwrap() {
        if let Message::Batch { records: lines, .. } = m {
            records += String::from_utf8(lines).unwrap().lines().count();
        }
    }
    drop(driver);
    assert_eq!(records, 3 + 2, "every record, as without the cache");
    let projects: Vec<&str> = api
        .seen
        .iter()
        .map(|r| r.url.as_str())
        .filter(|u| u.contains("/projects?"))
        .collect();
    assert_eq!(projects.len(), 2, "two pages, once: {projects:?}");
}
