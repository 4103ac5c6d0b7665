//! The read rule: one query, nothing that writes, locks or acts outside the query.
//!
//! Reads may name any relation and call user functions: the session is read-only at the
//! database (and its role should hold no write privilege), which refuses whatever such a
//! function tries to change. What the read-only transaction cannot stop — functions that act on
//! the server, other sessions, files or SQL text of their own — is refused here by the function's
//! final name part, whatever its qualification, wherever it is called (expressions and `FROM`).

use std::ops::ControlFlow;

use sqlparser::ast::{
    DescribeAlias, Expr, Ident, ObjectName, ObjectNamePart, Query, SetExpr, Statement, TableFactor,
    ValueWithSpan, Visit, Visitor,
};

use crate::lists::read_denied;
use crate::{Dialect, Kind, Refusal, Shape, refuse};

/// `EXPLAIN (…)` options that only shape the plan's output.
const EXPLAIN_OPTIONS: &[&str] = &[
    "costs",
    "format",
    "generic_plan",
    "settings",
    "summary",
    "verbose",
];

pub(crate) fn check(_dialect: Dialect, stmt: &Statement) -> Result<Shape, Refusal> {
    let (query, kind) = match stmt {
        Statement::Query(q) => (q.as_ref(), Kind::Query),
        Statement::Explain {
            describe_alias,
            analyze,
            verbose: _,
            query_plan: _,
            estimate,
            statement,
            format: _,
            options,
        } => {
            if *analyze {
                return refuse(
                    "read-only",
                    "EXPLAIN ANALYZE runs the statement; a read grant allows EXPLAIN without it",
                );
            }
            if *describe_alias != DescribeAlias::Explain || *estimate {
                return refuse("read-only", "only plain EXPLAIN of a query is allowed");
            }
            for o in options.iter().flatten() {
                let name = o.name.value.to_ascii_lowercase();
                if !EXPLAIN_OPTIONS.contains(&name.as_str()) {
                    return refuse(
                        "read-only",
                        format!(
                            "EXPLAIN option `{name}`: a read grant allows only {} (ANALYZE runs \
                             the statement)",
                            EXPLAIN_OPTIONS.join(", ")
                        ),
                    );
                }
            }
            match statement.as_ref() {
                Statement::Query(q) => (q.as_ref(), Kind::Explain),
                other => {
                    return refuse(
                        "read-only",
                        format!(
                            "EXPLAIN of a {} statement; a read grant allows queries only",
                            crate::write::first_words(other)
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
                    crate::write::first_words(other)
                ),
            );
        }
    };
    if let ControlFlow::Break(r) = query.visit(&mut ReadChecker { dialect: _dialect }) {
        return Err(r);
    }
    Ok(Shape {
        kind,
        ..Shape::query()
    })
}

struct ReadChecker {
    dialect: Dialect,
}

impl Visitor for ReadChecker {
    type Break = Refusal;

    fn pre_visit_value(&mut self, v: &ValueWithSpan) -> ControlFlow<Refusal> {
        match crate::write::literal(self.dialect, &v.value) {
            Ok(()) => ControlFlow::Continue(()),
            Err(r) => ControlFlow::Break(r),
        }
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<Refusal> {
        if !q.locks.is_empty() {
            return ControlFlow::Break(Refusal {
                rule: "read-only",
                detail: "a locking clause (FOR UPDATE/SHARE) takes row locks; a read grant \
                         allows plain queries"
                    .into(),
            });
        }
        match set_body(&q.body) {
            Err(r) => ControlFlow::Break(r),
            Ok(()) => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Refusal> {
        // A function in FROM may reach the visitor as a relation.
        match denied(relation) {
            Some(r) => ControlFlow::Break(r),
            None => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<Refusal> {
        let name = match t {
            TableFactor::Table { name, .. } | TableFactor::Function { name, .. } => name,
            _ => return ControlFlow::Continue(()),
        };
        match denied(name) {
            Some(r) => ControlFlow::Break(r),
            None => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<Refusal> {
        if let Expr::Function(f) = e
            && let Some(r) = denied(&f.name)
        {
            return ControlFlow::Break(r);
        }
        ControlFlow::Continue(())
    }
}

fn set_body(body: &SetExpr) -> Result<(), Refusal> {
    match body {
        // `TABLE name` names a relation the visitor does not see as one.
        SetExpr::Table(t) => match t
            .table_name
            .as_deref()
            .map(|n| denied(&ObjectName::from(vec![Ident::new(n)])))
        {
            Some(Some(r)) => Err(r),
            _ => Ok(()),
        },
        SetExpr::Select(s) if s.into.is_some() => refuse(
            "read-only",
            "SELECT … INTO creates a table; a read grant allows plain queries",
        ),
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => refuse(
            "read-only",
            "a data-modifying statement inside a query; a read grant allows plain queries",
        ),
        SetExpr::SetOperation { left, right, .. } => {
            set_body(left)?;
            set_body(right)
        }
        _ => Ok(()),
    }
}

/// The refusal for calling `name` in a read, by its final part whatever qualifies it.
fn denied(name: &ObjectName) -> Option<Refusal> {
    let Some(ObjectNamePart::Identifier(last)) = name.0.last() else {
        return Some(Refusal {
            rule: "read-only",
            detail: format!("`{name}` is not a plain name"),
        });
    };
    let f = last.value.to_ascii_lowercase();
    read_denied(&f).then(|| Refusal {
        rule: "read-only",
        detail: format!(
            "function `{f}` acts outside the query (sessions, locks, files, settings or SQL text \
             of its own); a read grant does not allow it"
        ),
    })
}
