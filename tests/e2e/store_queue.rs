//! The run queue on a real PostgreSQL, claimed by many stores at once (as many worker
//! processes would): every job is claimed by exactly one worker, a lapsed lease is taken over
//! by exactly one, and the attempt it replaced can no longer write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice::boundary::crypto::Keyring;
use sluice::store::{Labels, Lease, RunStatus, Store, StoreError};
use sluice_tests::pg::pg;

async fn stores(n: usize) -> (sluice_tests::pg::TestDb, Vec<Arc<Store>>, tempfile::TempDir) {
    let db = pg().database().await;
    let url = format!(
        "postgres://{}:{}@{}/{}",
        db.user, db.password, db.authority, db.name
    );
    let dir = tempfile::tempdir().unwrap();
    let keyring = Arc::new(Keyring::open(dir.path()).unwrap());
    let mut out = Vec::new();
    for i in 0..n {
        let node = dir.path().join(format!("node{i}"));
        out.push(Arc::new(
            Store::open_postgres(&url, &node, keyring.clone())
                .await
                .unwrap(),
        ));
    }
    (db, out, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_claiming_at_once_each_get_different_jobs() {
    let (_db, stores, _dir) = stores(6).await;
    let none = Labels::new();
    const JOBS: usize = 240;
    for i in 0..JOBS {
        stores[0]
            .enqueue_run(&format!("w/c{i}"), &none, false, "t")
            .await
            .unwrap()
            .unwrap();
    }
    let mut tasks = Vec::new();
    for (w, store) in stores.iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let none = Labels::new();
            while let Some(c) = store
                .claim_run(&format!("worker{w}"), &none, Duration::from_secs(60))
                .await
                .unwrap()
            {
                store
                    .finish_run(
                        c.start.run_id,
                        c.start.attempt,
                        RunStatus::Succeeded,
                        None,
                        &[],
                        0,
                    )
                    .await
                    .unwrap();
                assert!(store.release_run(&c).await.unwrap());
                mine.push(c.connection);
            }
            mine
        }));
    }
    let mut by_connection: BTreeMap<String, usize> = BTreeMap::new();
    let mut busy_workers = 0;
    for t in tasks {
        let mine = t.await.unwrap();
        busy_workers += usize::from(!mine.is_empty());
        for c in mine {
            *by_connection.entry(c).or_default() += 1;
        }
    }
    assert_eq!(by_connection.len(), JOBS);
    assert!(by_connection.values().all(|n| *n == 1), "{by_connection:?}");
    assert!(busy_workers > 1, "the claims were spread over the workers");
    assert!(stores[0].queued_runs().await.unwrap().is_empty());
    let runs = stores[0].runs(None, 1000).await.unwrap();
    assert_eq!(runs.len(), JOBS);
    assert!(
        runs.iter()
            .all(|r| r.status == RunStatus::Succeeded && r.attempt == 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lapsed_lease_is_taken_over_by_exactly_one_worker() {
    let (_db, stores, _dir) = stores(5).await;
    let none = Labels::new();
    for round in 0..5 {
        let key = format!("w/r{round}");
        stores[0]
            .enqueue_run(&key, &none, false, "t")
            .await
            .unwrap();
        let old = stores[0]
            .claim_run("old", &none, Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Four workers race for it while the old one tries to commit.
        let mut racers = Vec::new();
        for (w, store) in stores.iter().enumerate().skip(1) {
            let store = store.clone();
            racers.push(tokio::spawn(async move {
                store
                    .claim_run(&format!("new{w}"), &Labels::new(), Duration::from_secs(60))
                    .await
                    .unwrap()
            }));
        }
        let late = stores[0]
            .commit_checkpoint(old.start.run_id, old.start.attempt, &key, &[], &[])
            .await;
        let mut winners = Vec::new();
        for r in racers {
            winners.extend(r.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let new = &winners[0];
        assert_eq!((new.start.run_id, new.start.attempt), (old.start.run_id, 2));
        // The old attempt's commit either landed before the takeover or was refused; after
        // it, it is refused whatever it tries.
        assert!(
            late.is_ok() || matches!(late, Err(StoreError::Fenced { .. })),
            "{late:?}"
        );
        let after = stores[0]
            .finish_run(
                old.start.run_id,
                old.start.attempt,
                RunStatus::Succeeded,
                None,
                &[],
                0,
            )
            .await;
        assert!(matches!(after, Err(StoreError::Fenced { .. })), "{after:?}");
        stores[1]
            .finish_run(
                new.start.run_id,
                new.start.attempt,
                RunStatus::Succeeded,
                None,
                &[],
                0,
            )
            .await
            .unwrap();
        assert!(stores[1].release_run(new).await.unwrap());
    }
}

/// Found in review: replicas looking for due webhook deliveries at once each leased the same
/// rows under READ COMMITTED, so every replica sent every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_taking_due_deliveries_at_once_each_take_different_ones() {
    let (_db, stores, _dir) = stores(4).await;
    stores[0].create_workspace("team").await.unwrap();
    stores[0]
        .create_webhook("team", "https://hooks.example/x", &["run.finished".into()])
        .await
        .unwrap();
    const EVENTS: usize = 200;
    for i in 0..EVENTS {
        stores[0]
            .enqueue_webhook_event("team", "run.finished", &format!(r#"{{"run":{i}}}"#))
            .await
            .unwrap();
    }
    let now = sluice::store::now_ms() + 1_000;
    let mut tasks = Vec::new();
    for store in &stores {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let due = store.take_due_deliveries(now, 7, 600_000).await.unwrap();
                if due.is_empty() {
                    return mine;
                }
                mine.extend(due.into_iter().map(|d| d.delivery.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: std::collections::BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(
        all.len(),
        EVENTS,
        "every delivery leased once: {} leases",
        all.len()
    );
    assert_eq!(unique.len(), EVENTS);
}

/// A node paused inside a transaction (holding the audit chain's lock, or a run's row) must not
/// stall the fleet for good: the store's sessions ask the server to end such a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_stuck_in_a_transaction_is_ended_by_the_server() {
    let (_db, stores, _dir) = stores(1).await;
    let s = &stores[0];
    // Several, so more than one pooled session answers.
    for _ in 0..4 {
        assert_eq!(
            s.session_setting("idle_in_transaction_session_timeout")
                .await
                .unwrap()
                .as_deref(),
            Some("30s")
        );
        assert_eq!(
            s.session_setting("application_name")
                .await
                .unwrap()
                .as_deref(),
            Some("sluice")
        );
    }
}

/// Found in review: the job did not record which attempt held it, so a worker whose attempt
/// was taken over under the same worker id (another slot of one process) renewed the new
/// attempt's lease and deleted its job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_taken_over_under_the_same_worker_id_renews_and_releases_nothing() {
    let (_db, stores, _dir) = stores(1).await;
    let s = &stores[0];
    let none = Labels::new();
    s.enqueue_run("w/a", &none, false, "t").await.unwrap();
    let old = s
        .claim_run("w1", &none, Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let new = s
        .claim_run("w1", &none, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.start.attempt, old.start.attempt + 1);
    assert_eq!(
        s.renew_lease(&old, Duration::from_secs(60)).await.unwrap(),
        Lease::Lost
    );
    assert!(!s.release_run(&old).await.unwrap());
    assert_eq!(
        s.renew_lease(&new, Duration::from_secs(60)).await.unwrap(),
        Lease::Held { cancel: None }
    );
    assert!(s.release_run(&new).await.unwrap());
}

/// Found in review: a cancelled run whose holder died before it stopped was claimed again and
/// resumed, and ran until the new holder's first heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_whose_worker_died_is_ended_not_resumed() {
    let (_db, stores, _dir) = stores(1).await;
    let s = &stores[0];
    let none = Labels::new();
    s.enqueue_run("w/a", &none, false, "t").await.unwrap();
    let dead = s
        .claim_run("w1", &none, Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    assert!(s.cancel_queued("w/a", "cancelled by t").await.unwrap());
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        s.claim_run("w2", &none, Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    let run = s.run(dead.start.run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Interrupted, "{run:?}");
    assert!(run.error.unwrap_or_default().contains("cancelled by t"));
    // The connection may be queued again, and resumes the run then.
    s.enqueue_run("w/a", &none, false, "t")
        .await
        .unwrap()
        .unwrap();
    let next = s
        .claim_run("w2", &none, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.start.run_id, dead.start.run_id);
}

/// Found in review: `sluice run` (or a server on the embedded store) only takes its machine's
/// lock, so it took over a run a worker held, and a claim took over a run it was making.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_outside_the_queue_and_queued_runs_never_take_each_other_over() {
    let (_db, stores, _dir) = stores(1).await;
    let s = &stores[0];
    let none = Labels::new();
    s.enqueue_run("w/a", &none, false, "t").await.unwrap();
    let held = s
        .claim_run("w1", &none, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let lock = s.lock("w/a").unwrap();
    let outside = s.begin_run(&lock, "w/a", false).await;
    assert!(
        matches!(outside, Err(StoreError::Queued(ref c)) if c == "w/a"),
        "{outside:?}"
    );
    assert_eq!(
        s.renew_lease(&held, Duration::from_secs(60)).await.unwrap(),
        Lease::Held { cancel: None }
    );
    s.finish_run(
        held.start.run_id,
        held.start.attempt,
        RunStatus::Succeeded,
        None,
        &[],
        0,
    )
    .await
    .unwrap();
    assert!(s.release_run(&held).await.unwrap());
    // Now a run outside the queue is going: a queued run waits for it, and a server's own
    // trigger is refused.
    let mine = s.begin_run(&lock, "w/a", false).await.unwrap();
    s.enqueue_run("w/a", &none, false, "t")
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.claim_run("w2", &none, Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    s.cancel_queued("w/a", "t").await.unwrap();
    assert!(
        s.enqueue_claimed("w/a", &none, false, "t", "w3", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    let run = s.run(mine.run_id).await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.attempt),
        (RunStatus::Running, mine.attempt)
    );
}

/// Found in review: a replica recording a late attempt turned a delivered event back into a
/// pending one, and it was sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_attempt_record_does_not_undo_a_delivery() {
    use sluice::store::Attempt;
    let (_db, stores, _dir) = stores(2).await;
    stores[0].create_workspace("team").await.unwrap();
    stores[0]
        .create_webhook("team", "https://hooks.example/x", &["run.finished".into()])
        .await
        .unwrap();
    let queued = stores[0]
        .enqueue_webhook_event("team", "run.finished", r#"{"run":1}"#)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    let now = sluice::store::now_ms() + 1_000;
    let a = stores[0]
        .take_due_deliveries(now, 1, 120_000)
        .await
        .unwrap();
    // Paused past its lease: the other replica takes the delivery and delivers it.
    let b = stores[1]
        .take_due_deliveries(now + 121_000, 1, 120_000)
        .await
        .unwrap();
    assert_eq!(a[0].delivery.id, b[0].delivery.id);
    let id = &a[0].delivery.id;
    stores[1]
        .record_delivery_attempt(id, 1, &Attempt::Delivered(200))
        .await
        .unwrap();
    stores[0]
        .record_delivery_attempt(
            id,
            1,
            &Attempt::Retry {
                status: Some(500),
                error: "x".into(),
                next_at: now,
            },
        )
        .await
        .unwrap();
    assert!(
        stores[0]
            .take_due_deliveries(now + 500_000, 10, 120_000)
            .await
            .unwrap()
            .is_empty()
    );
}
