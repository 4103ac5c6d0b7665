//! faker → file: exact counts, byte-identical output per seed (and identical to the same
//! connectors run natively), incremental reads that respect the cursor.

use sluice::sync::PumpConfig;
use sluice_tests::{Scratch, faker_to_file, native, read_jsonl};

fn stream_records(r: &sluice::sync::RunReport, stream: &str) -> u64 {
    r.streams
        .iter()
        .find(|s| s.stream == stream)
        .map_or(0, |s| s.records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_counts_and_byte_identical_output_for_a_seed() {
    let a = Scratch::new();
    a.write(
        "c.toml",
        &faker_to_file("{ count = 1500, seed = 7 }", "jsonl", ""),
    );
    let ra = a.run("c.toml").await;
    assert!(ra.succeeded(), "{:?}", ra.error);

    // The same connectors, native and in-process, are the reference.
    let reference = tempfile::tempdir().unwrap();
    let outcome = native::faker_to_file(
        &serde_json::json!({"count": 1500, "seed": 7}),
        reference.path(),
        PumpConfig::default(),
    )
    .await;
    outcome.result.unwrap();
    let purchases = outcome
        .stats
        .iter()
        .find(|s| s.stream == "purchases")
        .unwrap()
        .records;
    assert!(
        purchases > 1000,
        "about 1.5 purchases per user, got {purchases}"
    );

    assert_eq!(stream_records(&ra, "users"), 1500);
    assert_eq!(stream_records(&ra, "products"), source_faker::PRODUCTS);
    assert_eq!(stream_records(&ra, "purchases"), purchases);
    for stream in ["users", "products", "purchases"] {
        let file = format!("out/{stream}.jsonl");
        let sandboxed = std::fs::read(a.path(&file)).unwrap();
        let lines = sandboxed.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(
            lines,
            stream_records(&ra, stream),
            "{stream}: file vs report"
        );
        let native = std::fs::read(reference.path().join(format!("{stream}.jsonl"))).unwrap();
        assert!(
            sandboxed == native,
            "{stream}: sandboxed output differs from native output"
        );
    }

    // Same seed, another data dir: the same bytes. Another seed: other bytes.
    let b = Scratch::new();
    b.write(
        "c.toml",
        &faker_to_file("{ count = 1500, seed = 7 }", "jsonl", ""),
    );
    assert!(b.run("c.toml").await.succeeded());
    let c = Scratch::new();
    c.write(
        "c.toml",
        &faker_to_file("{ count = 1500, seed = 8 }", "jsonl", ""),
    );
    assert!(c.run("c.toml").await.succeeded());
    let users = |s: &Scratch| std::fs::read(s.path("out/users.jsonl")).unwrap();
    assert!(users(&a) == users(&b));
    assert!(users(&a) != users(&c));

    // Records have the Airbyte shape.
    let first = &read_jsonl(&a.path("out/users.jsonl"))[0];
    for field in ["id", "created_at", "updated_at", "name", "email", "address"] {
        assert!(first.get(field).is_some(), "users lack `{field}`");
    }
    assert!(first["address"]["postal_code"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refresh_run_again_overwrites_instead_of_duplicating() {
    let s = Scratch::new();
    s.write(
        "c.toml",
        &faker_to_file("{ count = 200, seed = 1 }", "jsonl", ""),
    );
    assert!(s.run("c.toml").await.succeeded());
    let again = s.run("c.toml").await;
    assert!(again.succeeded());
    assert_eq!(
        stream_records(&again, "users"),
        200,
        "a full refresh reads everything again"
    );
    assert_eq!(read_jsonl(&s.path("out/users.jsonl")).len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_reads_only_what_is_new() {
    let s = Scratch::new();
    let streams = r#"
[[streams]]
name = "users"
sync_mode = "incremental"
"#;
    s.write(
        "c.toml",
        &faker_to_file("{ count = 300, seed = 3 }", "jsonl", streams),
    );
    let first = s.run("c.toml").await;
    assert!(first.succeeded(), "{:?}", first.error);
    assert_eq!(stream_records(&first, "users"), 300);

    let second = s.run("c.toml").await;
    assert!(second.succeeded());
    assert_eq!(
        stream_records(&second, "users"),
        0,
        "nothing changed, nothing moves"
    );

    s.write(
        "c.toml",
        &faker_to_file("{ count = 450, seed = 3 }", "jsonl", streams),
    );
    let third = s.run("c.toml").await;
    assert!(third.succeeded());
    assert_eq!(stream_records(&third, "users"), 150);
    let ids: Vec<u64> = read_jsonl(&s.path("out/users.jsonl"))
        .iter()
        .map(|u| u["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (1..=450).collect::<Vec<_>>(),
        "appended in order, no duplicates"
    );

    // The committed state is the cursor of the last user.
    let states = s.store().await.states("faker-to-file").await.unwrap();
    let users = states.iter().find(|c| c.state.stream == "users").unwrap();
    let cursor: serde_json::Value = serde_json::from_str(&users.state.state).unwrap();
    let last = &read_jsonl(&s.path("out/users.jsonl"))[449];
    assert_eq!(cursor["updated_at"], last["updated_at"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_output_has_a_header_and_one_row_per_record() {
    let s = Scratch::new();
    let streams = "[[streams]]\nname = \"products\"\n";
    s.write(
        "c.toml",
        &faker_to_file("{ count = 10, seed = 1 }", "csv", streams),
    );
    let r = s.run("c.toml").await;
    assert!(r.succeeded(), "{:?}", r.error);
    let text = std::fs::read_to_string(s.path("out/products.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("id,make,model,year,price,created_at,updated_at")
    );
    assert_eq!(lines.count(), 100);
}
