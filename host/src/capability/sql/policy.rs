//! Which statements a SQL grant allows, decided before anything reaches the database.
//!
//! Every statement is parsed with `sqlparser` in the database's dialect; what does not parse, or
//! holds more than one statement, is refused (fail closed). What runs is the parsed statement
//! rendered again, never the connector's text, so comments or quoting the parser read one way
//! cannot reach the database meaning another.
//!
//! - [`Scope::Read`]: queries only — `SELECT`/`WITH`/`EXPLAIN` (no `ANALYZE`), no locking
//!   clause, no `SELECT … INTO`, no data-modifying `WITH`, no function known to act outside the
//!   query. The session is read-only at the database too; this is the second wall.
//! - [`Scope::Write`]: statements on objects inside one schema (PostgreSQL) or with one table
//!   prefix (SQLite). Unqualified names are qualified with the schema before the statement runs;
//!   a name outside it, a statement kind outside the list, or a function not on the allowed list
//!   is refused.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    AlterTableOperation, Expr, Ident, ObjectName, ObjectNamePart, ObjectType, Query,
    RenameTableNameKind, SetExpr, Statement, TableConstraint, Visit, VisitMut, Visitor, VisitorMut,
};
use sqlparser::dialect::{Dialect as ParserDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

/// Which SQL a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// What a session may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Queries only.
    Read,
    /// Create, change, write and read objects inside this schema (PostgreSQL) or with this
    /// table-name prefix (SQLite).
    Write(String),
}

/// A refused statement: which rule, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by the `{rule}` rule: {detail}")]
pub struct Refusal {
    /// A short, stable name of the rule (`read-only`, `outside-scope`, …).
    pub rule: &'static str,
    /// What the statement did that the rule forbids, and what is allowed instead.
    pub detail: String,
}

fn refuse<T>(rule: &'static str, detail: impl Into<String>) -> Result<T, Refusal> {
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
    /// The statement to send: the parsed statement rendered again, names qualified.
    pub sql: String,
    /// How to run it.
    pub kind: Kind,
    /// Whether it changes the schema (create/alter/drop/truncate): recorded as an event.
    pub ddl: bool,
}

/// Functions a destination's statements may call: pure built-ins for conversions, comparisons,
/// aggregates and JSON. Anything else (including every user-defined function) is refused.
const WRITE_FUNCTIONS: &[&str] = &[
    "abs",
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
    "json_array",
    "json_build_object",
    "json_extract",
    "json_object",
    "jsonb_build_object",
    "lag",
    "last_value",
    "lead",
    "least",
    "left",
    "length",
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

/// Functions a source's queries may not call even inside a read-only session: they act outside
/// the query (sessions, locks, files, server settings) or run SQL text the parser never saw.
const READ_DENIED_PREFIXES: &[&str] = &["dblink", "lo_", "pg_advisory", "pg_try_advisory"];
const READ_DENIED: &[&str] = &[
    "currval",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "database_to_xmlschema",
    "load_extension",
    "nextval",
    "pg_cancel_backend",
    "pg_create_restore_point",
    "pg_file_write",
    "pg_logical_emit_message",
    "pg_ls_dir",
    "pg_notify",
    "pg_promote",
    "pg_read_binary_file",
    "pg_read_file",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_stat_file",
    "pg_switch_wal",
    "pg_terminate_backend",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "schema_to_xmlschema",
    "set_config",
    "setval",
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "table_to_xmlschema",
    "txid_current",
    "writefile",
    "readfile",
];

/// Check `sql` against `scope` in `dialect`.
pub fn check(dialect: Dialect, scope: &Scope, sql: &str) -> Result<Checked, Refusal> {
    let mut stmt = parse_one(dialect, sql)?;
    match scope {
        Scope::Read => check_read(&stmt),
        Scope::Write(scope) => check_write(dialect, scope, &mut stmt),
    }
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
    let name = parse_name(dialect, table)?;
    let mut name = name;
    scope_name(dialect, scope, &HashSet::new(), &mut name)?;
    Ok(name.to_string())
}

fn parser_dialect(dialect: Dialect) -> Box<dyn ParserDialect> {
    match dialect {
        Dialect::Postgres => Box::new(PostgreSqlDialect {}),
        Dialect::Sqlite => Box::new(SQLiteDialect {}),
    }
}

fn parse_one(dialect: Dialect, sql: &str) -> Result<Statement, Refusal> {
    let d = parser_dialect(dialect);
    let mut stmts = match Parser::parse_sql(d.as_ref(), sql) {
        Ok(s) => s,
        Err(e) => {
            return refuse(
                "unparseable",
                format!("the statement cannot be parsed, so it is not run ({e})"),
            );
        }
    };
    match stmts.len() {
        1 => Ok(stmts.remove(0)),
        0 => refuse("one-statement", "the text holds no statement"),
        n => refuse(
            "one-statement",
            format!("the text holds {n} statements; send one statement per call"),
        ),
    }
}

fn parse_name(dialect: Dialect, table: &str) -> Result<ObjectName, Refusal> {
    let d = parser_dialect(dialect);
    let mut p = Parser::new(d.as_ref())
        .try_with_sql(table)
        .map_err(|e| Refusal {
            rule: "unparseable",
            detail: format!("`{table}` is not a table name ({e})"),
        })?;
    let name = p.parse_object_name(false).map_err(|e| Refusal {
        rule: "unparseable",
        detail: format!("`{table}` is not a table name ({e})"),
    })?;
    if p.peek_token().token != sqlparser::tokenizer::Token::EOF {
        return refuse("unparseable", format!("`{table}` is not a table name"));
    }
    Ok(name)
}

// ---------------------------------------------------------------------------------------------
// Read

fn check_read(stmt: &Statement) -> Result<Checked, Refusal> {
    let (query, kind) = match stmt {
        Statement::Query(q) => (q.as_ref(), Kind::Query),
        Statement::Explain {
            analyze, statement, ..
        } => {
            if *analyze {
                return refuse(
                    "read-only",
                    "EXPLAIN ANALYZE runs the statement; a read grant allows EXPLAIN without it",
                );
            }
            match statement.as_ref() {
                Statement::Query(q) => (q.as_ref(), Kind::Explain),
                other => {
                    return refuse(
                        "read-only",
                        format!(
                            "EXPLAIN of a {} statement; a read grant allows queries only",
                            kind_name(other)
                        ),
                    );
                }
            }
        }
        other => {
            return refuse(
                "read-only",
                format!(
                    "a {} statement; a read grant allows queries only (SELECT, WITH, EXPLAIN)",
                    kind_name(other)
                ),
            );
        }
    };
    let mut v = ReadChecker;
    if let ControlFlow::Break(r) = query.visit(&mut v) {
        return Err(r);
    }
    Ok(Checked {
        sql: stmt.to_string(),
        kind,
        ddl: false,
    })
}

struct ReadChecker;

impl Visitor for ReadChecker {
    type Break = Refusal;

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<Refusal> {
        if !q.locks.is_empty() {
            return ControlFlow::Break(Refusal {
                rule: "read-only",
                detail: "a locking clause (FOR UPDATE/SHARE) takes row locks; a read grant \
                         allows plain queries"
                    .into(),
            });
        }
        if let Err(r) = read_body(&q.body) {
            return ControlFlow::Break(r);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Refusal> {
        // Table functions in FROM are relations to the visitor.
        match denied_read_function(relation) {
            Some(r) => ControlFlow::Break(r),
            None => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<Refusal> {
        if let Expr::Function(f) = e
            && let Some(r) = denied_read_function(&f.name)
        {
            return ControlFlow::Break(r);
        }
        ControlFlow::Continue(())
    }
}

fn read_body(body: &SetExpr) -> Result<(), Refusal> {
    match body {
        SetExpr::Select(s) if s.into.is_some() => refuse(
            "read-only",
            "SELECT … INTO creates a table; a read grant allows plain queries",
        ),
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => refuse(
            "read-only",
            "a data-modifying statement inside a query; a read grant allows plain queries",
        ),
        SetExpr::SetOperation { left, right, .. } => {
            read_body(left)?;
            read_body(right)
        }
        _ => Ok(()),
    }
}

fn function_base(name: &ObjectName) -> Option<(Option<String>, String)> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i.value.to_ascii_lowercase()),
            ObjectNamePart::Function(_) => None,
        })
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [f] => Some((None, f.clone())),
        [s, f] => Some((Some(s.clone()), f.clone())),
        _ => None,
    }
}

fn denied_read_function(name: &ObjectName) -> Option<Refusal> {
    let (_, f) = function_base(name)?;
    let denied =
        READ_DENIED.contains(&f.as_str()) || READ_DENIED_PREFIXES.iter().any(|p| f.starts_with(p));
    denied.then(|| Refusal {
        rule: "read-only",
        detail: format!(
            "function `{f}` acts outside the query (sessions, locks, files, settings or SQL \
             text of its own); a read grant does not allow it"
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// Write

fn check_write(dialect: Dialect, scope: &str, stmt: &mut Statement) -> Result<Checked, Refusal> {
    let ctes = cte_names(stmt);
    let outside = |what: &str| -> Result<Checked, Refusal> {
        refuse(
            "statement-kind",
            format!(
                "{what}; a write grant allows creating {}, and creating, changing, writing and \
                 reading tables in it — nothing else",
                scope_desc(dialect, scope)
            ),
        )
    };
    let mut ddl = true;
    let mut kind = Kind::Execute;
    // Names the generic pass below must not qualify (they are not relations in the scope's
    // schema syntax), checked here instead.
    let mut index_name = None;
    match stmt {
        Statement::Query(_) => {
            kind = Kind::Query;
            ddl = false;
        }
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge(_) => ddl = false,
        Statement::CreateSchema {
            schema_name,
            clone,
            with,
            options,
            ..
        } => {
            if dialect == Dialect::Sqlite {
                return outside("CREATE SCHEMA (SQLite has no schemas)");
            }
            let ok = matches!(schema_name, sqlparser::ast::SchemaName::Simple(n)
                if n.0.len() == 1 && part_is(&n.0[0], dialect, scope));
            if !ok || clone.is_some() || with.is_some() || options.is_some() {
                return refuse(
                    "outside-scope",
                    format!(
                        "`{schema_name}` is not the granted schema `{scope}` (only \
                         `CREATE SCHEMA [IF NOT EXISTS] {scope}` is allowed)"
                    ),
                );
            }
            return Ok(Checked {
                sql: stmt.to_string(),
                kind,
                ddl,
            });
        }
        Statement::CreateTable(t) => {
            if t.temporary || t.external || t.like.is_some() || t.clone.is_some() {
                return outside("CREATE TEMPORARY/EXTERNAL table, or one LIKE/CLONE another");
            }
            if t.inherits.is_some() || t.partition_of.is_some() {
                return outside("CREATE TABLE … INHERITS/PARTITION OF");
            }
            for c in &mut t.constraints {
                if let TableConstraint::ForeignKey(fk) = c {
                    scope_name(dialect, scope, &ctes, &mut fk.foreign_table)?;
                }
            }
            for col in &mut t.columns {
                for opt in &mut col.options {
                    if let sqlparser::ast::ColumnOption::ForeignKey(fk) = &mut opt.option {
                        scope_name(dialect, scope, &ctes, &mut fk.foreign_table)?;
                    }
                }
            }
        }
        Statement::AlterTable(a) => {
            for op in &mut a.operations {
                match op {
                    AlterTableOperation::AddColumn { .. }
                    | AlterTableOperation::DropColumn { .. }
                    | AlterTableOperation::RenameColumn { .. }
                    | AlterTableOperation::AlterColumn { .. }
                    | AlterTableOperation::DropConstraint { .. }
                    | AlterTableOperation::DropPrimaryKey { .. } => {}
                    AlterTableOperation::AddConstraint { constraint, .. } => {
                        if let TableConstraint::ForeignKey(fk) = constraint {
                            scope_name(dialect, scope, &ctes, &mut fk.foreign_table)?;
                        }
                    }
                    AlterTableOperation::RenameTable { table_name } => {
                        let (RenameTableNameKind::As(n) | RenameTableNameKind::To(n)) = table_name;
                        // The new name stays in the table's schema: it must be bare.
                        if n.0.len() != 1 || !in_prefix(&n.0[0], dialect, scope) {
                            return refuse(
                                "outside-scope",
                                format!(
                                    "renaming to `{n}`; the new name must be a bare name{}",
                                    match dialect {
                                        Dialect::Sqlite => format!(" starting with `{scope}`"),
                                        Dialect::Postgres => String::new(),
                                    }
                                ),
                            );
                        }
                    }
                    other => {
                        return outside(&format!("ALTER TABLE … {}", first_words(other)));
                    }
                }
            }
        }
        Statement::Drop {
            object_type, names, ..
        } => {
            if !matches!(object_type, ObjectType::Table | ObjectType::Index) {
                return outside(&format!("DROP {object_type}"));
            }
            for n in names {
                scope_name(dialect, scope, &ctes, n)?;
            }
        }
        Statement::Truncate(_) => {}
        Statement::CreateIndex(ci) => {
            index_name = ci.name.take();
            if let Some(n) = &index_name
                && (n.0.len() != 1 || !in_prefix(&n.0[0], dialect, scope))
            {
                return refuse(
                    "outside-scope",
                    format!(
                        "index name `{n}`: it must be a bare name (the index lives with its \
                         table){}",
                        match dialect {
                            Dialect::Sqlite => format!(" starting with `{scope}`"),
                            Dialect::Postgres => String::new(),
                        }
                    ),
                );
            }
        }
        other => return outside(&format!("a {} statement", kind_name(other))),
    }

    // Every relation anywhere in the statement: inside the scope, qualified.
    let mut v = WriteScoper {
        dialect,
        scope,
        ctes: &ctes,
    };
    if let ControlFlow::Break(r) = stmt.visit(&mut v) {
        return Err(r);
    }
    if let ControlFlow::Break(r) = stmt.visit(&mut FunctionChecker) {
        return Err(r);
    }
    if let Statement::CreateIndex(ci) = stmt {
        ci.name = index_name;
    }
    Ok(Checked {
        sql: stmt.to_string(),
        kind,
        ddl,
    })
}

/// The names `WITH` introduces anywhere in the statement: relations by those names are the
/// common table expressions, not tables.
fn cte_names(stmt: &Statement) -> HashSet<String> {
    struct Ctes(HashSet<String>);
    impl Visitor for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(w) = &q.with {
                for c in &w.cte_tables {
                    self.0.insert(c.alias.name.value.to_ascii_lowercase());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = Ctes(HashSet::new());
    let _ = stmt.visit(&mut v);
    v.0
}

struct WriteScoper<'a> {
    dialect: Dialect,
    scope: &'a str,
    ctes: &'a HashSet<String>,
}

impl VisitorMut for WriteScoper<'_> {
    type Break = Refusal;

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<Refusal> {
        match scope_name(self.dialect, self.scope, self.ctes, relation) {
            Ok(()) => ControlFlow::Continue(()),
            Err(r) => ControlFlow::Break(r),
        }
    }

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<Refusal> {
        if let SetExpr::Select(s) = q.body.as_ref()
            && s.into.is_some()
        {
            return ControlFlow::Break(Refusal {
                rule: "statement-kind",
                detail: "SELECT … INTO; create tables with CREATE TABLE".into(),
            });
        }
        ControlFlow::Continue(())
    }
}

struct FunctionChecker;

impl VisitorMut for FunctionChecker {
    type Break = Refusal;

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<Refusal> {
        if let Expr::Function(f) = e {
            let allowed = match function_base(&f.name) {
                Some((None, name)) => WRITE_FUNCTIONS.contains(&name.as_str()),
                Some((Some(schema), name)) => {
                    schema == "pg_catalog" && WRITE_FUNCTIONS.contains(&name.as_str())
                }
                None => false,
            };
            if !allowed {
                return ControlFlow::Break(Refusal {
                    rule: "function",
                    detail: format!(
                        "function `{}` is not on the list a write grant allows (pure built-ins \
                         for conversion, comparison, aggregation and JSON)",
                        f.name
                    ),
                });
            }
        }
        ControlFlow::Continue(())
    }
}

/// An identifier as the database compares it: PostgreSQL folds unquoted names to lower case;
/// SQLite compares names case-insensitively.
fn normalize(ident: &Ident, dialect: Dialect) -> String {
    match (dialect, ident.quote_style) {
        (Dialect::Postgres, Some(_)) => ident.value.clone(),
        _ => ident.value.to_ascii_lowercase(),
    }
}

fn part_is(part: &ObjectNamePart, dialect: Dialect, want: &str) -> bool {
    matches!(part, ObjectNamePart::Identifier(i) if normalize(i, dialect) == want)
}

/// For SQLite, whether a bare name carries the granted prefix; PostgreSQL bare names are
/// always inside (they resolve to the granted schema).
fn in_prefix(part: &ObjectNamePart, dialect: Dialect, scope: &str) -> bool {
    match (dialect, part) {
        (Dialect::Postgres, ObjectNamePart::Identifier(_)) => true,
        (Dialect::Sqlite, ObjectNamePart::Identifier(i)) => {
            normalize(i, dialect).starts_with(&scope.to_ascii_lowercase())
        }
        _ => false,
    }
}

/// Check one object name against the scope and qualify it where it is bare (PostgreSQL).
fn scope_name(
    dialect: Dialect,
    scope: &str,
    ctes: &HashSet<String>,
    name: &mut ObjectName,
) -> Result<(), Refusal> {
    let shown = name.to_string();
    let bad = |why: String| -> Result<(), Refusal> { refuse("outside-scope", why) };
    match dialect {
        Dialect::Postgres => match name.0.as_slice() {
            [ObjectNamePart::Identifier(i)] => {
                if ctes.contains(&i.value.to_ascii_lowercase()) {
                    return Ok(());
                }
                name.0.insert(
                    0,
                    ObjectNamePart::Identifier(Ident::with_quote('"', scope.to_string())),
                );
                Ok(())
            }
            [s, ObjectNamePart::Identifier(_)] => {
                if part_is(s, dialect, scope) {
                    Ok(())
                } else {
                    bad(format!(
                        "`{shown}` is outside the granted schema `{scope}`; a write grant \
                         reaches only objects inside it"
                    ))
                }
            }
            _ => bad(format!(
                "`{shown}`: names may be `table` or `{scope}.table`, nothing longer"
            )),
        },
        Dialect::Sqlite => {
            let base = match name.0.as_slice() {
                [b] => b,
                [s, b] if part_is(s, dialect, "main") => b,
                _ => {
                    return bad(format!(
                        "`{shown}` is outside the main database; a write grant reaches only \
                         tables named `{scope}…` in it"
                    ));
                }
            };
            if let ObjectNamePart::Identifier(i) = base
                && ctes.contains(&i.value.to_ascii_lowercase())
            {
                return Ok(());
            }
            if in_prefix(base, dialect, scope) {
                Ok(())
            } else {
                bad(format!(
                    "`{shown}` does not start with the granted table prefix `{scope}`"
                ))
            }
        }
    }
}

fn scope_desc(dialect: Dialect, scope: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("schema `{scope}`"),
        Dialect::Sqlite => format!("tables named `{scope}…`"),
    }
}

/// The first words of a statement, e.g. `CREATE ROLE`, for messages.
fn kind_name(stmt: &Statement) -> String {
    first_words(stmt)
}

fn first_words(x: &impl std::fmt::Display) -> String {
    let text = x.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic() || c == '_'))
        .take(2)
        .collect();
    if words.is_empty() {
        "statement".into()
    } else {
        words.join(" ").to_ascii_uppercase()
    }
}

#[cfg(test)]
mod tests;
