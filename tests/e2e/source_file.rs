//! source-file → destination-file: CSV and JSONL inputs with inferred types.

use sluice_tests::{Scratch, connector, read_jsonl, toml_path};

fn connection(format: &str) -> String {
    format!(
        r#"
name = "files"
[source]
connector = {source}
[[source.grant.dirs]]
host = "in"
guest = "/input"
[destination]
connector = {dest}
config = {{ format = "{format}" }}
[[destination.grant.dirs]]
host = "out"
guest = "/output"
"#,
        source = toml_path(&connector("source-file")),
        dest = toml_path(&connector("destination-file")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_jsonl_files_become_typed_streams() {
    let s = Scratch::new();
    s.write(
        "in/people.csv",
        "id,name,score,active\n1,Ann,9.5,true\n2,\"Bo, Jr.\",7,false\n3,Cy,,true\n",
    );
    s.write(
        "in/events.jsonl",
        "{\"id\":1,\"kind\":\"click\",\"meta\":{\"x\":1}}\n{\"id\":2,\"kind\":\"view\"}\n",
    );
    s.write("c.toml", &connection("jsonl"));
    let r = s.run("c.toml").await;
    assert!(r.succeeded(), "{:?}", r.error);
    let people = read_jsonl(&s.path("out/people.jsonl"));
    assert_eq!(
        people,
        [
            serde_json::json!({"id": 1, "name": "Ann", "score": 9.5, "active": true}),
            serde_json::json!({"id": 2, "name": "Bo, Jr.", "score": 7.0, "active": false}),
            serde_json::json!({"id": 3, "name": "Cy", "score": null, "active": true}),
        ]
    );
    let events = read_jsonl(&s.path("out/events.jsonl"));
    assert_eq!(events[0]["meta"]["x"], 1);
    assert_eq!(events.len(), 2);
}

/// The README's tutorial connector works as the README says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorial_source_moves_its_greetings() {
    let s = Scratch::new();
    let conn = |count: u32| {
        format!(
            r#"
name = "hello"
[source]
connector = {source}
config = {{ count = {count} }}
[destination]
connector = {dest}
[[destination.grant.dirs]]
host = "out"
guest = "/output"
[[streams]]
name = "greetings"
destination_mode = "append"
"#,
            source = toml_path(&sluice_tests::test_connector("hello-source")),
            dest = toml_path(&connector("destination-file")),
        )
    };
    s.write("c.toml", &conn(2500));
    let r = s.run("c.toml").await;
    assert!(r.succeeded(), "{:?}", r.error);
    assert_eq!(r.records(), 2500);
    let greetings = read_jsonl(&s.path("out/greetings.jsonl"));
    assert_eq!(
        greetings[2499],
        serde_json::json!({"id": 2500, "text": "hello"})
    );
}
