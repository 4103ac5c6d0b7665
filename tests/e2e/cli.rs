//! `sluice spec|check|discover|runs` and the summary of `sluice run`, as an operator sees them.

use sluice_tests::sluice_cli as sluice;
use sluice_tests::{Scratch, connector, faker_to_file, read_jsonl, test_connector};

fn p(path: std::path::PathBuf) -> String {
    path.display().to_string()
}

#[test]
fn spec_prints_kind_digest_and_config_schema() {
    let s = Scratch::new();
    let (code, out, err) = sluice(&s, &["spec", &p(connector("source-faker"))]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "source");
    assert_eq!(v["digest"].as_str().unwrap().len(), 64);
    assert!(v["spec"]["config_schema"]["properties"]["count"].is_object());
    let (_, out, _) = sluice(&s, &["spec", &p(connector("destination-file"))]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "destination");
    assert_eq!(
        v["spec"]["supported_destination_modes"],
        serde_json::json!(["append", "overwrite"])
    );
}

#[test]
fn discover_lists_the_streams() {
    let s = Scratch::new();
    let config = s.write("faker.json", r#"{"count": 5}"#);
    let (code, out, err) = sluice(
        &s,
        &[
            "discover",
            &p(connector("source-faker")),
            "--config",
            &p(config),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["users", "products", "purchases"]);
}

#[test]
fn check_says_ok_or_why_not() {
    let s = Scratch::new();
    let good = s.write("good.toml", "count = 3\n");
    let (code, out, _) = sluice(
        &s,
        &["check", &p(connector("source-faker")), "--config", &p(good)],
    );
    assert_eq!(code, 0);
    assert!(out.contains("ok"), "{out}");
    let bad = s.write("bad.json", r#"{"behavior": "fly"}"#);
    let (code, out, _) = sluice(
        &s,
        &[
            "check",
            &p(test_connector("chaos-source")),
            "--config",
            &p(bad),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("config error") && out.contains("unknown variant `fly`"),
        "{out}"
    );
    // destination-file checks its directory, which must be granted.
    let dest_cfg = s.write("d.json", r#"{"path": "/output"}"#);
    let (code, out, _) = sluice(
        &s,
        &[
            "check",
            &p(connector("destination-file")),
            "--config",
            &p(dest_cfg.clone()),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("/output") && out.contains("granted"), "{out}");
    std::fs::create_dir_all(s.path("o")).unwrap();
    let grant = format!("{}=/output", s.path("o").display());
    let (code, out, _) = sluice(
        &s,
        &[
            "check",
            &p(connector("destination-file")),
            "--config",
            &p(dest_cfg),
            "--dir",
            &grant,
        ],
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_file_that_is_not_a_connector_is_refused() {
    let s = Scratch::new();
    let junk = s.write("junk.wasm", "not wasm at all");
    let (code, _, err) = sluice(&s, &["spec", &p(junk)]);
    assert_eq!(code, 2);
    assert!(err.contains("junk.wasm is not a sluice connector"), "{err}");
}

#[test]
fn run_prints_a_summary_and_runs_lists_it() {
    let s = Scratch::new();
    let conn = s.write(
        "c.toml",
        &faker_to_file("{ count = 100, seed = 1 }", "jsonl", ""),
    );
    let (code, out, err) = sluice(&s, &["run", &p(conn)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("run 1 of `faker-to-file` succeeded"), "{out}");
    for needle in ["users", "products", "purchases", "total", "records/s"] {
        assert!(out.contains(needle), "summary lacks {needle}: {out}");
    }
    let (code, out, _) = sluice(&s, &["runs"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("faker-to-file") && out.contains("succeeded"),
        "{out}"
    );
}

#[test]
fn inspect_shows_the_manifest_and_every_requested_capability() {
    let s = Scratch::new();
    let (code, out, err) = sluice(&s, &["inspect", &p(connector("source-http"))]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("source-http 0.1.0 (source)"), "{out}");
    assert!(out.contains("network    https://*:*"), "{out}");
    assert!(out.contains("network    http://*:*"), "{out}");
    for secret in [
        "auth.token",
        "auth.value",
        "auth.password",
        "auth.credentials",
    ] {
        assert!(out.contains(secret), "{secret} is listed as secret: {out}");
    }
    let (_, out, _) = sluice(&s, &["inspect", &p(connector("source-faker"))]);
    assert!(
        out.contains("none: no files, no network, no secrets"),
        "{out}"
    );
    let (code, out, err) = sluice(
        &s,
        &["inspect", "--json", &p(connector("destination-file"))],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["manifest"]["kind"], "destination");
    assert_eq!(
        v["manifest"]["capabilities"]["dirs"],
        serde_json::json!([{"guest": "/output", "access": "read-write"}])
    );
}

#[test]
fn check_refuses_a_grant_the_connector_did_not_ask_for() {
    let s = Scratch::new();
    let (code, _, err) = sluice(
        &s,
        &[
            "check",
            &p(connector("source-faker")),
            "--allow",
            "https://api.example.com",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("outside what `source-faker` requests"),
        "{err}"
    );
}

#[test]
fn state_show_prints_airbytes_format_and_state_import_moves_a_connection_back() {
    let s = Scratch::new();
    let streams = "[[streams]]\nname = \"users\"\nsync_mode = \"incremental\"\n";
    let conn = s.write(
        "c.toml",
        &faker_to_file("{ count = 50, seed = 4 }", "jsonl", streams),
    );
    let (code, _, err) = sluice(&s, &["run", &p(conn.clone())]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = sluice(&s, &["state", "show", &p(conn.clone())]);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("the state is JSON");
    let users = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["stream"]["stream_descriptor"]["name"] == "users")
        .unwrap_or_else(|| panic!("no users state in {out}"));
    assert_eq!(users["type"], "STREAM");
    let last = users["stream"]["stream_state"]["updated_at"]
        .as_str()
        .unwrap()
        .to_string();

    // Move users back to the cursor of user 40, written as Airbyte writes its output.
    // (user `id` is updated at 2024-06-01T00:00:00Z plus `id` seconds: see source-faker)
    let at_40 = "2024-06-01T00:00:40+00:00".to_string();
    let state_file = s.write(
        "state.jsonl",
        &format!(
            "{}\n{}\n",
            serde_json::json!({"type": "LOG", "log": {"level": "INFO", "message": "x"}}),
            serde_json::json!({"type": "STATE", "state": {"type": "STREAM", "stream": {
                "stream_descriptor": {"name": "users"},
                "stream_state": {"updated_at": at_40}}}}),
        ),
    );
    let (code, out, err) = sluice(&s, &["state", "import", &p(conn.clone()), &p(state_file)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("set the state of 1 streams"), "{out}");
    let (_, out, _) = sluice(&s, &["state", "show", &p(conn.clone())]);
    assert!(out.contains(&at_40) && !out.contains(&last), "{out}");

    // The next run reads from there: users 41..=50 again.
    let (code, _, err) = sluice(&s, &["run", &p(conn.clone())]);
    assert_eq!(code, 0, "{err}");
    let ids: Vec<u64> = read_jsonl(&s.path("out/users.jsonl"))
        .iter()
        .map(|u| u["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 60, "{ids:?}");
    assert_eq!(&ids[50..], &(41..=50).collect::<Vec<_>>()[..]);

    // A state sluice cannot take is refused by name and changes nothing.
    let legacy = s.write("legacy.json", r#"[{"type":"LEGACY","data":{}}]"#);
    let (code, _, err) = sluice(&s, &["state", "import", &p(conn.clone()), &p(legacy)]);
    assert_ne!(code, 0);
    assert!(err.contains("LEGACY state"), "{err}");
    let (_, out, _) = sluice(&s, &["state", "show", &p(conn)]);
    assert!(
        out.contains(&last),
        "the state moved on to the last user: {out}"
    );
}
