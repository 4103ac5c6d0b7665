//! A run's log lines and wall events, kept for the run-log retention.

use super::*;

impl Store {
    /// Append connector log lines to a run.
    pub async fn append_logs(&self, run_id: i64, lines: &[LogLine]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin logs"))?;
        let start: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM run_logs WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db("log position"))?
                .get("s");
        for (i, line) in lines.iter().enumerate() {
            let level = serde_json::to_value(line.level)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            sqlx::query("INSERT INTO run_logs (run_id, seq, connector, level, message) VALUES ($1, $2, $3, $4, $5)")
                .bind(run_id)
                .bind(start + 1 + i as i64)
                .bind(&line.connector)
                .bind(level)
                .bind(&line.message)
                .execute(&mut *tx)
                .await
                .map_err(db("append log"))?;
        }
        tx.commit().await.map_err(db("append logs"))
    }

    /// Record a run's events at the wall (appended after any of an earlier attempt).
    pub async fn append_events(&self, run_id: i64, events: &[Event]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin events"))?;
        let start: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM run_events WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db("event position"))?
                .get("s");
        let text = |v: serde_json::Value| v.as_str().map(str::to_string).unwrap_or_default();
        for (i, e) in events.iter().enumerate() {
            sqlx::query(
                "INSERT INTO run_events (run_id, seq, at_ms, connector, capability, outcome, action, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(run_id)
            .bind(start + 1 + i as i64)
            .bind(e.at_ms)
            .bind(&e.connector)
            .bind(text(serde_json::to_value(e.capability).unwrap_or_default()))
            .bind(text(serde_json::to_value(e.outcome).unwrap_or_default()))
            .bind(&e.action)
            .bind(&e.detail)
            .execute(&mut *tx)
            .await
            .map_err(db("append event"))?;
        }
        tx.commit().await.map_err(db("append events"))
    }

    /// The events of a run, in order.
    pub async fn events(&self, run_id: i64) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, connector, capability, outcome, action, detail FROM run_events \
             WHERE run_id = $1 ORDER BY seq",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read events"))?;
        fn parse<T: serde::de::DeserializeOwned>(s: String) -> Result<T, serde_json::Error> {
            serde_json::from_value(serde_json::Value::String(s))
        }
        rows.into_iter()
            .map(|r| {
                Ok(Event {
                    at_ms: r.get("at_ms"),
                    connector: r.get("connector"),
                    capability: parse(r.get("capability"))
                        .map_err(|e| StoreError::Corrupt(format!("event capability: {e}")))?,
                    outcome: parse(r.get("outcome"))
                        .map_err(|e| StoreError::Corrupt(format!("event outcome: {e}")))?,
                    action: r.get("action"),
                    detail: r.get("detail"),
                })
            })
            .collect()
    }

    /// The log lines of a run: (connector, level, message).
    pub async fn logs(&self, run_id: i64) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT connector, level, message FROM run_logs WHERE run_id = $1 ORDER BY seq",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read logs"))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("connector"), r.get("level"), r.get("message")))
            .collect())
    }
}
