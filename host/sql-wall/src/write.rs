//! The write rule: a closed list of statement shapes, walked node by node.
//!
//! Every node of a write is looked at here, and a node this walker does not know is refused: an
//! unknown clause cannot carry a relation or a function past the check. Relations are resolved
//! with SQL's own scoping — a bare name is a common table expression only where a `WITH` that
//! defines it reaches (PostgreSQL: earlier siblings, or all with `RECURSIVE`; SQLite: all
//! siblings), and otherwise a table that must be inside the grant (bare PostgreSQL names are
//! qualified with the schema). Written tables, foreign-key targets and DDL names are never CTEs.
//! Functions are checked by their final name part and may be qualified only by `pg_catalog`;
//! operators, casts and literals are built-in ones only, so no user code runs through them.

use std::ops::ControlFlow;
use std::sync::OnceLock;

use sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableOperation, ArrayElemTypeDef, Assignment,
    AssignmentTarget, BinaryOperator, CastKind, ColumnDef, ColumnOption, ConflictTarget,
    CreateIndex, CreateTable, DataType, Delete, Distinct, DropBehavior, Expr, ForeignKeyConstraint,
    FromTable, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments,
    GroupByExpr, IndexColumn, IndexType, Insert, JoinConstraint, JoinOperator, LimitClause,
    NamedWindowExpr, ObjectName, ObjectType, OnConflictAction, OnInsert, OrderBy, OrderByExpr,
    OrderByKind, Query, RenameTableNameKind, SchemaName, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, SetOperator, SetQuantifier, SqliteOnConflict,
    Statement, Subscript, TableAlias, TableConstraint, TableFactor, TableWithJoins, Truncate,
    UnaryOperator, Update, UpdateTableFromKind, Value, Visit, Visitor, WildcardAdditionalOptions,
    WindowFrameBound, WindowSpec, With,
};

use crate::lists::{PG_BUILTIN_TYPES, PG_INDEX_METHODS, WRITE_FUNCTIONS};
use crate::names::{self, has_prefix, idents, norm};
use crate::{Dialect, Kind, Refusal, Shape, refuse};

pub(crate) fn check(dialect: Dialect, scope: &str, stmt: &mut Statement) -> Result<Shape, Refusal> {
    let mut w = Walker {
        dialect,
        scope,
        frames: Vec::new(),
        ctes_anywhere: Vec::new(),
    };
    let shape = w.statement(stmt)?;
    // A second, independent pass over every node sqlparser's visitor reaches: each relation is
    // now inside the grant (or names a CTE of the statement) and each function is on the list.
    let mut second = Second {
        dialect,
        scope,
        ctes: &w.ctes_anywhere,
    };
    if let ControlFlow::Break(r) = stmt.visit(&mut second) {
        return Err(r);
    }
    Ok(shape)
}

/// The first words of a statement, e.g. `CREATE ROLE`, for messages.
pub(crate) fn first_words(x: &impl std::fmt::Display) -> String {
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

type R = Result<(), Refusal>;

/// Common table expressions one `WITH` may define (each sees its siblings: the walk is quadratic
/// in them).
const MAX_CTES: usize = 128;

fn construct(what: impl std::fmt::Display) -> R {
    refuse(
        "construct",
        format!(
            "{what}: a write grant allows plain SQL over tables in its scope (no dialect \
             extensions, table functions, locking or data-changing subqueries)"
        ),
    )
}

/// Statements of the template shapes, parsed once: a node equal to its template once the fields
/// the walker checks are copied over carries no other clause.
struct Templates {
    select: Select,
    insert: Insert,
    create_table: CreateTable,
}

fn templates(dialect: Dialect) -> &'static Templates {
    static PG: OnceLock<Templates> = OnceLock::new();
    static LITE: OnceLock<Templates> = OnceLock::new();
    let cell = match dialect {
        Dialect::Postgres => &PG,
        Dialect::Sqlite => &LITE,
    };
    cell.get_or_init(|| {
        let parse = |sql: &str| crate::parse::one(dialect, sql).expect("a template parses");
        let select = match parse("SELECT 1") {
            Statement::Query(q) => match *q.body {
                SetExpr::Select(s) => *s,
                _ => unreachable!("a SELECT"),
            },
            _ => unreachable!("a query"),
        };
        let Statement::Insert(insert) = parse("INSERT INTO t VALUES (1)") else {
            unreachable!("an INSERT")
        };
        let Statement::CreateTable(create_table) = parse("CREATE TABLE t (a INT)") else {
            unreachable!("a CREATE TABLE")
        };
        Templates {
            select,
            insert,
            create_table,
        }
    })
}

/// Whether `node` differs from `template` in a field other than those `swap` exchanges. The
/// allowed fields are swapped with the template's for the comparison and back, never cloned: they
/// may be deep.
fn has_other_clauses<T: Clone + PartialEq>(
    node: &mut T,
    template: &T,
    swap: impl Fn(&mut T, &mut T),
) -> bool {
    let mut t = template.clone();
    swap(node, &mut t);
    let other = *node != *template;
    swap(node, &mut t);
    other
}

struct Walker<'a> {
    dialect: Dialect,
    scope: &'a str,
    /// The CTE names visible where the walk is, one frame per enclosing `WITH`.
    frames: Vec<Vec<String>>,
    /// Every CTE name the statement defines, for the second pass.
    ctes_anywhere: Vec<String>,
}

impl Walker<'_> {
    fn pg(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    fn outside(&self, what: &str) -> Result<Shape, Refusal> {
        refuse(
            "statement-kind",
            format!(
                "{what}; a write grant allows creating {}, and creating, changing, writing and \
                 reading tables in it — nothing else",
                match self.dialect {
                    Dialect::Postgres => format!("schema `{}`", self.scope),
                    Dialect::Sqlite => format!("tables named `{}…`", self.scope),
                }
            ),
        )
    }

    fn statement(&mut self, stmt: &mut Statement) -> Result<Shape, Refusal> {
        let ddl = Shape {
            kind: Kind::Execute,
            ddl: true,
            creates_scope: false,
        };
        let dml = Shape {
            kind: Kind::Execute,
            ddl: false,
            creates_scope: false,
        };
        match stmt {
            Statement::Query(q) => {
                // `WITH … INSERT/UPDATE/DELETE`: the CTEs reach the data change.
                if matches!(
                    q.body.as_ref(),
                    SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_)
                ) {
                    let Query {
                        with,
                        body,
                        order_by: None,
                        limit_clause: None,
                        fetch: None,
                        locks,
                        for_clause: None,
                        settings: None,
                        format_clause: None,
                        pipe_operators,
                    } = q.as_mut()
                    else {
                        return self.outside("a data change with query clauses around it");
                    };
                    if !locks.is_empty() || !pipe_operators.is_empty() {
                        return self.outside("a data change with query clauses around it");
                    }
                    let pushed = self.with(with)?;
                    match body.as_mut() {
                        SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => {
                            self.data_change(s)?
                        }
                        _ => unreachable!("matched above"),
                    }
                    if pushed {
                        self.frames.pop();
                    }
                    return Ok(dml);
                }
                self.query(q)?;
                Ok(Shape::query())
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                self.data_change(stmt)?;
                Ok(dml)
            }
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                or_replace,
                with,
                options,
                default_collate_spec,
                clone,
            } => {
                if !self.pg() {
                    return self.outside("CREATE SCHEMA (SQLite has no schemas)");
                }
                let ok = matches!(schema_name, SchemaName::Simple(n)
                    if idents(n).is_some_and(|p| p.len() == 1 && norm(p[0], self.dialect) == self.scope));
                if !ok
                    || *or_replace
                    || with.is_some()
                    || options.is_some()
                    || default_collate_spec.is_some()
                    || clone.is_some()
                {
                    return refuse(
                        "outside-scope",
                        format!(
                            "`{schema_name}` is not the granted schema `{}` (only `CREATE SCHEMA \
                             [IF NOT EXISTS] {}` is allowed)",
                            self.scope, self.scope
                        ),
                    );
                }
                Ok(Shape {
                    creates_scope: *if_not_exists,
                    ..ddl
                })
            }
            Statement::CreateTable(t) => {
                self.create_table(t)?;
                Ok(ddl)
            }
            Statement::AlterTable(a) => {
                self.alter_table(a)?;
                Ok(ddl)
            }
            Statement::Drop {
                object_type,
                if_exists: _,
                names,
                cascade,
                restrict: _,
                purge,
                temporary,
                table,
            } => {
                if !matches!(object_type, ObjectType::Table | ObjectType::Index) {
                    return self.outside(&format!("DROP {object_type}"));
                }
                if *cascade {
                    return cascade_refused();
                }
                if *purge || *temporary || table.is_some() {
                    construct("DROP with PURGE, TEMPORARY or ON")?;
                }
                for n in names {
                    self.target(n)?;
                }
                Ok(ddl)
            }
            Statement::Truncate(t) => {
                if !self.pg() {
                    return self.outside("TRUNCATE (SQLite has none: use DELETE FROM)");
                }
                self.truncate(t)?;
                Ok(ddl)
            }
            Statement::CreateIndex(ci) => {
                self.create_index(ci)?;
                Ok(ddl)
            }
            other => self.outside(&format!("a {} statement", first_words(other))),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Names

    fn is_cte(&self, name: &str) -> bool {
        self.frames.iter().any(|f| f.iter().any(|n| n == name))
    }

    /// A relation read in `FROM`: a CTE in scope, or a table inside the grant.
    fn read_relation(&mut self, name: &mut ObjectName) -> R {
        if let Some(parts) = idents(name)
            && let [one] = parts.as_slice()
            && self.is_cte(&norm(one, self.dialect))
        {
            if let Some(sqlparser::ast::ObjectNamePart::Identifier(i)) = name.0.first_mut() {
                names::quote_in_place(i, self.dialect);
            }
            return Ok(());
        }
        names::scoped(self.dialect, self.scope, name)
    }

    /// A table written, created, changed, referenced by a key or dropped: never a CTE.
    fn target(&mut self, name: &mut ObjectName) -> R {
        names::scoped(self.dialect, self.scope, name)
    }

    /// A name that lives with its table (an index, a new name after `RENAME TO`): one part, and
    /// in SQLite it carries the prefix too.
    fn local_name(&self, name: &ObjectName, what: &str) -> R {
        let ok = idents(name).is_some_and(|p| {
            p.len() == 1 && (self.pg() || has_prefix(&norm(p[0], self.dialect), self.scope))
        });
        if ok {
            Ok(())
        } else {
            refuse(
                "outside-scope",
                format!(
                    "{what} `{name}`: it must be a bare name{}",
                    match self.dialect {
                        Dialect::Sqlite => format!(" starting with `{}`", self.scope),
                        Dialect::Postgres => String::new(),
                    }
                ),
            )
        }
    }

    fn column_name(&self, name: &ObjectName) -> R {
        match idents(name) {
            Some(p) if p.len() == 1 => Ok(()),
            _ => construct(format!("`{name}` as a column")),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Queries

    /// Push the frame of a `WITH`, walking each CTE's query with what SQL lets it see.
    fn with(&mut self, with: &mut Option<With>) -> Result<bool, Refusal> {
        let Some(w) = with else { return Ok(false) };
        if w.cte_tables.len() > MAX_CTES {
            return construct(format!(
                "{} common table expressions in one WITH (at most {MAX_CTES})",
                w.cte_tables.len()
            ))
            .map(|()| false);
        }
        let names: Vec<String> = w
            .cte_tables
            .iter()
            .map(|c| norm(&c.alias.name, self.dialect))
            .collect();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return construct(format!("the CTE name `{n}` defined twice")).map(|()| false);
            }
        }
        self.ctes_anywhere.extend(names.iter().cloned());
        self.frames.push(Vec::new());
        let recursive = w.recursive;
        for (i, cte) in w.cte_tables.iter_mut().enumerate() {
            if cte.from.is_some() {
                construct("a CTE with FROM")?;
            }
            self.alias_columns(&cte.alias)?;
            names::quote_in_place(&mut cte.alias.name, self.dialect);
            let visible = match (self.dialect, recursive) {
                (Dialect::Postgres, false) => names[..i].to_vec(),
                _ => names.clone(),
            };
            *self.frames.last_mut().expect("pushed") = visible;
            self.query(&mut cte.query)?;
        }
        *self.frames.last_mut().expect("pushed") = names;
        Ok(true)
    }

    fn query(&mut self, q: &mut Query) -> R {
        let Query {
            with,
            body,
            order_by,
            limit_clause,
            fetch,
            locks,
            for_clause,
            settings,
            format_clause,
            pipe_operators,
        } = q;
        if !locks.is_empty() {
            return construct("a locking clause (FOR UPDATE/SHARE)");
        }
        if for_clause.is_some()
            || settings.is_some()
            || format_clause.is_some()
            || !pipe_operators.is_empty()
        {
            return construct("a query clause of another dialect");
        }
        let pushed = self.with(with)?;
        self.set_expr(body)?;
        if let Some(o) = order_by {
            self.order_by(o)?;
        }
        match limit_clause {
            None => {}
            Some(LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if !limit_by.is_empty() {
                    return construct("LIMIT … BY");
                }
                if let Some(l) = limit {
                    self.expr(l)?;
                }
                if let Some(o) = offset {
                    self.expr(&mut o.value)?;
                }
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
                self.expr(offset)?;
                self.expr(limit)?;
            }
        }
        if let Some(f) = fetch
            && let Some(n) = &mut f.quantity
        {
            self.expr(n)?;
        }
        if pushed {
            self.frames.pop();
        }
        Ok(())
    }

    fn set_expr(&mut self, s: &mut SetExpr) -> R {
        match s {
            SetExpr::Select(s) => self.select(s),
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation {
                op,
                set_quantifier,
                left,
                right,
            } => {
                if !matches!(
                    op,
                    SetOperator::Union | SetOperator::Except | SetOperator::Intersect
                ) || !matches!(
                    set_quantifier,
                    SetQuantifier::All | SetQuantifier::Distinct | SetQuantifier::None
                ) {
                    return construct(format!("{op} {set_quantifier}"));
                }
                self.set_expr(left)?;
                self.set_expr(right)
            }
            SetExpr::Values(v) => {
                for row in &mut v.rows {
                    for e in row.iter_mut() {
                        self.expr(e)?;
                    }
                }
                Ok(())
            }
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                construct("a data-changing statement inside a query")
            }
            SetExpr::Table(_) => construct("TABLE name (write SELECT * FROM name)"),
        }
    }

    fn select(&mut self, s: &mut Select) -> R {
        let t = &templates(self.dialect).select;
        if s.into.is_some() {
            return refuse(
                "statement-kind",
                "SELECT … INTO creates a table; create tables with CREATE TABLE",
            );
        }
        let other = has_other_clauses(s, t, |c, t| {
            std::mem::swap(&mut c.select_token, &mut t.select_token);
            std::mem::swap(&mut c.distinct, &mut t.distinct);
            std::mem::swap(&mut c.projection, &mut t.projection);
            std::mem::swap(&mut c.from, &mut t.from);
            std::mem::swap(&mut c.selection, &mut t.selection);
            std::mem::swap(&mut c.group_by, &mut t.group_by);
            std::mem::swap(&mut c.having, &mut t.having);
            std::mem::swap(&mut c.named_window, &mut t.named_window);
        });
        if other {
            return construct("a SELECT clause of another dialect");
        }
        match &mut s.distinct {
            None | Some(Distinct::Distinct) | Some(Distinct::All) => {}
            Some(Distinct::On(es)) => {
                for e in es {
                    self.expr(e)?;
                }
            }
        }
        // FROM first: LATERAL and the projection see its names, not the other way round.
        for f in &mut s.from {
            self.from(f)?;
        }
        for item in &mut s.projection {
            self.select_item(item)?;
        }
        if let Some(e) = &mut s.selection {
            self.expr(e)?;
        }
        match &mut s.group_by {
            GroupByExpr::Expressions(es, modifiers) => {
                if !modifiers.is_empty() {
                    return construct("GROUP BY … WITH");
                }
                for e in es {
                    self.expr(e)?;
                }
            }
            GroupByExpr::All(_) => return construct("GROUP BY ALL"),
        }
        if let Some(e) = &mut s.having {
            self.expr(e)?;
        }
        for w in &mut s.named_window {
            match &mut w.1 {
                NamedWindowExpr::NamedWindow(_) => {}
                NamedWindowExpr::WindowSpec(spec) => self.window(spec)?,
            }
        }
        Ok(())
    }

    fn select_item(&mut self, item: &mut SelectItem) -> R {
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => self.expr(e),
            SelectItem::Wildcard(o) => plain_wildcard(o),
            SelectItem::QualifiedWildcard(kind, o) => {
                plain_wildcard(o)?;
                match kind {
                    // `t.*`: a range variable of this query, not a relation access.
                    SelectItemQualifiedWildcardKind::ObjectName(_) => Ok(()),
                    SelectItemQualifiedWildcardKind::Expr(e) => self.expr(e),
                }
            }
            SelectItem::ExprWithAliases { .. } => construct("an expression with several aliases"),
        }
    }

    fn from(&mut self, t: &mut TableWithJoins) -> R {
        self.factor(&mut t.relation)?;
        for j in &mut t.joins {
            if j.global {
                return construct("GLOBAL JOIN");
            }
            let c = match &mut j.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c)
                | JoinOperator::CrossJoin(c) => c,
                _ => return construct("this kind of join"),
            };
            self.factor(&mut j.relation)?;
            match c {
                JoinConstraint::On(e) => self.expr(e)?,
                JoinConstraint::Using(cols) => {
                    for c in cols.iter() {
                        self.column_name(c)?;
                    }
                }
                JoinConstraint::Natural | JoinConstraint::None => {}
            }
        }
        Ok(())
    }

    fn factor(&mut self, f: &mut TableFactor) -> R {
        match f {
            TableFactor::Table {
                name,
                alias,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample,
                index_hints,
            } => {
                if args.is_some() {
                    return refuse(
                        "function",
                        format!("`{name}(…)` in FROM: a write grant allows no table functions"),
                    );
                }
                if !with_hints.is_empty()
                    || version.is_some()
                    || *with_ordinality
                    || !partitions.is_empty()
                    || json_path.is_some()
                    || sample.is_some()
                    || !index_hints.is_empty()
                {
                    return construct("a table reference with hints, versions or samples");
                }
                self.alias(alias.as_mut())?;
                self.read_relation(name)
            }
            TableFactor::Derived {
                lateral: _,
                subquery,
                alias,
                sample,
            } => {
                if sample.is_some() {
                    return construct("TABLESAMPLE");
                }
                self.alias(alias.as_mut())?;
                self.query(subquery)
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                self.alias(alias.as_mut())?;
                self.from(table_with_joins)
            }
            TableFactor::Function { name, .. } => refuse(
                "function",
                format!("`{name}(…)` in FROM: a write grant allows no table functions"),
            ),
            _ => construct("this kind of FROM item (table functions, UNNEST, JSON_TABLE, …)"),
        }
    }

    fn alias(&self, alias: Option<&mut TableAlias>) -> R {
        match alias {
            None => Ok(()),
            Some(a) => {
                self.alias_columns(a)?;
                names::quote_in_place(&mut a.name, self.dialect);
                Ok(())
            }
        }
    }

    fn alias_columns(&self, a: &TableAlias) -> R {
        if a.at.is_some() || a.columns.iter().any(|c| c.data_type.is_some()) {
            return construct("an alias with column types");
        }
        Ok(())
    }

    fn order_by(&mut self, o: &mut OrderBy) -> R {
        if o.interpolate.is_some() {
            return construct("ORDER BY … INTERPOLATE");
        }
        match &mut o.kind {
            OrderByKind::Expressions(es) => self.order_exprs(es),
            OrderByKind::All(_) => construct("ORDER BY ALL"),
        }
    }

    fn order_exprs(&mut self, es: &mut [OrderByExpr]) -> R {
        for e in es {
            if e.with_fill.is_some() {
                return construct("ORDER BY … WITH FILL");
            }
            self.expr(&mut e.expr)?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Data changes

    fn data_change(&mut self, stmt: &mut Statement) -> R {
        match stmt {
            Statement::Insert(i) => self.insert(i),
            Statement::Update(u) => self.update(u),
            Statement::Delete(d) => self.delete(d),
            other => construct(format!("a {} inside a query", first_words(other))),
        }
    }

    fn sqlite_or(&self, or: &Option<SqliteOnConflict>) -> R {
        match (self.dialect, or) {
            (_, None) | (Dialect::Sqlite, Some(_)) => Ok(()),
            (Dialect::Postgres, Some(_)) => construct("OR REPLACE/IGNORE"),
        }
    }

    fn insert(&mut self, i: &mut Insert) -> R {
        let t = &templates(self.dialect).insert;
        let other = has_other_clauses(i, t, |c, t| {
            std::mem::swap(&mut c.insert_token, &mut t.insert_token);
            std::mem::swap(&mut c.or, &mut t.or);
            std::mem::swap(&mut c.into, &mut t.into);
            std::mem::swap(&mut c.table, &mut t.table);
            std::mem::swap(&mut c.table_alias, &mut t.table_alias);
            std::mem::swap(&mut c.columns, &mut t.columns);
            std::mem::swap(&mut c.source, &mut t.source);
            std::mem::swap(&mut c.on, &mut t.on);
            std::mem::swap(&mut c.returning, &mut t.returning);
        });
        if other {
            return construct("an INSERT clause of another dialect");
        }
        self.sqlite_or(&i.or)?;
        match &mut i.table {
            sqlparser::ast::TableObject::TableName(n) => self.target(n)?,
            _ => return construct("INSERT INTO a function or query"),
        }
        for c in &i.columns {
            self.column_name(c)?;
        }
        if let Some(q) = &mut i.source {
            self.query(q)?;
        }
        match &mut i.on {
            None => {}
            Some(OnInsert::OnConflict(oc)) => {
                match &oc.conflict_target {
                    None | Some(ConflictTarget::Columns(_)) => {}
                    Some(ConflictTarget::OnConstraint(n)) => self.local_name(n, "constraint")?,
                }
                match &mut oc.action {
                    OnConflictAction::DoNothing => {}
                    OnConflictAction::DoUpdate(u) => {
                        self.assignments(&mut u.assignments)?;
                        if let Some(e) = &mut u.selection {
                            self.expr(e)?;
                        }
                    }
                }
            }
            Some(_) => return construct("ON DUPLICATE KEY UPDATE"),
        }
        self.returning(&mut i.returning)
    }

    fn assignments(&mut self, a: &mut [Assignment]) -> R {
        for a in a {
            match &a.target {
                AssignmentTarget::ColumnName(n) => self.column_name(n)?,
                AssignmentTarget::Tuple(ns) => {
                    for n in ns {
                        self.column_name(n)?;
                    }
                }
            }
            self.expr(&mut a.value)?;
        }
        Ok(())
    }

    fn returning(&mut self, r: &mut Option<Vec<SelectItem>>) -> R {
        for item in r.iter_mut().flatten() {
            self.select_item(item)?;
        }
        Ok(())
    }

    /// The one table a statement changes, with its alias.
    fn changed_table(&mut self, t: &mut TableWithJoins) -> R {
        if !t.joins.is_empty() {
            return construct("a data change of joined tables");
        }
        match &mut t.relation {
            TableFactor::Table {
                name,
                alias,
                args: None,
                with_hints,
                version: None,
                with_ordinality: false,
                partitions,
                json_path: None,
                sample: None,
                index_hints,
            } if with_hints.is_empty() && partitions.is_empty() && index_hints.is_empty() => {
                self.alias(alias.as_mut())?;
                self.target(name)
            }
            _ => construct("a data change of something other than a table"),
        }
    }

    fn update(&mut self, u: &mut Update) -> R {
        let Update {
            update_token: _,
            optimizer_hints,
            table,
            assignments,
            from,
            selection,
            returning,
            output,
            or,
            order_by,
            limit,
        } = u;
        if !optimizer_hints.is_empty()
            || output.is_some()
            || !order_by.is_empty()
            || limit.is_some()
        {
            return construct("an UPDATE clause of another dialect");
        }
        self.sqlite_or(or)?;
        // FROM first: SET and WHERE see its names.
        match from {
            None => {}
            Some(UpdateTableFromKind::AfterSet(ts)) => {
                for t in ts {
                    self.from(t)?;
                }
            }
            Some(UpdateTableFromKind::BeforeSet(_)) => {
                return construct("UPDATE … FROM before SET");
            }
        }
        self.changed_table(table)?;
        self.assignments(assignments)?;
        if let Some(e) = selection {
            self.expr(e)?;
        }
        self.returning(returning)
    }

    fn delete(&mut self, d: &mut Delete) -> R {
        let Delete {
            delete_token: _,
            optimizer_hints,
            tables,
            from,
            using,
            selection,
            returning,
            output,
            order_by,
            limit,
        } = d;
        if !optimizer_hints.is_empty()
            || !tables.is_empty()
            || output.is_some()
            || !order_by.is_empty()
            || limit.is_some()
        {
            return construct("a DELETE clause of another dialect");
        }
        let FromTable::WithFromKeyword(from) = from else {
            return construct("DELETE without FROM");
        };
        let [table] = from.as_mut_slice() else {
            return construct("DELETE from several tables");
        };
        for t in using.iter_mut().flatten() {
            self.from(t)?;
        }
        self.changed_table(table)?;
        if let Some(e) = selection {
            self.expr(e)?;
        }
        self.returning(returning)
    }

    // -----------------------------------------------------------------------------------------
    // Schema changes

    fn create_table(&mut self, c: &mut CreateTable) -> R {
        let t = &templates(self.dialect).create_table;
        if c.temporary || c.external || c.like.is_some() || c.clone.is_some() {
            return self
                .outside("CREATE TEMPORARY/EXTERNAL table, or one LIKE/CLONE another")
                .map(|_| ());
        }
        if c.inherits.is_some() || c.partition_of.is_some() {
            return self
                .outside("CREATE TABLE … INHERITS/PARTITION OF")
                .map(|_| ());
        }
        let sqlite = self.dialect == Dialect::Sqlite;
        let other = has_other_clauses(c, t, |c, t| {
            std::mem::swap(&mut c.name, &mut t.name);
            std::mem::swap(&mut c.columns, &mut t.columns);
            std::mem::swap(&mut c.constraints, &mut t.constraints);
            std::mem::swap(&mut c.if_not_exists, &mut t.if_not_exists);
            std::mem::swap(&mut c.query, &mut t.query);
            if sqlite {
                std::mem::swap(&mut c.without_rowid, &mut t.without_rowid);
                std::mem::swap(&mut c.strict, &mut t.strict);
            }
        });
        if other {
            return construct("a CREATE TABLE option (storage, tablespace, partitioning, …)");
        }
        self.target(&mut c.name)?;
        for col in &mut c.columns {
            self.column_def(col)?;
        }
        for k in &mut c.constraints {
            self.constraint(k)?;
        }
        if let Some(q) = &mut c.query {
            self.query(q)?;
        }
        Ok(())
    }

    fn column_def(&mut self, col: &mut ColumnDef) -> R {
        if !(self.dialect == Dialect::Sqlite && col.data_type == DataType::Unspecified) {
            self.data_type(&col.data_type)?;
        }
        for opt in &mut col.options {
            match &mut opt.option {
                ColumnOption::Null | ColumnOption::NotNull => {}
                ColumnOption::Default(e) => self.expr(e)?,
                ColumnOption::Check(c) => self.expr(&mut c.expr)?,
                ColumnOption::PrimaryKey(pk) => {
                    if pk.index_name.is_some()
                        || pk.index_type.is_some()
                        || !pk.index_options.is_empty()
                    {
                        return construct("a primary key with index options");
                    }
                    self.index_columns(&mut pk.columns)?;
                }
                ColumnOption::Unique(u) => {
                    if u.index_name.is_some()
                        || u.index_type.is_some()
                        || !u.index_options.is_empty()
                    {
                        return construct("a unique constraint with index options");
                    }
                    self.index_columns(&mut u.columns)?;
                }
                ColumnOption::ForeignKey(fk) => self.foreign_key(fk)?,
                ColumnOption::Collation(n) => self.collation(n)?,
                ColumnOption::OnConflict(_) if self.dialect == Dialect::Sqlite => {}
                ColumnOption::DialectSpecific(tokens)
                    if self.dialect == Dialect::Sqlite
                        && tokens.len() == 1
                        && tokens[0].to_string().eq_ignore_ascii_case("AUTOINCREMENT") => {}
                _ => return construct(format!("the column option `{}`", opt.option)),
            }
        }
        Ok(())
    }

    fn constraint(&mut self, k: &mut TableConstraint) -> R {
        match k {
            TableConstraint::PrimaryKey(pk) => {
                if pk.index_name.is_some()
                    || pk.index_type.is_some()
                    || !pk.index_options.is_empty()
                {
                    return construct("a primary key with index options");
                }
                self.index_columns(&mut pk.columns)
            }
            TableConstraint::Unique(u) => {
                if u.index_name.is_some() || u.index_type.is_some() || !u.index_options.is_empty() {
                    return construct("a unique constraint with index options");
                }
                self.index_columns(&mut u.columns)
            }
            TableConstraint::ForeignKey(fk) => self.foreign_key(fk),
            TableConstraint::Check(c) => self.expr(&mut c.expr),
            other => construct(format!("the constraint `{other}`")),
        }
    }

    fn foreign_key(&mut self, fk: &mut ForeignKeyConstraint) -> R {
        if fk.index_name.is_some() {
            return construct("a foreign key with an index name");
        }
        self.target(&mut fk.foreign_table)
    }

    fn index_columns(&mut self, cols: &mut [IndexColumn]) -> R {
        for c in cols {
            if c.operator_class.is_some() {
                return construct("an operator class (it names functions)");
            }
            if c.column.with_fill.is_some() {
                return construct("WITH FILL");
            }
            self.expr(&mut c.column.expr)?;
        }
        Ok(())
    }

    fn collation(&self, n: &ObjectName) -> R {
        let ok = idents(n).is_some_and(|p| match p.as_slice() {
            [_] => true,
            [s, _] => self.pg() && norm(s, self.dialect) == "pg_catalog",
            _ => false,
        });
        if ok {
            Ok(())
        } else {
            refuse(
                "outside-scope",
                format!("collation `{n}`: only built-in collations, unqualified or in pg_catalog"),
            )
        }
    }

    fn alter_table(&mut self, a: &mut AlterTable) -> R {
        let AlterTable {
            name,
            if_exists: _,
            only: _,
            operations,
            location,
            on_cluster,
            table_type,
            end_token: _,
        } = a;
        if location.is_some() || on_cluster.is_some() || table_type.is_some() {
            return construct("an ALTER TABLE option of another dialect");
        }
        self.target(name)?;
        for op in operations {
            match op {
                AlterTableOperation::AddColumn {
                    column_keyword: _,
                    if_not_exists: _,
                    column_def,
                    column_position: None,
                } => self.column_def(column_def)?,
                AlterTableOperation::DropColumn { drop_behavior, .. }
                | AlterTableOperation::DropConstraint { drop_behavior, .. } => {
                    if matches!(drop_behavior, Some(DropBehavior::Cascade)) {
                        return cascade_refused();
                    }
                }
                AlterTableOperation::RenameColumn { .. } if self.pg() => {}
                AlterTableOperation::RenameColumn { .. } => {
                    return refuse(
                        "statement-kind",
                        "renaming a SQLite column: SQLite rewrites every view and trigger that \
                         names it, wherever they are; add a column and copy instead",
                    );
                }
                AlterTableOperation::RenameTable { table_name } => {
                    if self.dialect == Dialect::Sqlite {
                        return refuse(
                            "statement-kind",
                            "renaming a SQLite table: SQLite's authorizer cannot see the new \
                             name, so the database wall could not hold it to the prefix; create \
                             the new table and copy the rows",
                        );
                    }
                    let (RenameTableNameKind::As(n) | RenameTableNameKind::To(n)) = table_name;
                    self.local_name(n, "renaming to")?;
                }
                AlterTableOperation::AlterColumn { op, .. } => match op {
                    AlterColumnOperation::SetNotNull
                    | AlterColumnOperation::DropNotNull
                    | AlterColumnOperation::DropDefault => {}
                    AlterColumnOperation::SetDefault { value } => self.expr(value)?,
                    AlterColumnOperation::SetDataType {
                        data_type, using, ..
                    } => {
                        self.data_type(data_type)?;
                        if let Some(u) = using {
                            self.expr(u)?;
                        }
                    }
                    other => return construct(format!("ALTER COLUMN … {other}")),
                },
                AlterTableOperation::AddConstraint { constraint, .. } => {
                    self.constraint(constraint)?
                }
                other => {
                    return self
                        .outside(&format!("ALTER TABLE … {}", first_words(other)))
                        .map(|_| ());
                }
            }
        }
        Ok(())
    }

    fn truncate(&mut self, t: &mut Truncate) -> R {
        let Truncate {
            table_names,
            partitions,
            table: _,
            if_exists: _,
            identity: _,
            cascade,
            on_cluster,
        } = t;
        if matches!(cascade, Some(sqlparser::ast::CascadeOption::Cascade)) {
            return cascade_refused();
        }
        if partitions.is_some() || on_cluster.is_some() {
            return construct("TRUNCATE of partitions");
        }
        for target in table_names {
            self.target(&mut target.name)?;
        }
        Ok(())
    }

    fn create_index(&mut self, ci: &mut CreateIndex) -> R {
        let CreateIndex {
            name,
            table_name,
            using,
            columns,
            unique: _,
            concurrently: _,
            r#async,
            if_not_exists: _,
            include,
            nulls_distinct: _,
            with,
            predicate,
            index_options,
            alter_options,
        } = ci;
        if *r#async || !with.is_empty() || !index_options.is_empty() || !alter_options.is_empty() {
            return construct("an index option");
        }
        if let Some(n) = name {
            self.local_name(n, "index name")?;
        }
        match using {
            None => {}
            Some(IndexType::BTree | IndexType::Hash | IndexType::GIN | IndexType::GiST)
            | Some(IndexType::SPGiST | IndexType::BRIN)
                if self.pg() => {}
            Some(IndexType::Custom(m))
                if self.pg() && PG_INDEX_METHODS.contains(&norm(m, self.dialect).as_str()) => {}
            Some(other) => return construct(format!("index method `{other}`")),
        }
        if !include.is_empty() && !self.pg() {
            return construct("INCLUDE");
        }
        self.target(table_name)?;
        self.index_columns(columns)?;
        if let Some(p) = predicate {
            self.expr(p)?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Expressions

    fn exprs(&mut self, es: &mut [Expr]) -> R {
        for e in es {
            self.expr(e)?;
        }
        Ok(())
    }

    /// Walk an expression. Chains (`a + b + …`, `x::t::t`, `a IS NULL IS NULL`, `a[1][2]`) are
    /// followed in a loop down their left side, so a long chain costs no stack.
    fn expr(&mut self, mut e: &mut Expr) -> R {
        loop {
            let cur = e;
            e = match cur {
                Expr::BinaryOp { left, op, right } => {
                    operator(op)?;
                    self.expr(right)?;
                    left
                }
                Expr::AnyOp {
                    left,
                    compare_op,
                    right,
                    ..
                }
                | Expr::AllOp {
                    left,
                    compare_op,
                    right,
                } => {
                    operator(compare_op)?;
                    self.expr(right)?;
                    left
                }
                Expr::Nested(inner)
                | Expr::IsFalse(inner)
                | Expr::IsNotFalse(inner)
                | Expr::IsTrue(inner)
                | Expr::IsNotTrue(inner)
                | Expr::IsNull(inner)
                | Expr::IsNotNull(inner)
                | Expr::IsUnknown(inner)
                | Expr::IsNotUnknown(inner) => inner,
                Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                    self.expr(b)?;
                    a
                }
                Expr::InList { expr, list, .. } => {
                    self.exprs(list)?;
                    expr
                }
                Expr::Between {
                    expr, low, high, ..
                } => {
                    self.expr(low)?;
                    self.expr(high)?;
                    expr
                }
                Expr::Like {
                    expr,
                    pattern,
                    escape_char,
                    ..
                }
                | Expr::ILike {
                    expr,
                    pattern,
                    escape_char,
                    ..
                }
                | Expr::SimilarTo {
                    expr,
                    pattern,
                    escape_char,
                    ..
                } => {
                    self.expr(pattern)?;
                    if let Some(c) = escape_char {
                        self.expr(c)?;
                    }
                    expr
                }
                Expr::UnaryOp { op, expr } => {
                    unary(op)?;
                    expr
                }
                Expr::Cast {
                    kind,
                    expr,
                    data_type,
                    format,
                } => {
                    if !matches!(kind, CastKind::Cast | CastKind::DoubleColon) || format.is_some() {
                        return construct("this kind of cast");
                    }
                    self.data_type(data_type)?;
                    expr
                }
                Expr::AtTimeZone {
                    timestamp,
                    time_zone,
                } => {
                    self.expr(time_zone)?;
                    timestamp
                }
                Expr::Collate { expr, collation } => {
                    self.collation(collation)?;
                    expr
                }
                Expr::CompoundFieldAccess { root, access_chain } => {
                    self.access_chain(access_chain)?;
                    root
                }
                Expr::Ceil { expr, field } | Expr::Floor { expr, field } => {
                    if let sqlparser::ast::CeilFloorKind::Scale(v) = field {
                        self.value(&v.value)?;
                    }
                    expr
                }
                Expr::Extract { expr, .. } => expr,
                Expr::Interval(i) => &mut i.value,
                other => return self.expr_node(other),
            };
        }
    }

    fn access_chain(&mut self, chain: &mut [sqlparser::ast::AccessExpr]) -> R {
        for a in chain {
            match a {
                sqlparser::ast::AccessExpr::Subscript(Subscript::Index { index }) => {
                    self.expr(index)?
                }
                sqlparser::ast::AccessExpr::Subscript(Subscript::Slice {
                    lower_bound,
                    upper_bound,
                    stride,
                }) => {
                    for e in [lower_bound, upper_bound, stride].into_iter().flatten() {
                        self.expr(e)?;
                    }
                }
                sqlparser::ast::AccessExpr::Dot(_) => {
                    return construct("field access `(…).field`");
                }
            }
        }
        Ok(())
    }

    /// The expressions that end a chain or branch out.
    fn expr_node(&mut self, e: &mut Expr) -> R {
        match e {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => Ok(()),
            Expr::Value(v) => self.value(&v.value),
            Expr::TypedString(t) => {
                if t.uses_odbc_syntax || !matches!(t.value.value, Value::SingleQuotedString(_)) {
                    return refuse("literal", "a typed literal must be `TYPE 'text'`");
                }
                self.data_type(&t.data_type)
            }
            Expr::InSubquery { expr, subquery, .. } => {
                self.expr(expr)?;
                self.query(subquery)
            }
            Expr::Position { expr, r#in } => {
                self.expr(expr)?;
                self.expr(r#in)
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                self.expr(expr)?;
                for e in [substring_from, substring_for].into_iter().flatten() {
                    self.expr(e)?;
                }
                Ok(())
            }
            Expr::Trim {
                expr,
                trim_what,
                trim_characters,
                ..
            } => {
                self.expr(expr)?;
                if let Some(w) = trim_what {
                    self.expr(w)?;
                }
                for c in trim_characters.iter_mut().flatten() {
                    self.expr(c)?;
                }
                Ok(())
            }
            Expr::Overlay {
                expr,
                overlay_what,
                overlay_from,
                overlay_for,
            } => {
                self.expr(expr)?;
                self.expr(overlay_what)?;
                self.expr(overlay_from)?;
                if let Some(f) = overlay_for {
                    self.expr(f)?;
                }
                Ok(())
            }
            Expr::Function(f) => self.function(f),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                if let Some(o) = operand {
                    self.expr(o)?;
                }
                for w in conditions {
                    self.expr(&mut w.condition)?;
                    self.expr(&mut w.result)?;
                }
                if let Some(e) = else_result {
                    self.expr(e)?;
                }
                Ok(())
            }
            Expr::Exists { subquery, .. } | Expr::Subquery(subquery) => self.query(subquery),
            Expr::GroupingSets(sets) | Expr::Cube(sets) | Expr::Rollup(sets) => {
                for s in sets {
                    self.exprs(s)?;
                }
                Ok(())
            }
            Expr::Tuple(es) => self.exprs(es),
            Expr::Array(a) => self.exprs(&mut a.elem),
            Expr::RLike { .. } => refuse(
                "function",
                "REGEXP/RLIKE calls an application-defined function; a write grant does not \
                 allow it",
            ),
            other => construct(format!("the expression `{}`", abbreviate(other))),
        }
    }

    fn value(&self, v: &Value) -> R {
        literal(self.dialect, v)
    }

    fn function(&mut self, f: &mut Function) -> R {
        let Function {
            name,
            uses_odbc_syntax,
            parameters,
            args,
            within_group,
            filter,
            null_treatment,
            over,
        } = f;
        function_allowed(self.dialect, name)?;
        if *uses_odbc_syntax
            || !matches!(parameters, FunctionArguments::None)
            || null_treatment.is_some()
        {
            return construct(format!("the call of `{name}` with that syntax"));
        }
        match args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(_) => {
                return construct(format!("`{name}(SELECT …)`"));
            }
            FunctionArguments::List(list) => {
                for a in &mut list.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => self.expr(e)?,
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => {}
                        _ => return construct(format!("an argument of `{name}`")),
                    }
                }
                for c in &mut list.clauses {
                    match c {
                        FunctionArgumentClause::OrderBy(es) => self.order_exprs(es)?,
                        _ => return construct(format!("a clause in the call of `{name}`")),
                    }
                }
            }
        }
        self.order_exprs(within_group)?;
        if let Some(f) = filter {
            self.expr(f)?;
        }
        match over {
            None | Some(sqlparser::ast::WindowType::NamedWindow(_)) => Ok(()),
            Some(sqlparser::ast::WindowType::WindowSpec(spec)) => self.window(spec),
        }
    }

    fn window(&mut self, spec: &mut WindowSpec) -> R {
        self.exprs(&mut spec.partition_by)?;
        self.order_exprs(&mut spec.order_by)?;
        if let Some(frame) = &mut spec.window_frame {
            for b in std::iter::once(&mut frame.start_bound).chain(frame.end_bound.as_mut()) {
                if let WindowFrameBound::Preceding(Some(e)) | WindowFrameBound::Following(Some(e)) =
                    b
                {
                    self.expr(e)?;
                }
            }
        }
        Ok(())
    }

    fn data_type(&self, t: &DataType) -> R {
        let bad = || {
            refuse(
                "type",
                format!(
                    "type `{t}`: a write grant allows built-in types only (a user type's input \
                     and cast functions are code the grant does not cover)"
                ),
            )
        };
        match t {
            DataType::Custom(name, modifiers) => {
                if !modifiers.is_empty() {
                    return bad();
                }
                let ok = idents(name).is_some_and(|p| match (self.dialect, p.as_slice()) {
                    // SQLite type names are affinity hints, nothing more.
                    (Dialect::Sqlite, [_]) => true,
                    (Dialect::Postgres, [n]) => {
                        PG_BUILTIN_TYPES.contains(&norm(n, self.dialect).as_str())
                    }
                    (Dialect::Postgres, [s, n]) => {
                        norm(s, self.dialect) == "pg_catalog"
                            && PG_BUILTIN_TYPES.contains(&norm(n, self.dialect).as_str())
                    }
                    _ => false,
                });
                if ok { Ok(()) } else { bad() }
            }
            DataType::Array(inner) => match inner {
                ArrayElemTypeDef::None => Ok(()),
                ArrayElemTypeDef::SquareBracket(t, _) => self.data_type(t),
                _ => bad(),
            },
            DataType::Character(_)
            | DataType::Char(_)
            | DataType::CharacterVarying(_)
            | DataType::CharVarying(_)
            | DataType::Varchar(_)
            | DataType::Uuid
            | DataType::Blob(_)
            | DataType::Numeric(_)
            | DataType::Decimal(_)
            | DataType::Dec(_)
            | DataType::Float(_)
            | DataType::Int2(_)
            | DataType::SmallInt(_)
            | DataType::Int(_)
            | DataType::Int4(_)
            | DataType::Int8(_)
            | DataType::Integer(_)
            | DataType::BigInt(_)
            | DataType::Float4
            | DataType::Float8
            | DataType::Real
            | DataType::Double(_)
            | DataType::DoublePrecision
            | DataType::Bool
            | DataType::Boolean
            | DataType::Date
            | DataType::Time(..)
            | DataType::Datetime(_)
            | DataType::Timestamp(..)
            | DataType::Interval { .. }
            | DataType::JSON
            | DataType::JSONB
            | DataType::Text
            | DataType::Bytea
            | DataType::Bit(_)
            | DataType::BitVarying(_)
            | DataType::VarBit(_)
            | DataType::TsVector
            | DataType::TsQuery => Ok(()),
            _ => bad(),
        }
    }
}

/// `DROP … CASCADE` and `TRUNCATE … CASCADE` reach whatever depends on the table, in any schema.
fn cascade_refused<T>() -> Result<T, Refusal> {
    refuse(
        "outside-scope",
        "CASCADE reaches objects that depend on the table wherever they are (views, foreign \
         keys in other schemas); drop or truncate without it",
    )
}

fn plain_wildcard(o: &WildcardAdditionalOptions) -> R {
    let plain = WildcardAdditionalOptions {
        wildcard_token: o.wildcard_token.clone(),
        ..Default::default()
    };
    if *o == plain {
        Ok(())
    } else {
        construct("`*` with EXCLUDE/EXCEPT/REPLACE/RENAME")
    }
}

fn unary(op: &UnaryOperator) -> R {
    if matches!(
        op,
        UnaryOperator::Plus
            | UnaryOperator::Minus
            | UnaryOperator::Not
            | UnaryOperator::PGSquareRoot
            | UnaryOperator::PGCubeRoot
            | UnaryOperator::PGAbs
            | UnaryOperator::BitwiseNot
    ) {
        Ok(())
    } else {
        refuse(
            "operator",
            format!("operator `{op}` is not a built-in one a write grant allows"),
        )
    }
}

/// Positional parameters in the database's own spelling: `$1` (PostgreSQL), `?`, `?1` (SQLite).
/// SQLite's named forms (`$name`, `:name`, `@name`) are refused: SQLite lexes `$name::x(…)` as
/// one parameter where sqlparser sees a cast and more.
fn placeholder(dialect: Dialect, p: &str) -> bool {
    let digits = |s: &str| s.len() <= 5 && s.chars().all(|c| c.is_ascii_digit());
    match (dialect, p.as_bytes().first()) {
        (Dialect::Postgres, Some(b'$')) => p.len() > 1 && digits(&p[1..]),
        (Dialect::Sqlite, Some(b'?')) => digits(&p[1..]),
        _ => false,
    }
}

/// The literal kinds both scopes allow: those whose rendering the database reads as sqlparser
/// does.
pub(crate) fn literal(dialect: Dialect, v: &Value) -> R {
    let pg = dialect == Dialect::Postgres;
    let ok = match v {
        Value::Number(..) | Value::SingleQuotedString(_) | Value::Boolean(_) | Value::Null => true,
        Value::EscapedStringLiteral(_) | Value::NationalStringLiteral(_) => pg,
        // PostgreSQL's rule for a tag: an identifier without `$` (sqlparser also takes `$1$`,
        // which PostgreSQL reads as a parameter followed by more).
        Value::DollarQuotedString(d) => {
            pg && d.tag.as_deref().is_none_or(|t| {
                t.starts_with(|c: char| c.is_alphabetic() || c == '_')
                    && t.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
        }
        Value::HexStringLiteral(h) => h.chars().all(|c| c.is_ascii_hexdigit()),
        Value::Placeholder(p) => placeholder(dialect, p),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        refuse(
            "literal",
            format!(
                "the literal `{}`: sluice allows numbers, 'strings'{}, X'hex', booleans, NULL and \
                 positional parameters ({})",
                abbreviate(v),
                if pg {
                    ", E'escapes', $$dollar quotes$$"
                } else {
                    ""
                },
                if pg { "$1" } else { "?, ?1" }
            ),
        )
    }
}

/// Built-in operators (the database resolves them in `pg_catalog`, searched first); `OPERATOR(…)`
/// and custom operators may call any function.
fn operator(op: &BinaryOperator) -> R {
    use BinaryOperator as B;
    let ok = matches!(
        op,
        B::Plus
            | B::Minus
            | B::Multiply
            | B::Divide
            | B::Modulo
            | B::StringConcat
            | B::Gt
            | B::Lt
            | B::GtEq
            | B::LtEq
            | B::Eq
            | B::NotEq
            | B::And
            | B::Or
            | B::BitwiseOr
            | B::BitwiseAnd
            | B::BitwiseXor
            | B::PGBitwiseXor
            | B::PGBitwiseShiftLeft
            | B::PGBitwiseShiftRight
            | B::PGExp
            | B::PGOverlap
            | B::PGRegexMatch
            | B::PGRegexIMatch
            | B::PGRegexNotMatch
            | B::PGRegexNotIMatch
            | B::PGLikeMatch
            | B::PGILikeMatch
            | B::PGNotLikeMatch
            | B::PGNotILikeMatch
            | B::PGStartsWith
            | B::Arrow
            | B::LongArrow
            | B::HashArrow
            | B::HashLongArrow
            | B::AtArrow
            | B::ArrowAt
            | B::HashMinus
            | B::Question
            | B::QuestionAnd
            | B::QuestionPipe
            | B::Glob
    );
    if ok {
        Ok(())
    } else {
        refuse(
            "operator",
            format!(
                "operator `{op}`: a write grant allows built-in operators only (a custom \
                 operator calls a function the grant does not cover)"
            ),
        )
    }
}

/// Whether a write may call `name`: on the list by its final part, and unqualified or in
/// `pg_catalog` (PostgreSQL), unqualified (SQLite).
fn function_allowed(dialect: Dialect, name: &ObjectName) -> R {
    let allowed = idents(name).is_some_and(|parts| match parts.as_slice() {
        [f] => WRITE_FUNCTIONS.contains(&norm(f, dialect).as_str()),
        [s, f] => {
            dialect == Dialect::Postgres
                && norm(s, dialect) == "pg_catalog"
                && WRITE_FUNCTIONS.contains(&norm(f, dialect).as_str())
        }
        _ => false,
    });
    if allowed {
        Ok(())
    } else {
        refuse(
            "function",
            format!(
                "function `{name}` is not on the list a write grant allows (pure built-ins for \
                 conversion, comparison, aggregation and JSON, unqualified or in pg_catalog)"
            ),
        )
    }
}

fn abbreviate(x: &impl std::fmt::Display) -> String {
    let s = x.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// The second pass: sqlparser's own visitor over the checked statement.
struct Second<'a> {
    dialect: Dialect,
    scope: &'a str,
    ctes: &'a [String],
}

impl Visitor for Second<'_> {
    type Break = Refusal;

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Refusal> {
        let inside = idents(relation).is_some_and(|p| match (self.dialect, p.as_slice()) {
            (_, [one]) if self.ctes.contains(&norm(one, self.dialect)) => true,
            (Dialect::Postgres, [s, _]) => norm(s, self.dialect) == self.scope,
            (Dialect::Sqlite, [t]) => has_prefix(&norm(t, self.dialect), self.scope),
            (Dialect::Sqlite, [s, t]) => {
                norm(s, self.dialect) == "main" && has_prefix(&norm(t, self.dialect), self.scope)
            }
            _ => false,
        });
        if inside {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(Refusal {
                rule: "outside-scope",
                detail: format!("`{relation}` is outside the grant"),
            })
        }
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<Refusal> {
        match t {
            TableFactor::Table { args: None, .. }
            | TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. } => ControlFlow::Continue(()),
            _ => ControlFlow::Break(Refusal {
                rule: "function",
                detail: "a table function in FROM".into(),
            }),
        }
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<Refusal> {
        if let Expr::Function(f) = e
            && let Err(r) = function_allowed(self.dialect, &f.name)
        {
            return ControlFlow::Break(r);
        }
        ControlFlow::Continue(())
    }
}
