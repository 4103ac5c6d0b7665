//! The PostgreSQL server the tests run against: started by `cargo xtask test` (a throwaway
//! cluster on loopback) and found here through `SLUICE_TEST_PG_URL` / `SLUICE_TEST_PG_PASSWORD`.
//! A test that needs it and does not find it fails, saying how to get one: it never passes
//! silently.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection, Row};

/// The server.
pub struct Pg {
    /// Host and port, `127.0.0.1:PORT`.
    pub authority: String,
    /// The user the cluster was created with (a superuser: sluice's checks must hold even with
    /// credentials broader than they should be).
    pub user: String,
    /// Its password.
    pub password: String,
    /// The server's `bin` directory (`psql` for the benchmark).
    pub bin: PathBuf,
}

/// The server, or a panic that says how to start one.
pub fn pg() -> Pg {
    let url = std::env::var("SLUICE_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "this test needs a PostgreSQL server: run the suite with `cargo xtask test`, which \
             starts a throwaway one on loopback (and installs Debian's `postgresql` package if \
             needed), or set SLUICE_TEST_PG_URL, SLUICE_TEST_PG_PASSWORD and SLUICE_TEST_PG_BIN"
        )
    });
    let rest = url.strip_prefix("postgres://").expect("a postgres:// URL");
    let (user, rest) = rest.split_once('@').expect("user@host");
    let authority = rest.split('/').next().unwrap_or(rest).to_string();
    Pg {
        authority,
        user: user.to_string(),
        password: std::env::var("SLUICE_TEST_PG_PASSWORD").unwrap_or_default(),
        bin: std::env::var_os("SLUICE_TEST_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_default(),
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh database of its own for one test, with the least-privilege roles sluice should be
/// given: a writer that owns schema `raw` and nothing else, and a reader that reads and writes
/// nothing. Grants connect as those ([`TestDb::grant`]); the test's own queries as the superuser.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// The URL without the password, as a grant writes it before the secret placeholder.
    pub authority: String,
    /// The superuser (the test's own connections).
    pub user: String,
    /// The password of every role here.
    pub password: String,
    /// The role a destination's write grant on `raw` connects as.
    pub writer: String,
    /// The role a source's read grant connects as.
    pub reader: String,
}

impl Pg {
    async fn connect_to(&self, db: &str) -> PgConnection {
        let opts = PgConnectOptions::from_str(&format!(
            "postgres://{}@{}/{db}",
            self.user, self.authority
        ))
        .expect("url")
        .password(&self.password);
        PgConnection::connect_with(&opts)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"))
    }

    /// Create a new, empty database.
    pub async fn database(&self) -> TestDb {
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = self.connect_to("postgres").await;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let db = TestDb {
            writer: format!("{name}_w"),
            reader: format!("{name}_r"),
            name,
            authority: self.authority.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
        };
        let pw = self.password.replace('\'', "''");
        db.exec(&format!(
            "CREATE ROLE {w} LOGIN PASSWORD '{pw}';
             CREATE SCHEMA raw AUTHORIZATION {w};
             CREATE ROLE {r} LOGIN PASSWORD '{pw}';
             GRANT pg_read_all_data TO {r};",
            w = db.writer,
            r = db.reader,
        ))
        .await;
        db
    }
}

impl TestDb {
    /// A connection of the test's own (not through sluice).
    pub async fn connect(&self) -> PgConnection {
        Pg {
            authority: self.authority.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            bin: PathBuf::new(),
        }
        .connect_to(&self.name)
        .await
    }

    /// Run statements (several allowed).
    pub async fn exec(&self, sql: &str) {
        let mut c = self.connect().await;
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The rows of a query as JSON objects.
    pub async fn rows(&self, sql: &str) -> Vec<serde_json::Value> {
        let mut c = self.connect().await;
        let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) AS q");
        sqlx::query(AssertSqlSafe(wrapped))
            .fetch_all(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .map(|r| serde_json::from_str(r.get::<&str, _>(0)).unwrap())
            .collect()
    }

    /// One integer.
    pub async fn count(&self, sql: &str) -> i64 {
        let mut c = self.connect().await;
        sqlx::query(AssertSqlSafe(sql.to_string()))
            .fetch_one(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get::<i64, _>(0)
    }

    /// The `[[…grant.sql]]` and secret TOML that grants this database to one side of a
    /// connection as `name`, with `extra` lines (schema, timeout) in the sql entry: a source
    /// connects as the reader, a destination as the writer (which owns schema `raw`).
    pub fn grant(&self, side: &str, name: &str, extra: &str) -> String {
        let user = if side == "source" {
            &self.reader
        } else {
            &self.writer
        };
        self.grant_as(user, side, name, extra)
    }

    /// [`TestDb::grant`], connecting as `user`.
    pub fn grant_as(&self, user: &str, side: &str, name: &str, extra: &str) -> String {
        format!(
            r#"
[[{side}.grant.sql]]
name = "{name}"
url = "postgres://{user}:{{{{secret:pg}}}}@{authority}/{db}"
{extra}
[[{side}.grant.secrets]]
name = "pg"
env = "SLUICE_TEST_PG_PASSWORD"
"#,
            authority = self.authority,
            db = self.name,
        )
    }

    /// A URL for `user` here, password included (for a session of the test's own making).
    pub fn url_as(&self, user: &str) -> String {
        format!(
            "postgres://{user}:{}@{}/{}",
            self.password, self.authority, self.name
        )
    }
}
