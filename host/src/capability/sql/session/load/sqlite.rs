//! SQLite: multi-row `INSERT`s, chunked under SQLite's limit on bound variables.

use super::super::*;
use super::csv::{Fields, record_lines};

pub(in crate::capability::sql::session) async fn load_lite(
    c: &mut SqliteConnection,
    table: &str,
    quoted: &[String],
    columns: &[String],
    records: &[u8],
    in_tx: bool,
    db: &Database,
) -> Result<u64, SqlError> {
    let mut fields = Fields::new(columns);
    let mut recs: Vec<Vec<Option<&RawValue>>> = Vec::new();
    for (i, line) in record_lines(records).enumerate() {
        fields.parse(line, i)?;
        recs.push(fields.values.clone());
    }
    let per_stmt = rows_per_statement(columns.len());
    let stmt_for = |n: usize| {
        let one = format!("({})", vec!["?"; columns.len()].join(","));
        format!(
            "INSERT INTO {table} ({}) VALUES {}",
            quoted.join(", "),
            vec![one.as_str(); n].join(",")
        )
    };
    let full = stmt_for(per_stmt);
    let own_tx = !in_tx;
    if own_tx {
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *c)
            .await
            .map_err(|e| map_err(e, db))?;
    }
    let result = async {
        let mut total = 0;
        for chunk in recs.chunks(per_stmt) {
            let sql = if chunk.len() == per_stmt {
                Cow::Borrowed(full.as_str())
            } else {
                Cow::Owned(stmt_for(chunk.len()))
            };
            let mut q = sqlx::query(AssertSqlSafe(&*sql));
            for rec in chunk {
                for v in rec {
                    q = bind_lite_field(q, *v)?;
                }
            }
            total += q
                .execute(&mut *c)
                .await
                .map_err(|e| map_err(e, db))?
                .rows_affected();
        }
        Ok::<u64, SqlError>(total)
    }
    .await;
    if own_tx {
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        sqlx::raw_sql(end)
            .execute(&mut *c)
            .await
            .map_err(|e| map_err(e, db))?;
    }
    result
}

fn bind_lite_field<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    raw: Option<&'q RawValue>,
) -> Result<sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>, SqlError> {
    let Some(raw) = raw else {
        return Ok(q.bind(None::<i64>));
    };
    let text = raw.get();
    Ok(match text.as_bytes().first() {
        Some(b'n') => q.bind(None::<i64>),
        Some(b't') => q.bind(true),
        Some(b'f') => q.bind(false),
        Some(b'"') => {
            let s: String = serde_json::from_str(text)
                .map_err(|e| SqlError::Invalid(format!("bad string in a record: {e}")))?;
            q.bind(s)
        }
        Some(b'{' | b'[') => q.bind(text),
        _ => match text.parse::<i64>() {
            Ok(i) => q.bind(i),
            Err(_) => q.bind(
                text.parse::<f64>()
                    .map_err(|_| SqlError::Invalid(format!("bad number in a record: {text}")))?,
            ),
        },
    })
}

/// How many records one `INSERT` carries: at most 200, and never more bound variables than
/// SQLite allows (however wide the table).
fn rows_per_statement(columns: usize) -> usize {
    (SQLITE_MAX_VARS / columns.max(1)).clamp(1, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_stay_under_sqlites_variable_limit_however_wide_the_table() {
        assert_eq!(rows_per_statement(1), 200);
        assert_eq!(rows_per_statement(3), 200);
        for columns in [
            150,
            151,
            1_000,
            29_999,
            SQLITE_MAX_VARS,
            SQLITE_MAX_VARS + 1,
            100_000,
        ] {
            let n = rows_per_statement(columns);
            assert!(n >= 1, "{columns}");
            assert!(
                n * columns <= SQLITE_MAX_VARS || n == 1,
                "{columns}: {n} rows"
            );
        }
        assert_eq!(
            rows_per_statement(0),
            200,
            "no columns: no division by zero"
        );
    }
}
