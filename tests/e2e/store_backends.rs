//! One store API over both back ends: the same operations on a SQLite data dir and on a fresh
//! PostgreSQL database (the test server `cargo xtask test` starts) give the same answers —
//! runs resumed from their committed checkpoint, sealed secrets, the audit chain verified,
//! API keys, workspaces, webhook deliveries and failed-record samples.

use std::sync::Arc;

use secrecy::ExposeSecret;
use sluice::boundary::audit::NewEntry;
use sluice::boundary::crypto::Keyring;
use sluice::protocol::{LogLevel, LogLine, StreamState, StreamStats};
use sluice::store::{Attempt, Backend, Labels, RunStatus, Store, StoreError};
use sluice_tests::pg::pg;
use std::time::Duration;

fn stats(records: u64) -> Vec<StreamStats> {
    vec![StreamStats {
        stream: "users".into(),
        records,
        bytes: records * 10,
    }]
}

/// What a user of the store sees after each step, as lines (ids and times left out).
async fn exercise(s: &Store, data: &std::path::Path) -> Vec<String> {
    let mut seen = Vec::new();
    // A run that dies after a checkpoint is resumed from it; a finished one is not.
    let lock = s.lock("c1").unwrap();
    let first = s.begin_run(&lock, "c1", false).await.unwrap();
    let state = StreamState {
        stream: "users".into(),
        state: r#"{"cursor":42}"#.into(),
    };
    s.commit_checkpoint(
        first.run_id,
        first.attempt,
        "c1",
        std::slice::from_ref(&state),
        &stats(42),
    )
    .await
    .unwrap();
    let resumed = s.begin_run(&lock, "c1", false).await.unwrap();
    assert_eq!((resumed.run_id, resumed.attempt), (first.run_id, 2));
    assert_eq!(resumed.committed, stats(42));
    s.append_logs(
        resumed.run_id,
        &[LogLine {
            connector: "source".into(),
            level: LogLevel::Info,
            message: "read 42".into(),
        }],
    )
    .await
    .unwrap();
    s.finish_run(
        resumed.run_id,
        resumed.attempt,
        RunStatus::Succeeded,
        None,
        &stats(50),
        3,
    )
    .await
    .unwrap();
    let next = s.begin_run(&lock, "c1", false).await.unwrap();
    assert_ne!(next.run_id, first.run_id);
    s.finish_run(
        next.run_id,
        next.attempt,
        RunStatus::Failed,
        Some("boom"),
        &[],
        0,
    )
    .await
    .unwrap();
    drop(lock);
    for r in s.runs(Some("c1"), 10).await.unwrap() {
        seen.push(format!(
            "run attempt {} {:?} error {:?} finished {}",
            r.attempt,
            r.status,
            r.error,
            r.finished_at.is_some()
        ));
    }
    let totals = s.run_totals().await.unwrap();
    seen.push(format!(
        "totals {:?} records {} bytes {}",
        totals.runs_by_status, totals.records, totals.bytes
    ));
    for c in s.states("c1").await.unwrap() {
        seen.push(format!("state {} {}", c.state.stream, c.state.state));
    }
    seen.push(format!("logs {:?}", s.logs(resumed.run_id).await.unwrap()));
    seen.push(format!("reset {}", s.reset_state("c1").await.unwrap()));

    // Masking counts add up per stream, field and rule across batches.
    let mut masked = sluice::boundary::pii::MaskStats::default();
    masked.add("users", "email", "hash", 2);
    masked.add("users", "note", "phone", 1);
    s.add_masking(first.run_id, &masked).await.unwrap();
    s.add_masking(first.run_id, &masked).await.unwrap();
    seen.push(format!(
        "masking {:?}",
        s.masking(first.run_id).await.unwrap().lines()
    ));
    assert_eq!(s.masking(first.run_id).await.unwrap().total(), 6);

    // Secrets are sealed in the database and open again.
    s.set_secret("token", "s3cr3t-value").await.unwrap();
    s.set_secret("token", "s3cr3t-value-2").await.unwrap();
    let token = s.secret("token").await.unwrap().unwrap();
    assert_eq!(token.expose_secret(), "s3cr3t-value-2");
    seen.push(format!(
        "secrets {:?}",
        s.secrets()
            .await
            .unwrap()
            .iter()
            .map(|x| &x.name)
            .collect::<Vec<_>>()
    ));
    assert!(s.remove_secret("token").await.unwrap());
    assert!(s.secret("token").await.unwrap().is_none());

    // The audit chain: appended, signed, verified.
    let entry = |i: usize| NewEntry {
        actor: "cli:test".into(),
        action: "secret.set".into(),
        resource: format!("secret/{i}"),
        outcome: "ok".into(),
        source_ip: None,
        details: serde_json::json!({ "i": i }),
    };
    for i in 0..5 {
        s.audit(&[entry(i)]).await.unwrap();
    }
    s.audit_sealed(&[entry(5), entry(6)]).await.unwrap();
    s.audit_seal().await.unwrap();
    let v = s.audit_verify().await.unwrap();
    assert_eq!(v.problem, None);
    seen.push(format!(
        "audit entries {} unsigned {}",
        v.entries, v.unsigned
    ));
    // Listed without a limit, and by a resource's prefix with one.
    let all = s.audit_entries(&Default::default()).await.unwrap();
    assert_eq!(all.len(), 7);
    let filtered = s
        .audit_entries(&sluice::store::AuditFilter {
            resource: Some("secret".into()),
            limit: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    seen.push(format!(
        "audit listed {} first three {:?}",
        all.len(),
        filtered.iter().map(|e| &e.resource).collect::<Vec<_>>()
    ));
    let last = s
        .last_audit("secret.set", "secret/6")
        .await
        .unwrap()
        .unwrap();
    seen.push(format!("last audit {}", last.resource));

    // API keys: the token authenticates, a wrong one does not.
    let (key, secret) = s.create_api_key("ci", "admin", None).await.unwrap();
    let ok = s
        .authenticate_api_key(secret.expose_secret())
        .await
        .unwrap()
        .expect("the new key authenticates");
    assert_eq!(ok.id, key.id);
    assert!(
        s.authenticate_api_key("sk_not-a-key")
            .await
            .unwrap()
            .is_err()
    );
    seen.push(format!("key role {}", ok.role));

    // Workspaces and a webhook's delivery outbox: leased, retried, delivered.
    assert!(s.create_workspace("team").await.unwrap());
    assert!(!s.create_workspace("team").await.unwrap());
    let (hook, _secret) = s
        .create_webhook("team", "https://hooks.example/x", &["run.finished".into()])
        .await
        .unwrap();
    let queued = s
        .enqueue_webhook_event("team", "run.finished", r#"{"run":1}"#)
        .await
        .unwrap();
    seen.push(format!("queued {}", queued.len()));
    let now = sluice::store::now_ms() + 1_000;
    let due = s.take_due_deliveries(now, 10, 60_000).await.unwrap();
    assert_eq!(due.len(), 1);
    // Leased: a second look in the lease finds nothing.
    assert!(
        s.take_due_deliveries(now, 10, 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    let id = &due[0].delivery.id;
    s.record_delivery_attempt(
        id,
        1,
        &Attempt::Retry {
            status: Some(503),
            error: "unavailable".into(),
            next_at: now,
        },
    )
    .await
    .unwrap();
    let again = s.take_due_deliveries(now, 10, 60_000).await.unwrap();
    assert_eq!(again.len(), 1);
    s.record_delivery_attempt(id, 2, &Attempt::Delivered(200))
        .await
        .unwrap();
    for d in s.webhook_deliveries(&hook.id, 10).await.unwrap() {
        seen.push(format!(
            "delivery {} {} attempts {}",
            d.event, d.status, d.attempts
        ));
    }

    // Failed-record samples are listed by file, replaced on a second write.
    let file = data.join("samples").join("1.sealed");
    s.add_samples(first.run_id, &file, 3).await.unwrap();
    s.add_samples(first.run_id, &file, 4).await.unwrap();
    seen.push(format!(
        "samples {:?}",
        s.samples(first.run_id).await.unwrap()
    ));

    // The run queue: one job per connection, labels, a lapsed lease taken over at the next
    // attempt (the old attempt fenced), schedule occurrences once.
    let none = Labels::new();
    let eu: Labels = [("region".to_string(), "eu".to_string())].into();
    let lease = Duration::from_secs(30);
    seen.push(format!(
        "enqueue {:?}",
        s.enqueue_run("w/q", &none, false, "t")
            .await
            .unwrap()
            .is_some()
    ));
    seen.push(format!(
        "again {:?}",
        s.enqueue_run("w/q", &none, false, "t").await.unwrap()
    ));
    s.enqueue_run("w/eu", &eu, false, "t").await.unwrap();
    let brief = s
        .claim_run("w1", &none, Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    seen.push(format!(
        "claimed {} attempt {}",
        brief.connection, brief.start.attempt
    ));
    seen.push(format!(
        "unlabelled {:?}",
        s.claim_run("w2", &none, lease)
            .await
            .unwrap()
            .map(|c| c.connection)
    ));
    let in_eu = s.claim_run("w2", &eu, lease).await.unwrap().unwrap();
    seen.push(format!("labelled {}", in_eu.connection));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let taken = s.claim_run("w3", &none, lease).await.unwrap().unwrap();
    seen.push(format!(
        "taken over {} attempt {} same run {}",
        taken.connection,
        taken.start.attempt,
        taken.start.run_id == brief.start.run_id
    ));
    seen.push(format!(
        "old lease {:?}",
        s.renew_lease(&brief, lease).await.unwrap()
    ));
    let fenced = s
        .commit_checkpoint(brief.start.run_id, brief.start.attempt, "w/q", &[], &[])
        .await;
    seen.push(format!(
        "old commit fenced {}",
        matches!(fenced, Err(StoreError::Fenced { .. }))
    ));
    s.finish_run(
        taken.start.run_id,
        taken.start.attempt,
        RunStatus::Succeeded,
        None,
        &[],
        0,
    )
    .await
    .unwrap();
    seen.push(format!("released {}", s.release_run(&taken).await.unwrap()));
    seen.push(format!(
        "cancel {}",
        s.cancel_queued("w/eu", "stop").await.unwrap()
    ));
    seen.push(format!(
        "lease {:?}",
        s.renew_lease(&in_eu, lease).await.unwrap()
    ));
    for at in [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:01:00Z",
    ] {
        seen.push(
            format!(
                "occurrence {:?}",
                s.enqueue_occurrence("w/sched", at, &none, "scheduler")
                    .await
                    .unwrap()
            )
            .replace(|c: char| c.is_ascii_digit(), "#"),
        );
    }
    seen.push(format!(
        "queue {:?}",
        s.queued_runs()
            .await
            .unwrap()
            .iter()
            .map(|q| q.connection.clone())
            .collect::<Vec<_>>()
    ));
    seen
}

#[tokio::test]
async fn sqlite_and_postgresql_stores_answer_alike() {
    let lite_dir = tempfile::tempdir().unwrap();
    let lite = Store::open(lite_dir.path()).await.unwrap();
    assert_eq!(lite.backend(), Backend::Sqlite);
    let on_lite = exercise(&lite, lite_dir.path()).await;

    let db = pg().database().await;
    let url = format!(
        "postgres://{}:{}@{}/{}",
        db.user, db.password, db.authority, db.name
    );
    let pg_dir = tempfile::tempdir().unwrap();
    let keyring = Arc::new(Keyring::open(pg_dir.path()).unwrap());
    let post = Store::open_postgres(&url, pg_dir.path(), keyring.clone())
        .await
        .unwrap();
    assert_eq!(post.backend(), Backend::Postgres);
    let on_pg = exercise(&post, pg_dir.path()).await;
    assert_eq!(on_lite, on_pg);
    assert!(on_pg.len() > 10, "{on_pg:?}");

    // What is sealed is sealed in PostgreSQL too: no secret value in any text or bytes column.
    post.set_secret("api", "plain-secret-value").await.unwrap();
    let dump = db
        .rows("SELECT encode(sealed, 'escape') AS v FROM secrets")
        .await;
    assert!(
        !format!("{dump:?}").contains("plain-secret-value"),
        "{dump:?}"
    );

    // A second process opening the same database finds it migrated, and sees the same data.
    let other = Store::open_postgres(&url, pg_dir.path(), keyring)
        .await
        .unwrap();
    assert_eq!(other.runs(Some("c1"), 10).await.unwrap().len(), 2);
    assert_eq!(other.audit_verify().await.unwrap().problem, None);

    // A bad URL is an error that does not show the password.
    let wrong = format!(
        "postgres://{}:{}@{}/no_such_db",
        db.user, db.password, db.authority
    );
    let err = Store::open_postgres(
        &wrong,
        pg_dir.path(),
        Arc::new(Keyring::open(pg_dir.path()).unwrap()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("no_such_db"), "{err}");
    assert!(
        !db.password.is_empty() && !err.contains(&db.password),
        "{err}"
    );
}
