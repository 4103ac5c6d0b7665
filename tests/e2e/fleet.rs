//! A fleet on one PostgreSQL, as real processes: `sluice worker`s claim queued runs, are
//! killed with SIGKILL mid-run or paused past their lease with SIGSTOP, and every run still
//! ends `succeeded` with every source record in its destination, the audit chain whole.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sluice::boundary::crypto::Keyring;
use sluice::store::{ConnectionDef, EndpointDef, EndpointKind, RunStatus, Store};
use sluice_tests::pg::{TestDb, pg};
use sluice_tests::{connector, sluice_bin};

/// Users per connection when several share the workers: enough that a run is still going
/// when its worker is killed.
const USERS: u64 = 60_000;

/// Users for the one connection a lone worker runs until paused: a run of several seconds.
const PAUSED_USERS: u64 = 600_000;

/// The fleet's shared settings: the store's URL and keyring, given to every process through
/// the environment (never the command line).
struct Fleet {
    db: TestDb,
    url: String,
    keyring: String,
    root: tempfile::TempDir,
    store: Store,
    /// Faker users per connection.
    users: u64,
}

/// A `sluice worker` process and where its log goes.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fleet {
    async fn new(users: u64) -> Fleet {
        let db = pg().database().await;
        let url = db.url_as(&db.user);
        let root = tempfile::tempdir().unwrap();
        // One keyring for the fleet, as SLUICE_KEYRING would carry it.
        let ring_dir = root.path().join("ring");
        std::fs::create_dir_all(&ring_dir).unwrap();
        let ring = Keyring::open_file(&ring_dir.join("keyring.json")).unwrap();
        let keyring = std::fs::read_to_string(ring_dir.join("keyring.json")).unwrap();
        let store = Store::open_postgres(&url, &root.path().join("setup"), Arc::new(ring))
            .await
            .unwrap();
        store.create_workspace("w").await.unwrap();
        Fleet {
            db,
            url,
            keyring,
            root,
            store,
            users,
        }
    }

    /// A connection `name` moving `self.users` faker users into its own schema, append-dedup on
    /// the users' id, requiring `labels`.
    async fn connection(&self, name: &str, seed: u64, labels: &[(&str, &str)]) {
        // Its own least-privilege writer: a role that may create objects in its schema only.
        let role = format!("{}_{name}", self.db.name);
        self.db
            .exec(&format!(
                "CREATE ROLE {role} LOGIN PASSWORD '{}'; CREATE SCHEMA {name} AUTHORIZATION {role}",
                self.db.password.replace('\'', "''")
            ))
            .await;
        for (kind, connector_name, config, grant) in [
            (
                EndpointKind::Source,
                "source-faker",
                json!({ "count": self.users, "seed": seed }),
                json!({}),
            ),
            (
                EndpointKind::Destination,
                "destination-postgres",
                json!({}),
                json!({
                    "sql": [{
                        "name": "warehouse",
                        "url": format!(
                            "postgres://{}:{{{{secret:pg}}}}@{}/{}",
                            role, self.db.authority, self.db.name
                        ),
                        "schema": name,
                    }],
                    "secrets": [{ "name": "pg", "env": "SLUICE_TEST_PG_PASSWORD" }],
                }),
            ),
        ] {
            let e = EndpointDef {
                workspace: "w".into(),
                kind,
                name: name.into(),
                connector: connector(connector_name).display().to_string(),
                config,
                grant,
                secrets: vec![],
                created_at: String::new(),
                updated_at: String::new(),
            };
            self.store.put_endpoint(&e, &BTreeMap::new()).await.unwrap();
        }
        let labels: BTreeMap<_, _> = labels.iter().map(|(k, v)| (*k, *v)).collect();
        let def = ConnectionDef {
            workspace: "w".into(),
            name: name.into(),
            source: name.into(),
            destination: name.into(),
            settings: json!({
                "streams": [{
                    "name": "users",
                    "sync_mode": "incremental",
                    "destination_mode": "append_dedup",
                }],
                "labels": labels,
            }),
            schedule: None,
            status: "active".into(),
            created_at: String::new(),
            updated_at: String::new(),
        };
        self.store.put_connection(&def).await.unwrap();
    }

    fn command(&self, node: &str) -> Command {
        let mut c = Command::new(sluice_bin());
        c.arg("--data-dir")
            .arg(self.root.path().join(node))
            .env("SLUICE_STORE", &self.url)
            .env("SLUICE_KEYRING", &self.keyring)
            .env("SLUICE_TEST_PG_PASSWORD", &self.db.password)
            .env("SLUICE_LOG", "info");
        c
    }

    fn worker(&self, node: &str, lease: &str, labels: &[&str]) -> Worker {
        let log = self.root.path().join(format!("{node}.log"));
        let mut c = self.command(node);
        c.args(["worker", "--max-runs", "2", "--lease", lease]);
        for l in labels {
            c.args(["--label", l]);
        }
        let child = c
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Worker { child, log }
    }

    fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = self.command("cli").args(args).output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn enqueue(&self, name: &str) {
        let (ok, out) = self.cli(&["queue", "add", &format!("w/{name}")]);
        assert!(ok, "{out}");
    }

    /// Wait until the queue is empty; panic with the workers' logs after `limit`.
    async fn drained(&self, limit: Duration, workers: &[&Worker]) {
        let until = Instant::now() + limit;
        while !self.store.queued_runs().await.unwrap().is_empty() {
            if Instant::now() > until {
                let logs: Vec<String> = workers.iter().map(|w| w.log()).collect();
                panic!(
                    "the queue did not drain: {:?}\n{}",
                    self.store.queued_runs().await.unwrap(),
                    logs.join("\n---\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Wait until some run is held by a worker and has committed a checkpoint: (connection,
    /// worker id).
    async fn held_mid_run(&self, workers: &[&Worker]) -> (String, String) {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            for q in self.store.queued_runs().await.unwrap() {
                if let (Some(run), Some(worker)) = (q.run_id, q.worker.clone()) {
                    let r = self.store.run(run).await.unwrap().unwrap();
                    if r.streams.iter().any(|s| s.records > 0) {
                        return (q.connection, worker);
                    }
                }
            }
            if Instant::now() > until {
                let logs: Vec<String> = workers.iter().map(|w| w.log()).collect();
                panic!(
                    "no run got going: {:?}\n{}",
                    self.store.queued_runs().await.unwrap(),
                    logs.join("\n---\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every user the source made, exactly once, in each connection's schema.
    async fn assert_every_user_once(&self, names: &[&str]) {
        let runs = self.store.runs(None, 100).await.unwrap();
        assert!(
            runs.iter().all(|r| r.status == RunStatus::Succeeded),
            "{runs:#?}"
        );
        for name in names {
            let rows = self
                .db
                .count(&format!("SELECT COUNT(*) FROM {name}.users"))
                .await;
            let distinct = self
                .db
                .count(&format!("SELECT COUNT(DISTINCT id) FROM {name}.users"))
                .await;
            assert_eq!(
                (rows, distinct),
                (self.users as i64, self.users as i64),
                "{name}"
            );
        }
    }
}

/// The worker id's pid part (`HOST:PID:RANDOM`).
fn pid_of(worker_id: &str) -> u32 {
    worker_id.split(':').nth(1).unwrap().parse().unwrap()
}

fn attempts(store_runs: &[sluice::store::RunRecord], name: &str) -> Vec<(RunStatus, i64)> {
    store_runs
        .iter()
        .filter(|r| r.connection == format!("w/{name}"))
        .map(|r| (r.status, r.attempt))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_no_run_and_no_record() {
    let fleet = Fleet::new(USERS).await;
    let names = ["c0", "c1", "c2", "c3", "c4", "c5"];
    for (i, n) in names.iter().enumerate() {
        fleet.connection(n, i as u64, &[]).await;
        fleet.enqueue(n);
    }
    // A second trigger of a queued connection is refused: runs of one never overlap.
    let (ok, out) = fleet.cli(&["queue", "add", "w/c0"]);
    assert!(!ok && out.contains("queued or running already"), "{out}");

    let mut workers: Vec<Worker> = (0..3)
        .map(|i| fleet.worker(&format!("node{i}"), "1.5", &[]))
        .collect();
    let mut killed = 0;
    let mut next = 3;
    while killed < 2 {
        let (connection, worker) = fleet
            .held_mid_run(&workers.iter().collect::<Vec<_>>())
            .await;
        let Some(i) = workers.iter().position(|w| w.child.id() == pid_of(&worker)) else {
            continue;
        };
        workers[i].signal("-KILL");
        let _ = workers[i].child.wait();
        eprintln!("killed {worker} running {connection}");
        workers[i] = fleet.worker(&format!("node{next}"), "1.5", &[]);
        next += 1;
        killed += 1;
    }
    let refs: Vec<&Worker> = workers.iter().collect();
    fleet.drained(Duration::from_secs(240), &refs).await;

    let runs = fleet.store.runs(None, 100).await.unwrap();
    assert_eq!(runs.len(), names.len(), "{runs:?}");
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Succeeded),
        "{runs:?}"
    );
    let resumed: usize = names
        .iter()
        .map(|n| attempts(&runs, n)[0].1 as usize - 1)
        .sum();
    assert!(resumed >= 2, "two killed runs were resumed: {runs:?}");
    fleet.assert_every_user_once(&names).await;
    // Each attempt started once, in order: no two attempts of a run ran at once.
    for run in &runs {
        let started: Vec<i64> = fleet
            .store
            .audit_entries(&sluice::store::AuditFilter {
                action: Some("run.started".into()),
                resource: Some(format!("connection/{}", run.connection)),
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(&e.details).unwrap()["attempt"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(started, (1..=run.attempt).collect::<Vec<_>>(), "{run:?}");
    }
    let (ok, out) = fleet.cli(&["audit", "verify"]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_its_lease_is_refused_and_says_so() {
    let fleet = Fleet::new(PAUSED_USERS).await;
    fleet.connection("paused", 7, &[]).await;
    fleet.enqueue("paused");
    let first = fleet.worker("first", "1", &[]);
    let (_, holder) = fleet.held_mid_run(&[&first]).await;
    assert_eq!(pid_of(&holder), first.child.id());
    first.signal("-STOP");
    let second = fleet.worker("second", "1", &[]);
    // The second takes the run over once the first's lease lapses.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let q = fleet.store.queued_runs().await.unwrap();
        if q.first().and_then(|q| q.worker.as_deref()).map(pid_of) == Some(second.child.id()) {
            break;
        }
        assert!(Instant::now() < until, "no takeover: {q:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.signal("-CONT");
    fleet
        .drained(Duration::from_secs(120), &[&first, &second])
        .await;
    let runs = fleet.store.runs(None, 10).await.unwrap();
    assert_eq!(attempts(&runs, "paused"), vec![(RunStatus::Succeeded, 2)]);
    fleet.assert_every_user_once(&["paused"]).await;
    // The first worker, continued, found it had lost the run and stopped writing.
    let until = Instant::now() + Duration::from_secs(20);
    while !first.log().contains("may no longer write") && !first.log().contains("lost its lease") {
        assert!(Instant::now() < until, "{}", first.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_requiring_a_label_runs_only_on_a_worker_with_it() {
    let fleet = Fleet::new(USERS).await;
    fleet.connection("eu", 3, &[("region", "eu")]).await;
    fleet.connection("anywhere", 4, &[]).await;
    fleet.enqueue("eu");
    fleet.enqueue("anywhere");
    let us = fleet.worker("us", "5", &["region=us"]);
    // The unlabelled one runs; the eu one waits.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let q = fleet.store.queued_runs().await.unwrap();
        if q.len() == 1 {
            assert_eq!(q[0].connection, "w/eu");
            assert_eq!(q[0].worker, None, "{q:?}");
            break;
        }
        assert!(Instant::now() < until, "{q:?}\n{}", us.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fleet.store.queued_runs().await.unwrap()[0].worker, None);
    let eu = fleet.worker("eu", "5", &["region=eu", "disk=ssd"]);
    fleet.drained(Duration::from_secs(60), &[&us, &eu]).await;
    assert!(
        eu.log().contains("claimed the run of `w/eu`"),
        "{}",
        eu.log()
    );
    assert!(
        !us.log().contains("claimed the run of `w/eu`"),
        "{}",
        us.log()
    );
    fleet.assert_every_user_once(&["eu", "anywhere"]).await;
}
