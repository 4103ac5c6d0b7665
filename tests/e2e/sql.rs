//! Databases through the host: source-postgres into destination-postgres and
//! destination-sqlite against a real PostgreSQL, and connectors that try to escape their SQL
//! grants (each attempt refused at the host, recorded, and the database left as it was).

use serde_json::{Value, json};
use sluice::boundary::events::{Capability, Outcome};
use sluice::sync::RunReport;
use sluice_tests::pg::{TestDb, pg};
use sluice_tests::{Scratch, connector, test_connector, toml_path};

const USERS: i64 = 2500;

/// A `users` table with every kind of column the connectors map, and a table in another
/// schema no destination is granted.
async fn seed(db: &TestDb) {
    db.exec(&format!(
        "CREATE TABLE users (
             id bigint PRIMARY KEY, name text NOT NULL, email text, score numeric,
             active boolean, tags jsonb, updated_at timestamptz NOT NULL);
         INSERT INTO users
             SELECT i, 'user ' || i, 'u' || i || '@example.com', i * 1.5, i % 2 = 0,
                    jsonb_build_object('n', i, 'list', jsonb_build_array('a', i)),
                    timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'
             FROM generate_series(1, {USERS}) i;"
    ))
    .await;
}

const COLUMNS: &str = "id, name, email, score, active, tags, updated_at";

fn connection(source: &str, destination: &str, streams: &str) -> String {
    format!(
        r#"
name = "pg"
[source]
{source}
[destination]
{destination}
{streams}
"#
    )
}

fn pg_source(db: &TestDb, config: &str, grant_extra: &str) -> String {
    format!(
        "connector = {}\nconfig = {config}\n{}",
        toml_path(&connector("source-postgres")),
        db.grant("source", "db", grant_extra)
    )
}

fn pg_destination(db: &TestDb) -> String {
    format!(
        "connector = {}\n{}",
        toml_path(&connector("destination-postgres")),
        db.grant("destination", "warehouse", "schema = \"raw\"")
    )
}

fn sqlite_destination() -> String {
    format!(
        "connector = {}\n[[destination.grant.sql]]\nname = \"warehouse\"\nsqlite = \"wh.db\"\ntable_prefix = \"raw_\"\n",
        toml_path(&connector("destination-sqlite"))
    )
}

fn users_stream(sync: &str, mode: &str) -> String {
    let cursor = if sync == "incremental" {
        "cursor_field = [\"updated_at\"]\n"
    } else {
        ""
    };
    format!(
        "[[streams]]\nname = \"users\"\nsync_mode = \"{sync}\"\ndestination_mode = \"{mode}\"\n{cursor}"
    )
}

#[track_caller]
fn assert_ok(r: &RunReport) {
    assert!(
        r.succeeded(),
        "the run failed: {:?}\nlog: {:#?}\nevents: {:#?}",
        r.error,
        r.log,
        r.events
    );
}

fn records(r: &RunReport, stream: &str) -> u64 {
    r.streams
        .iter()
        .find(|s| s.stream == stream)
        .map_or(0, |s| s.records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_postgres_copies_every_row_and_value() {
    let server = pg();
    let src = server.database().await;
    let dst = server.database().await;
    seed(&src).await;
    let s = Scratch::new();
    s.write(
        "c.toml",
        &connection(
            &pg_source(&src, "{ page_size = 700 }", ""),
            &pg_destination(&dst),
            &users_stream("full_refresh", "overwrite"),
        ),
    );
    let r = s.run("c.toml").await;
    assert_ok(&r);
    assert_eq!(records(&r, "users"), USERS as u64);
    // `numeric` arrives as `double precision` (the JSON schema says number): compare it as one.
    let q = |t: &str| format!("SELECT {COLUMNS}, score::float8 AS score FROM {t} ORDER BY id");
    let want = src.rows(&q("users")).await;
    let got = dst.rows(&q("raw.users")).await;
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "every value arrives as it was");
    }

    // Overwrite: a second run replaces, it does not add.
    let r = s.run("c.toml").await;
    assert_ok(&r);
    assert_eq!(dst.count("SELECT count(*) FROM raw.users").await, USERS);
    // Nothing outside the granted schema was created.
    assert_eq!(
        dst.count("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_sqlite_lands_in_the_embedded_warehouse() {
    let server = pg();
    let src = server.database().await;
    seed(&src).await;
    let s = Scratch::new();
    s.write(
        "c.toml",
        &connection(
            &pg_source(&src, "{}", ""),
            &sqlite_destination(),
            &users_stream("full_refresh", "overwrite"),
        ),
    );
    let r = s.run("c.toml").await;
    assert_ok(&r);
    let want = src
        .rows(&format!("SELECT {COLUMNS} FROM users ORDER BY id"))
        .await;
    let file = s.data_dir().join("warehouse").join("wh.db");
    let got = sqlite_rows(
        &file,
        &format!("SELECT {COLUMNS} FROM raw_users ORDER BY id"),
    )
    .await;
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["id"], w["id"]);
        assert_eq!(g["name"], w["name"]);
        assert_eq!(g["email"], w["email"]);
        assert_eq!(g["score"].as_f64(), w["score"].as_f64());
        assert_eq!(g["active"] == json!(1), w["active"] == json!(true));
        let tags: Value = serde_json::from_str(g["tags"].as_str().unwrap()).unwrap();
        assert_eq!(tags, w["tags"], "nested objects as JSON text");
        assert_eq!(g["updated_at"], w["updated_at"]);
    }
}

/// Rows of a SQLite file as JSON objects (integers, reals and text as they are stored).
async fn sqlite_rows(file: &std::path::Path, sql: &str) -> Vec<Value> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};
    let mut c = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(file))
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", file.display()));
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(&mut c)
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let mut obj = serde_json::Map::new();
            for (i, col) in row.columns().iter().enumerate() {
                let raw = row.try_get_raw(i).unwrap();
                let v = if raw.is_null() {
                    Value::Null
                } else {
                    match raw.type_info().name() {
                        "INTEGER" => json!(row.get::<i64, _>(i)),
                        "REAL" => json!(row.get::<f64, _>(i)),
                        _ => json!(row.get::<String, _>(i)),
                    }
                };
                obj.insert(col.name().to_string(), v);
            }
            Value::Object(obj)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_move_only_changed_rows_and_dedup_keeps_one_per_key() {
    let server = pg();
    let src = server.database().await;
    let dst = server.database().await;
    seed(&src).await;
    let s = Scratch::new();
    s.write(
        "c.toml",
        &connection(
            &pg_source(&src, "{ page_size = 1000 }", ""),
            &pg_destination(&dst),
            &users_stream("incremental", "append_dedup"),
        ),
    );
    let r = s.run("c.toml").await;
    assert_ok(&r);
    assert_eq!(records(&r, "users"), USERS as u64);

    // Ten rows change, five are new.
    src.exec(
        "UPDATE users SET name = 'changed ' || id, updated_at = now() WHERE id % 250 = 0;
         INSERT INTO users SELECT i, 'new ' || i, NULL, NULL, NULL, NULL, now()
             FROM generate_series(100001, 100005) i;",
    )
    .await;
    let r = s.run("c.toml").await;
    assert_ok(&r);
    assert_eq!(records(&r, "users"), 15, "only what changed moves");
    assert_eq!(dst.count("SELECT count(*) FROM raw.users").await, USERS + 5);
    assert_eq!(
        dst.count("SELECT count(DISTINCT id) FROM raw.users").await,
        USERS + 5,
        "one row per key"
    );
    assert_eq!(
        dst.count("SELECT count(*) FROM raw.users WHERE name LIKE 'changed %'")
            .await,
        10,
        "the newest version of each changed row"
    );
    // A third run with nothing new moves nothing.
    let r = s.run("c.toml").await;
    assert_ok(&r);
    assert_eq!(records(&r, "users"), 0);

    // The same into SQLite: dedup there too.
    let s2 = Scratch::new();
    s2.write(
        "c.toml",
        &connection(
            &pg_source(&src, "{}", ""),
            &sqlite_destination(),
            &users_stream("incremental", "append_dedup"),
        ),
    );
    assert_ok(&s2.run("c.toml").await);
    src.exec("UPDATE users SET name = 'again', updated_at = now() WHERE id <= 3")
        .await;
    let r = s2.run("c.toml").await;
    assert_ok(&r);
    assert_eq!(records(&r, "users"), 3);
    let file = s2.data_dir().join("warehouse").join("wh.db");
    let n = sqlite_rows(
        &file,
        "SELECT count(*) AS n, count(DISTINCT id) AS d FROM raw_users",
    )
    .await;
    assert_eq!(n[0]["n"], json!(USERS + 5));
    assert_eq!(n[0]["d"], json!(USERS + 5));
    let again = sqlite_rows(
        &file,
        "SELECT count(*) AS n FROM raw_users WHERE name = 'again'",
    )
    .await;
    assert_eq!(again[0]["n"], json!(3));
}

/// The outcome the hostile destination logged for each statement, in order.
fn attack_outcomes(r: &RunReport) -> Vec<(String, String)> {
    r.log
        .iter()
        .filter_map(|l| {
            let rest = l.message.strip_prefix("attack ")?;
            let (_, rest) = rest.split_once(": ")?;
            let (outcome, message) = rest.split_once(": ")?;
            Some((outcome.to_string(), message.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_cannot_reach_outside_its_schema() {
    let server = pg();
    let db = server.database().await;
    db.exec(
        "CREATE TABLE public.secrets (id int PRIMARY KEY, value text);
         INSERT INTO public.secrets VALUES (1, 'a'), (2, 'b'), (3, 'c');
         CREATE FUNCTION public.wipe() RETURNS int LANGUAGE sql AS
             $$ DELETE FROM public.secrets; SELECT 1 $$;",
    )
    .await;
    let pwned = std::env::temp_dir().join(format!("sluice-pwned-{}", std::process::id()));
    let attacks = [
        "DROP TABLE public.secrets".to_string(),
        "ALTER TABLE public.secrets ADD COLUMN x int".into(),
        "CREATE ROLE evil LOGIN SUPERUSER PASSWORD 'x'".into(),
        format!("COPY public.secrets TO PROGRAM 'touch {}'", pwned.display()),
        "SET search_path = public".into(),
        "SET ROLE postgres".into(),
        "CREATE TABLE mine (x int); DROP TABLE public.secrets".into(),
        "DELETE FROM \"public\".\"secrets\"".into(),
        "INSERT INTO mine SELECT id FROM public.secrets".into(),
        "SELECT public.wipe()".into(),
        "SELECT pg_terminate_backend(pg_backend_pid())".into(),
        "GRANT ALL ON public.secrets TO PUBLIC".into(),
        "DO $$ BEGIN EXECUTE 'DROP TABLE public.secrets'; END $$".into(),
    ];
    // What the grant does allow, around the attacks: the host keeps serving.
    let mut statements = vec![
        "CREATE SCHEMA IF NOT EXISTS raw".to_string(),
        "CREATE TABLE mine (x int)".into(),
    ];
    statements.extend(attacks.iter().cloned());
    statements.push("INSERT INTO mine VALUES (42)".into());
    let list = serde_json::to_string(&statements).unwrap();
    let s = Scratch::new();
    s.write(
        "c.toml",
        &connection(
            &format!(
                "connector = {}\nconfig = {{ count = 10 }}",
                toml_path(&connector("source-faker"))
            ),
            &format!(
                "connector = {}\nconfig = {{ statements = {list} }}\n{}",
                toml_path(&test_connector("hostile-destination")),
                db.grant("destination", "warehouse", "schema = \"raw\"")
            ),
            "",
        ),
    );
    let r = s.run("c.toml").await;
    assert_ok(&r);
    let outcomes = attack_outcomes(&r);
    assert_eq!(outcomes.len(), statements.len(), "{:#?}", r.log);
    assert_eq!(outcomes[0].0, "ok", "{:?}", outcomes[0]);
    assert_eq!(outcomes[1].0, "ok", "{:?}", outcomes[1]);
    for (i, attack) in attacks.iter().enumerate() {
        let (outcome, message) = &outcomes[i + 2];
        assert_eq!(outcome, "refused", "{attack}: {message}");
        assert!(
            message.contains("refused by the `"),
            "names the rule: {message}"
        );
    }
    assert_eq!(outcomes.last().unwrap().0, "ok", "the host keeps serving");

    // Recorded as refusals.
    let refused: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.capability == Capability::Sql && e.outcome == Outcome::Refused)
        .collect();
    assert_eq!(refused.len(), attacks.len(), "{refused:#?}");
    let stored = s.store().await.events(r.run_id).await.unwrap();
    assert!(
        stored
            .iter()
            .any(|e| e.capability == Capability::Sql && e.outcome == Outcome::Refused)
    );

    // And the database shows no change.
    assert_eq!(db.count("SELECT count(*) FROM public.secrets").await, 3);
    assert_eq!(
        db.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'secrets'")
            .await,
        2
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_roles WHERE rolname = 'evil'")
            .await,
        0
    );
    assert!(!pwned.exists(), "COPY … TO PROGRAM ran");
    assert_eq!(db.count("SELECT count(*) FROM raw.mine").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_only_reads_even_through_a_function_that_writes() {
    let server = pg();
    let db = server.database().await;
    seed(&db).await;
    db.exec(
        "CREATE FUNCTION public.wipe() RETURNS int LANGUAGE sql AS
             $$ DELETE FROM public.users; SELECT 1 $$;",
    )
    .await;
    let attacks = [
        (
            "INSERT INTO users (id, name, updated_at) VALUES (0, 'x', now())",
            "refused",
        ),
        ("UPDATE users SET name = 'pwned'", "refused"),
        ("DELETE FROM users", "refused"),
        ("SELECT * FROM users FOR UPDATE", "refused"),
        (
            "SELECT set_config('default_transaction_read_only', 'off', false)",
            "refused",
        ),
        (
            "WITH d AS (DELETE FROM users RETURNING id) SELECT * FROM d",
            "refused",
        ),
        ("SELECT count(*) FROM users; DELETE FROM users", "refused"),
        // Past the parser (a function it cannot see into): the read-only session refuses it.
        ("SELECT public.wipe()", "error"),
        // Slow queries stop at the deadline.
        ("SELECT pg_sleep(30)", "timeout"),
        ("SELECT count(*) AS n FROM users", "ok"),
    ];
    let list: Vec<&str> = attacks.iter().map(|(a, _)| *a).collect();
    let s = Scratch::new();
    s.write(
        "c.toml",
        &format!(
            r#"
name = "hostile"
[source]
connector = {src}
config = {{ attack = "sql", statements = {list} }}
{grant}
[destination]
connector = {dst}
config = {{ path = "/output" }}
[[destination.grant.dirs]]
host = "out"
guest = "/output"
"#,
            src = toml_path(&test_connector("hostile-source")),
            list = serde_json::to_string(&list).unwrap(),
            grant = db.grant("source", "db", "statement_timeout_secs = 1"),
            dst = toml_path(&connector("destination-file")),
        ),
    );
    let started = std::time::Instant::now();
    let r = s.run("c.toml").await;
    assert_ok(&r);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "pg_sleep(30) was not cut at its deadline"
    );
    let loot = sluice_tests::read_jsonl(&s.path("out/loot.jsonl"));
    assert_eq!(loot.len(), attacks.len());
    for (got, (sql, want)) in loot.iter().zip(attacks) {
        assert_eq!(got["outcome"], want, "{sql}: {}", got["message"]);
    }
    assert!(
        loot[7]["message"]
            .as_str()
            .unwrap()
            .contains("read-only transaction"),
        "{}",
        loot[7]["message"]
    );
    assert!(
        loot[8]["message"].as_str().unwrap().contains("deadline"),
        "{}",
        loot[8]["message"]
    );
    assert_eq!(db.count("SELECT count(*) FROM users").await, USERS);
    assert_eq!(
        db.count("SELECT count(*) FROM users WHERE name = 'pwned'")
            .await,
        0
    );
    let refusals = r
        .events
        .iter()
        .filter(|e| e.capability == Capability::Sql && e.outcome == Outcome::Refused)
        .count();
    assert_eq!(refusals, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_checked_before_anything_connects() {
    let server = pg();
    let db = server.database().await;
    // A destination given a database it did not ask for by that name, and a source given none.
    let s = Scratch::new();
    s.write(
        "c.toml",
        &connection(
            &format!(
                "connector = {}\nconfig = {{}}",
                toml_path(&connector("source-postgres"))
            ),
            &format!(
                "connector = {}\n{}",
                toml_path(&connector("destination-postgres")),
                db.grant("destination", "other", "schema = \"raw\"")
            ),
            "",
        ),
    );
    let conn = sluice::connection::Connection::load(&s.path("c.toml")).unwrap();
    let store = s.store().await;
    let r = sluice::sync::run(
        &sluice_tests::runtime(),
        &store,
        &conn,
        sluice::sync::RunOptions::default(),
    )
    .await
    .unwrap();
    let err = r.error.expect("refused").to_string();
    assert!(
        err.contains("destination.grant.sql[0]") && err.contains("asks for warehouse"),
        "{err}"
    );
    assert!(
        r.events
            .iter()
            .any(|e| e.outcome == Outcome::Refused && e.detail.contains("`other`")),
        "the refusal is recorded: {:#?}",
        r.events
    );
}

#[test]
fn kill_9_during_a_postgres_sync_then_rerun_leaves_exactly_the_source_rows() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    const N: u64 = 60_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = pg();
    let db = rt.block_on(server.database());
    let s = Scratch::new();
    s.write(
        "c.toml",
        &format!(
            "{}\n[limits]\ncheckpoint_interval_secs = 0.005\nbatch_records = 500\n",
            connection(
                &format!(
                    "connector = {}\nconfig = {{ count = {N}, seed = 3 }}",
                    toml_path(&connector("source-faker"))
                ),
                &pg_destination(&db),
                &users_stream("incremental", "append_dedup"),
            )
        ),
    );
    let run = || {
        let mut cmd = Command::new(sluice_tests::sluice_bin());
        cmd.arg("--data-dir")
            .arg(s.data_dir())
            .arg("run")
            .arg(s.path("c.toml"))
            .arg("--json")
            .env("SLUICE_TEST_PG_PASSWORD", &server.password)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let committed = || -> Option<String> {
        rt.block_on(async {
            let store = s.store().await;
            store
                .states("pg")
                .await
                .unwrap()
                .into_iter()
                .find(|c| c.state.stream == "users")
                .map(|c| c.state.state)
        })
    };
    let mut child = run().spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_kill = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the run ended ({status}) before it could be killed: {err}");
        }
        if s.data_dir().join("sluice.db").exists()
            && let Some(st) = committed()
            && crate::resume::cursor_id(&st) >= N / 4
        {
            break st;
        }
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // The committed checkpoint at the moment of death is never ahead of the committed rows.
    let at_kill = committed().unwrap_or(at_kill);
    let cursor = crate::resume::cursor_id(&at_kill) as i64;
    let upto = serde_json::from_str::<Value>(&at_kill).unwrap()["updated_at"]
        .as_str()
        .unwrap()
        .to_string();
    let held = rt.block_on(db.count(&format!(
        "SELECT count(DISTINCT id) FROM raw.users WHERE id <= {cursor}"
    )));
    assert_eq!(held, cursor, "state at {upto} is ahead of the rows");

    // Rerun: it resumes, and append-dedup leaves exactly the source's rows.
    let out = run().output().unwrap();
    assert!(
        out.status.success(),
        "the rerun failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        rt.block_on(db.count("SELECT count(*) FROM raw.users")),
        N as i64
    );
    assert_eq!(
        rt.block_on(db.count("SELECT count(DISTINCT id) FROM raw.users")),
        N as i64
    );
    assert_eq!(
        rt.block_on(db.count("SELECT max(id) FROM raw.users")),
        N as i64
    );
}

/// The host's sessions directly: what connectors get through `sql`, without a connector.
mod sessions {
    use std::sync::Arc;
    use std::time::Duration;

    use secrecy::SecretString;
    use sluice::boundary::events::EventLog;
    use sluice::capability::sql::{Database, Scope, Session, SqlError, Target, Value};
    use sluice_tests::pg::{TestDb, pg};

    fn database(db: &TestDb, scope: Scope) -> Arc<Database> {
        let user = match scope {
            Scope::Read => &db.reader,
            Scope::Write(_) => &db.writer,
        };
        Arc::new(Database {
            name: "wh".into(),
            target: Target::Postgres(SecretString::from(db.url_as(user))),
            scope,
            statement_timeout: Duration::from_secs(5),
            allow_broad_role: false,
        })
    }

    async fn open(db: &TestDb, scope: Scope) -> Session {
        Session::open(database(db, scope), "test".into(), EventLog::new())
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_row_in_a_pipelined_load_fails_the_commit_and_nothing_lands() {
        let db = pg().database().await;
        let mut s = open(&db, Scope::Write("raw".into())).await;
        s.execute("CREATE SCHEMA IF NOT EXISTS raw", vec![])
            .await
            .unwrap();
        s.execute("CREATE TABLE t (x bigint, y text)", vec![])
            .await
            .unwrap();
        let cols = vec!["x".to_string(), "y".to_string()];
        // Outside a transaction a load is checked before it returns.
        let n = s
            .load("t", &cols, b"{\"x\":1,\"y\":\"a\"}\n")
            .await
            .unwrap();
        assert_eq!(n, 1);
        let e = s.load("t", &cols, b"{\"x\":\"one\"}\n").await.unwrap_err();
        assert!(
            matches!(&e, SqlError::Database { code, .. } if code == "22P02"),
            "{e:?}"
        );
        // Inside one, the error surfaces by the commit at the latest, and nothing is kept.
        s.begin().await.unwrap();
        s.load("t", &cols, b"{\"x\":2}\n{\"x\":3,\"extra\":true}\n")
            .await
            .unwrap();
        let bad = s.load("t", &cols, b"{\"x\":\"two\"}\n").await;
        let commit = s.commit().await;
        assert!(bad.is_err() || commit.is_err(), "the bad row was accepted");
        drop(s);
        assert_eq!(db.count("SELECT count(*) FROM raw.t").await, 1);

        // A good pipelined load commits everything, fields outside the columns ignored.
        let mut s = open(&db, Scope::Write("raw".into())).await;
        s.begin().await.unwrap();
        for i in 0..3 {
            let batch = format!("{{\"x\":{i},\"y\":\"b\\\"q\"}}\n");
            s.load("t", &cols, batch.as_bytes()).await.unwrap();
        }
        s.commit().await.unwrap();
        assert_eq!(db.count("SELECT count(*) FROM raw.t").await, 4);
        assert_eq!(
            db.count("SELECT count(*) FROM raw.t WHERE y = 'b\"q'")
                .await,
            3,
            "quotes survive the CSV"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_stream_and_the_connection_comes_back_when_they_are_dropped() {
        let db = pg().database().await;
        db.exec("CREATE TABLE n AS SELECT i FROM generate_series(1, 50000) i")
            .await;
        let mut s = open(&db, Scope::Read).await;
        let mut rows = s
            .query(
                "SELECT i FROM n WHERE i > $1 ORDER BY i",
                vec![Value::Int(10)],
            )
            .await
            .unwrap();
        let first = rows.next(3).await.unwrap().unwrap();
        assert_eq!(first, b"{\"i\":11}\n{\"i\":12}\n{\"i\":13}\n");
        // Busy while the rows are open…
        let e = s.query("SELECT 1 AS one", vec![]).await.err().unwrap();
        assert!(matches!(e, SqlError::Invalid(_)), "{e:?}");
        // …and usable again once they are dropped half-read.
        drop(rows);
        let mut again = s
            .query("SELECT count(*) AS c FROM n", vec![])
            .await
            .unwrap();
        assert_eq!(again.next(10).await.unwrap().unwrap(), b"{\"c\":50000}\n");
        assert_eq!(again.next(10).await.unwrap(), None);
        // A parameter marked JSON must be JSON: it is refused, not bound as something else.
        drop(again);
        let e = s
            .query(
                "SELECT $1::jsonb AS j",
                vec![Value::Json("{not json".into())],
            )
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&e, SqlError::Invalid(m) if m.contains("parameter 1")),
            "{e:?}"
        );
        let mut ok = s
            .query(
                "SELECT $1::jsonb AS j",
                vec![Value::Json("{\"a\":[1]}".into())],
            )
            .await
            .unwrap();
        assert_eq!(
            ok.next(1).await.unwrap().unwrap(),
            b"{\"j\":{\"a\": [1]}}\n"
        );
        drop(ok);
        // A read session refuses writes at the host.
        let e = s.execute("DELETE FROM n", vec![]).await.unwrap_err();
        assert!(matches!(e, SqlError::Refused(_)), "{e:?}");
    }
}
