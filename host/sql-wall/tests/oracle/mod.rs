//! The invariant every statement the policy accepts must keep, checked by something other than
//! the policy: it executes as one statement whose every relation and function is inside the
//! grant. Shared by the corpus test (`tests/corpus.rs`) and the fuzz target (`fuzz/`).
//!
//! - For SQLite, SQLite itself is the judge: the accepted text is compiled on a fixture database
//!   with an authorizer that records every table, function and action SQLite reports, and each
//!   is held to the grant (for writes by the database wall's own rules, for reads: no action but
//!   reading, no denied function). SQLite's parser must also see exactly one statement.
//! - For PostgreSQL, the rendering is parsed again and walked with sqlparser's own visitor: every
//!   relation qualified with the granted schema (or a CTE of the statement), every function on
//!   the write list, no custom operator; reads: no denied function anywhere, no write, no lock.
//! - For both: checking the checked text again gives the same text (the rendering is a fixed
//!   point), and it is one statement.

#![allow(dead_code)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ops::ControlFlow;
use std::ptr::{NonNull, null, null_mut};

use libsqlite3_sys as ffi;
use sluice_sql_wall::sqlite::{Authorizer, NotOne, Request, prepare_one};
use sluice_sql_wall::{Dialect, Scope, check};
use sqlparser::ast::{
    BinaryOperator, Expr, ObjectName, ObjectNamePart, Statement, TableFactor, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// The grants every input is tried against.
pub fn scopes() -> [(Dialect, Scope); 4] {
    [
        (Dialect::Postgres, Scope::Write("raw".into())),
        (Dialect::Postgres, Scope::Read),
        (Dialect::Sqlite, Scope::Write("raw_".into())),
        (Dialect::Sqlite, Scope::Read),
    ]
}

/// Check `sql` under every scope; panic on a statement the policy accepted that breaks the
/// invariant.
pub fn check_all(sql: &str) {
    for (dialect, scope) in scopes() {
        let Ok(c) = check(dialect, &scope, sql) else {
            continue;
        };
        let again = check(dialect, &scope, &c.sql).unwrap_or_else(|e| {
            panic!(
                "{dialect:?} {scope:?}: accepted\n  {sql}\nas\n  {}\nwhich is refused: {e}",
                c.sql
            )
        });
        assert_eq!(
            again.sql, c.sql,
            "{dialect:?} {scope:?}: the rendering is not a fixed point"
        );
        match dialect {
            Dialect::Sqlite => sqlite(&scope, sql, &c.sql),
            Dialect::Postgres => postgres(&scope, sql, &c.sql),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite: the engine reports what the statement touches.
//
// The fixture has tables only: the policy judges names, and cannot know that a name inside the
// grant is a view or carries a trigger that reaches outside it. Those are the database wall's
// (its authorizer sees the view's and trigger's own accesses; see `src/sqlite/tests.rs`).

struct Fixture(NonNull<ffi::sqlite3>);

const FIXTURE: &str = "
    CREATE TABLE raw_a (x, y, z, id INTEGER PRIMARY KEY);
    CREATE TABLE raw_b (x, y, z, id INTEGER PRIMARY KEY);
    CREATE TABLE raw_users (x, y, z, id INTEGER PRIMARY KEY, name, email);
    CREATE TABLE victims (x, y, z, id INTEGER PRIMARY KEY);
    CREATE TABLE users (x, y, z, id INTEGER PRIMARY KEY, name, email);
    CREATE TABLE t (x, y, z, id INTEGER PRIMARY KEY);
    CREATE TABLE s (x, y, z, id INTEGER PRIMARY KEY);
    CREATE INDEX raw_a_x ON raw_a (x);
";

impl Fixture {
    fn new() -> Fixture {
        let mut db = null_mut();
        // SAFETY: an in-memory database for this thread.
        unsafe {
            assert_eq!(
                ffi::sqlite3_open(c":memory:".as_ptr(), &mut db),
                ffi::SQLITE_OK
            );
            let sql = CString::new(FIXTURE).unwrap();
            assert_eq!(
                ffi::sqlite3_exec(db, sql.as_ptr(), None, null_mut(), null_mut()),
                ffi::SQLITE_OK
            );
            ffi::sqlite3_set_authorizer(db, Some(record), null_mut());
        }
        Fixture(NonNull::new(db).unwrap())
    }
}

thread_local! {
    static FIX: Fixture = Fixture::new();
    static SEEN: RefCell<Option<Vec<Owned>>> = const { RefCell::new(None) };
}

#[derive(Debug, Clone)]
struct Owned {
    code: i32,
    arg1: Option<String>,
    arg2: Option<String>,
    db: Option<String>,
    inner: Option<String>,
}

unsafe fn text(p: *const c_char) -> Option<String> {
    // SAFETY: SQLite's NUL-terminated argument.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

unsafe extern "C" fn record(
    _: *mut c_void,
    code: c_int,
    a: *const c_char,
    b: *const c_char,
    c: *const c_char,
    d: *const c_char,
) -> c_int {
    // SAFETY: SQLite's arguments.
    let r = unsafe {
        Owned {
            code,
            arg1: text(a),
            arg2: text(b),
            db: text(c),
            inner: text(d),
        }
    };
    SEEN.with(|s| {
        if let Some(v) = s.borrow_mut().as_mut() {
            v.push(r);
        }
    });
    ffi::SQLITE_OK
}

/// Functions a read must never reach in SQLite.
const SQLITE_READ_DENIED: &[&str] = &[
    "load_extension",
    "fts3_tokenizer",
    "readfile",
    "writefile",
    "edit",
];

fn sqlite(scope: &Scope, input: &str, sql: &str) {
    FIX.with(|f| {
        // SQLite's parser sees one statement (the authorizer here only records).
        // SAFETY: the fixture's connection, on this thread.
        match unsafe { prepare_one(f.0, sql, None) } {
            Ok(()) | Err(NotOne::Error(_)) => {}
            Err(other) => panic!(
                "SQLite does not see one statement in\n  {sql}\n({other:?}); input\n  {input}"
            ),
        }
        SEEN.with(|s| *s.borrow_mut() = Some(Vec::new()));
        let c = CString::new(sql).unwrap();
        let mut stmt = null_mut();
        // SAFETY: compile only; nothing runs.
        unsafe {
            ffi::sqlite3_prepare_v3(f.0.as_ptr(), c.as_ptr(), -1, 0, &mut stmt, &mut null());
            ffi::sqlite3_finalize(stmt);
        }
        let seen = SEEN.with(|s| s.borrow_mut().take()).unwrap_or_default();
        let mut judge = Authorizer::new(scope.clone());
        judge.begin_statement();
        for r in &seen {
            let req = Request {
                code: r.code,
                arg1: r.arg1.as_deref(),
                arg2: r.arg2.as_deref(),
                db: r.db.as_deref(),
                inner: r.inner.as_deref(),
            };
            let verdict = match scope {
                Scope::Write(_) => judge.decide(&req),
                Scope::Read => match r.code {
                    ffi::SQLITE_SELECT | ffi::SQLITE_READ | ffi::SQLITE_RECURSIVE => Ok(()),
                    ffi::SQLITE_FUNCTION
                        if !SQLITE_READ_DENIED.contains(
                            &r.arg2
                                .as_deref()
                                .unwrap_or("")
                                .to_ascii_lowercase()
                                .as_str(),
                        ) =>
                    {
                        Ok(())
                    }
                    _ => Err("not a read".to_string()),
                },
            };
            if let Err(why) = verdict {
                panic!(
                    "SQLite {scope:?}: the policy accepted\n  {input}\nrendered\n  {sql}\nwhich \
                     touches {r:?}: {why}"
                );
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: an independent walk of the rendering.

fn last_part(name: &ObjectName) -> Option<String> {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(i)) => Some(i.value.to_ascii_lowercase()),
        _ => None,
    }
}

struct PgJudge<'a> {
    scope: &'a Scope,
    ctes: Vec<String>,
    why: Option<String>,
}

impl Visitor for PgJudge<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            self.ctes
                .extend(w.cte_tables.iter().map(|c| c.alias.name.value.clone()));
        }
        if !q.locks.is_empty() {
            self.why = Some("a locking clause".into());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, r: &ObjectName) -> ControlFlow<()> {
        let Scope::Write(schema) = self.scope else {
            return ControlFlow::Continue(());
        };
        let ok = match r.0.as_slice() {
            [ObjectNamePart::Identifier(i)] => self.ctes.contains(&i.value),
            [ObjectNamePart::Identifier(s), ObjectNamePart::Identifier(_)] => {
                (s.quote_style.is_some() && s.value == *schema)
                    || (s.quote_style.is_none() && s.value.to_ascii_lowercase() == *schema)
            }
            _ => false,
        };
        if !ok {
            self.why = Some(format!("relation `{r}` outside schema `{schema}`"));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        if let (
            Scope::Write(_),
            TableFactor::Function { .. } | TableFactor::Table { args: Some(_), .. },
        ) = (self.scope, t)
        {
            self.why = Some("a table function in a write".into());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Function(f) => {
                let name = last_part(&f.name).unwrap_or_default();
                let bad = match self.scope {
                    Scope::Read => {
                        READ_DENIED_NAMES.contains(&name.as_str())
                            || READ_DENIED_PREFIXES.iter().any(|d| name.starts_with(d))
                    }
                    Scope::Write(_) => {
                        f.name.0.len() > 2
                            || (f.name.0.len() == 2
                                && !f
                                    .name
                                    .to_string()
                                    .to_ascii_lowercase()
                                    .starts_with("pg_catalog."))
                            || !WRITE_OK.contains(&name.as_str())
                    }
                };
                if bad {
                    self.why = Some(format!("function `{}`", f.name));
                    return ControlFlow::Break(());
                }
            }
            Expr::BinaryOp {
                op: BinaryOperator::PGCustomBinaryOperator(_) | BinaryOperator::Custom(_),
                ..
            } if matches!(self.scope, Scope::Write(_)) => {
                self.why = Some("a custom operator in a write".into());
                return ControlFlow::Break(());
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Functions no read may call, and prefixes of such: a sample of the policy's lists, kept here
/// on their own.
const READ_DENIED_NAMES: &[&str] = &[
    "set_config",
    "query_to_xml",
    "nextval",
    "setval",
    "pg_notify",
    "ts_stat",
    "pg_reload_conf",
    "load_extension",
    "txid_current",
    "table_to_xml",
    "database_to_xml",
    "schema_to_xml",
    "cursor_to_xml",
];
const READ_DENIED_PREFIXES: &[&str] = &[
    "pg_advisory",
    "pg_try_advisory",
    "dblink",
    "lo_",
    "pg_read_",
    "pg_ls_",
    "pg_terminate_",
    "pg_cancel_",
    "pg_logical_",
    "pg_create_",
    "pg_drop_",
    "pg_file",
];

/// Functions a write may call: the policy's list, kept here on its own.
const WRITE_OK: &[&str] = &[
    "abs",
    "array_agg",
    "avg",
    "bool_and",
    "bool_or",
    "ceil",
    "ceiling",
    "char_length",
    "coalesce",
    "concat",
    "count",
    "current_date",
    "current_time",
    "current_timestamp",
    "date",
    "date_trunc",
    "datetime",
    "dense_rank",
    "first_value",
    "floor",
    "greatest",
    "ifnull",
    "iif",
    "json",
    "json_agg",
    "json_array",
    "json_build_array",
    "json_build_object",
    "json_extract",
    "json_object",
    "jsonb_agg",
    "jsonb_build_array",
    "jsonb_build_object",
    "lag",
    "last_value",
    "lead",
    "least",
    "left",
    "length",
    "localtime",
    "localtimestamp",
    "lower",
    "ltrim",
    "max",
    "md5",
    "min",
    "now",
    "nullif",
    "rank",
    "replace",
    "right",
    "round",
    "row_number",
    "rtrim",
    "strftime",
    "string_agg",
    "substr",
    "substring",
    "sum",
    "to_json",
    "to_jsonb",
    "trim",
    "trunc",
    "typeof",
    "unixepoch",
    "upper",
];

fn postgres(scope: &Scope, input: &str, sql: &str) {
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .unwrap_or_else(|e| panic!("the rendering does not parse: {e}\n  {sql}"));
    assert_eq!(stmts.len(), 1, "one statement: {sql}");
    let stmt: &Statement = &stmts[0];
    if let Scope::Read = scope {
        let ok = match stmt {
            Statement::Query(_) => true,
            Statement::Explain {
                analyze, statement, ..
            } => !analyze && matches!(**statement, Statement::Query(_)),
            _ => false,
        };
        assert!(ok, "a read accepted a non-query: {sql}");
        if sql.to_ascii_lowercase().contains(" into ")
            && matches!(stmt, Statement::Query(q) if matches!(*q.body, sqlparser::ast::SetExpr::Select(ref s) if s.into.is_some()))
        {
            panic!("SELECT INTO in a read: {sql}");
        }
    }
    let mut judge = PgJudge {
        scope,
        ctes: Vec::new(),
        why: None,
    };
    // CTE names first (a reference may be visited before its WITH's query in some shapes).
    let _ = stmt.visit(&mut CteNames(&mut judge.ctes));
    if stmt.visit(&mut judge).is_break() {
        panic!(
            "PostgreSQL {scope:?}: the policy accepted\n  {input}\nrendered\n  {sql}\nbut {}",
            judge.why.unwrap_or_default()
        );
    }
}

struct CteNames<'a>(&'a mut Vec<String>);

impl Visitor for CteNames<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            self.0
                .extend(w.cte_tables.iter().map(|c| c.alias.name.value.clone()));
        }
        ControlFlow::Continue(())
    }
}
