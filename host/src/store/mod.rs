//! Control-plane persistence: runs, per-stream stats, committed checkpoints and run logs, in a
//! SQLite file under the data dir (nothing to install).
//!
//! Checkpoints are committed in one transaction with the stats they cover, with
//! `synchronous = FULL`, so after a crash the store never claims more than the destination
//! durably holds.

mod api_keys;
mod audit;
mod installed;
mod lock;
mod purge;
mod sealed;
mod webhooks;
mod workspaces;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

pub use lock::{ConnectionLock, LockError};

use std::sync::Arc;

pub use api_keys::{ApiKey, KeyChange, KeyRefusal, TOKEN_PREFIX};
pub use audit::AuditFilter;
pub use installed::InstalledConnector;
pub use purge::PurgeReport;
pub use sealed::StoredSecret;
pub use webhooks::{Attempt, Delivery, DueDelivery, WEBHOOK_SECRET_PREFIX, Webhook, now_ms};
pub use workspaces::{
    ConnectionDef, Endpoint, EndpointKind, Member, SecretStatus, Workspace, connection_key,
};

use crate::boundary::audit::Event;
use crate::boundary::crypto::{self, CryptoError, Keyring};
use crate::boundary::pii::{MaskCount, MaskStats};
use crate::protocol::LogLine;
use crate::protocol::StreamState;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data dir could not be created.
    #[error("cannot create data dir {}: {source}", path.display())]
    DataDir {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A database error.
    #[error("store error ({context}): {source}")]
    Db {
        /// What was being done.
        context: &'static str,
        /// The database error.
        source: sqlx::Error,
    },
    /// The schema could not be migrated.
    #[error("cannot migrate the store at {}: {source}", path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The migration error.
        source: sqlx::migrate::MigrateError,
    },
    /// A row holds a value this version cannot read.
    #[error("the store holds an unreadable value: {0}")]
    Corrupt(String),
    /// A file the store keeps beside the database could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Sealing or opening a value, or the keyring.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { context, source }
}

/// The lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
            other => return Err(format!("unknown run status `{other}`")),
        })
    }
}

/// A run as the store records it.
#[derive(Debug, Clone, Serialize)]
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

/// Records and bytes of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    /// The stream.
    pub stream: String,
    /// Records.
    pub records: u64,
    /// Bytes of JSONL.
    pub bytes: u64,
}

/// A committed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedState {
    /// The stream and its state.
    pub state: StreamState,
    /// The run that committed it.
    pub run_id: i64,
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

/// The store, with the keyring that seals what it keeps.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    dir: PathBuf,
    keyring: Arc<Keyring>,
}

/// The prefix of a sealed value in a text column (base64 follows).
const SEALED: &str = "sealed:";

fn state_identity(connection: &str, stream: &str) -> String {
    format!("state/{connection}/{stream}")
}

/// Now, as RFC 3339 (how the store writes times).
pub fn now_rfc3339() -> String {
    now()
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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
    /// Open (creating if needed) the store in `data_dir`, with the data dir's keyring.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let keyring = Keyring::open(data_dir)?;
        Self::open_with(data_dir, Arc::new(keyring)).await
    }

    /// Open the store in `data_dir` with `keyring`.
    pub async fn open_with(data_dir: &Path, keyring: Arc<Keyring>) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let file = data_dir.join("sluice.db");
        let options = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Two processes opening a fresh data dir at once would both try to create the file,
        // switch it to WAL (which SQLite does not retry on a busy database) and create the
        // schema; the first to take this lock does all three, the other then finds them done.
        let lock_path = data_dir.join("store.lock");
        let guard = tokio::task::spawn_blocking(move || {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            f.lock().map(|()| f)
        })
        .await
        .map_err(std::io::Error::other)
        .flatten()
        .map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let pool = match SqlitePoolOptions::new()
            .max_connections(12)
            .connect_with(options)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                drop(guard);
                return Err(db("open")(e));
            }
        };
        let migrated = sqlx::migrate!("./migrations").run(&pool).await;
        drop(guard);
        migrated.map_err(|source| StoreError::Migrate { path: file, source })?;
        let store = Store {
            pool,
            dir: data_dir.to_path_buf(),
            keyring,
        };
        store.adopt_anchor().await?;
        Ok(store)
    }

    /// The keyring, shared (for work handed to other threads).
    pub fn keyring_arc(&self) -> Arc<Keyring> {
        self.keyring.clone()
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Take the exclusive lock on running `connection`.
    pub fn lock(&self, connection: &str) -> Result<ConnectionLock, LockError> {
        ConnectionLock::acquire(&self.dir.join("locks"), connection)
    }

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
        sqlx::query(
            "UPDATE runs SET status = 'interrupted' WHERE connection = ? AND status = 'running'",
        )
        .bind(connection)
        .execute(&mut *tx)
        .await
        .map_err(db("mark interrupted runs"))?;
        let last = sqlx::query(
            "SELECT id, status, attempt FROM runs WHERE connection = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(connection)
        .fetch_optional(&mut *tx)
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
                sqlx::query("UPDATE runs SET status = 'running', attempt = ?, finished_at = NULL, error = NULL WHERE id = ?")
                    .bind(attempt)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("resume run"))?;
                let committed = stream_stats(&mut tx, run_id).await?;
                RunStart {
                    run_id,
                    attempt,
                    committed,
                }
            }
            None => {
                if fresh {
                    sqlx::query("UPDATE runs SET status = 'failed', error = COALESCE(error, 'abandoned: a fresh run was started') WHERE connection = ? AND status = 'interrupted'")
                        .bind(connection)
                        .execute(&mut *tx)
                        .await
                        .map_err(db("abandon unfinished runs"))?;
                }
                let run_id = sqlx::query("INSERT INTO runs (connection, status, started_at) VALUES (?, 'running', ?) RETURNING id")
                    .bind(connection)
                    .bind(now())
                    .fetch_one(&mut *tx)
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
        tx.commit().await.map_err(db("begin run"))?;
        Ok(start)
    }

    /// The committed checkpoints of `connection`.
    pub async fn states(&self, connection: &str) -> Result<Vec<CommittedState>, StoreError> {
        let rows = sqlx::query(
            "SELECT stream, state, run_id FROM stream_state WHERE connection = ? ORDER BY stream",
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

    /// Seal `text` for a text column.
    fn seal_text(&self, identity: &str, text: &str) -> String {
        use base64::Engine;
        let sealed = crypto::seal(&self.keyring, identity, text.as_bytes());
        format!(
            "{SEALED}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        )
    }

    /// Open a text column written by [`Store::seal_text`]. Plain values (written before
    /// encryption at rest) are returned as they are; the next write seals them.
    fn open_text(&self, identity: &str, stored: &str) -> Result<String, StoreError> {
        use base64::Engine;
        let Some(b64) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_string());
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| StoreError::Corrupt(format!("{identity} is not base64")))?;
        let plain = crypto::open(&self.keyring, identity, &bytes)?;
        String::from_utf8(plain.to_vec())
            .map_err(|_| StoreError::Corrupt(format!("{identity} is not UTF-8")))
    }

    /// Forget the committed checkpoints of `connection`: the next run reads from the start.
    pub async fn reset_state(&self, connection: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM stream_state WHERE connection = ?")
            .bind(connection)
            .execute(&self.pool)
            .await
            .map_err(db("reset state"))?;
        Ok(done.rows_affected())
    }

    /// Commit checkpoints and the stats they cover, atomically.
    pub async fn commit_checkpoint(
        &self,
        run_id: i64,
        connection: &str,
        states: &[StreamState],
        stats: &[StreamStats],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin checkpoint"))?;
        let at = now();
        for s in states {
            sqlx::query("INSERT INTO stream_state (connection, stream, state, run_id, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (connection, stream) DO UPDATE SET state = excluded.state, run_id = excluded.run_id, updated_at = excluded.updated_at")
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

    /// Record the end of a run with its final stats.
    pub async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<&str>,
        stats: &[StreamStats],
        log_dropped: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin finish"))?;
        upsert_stats(&mut tx, run_id, stats).await?;
        sqlx::query("UPDATE runs SET status = ?, error = ?, finished_at = ?, log_dropped = log_dropped + ? WHERE id = ?")
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
            sqlx::query("INSERT INTO run_masking (run_id, stream, field, by, count) VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, stream, field, by) DO UPDATE SET count = count + excluded.count")
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
            "SELECT stream, field, by, count FROM run_masking WHERE run_id = ? ORDER BY stream, field, by",
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

    /// Append connector log lines to a run.
    pub async fn append_logs(&self, run_id: i64, lines: &[LogLine]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin logs"))?;
        let start: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM run_logs WHERE run_id = ?")
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
            sqlx::query("INSERT INTO run_logs (run_id, seq, connector, level, message) VALUES (?, ?, ?, ?, ?)")
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

    /// Runs by status, and the records and bytes written over every run (for `/metrics`).
    pub async fn run_totals(&self) -> Result<RunTotals, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(db("count runs"))?;
        let sums = sqlx::query(
            "SELECT COALESCE(SUM(records), 0) AS r, COALESCE(SUM(bytes), 0) AS b FROM run_streams",
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

    /// A write transaction that takes SQLite's write lock at `BEGIN` (`BEGIN IMMEDIATE`):
    /// a deferred one that reads first and then writes fails with "database is locked" when
    /// another connection wrote in between, without waiting (two runs at once hit this).
    pub(super) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Record a run's events at the wall (appended after any of an earlier attempt).
    pub async fn append_events(&self, run_id: i64, events: &[Event]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin events"))?;
        let start: i64 =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM run_events WHERE run_id = ?")
                .bind(run_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db("event position"))?
                .get("s");
        let text = |v: serde_json::Value| v.as_str().map(str::to_string).unwrap_or_default();
        for (i, e) in events.iter().enumerate() {
            sqlx::query(
                "INSERT INTO run_events (run_id, seq, at_ms, connector, capability, outcome, action, detail) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
             WHERE run_id = ? ORDER BY seq",
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
            "SELECT connector, level, message FROM run_logs WHERE run_id = ? ORDER BY seq",
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
        let rows = sqlx::query("SELECT id, connection, status, attempt, started_at, finished_at, error FROM runs WHERE (?1 IS NULL OR connection = ?1) AND (?2 IS NULL OR id = ?2) ORDER BY id DESC LIMIT ?3")
            .bind(connection)
            .bind(id)
            .bind(limit)
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

async fn stream_stats(
    conn: &mut sqlx::SqliteConnection,
    run_id: i64,
) -> Result<Vec<StreamStats>, StoreError> {
    let rows = sqlx::query(
        "SELECT stream, records, bytes FROM run_streams WHERE run_id = ? ORDER BY rowid",
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

async fn upsert_stats(
    conn: &mut sqlx::SqliteConnection,
    run_id: i64,
    stats: &[StreamStats],
) -> Result<(), StoreError> {
    for s in stats {
        sqlx::query("INSERT INTO run_streams (run_id, stream, records, bytes) VALUES (?, ?, ?, ?) ON CONFLICT (run_id, stream) DO UPDATE SET records = excluded.records, bytes = excluded.bytes")
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        (dir, store)
    }

    fn st(stream: &str, state: &str) -> StreamState {
        StreamState {
            stream: stream.into(),
            state: state.into(),
        }
    }

    #[tokio::test]
    async fn an_unfinished_run_is_resumed_and_a_fresh_one_is_not() {
        let (_d, s) = store().await;
        let lock = s.lock("c").unwrap();
        let first = s.begin_run(&lock, "c", false).await.unwrap();
        assert_eq!(first.attempt, 1);
        let stats = [StreamStats {
            stream: "users".into(),
            records: 10,
            bytes: 100,
        }];
        s.commit_checkpoint(first.run_id, "c", &[st("users", "{\"n\":10}")], &stats)
            .await
            .unwrap();
        // The process "dies": the run stays `running`. The next begin resumes it.
        let second = s.begin_run(&lock, "c", false).await.unwrap();
        assert_eq!((second.run_id, second.attempt), (first.run_id, 2));
        assert_eq!(second.committed, stats);
        s.finish_run(second.run_id, RunStatus::Succeeded, None, &stats, 0)
            .await
            .unwrap();
        let third = s.begin_run(&lock, "c", false).await.unwrap();
        assert_ne!(third.run_id, first.run_id);
        assert_eq!(third.attempt, 1);
        s.finish_run(third.run_id, RunStatus::Failed, Some("boom"), &[], 0)
            .await
            .unwrap();
        let fresh = s.begin_run(&lock, "c", true).await.unwrap();
        assert_ne!(fresh.run_id, third.run_id);
        let runs = s.runs(Some("c"), 10).await.unwrap();
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[1].error.as_deref(), Some("boom"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_opens_of_a_fresh_data_dir_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let path = dir.path().to_path_buf();
                tokio::spawn(async move { Store::open(&path).await.map(|_| ()) })
            })
            .collect();
        for o in opens {
            o.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn checkpoints_overwrite_per_stream_and_remember_the_run() {
        let (_d, s) = store().await;
        s.commit_checkpoint(1, "c", &[st("a", "1"), st("b", "1")], &[])
            .await
            .unwrap();
        s.commit_checkpoint(2, "c", &[st("a", "2")], &[])
            .await
            .unwrap();
        s.commit_checkpoint(2, "other", &[st("a", "9")], &[])
            .await
            .unwrap();
        let states = s.states("c").await.unwrap();
        assert_eq!(states.len(), 2);
        assert_eq!((states[0].state.state.as_str(), states[0].run_id), ("2", 2));
        assert_eq!((states[1].state.state.as_str(), states[1].run_id), ("1", 1));
        assert_eq!(s.reset_state("c").await.unwrap(), 2);
        assert!(s.states("c").await.unwrap().is_empty());
        assert_eq!(s.states("other").await.unwrap().len(), 1);
    }
}
