//! Runs: begun (or resumed), finished with their per-stream stats and masking counts, listed.

use super::*;

/// The lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// In progress (or its process died; see [`RunStatus::Interrupted`]).
    Running,
    /// Finished; everything was moved.
    Succeeded,
    /// Stopped on an error.
    Failed,
    /// Its process went away mid-run.
    Interrupted,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// A run status the store does not know (a newer sluice wrote it, or the file was edited).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for RunStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        Ok(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
            other => return Err(UnknownStatus(other.to_string())),
        })
    }
}

/// A run as the store records it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// The run id.
    pub id: i64,
    /// The connection's name.
    pub connection: String,
    /// Status.
    pub status: RunStatus,
    /// 1 for the first attempt, +1 per resume.
    pub attempt: i64,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339, once finished.
    pub finished_at: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Per-stream committed counts.
    pub streams: Vec<StreamStats>,
}

/// How a run started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    /// Its id.
    pub run_id: i64,
    /// Its attempt number.
    pub attempt: i64,
    /// Stats committed by earlier attempts of the same run.
    pub committed: Vec<StreamStats>,
}

impl RunStart {
    /// Whether this continues an earlier, unfinished attempt.
    pub fn is_resume(&self) -> bool {
        self.attempt > 1
    }
}

/// What the store holds, summed (see [`Store::run_totals`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTotals {
    /// Runs per status.
    pub runs_by_status: Vec<(String, i64)>,
    /// Records durably written, over every run.
    pub records: i64,
    /// Bytes durably written, over every run.
    pub bytes: i64,
}

impl Store {
    /// Start a run of `connection`. Unless `fresh`, an unfinished run (interrupted or failed) is
    /// resumed: same id, next attempt. Call it holding the connection's lock, so that a run
    /// still marked `running` is known to be dead.
    pub async fn begin_run(
        &self,
        _lock: &ConnectionLock,
        connection: &str,
        fresh: bool,
    ) -> Result<RunStart, StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin run"))?;
        // The lock is this machine's; the queue is the fleet's: a run a worker holds (or will
        // claim) is not taken over from outside it.
        let queued = sqlx::query("SELECT id FROM run_queue WHERE connection = $1")
            .bind(connection)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("look in the run queue"))?;
        if queued.is_some() {
            return Err(StoreError::Queued(connection.to_string()));
        }
        let start = begin_in(&mut tx, connection, fresh).await?;
        tx.commit().await.map_err(db("begin run"))?;
        Ok(start)
    }

    /// Record the end of attempt `attempt` of a run with its final stats; refused
    /// ([`StoreError::Fenced`]) when the run has moved on to a later attempt.
    pub async fn finish_run(
        &self,
        run_id: i64,
        attempt: i64,
        status: RunStatus,
        error: Option<&str>,
        stats: &[StreamStats],
        log_dropped: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin finish"))?;
        fence(&mut tx, run_id, attempt).await?;
        upsert_stats(&mut tx, run_id, stats).await?;
        sqlx::query("UPDATE runs SET status = $1, error = $2, finished_at = $3, log_dropped = log_dropped + $4 WHERE id = $5")
            .bind(status.as_str())
            .bind(error)
            .bind(now())
            .bind(log_dropped as i64)
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(db("finish run"))?;
        tx.commit().await.map_err(db("finish run"))
    }

    /// Add a run's masking counts (an attempt's counts add to earlier attempts').
    pub async fn add_masking(&self, run_id: i64, masked: &MaskStats) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin masking"))?;
        for l in masked.lines() {
            sqlx::query("INSERT INTO run_masking (run_id, stream, field, by, count) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id, stream, field, by) DO UPDATE SET count = run_masking.count + excluded.count")
                .bind(run_id)
                .bind(&l.stream)
                .bind(&l.field)
                .bind(&l.by)
                .bind(l.count as i64)
                .execute(&mut *tx)
                .await
                .map_err(db("write masking"))?;
        }
        tx.commit().await.map_err(db("write masking"))
    }

    /// A run's masking counts.
    pub async fn masking(&self, run_id: i64) -> Result<MaskStats, StoreError> {
        let rows = sqlx::query(
            "SELECT stream, field, by, count FROM run_masking WHERE run_id = $1 ORDER BY stream, field, by",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read masking"))?;
        Ok(MaskStats::from_lines(rows.into_iter().map(|r| MaskCount {
            stream: r.get("stream"),
            field: r.get("field"),
            by: r.get("by"),
            count: r.get::<i64, _>("count") as u64,
        })))
    }

    /// Runs by status, and the records and bytes written over every run (for `/metrics`).
    pub async fn run_totals(&self) -> Result<RunTotals, StoreError> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await
                .map_err(db("count runs"))?;
        let sums = sqlx::query(
            // PostgreSQL sums BIGINTs to NUMERIC: cast back to the integer both read.
            "SELECT CAST(COALESCE(SUM(records), 0) AS BIGINT) AS r, \
             CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b FROM run_streams",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db("sum run stats"))?;
        Ok(RunTotals {
            runs_by_status: rows.iter().map(|r| (r.get("status"), r.get("n"))).collect(),
            records: sums.get("r"),
            bytes: sums.get("b"),
        })
    }

    /// One run.
    pub async fn run(&self, id: i64) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.run_rows(None, Some(id), 1).await?.pop())
    }

    /// The most recent runs, newest first, of one connection or all.
    pub async fn runs(
        &self,
        connection: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.run_rows(connection, None, limit).await
    }

    async fn run_rows(
        &self,
        connection: Option<&str>,
        id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query("SELECT id, connection, status, attempt, started_at, finished_at, error FROM runs WHERE ($1 IS NULL OR connection = $1) AND ($2 IS NULL OR id = $2) ORDER BY id DESC LIMIT $3")
            .bind(connection)
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db("list runs"))?;
        let mut out = Vec::with_capacity(rows.len());
        let mut conn = self.pool.acquire().await.map_err(db("list runs"))?;
        for r in rows {
            let id: i64 = r.get("id");
            let status: String = r.get("status");
            out.push(RunRecord {
                id,
                connection: r.get("connection"),
                status: status.parse().unwrap_or(RunStatus::Failed),
                attempt: r.get("attempt"),
                started_at: r.get("started_at"),
                finished_at: r.get("finished_at"),
                error: r.get("error"),
                streams: stream_stats(&mut conn, id).await?,
            });
        }
        Ok(out)
    }
}

/// Hold attempt `attempt` of run `run_id` to being the run's current attempt, inside `conn`'s
/// transaction: the fencing token. The update takes the run's row lock on PostgreSQL, so a
/// worker taking the run over (which raises `attempt` under the same lock) waits for this
/// transaction, or this one finds the attempt moved on and is refused.
pub(super) async fn fence(
    conn: &mut sqlx::AnyConnection,
    run_id: i64,
    attempt: i64,
) -> Result<(), StoreError> {
    let held = sqlx::query(
        "UPDATE runs SET attempt = attempt WHERE id = $1 AND attempt = $2 AND status = 'running'",
    )
    .bind(run_id)
    .bind(attempt)
    .execute(&mut *conn)
    .await
    .map_err(db("check the run's attempt"))?;
    if held.rows_affected() == 1 {
        return Ok(());
    }
    let now: Option<(i64, String)> = sqlx::query("SELECT attempt, status FROM runs WHERE id = $1")
        .bind(run_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("read the run's attempt"))?
        .map(|r| (r.get("attempt"), r.get("status")));
    Err(StoreError::Fenced {
        run_id,
        attempt,
        now: match now {
            Some((a, _)) if a != attempt => format!("attempt {a} holds it now"),
            Some((_, status)) => format!("it is {status}"),
            None => "it no longer exists".into(),
        },
    })
}

/// Begin a run of `connection` in `conn`'s transaction: a run still marked `running` is dead
/// (its caller holds the connection), so it is marked interrupted; unless `fresh`, the last
/// unfinished run (interrupted or failed) is resumed at its next attempt; else a run is
/// inserted.
pub(super) async fn begin_in(
    conn: &mut sqlx::AnyConnection,
    connection: &str,
    fresh: bool,
) -> Result<RunStart, StoreError> {
    sqlx::query(
        "UPDATE runs SET status = 'interrupted' WHERE connection = $1 AND status = 'running'",
    )
    .bind(connection)
    .execute(&mut *conn)
    .await
    .map_err(db("mark interrupted runs"))?;
    let last = sqlx::query(
        "SELECT id, status, attempt FROM runs WHERE connection = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(connection)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db("find the last run"))?;
    let resumable = last.filter(|row| {
        let status: String = row.get("status");
        !fresh && (status == "interrupted" || status == "failed")
    });
    let start = match resumable {
        Some(row) => {
            let run_id: i64 = row.get("id");
            let attempt: i64 = row.get::<i64, _>("attempt") + 1;
            sqlx::query("UPDATE runs SET status = 'running', attempt = $1, finished_at = NULL, error = NULL WHERE id = $2")
                .bind(attempt)
                .bind(run_id)
                .execute(&mut *conn)
                .await
                .map_err(db("resume run"))?;
            let committed = stream_stats(conn, run_id).await?;
            RunStart {
                run_id,
                attempt,
                committed,
            }
        }
        None => {
            if fresh {
                sqlx::query("UPDATE runs SET status = 'failed', error = COALESCE(error, 'abandoned: a fresh run was started') WHERE connection = $1 AND status = 'interrupted'")
                    .bind(connection)
                    .execute(&mut *conn)
                    .await
                    .map_err(db("abandon unfinished runs"))?;
            }
            let run_id = sqlx::query("INSERT INTO runs (connection, status, started_at) VALUES ($1, 'running', $2) RETURNING id")
                .bind(connection)
                .bind(now())
                .fetch_one(&mut *conn)
                .await
                .map_err(db("insert run"))?
                .get("id");
            RunStart {
                run_id,
                attempt: 1,
                committed: Vec::new(),
            }
        }
    };
    Ok(start)
}

pub(super) async fn stream_stats(
    conn: &mut sqlx::AnyConnection,
    run_id: i64,
) -> Result<Vec<StreamStats>, StoreError> {
    let rows = sqlx::query(
        "SELECT stream, records, bytes FROM run_streams WHERE run_id = $1 ORDER BY rowid",
    )
    .bind(run_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db("read stats"))?;
    Ok(rows
        .into_iter()
        .map(|r| StreamStats {
            stream: r.get("stream"),
            records: r.get::<i64, _>("records") as u64,
            bytes: r.get::<i64, _>("bytes") as u64,
        })
        .collect())
}

pub(super) async fn upsert_stats(
    conn: &mut sqlx::AnyConnection,
    run_id: i64,
    stats: &[StreamStats],
) -> Result<(), StoreError> {
    for s in stats {
        sqlx::query("INSERT INTO run_streams (run_id, stream, records, bytes) VALUES ($1, $2, $3, $4) ON CONFLICT (run_id, stream) DO UPDATE SET records = excluded.records, bytes = excluded.bytes")
            .bind(run_id)
            .bind(&s.stream)
            .bind(s.records as i64)
            .bind(s.bytes as i64)
            .execute(&mut *conn)
            .await
            .map_err(db("write stats"))?;
    }
    Ok(())
}
