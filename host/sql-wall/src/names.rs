//! Names as the database resolves them, and the grant's scope over them.

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

use crate::{Dialect, Refusal, refuse};

/// An identifier as the database compares it: PostgreSQL folds unquoted names to lower case
/// (ASCII only, in a UTF-8 database) and keeps quoted ones; SQLite compares names
/// case-insensitively (ASCII only).
pub(crate) fn norm(ident: &Ident, dialect: Dialect) -> String {
    match (dialect, ident.quote_style) {
        (Dialect::Postgres, Some(_)) => ident.value.clone(),
        _ => ident.value.to_ascii_lowercase(),
    }
}

/// The plain identifiers of a name, or `None` if a part is something else.
pub(crate) fn idents(name: &ObjectName) -> Option<Vec<&Ident>> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

/// `value` as a double-quoted identifier (both dialects).
pub(crate) fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// For SQLite: whether `table` (normalized) carries the prefix.
pub(crate) fn has_prefix(table: &str, prefix: &str) -> bool {
    table.starts_with(&prefix.to_ascii_lowercase())
}

/// `ident` as a quoted identifier that means what it meant: PostgreSQL's folded name (unquoted
/// names fold to lower case), SQLite's as written (it compares case-insensitively). A quoted
/// name is never a keyword, so the database cannot read a name where sqlparser saw one (or the
/// other way round: `FROM only pg_authid`).
pub(crate) fn quote_in_place(ident: &mut Ident, dialect: Dialect) {
    let value = match dialect {
        Dialect::Postgres => norm(ident, dialect),
        Dialect::Sqlite => ident.value.clone(),
    };
    *ident = Ident::with_quote('"', value);
}

/// Check a relation name against the scope, qualifying a bare PostgreSQL name with the schema
/// and quoting every part: after this the name means an object inside the grant, whatever the
/// session's search path. Never used for a name that refers to a common table expression.
pub(crate) fn scoped(dialect: Dialect, scope: &str, name: &mut ObjectName) -> Result<(), Refusal> {
    scoped_unquoted(dialect, scope, name)?;
    for part in &mut name.0 {
        if let ObjectNamePart::Identifier(i) = part {
            quote_in_place(i, dialect);
        }
    }
    Ok(())
}

fn scoped_unquoted(dialect: Dialect, scope: &str, name: &mut ObjectName) -> Result<(), Refusal> {
    let shown = name.to_string();
    let Some(parts) = idents(name) else {
        return refuse("outside-scope", format!("`{shown}` is not a plain name"));
    };
    match dialect {
        Dialect::Postgres => match parts.as_slice() {
            [_] => {
                name.0.insert(
                    0,
                    ObjectNamePart::Identifier(Ident::with_quote('"', scope.to_string())),
                );
                Ok(())
            }
            [s, _] if norm(s, dialect) == scope => Ok(()),
            [_, _] => refuse(
                "outside-scope",
                format!(
                    "`{shown}` is outside the granted schema `{scope}`; a write grant reaches \
                     only objects inside it"
                ),
            ),
            _ => refuse(
                "outside-scope",
                format!("`{shown}`: names may be `table` or `{scope}.table`, nothing longer"),
            ),
        },
        Dialect::Sqlite => {
            let table = match parts.as_slice() {
                [t] => t,
                [s, t] if norm(s, dialect) == "main" => t,
                _ => {
                    return refuse(
                        "outside-scope",
                        format!(
                            "`{shown}` is outside the main database; a write grant reaches only \
                             tables named `{scope}…` in it"
                        ),
                    );
                }
            };
            if has_prefix(&norm(table, dialect), scope) {
                Ok(())
            } else {
                refuse(
                    "outside-scope",
                    format!("`{shown}` does not start with the granted table prefix `{scope}`"),
                )
            }
        }
    }
}

/// A load's target, checked and spelled by the host: every part quoted, so the text spliced into
/// `COPY` or `INSERT` cannot mean anything but that table.
pub(crate) fn quoted_target(
    dialect: Dialect,
    scope: &str,
    name: &ObjectName,
) -> Result<String, Refusal> {
    let mut name = name.clone();
    scoped_unquoted(dialect, scope, &mut name)?;
    let parts = idents(&name).expect("checked by `scoped`");
    let table = parts.last().expect("a name has a part");
    Ok(match dialect {
        Dialect::Postgres => format!("{}.{}", quote(scope), quote(&norm(table, dialect))),
        // SQLite compares names case-insensitively: keep the connector's spelling.
        Dialect::Sqlite => quote(&table.value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn unquoted_postgres_names_fold_and_quoted_ones_do_not() {
        assert_eq!(norm(&Ident::new("Raw"), Dialect::Postgres), "raw");
        assert_eq!(
            norm(&Ident::with_quote('"', "Raw"), Dialect::Postgres),
            "Raw"
        );
        assert_eq!(norm(&Ident::with_quote('"', "Raw"), Dialect::Sqlite), "raw");
    }
}
