//! The walls between a connector's SQL and a database.
//!
//! A connector sends SQL text through the host; a workspace editor's source queries are SQL text
//! too. Both are attacker input. Two walls stand between that text and the database, and each
//! must hold alone:
//!
//! 1. **The policy** ([`check`]): the text is parsed (sqlparser, in the database's dialect) into
//!    exactly one statement, checked against the grant, and rendered again. The rendering is
//!    parsed once more and must give back the very statement that was checked, or nothing runs:
//!    what the database receives is exactly what was checked, whatever quoting, literal or
//!    comment trick the text played on the parser. Reads allow queries only; writes allow a
//!    closed list of statement shapes whose every relation, function, operator and type is
//!    inside the grant, names resolved with SQL's own scoping (a CTE shadows only where its
//!    `WITH` reaches).
//! 2. **The database** enforces the grant too, for every statement that reaches it: for SQLite,
//!    an authorizer on the connection ([`sqlite`]) that sees what the statement actually touches;
//!    for PostgreSQL, a least-privilege role the host checks before it hands a session out (in the
//!    host, which holds the connection).
//!
//! The crate is pure (no I/O beyond SQLite's own C API), so the fuzzer builds it alone.

mod lists;
mod names;
mod parse;
mod read;
pub mod sqlite;
mod write;

pub use parse::{MAX_CHAIN, MAX_STATEMENT_BYTES};

/// Which SQL a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// What a session may do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Queries only.
    Read,
    /// Create, change, write and read tables inside this schema (PostgreSQL) or with this
    /// table-name prefix (SQLite).
    Write(String),
}

/// A refused statement: which rule, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by the `{rule}` rule: {detail}")]
pub struct Refusal {
    /// A short, stable name of the rule (`read-only`, `outside-scope`, `render`, …).
    pub rule: &'static str,
    /// What the statement did that the rule forbids, and what is allowed instead.
    pub detail: String,
}

pub(crate) fn refuse<T>(rule: &'static str, detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        rule,
        detail: detail.into(),
    })
}

/// What kind of call a checked statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Returns rows (a query).
    Query,
    /// `EXPLAIN`: returns the plan as text rows.
    Explain,
    /// Returns no rows (DML or DDL).
    Execute,
}

/// A statement the grant allows, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The text to send: the checked statement rendered (names qualified), proven to parse back
    /// to exactly that statement.
    pub sql: String,
    /// How to run it.
    pub kind: Kind,
    /// Whether it changes the schema (create/alter/drop/truncate): recorded as an event.
    pub ddl: bool,
    /// `CREATE SCHEMA IF NOT EXISTS` of the granted schema: the host may answer it itself when
    /// the schema exists (a least-privilege role may not create schemas at all).
    pub creates_scope: bool,
}

/// Check `sql` against `scope` in `dialect`: the statement to run, or why not.
///
/// How deep the statement's tree can be is bounded ([`MAX_CHAIN`]); callers on small stacks (an
/// async runtime's workers) should call this on a thread with [`STACK_BYTES`] of stack.
pub fn check(dialect: Dialect, scope: &Scope, sql: &str) -> Result<Checked, Refusal> {
    let mut stmt = parse::one(dialect, sql)?;
    let shape = match scope {
        Scope::Read => read::check(dialect, &stmt)?,
        Scope::Write(scope) => write::check(dialect, scope, &mut stmt)?,
    };
    parse::parenthesize(&mut stmt);
    let sql = parse::render_exactly(dialect, &stmt)?;
    Ok(Checked {
        sql,
        kind: shape.kind,
        ddl: shape.ddl,
        creates_scope: shape.creates_scope,
    })
}

/// Check a table name for a bulk load and return it qualified and quoted, ready to splice into
/// `COPY` or `INSERT`. A read session cannot load at all.
pub fn check_table(dialect: Dialect, scope: &Scope, table: &str) -> Result<String, Refusal> {
    let Scope::Write(scope) = scope else {
        return refuse(
            "read-only",
            "a read-only session cannot load records; the grant gives write access to \
             destinations only",
        );
    };
    let name = parse::name(dialect, table)?;
    names::quoted_target(dialect, scope, &name)
}

/// The stack a thread that calls [`check`] should have: enough for the deepest statement
/// [`MAX_CHAIN`] allows, in a debug build, with room to spare. Only what is used is committed.
pub const STACK_BYTES: usize = 64 << 20;

/// The shape of a checked statement.
pub(crate) struct Shape {
    pub kind: Kind,
    pub ddl: bool,
    pub creates_scope: bool,
}

impl Shape {
    pub(crate) fn query() -> Shape {
        Shape {
            kind: Kind::Query,
            ddl: false,
            creates_scope: false,
        }
    }
}

#[cfg(test)]
mod tests;
