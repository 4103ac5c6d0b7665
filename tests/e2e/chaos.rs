//! Connectors that misbehave: each ends its run with a clear error that names the connector and
//! the cause, commits what was safely written, and leaves the host serving the next run.

use sluice::protocol::{Failure, ReportedError};
use sluice::sync::{RunReport, SyncError};
use sluice_tests::{
    Scratch, connector, faker_to_file, read_jsonl, source_to_file, test_connector, toml_path,
};

/// chaos-source (`behavior`, after 2,500 good records) → destination-file.
fn chaos_to_file(behavior: &str, config_extra: &str, limits: &str) -> String {
    let source = format!(
        "connector = {}\nconfig = {{ behavior = \"{behavior}\", records = 2500 {config_extra} }}",
        toml_path(&test_connector("chaos-source"))
    );
    let limits =
        format!("[limits]\ncall_timeout_secs = 2\ncheckpoint_interval_secs = 0.001\n{limits}");
    source_to_file("chaos", &source, &limits)
}

async fn run_chaos(behavior: &str, config_extra: &str, limits: &str) -> (Scratch, RunReport) {
    let s = Scratch::new();
    s.write("c.toml", &chaos_to_file(behavior, config_extra, limits));
    let r = s.run("c.toml").await;
    (s, r)
}

fn failure(r: &RunReport) -> &Failure {
    match &r.error {
        Some(SyncError::Connector(e)) => {
            assert_eq!(
                e.connector, "chaos-source",
                "the error names the connector: {e}"
            );
            &e.failure
        }
        other => panic!("expected a connector failure, got {other:?}"),
    }
}

/// After any misbehaviour, a normal sync in the same process still works.
async fn host_still_serves() {
    let s = Scratch::new();
    s.write(
        "c.toml",
        &faker_to_file("{ count = 50, seed = 2 }", "jsonl", ""),
    );
    let r = s.run("c.toml").await;
    assert!(
        r.succeeded(),
        "a normal sync after a misbehaving one: {:?}",
        r.error
    );
    assert_eq!(read_jsonl(&s.path("out/users.jsonl")).len(), 50);
}

/// The good records before the misbehaviour were committed, and are in the file.
async fn good_records_committed(s: &Scratch, r: &RunReport) {
    assert_eq!(
        r.records(),
        2500,
        "records durably written before the failure"
    );
    assert_eq!(read_jsonl(&s.path("out/items.jsonl")).len(), 2500);
    let states = s.store().await.states("chaos").await.unwrap();
    assert_eq!(
        states[0].state.state, "2500",
        "the checkpoint covering them is committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_reported_with_its_message() {
    let (s, r) = run_chaos("panic", "", "").await;
    match failure(&r) {
        Failure::Panic { message } => {
            assert!(message.contains("the connector's own bug"), "{message}")
        }
        other => panic!("expected a panic, got {other}"),
    }
    good_records_committed(&s, &r).await;
    host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_stopped_at_the_call_deadline() {
    let (s, r) = run_chaos("loop", "", "").await;
    let f = failure(&r);
    assert!(matches!(f, Failure::Timeout { .. }), "{f}");
    let msg = r.error.as_ref().unwrap().to_string();
    assert!(
        msg.contains("2s") && msg.contains("call_timeout_secs"),
        "{msg}"
    );
    good_records_committed(&s, &r).await;
    host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_blocked_in_a_host_call_is_stopped_too() {
    let (_s, r) = run_chaos("sleep", "", "").await;
    assert!(
        matches!(failure(&r), Failure::Timeout { .. }),
        "{:?}",
        r.error
    );
    host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4_gib_allocation_hits_the_memory_limit() {
    let (s, r) = run_chaos("alloc", "", "memory_mib = 128").await;
    match failure(&r) {
        Failure::MemoryLimit { limit, requested } => {
            assert_eq!(*limit, 128 << 20);
            assert!(*requested > *limit);
        }
        other => panic!("expected the memory limit, got {other}"),
    }
    let msg = r.error.as_ref().unwrap().to_string();
    assert!(
        msg.contains("limit of 128 MiB") && msg.contains("memory_mib"),
        "{msg}"
    );
    good_records_committed(&s, &r).await;
    host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_recursion_is_stopped() {
    let (_s, r) = run_chaos("recursion", "", "").await;
    let f = failure(&r);
    match f {
        Failure::StackOverflow => {}
        // Rust's own stack lives in linear memory below its data: running off its end is an
        // out-of-bounds access before the WebAssembly stack limit is reached.
        Failure::Trap { message } if message.contains("stack") => {}
        other => panic!("expected a stack failure, got {other}"),
    }
    host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_batch_is_stopped_by_the_memory_limit() {
    let (_s, r) = run_chaos("big-batch", ", size_mib = 1024", "memory_mib = 512").await;
    assert!(
        matches!(failure(&r), Failure::MemoryLimit { .. }),
        "{:?}",
        r.error
    );
    host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_size_limit_is_refused_at_the_wall() {
    let (s, r) = run_chaos("big-batch", ", size_mib = 20", "max_batch_mib = 8").await;
    match failure(&r) {
        Failure::Protocol { message } => {
            assert!(
                message.contains("limit of 8 MiB") && message.contains("max_batch_mib"),
                "{message}"
            )
        }
        other => panic!("expected a refused batch, got {other}"),
    }
    good_records_committed(&s, &r).await;
    host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_is_refused_at_the_wall_and_never_reaches_the_destination() {
    for (behavior, expected) in [
        ("bad-utf8", "not valid UTF-8"),
        ("not-object", "not an object"),
        (
            "unknown-stream",
            "`secrets`, which is not in the configured catalog",
        ),
    ] {
        let (s, r) = run_chaos(behavior, "", "").await;
        match failure(&r) {
            Failure::Protocol { message } => {
                assert!(message.contains(expected), "{behavior}: {message}")
            }
            other => panic!("{behavior}: expected a protocol failure, got {other}"),
        }
        good_records_committed(&s, &r).await;
        assert!(!s.path("out/secrets.jsonl").exists());
    }
    host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_bounded_and_the_run_still_succeeds() {
    let (s, r) = run_chaos("log-flood", "", "").await;
    assert!(r.succeeded(), "{:?}", r.error);
    assert_eq!(r.log.len(), sluice::runtime::RunLog::MAX_LINES);
    assert_eq!(
        r.log_dropped,
        1_000_000 - sluice::runtime::RunLog::MAX_LINES as u64
    );
    assert_eq!(read_jsonl(&s.path("out/items.jsonl")).len(), 2500);
    let stored = s.store().await.logs(r.run_id).await.unwrap();
    assert_eq!(stored.len(), sluice::runtime::RunLog::MAX_LINES);
    assert_eq!(stored[0].2, "log line 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_goes_to_the_run_log_not_the_host() {
    let (_s, r) = run_chaos("print-flood", "", "").await;
    assert!(r.succeeded(), "{:?}", r.error);
    assert_eq!(r.log[0].message, "stdout line 0");
    assert_eq!(r.log[0].connector, "chaos-source");
    assert!(r.log_dropped > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_errors_keep_their_kind() {
    let (_s, r) = run_chaos("config-error", "", "").await;
    match failure(&r) {
        Failure::Reported(ReportedError::Config(m)) => assert!(m.contains("api_key")),
        other => panic!("expected a config error, got {other}"),
    }
    let (_s, r) = run_chaos("transient-error", "", "").await;
    assert!(matches!(
        failure(&r),
        Failure::Reported(ReportedError::Transient(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_resumed_by_the_next_and_nothing_is_lost() {
    let s = Scratch::new();
    s.write("c.toml", &chaos_to_file("panic", "", ""));
    let failed = s.run("c.toml").await;
    assert!(!failed.succeeded());
    // The operator fixes the cause; the next run resumes the same run from its checkpoint.
    s.write(
        "c.toml",
        &chaos_to_file("ok", "", "").replace("records = 2500", "records = 4000"),
    );
    let resumed = s.run("c.toml").await;
    assert!(resumed.succeeded(), "{:?}", resumed.error);
    assert_eq!((resumed.run_id, resumed.attempt), (failed.run_id, 2));
    assert_eq!(resumed.records(), 1500, "only what was not yet committed");
    let ids: Vec<u64> = read_jsonl(&s.path("out/items.jsonl"))
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (1..=4000).collect::<Vec<_>>());
}

fn chaos_destination(behavior: &str) -> String {
    format!(
        r#"
name = "chaos-dest"
[source]
connector = {source}
config = {{ count = 3000, seed = 1 }}
[destination]
connector = {dest}
config = {{ behavior = "{behavior}" }}
[limits]
call_timeout_secs = 2
"#,
        source = toml_path(&connector("source-faker")),
        dest = toml_path(&test_connector("chaos-destination")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_destination_commits_no_checkpoint() {
    for behavior in ["panic-on-write", "fail-flush", "loop-on-write"] {
        let s = Scratch::new();
        s.write("c.toml", &chaos_destination(behavior));
        let r = s.run("c.toml").await;
        let e = match &r.error {
            Some(SyncError::Connector(e)) => e,
            other => panic!("{behavior}: expected a connector failure, got {other:?}"),
        };
        assert_eq!(e.connector, "chaos-destination", "{e}");
        let states = s.store().await.states("chaos-dest").await.unwrap();
        assert!(
            states.is_empty(),
            "{behavior}: nothing was durable, nothing is committed"
        );
        let runs = s.store().await.runs(Some("chaos-dest"), 1).await.unwrap();
        assert_eq!(runs[0].status, sluice::store::RunStatus::Failed);
        assert!(
            runs[0]
                .error
                .as_ref()
                .unwrap()
                .contains("chaos-destination")
        );
    }
    host_still_serves().await;
}

/// The outside review's crash: one record nested 100,000 levels deep overflowed the host's
/// stack in the PII walk (and, without a policy, reached the destination). It is refused at the
/// wall, naming the limit and its setting, with and without a policy; an honest nested record
/// passes, and the host goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_nested_too_deep_is_refused_at_the_wall_whatever_the_policy() {
    for pii in [
        "",
        "[pii]\non_detect = \"redact\"\ndetectors = [\"email\"]\n",
    ] {
        let s = Scratch::new();
        s.write(
            "c.toml",
            &format!("{}\n{pii}", chaos_to_file("deep-record", "", "")),
        );
        let r = s.run("c.toml").await;
        match failure(&r) {
            Failure::Protocol { message } => {
                assert!(
                    message.contains("nesting depth 129")
                        && message.contains("limits.max_json_depth"),
                    "{message}"
                );
            }
            other => panic!("expected a protocol refusal, got {other:?}"),
        }
        good_records_committed(&s, &r).await;
        let out = read_jsonl(&s.path("out/items.jsonl"));
        assert!(
            out.iter().all(|r| r.get("a").is_none()),
            "the deep record reached the file"
        );
    }
    // A record within the limit passes, policy or not; a connection may raise the limit.
    for (depth, limits) in [(100, ""), (500, "max_json_depth = 600\n")] {
        let s = Scratch::new();
        s.write(
            "c.toml",
            &format!(
                "{}\n[pii]\non_detect = \"redact\"\ndetectors = [\"email\"]\n",
                chaos_to_file("deep-record", &format!(", depth = {depth}"), limits)
            ),
        );
        let r = s.run("c.toml").await;
        assert!(r.succeeded(), "depth {depth}: {:?}", r.error);
        // (Read as text: a tree 500 deep is past serde_json's own parsing limit.)
        let out = std::fs::read_to_string(s.path("out/items.jsonl")).unwrap();
        assert!(
            out.contains(&format!("\"a\":{}1", "[".repeat(depth))),
            "depth {depth}"
        );
    }
    host_still_serves().await;
}

/// An object with more keys than the host takes (each may become a column downstream) is
/// refused at the wall with the limit named; one with fewer passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_too_many_keys_is_refused_and_a_wide_honest_one_passes() {
    use sluice::boundary::limits::KEYS_PER_OBJECT;
    let s = Scratch::new();
    let extra = format!(", depth = {}", KEYS_PER_OBJECT + 5);
    s.write("c.toml", &chaos_to_file("wide-record", &extra, ""));
    let r = s.run("c.toml").await;
    match failure(&r) {
        Failure::Protocol { message } => assert!(
            message.contains("keys in one object") && message.contains("not configurable"),
            "{message}"
        ),
        other => panic!("expected a protocol refusal, got {other:?}"),
    }
    good_records_committed(&s, &r).await;
    let s = Scratch::new();
    s.write("c.toml", &chaos_to_file("wide-record", ", depth = 500", ""));
    let r = s.run("c.toml").await;
    assert!(r.succeeded(), "{:?}", r.error);
    let out = std::fs::read_to_string(s.path("out/items.jsonl")).unwrap();
    assert!(out.contains("\"k499\":0"));
}
