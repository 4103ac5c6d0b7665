//! `sluice connector import-airbyte`: a `manifest.yaml` (with its `schemas/`) and an Airbyte
//! source wheel become signed `airbyte-source-NAME` packages — the manifest's spec as the config
//! schema, its `url_base` as the requested network — that install with the usual capability
//! review and sync against a local API; a manifest with Python components is refused by path.

use std::io::Write;

use serde_json::{Value, json};
use sluice_tests::server::{Reply, Seen, TestServer};
use sluice_tests::sluice_cli as sluice;
use sluice_tests::{Scratch, connector, read_jsonl, toml_path};

const MANIFEST: &str = r##"
version: 6.0.0
type: DeclarativeSource
check:
  type: CheckStream
  stream_names: [projects]
definitions:
  requester:
    type: HttpRequester
    url_base: "{{ config['base_url'] }}/api"
    http_method: GET
    authenticator:
      type: ApiKeyAuthenticator
      api_token: "{{ config['api_key'] }}"
      inject_into:
        type: RequestOption
        inject_into: header
        field_name: X-Api-Key
  projects:
    type: DeclarativeStream
    name: projects
    primary_key: id
    schema_loader:
      type: JsonFileSchemaLoader
      file_path: "./source_acme/schemas/{{ parameters['name'] }}.json"
    $parameters:
      name: projects
      path: /projects
    retriever:
      type: SimpleRetriever
      requester:
        $ref: "#/definitions/requester"
      record_selector:
        type: RecordSelector
        extractor:
          type: DpathExtractor
          field_path: [data]
      paginator:
        type: DefaultPaginator
        pagination_strategy:
          type: PageIncrement
          page_size: 2
          start_from_page: 1
        page_token_option:
          type: RequestOption
          inject_into: request_parameter
          field_name: page
streams:
  - "#/definitions/projects"
spec:
  type: Spec
  connection_specification:
    title: Acme
    type: object
    required: [base_url, api_key]
    properties:
      base_url:
        type: string
      api_key:
        type: string
        airbyte_secret: true
"##;

const SCHEMA: &str =
    r#"{"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}"#;

/// An API of 5 projects (pages of 2) behind an `X-Api-Key` header.
fn api(key: &'static str) -> TestServer {
    TestServer::start(move |req: &Seen| {
        if req.header("x-api-key") != Some(key) {
            return Reply::status(401, "bad key");
        }
        if req.path() != "/api/projects" {
            return Reply::status(404, "no such endpoint");
        }
        let page: usize = req.query("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let data: Vec<Value> = (1..=5)
            .skip((page - 1) * 2)
            .take(2)
            .map(|id| json!({"id": id, "name": format!("project {id}")}))
            .collect();
        Reply::json(&json!({ "data": data }))
    })
}

fn interpreter() -> String {
    connector("source-declarative").display().to_string()
}

/// A scratch with a trusted publisher `acme` and `source-acme/manifest.yaml` with its schema.
fn scratch(manifest: &str) -> Scratch {
    let s = Scratch::new();
    s.write("source-acme/manifest.yaml", manifest);
    s.write("source-acme/schemas/projects.json", SCHEMA);
    let (code, _, err) = sluice(&s, &["keys", "publisher", "new", "acme"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = sluice(&s, &["trust", "add", "acme.pub"]);
    assert_eq!(code, 0, "{err}");
    s
}

#[test]
fn an_imported_manifest_installs_with_its_spec_and_network_and_syncs() {
    let s = scratch(MANIFEST);
    let (code, out, err) = sluice(
        &s,
        &[
            "connector",
            "import-airbyte",
            "source-acme/manifest.yaml",
            "--component",
            &interpreter(),
            "--key",
            "acme.key",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("airbyte-source-acme 0.1.0"), "{out}");
    assert!(out.contains("streams (1): projects"), "{out}");
    assert!(out.contains("network    https://*:*"), "{out}");
    assert!(out.contains("network    http://*:*"), "{out}");
    assert!(out.contains("secret     api_key"), "{out}");
    assert!(
        out.contains("manifest.json, schemas/projects.json"),
        "{out}"
    );
    let pkg = "airbyte-source-acme-0.1.0.slpkg";
    let (code, out, err) = sluice(&s, &["connector", "verify", pkg]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("signed by `acme:"), "{out}");

    let (code, _, err) = sluice(&s, &["connector", "publish", pkg, "--index", "index"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = sluice(
        &s,
        &[
            "connector",
            "install",
            "airbyte-source-acme",
            "--index",
            "index",
            "--approve",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("https://*:*"),
        "the review shows the network: {out}"
    );

    // The manifest's spec is the connector's config schema; the API key is a secret field.
    let (code, out, err) = sluice(&s, &["inspect", "airbyte-source-acme", "--json"]);
    assert_eq!(code, 0, "{err}");
    let inspected: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(inspected["secret_fields"], json!(["api_key"]));
    assert_eq!(
        inspected["config_schema"]["required"],
        json!(["base_url", "api_key"])
    );
    assert_eq!(
        inspected["packed"],
        json!(["manifest.json", "schemas/projects.json"])
    );

    // discover: the stream's schema is the packed schema file.
    s.write(
        "config.json",
        r#"{"base_url": "http://127.0.0.1:1", "api_key": "x"}"#,
    );
    let (code, out, err) = sluice(
        &s,
        &["discover", "airbyte-source-acme", "--config", "config.json"],
    );
    assert_eq!(code, 0, "{err}");
    let catalog: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        catalog["streams"][0]["json_schema"],
        serde_json::from_str::<Value>(SCHEMA).unwrap(),
        "{catalog}"
    );

    // A sync: the config is the manifest's own, the key a placeholder the host fills in.
    let server = api("acme-key-0123456789");
    s.write("key.txt", "acme-key-0123456789\n");
    let origin = format!("http://127.0.0.1:{}", server.port());
    s.write(
        "conn.toml",
        &format!(
            r#"
name = "acme"
[source]
connector = "airbyte-source-acme"
config = {{ base_url = "{origin}", api_key = "{{{{secret:api_key}}}}" }}
[source.grant.network]
allow = ["{origin}"]
[[source.grant.secrets]]
name = "api_key"
file = "key.txt"
to = ["{origin}"]
headers = ["X-Api-Key"]
[destination]
connector = {dest}
config = {{ path = "/output", format = "jsonl" }}
[[destination.grant.dirs]]
host = "out"
guest = "/output"
"#,
            dest = toml_path(&connector("destination-file"))
        ),
    );
    let (code, out, err) = sluice(&s, &["run", "conn.toml"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let ids: Vec<Value> = read_jsonl(&s.path("out/projects.jsonl"))
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids, (1..=5).map(Value::from).collect::<Vec<_>>());
    assert_eq!(server.seen().len(), 3, "three pages");
    assert!(!format!("{out}{err}").contains("acme-key-0123456789"));
}

#[test]
fn a_wheel_that_ships_a_manifest_imports_under_its_distribution_name() {
    let s = scratch(MANIFEST);
    let wheel = s.path("airbyte_source_acme-1.4.2-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, text) in [
        ("source_acme/__init__.py", ""),
        (
            "source_acme/source.py",
            "from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource\n",
        ),
        ("source_acme/manifest.yaml", MANIFEST),
        ("source_acme/schemas/projects.json", SCHEMA),
        (
            "airbyte_source_acme-1.4.2.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: airbyte-source-acme\nVersion: 1.4.2\n\nAcme.\n",
        ),
    ] {
        zip.start_file(name, opts).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    let (code, out, err) = sluice(
        &s,
        &[
            "connector",
            "import-airbyte",
            wheel.to_str().unwrap(),
            "--component",
            &interpreter(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("airbyte-source-acme 1.4.2"), "{out}");
    assert!(out.contains("unsigned"), "{out}");
    assert!(s.path("airbyte-source-acme-1.4.2.slpkg").exists());
}

#[test]
fn python_components_and_missing_schemas_are_refused_and_nothing_is_written() {
    let custom = MANIFEST.replace(
        "        type: DpathExtractor\n          field_path: [data]",
        "        type: CustomRecordExtractor\n          class_name: source_acme.components.Extractor",
    );
    assert_ne!(custom, MANIFEST);
    let s = scratch(&custom);
    s.write("source-acme/components.py", "class Extractor: ...\n");
    let args = [
        "connector",
        "import-airbyte",
        "source-acme/manifest.yaml",
        "--component",
        &interpreter(),
        "--out",
        "x.slpkg",
    ];
    let (code, out, err) = sluice(&s, &args);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("streams[0].retriever.record_selector.extractor")
            && err.contains("source_acme.components.Extractor"),
        "{err}"
    );
    assert!(!s.path("x.slpkg").exists());

    // The stream's schema file is not beside the manifest.
    let s = scratch(MANIFEST);
    std::fs::remove_file(s.path("source-acme/schemas/projects.json")).unwrap();
    let (code, _, err) = sluice(&s, &args);
    assert_ne!(code, 0);
    assert!(
        err.contains("schemas/projects.json") && err.contains("not packed"),
        "{err}"
    );
    assert!(!s.path("x.slpkg").exists());

    // Not a declarative manifest at all.
    let s = scratch("type: Spec\n");
    let (code, _, err) = sluice(&s, &args);
    assert_ne!(code, 0);
    assert!(err.contains("type: DeclarativeSource"), "{err}");
}
