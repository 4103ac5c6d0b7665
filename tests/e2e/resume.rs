//! `kill -9` in the middle of a run, at several points, then run again: no record is missing,
//! the committed state is never ahead of what the destination holds, and duplicates appear only
//! after the last committed checkpoint.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::{Scratch, faker_to_file, sluice_bin};

/// `updated_at` of record `id` is this plus `id` seconds (see source-faker).
const BASE: i64 = 1_717_200_000;
const USERS: u64 = 120_000;

/// The record ids in a JSONL file, ignoring a half-written last line.
fn ids(path: &Path) -> Vec<u64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).expect("every complete line is JSON");
            v["id"].as_u64().unwrap()
        })
        .collect()
}

/// The id a committed cursor points at.
pub(crate) fn cursor_id(state: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(state).unwrap();
    let at = v["updated_at"].as_str().unwrap();
    let secs = time_of(at);
    (secs - BASE) as u64
}

fn time_of(rfc3339: &str) -> i64 {
    // `2024-06-01T00:00:05+00:00`: only the last seconds vary from BASE within a run's range,
    // but parse it fully to be safe.
    let date = &rfc3339[..10];
    let time = &rfc3339[11..19];
    let (y, m, d): (i64, i64, i64) = (
        date[..4].parse().unwrap(),
        date[5..7].parse().unwrap(),
        date[8..10].parse().unwrap(),
    );
    let (hh, mm, ss): (i64, i64, i64) = (
        time[..2].parse().unwrap(),
        time[3..5].parse().unwrap(),
        time[6..8].parse().unwrap(),
    );
    // Days from civil (Howard Hinnant's algorithm), for a test-only check.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

/// Committed states of the connection, read from its store while (or after) it runs.
fn committed(s: &Scratch) -> HashMap<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = s.store().await;
        store
            .states("faker-to-file")
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.state.stream, c.state.state))
            .collect()
    })
}

fn sluice_run(s: &Scratch) -> Command {
    let mut cmd = Command::new(sluice_bin());
    cmd.arg("--data-dir")
        .arg(s.data_dir())
        .arg("run")
        .arg(s.path("c.toml"))
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Kill the run once `ready` says the committed states are far enough, then check and resume.
fn kill_then_resume(point: &str, ready: impl Fn(&HashMap<String, String>) -> bool) {
    let s = Scratch::new();
    let limits = "[limits]\ncheckpoint_interval_secs = 0.005\nbatch_records = 250\n";
    s.write(
        "c.toml",
        &faker_to_file(
            &format!("{{ count = {USERS}, seed = 11 }}"),
            "jsonl",
            limits,
        ),
    );
    let mut child = sluice_run(&s).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("{point}: the run ended ({status}) before it could be killed: {err}");
        }
        if s.data_dir().join("sluice.db").exists() && ready(&committed(&s)) {
            break;
        }
        assert!(Instant::now() < deadline, "{point}: no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // What the store committed at the moment of death is all in the files.
    let at_kill = committed(&s);
    let users_cursor = at_kill.get("users").map_or(0, |st| cursor_id(st));
    let users_at_kill = ids(&s.path("out/users.jsonl"));
    let held: std::collections::HashSet<u64> = users_at_kill.iter().copied().collect();
    assert!(
        (1..=users_cursor).all(|id| held.contains(&id)),
        "{point}: state says users up to {users_cursor}, but the file lacks some of them"
    );
    let purchases_cursor = at_kill.get("purchases").map_or(0, |st| cursor_id(st));
    let purchases_held: std::collections::HashSet<u64> =
        ids(&s.path("out/purchases.jsonl")).into_iter().collect();
    assert!(
        (1..=purchases_cursor).all(|id| purchases_held.contains(&id)),
        "{point}: purchases state ahead of the file"
    );

    // Run again: it resumes and finishes.
    let out = sluice_run(&s).output().unwrap();
    assert!(
        out.status.success(),
        "{point}: the resumed run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["attempt"], 2,
        "{point}: the interrupted run was resumed"
    );

    // Nothing missing; duplicates only after the committed checkpoint.
    for (stream, cursor, total) in [
        ("users", users_cursor, USERS),
        ("purchases", purchases_cursor, expected_purchases()),
    ] {
        let all = ids(&s.path(&format!("out/{stream}.jsonl")));
        let mut count: HashMap<u64, u32> = HashMap::new();
        for id in &all {
            *count.entry(*id).or_default() += 1;
        }
        for id in 1..=total {
            let n = count.get(&id).copied().unwrap_or(0);
            assert!(n >= 1, "{point}: {stream} {id} is missing after the resume");
            if id <= cursor {
                assert_eq!(
                    n, 1,
                    "{point}: {stream} {id} duplicated though it was committed"
                );
            }
        }
        assert!(
            count.keys().all(|&id| id <= total),
            "{point}: {stream} has unknown ids"
        );
    }
}

/// Purchases for the test's users: the native connector is the reference.
fn expected_purchases() -> u64 {
    use std::sync::OnceLock;
    static N: OnceLock<u64> = OnceLock::new();
    *N.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = rt.block_on(sluice_tests::native::faker_to_file(
            &serde_json::json!({"count": USERS, "seed": 11}),
            dir.path(),
            Default::default(),
        ));
        out.result.unwrap();
        out.stats
            .iter()
            .find(|s| s.stream == "purchases")
            .unwrap()
            .records
    })
}

#[test]
fn kill_9_right_after_the_first_checkpoint() {
    kill_then_resume("early", |c| c.contains_key("users"));
}

#[test]
fn kill_9_in_the_middle_of_a_stream() {
    kill_then_resume("middle", |c| {
        c.get("users").is_some_and(|s| cursor_id(s) >= USERS / 2)
    });
}

#[test]
fn kill_9_in_a_later_stream() {
    kill_then_resume("later stream", |c| c.contains_key("purchases"));
}

#[test]
fn timestamps_parse_like_the_connector_writes_them() {
    assert_eq!(time_of("2024-06-01T00:00:00+00:00"), BASE);
    assert_eq!(
        cursor_id("{\"updated_at\":\"2024-06-01T00:00:42+00:00\"}"),
        42
    );
}
