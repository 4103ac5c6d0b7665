//! Committed checkpoints: sealed per stream, committed in one transaction with the stats they
//! cover.

use super::runs::{self, upsert_stats};
use super::*;

/// A committed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedState {
    /// The stream and its state.
    pub state: StreamState,
    /// The run that committed it.
    pub run_id: i64,
}

impl Store {
    /// The committed checkpoints of `connection`.
    pub async fn states(&self, connection: &str) -> Result<Vec<CommittedState>, StoreError> {
        let rows = sqlx::query(
            "SELECT stream, state, run_id FROM stream_state WHERE connection = $1 ORDER BY stream",
        )
        .bind(connection)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read states"))?;
        rows.into_iter()
            .map(|r| {
                let stream: String = r.get("stream");
                let stored: String = r.get("state");
                let state = self.open_text(&state_identity(connection, &stream), &stored)?;
                Ok(CommittedState {
                    state: StreamState { stream, state },
                    run_id: r.get("run_id"),
                })
            })
            .collect()
    }

    /// Set the committed checkpoints of `connection` from outside a run (a state moved over from
    /// another system), atomically; they are recorded as committed by run 0. Streams not named
    /// keep theirs.
    pub async fn import_states(
        &self,
        connection: &str,
        states: &[StreamState],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin state import"))?;
        let at = now();
        for s in states {
            sqlx::query("INSERT INTO stream_state (connection, stream, state, run_id, updated_at) VALUES ($1, $2, $3, 0, $4) ON CONFLICT (connection, stream) DO UPDATE SET state = excluded.state, run_id = excluded.run_id, updated_at = excluded.updated_at")
                .bind(connection)
                .bind(&s.stream)
                .bind(self.seal_text(&state_identity(connection, &s.stream), &s.state))
                .bind(&at)
                .execute(&mut *tx)
                .await
                .map_err(db("import state"))?;
        }
        tx.commit().await.map_err(db("commit state import"))
    }

    /// Forget the committed checkpoints of `connection`: the next run reads from the start.
    pub async fn reset_state(&self, connection: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM stream_state WHERE connection = $1")
            .bind(connection)
            .execute(&self.pool)
            .await
            .map_err(db("reset state"))?;
        Ok(done.rows_affected())
    }

    /// Commit checkpoints and the stats they cover, atomically, for attempt `attempt` of run
    /// `run_id`: refused ([`StoreError::Fenced`]) when the run has moved on to a later attempt
    /// (another worker took it over), so two attempts never both commit.
    pub async fn commit_checkpoint(
        &self,
        run_id: i64,
        attempt: i64,
        connection: &str,
        states: &[StreamState],
        stats: &[StreamStats],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin checkpoint"))?;
        runs::fence(&mut tx, run_id, attempt).await?;
        let at = now();
        for s in states {
            sqlx::query("INSERT INTO stream_state (connection, stream, state, run_id, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connection, stream) DO UPDATE SET state = excluded.state, run_id = excluded.run_id, updated_at = excluded.updated_at")
                .bind(connection)
                .bind(&s.stream)
                .bind(self.seal_text(&state_identity(connection, &s.stream), &s.state))
                .bind(run_id)
                .bind(&at)
                .execute(&mut *tx)
                .await
                .map_err(db("commit state"))?;
        }
        upsert_stats(&mut tx, run_id, stats).await?;
        tx.commit().await.map_err(db("commit checkpoint"))
    }
}
