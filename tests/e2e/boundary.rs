//! The boundary end to end: PII masking, sealed state and samples, the audit log, key rotation.

use std::path::Path;
use std::process::Command;

use sluice_tests::{Scratch, connector, read_jsonl, sluice_bin, source_to_file, toml_path};

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    // Tolerant of a tree that changes under it (staging directories come and go).
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Whether `needle` appears in any file under `dir` (bytes, so SQLite pages count too).
fn found_anywhere(dir: &Path, needle: &str) -> Option<std::path::PathBuf> {
    files(dir).into_iter().find(|f| {
        std::fs::read(f)
            .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
    })
}

fn people(n: usize) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut originals = Vec::new();
    for i in 0..n {
        let email = format!("person.{i}@example-{}.com", i % 7);
        let phone = format!("+1-415-{:03}-{:04}", 200 + i % 700, 1000 + i);
        let ip = format!("10.{}.{}.{}", i % 200, (i / 200) % 250, 1 + i % 250);
        let note = format!("call {phone} or write to {email}; last seen from {ip}");
        text.push_str(
            &serde_json::json!({
                "id": i, "email": email, "phone": phone, "ip": ip, "note": note,
                "version": "1.2.3.4", "age": 20 + i % 50, "signup": "2024-03-15T10:11:12Z",
            })
            .to_string(),
        );
        text.push('\n');
        if i % 10 == 0 {
            originals.extend([email, phone, ip]);
        }
    }
    (text, originals)
}

const POLICY: &str = r#"
[pii]
on_detect = "redact"
[[pii.fields]]
path = "email"
rule = "hash"
[[pii.fields]]
path = "version"
rule = "keep"
[[pii.fields]]
path = "age"
rule = "generalize"
bucket = 10
[[pii.fields]]
path = "signup"
rule = "generalize"
to = "month"
"#;

fn file_source() -> String {
    format!(
        "connector = {}\n[[source.grant.dirs]]\nhost = \"in\"\nguest = \"/input\"",
        toml_path(&connector("source-file"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_original_pii_reaches_the_destination_the_data_dir_or_the_logs() {
    let s = Scratch::new();
    let (input, originals) = people(500);
    s.write("in/people.jsonl", &input);
    let conn = |ws: &str, out: &str| {
        format!(
            "workspace = \"{ws}\"\n{}",
            source_to_file("people", &file_source(), POLICY)
                .replace("host = \"out\"", &format!("host = \"{out}\""))
        )
    };
    s.write("a.toml", &conn("acme", "out"));
    let first = s.run("a.toml").await;
    assert!(first.succeeded(), "{:?}", first.error);
    let out1 = read_jsonl(&s.path("out/people.jsonl"));
    assert_eq!(out1.len(), 500);
    assert_eq!(
        out1[3]["version"], "1.2.3.4",
        "`keep` exempts the field from detectors"
    );
    assert_eq!(out1[3]["phone"], "[phone]");
    assert_eq!(out1[3]["ip"], "[ipv4]");
    assert_eq!(
        out1[3]["note"],
        "call [phone] or write to [email]; last seen from [ipv4]"
    );
    assert_eq!(out1[3]["age"], 20);
    assert_eq!(out1[3]["signup"], "2024-03");
    let counts = first.masked.lines();
    let count = |field: &str, by: &str| {
        counts
            .iter()
            .find(|l| l.field == field && l.by == by)
            .map_or(0, |l| l.count)
    };
    assert_eq!(count("email", "hash"), 500);
    assert_eq!(count("note", "email"), 500);
    assert_eq!(count("ip", "ipv4"), 500);

    // Hashes are stable across runs of the workspace…
    let second = s.run("a.toml").await;
    assert!(second.succeeded(), "{:?}", second.error);
    let again = read_jsonl(&s.path("out/people.jsonl"));
    assert_eq!(out1[42]["email"], again[42]["email"]);
    // …distinct per person, and different in another workspace.
    assert_ne!(out1[1]["email"], out1[2]["email"]);
    s.write(
        "b.toml",
        &conn("globex", "out-b").replace("name = \"people\"", "name = \"people-b\""),
    );
    let other = s.run("b.toml").await;
    assert!(other.succeeded(), "{:?}", other.error);
    let out_b = read_jsonl(&s.path("out-b/people.jsonl"));
    assert_ne!(out1[42]["email"], out_b[42]["email"]);

    // Nothing original anywhere but the input: destination output, data dir (store, WAL,
    // staging, samples), the run logs and the audit log.
    for dir in ["out", "out-b", "data"] {
        for o in &originals {
            if let Some(f) = found_anywhere(&s.path(dir), o) {
                panic!("`{o}` was found in {}", f.display());
            }
        }
    }
    let output = Command::new(sluice_bin())
        .args(["audit", "list", "--data-dir"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    let audit = String::from_utf8_lossy(&output.stdout);
    assert!(
        audit.contains("run.finished") && audit.contains("\"masked\":"),
        "{audit}"
    );
    assert!(!originals.iter().any(|o| audit.contains(o.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_records_are_skipped_sampled_and_sealed() {
    let s = Scratch::new();
    // chaos-source sends 2,500 good records, then `[1,2,3]` (JSON, not an object).
    let source = format!(
        "connector = {}\nconfig = {{ behavior = \"not-object\", records = 2500 }}",
        toml_path(&sluice_tests::test_connector("chaos-source"))
    );
    s.write(
        "c.toml",
        &source_to_file(
            "chaos",
            &source,
            "[pii]\n[failed_records]\non_invalid = \"skip\"\nsamples = 5\n",
        ),
    );
    let r = s.run("c.toml").await;
    assert!(r.succeeded(), "{:?}", r.error);
    assert_eq!(r.skipped, 1);
    assert_eq!(r.samples, 1);
    assert_eq!(r.records(), 2500);
    assert!(
        !s.data_dir()
            .join("staging")
            .join(format!("run-{}", r.run_id))
            .exists()
    );
    assert!(
        found_anywhere(&s.data_dir().join("samples"), "[1,2,3]").is_none(),
        "sealed"
    );
    let out = Command::new(sluice_bin())
        .args(["samples", &r.run_id.to_string(), "--data-dir"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sample: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(sample["record"], "[1,2,3]");
    assert_eq!(sample["reason"], "JSON but not an object");

    // Without `skip`, the same record fails the run, naming the line.
    s.write(
        "d.toml",
        &source_to_file("chaos-fail", &source, "").replace("host = \"out\"", "host = \"out-d\""),
    );
    let r = s.run("d.toml").await;
    assert!(r.error_message.unwrap().contains("not an object"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_sealed_and_survives_key_rotation() {
    let s = Scratch::new();
    s.write(
        "c.toml",
        &sluice_tests::faker_to_file(
            "{ count = 50, seed = 1 }",
            "jsonl",
            "[[streams]]\nname = \"users\"\nsync_mode = \"incremental\"\n",
        ),
    );
    let r = s.run("c.toml").await;
    assert!(r.succeeded(), "{:?}", r.error);
    let store = s.store().await;
    let state = store.states("faker-to-file").await.unwrap();
    assert_eq!(state.len(), 1);
    let cursor = state[0].state.state.clone();
    assert!(
        found_anywhere(&s.data_dir(), &cursor).is_none(),
        "state is stored in the clear"
    );
    drop(store);

    let out = Command::new(sluice_bin())
        .args(["keys", "rotate", "--data-dir"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("`kek-2` is the current key"));
    let store = s.store().await;
    assert_eq!(
        store.states("faker-to-file").await.unwrap()[0].state.state,
        cursor
    );
    let again = s.run("c.toml").await;
    assert!(again.succeeded(), "{:?}", again.error);
    assert_eq!(
        again.records(),
        0,
        "the incremental state still opens after rotation"
    );
}

fn verify(data_dir: &Path) -> (bool, String) {
    let out = Command::new(sluice_bin())
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

async fn tamper(data_dir: &Path, sql: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", data_dir.join("sluice.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for stmt in sql.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(sqlx::AssertSqlSafe(stmt.to_string()))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_catches_an_edited_deleted_inserted_or_reordered_entry() {
    let s = Scratch::new();
    s.write(
        "c.toml",
        &sluice_tests::faker_to_file("{ count = 10 }", "jsonl", ""),
    );
    for _ in 0..3 {
        assert!(s.run("c.toml").await.succeeded());
    }
    let (ok, text) = verify(&s.data_dir());
    assert!(ok, "{text}");
    assert!(text.contains("intact"), "{text}");

    let cases = [
        (
            "edit",
            "UPDATE audit_log SET outcome = 'failed' WHERE seq = 4",
            "entry 4 was edited",
        ),
        (
            "delete",
            "DELETE FROM audit_log WHERE seq = 3",
            "entry 3 is missing",
        ),
        (
            "insert",
            // Make room at 3 and insert a forged entry with a plausible chain link.
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3; \
             UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1003; \
             INSERT INTO audit_log (seq, at, actor, action, resource, outcome, source_ip, details, prev_hash, hash) \
             SELECT 3, at, 'cli:mallory', 'grant.changed', resource, 'ok', NULL, '{}', hash, hash FROM audit_log WHERE seq = 2",
            "entry 3",
        ),
        (
            "reorder",
            "UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; \
             UPDATE audit_log SET seq = 3 WHERE seq = -1",
            "entry 2",
        ),
        // The newest entries, and the digest that signed them: what is left is a valid prefix
        // of the chain; the anchor outside the database says it was longer.
        (
            "truncate the tail",
            "DELETE FROM audit_log WHERE seq > (SELECT last_seq FROM audit_digests ORDER BY seq \
             DESC LIMIT 1 OFFSET 1); DELETE FROM audit_digests WHERE seq = (SELECT MAX(seq) FROM \
             audit_digests)",
            "the newest digests and entries were deleted",
        ),
        // Only the newest entries (the digest left pointing past the end).
        (
            "drop the newest entries",
            "DELETE FROM audit_log WHERE seq > (SELECT MAX(seq) - 2 FROM audit_log)",
            "entr",
        ),
    ];
    for (name, sql, expect) in cases {
        let copy = s.path(&format!("tampered-{name}"));
        copy_dir(&s.data_dir(), &copy);
        tamper(&copy, sql).await;
        let (ok, text) = verify(&copy);
        assert!(!ok, "{name}: verify passed: {text}");
        assert!(text.contains(expect), "{name}: {text}");
    }
}

/// A destination that falls behind (20 ms per batch) does not hold the source back: batches wait
/// in sealed spill files in the run's staging directory, reach the destination in full and in
/// order, and the files are gone when the run ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_spill_sealed_while_a_slow_destination_catches_up() {
    let s = Scratch::new();
    s.write(
        "c.toml",
        &format!(
            r#"
name = "spill"
[source]
connector = {source}
config = {{ count = 30000, seed = 7 }}
[destination]
connector = {dest}
config = {{ behavior = "slow-write" }}
[[destination.grant.dirs]]
host = "out"
guest = "/output"
[[streams]]
name = "users"
[limits]
batch_records = 500
spill_mib = 256
"#,
            source = toml_path(&connector("source-faker")),
            dest = toml_path(&sluice_tests::test_connector("chaos-destination")),
        ),
    );
    std::fs::create_dir_all(s.path("out")).unwrap();
    // While the run goes on, read every spill segment that appears: ciphertext only.
    let staging = s.data_dir().join("staging");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for f in files(&staging) {
                    let name = f.file_name().unwrap().to_string_lossy().to_string();
                    if !name.starts_with("spill-") {
                        continue;
                    }
                    if let Ok(bytes) = std::fs::read(&f) {
                        assert!(
                            !bytes.windows(7).any(|w| w == b"\"email\""),
                            "{name} holds records in the clear"
                        );
                        seen.insert(name);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            seen
        })
    };
    let r = s.run("c.toml").await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    assert!(r.succeeded(), "{:?}", r.error_message);
    assert_eq!(r.records(), 30000);
    assert!(
        r.spilled.segments >= 2 && r.spilled.bytes > 4 << 20,
        "{:?}",
        r.spilled
    );
    assert!(!seen.is_empty(), "no spill segment was seen on disk");
    let count = std::fs::read_to_string(s.path("out/count")).unwrap();
    assert_eq!(count.trim(), "30000", "the destination got every record");
    assert!(
        !s.data_dir()
            .join("staging")
            .join(format!("run-{}", r.run_id))
            .exists()
    );
}
