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
    /// Faker users per connection, unless `sizes` says otherwise.
    users: u64,
    sizes: std::sync::Mutex<BTreeMap<String, u64>>,
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

/// A `sluice serve` process (killed like a worker) and where it listens.
struct Replica {
    worker: Worker,
    addr: std::net::SocketAddr,
}

impl Replica {
    /// `POST …/connections/NAME/runs` as `token`: the status and the body.
    async fn trigger(&self, name: &str, token: &str) -> (u16, serde_json::Value) {
        let req = http::Request::post(format!("/v1/workspaces/w/connections/{name}/runs"))
            .header("host", "localhost")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body("{}".to_string())
            .unwrap();
        let io = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let reply = sluice_tests::serve::send(io, req).await.unwrap();
        (reply.status, reply.json())
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
            sizes: Default::default(),
        }
    }

    /// A connection `name` moving `self.users` faker users into its own schema, append-dedup on
    /// the users' id, requiring `labels`.
    async fn connection(&self, name: &str, seed: u64, labels: &[(&str, &str)]) {
        self.connection_with(name, seed, labels, None, self.users)
            .await;
    }

    /// [`Fleet::connection`] with its own `users`, on `schedule` if given.
    async fn connection_with(
        &self,
        name: &str,
        seed: u64,
        labels: &[(&str, &str)],
        schedule: Option<&str>,
        users: u64,
    ) {
        self.sizes.lock().unwrap().insert(name.to_string(), users);
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
                json!({ "count": users, "seed": seed }),
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
            schedule: schedule.map(String::from),
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

    /// A `sluice serve` replica on this fleet's store, listening on loopback.
    fn replica(&self, node: &str, args: &[&str]) -> Replica {
        use std::io::BufRead;
        let log = self.root.path().join(format!("{node}.log"));
        let mut child = self
            .command(node)
            .args(["serve", "--listen", "127.0.0.1:0", "--max-runs", "8"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| {
                    panic!(
                        "serve {node} exited: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                })
                .unwrap();
            if let Some(rest) = line.strip_prefix("listening on http://") {
                break rest.trim().parse().unwrap();
            }
        };
        // Keep its stdout drained.
        std::thread::spawn(move || lines.for_each(drop));
        Replica {
            worker: Worker { child, log },
            addr,
        }
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
        let pids: Vec<u32> = workers.iter().map(|w| w.child.id()).collect();
        self.held_mid_run_by(&pids, workers).await
    }

    /// [`Fleet::held_mid_run`] by one of the processes `pids`.
    async fn held_mid_run_by(&self, pids: &[u32], workers: &[&Worker]) -> (String, String) {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            for q in self.store.queued_runs().await.unwrap() {
                if let (Some(run), Some(worker)) = (q.run_id, q.worker.clone())
                    && pids.contains(&pid_of(&worker))
                {
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
        let runs = self.store.runs(None, 1000).await.unwrap();
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
            let users = self.sizes.lock().unwrap()[*name] as i64;
            assert_eq!((rows, distinct), (users, users), "{name}");
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
    // Attempts started once each, in order, the last the one that finished: no two attempts of
    // a run ran at once.
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
        // An attempt whose worker was killed between its claim and its first entry left none;
        // the store refuses an entry of an attempt the run has moved on from.
        assert!(
            started.windows(2).all(|w| w[0] < w[1]),
            "{started:?} {run:?}"
        );
        assert_eq!(started.last(), Some(&run.attempt), "{started:?} {run:?}");
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
    // And says what it waits for.
    let (ok, out) = fleet.cli(&["queue", "list"]);
    assert!(ok, "{out}");
    let waiting: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(
        waiting["waiting"]
            .as_str()
            .is_some_and(|w| w.contains("no live worker has the labels region=eu")),
        "{out}"
    );
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

/// Every (connection, occurrence) the replicas' logs say they enqueued.
fn enqueued_occurrences(logs: &[String]) -> Vec<(String, String)> {
    logs.iter()
        .flat_map(|l| l.lines())
        .filter_map(|l| {
            let rest = &l[l.find("enqueued the ")? + "enqueued the ".len()..];
            let (occurrence, rest) = rest.split_once(" run of `")?;
            let (connection, _) = rest.split_once('`')?;
            Some((connection.to_string(), occurrence.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_replicas_and_workers_run_every_run_once_through_kills() {
    let fleet = Fleet::new(3_000).await;
    let triggered = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"];
    for (i, n) in triggered.iter().enumerate() {
        fleet.connection(n, 10 + i as u64, &[]).await;
    }
    let queued = ["q0", "q1", "q2", "q3"];
    for (i, n) in queued.iter().enumerate() {
        fleet
            .connection_with(n, 20 + i as u64, &[], None, USERS)
            .await;
    }
    // Triggered on the replica that is killed mid-run.
    fleet
        .connection_with("big", 30, &[], None, PAUSED_USERS / 2)
        .await;
    let (ok, token) = fleet.cli(&["admin", "create-key", "--role", "owner", "--name", "fleet"]);
    assert!(ok, "{token}");
    let token = token.lines().next().unwrap().trim().to_string();

    let mut workers: Vec<Worker> = (0..3)
        .map(|i| fleet.worker(&format!("node{i}"), "1.5", &[]))
        .collect();
    // Queued for the workers, big enough to be killed mid-run; kill a worker mid-run, twice.
    for n in queued {
        fleet.enqueue(n);
    }
    for next in 3..5 {
        let pids: Vec<u32> = workers.iter().map(|w| w.child.id()).collect();
        let (connection, worker) = fleet
            .held_mid_run_by(&pids, &workers.iter().collect::<Vec<_>>())
            .await;
        let i = workers
            .iter()
            .position(|w| w.child.id() == pid_of(&worker))
            .unwrap();
        workers[i].signal("-KILL");
        let _ = workers[i].child.wait();
        eprintln!("killed worker {worker} running {connection}");
        workers[i] = fleet.worker(&format!("node{next}"), "1.5", &[]);
    }

    // Every run's end goes to a webhook that fails each delivery's first attempt.
    let answered: Arc<std::sync::Mutex<Vec<(String, u16)>>> = Arc::default();
    let seen = answered.clone();
    let receiver = sluice_tests::server::TestServer::start(move |req| {
        let id = req
            .header("sluice-delivery")
            .unwrap_or_default()
            .to_string();
        let mut seen = seen.lock().unwrap();
        let status = if seen.iter().any(|(d, _)| *d == id) {
            204
        } else {
            500
        };
        seen.push((id, status));
        sluice_tests::server::Reply::status(status, "")
    });
    let (hook, _) = fleet
        .store
        .create_webhook(
            "w",
            &format!("{}/hook", receiver.url()),
            &["run.succeeded".into()],
        )
        .await
        .unwrap();
    let allow = format!("http://127.0.0.1:{}", receiver.port());
    let hooks = [
        "--webhook-allow",
        allow.as_str(),
        "--webhook-retry-delay",
        "0.2",
    ];
    let a = fleet.replica("replica-a", &hooks);
    let b = fleet.replica("replica-b", &hooks);
    // Two scheduled connections, every two seconds, enqueued by whichever replica sees the
    // occurrence first, run by whichever worker claims it.
    for (i, n) in ["s0", "s1"].iter().enumerate() {
        fleet
            .connection_with(n, 40 + i as u64, &[], Some("*/2 * * * * *"), 3_000)
            .await;
    }

    // The big run on replica a, which is killed mid-run: its lease lapses and a worker
    // resumes it.
    let (status, body) = a.trigger("big", &token).await;
    assert_eq!(status, 202, "{body}");
    let big_run = body["run"]["id"].as_i64().unwrap();
    fleet
        .held_mid_run_by(&[a.worker.child.id()], &[&a.worker])
        .await;
    a.worker.signal("-KILL");
    eprintln!("killed replica a running run {big_run}");

    // Five rounds of the triggered connections on replica b: each triggered run is answered
    // with its id, and refused while the connection's last run is still going.
    let mut ours = Vec::new();
    for _round in 0..5 {
        for n in triggered {
            let until = Instant::now() + Duration::from_secs(120);
            loop {
                let (status, body) = b.trigger(n, &token).await;
                if status == 202 {
                    ours.push(body["run"]["id"].as_i64().unwrap());
                    break;
                }
                assert!(matches!(status, 409 | 503), "{status} {body}");
                assert!(Instant::now() < until, "{n} stayed busy: {body}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(ours.len(), 40);
    // Let the schedules run at least ten occurrences in all, then pause them.
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let scheduled = fleet
            .store
            .runs(None, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.connection == "w/s0" || r.connection == "w/s1")
            .count();
        if scheduled >= 10 {
            break;
        }
        assert!(Instant::now() < until, "{scheduled} scheduled runs");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in ["s0", "s1"] {
        let mut def = fleet.store.connection_def("w", n).await.unwrap().unwrap();
        def.status = "paused".into();
        fleet.store.put_connection(&def).await.unwrap();
    }
    let mut all: Vec<&Worker> = workers.iter().collect();
    all.push(&b.worker);
    fleet.drained(Duration::from_secs(240), &all).await;
    // Runs of the replica were answered before they ended: wait for the last ones.
    let until = Instant::now() + Duration::from_secs(120);
    let runs = loop {
        let runs = fleet.store.runs(None, 1000).await.unwrap();
        if runs.iter().all(|r| r.status != RunStatus::Running) {
            break runs;
        }
        assert!(Instant::now() < until, "{runs:#?}\n{}", b.worker.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(runs.len() >= 50, "{} runs", runs.len());
    let names: Vec<&str> = triggered
        .iter()
        .copied()
        .chain(queued)
        .chain(["big", "s0", "s1"])
        .collect();
    fleet.assert_every_user_once(&names).await;
    let big = runs.iter().find(|r| r.id == big_run).unwrap();
    assert!(
        big.attempt >= 2,
        "the killed replica's run was resumed: {big:?}"
    );

    // Each occurrence was enqueued once, by one replica, and ran once.
    let logs = [a.worker.log(), b.worker.log()];
    let enqueued = enqueued_occurrences(&logs);
    let unique: std::collections::BTreeSet<_> = enqueued.iter().cloned().collect();
    assert_eq!(unique.len(), enqueued.len(), "{enqueued:?}");
    for n in ["s0", "s1"] {
        let key = format!("w/{n}");
        let scheduled = runs.iter().filter(|r| r.connection == key).count();
        let occurrences = enqueued.iter().filter(|(c, _)| *c == key).count();
        assert!(scheduled >= 1, "{n} ran on its schedule");
        assert_eq!(
            scheduled, occurrences,
            "{n}: one run per enqueued occurrence"
        );
    }

    // No two attempts of a run were active at once: per run, its attempts started in order,
    // the last the one that finished.
    let entries = fleet
        .store
        .audit_entries(&sluice::store::AuditFilter {
            action: Some("run.started".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut started: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for e in &entries {
        let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
        started
            .entry(d["run"].as_i64().unwrap())
            .or_default()
            .push(d["attempt"].as_i64().unwrap());
    }
    for run in &runs {
        let attempts = &started[&run.id];
        assert!(
            attempts.windows(2).all(|w| w[0] < w[1]),
            "{attempts:?} {run:?}"
        );
        assert_eq!(attempts.last(), Some(&run.attempt), "{attempts:?} {run:?}");
    }
    // Each run's event was delivered, once, after a retry under the same delivery id (a
    // replica killed while holding deliveries leaves them leased for two minutes).
    let until = Instant::now() + Duration::from_secs(200);
    let deliveries = loop {
        let d = fleet
            .store
            .webhook_deliveries(&hook.id, 10_000)
            .await
            .unwrap();
        if d.len() == runs.len() && d.iter().all(|d| d.status == "delivered") {
            break d;
        }
        assert!(
            Instant::now() < until,
            "{} of {} deliveries made: {d:#?}",
            d.iter().filter(|d| d.status == "delivered").count(),
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let answered = answered.lock().unwrap().clone();
    for d in &deliveries {
        let statuses: Vec<u16> = answered
            .iter()
            .filter(|(id, _)| *id == d.id)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(statuses, vec![500, 204], "delivery {}", d.id);
    }
    let (ok, out) = fleet.cli(&["audit", "verify"]);
    assert!(ok, "{out}");
}

/// Found in review: the last-owner check was a mutex inside one process, so two replicas each
/// revoking one of the last two owner keys at once could leave none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_revoking_the_last_two_owner_keys_at_once_leave_one() {
    let fleet = Fleet::new(1).await;
    let create = || {
        let (ok, out) = fleet.cli(&["admin", "create-key", "--role", "owner", "--name", "o"]);
        assert!(ok, "{out}");
        out.lines().next().unwrap().trim()["sluice_".len()..][..16].to_string()
    };
    let mut survivor = create();
    for round in 0..6 {
        let other = create();
        let mut revokes: Vec<Child> = [&survivor, &other]
            .iter()
            .map(|id| {
                fleet
                    .command(&format!("revoker{round}-{id}"))
                    .args(["admin", "revoke-key", id.as_str()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let ok: Vec<bool> = revokes
            .iter_mut()
            .map(|c| c.wait().unwrap().success())
            .collect();
        assert_eq!(
            ok.iter().filter(|o| **o).count(),
            1,
            "round {round}: exactly one revoke wins: {ok:?}"
        );
        let owners: Vec<_> = fleet
            .store
            .api_keys()
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.role == "owner" && k.revoked_at.is_none())
            .collect();
        assert_eq!(owners.len(), 1, "round {round}: {owners:?}");
        survivor = owners[0].id.clone();
    }
}

/// Found in review: a worker stopped cleanly (SIGTERM, as a rollout does) ended its run
/// interrupted and dropped the job, so nobody resumed it until the next trigger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_cleanly_hands_its_run_to_another() {
    let fleet = Fleet::new(PAUSED_USERS / 2).await;
    fleet.connection("handed", 8, &[]).await;
    fleet.enqueue("handed");
    let first = fleet.worker("first", "30", &[]);
    fleet.held_mid_run(&[&first]).await;
    first.signal("-TERM");
    let mut first = first;
    let _ = first.child.wait();
    assert!(
        first.log().contains("handed the run of `w/handed` back"),
        "{}",
        first.log()
    );
    // Resumed at once, not after the 30 s lease.
    let second = fleet.worker("second", "30", &[]);
    fleet
        .drained(Duration::from_secs(120), &[&first, &second])
        .await;
    let runs = fleet.store.runs(None, 10).await.unwrap();
    assert_eq!(attempts(&runs, "handed"), vec![(RunStatus::Succeeded, 2)]);
    fleet.assert_every_user_once(&["handed"]).await;
}

/// Found in review: a job kept the labels it was queued with, so a residency rule added to the
/// connection afterwards did not hold for that run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_added_after_queueing_still_hold() {
    let fleet = Fleet::new(3_000).await;
    fleet.connection("moved", 9, &[]).await;
    fleet.enqueue("moved");
    // Now it may run in the eu only.
    let mut def = fleet
        .store
        .connection_def("w", "moved")
        .await
        .unwrap()
        .unwrap();
    def.settings["labels"] = json!({ "region": "eu" });
    fleet.store.put_connection(&def).await.unwrap();
    let us = fleet.worker("us", "5", &["region=us"]);
    // The us worker claims it, finds it may not run it, and hands it back with its labels
    // (the log line comes just before the job is updated: wait for the queue).
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let q = fleet.store.queued_runs().await.unwrap();
        assert_eq!(q.len(), 1, "{q:?}");
        if us.log().contains("handed back")
            && q[0].worker.is_none()
            && q[0].labels.get("region").map(String::as_str) == Some("eu")
        {
            break;
        }
        assert!(Instant::now() < until, "{q:?}\n{}", us.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let eu = fleet.worker("eu", "5", &["region=eu"]);
    fleet.drained(Duration::from_secs(60), &[&us, &eu]).await;
    assert!(
        eu.log().contains("claimed the run of `w/moved`"),
        "{}",
        eu.log()
    );
    assert!(
        !us.log().contains("run of `w/moved` started"),
        "{}",
        us.log()
    );
    fleet.assert_every_user_once(&["moved"]).await;
}
