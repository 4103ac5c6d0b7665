//! Text to one statement, and one statement back to text that parses to exactly it.

use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, Expr, ObjectName, Statement, Value, VisitMut, VisitorMut};
use sqlparser::dialect::{Dialect as ParserDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::{Dialect, Refusal, refuse};

/// The longest statement text the policy reads (256 KiB). Bulk data goes through `load`, not
/// through statement text; a longer statement is refused before it is parsed, so parse time and
/// the depth of what is built from it stay bounded.
pub const MAX_STATEMENT_BYTES: usize = 256 << 10;

/// The most operators a statement may chain along one path of parentheses, and the most set
/// operations (`UNION` …) it may hold. sqlparser bounds how deeply it recurses, but builds a chain
/// of operators (`a OR b OR c …`, `1+1+1 …`, `x::t::t …`) or set operations into a tree as deep as
/// the chain is long, and everything that walks, compares, clones, prints or drops that tree
/// recurses once per level: a long enough chain would overflow any stack. The chain is counted
/// on the tokens, before anything is built.
pub const MAX_CHAIN: usize = 2000;

/// Queries and subqueries in one statement: each is a large tree, so their number bounds the
/// memory a check takes (a 256 KiB text of `(SELECT 1),` would otherwise take hundreds of MiB).
const MAX_QUERIES: usize = 512;

/// Groups open at once: more than the parser's own recursion limit ever lets through.
const MAX_NESTING: usize = 128;

/// Operator keywords that continue an expression chain.
const CHAIN_KEYWORDS: &[Keyword] = &[
    Keyword::AND,
    Keyword::NOTNULL,
    Keyword::AT,
    Keyword::BETWEEN,
    Keyword::COLLATE,
    Keyword::DIV,
    Keyword::ESCAPE,
    Keyword::GLOB,
    Keyword::ILIKE,
    Keyword::IN,
    Keyword::IS,
    Keyword::LIKE,
    Keyword::MATCH,
    Keyword::NOT,
    Keyword::OPERATOR,
    Keyword::OR,
    Keyword::OVERLAPS,
    Keyword::REGEXP,
    Keyword::RLIKE,
    Keyword::SIMILAR,
    Keyword::XOR,
];

const SET_KEYWORDS: &[Keyword] = &[
    Keyword::UNION,
    Keyword::EXCEPT,
    Keyword::INTERSECT,
    Keyword::MINUS,
];

/// Refuse a statement whose tree could be deeper than [`MAX_CHAIN`], by a bound computed on the
/// tokens: a chain of `n` operators whose deepest operand is a group (parentheses, brackets) of
/// depth `g` is at most `n + g` deep; groups separated by commas are siblings.
fn depth_guard(dialect: Dialect, sql: &str) -> Result<(), Refusal> {
    let d = parser_dialect(dialect);
    let tokens = Tokenizer::new(d.as_ref(), sql).tokenize().or_else(|e| {
        refuse(
            "unparseable",
            format!("the statement cannot be parsed, so it is not run ({e})"),
        )
    })?;
    /// One open group: the operators of its current comma-separated part, the deepest group
    /// among that part's operands, and the deepest part already closed by a comma.
    #[derive(Default)]
    struct Level {
        ops: usize,
        deepest_operand: usize,
        deepest_part: usize,
    }
    impl Level {
        fn depth(&self) -> usize {
            (self.ops + self.deepest_operand).max(self.deepest_part)
        }
    }
    let mut open: Vec<Level> = vec![Level::default()];
    let mut sets = 0usize;
    let mut selects = 0usize;
    let too_deep = || {
        refuse(
            "too-deep",
            format!(
                "the statement chains more than {MAX_CHAIN} operators or set operations; use \
                 `IN (…)` lists, a staging table or several statements"
            ),
        )
    };
    for t in &tokens {
        let mut bump = false;
        match t {
            Token::LParen | Token::LBrace => open.push(Level::default()),
            // A subscript continues the chain it follows.
            Token::LBracket => {
                bump = true;
                open.push(Level::default());
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                if open.len() > 1 {
                    let group = open.pop().expect("more than one").depth() + 1;
                    let parent = open.last_mut().expect("never empty");
                    parent.deepest_operand = parent.deepest_operand.max(group);
                }
            }
            Token::Comma | Token::SemiColon => {
                let last = open.last_mut().expect("never empty");
                last.deepest_part = last.depth();
                last.ops = 0;
                last.deepest_operand = 0;
            }
            Token::Word(w) if w.quote_style.is_none() && SET_KEYWORDS.contains(&w.keyword) => {
                sets += 1;
            }
            Token::Word(w) if w.quote_style.is_none() && w.keyword == Keyword::SELECT => {
                selects += 1;
                if selects > MAX_QUERIES {
                    return refuse(
                        "too-many",
                        format!(
                            "the statement holds more than {MAX_QUERIES} queries and subqueries; \
                             split it"
                        ),
                    );
                }
            }
            Token::Word(w) => {
                bump = w.quote_style.is_none()
                    && (CHAIN_KEYWORDS.contains(&w.keyword)
                        || w.value.eq_ignore_ascii_case("isnull"));
            }
            Token::EOF
            | Token::Whitespace(_)
            | Token::Number(..)
            | Token::Period
            | Token::Placeholder(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::EscapedStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::UnicodeStringLiteral(_) => {}
            _ => bump = true,
        }
        if bump {
            // On the group the operator belongs to: for `[`, the one it was opened in.
            let n = open.len();
            let at = if matches!(t, Token::LBracket) {
                n - 2
            } else {
                n - 1
            };
            open[at].ops += 1;
        }
        // The depth reached along the open groups (few: the parser nests no deeper than 50).
        if open.len() > MAX_NESTING {
            return too_deep();
        }
        let path: usize = open.iter().map(|l| l.depth() + 1).sum();
        if path > MAX_CHAIN || sets > MAX_CHAIN {
            return too_deep();
        }
    }
    Ok(())
}

fn parser_dialect(dialect: Dialect) -> Box<dyn ParserDialect> {
    match dialect {
        Dialect::Postgres => Box::new(PostgreSqlDialect {}),
        Dialect::Sqlite => Box::new(SQLiteDialect {}),
    }
}

fn statements(dialect: Dialect, sql: &str) -> Result<Vec<Statement>, String> {
    let d = parser_dialect(dialect);
    Parser::parse_sql(d.as_ref(), sql).map_err(|e| e.to_string())
}

/// Exactly one statement, or a refusal.
pub(crate) fn one(dialect: Dialect, sql: &str) -> Result<Statement, Refusal> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return refuse(
            "too-long",
            format!(
                "the statement is {} bytes; the limit is {MAX_STATEMENT_BYTES} (send records with \
                 `load`, not inside the statement text)",
                sql.len()
            ),
        );
    }
    if sql.contains('\0') {
        return refuse("unparseable", "the statement contains a NUL character");
    }
    depth_guard(dialect, sql)?;
    let mut stmts = statements(dialect, sql).or_else(|e| {
        refuse(
            "unparseable",
            format!("the statement cannot be parsed, so it is not run ({e})"),
        )
    })?;
    match stmts.len() {
        1 => Ok(stmts.remove(0)),
        0 => refuse("one-statement", "the text holds no statement"),
        n => refuse(
            "one-statement",
            format!("the text holds {n} statements; send one statement per call"),
        ),
    }
}

/// Make every operator's grouping explicit: each compound operand of an operator is wrapped in
/// parentheses. sqlparser's precedence is not the database's in every case (`~ a + 2`,
/// `s IS NULL < 2`), and its rendering adds no parentheses of its own; with them, the database
/// evaluates the tree that was checked.
pub(crate) fn parenthesize(stmt: &mut Statement) {
    struct Parens;
    fn compound(e: &Expr) -> bool {
        !matches!(
            e,
            Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
                | Expr::Value(_)
                | Expr::Nested(_)
                | Expr::Function(_)
                | Expr::Subquery(_)
                | Expr::Case { .. }
                | Expr::Tuple(_)
                | Expr::Array(_)
                | Expr::TypedString(_)
                | Expr::Interval(_)
                | Expr::Extract { .. }
                | Expr::Substring { .. }
                | Expr::Trim { .. }
                | Expr::Position { .. }
                | Expr::Overlay { .. }
                | Expr::Ceil { .. }
                | Expr::Floor { .. }
        )
    }
    fn wrap(e: &mut Box<Expr>) {
        if compound(e) {
            let inner = std::mem::replace(e.as_mut(), Expr::Value(Value::Null.into()));
            **e = Expr::Nested(Box::new(inner));
        }
    }
    /// Operators that group left to right, one class at a time, in sqlparser and both databases
    /// alike: a chain of them keeps its left operand bare (wrapping it would nest parentheses as
    /// deep as the chain is long).
    fn class(op: &BinaryOperator) -> Option<u8> {
        use BinaryOperator as B;
        match op {
            B::Plus | B::Minus => Some(1),
            B::Multiply | B::Divide | B::Modulo => Some(2),
            B::And => Some(3),
            B::Or => Some(4),
            B::StringConcat => Some(5),
            _ => None,
        }
    }
    impl VisitorMut for Parens {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            match e {
                Expr::BinaryOp { left, op, right } => {
                    let chained = matches!(left.as_ref(), Expr::BinaryOp { op: inner, .. }
                        if class(inner).is_some() && class(inner) == class(op));
                    if !chained {
                        wrap(left);
                    }
                    wrap(right);
                }
                Expr::IsDistinctFrom(left, right)
                | Expr::IsNotDistinctFrom(left, right)
                | Expr::AtTimeZone {
                    timestamp: left,
                    time_zone: right,
                } => {
                    wrap(left);
                    wrap(right);
                }
                Expr::Like { expr, pattern, .. }
                | Expr::ILike { expr, pattern, .. }
                | Expr::SimilarTo { expr, pattern, .. }
                | Expr::RLike { expr, pattern, .. } => {
                    wrap(expr);
                    wrap(pattern);
                }
                Expr::Between {
                    expr, low, high, ..
                } => {
                    wrap(expr);
                    wrap(low);
                    wrap(high);
                }
                Expr::UnaryOp { expr: x, .. }
                | Expr::Cast { expr: x, .. }
                | Expr::Collate { expr: x, .. }
                | Expr::IsNull(x)
                | Expr::IsNotNull(x)
                | Expr::IsTrue(x)
                | Expr::IsNotTrue(x)
                | Expr::IsFalse(x)
                | Expr::IsNotFalse(x)
                | Expr::IsUnknown(x)
                | Expr::IsNotUnknown(x)
                | Expr::InList { expr: x, .. }
                | Expr::InSubquery { expr: x, .. }
                | Expr::AnyOp { left: x, .. }
                | Expr::AllOp { left: x, .. }
                | Expr::CompoundFieldAccess { root: x, .. } => wrap(x),
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Parens);
}

/// The text to run for `stmt`: its rendering, refused unless that rendering parses back to one
/// statement equal to `stmt`. sqlparser's `Display` is not an escaping function (it writes some
/// literals' contents as they are), so a rendering that reads differently is caught here, before
/// anything reaches the database.
pub(crate) fn render_exactly(dialect: Dialect, stmt: &Statement) -> Result<String, Refusal> {
    let text = stmt.to_string();
    if text.contains('\0') {
        return refuse(
            "render",
            "the statement renders with a NUL character (an escape that decodes to one)",
        );
    }
    lexes_alike(dialect, &text)?;
    let why = match statements(dialect, &text) {
        Ok(again) if again.len() == 1 && again[0] == *stmt => return Ok(text),
        Ok(again) if again.len() != 1 => format!("it renders as {} statements", again.len()),
        Ok(_) => "its rendering parses to a different statement".to_string(),
        Err(e) => format!("its rendering does not parse ({e})"),
    };
    refuse(
        "render",
        format!(
            "the statement cannot be passed on exactly as it was checked: {why}; write it \
             without the construct sluice cannot render faithfully (often an unusual literal)"
        ),
    )
}

/// Refuse a rendering the database could split into tokens differently than sqlparser did: an
/// operator PostgreSQL would end early — at a comment start (`--`, `/*`), or before a trailing
/// `+`/`-` — would leave the rest of the line to be read as something the policy never saw.
fn lexes_alike(dialect: Dialect, text: &str) -> Result<(), Refusal> {
    let d = parser_dialect(dialect);
    let Ok(tokens) = Tokenizer::new(d.as_ref(), text).tokenize() else {
        return refuse("render", "the rendering cannot be tokenized");
    };
    for t in &tokens {
        if let Token::CustomBinaryOperator(op) = t {
            let lexes_apart = op.contains("--")
                || op.contains("/*")
                || (op.len() > 1 && (op.ends_with('+') || op.ends_with('-')));
            if lexes_apart {
                return refuse(
                    "render",
                    format!(
                        "operator `{op}`: the database would read it as a shorter operator \
                         followed by something else (a comment, a sign)"
                    ),
                );
            }
        }
    }
    Ok(())
}

/// A table name, alone.
pub(crate) fn name(dialect: Dialect, table: &str) -> Result<ObjectName, Refusal> {
    let bad = |e: String| Refusal {
        rule: "unparseable",
        detail: format!("`{table}` is not a table name ({e})"),
    };
    if table.len() > 1024 || table.contains('\0') {
        return Err(bad("too long, or a NUL character".into()));
    }
    let d = parser_dialect(dialect);
    let mut p = Parser::new(d.as_ref())
        .try_with_sql(table)
        .map_err(|e| bad(e.to_string()))?;
    let name = p.parse_object_name(false).map_err(|e| bad(e.to_string()))?;
    if p.peek_token().token != Token::EOF {
        return Err(bad("more than a name".into()));
    }
    Ok(name)
}
