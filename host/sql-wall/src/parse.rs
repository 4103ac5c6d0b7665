//! Text to one statement, and one statement back to text that parses to exactly it.

use sqlparser::ast::{ObjectName, Statement};
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

/// Operator keywords that continue an expression chain.
const CHAIN_KEYWORDS: &[Keyword] = &[
    Keyword::AND,
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

/// Refuse a statement whose operator chains could build a tree deeper than [`MAX_CHAIN`].
fn depth_guard(dialect: Dialect, sql: &str) -> Result<(), Refusal> {
    let d = parser_dialect(dialect);
    let tokens = Tokenizer::new(d.as_ref(), sql).tokenize().or_else(|e| {
        refuse(
            "unparseable",
            format!("the statement cannot be parsed, so it is not run ({e})"),
        )
    })?;
    // One chain counter per open parenthesis or bracket; `path` is their sum.
    let mut open: Vec<usize> = vec![0];
    let mut path = 0usize;
    let mut sets = 0usize;
    for t in &tokens {
        let mut bump = false;
        match t {
            Token::LParen | Token::LBrace => open.push(0),
            // A subscript continues the chain it follows.
            Token::LBracket => {
                *open.last_mut().expect("never empty") += 1;
                path += 1;
                open.push(0);
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                if open.len() > 1 {
                    path -= open.pop().unwrap_or(0);
                }
            }
            Token::Comma | Token::SemiColon => {
                let last = open.last_mut().expect("never empty");
                path -= *last;
                *last = 0;
            }
            Token::Word(w) if w.quote_style.is_none() && SET_KEYWORDS.contains(&w.keyword) => {
                sets += 1;
            }
            Token::Word(w) => bump = w.quote_style.is_none() && CHAIN_KEYWORDS.contains(&w.keyword),
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
            *open.last_mut().expect("never empty") += 1;
            path += 1;
        }
        if path > MAX_CHAIN || sets > MAX_CHAIN {
            return refuse(
                "too-deep",
                format!(
                    "the statement chains more than {MAX_CHAIN} operators or set operations;                      use `IN (…)` lists, a staging table or several statements"
                ),
            );
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

/// The text to run for `stmt`: its rendering, refused unless that rendering parses back to one
/// statement equal to `stmt`. sqlparser's `Display` is not an escaping function (it writes some
/// literals' contents as they are), so a rendering that reads differently is caught here, before
/// anything reaches the database.
pub(crate) fn render_exactly(dialect: Dialect, stmt: &Statement) -> Result<String, Refusal> {
    let text = stmt.to_string();
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
