//! The SQL destinations' benchmark: faker users through the sandbox into destination-postgres
//! and destination-sqlite (the host parses each batch once and bulk-loads it: `COPY … FROM
//! STDIN` / prepared multi-row inserts), next to `psql \copy` of the very same rows as CSV into
//! the same table shape, in the same run, repetitions interleaved so machine noise hits all
//! alike. The figure that matters is the ratio to `\copy`.
//!
//! `cargo xtask bench --bench sql` (it builds the connectors and starts PostgreSQL). Knobs:
//! SLUICE_BENCH_USERS (default 1,000,000), SLUICE_BENCH_REPS (default 3).

use std::process::Command;
use std::time::Instant;

use sluice_tests::bench::{env_u64, median};
use sluice_tests::pg::{TestDb, pg};
use sluice_tests::{Scratch, connector, toml_path};

fn connection(users: u64, destination: &str) -> String {
    format!(
        r#"
name = "bench"
[source]
connector = {faker}
config = {{ count = {users}, seed = 7 }}
[destination]
{destination}
[[streams]]
name = "users"
destination_mode = "overwrite"
[limits]
batch_records = 5000
checkpoint_interval_secs = 5
"#,
        faker = toml_path(&connector("source-faker")),
    )
}

/// One sandboxed run; seconds.
async fn sandboxed(s: &Scratch, users: u64) -> f64 {
    let start = Instant::now();
    let r = s.run("c.toml").await;
    let secs = start.elapsed().as_secs_f64();
    assert!(r.succeeded(), "the run failed: {:?}", r.error);
    let moved: u64 = r.streams.iter().map(|s| s.records).sum();
    assert_eq!(moved, users);
    secs
}

fn psql(db: &TestDb, command: &str) -> f64 {
    let server = pg();
    let start = Instant::now();
    let out = Command::new(server.bin.join("psql"))
        .arg(format!(
            "postgres://{}@{}/{}",
            db.user, db.authority, db.name
        ))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", command])
        .env("PGPASSWORD", &db.password)
        .output()
        .expect("psql (the server's bin dir is in SLUICE_TEST_PG_BIN)");
    let secs = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "psql {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

#[tokio::main]
async fn main() {
    let users = env_u64("SLUICE_BENCH_USERS", 1_000_000);
    let reps = env_u64("SLUICE_BENCH_REPS", 3).max(1);
    let server = pg();
    let db = server.database().await;

    let to_pg = Scratch::new();
    to_pg.write(
        "c.toml",
        &connection(
            users,
            &format!(
                "connector = {}\n{}",
                toml_path(&connector("destination-postgres")),
                db.grant("destination", "warehouse", "schema = \"raw\"")
            ),
        ),
    );
    let to_sqlite = Scratch::new();
    to_sqlite.write(
        "c.toml",
        &connection(
            users,
            &format!(
                "connector = {}\n[[destination.grant.sql]]\nname = \"warehouse\"\nsqlite = \"wh.db\"\ntable_prefix = \"raw_\"\n",
                toml_path(&connector("destination-sqlite"))
            ),
        ),
    );

    // Warm-up (compiles the components into the cache, creates the table), then the baseline's
    // input: the same rows as CSV, and a table of the same shape.
    sandboxed(&to_pg, users).await;
    let csv = to_pg.path("users.csv");
    psql(
        &db,
        &format!("\\copy raw.users TO '{}' WITH (FORMAT csv)", csv.display()),
    );
    db.exec("CREATE TABLE public.copy_users (LIKE raw.users)")
        .await;
    let csv_bytes = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0);

    let (mut pg_secs, mut lite_secs, mut copy_secs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        pg_secs.push(sandboxed(&to_pg, users).await);
        db.exec("TRUNCATE public.copy_users").await;
        copy_secs.push(psql(
            &db,
            &format!(
                "\\copy public.copy_users FROM '{}' WITH (FORMAT csv)",
                csv.display()
            ),
        ));
        lite_secs.push(sandboxed(&to_sqlite, users).await);
    }
    assert_eq!(
        db.count("SELECT count(*) FROM public.copy_users").await,
        users as i64
    );
    let (p, c, l) = (
        median(pg_secs.clone()),
        median(copy_secs.clone()),
        median(lite_secs.clone()),
    );
    let rate = |secs: f64| users as f64 / secs;
    println!("## SQL destinations ({users} faker users, median of {reps})\n");
    println!("| path | seconds | rows/s | vs `psql \\copy` |\n| --- | --- | --- | --- |");
    println!(
        "| `psql \\copy` of the same rows as CSV ({:.0} MiB) | {c:.2} | {:.0} | 1.00 |",
        csv_bytes as f64 / (1 << 20) as f64,
        rate(c)
    );
    println!(
        "| faker → destination-postgres, sandboxed | {p:.2} | {:.0} | {:.2} |",
        rate(p),
        c / p
    );
    println!(
        "| faker → destination-sqlite, sandboxed | {l:.2} | {:.0} | {:.2} |",
        rate(l),
        c / l
    );
    println!(
        "\nall runs (s): postgres {pg_secs:.2?}, \\copy {copy_secs:.2?}, sqlite {lite_secs:.2?}"
    );
}
