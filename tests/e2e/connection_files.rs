//! Bad connection files: the binary exits with code 2 and an error that names the field or path.

use std::process::Command;

use sluice_tests::{Scratch, connector, faker_to_file, sluice_bin};

fn run_file(s: &Scratch, text: &str) -> (i32, String) {
    let path = s.write("bad.toml", text);
    let out = Command::new(sluice_bin())
        .arg("--data-dir")
        .arg(s.data_dir())
        .arg("run")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_field_is_named() {
    let s = Scratch::new();
    let good = faker_to_file("{ count = 1 }", "jsonl", "");
    let text = good.replace(
        &format!(
            "connector = {}",
            sluice_tests::toml_path(&connector("destination-file"))
        ),
        "",
    );
    let (code, err) = run_file(&s, &text);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing field `connector`"), "{err}");
    assert!(err.contains("bad.toml"), "names the file: {err}");
}

#[test]
fn a_wrong_type_is_named_with_its_place() {
    let s = Scratch::new();
    let text = faker_to_file(
        "{ count = 1 }",
        "jsonl",
        "[limits]\ncall_timeout_secs = \"soon\"\n",
    );
    let (code, err) = run_file(&s, &text);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("call_timeout_secs") && err.contains("invalid type"),
        "{err}"
    );
    assert!(err.contains("line "), "points at the line: {err}");
}

#[test]
fn an_unknown_connector_path_is_named() {
    let s = Scratch::new();
    let text = faker_to_file("{ count = 1 }", "jsonl", "").replace(
        &sluice_tests::toml_path(&connector("source-faker")),
        "\"connectors/no-such-source.wasm\"",
    );
    let (code, err) = run_file(&s, &text);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("source.connector"), "{err}");
    assert!(err.contains("no-such-source.wasm"), "{err}");
}

#[test]
fn a_bad_connector_config_fails_the_run_naming_the_field() {
    let s = Scratch::new();
    let (code, err) = run_file(&s, &faker_to_file("{ count = \"many\" }", "jsonl", ""));
    assert_eq!(code, 1, "the run starts and fails: {err}");
    assert!(
        err.contains("source-faker") && err.contains("config error"),
        "{err}"
    );
    assert!(err.contains("invalid type"), "{err}");
    let (code, err) = run_file(&s, &faker_to_file("{ cuont = 5 }", "jsonl", ""));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown field `cuont`"), "{err}");
}

#[test]
fn a_stream_not_in_the_catalog_is_named_with_the_alternatives() {
    let s = Scratch::new();
    let (code, err) = run_file(
        &s,
        &faker_to_file("{ count = 1 }", "jsonl", "[[streams]]\nname = \"userz\"\n"),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("`userz`") && err.contains("users, products, purchases"),
        "{err}"
    );
}

#[test]
fn a_destination_in_the_source_slot_is_refused() {
    let s = Scratch::new();
    let text = faker_to_file("{ count = 1 }", "jsonl", "").replacen(
        &sluice_tests::toml_path(&connector("source-faker")),
        &sluice_tests::toml_path(&connector("destination-file")),
        1,
    );
    let (code, err) = run_file(&s, &text);
    // The connectors are loaded inside the run record, so this is a failed run, like a stream
    // that does not exist.
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is a destination, but a source is needed"),
        "{err}"
    );
}
