//! SQLite's own wall: an authorizer on the connection, and one statement per call.
//!
//! SQLite asks the authorizer about every table, column, function, pragma, attach and schema
//! change a statement will touch, while it compiles the statement — including the statements a
//! trigger or view runs, and SQLite's own nested statements inside `ALTER TABLE`. So whatever the
//! policy concluded from the text, what the database does is checked here against the grant:
//!
//! - a **read** session may read tables of the main database and call SQLite's own functions;
//! - a **write** session may also create, change, drop, write and index tables carrying the
//!   prefix (and, while such a change is being compiled, SQLite's own schema tables);
//! - nothing may `ATTACH` (that includes `VACUUM INTO`), `DETACH`, run a pragma, load an
//!   extension, create views, triggers or virtual tables, touch `temp`, or rename a table (the
//!   authorizer never sees the new name, so it could not hold it to the prefix).
//!
//! [`install`] also hardens the connection: no attached databases at all
//! (`SQLITE_LIMIT_ATTACHED` = 0), defensive mode, untrusted schema, no extension loading,
//! double-quoted strings are identifiers only, and a progress handler that interrupts any
//! statement past the deadline [`Wall::begin_statement`] set. [`prepare_one`] proves a text is one
//! statement by SQLite's own parser.
//!
//! One thing SQLite never asks the authorizer about: a column's `DEFAULT`, compiled into each
//! `INSERT` without name resolution — so a default could call any function, SQLite's internal
//! ones included (some crash on arguments they do not expect). A schema change is therefore
//! checked after it is compiled: [`Wall::touched_tables`] names the tables a statement creates or
//! alters, and [`check_default`] has SQLite compile each of their defaults again in a mode that
//! allows SQLite's own functions only; the host runs the change in a savepoint and rolls it back
//! when a default fails.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::{NonNull, null, null_mut};
use std::sync::{Arc, Mutex};

use libsqlite3_sys as ffi;

use crate::Scope;
use crate::lists::{SQLITE_DDL_FUNCTIONS, SQLITE_FUNCTIONS};
use crate::names::has_prefix;

/// One request to the authorizer, as SQLite makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The action code (`SQLITE_READ`, `SQLITE_INSERT`, …).
    pub code: i32,
    /// The first argument (a table, index, pragma or file name, by code).
    pub arg1: Option<&'a str>,
    /// The second argument (a column, table or function name, by code).
    pub arg2: Option<&'a str>,
    /// The database (`main`, `temp`, an attached name), when there is one.
    pub db: Option<&'a str>,
    /// The innermost trigger or view that causes the access.
    pub inner: Option<&'a str>,
}

/// Whose statement is being compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The connector's: the grant's rules.
    Connector,
    /// The host's own (savepoints, its catalog queries): allowed.
    Host,
    /// A column default, compiled to check it: SQLite's own functions, nothing else.
    Default,
    /// A table's own definition, replayed on a scratch database to judge the expressions
    /// SQLite compiles later without asking (generated columns, CHECK, index expressions).
    Schema,
}

/// The authorizer's rules for one session, and what it refused last.
#[derive(Debug)]
pub struct Authorizer {
    scope: Scope,
    /// Off only for the tests that prove the policy alone holds: the deadline still applies.
    enforce: bool,
    mode: Mode,
    /// A granted CREATE TABLE is being compiled…
    created: bool,
    /// …and has recorded itself in the schema: SQLite reads back the new row's id.
    schema_written: bool,
    /// A granted ALTER or DROP is being compiled: SQLite's own nested statements on its schema,
    /// sequence and statistics tables follow (they read and write nothing the connector chose).
    nested: bool,
    /// Tables the statement creates or alters.
    touched: Vec<String>,
    /// When the statement running must be interrupted.
    deadline: Option<std::time::Instant>,
    refused: Option<String>,
}

/// SQLite's schema tables (it refuses direct writes to them itself; defensive mode keeps it so).
const SCHEMA_TABLES: &[&str] = &["sqlite_master", "sqlite_schema"];
const TEMP_SCHEMA_TABLES: &[&str] = &["sqlite_temp_master", "sqlite_temp_schema"];

/// Tables SQLite keeps for itself, which a granted ALTER or DROP updates.
const BOOKKEEPING_TABLES: &[&str] = &[
    "sqlite_sequence",
    "sqlite_stat1",
    "sqlite_stat2",
    "sqlite_stat3",
    "sqlite_stat4",
];

/// Virtual tables a read may not scan: page-level and statement-level views of the whole file.
const HIDDEN_TABLES: &[&str] = &["dbstat", "sqlite_dbpage", "sqlite_stmt"];

fn action(code: i32) -> &'static str {
    match code {
        ffi::SQLITE_CREATE_INDEX => "CREATE INDEX",
        ffi::SQLITE_CREATE_TABLE => "CREATE TABLE",
        ffi::SQLITE_CREATE_TEMP_INDEX => "CREATE TEMP INDEX",
        ffi::SQLITE_CREATE_TEMP_TABLE => "CREATE TEMP TABLE",
        ffi::SQLITE_CREATE_TEMP_TRIGGER => "CREATE TEMP TRIGGER",
        ffi::SQLITE_CREATE_TEMP_VIEW => "CREATE TEMP VIEW",
        ffi::SQLITE_CREATE_TRIGGER => "CREATE TRIGGER",
        ffi::SQLITE_CREATE_VIEW => "CREATE VIEW",
        ffi::SQLITE_DELETE => "DELETE",
        ffi::SQLITE_DROP_INDEX => "DROP INDEX",
        ffi::SQLITE_DROP_TABLE => "DROP TABLE",
        ffi::SQLITE_DROP_TEMP_INDEX => "DROP TEMP INDEX",
        ffi::SQLITE_DROP_TEMP_TABLE => "DROP TEMP TABLE",
        ffi::SQLITE_DROP_TEMP_TRIGGER => "DROP TEMP TRIGGER",
        ffi::SQLITE_DROP_TEMP_VIEW => "DROP TEMP VIEW",
        ffi::SQLITE_DROP_TRIGGER => "DROP TRIGGER",
        ffi::SQLITE_DROP_VIEW => "DROP VIEW",
        ffi::SQLITE_INSERT => "INSERT",
        ffi::SQLITE_PRAGMA => "PRAGMA",
        ffi::SQLITE_READ => "read",
        ffi::SQLITE_SELECT => "SELECT",
        ffi::SQLITE_TRANSACTION => "transaction",
        ffi::SQLITE_UPDATE => "UPDATE",
        ffi::SQLITE_ATTACH => "ATTACH",
        ffi::SQLITE_DETACH => "DETACH",
        ffi::SQLITE_ALTER_TABLE => "ALTER TABLE",
        ffi::SQLITE_REINDEX => "REINDEX",
        ffi::SQLITE_ANALYZE => "ANALYZE",
        ffi::SQLITE_CREATE_VTABLE => "CREATE VIRTUAL TABLE",
        ffi::SQLITE_DROP_VTABLE => "DROP VIRTUAL TABLE",
        ffi::SQLITE_FUNCTION => "function call",
        ffi::SQLITE_SAVEPOINT => "SAVEPOINT",
        ffi::SQLITE_RECURSIVE => "recursive query",
        _ => "action",
    }
}

impl Authorizer {
    /// Rules for a session with `scope`.
    pub fn new(scope: Scope) -> Authorizer {
        Authorizer {
            scope,
            enforce: true,
            mode: Mode::Connector,
            created: false,
            schema_written: false,
            nested: false,
            touched: Vec::new(),
            deadline: None,
            refused: None,
        }
    }

    /// A new statement of the connector's is about to be compiled.
    pub fn begin_statement(&mut self) {
        self.created = false;
        self.schema_written = false;
        self.nested = false;
        self.touched.clear();
        self.refused = None;
    }

    /// Why the last request was refused, if one was (and forget it).
    pub fn take_refusal(&mut self) -> Option<String> {
        self.refused.take()
    }

    /// Decide one request; a refusal is also kept for [`Authorizer::take_refusal`].
    pub fn decide(&mut self, r: &Request<'_>) -> Result<(), String> {
        let d = self.rule(r);
        if let Err(why) = &d {
            self.refused = Some(why.clone());
        }
        d
    }

    fn rule(&mut self, r: &Request<'_>) -> Result<(), String> {
        let lower = |s: Option<&str>| s.unwrap_or_default().to_ascii_lowercase();
        let (a1, a2) = (lower(r.arg1), lower(r.arg2));
        let main = matches!(r.db, None | Some("main"));
        let temp = r.db == Some("temp");
        let what = || {
            let object = match r.code {
                ffi::SQLITE_FUNCTION | ffi::SQLITE_ALTER_TABLE => a2.clone(),
                ffi::SQLITE_DROP_INDEX | ffi::SQLITE_CREATE_INDEX => format!("{a1} on {a2}"),
                _ => a1.clone(),
            };
            let via = r
                .inner
                .map(|t| format!(" (through `{t}`)"))
                .unwrap_or_default();
            let db = match r.db {
                Some(d) if d != "main" => format!(" in database `{d}`"),
                _ => String::new(),
            };
            format!("{} `{object}`{db}{via}", action(r.code))
        };
        let function = |f: &str, ddl: bool| {
            if SQLITE_FUNCTIONS.contains(&f) || (ddl && SQLITE_DDL_FUNCTIONS.contains(&f)) {
                Ok(())
            } else {
                Err(format!(
                    "{}: only SQLite's own functions may be called",
                    what()
                ))
            }
        };
        if !self.enforce {
            return Ok(());
        }
        match (self.mode, r.code) {
            (Mode::Host, _) => return Ok(()),
            (Mode::Default, ffi::SQLITE_SELECT) => return Ok(()),
            (Mode::Default, ffi::SQLITE_FUNCTION) => return function(&a2, false),
            (
                Mode::Schema,
                ffi::SQLITE_SELECT
                | ffi::SQLITE_READ
                | ffi::SQLITE_INSERT
                | ffi::SQLITE_UPDATE
                | ffi::SQLITE_DELETE
                | ffi::SQLITE_CREATE_TABLE
                | ffi::SQLITE_CREATE_INDEX
                | ffi::SQLITE_REINDEX
                | ffi::SQLITE_TRANSACTION,
            ) => return Ok(()),
            (Mode::Schema, ffi::SQLITE_FUNCTION) => return function(&a2, false),
            (Mode::Schema, _) => {
                return Err(format!(
                    "{}: a table of the grant may only be a plain table with indexes",
                    what()
                ));
            }
            (Mode::Default, _) => {
                return Err(format!(
                    "{}: a column default may only compute a value with SQLite's own functions",
                    what()
                ));
            }
            (_, ffi::SQLITE_SELECT | ffi::SQLITE_RECURSIVE | ffi::SQLITE_TRANSACTION) => {
                return Ok(());
            }
            _ => {}
        }
        let prefix = match &self.scope {
            Scope::Read => {
                return match r.code {
                    ffi::SQLITE_READ if !main => Err(format!(
                        "{}: a read grant reaches the granted file only",
                        what()
                    )),
                    ffi::SQLITE_READ
                        if HIDDEN_TABLES.contains(&a1.as_str()) || a1.starts_with("pragma_") =>
                    {
                        Err(format!("{}: not a table of the granted data", what()))
                    }
                    ffi::SQLITE_READ => Ok(()),
                    ffi::SQLITE_FUNCTION => function(&a2, false),
                    _ => Err(format!("{}: a read grant allows queries only", what())),
                };
            }
            Scope::Write(p) => p.as_str(),
        };
        let ours = |t: &str| has_prefix(t, prefix);
        let index_ours = |i: &str| {
            ours(i)
                || i.strip_prefix("sqlite_autoindex_")
                    .is_some_and(|rest| has_prefix(rest, prefix))
        };
        let schema_table = SCHEMA_TABLES.contains(&a1.as_str());
        // SQLite's own statements inside a granted ALTER or DROP.
        let bookkeeping = self.nested
            && ((main && (schema_table || BOOKKEEPING_TABLES.contains(&a1.as_str())))
                || (temp && TEMP_SCHEMA_TABLES.contains(&a1.as_str())));
        // A granted CREATE TABLE reads back the id of its new schema row.
        let created_row = self.created
            && self.schema_written
            && main
            && schema_table
            && a2.eq_ignore_ascii_case("rowid");
        let outside = || {
            Err(format!(
                "{}: a write grant reaches only tables named `{prefix}…` in the granted file",
                what()
            ))
        };
        let ok = match r.code {
            ffi::SQLITE_READ => (main && ours(&a1)) || bookkeeping || created_row,
            // Direct writes to the schema tables are refused by SQLite itself (defensive mode);
            // a granted CREATE/DROP records itself there before the authorizer sees its name.
            ffi::SQLITE_INSERT | ffi::SQLITE_DELETE | ffi::SQLITE_UPDATE => {
                if r.code == ffi::SQLITE_UPDATE && main && schema_table && self.created {
                    self.schema_written = true;
                }
                (main && (ours(&a1) || schema_table)) || bookkeeping
            }
            ffi::SQLITE_CREATE_TABLE | ffi::SQLITE_DROP_TABLE => main && ours(&a1),
            ffi::SQLITE_CREATE_INDEX => main && index_ours(&a1) && ours(&a2),
            ffi::SQLITE_DROP_INDEX => main && ours(&a2),
            ffi::SQLITE_REINDEX => main && index_ours(&a1),
            ffi::SQLITE_ALTER_TABLE => a1 == "main" && ours(&a2),
            ffi::SQLITE_FUNCTION => {
                if a2 == "sqlite_rename_table" || a2 == "sqlite_rename_column" {
                    return Err(
                        "renaming a table or column: SQLite rewrites every view and trigger that \
                         names it, wherever they are, and its authorizer cannot see the new name; \
                         a write grant does not allow it"
                            .into(),
                    );
                }
                return function(&a2, self.nested);
            }
            _ => {
                return Err(format!(
                    "{}: a write grant allows creating, changing, writing and reading its own \
                     tables only",
                    what()
                ));
            }
        };
        if !ok {
            return outside();
        }
        match r.code {
            ffi::SQLITE_CREATE_TABLE => {
                self.created = true;
                self.touched.push(a1.clone());
            }
            ffi::SQLITE_ALTER_TABLE => {
                self.nested = true;
                self.touched.push(a2.clone());
            }
            ffi::SQLITE_DROP_TABLE | ffi::SQLITE_DROP_INDEX => self.nested = true,
            _ => {}
        }
        Ok(())
    }
}

/// The authorizer installed on one connection.
#[derive(Debug, Clone)]
pub struct Wall {
    state: Arc<Mutex<Authorizer>>,
}

impl Wall {
    /// A new statement of the connector's (or a load of the host's) is about to be compiled,
    /// and must finish within `deadline`: the progress handler interrupts it past that.
    pub fn begin_statement(&self, deadline: std::time::Duration) {
        let mut a = self.lock();
        a.begin_statement();
        a.deadline = Some(std::time::Instant::now() + deadline);
    }

    /// The tables the last statement creates or alters (whose defaults must be checked).
    pub fn touched_tables(&self) -> Vec<String> {
        let mut t = self.lock().touched.clone();
        t.sort();
        t.dedup();
        t
    }

    /// The host's own statements, while the guard lives.
    pub fn host(&self) -> HostMode<'_> {
        self.lock().mode = Mode::Host;
        HostMode(self)
    }

    /// Why the database refused the last statement, if it did.
    pub fn take_refusal(&self) -> Option<String> {
        self.lock().take_refusal()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Authorizer> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// [`Wall::host`]: the connector's rules again when dropped.
pub struct HostMode<'a>(&'a Wall);

impl Drop for HostMode<'_> {
    fn drop(&mut self) {
        self.0.lock().mode = Mode::Connector;
    }
}

unsafe fn text<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        None
    } else {
        // SAFETY: SQLite passes NUL-terminated strings valid for the call.
        unsafe { CStr::from_ptr(p) }.to_str().ok()
    }
}

unsafe extern "C" fn authorize(
    data: *mut c_void,
    code: c_int,
    a: *const c_char,
    b: *const c_char,
    c: *const c_char,
    d: *const c_char,
) -> c_int {
    let run = || {
        // SAFETY: `data` is the `Mutex<Authorizer>` `install` keeps alive with the connection.
        let state = unsafe { &*(data as *const Mutex<Authorizer>) };
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: SQLite's arguments, valid for this call.
        let r = unsafe {
            Request {
                code,
                arg1: text(a),
                arg2: text(b),
                db: text(c),
                inner: text(d),
            }
        };
        // A name that is not UTF-8 is never one of ours.
        let not_utf8 = [(a, r.arg1), (b, r.arg2), (c, r.db), (d, r.inner)]
            .iter()
            .any(|(p, s)| !p.is_null() && s.is_none());
        if not_utf8 {
            state.refused = Some(format!("{}: a name that is not UTF-8", action(code)));
            return ffi::SQLITE_DENY;
        }
        match state.decide(&r) {
            Ok(()) => ffi::SQLITE_OK,
            Err(_) => ffi::SQLITE_DENY,
        }
    };
    std::panic::catch_unwind(run).unwrap_or(ffi::SQLITE_DENY)
}

unsafe extern "C" fn progress(data: *mut c_void) -> c_int {
    // SAFETY: as for `authorize`.
    let state = unsafe { &*(data as *const Mutex<Authorizer>) };
    let past = state
        .lock()
        .map(|s| s.deadline.is_some_and(|d| std::time::Instant::now() > d))
        .unwrap_or(true);
    c_int::from(past)
}

unsafe extern "C" fn release(p: *mut c_void) {
    // SAFETY: the pointer `install` leaked from an `Arc`, released once, when SQLite closes the
    // connection (or replaces the client data).
    drop(unsafe { Arc::from_raw(p as *const Mutex<Authorizer>) });
}

const CLIENT_DATA: &CStr = c"sluice-sql-wall";

/// Virtual-machine steps between two looks at the deadline.
const PROGRESS_OPS: c_int = 10_000;

/// Install the wall for `scope` on an open connection and harden it.
///
/// # Safety
/// `db` must be a valid, open connection that no other thread uses during the call.
pub unsafe fn install(db: NonNull<ffi::sqlite3>, scope: Scope) -> Result<Wall, String> {
    // SAFETY: the caller's promise.
    unsafe { install_with(db, scope, true) }
}

/// Only the deadline, no rules and no hardening: for the tests that prove the policy alone
/// holds (a statement must still never outlive its deadline).
///
/// # Safety
/// As [`install`].
pub unsafe fn install_deadline_only(
    db: NonNull<ffi::sqlite3>,
    scope: Scope,
) -> Result<Wall, String> {
    // SAFETY: the caller's promise.
    unsafe { install_with(db, scope, false) }
}

unsafe fn install_with(
    db: NonNull<ffi::sqlite3>,
    scope: Scope,
    enforce: bool,
) -> Result<Wall, String> {
    let db = db.as_ptr();
    let mut rules = Authorizer::new(scope);
    rules.enforce = enforce;
    let state = Arc::new(Mutex::new(rules));
    let check = |rc: c_int, what: &str| {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(format!("cannot {what} (SQLite code {rc})"))
        }
    };
    // SAFETY: `db` is valid (the caller's promise); every call below is SQLite's documented API
    // on it. The state's lifetime is tied to the connection by the client data's destructor.
    unsafe {
        if enforce {
            ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_ATTACHED, 0);
            for (op, on) in [
                (ffi::SQLITE_DBCONFIG_DEFENSIVE, 1),
                (ffi::SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0),
                (ffi::SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0),
                (ffi::SQLITE_DBCONFIG_DQS_DML, 0),
                (ffi::SQLITE_DBCONFIG_DQS_DDL, 0),
            ] {
                check(
                    ffi::sqlite3_db_config(db, op, on as c_int, null_mut::<c_int>()),
                    "harden the connection",
                )?;
            }
        }
        let raw = Arc::into_raw(state.clone()) as *mut c_void;
        let rc = ffi::sqlite3_set_clientdata(db, CLIENT_DATA.as_ptr(), raw, Some(release));
        if rc != ffi::SQLITE_OK {
            release(raw);
            return Err(format!("cannot install the authorizer (SQLite code {rc})"));
        }
        check(
            ffi::sqlite3_set_authorizer(db, Some(authorize), raw),
            "install the authorizer",
        )?;
        ffi::sqlite3_progress_handler(db, PROGRESS_OPS, Some(progress), raw);
    }
    Ok(Wall { state })
}

/// Why [`prepare_one`] refused a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOne {
    /// The authorizer refused something the statement touches.
    Refused(String),
    /// The text holds no statement.
    Empty,
    /// The text holds more than one statement.
    Several,
    /// The text holds a NUL character: SQLite stops reading there, the driver would not.
    Nul,
    /// SQLite cannot compile it (syntax, unknown table, …): its message.
    Error(String),
}

/// Compile `sql` on `db` and prove, by SQLite's own parser, that it is exactly one statement:
/// what follows the first may only be whitespace and comments. The authorizer (when installed)
/// decides while it compiles. Nothing runs.
///
/// # Safety
/// `db` must be a valid, open connection that no other thread uses during the call.
pub unsafe fn prepare_one(
    db: NonNull<ffi::sqlite3>,
    sql: &str,
    wall: Option<&Wall>,
) -> Result<(), NotOne> {
    let db = db.as_ptr();
    if sql.as_bytes().contains(&0) {
        return Err(NotOne::Nul);
    }
    let Ok(len) = c_int::try_from(sql.len()) else {
        return Err(NotOne::Error("the statement is too long".into()));
    };
    let start = sql.as_ptr() as *const c_char;
    // SAFETY: `start..start+len` is `sql`; SQLite reads within it (nByte given).
    let (rc, stmt, tail) = unsafe { prepare(db, start, len) };
    // SAFETY: a finalize of NULL is a no-op.
    unsafe { ffi::sqlite3_finalize(stmt) };
    if rc != ffi::SQLITE_OK {
        return Err(error(db, rc, wall));
    }
    if stmt.is_null() {
        return Err(NotOne::Empty);
    }
    let mut rest = tail;
    loop {
        let used = rest as usize - start as usize;
        if used >= sql.len() {
            return Ok(());
        }
        let left = (sql.len() - used) as c_int;
        // SAFETY: `rest` points inside `sql` with `left` bytes remaining.
        let (rc, next, tail) = unsafe { prepare(db, rest, left) };
        // SAFETY: as above.
        unsafe { ffi::sqlite3_finalize(next) };
        if !next.is_null() || rc != ffi::SQLITE_OK {
            if let Some(w) = wall {
                w.take_refusal();
            }
            return Err(NotOne::Several);
        }
        if tail == rest {
            return Ok(());
        }
        rest = tail;
    }
}

/// Whether a column default (its text as SQLite keeps it) only computes a value with SQLite's own
/// functions: SQLite compiles `SELECT (default)` with the wall in its default mode. Nothing runs.
///
/// # Safety
/// As [`prepare_one`].
pub unsafe fn check_default(
    db: NonNull<ffi::sqlite3>,
    wall: &Wall,
    default: &str,
) -> Result<(), String> {
    let previous = {
        let mut a = wall.lock();
        a.refused = None;
        std::mem::replace(&mut a.mode, Mode::Default)
    };
    // SAFETY: the caller's promise.
    let r = unsafe { prepare_one(db, &format!("SELECT ({default})"), Some(wall)) };
    wall.lock().mode = previous;
    r.map_err(|e| match e {
        NotOne::Refused(why) => why,
        NotOne::Error(msg) => msg,
        _ => "it is not one expression".to_string(),
    })
}

/// Whether the definitions of a table (its `CREATE TABLE` and `CREATE INDEX` texts, as SQLite
/// keeps them in its schema) compute only with SQLite's own functions: they are replayed on a
/// scratch in-memory database under a judging authorizer. SQLite authorizes the expressions of a
/// definition it compiles from scratch — generated columns, CHECK constraints, index expressions
/// — but not when an `ALTER TABLE … ADD COLUMN` brings one, nor when another writer made them;
/// replaying judges them however they came. Defaults are [`check_default`]'s.
pub fn judge_definitions(definitions: &[String]) -> Result<(), String> {
    let mut raw = null_mut();
    // SAFETY: opening a private in-memory database, closed below.
    let rc = unsafe { ffi::sqlite3_open(c":memory:".as_ptr(), &mut raw) };
    let Some(db) = NonNull::new(raw) else {
        return Err(format!("cannot open a scratch database (SQLite code {rc})"));
    };
    let judged = (|| {
        // SAFETY: the scratch connection, on this thread only.
        let wall = unsafe { install(db, Scope::Read) }?;
        wall.lock().mode = Mode::Schema;
        for sql in definitions {
            wall.begin_statement(std::time::Duration::from_secs(5));
            // SAFETY: as above.
            unsafe { prepare_one(db, sql, Some(&wall)) }.map_err(|e| match e {
                NotOne::Refused(why) => why,
                NotOne::Error(msg) => format!("its definition does not compile: {msg}"),
                other => format!("its definition is not one statement ({other:?})"),
            })?;
            let c =
                std::ffi::CString::new(sql.as_str()).map_err(|_| "a NUL character".to_string())?;
            let mut stmt = null_mut();
            // SAFETY: compiled and run once on the scratch database: it only creates there.
            let rc = unsafe {
                ffi::sqlite3_prepare_v3(db.as_ptr(), c.as_ptr(), -1, 0, &mut stmt, null_mut());
                let rc = ffi::sqlite3_step(stmt);
                ffi::sqlite3_finalize(stmt);
                rc
            };
            if rc != ffi::SQLITE_DONE {
                let why = wall.take_refusal().unwrap_or_else(|| {
                    // SAFETY: the scratch connection's message.
                    unsafe { text(ffi::sqlite3_errmsg(db.as_ptr())) }
                        .unwrap_or("unknown error")
                        .to_string()
                });
                return Err(why);
            }
        }
        Ok(())
    })();
    // SAFETY: closing what was opened above.
    unsafe { ffi::sqlite3_close(db.as_ptr()) };
    judged
}

unsafe fn prepare(
    db: *mut ffi::sqlite3,
    sql: *const c_char,
    len: c_int,
) -> (c_int, *mut ffi::sqlite3_stmt, *const c_char) {
    let mut stmt = null_mut();
    let mut tail = null();
    // SAFETY: the caller's promise.
    let rc = unsafe { ffi::sqlite3_prepare_v3(db, sql, len, 0, &mut stmt, &mut tail) };
    (rc, stmt, tail)
}

fn error(db: *mut ffi::sqlite3, rc: c_int, wall: Option<&Wall>) -> NotOne {
    if let Some(why) = wall.and_then(Wall::take_refusal) {
        return NotOne::Refused(why);
    }
    // SAFETY: `db` is valid; the message is NUL-terminated and copied at once.
    let msg = unsafe { text(ffi::sqlite3_errmsg(db)) }
        .unwrap_or("unknown error")
        .to_string();
    if rc == ffi::SQLITE_AUTH {
        NotOne::Refused(msg)
    } else {
        NotOne::Error(msg)
    }
}

#[cfg(test)]
mod tests;
