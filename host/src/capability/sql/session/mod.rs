//! One connector's session with one granted database.
//!
//! Every statement of the connector's passes the policy ([`super::policy`], on its own stack) and
//! runs as the policy's proven rendering, one statement per call: PostgreSQL gets it through the
//! extended protocol only (one statement by construction), SQLite compiles it once first and
//! refuses any second statement in the text. The database is the second wall: a SQLite session
//! carries the authorizer of `sluice-sql-wall`, a PostgreSQL session is handed out only if its
//! role is no broader than the grant ([`super::role`]); a read session is read-only at the
//! database too (PostgreSQL `default_transaction_read_only`, SQLite opened read-only with
//! `query_only`). Every statement has a deadline (`statement_timeout`, `lock_timeout` and
//! `idle_in_transaction_session_timeout` at the database, and the host's own timer).
//!
//! Rows stream: a query's task owns the connection while it sends rows through a bounded channel,
//! so a large result never sits in memory, and hands the connection back when the rows are read
//! or dropped.

use std::borrow::Cow;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::ExposeSecret;
use serde_json::value::RawValue;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
// Every dynamic statement here is either the policy's re-rendering of a checked statement or
// built from checked names and quoted identifiers: `AssertSqlSafe` marks those places.
use sqlx::{AssertSqlSafe, Column, Connection, Row, TypeInfo, ValueRef};
use tokio::sync::{mpsc, oneshot};

use sluice_sql_wall::sqlite::{self as lite_wall, NotOne, Wall};

mod connect;
mod load;
mod rows;

use connect::{
    audit_tables, check_role, connect, install_deadline_only, install_wall, lite_defaults,
};
use load::csv::{copy_statement, to_csv};
use load::{load_lite, load_pg};
use rows::stream_rows;

use super::policy::{self, Checked, Dialect, Kind, Refusal, Scope};
use super::{Database, Target, checker, role};
use crate::boundary::events::{Capability, EventLog, Outcome};

/// Rows buffered between a query's task and the connector.
const ROW_BUFFER: usize = 4096;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// SQLite's limit on bound variables per statement (we stay well under it).
const SQLITE_MAX_VARS: usize = 30_000;

/// A parameter value (the WIT `value`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `NULL` (bound as text).
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// Text.
    Text(String),
    /// JSON text: `jsonb` in PostgreSQL, text in SQLite.
    Json(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// Why a call did not run, or failed (the WIT `sql-error`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// The grant does not allow it; nothing reached the database.
    #[error("{0}")]
    Refused(String),
    /// The database returned an error.
    #[error("database error {code}: {message}")]
    Database {
        /// SQLSTATE or SQLite result code.
        code: String,
        /// The database's message.
        message: String,
    },
    /// The statement ran past its deadline and was cancelled.
    #[error("{0}")]
    Timeout(String),
    /// The database cannot be reached, or the session is unusable.
    #[error("{0}")]
    Unavailable(String),
    /// The call itself is wrong.
    #[error("{0}")]
    Invalid(String),
}

enum Conn {
    Pg(PgConnection),
    Lite(SqliteConnection),
}

/// A connection lent to a query's task, and a way to see whether its rows are still wanted.
struct Lent {
    back: oneshot::Receiver<Conn>,
    rows: Weak<()>,
}

/// Which walls a session keeps. Always both, except in the tests that prove each wall holds
/// alone; nothing an operator or a connector configures reaches this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walls {
    /// The policy checks (and renders) every statement.
    pub policy: bool,
    /// The database enforces the grant: SQLite's authorizer, the PostgreSQL role check.
    pub database: bool,
}

impl Walls {
    /// Both walls: every session's.
    pub const BOTH: Walls = Walls {
        policy: true,
        database: true,
    };
}

/// A session with one granted database. Dropping it closes the connection; an open
/// transaction is rolled back by the database.
pub struct Session {
    db: Arc<Database>,
    connector: Arc<str>,
    events: EventLog,
    walls: Walls,
    /// SQLite: the authorizer on the connection.
    lite_wall: Option<Wall>,
    conn: Option<Conn>,
    lent: Option<Lent>,
    copy: Option<CopyStream>,
    broken: Option<String>,
    in_tx: bool,
}

/// A `COPY … FROM STDIN` kept open across loads into the same table inside a transaction, so
/// the database ingests one batch while the host prepares the next. Its task owns the
/// connection until the stream is finished.
struct CopyStream {
    statement: String,
    chunks: mpsc::Sender<Vec<u8>>,
    done: oneshot::Receiver<(PgConnection, Result<u64, SqlError>)>,
}

/// CSV chunks queued for an open `COPY` (each is one load's records).
const COPY_QUEUE: usize = 2;

/// The rows of a query, streamed.
pub struct Rows {
    rx: mpsc::Receiver<Result<Vec<u8>, SqlError>>,
    _alive: Arc<()>,
    done: bool,
    deadline: Duration,
}

fn map_err(e: sqlx::Error, db: &Database) -> SqlError {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            // PostgreSQL's query_canceled; SQLite's SQLITE_INTERRUPT (the wall's deadline).
            if code == "57014" || (db.dialect() == Dialect::Sqlite && code == "9") {
                return timeout(db);
            }
            SqlError::Database {
                code,
                message: d.message().to_string(),
            }
        }
        sqlx::Error::Io(e) => {
            SqlError::Unavailable(format!("connection to `{}` lost: {e}", db.name))
        }
        sqlx::Error::Tls(e) => SqlError::Unavailable(format!("TLS with `{}` failed: {e}", db.name)),
        sqlx::Error::Protocol(m) => {
            SqlError::Unavailable(format!("protocol error with `{}`: {m}", db.name))
        }
        other => SqlError::Invalid(other.to_string()),
    }
}

/// How long the host waits for one statement: the database's own deadline and a moment more.
fn limit(db: &Database) -> Duration {
    db.statement_timeout + Duration::from_secs(1)
}

/// `fut` under the host's deadline for one statement.
async fn within<T>(
    db: &Database,
    fut: impl Future<Output = Result<T, SqlError>>,
) -> Result<T, SqlError> {
    tokio::time::timeout(limit(db), fut)
        .await
        .unwrap_or_else(|_| Err(timeout(db)))
}

fn timeout(db: &Database) -> SqlError {
    SqlError::Timeout(format!(
        "the statement ran past its deadline of {:.1}s and was cancelled (raise \
         `grant.sql.statement_timeout_secs` for `{}`, or make the query cheaper)",
        db.statement_timeout.as_secs_f64(),
        db.name
    ))
}

impl Session {
    /// Connect to `db` for `connector`, with both walls; the open is recorded.
    pub async fn open(
        db: Arc<Database>,
        connector: Arc<str>,
        events: EventLog,
    ) -> Result<Session, SqlError> {
        Self::open_with_walls(db, connector, events, Walls::BOTH).await
    }

    /// [`Session::open`] with only some walls: for the tests that prove each wall alone.
    #[doc(hidden)]
    pub async fn open_with_walls(
        db: Arc<Database>,
        connector: Arc<str>,
        events: EventLog,
        walls: Walls,
    ) -> Result<Session, SqlError> {
        let what = match &db.scope {
            Scope::Read => "read-only".to_string(),
            Scope::Write(s) => match db.dialect() {
                Dialect::Postgres => format!("write in schema `{s}`"),
                Dialect::Sqlite => format!("write to tables `{s}…`"),
            },
        };
        let action = format!("open {} ({:?}, {what})", db.name, db.dialect());
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut conn = connect(&db, &connector).await?;
            let wall = match (&mut conn, walls.database) {
                // The deadline is no wall: it holds even in the policy-alone tests.
                (Conn::Lite(c), false) => Some(install_deadline_only(c, &db).await?),
                (Conn::Pg(_), false) => None,
                (Conn::Lite(c), true) => {
                    let wall = install_wall(c, &db).await?;
                    let prefix = match &db.scope {
                        Scope::Write(p) => Some(p.as_str()),
                        Scope::Read => None,
                    };
                    audit_tables(c, &wall, prefix, &db).await?;
                    Some(wall)
                }
                (Conn::Pg(c), true) => {
                    check_role(c, &db, &connector, &events, &action).await?;
                    None
                }
            };
            Ok::<_, SqlError>((conn, wall))
        })
        .await;
        let (conn, lite_wall) = match conn {
            Ok(Ok(c)) => c,
            // The role check recorded its own refusal.
            Ok(Err(e @ SqlError::Refused(_))) => return Err(e),
            Ok(Err(e)) => {
                events.record(
                    &connector,
                    Capability::Sql,
                    Outcome::Failed,
                    &action,
                    &e.to_string(),
                );
                return Err(e);
            }
            Err(_) => {
                let e = SqlError::Unavailable(format!(
                    "connecting to `{}` took longer than {CONNECT_TIMEOUT:?}",
                    db.name
                ));
                events.record(
                    &connector,
                    Capability::Sql,
                    Outcome::Failed,
                    &action,
                    &e.to_string(),
                );
                return Err(e);
            }
        };
        events.record(
            &connector,
            Capability::Sql,
            Outcome::Allowed,
            &action,
            "connected",
        );
        Ok(Session {
            db,
            connector,
            events,
            walls,
            lite_wall,
            conn: Some(conn),
            lent: None,
            copy: None,
            broken: None,
            in_tx: false,
        })
    }

    /// The database's dialect.
    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// The write scope (schema or table prefix), or `None` for a read session.
    pub fn scope(&self) -> Option<&str> {
        match &self.db.scope {
            Scope::Read => None,
            Scope::Write(s) => Some(s),
        }
    }

    fn refused(&self, action: &str, r: policy::Refusal) -> SqlError {
        let msg = format!("`{}`: {r}", self.db.name);
        self.events.record(
            &self.connector,
            Capability::Sql,
            Outcome::Refused,
            action,
            &msg,
        );
        SqlError::Refused(msg)
    }

    /// The connection, back from a query's task if it was lent.
    async fn conn(&mut self) -> Result<&mut Conn, SqlError> {
        if let Some(why) = &self.broken {
            return Err(SqlError::Unavailable(why.clone()));
        }
        self.finish_copy().await?;
        if let Some(lent) = self.lent.take() {
            if lent.rows.strong_count() > 0 {
                self.lent = Some(lent);
                return Err(SqlError::Invalid(
                    "the rows of an earlier query are still open on this connection: read them \
                     to the end or drop them first"
                        .into(),
                ));
            }
            match tokio::time::timeout(self.db.statement_timeout, lent.back).await {
                Ok(Ok(c)) => self.conn = Some(c),
                _ => {
                    let why = format!(
                        "the connection to `{}` was lost while a query streamed",
                        self.db.name
                    );
                    self.broken = Some(why.clone());
                    return Err(SqlError::Unavailable(why));
                }
            }
        }
        self.conn
            .as_mut()
            .ok_or_else(|| SqlError::Unavailable("the connection is gone".into()))
    }

    /// End an open `COPY`, taking the connection back; its error, if the database refused a
    /// row, surfaces here.
    async fn finish_copy(&mut self) -> Result<(), SqlError> {
        let Some(copy) = self.copy.take() else {
            return Ok(());
        };
        drop(copy.chunks);
        match tokio::time::timeout(limit(&self.db), copy.done).await {
            Ok(Ok((conn, result))) => {
                self.conn = Some(Conn::Pg(conn));
                result.map(|_| ())
            }
            Ok(Err(_)) => {
                let why = format!(
                    "the connection to `{}` was lost during a load",
                    self.db.name
                );
                self.broken = Some(why.clone());
                Err(SqlError::Unavailable(why))
            }
            Err(_) => {
                self.broken = Some(format!(
                    "a load into `{}` ran past its deadline; the session was closed",
                    self.db.name
                ));
                Err(timeout(&self.db))
            }
        }
    }

    /// Queue `csv` on the open `COPY` for `statement`, opening it (and ending any other) first.
    async fn copy_pipelined(&mut self, statement: String, csv: Vec<u8>) -> Result<(), SqlError> {
        if self.copy.as_ref().is_some_and(|c| c.statement != statement) {
            self.finish_copy().await?;
        }
        if self.copy.is_none() {
            self.conn().await?;
            let Some(Conn::Pg(conn)) = self.conn.take() else {
                return Err(SqlError::Invalid("not a PostgreSQL session".into()));
            };
            let (chunks, mut rx) = mpsc::channel::<Vec<u8>>(COPY_QUEUE);
            let (done_tx, done) = oneshot::channel();
            let db = self.db.clone();
            let stmt = statement.clone();
            tokio::spawn(async move {
                let mut conn = conn;
                let result = async {
                    let mut copy = conn.copy_in_raw(&stmt).await?;
                    while let Some(chunk) = rx.recv().await {
                        if let Err(e) = copy.send(chunk).await {
                            let _ = copy.abort("sluice: load failed").await;
                            return Err(e);
                        }
                    }
                    copy.finish().await
                }
                .await
                .map_err(|e| map_err(e, &db));
                let _ = done_tx.send((conn, result));
            });
            self.copy = Some(CopyStream {
                statement,
                chunks,
                done,
            });
        }
        let copy = self.copy.as_ref().expect("opened above");
        match tokio::time::timeout(limit(&self.db), copy.chunks.send(csv)).await {
            Ok(Ok(())) => Ok(()),
            // The task stopped early: the database refused something; say what.
            Ok(Err(_)) => match self.finish_copy().await {
                Err(e) => Err(e),
                Ok(()) => Err(SqlError::Unavailable("the load stopped early".into())),
            },
            Err(_) => {
                self.broken = Some(format!(
                    "a load into `{}` ran past its deadline; the session was closed",
                    self.db.name
                ));
                Err(timeout(&self.db))
            }
        }
    }

    /// The statement to run for the connector's `sql`: the policy's proven rendering (or, with
    /// the policy off in a test, the text as it came).
    async fn checked(&self, action: &str, sql: &str, kind: Kind) -> Result<Checked, SqlError> {
        if !self.walls.policy {
            return Ok(Checked {
                sql: sql.to_string(),
                kind,
                ddl: false,
                creates_scope: false,
            });
        }
        checker::check(self.dialect(), &self.db.scope, sql)
            .await
            .map_err(|r| self.refused(action, r))
    }

    /// SQLite: compile `sql` once under the authorizer and prove it is one statement, before
    /// sqlx (which would run every statement of a text) sees it.
    async fn one_statement(&mut self, action: &str, sql: &str) -> Result<(), SqlError> {
        let wall = self.lite_wall.clone();
        let deadline = limit(&self.db);
        let Conn::Lite(c) = self.conn().await? else {
            return Ok(());
        };
        if let Some(w) = &wall {
            w.begin_statement(deadline);
        }
        let mut handle = c
            .lock_handle()
            .await
            .map_err(|e| SqlError::Unavailable(format!("the SQLite connection failed: {e}")))?;
        // SAFETY: the handle is locked: sqlx's worker makes no call on it meanwhile.
        let r = unsafe { lite_wall::prepare_one(handle.as_raw_handle(), sql, wall.as_ref()) };
        drop(handle);
        let refusal = |rule, detail: String| Refusal { rule, detail };
        match r {
            Ok(()) => Ok(()),
            Err(NotOne::Refused(why)) => Err(self.refused(action, refusal("database", why))),
            Err(NotOne::Several) => Err(self.refused(
                action,
                refusal(
                    "one-statement",
                    "SQLite reads more than one statement in the text; send one per call".into(),
                ),
            )),
            Err(NotOne::Empty) => Err(self.refused(
                action,
                refusal("one-statement", "the text holds no statement".into()),
            )),
            Err(NotOne::Nul) => Err(self.refused(
                action,
                refusal(
                    "one-statement",
                    "the text holds a NUL character, where SQLite would stop reading".into(),
                ),
            )),
            Err(NotOne::Error(message)) => Err(SqlError::Database {
                code: "SQLITE_ERROR".into(),
                message,
            }),
        }
    }

    /// An error of the database, or — when SQLite's authorizer refused something only asked for
    /// as the statement ran — the refusal, recorded.
    fn failed(&self, action: &str, e: SqlError) -> SqlError {
        match self.lite_wall.as_ref().and_then(Wall::take_refusal) {
            Some(why) => self.refused(
                action,
                Refusal {
                    rule: "database",
                    detail: why,
                },
            ),
            None => e,
        }
    }

    /// Run a query and stream its rows.
    pub async fn query(&mut self, sql: &str, params: Vec<Value>) -> Result<Rows, SqlError> {
        let checked = self.checked("query", sql, Kind::Query).await?;
        check_params(&params)?;
        if checked.kind == Kind::Execute {
            return Err(SqlError::Invalid(
                "this statement returns no rows: run it with `execute`".into(),
            ));
        }
        self.one_statement("query", &checked.sql).await?;
        let db = self.db.clone();
        let deadline = limit(&db);
        self.conn().await?;
        let conn = self.conn.take().expect("checked above");
        let (tx, rx) = mpsc::channel(ROW_BUFFER);
        let (back_tx, back) = oneshot::channel();
        let alive = Arc::new(());
        self.lent = Some(Lent {
            back,
            rows: Arc::downgrade(&alive),
        });
        let wall = self.lite_wall.clone();
        let (connector, events) = (self.connector.clone(), self.events.clone());
        tokio::spawn(async move {
            let conn = stream_rows(conn, checked, params, tx, db, move |e| {
                match wall.as_ref().and_then(Wall::take_refusal) {
                    Some(why) => {
                        let msg = format!("refused by the `database` rule: {why}");
                        events.record(&connector, Capability::Sql, Outcome::Refused, "query", &msg);
                        SqlError::Refused(msg)
                    }
                    None => e,
                }
            })
            .await;
            let _ = back_tx.send(conn);
        });
        Ok(Rows {
            rx,
            _alive: alive,
            done: false,
            deadline,
        })
    }

    /// Run one statement that returns no rows; how many rows it affected.
    pub async fn execute(&mut self, sql: &str, params: Vec<Value>) -> Result<u64, SqlError> {
        let checked = self.checked("execute", sql, Kind::Execute).await?;
        check_params(&params)?;
        if checked.kind != Kind::Execute {
            return Err(SqlError::Invalid(
                "this statement returns rows: run it with `query`".into(),
            ));
        }
        if checked.creates_scope && self.schema_exists().await? {
            // A least-privilege role may not create schemas, not even one that exists
            // (PostgreSQL checks the privilege first): the schema is there, so nothing to do.
            return Ok(0);
        }
        self.one_statement("execute", &checked.sql).await?;
        let touched = self
            .lite_wall
            .as_ref()
            .map(Wall::touched_tables)
            .unwrap_or_default();
        if !touched.is_empty() {
            return self.lite_schema_change(&checked, &params).await;
        }
        let db = self.db.clone();
        let conn = self.conn().await?;
        let fut = async {
            let r = match conn {
                Conn::Pg(c) => bind_pg(sqlx::query(AssertSqlSafe(checked.sql.as_str())), &params)
                    .execute(&mut *c)
                    .await
                    .map(|r| r.rows_affected()),
                Conn::Lite(c) => {
                    bind_lite(sqlx::query(AssertSqlSafe(checked.sql.as_str())), &params)
                        .execute(&mut *c)
                        .await
                        .map(|r| r.rows_affected())
                }
            };
            r.map_err(|e| map_err(e, &db))
        };
        let r = within(&db, fut).await.map_err(|e| {
            let e = self.failed("execute", e);
            match e {
                SqlError::Database { code, message }
                    if checked.creates_scope && code == "42501" =>
                {
                    SqlError::Database {
                        code,
                        message: format!(
                            "{message} (the schema does not exist and the role may not create \
                             schemas, as a least-privilege role should not: create it for the \
                             role, e.g. `sluice sql role {} --apply URL`)",
                            self.scope().unwrap_or_default()
                        ),
                    }
                }
                e => e,
            }
        });
        if checked.ddl {
            let (outcome, detail) = match &r {
                Ok(_) => (Outcome::Allowed, "ok".to_string()),
                Err(e) => (Outcome::Failed, e.to_string()),
            };
            let action = format!("execute {}", abbreviate(&checked.sql));
            self.events
                .record(&self.connector, Capability::Sql, outcome, &action, &detail);
        }
        r
    }

    /// Bulk-load newline-delimited JSON records into `columns` of `table`.
    pub async fn load(
        &mut self,
        table: &str,
        columns: &[String],
        records: &[u8],
    ) -> Result<u64, SqlError> {
        let table = if self.walls.policy {
            policy::check_table(self.dialect(), &self.db.scope, table)
                .map_err(|r| self.refused("load", r))?
        } else {
            quote_ident(table)
        };
        if let Some(w) = &self.lite_wall {
            w.begin_statement(limit(&self.db));
        }
        if columns.is_empty() {
            return Err(SqlError::Invalid("`load` needs at least one column".into()));
        }
        let quoted: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let in_tx = self.in_tx;
        if in_tx && self.dialect() == Dialect::Postgres && self.broken.is_none() {
            // Inside a transaction nothing is visible before commit, so the rows may reach the
            // database while the next batch is prepared; an error surfaces by the commit.
            let (csv, n) = to_csv(columns, records)?;
            let statement = copy_statement(&table, &quoted);
            self.copy_pipelined(statement, csv).await?;
            return Ok(n);
        }
        let db = self.db.clone();
        let conn = self.conn().await?;
        let fut = async {
            match conn {
                Conn::Pg(c) => load_pg(c, &table, &quoted, columns, records, &db).await,
                Conn::Lite(c) => load_lite(c, &table, &quoted, columns, records, in_tx, &db).await,
            }
        };
        match tokio::time::timeout(limit(&db), fut).await {
            Ok(r) => r.map_err(|e| self.failed("load", e)),
            Err(_) => {
                self.broken = Some(format!(
                    "a load into `{}` ran past its deadline; the session was closed",
                    self.db.name
                ));
                Err(timeout(&self.db))
            }
        }
    }

    /// Start a transaction (read-only with a stable snapshot for a read session).
    pub async fn begin(&mut self) -> Result<(), SqlError> {
        if self.in_tx {
            return Err(SqlError::Invalid("a transaction is already open".into()));
        }
        let stmt = match (self.dialect(), &self.db.scope) {
            (Dialect::Postgres, Scope::Read) => {
                "BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
            }
            (Dialect::Postgres, Scope::Write(_)) => "BEGIN",
            (Dialect::Sqlite, Scope::Read) => "BEGIN DEFERRED",
            (Dialect::Sqlite, Scope::Write(_)) => "BEGIN IMMEDIATE",
        };
        self.raw(stmt).await?;
        self.in_tx = true;
        Ok(())
    }

    /// Commit the open transaction.
    pub async fn commit(&mut self) -> Result<(), SqlError> {
        if !self.in_tx {
            return Err(SqlError::Invalid("no transaction is open".into()));
        }
        self.in_tx = false;
        self.raw("COMMIT").await
    }

    /// Roll the open transaction back.
    pub async fn rollback(&mut self) -> Result<(), SqlError> {
        if !self.in_tx {
            return Err(SqlError::Invalid("no transaction is open".into()));
        }
        self.in_tx = false;
        // Whatever the open load's outcome, it is being undone.
        let _ = self.finish_copy().await;
        self.raw("ROLLBACK").await
    }

    /// SQLite: run a schema change in a savepoint, then have SQLite judge the defaults of every
    /// table it created or altered (SQLite compiles a default into each INSERT without asking
    /// the authorizer); roll it back if one calls anything but SQLite's own functions.
    async fn lite_schema_change(
        &mut self,
        checked: &Checked,
        params: &[Value],
    ) -> Result<u64, SqlError> {
        let wall = self
            .lite_wall
            .clone()
            .expect("a SQLite session with its wall");
        let db = self.db.clone();
        let action = format!("execute {}", abbreviate(&checked.sql));
        let Conn::Lite(c) = self.conn().await? else {
            unreachable!("a SQLite session");
        };
        let host = |sql: &'static str| sqlx::raw_sql(sql);
        let fut = async {
            {
                let _host = wall.host();
                host("SAVEPOINT sluice_schema_change")
                    .execute(&mut *c)
                    .await?;
            }
            let ran = bind_lite(sqlx::query(AssertSqlSafe(checked.sql.as_str())), params)
                .execute(&mut *c)
                .await;
            let verdict = match &ran {
                Ok(_) => lite_defaults(c, &wall, &wall.touched_tables()).await?,
                Err(_) => None,
            };
            {
                let _host = wall.host();
                if ran.is_err() || verdict.is_some() {
                    host("ROLLBACK TO sluice_schema_change")
                        .execute(&mut *c)
                        .await?;
                }
                host("RELEASE sluice_schema_change")
                    .execute(&mut *c)
                    .await?;
            }
            Ok::<_, sqlx::Error>((ran, verdict))
        };
        let r = match tokio::time::timeout(limit(&db), fut).await {
            Err(_) => {
                self.broken = Some(format!(
                    "a schema change of `{}` ran past its deadline; the session was closed",
                    db.name
                ));
                return Err(timeout(&db));
            }
            Ok(Err(e)) => Err(map_err(e, &db)),
            Ok(Ok((_, Some(why)))) => {
                return Err(self.refused(
                    "execute",
                    Refusal {
                        rule: "database",
                        detail: why,
                    },
                ));
            }
            Ok(Ok((ran, None))) => ran.map(|r| r.rows_affected()).map_err(|e| map_err(e, &db)),
        }
        .map_err(|e| self.failed("execute", e));
        let (outcome, detail) = match &r {
            Ok(_) => (Outcome::Allowed, "ok".to_string()),
            Err(e) => (Outcome::Failed, e.to_string()),
        };
        self.events
            .record(&self.connector, Capability::Sql, outcome, &action, &detail);
        r
    }

    /// PostgreSQL: whether the granted schema exists (the host's own query).
    async fn schema_exists(&mut self) -> Result<bool, SqlError> {
        let (Some(scope), db) = (self.scope().map(str::to_string), self.db.clone()) else {
            return Ok(false);
        };
        let Conn::Pg(c) = self.conn().await? else {
            return Ok(false);
        };
        let fut = async {
            sqlx::query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(scope)
                .fetch_one(&mut *c)
                .await
                .and_then(|r| r.try_get::<bool, _>(0))
                .map_err(|e| map_err(e, &db))
        };
        within(&db, fut).await
    }

    /// A statement of the host's own (transaction control): not checked, never the connector's.
    async fn raw(&mut self, stmt: &'static str) -> Result<(), SqlError> {
        let db = self.db.clone();
        let conn = self.conn().await?;
        let fut = async {
            match conn {
                Conn::Pg(c) => sqlx::raw_sql(stmt).execute(&mut *c).await.map(|_| ()),
                Conn::Lite(c) => sqlx::raw_sql(stmt).execute(&mut *c).await.map(|_| ()),
            }
            .map_err(|e| map_err(e, &db))
        };
        within(&db, fut).await
    }
}

/// Refuse a `json` parameter that is not JSON, instead of binding something else in its place.
fn check_params(params: &[Value]) -> Result<(), SqlError> {
    for (i, p) in params.iter().enumerate() {
        if let Value::Json(text) = p
            && let Err(e) = serde_json::from_str::<&RawValue>(text)
        {
            return Err(SqlError::Invalid(format!(
                "parameter {} is marked JSON but is not valid JSON: {e}",
                i + 1
            )));
        }
    }
    Ok(())
}

/// A statement shortened for an event's action.
fn abbreviate(sql: &str) -> String {
    let mut s: String = sql.chars().take(120).collect();
    if s.len() < sql.len() {
        s.push('…');
    }
    s
}

/// A column name as a quoted identifier (both dialects).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn bind_pg<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    params: &'q [Value],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for p in params {
        q = match p {
            Value::Null => q.bind(None::<String>),
            Value::Bool(b) => q.bind(*b),
            Value::Int(i) => q.bind(*i),
            Value::Float(f) => q.bind(*f),
            Value::Text(s) => q.bind(s.as_str()),
            // Checked by `check_params` before anything is bound.
            Value::Json(s) => q.bind(sqlx::types::Json(serde_json::from_str::<&RawValue>(s).ok())),
            Value::Bytes(b) => q.bind(b.as_slice()),
        };
    }
    q
}

fn bind_lite<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    params: &'q [Value],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    for p in params {
        q = match p {
            Value::Null => q.bind(None::<i64>),
            Value::Bool(b) => q.bind(*b),
            Value::Int(i) => q.bind(*i),
            Value::Float(f) => q.bind(*f),
            Value::Text(s) | Value::Json(s) => q.bind(s.as_str()),
            Value::Bytes(b) => q.bind(b.as_slice()),
        };
    }
    q
}
