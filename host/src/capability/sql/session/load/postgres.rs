//! PostgreSQL: one `COPY … FROM STDIN` per load.

use sqlx::postgres::PgConnection;

use super::super::{Database, SqlError, map_err};
use super::csv::{copy_statement, to_csv};

pub(in crate::capability::sql::session) async fn load_pg(
    c: &mut PgConnection,
    table: &str,
    quoted: &[String],
    columns: &[String],
    records: &[u8],
    db: &Database,
) -> Result<u64, SqlError> {
    let (csv, _) = to_csv(columns, records)?;
    let stmt = copy_statement(table, quoted);
    let mut copy = c.copy_in_raw(&stmt).await.map_err(|e| map_err(e, db))?;
    if let Err(e) = copy.send(csv).await {
        let _ = copy.abort("sluice: load failed").await;
        return Err(map_err(e, db));
    }
    copy.finish().await.map_err(|e| map_err(e, db))
}
