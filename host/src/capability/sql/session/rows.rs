//! A query's rows, streamed: the query's task owns the connection while it sends rows (one JSON
//! line each) through a bounded channel, and hands the connection back when they are read or
//! dropped.

use super::*;

impl Rows {
    /// Up to `max` rows as newline-delimited JSON; `None` once every row was read.
    pub async fn next(&mut self, max: u32) -> Result<Option<Vec<u8>>, SqlError> {
        if self.done {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut n = 0;
        while n < max.max(1) {
            // Wait for the first row of a batch; take the rest as far as they are ready.
            let item = if n == 0 {
                match tokio::time::timeout(self.deadline, self.rx.recv()).await {
                    Ok(i) => i,
                    Err(_) => {
                        self.done = true;
                        return Err(SqlError::Timeout(format!(
                            "no row arrived within {:.1}s",
                            self.deadline.as_secs_f64()
                        )));
                    }
                }
            } else {
                match self.rx.try_recv() {
                    Ok(i) => Some(i),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if out.len() > 1 << 20 {
                            break;
                        }
                        match tokio::time::timeout(self.deadline, self.rx.recv()).await {
                            Ok(i) => i,
                            Err(_) => break,
                        }
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            match item {
                Some(Ok(line)) => {
                    out.extend_from_slice(&line);
                    out.push(b'\n');
                    n += 1;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        if n == 0 { Ok(None) } else { Ok(Some(out)) }
    }
}

/// The task behind [`Rows`]: run the query, send each row as one JSON line, give the connection
/// back.
pub(super) async fn stream_rows(
    mut conn: Conn,
    checked: policy::Checked,
    params: Vec<Value>,
    tx: mpsc::Sender<Result<Vec<u8>, SqlError>>,
    db: Arc<Database>,
    refused: impl Fn(SqlError) -> SqlError,
) -> Conn {
    match &mut conn {
        Conn::Pg(c) => {
            let sql = match checked.kind {
                Kind::Query => format!("SELECT row_to_json(q)::text FROM ({}) AS q", checked.sql),
                _ => checked.sql.clone(),
            };
            let explain = checked.kind == Kind::Explain;
            let rows = bind_pg(sqlx::query(AssertSqlSafe(sql.as_str())), &params).fetch(&mut *c);
            forward(
                rows,
                &tx,
                &db,
                |row| {
                    let text = row.try_get::<&str, _>(0).map_err(|e| map_err(e, &db))?;
                    Ok(if explain {
                        serde_json::json!({ "QUERY PLAN": text })
                            .to_string()
                            .into_bytes()
                    } else {
                        text.as_bytes().to_vec()
                    })
                },
                |e| e,
            )
            .await;
        }
        Conn::Lite(c) => {
            let rows =
                bind_lite(sqlx::query(AssertSqlSafe(checked.sql.as_str())), &params).fetch(&mut *c);
            forward(rows, &tx, &db, |row| Ok(lite_row_json(&row)), refused).await;
        }
    }
    conn
}

/// Send each row of `rows` as one JSON line until they end, one fails, or nobody reads them.
pub(super) async fn forward<R>(
    mut rows: impl futures_util::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    tx: &mpsc::Sender<Result<Vec<u8>, SqlError>>,
    db: &Database,
    line: impl Fn(R) -> Result<Vec<u8>, SqlError>,
    refused: impl Fn(SqlError) -> SqlError,
) {
    loop {
        let item = tokio::select! {
            _ = tx.closed() => return,
            item = rows.next() => item,
        };
        let out = match item {
            None => return,
            Some(row) => row.map_err(|e| refused(map_err(e, db))).and_then(&line),
        };
        let stop = out.is_err();
        if tx.send(out).await.is_err() || stop {
            return;
        }
    }
}

/// One SQLite row as a JSON object keyed by column name.
pub(super) fn lite_row_json(row: &SqliteRow) -> Vec<u8> {
    let mut obj = serde_json::Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let v = match row.try_get_raw(i) {
            Ok(raw) if raw.is_null() => serde_json::Value::Null,
            Ok(raw) => match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" => row
                    .try_get::<i64, _>(i)
                    .map(serde_json::Value::from)
                    .unwrap_or_default(),
                "REAL" => row
                    .try_get::<f64, _>(i)
                    .map(serde_json::Value::from)
                    .unwrap_or_default(),
                "BLOB" => row
                    .try_get::<Vec<u8>, _>(i)
                    .map(|b| serde_json::Value::from(hex::encode(b)))
                    .unwrap_or_default(),
                _ => row
                    .try_get::<String, _>(i)
                    .map(serde_json::Value::from)
                    .unwrap_or_default(),
            },
            Err(_) => serde_json::Value::Null,
        };
        obj.insert(col.name().to_string(), v);
    }
    serde_json::Value::Object(obj).to_string().into_bytes()
}
