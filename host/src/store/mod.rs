//! Control-plane persistence: runs, per-stream stats, committed checkpoints and run logs, in a
//! SQLite file under the data dir (nothing to install).
//!
//! Checkpoints are committed in one transaction with the stats they cover, with
//! `synchronous = FULL`, so after a crash the store never claims more than the destination
//! durably holds.

mod api_keys;
mod audit;
mod checkpoints;
mod installed;
mod location;
mod lock;
pub mod migrations;
mod purge;
mod queue;
mod run_log;
mod runs;
mod sealed;
mod webhooks;
mod workspaces;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor, Row};

pub use location::{PgEnv, StoreLocation, StoreLocationError};
pub use lock::{ConnectionLock, LockError};

use std::sync::Arc;

pub use crate::protocol::StreamStats;
pub use api_keys::{ApiKey, KeyChange, KeyRefusal, TOKEN_PREFIX};
pub use audit::AuditFilter;
pub use checkpoints::CommittedState;
pub use installed::InstalledConnector;
pub use purge::PurgeReport;
pub use queue::{Claimed, Labels, Lease, Occurrence, QueuedRun, check_label, waiting_for};
pub use runs::{RunRecord, RunStart, RunStatus, RunTotals};
pub use sealed::StoredSecret;
pub use webhooks::{Attempt, Delivery, DueDelivery, WEBHOOK_SECRET_PREFIX, Webhook, now_ms};
pub use workspaces::{
    ConnectionDef, EndpointDef, EndpointKind, Member, SecretStatus, Workspace, connection_key,
};

use crate::boundary::crypto::{self, CryptoError, Keyring};
use crate::boundary::events::Event;
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
    #[error("cannot migrate the store at {location}: {source}")]
    Migrate {
        /// The database file, or the PostgreSQL URL without its password.
        location: String,
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
    /// A run of the connection is queued or running through the run queue (a worker holds
    /// it), so a run outside the queue may not begin.
    #[error(
        "a run of `{0}` is queued or running in the run queue: runs of one connection never \
         overlap (`sluice queue list` shows it; `sluice queue cancel` stops it)"
    )]
    Queued(String),
    /// A write of an attempt the run has moved on from: another worker holds it now.
    #[error(
        "run {run_id} attempt {attempt} may no longer write: {now} (its lease lapsed and \
         another worker took the run over, resuming from the last committed checkpoint)"
    )]
    Fenced {
        /// The run.
        run_id: i64,
        /// The attempt that was refused.
        attempt: i64,
        /// What holds the run now.
        now: String,
    },
    /// Sealing or opening a value, or the keyring.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { context, source }
}

/// The database a store keeps its tables in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the data dir: the embedded default, nothing to install.
    Sqlite,
    /// A PostgreSQL database shared by a fleet (`--store postgres://…`).
    Postgres,
}

/// The store, with the keyring that seals what it keeps.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    dir: PathBuf,
    keyring: Arc<Keyring>,
}

/// The prefix of a sealed value in a text column (base64 follows).
const SEALED: &str = "sealed:";

fn state_identity(connection: &str, stream: &str) -> String {
    format!("state/{connection}/{stream}")
}

/// The URL sqlx opens the store's file by: the data dir made absolute and real (no `..` for
/// the URL to fold away), every byte but unreserved ones and `/` percent-encoded (sqlx decodes
/// the name, and a `?`, `#` or `%` in a directory name would otherwise end or change it).
fn sqlite_url(data_dir: &Path) -> Result<String, StoreError> {
    let dir = data_dir
        .canonicalize()
        .map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
    let file = dir.join("sluice.db");
    let path = file.to_str().ok_or_else(|| StoreError::DataDir {
        path: data_dir.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the data dir's path is not UTF-8: choose another with --data-dir",
        ),
    })?;
    let mut url = String::from("sqlite://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// A database URL as it may be shown: its password, if any (in the user info or a `password`
/// parameter), replaced by `***`.
pub fn without_password(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    // Only the values of parameters the driver knows, and that hold no secret, are shown: a
    // password's, however it is spelled, cased or encoded, is not.
    let shown = |key: &str| {
        key != "password" && key != "options" && location::KNOWN_PARAMETERS.contains(&key)
    };
    let query = query.map(|query| {
        query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if !shown(key) => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    let base = match base.split_once("://") {
        // The user info ends at the last `@` (a password may hold `/`, `:` or `@`): all of it
        // after the user's name is hidden.
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split([':', '/']).next().unwrap_or_default();
                let hidden = if userinfo.len() > user.len() {
                    ":***"
                } else {
                    ""
                };
                format!("{scheme}://{user}{hidden}@{host}")
            }
            None => base.to_string(),
        },
        // Not a URL (a libpq keyword string, say, whose password is a plain word): nothing
        // of it is shown.
        None => return "(a value that is not a URL)".into(),
    };
    match query {
        Some(q) => format!("{base}?{q}"),
        None => base,
    }
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

/// How long a PostgreSQL session may sit idle inside a transaction before the server ends it.
const PG_IDLE_IN_TRANSACTION: &str = "SET idle_in_transaction_session_timeout = '30s'";

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
        install_default_drivers();
        // The URL names the file only; the rest is set on every connection: WAL, a flush at
        // every commit (a committed checkpoint survives power loss), foreign keys, and a
        // wait rather than "database is locked" when another connection writes.
        let url = sqlite_url(data_dir)?;
        let options = AnyPoolOptions::new()
            .max_connections(12)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                         PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                    )
                    .await
                    .map(|_| ())
                })
            });
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
        let pool = match options.connect(&url).await {
            Ok(p) => p,
            Err(e) => {
                drop(guard);
                return Err(db("open")(e));
            }
        };
        let migrated = migrations::sqlite().run(&pool).await;
        drop(guard);
        migrated.map_err(|source| StoreError::Migrate {
            location: file.display().to_string(),
            source,
        })?;
        let store = Store {
            pool,
            backend: Backend::Sqlite,
            dir: data_dir.to_path_buf(),
            keyring,
        };
        store.adopt_anchor().await?;
        Ok(store)
    }

    /// Open the store in the PostgreSQL database at `url` (`postgres://user:password@host/db`),
    /// migrating it to this version's schema (sqlx holds an advisory lock while it does, so
    /// a fleet starting at once migrates once), with `keyring`. What the store keeps beside
    /// its tables (connection locks, failed-record samples, the audit anchor) stays in
    /// `data_dir`.
    pub async fn open_postgres(
        url: &str,
        data_dir: &Path,
        keyring: Arc<Keyring>,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(StoreError::Corrupt(format!(
                "{} is not a PostgreSQL URL: give postgres://USER:PASSWORD@HOST/DATABASE",
                without_password(url)
            )));
        }
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(12)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // A process paused or cut off inside a transaction (SIGSTOP, a partition)
                    // would hold its locks, the audit chain's among them, and stall every node:
                    // the server ends such a session after this long, releasing them (its
                    // lease has long lapsed by then, so its attempt is fenced off anyway).
                    sqlx::query(PG_IDLE_IN_TRANSACTION)
                        .execute(&mut *conn)
                        .await?;
                    // Which sessions are sluice's, in pg_stat_activity.
                    sqlx::query("SET application_name = 'sluice'")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(db("open"))?;
        migrations::postgres()
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                location: without_password(url),
                source,
            })?;
        let store = Store {
            pool,
            backend: Backend::Postgres,
            dir: data_dir.to_path_buf(),
            keyring,
        };
        store.adopt_anchor().await?;
        Ok(store)
    }

    /// A setting of one of this store's PostgreSQL sessions (`SHOW name`), for checks that the
    /// sessions are set up as the store needs; `None` on SQLite.
    #[doc(hidden)]
    pub async fn session_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let row = sqlx::query("SELECT current_setting($1) AS v")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db("read a session setting"))?;
        Ok(Some(row.get("v")))
    }

    /// Open the store at `location`, with the data dir's keyring (`SLUICE_KEYRING` when set:
    /// how a fleet shares one).
    pub async fn open_at(location: &StoreLocation, data_dir: &Path) -> Result<Store, StoreError> {
        match location {
            StoreLocation::Embedded => Store::open(data_dir).await,
            StoreLocation::Postgres(url) => {
                std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
                    path: data_dir.to_path_buf(),
                    source,
                })?;
                let keyring = Keyring::open(data_dir)?;
                Store::open_postgres(url, data_dir, Arc::new(keyring)).await
            }
        }
    }

    /// Open the store at `location` with `keyring`.
    pub async fn open_at_with(
        location: &StoreLocation,
        data_dir: &Path,
        keyring: Arc<Keyring>,
    ) -> Result<Store, StoreError> {
        match location {
            StoreLocation::Embedded => Store::open_with(data_dir, keyring).await,
            StoreLocation::Postgres(url) => Store::open_postgres(url, data_dir, keyring).await,
        }
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

    /// A write transaction. On SQLite it takes the write lock at `BEGIN` (`BEGIN IMMEDIATE`):
    /// a deferred one that reads first and then writes fails with "database is locked" when
    /// another connection wrote in between, without waiting (two runs at once hit this).
    /// PostgreSQL's row locks and constraints order concurrent writers by themselves.
    pub(super) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            // Pinned whatever the role's default: the claim, fence and takeover statements
            // wait for each other's row locks and then read what was committed.
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .await
            }
        }
    }

    /// The database this store keeps its tables in.
    pub fn backend(&self) -> Backend {
        self.backend
    }
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
        s.commit_checkpoint(
            first.run_id,
            first.attempt,
            "c",
            &[st("users", "{\"n\":10}")],
            &stats,
        )
        .await
        .unwrap();
        // The process "dies": the run stays `running`. The next begin resumes it.
        let second = s.begin_run(&lock, "c", false).await.unwrap();
        assert_eq!((second.run_id, second.attempt), (first.run_id, 2));
        assert_eq!(second.committed, stats);
        // The first attempt, had it lived on, may no longer write.
        let stale = s
            .commit_checkpoint(first.run_id, first.attempt, "c", &[st("users", "{}")], &[])
            .await;
        assert!(
            matches!(stale, Err(StoreError::Fenced { attempt: 1, .. })),
            "{stale:?}"
        );
        let stale = s
            .finish_run(first.run_id, 1, RunStatus::Succeeded, None, &[], 0)
            .await;
        assert!(matches!(stale, Err(StoreError::Fenced { .. })), "{stale:?}");
        let started = |attempt: i64| {
            crate::boundary::audit::NewEntry::new(
                "worker",
                "run.started",
                "connection/c",
                "ok",
                serde_json::json!({ "attempt": attempt }),
            )
        };
        let stale = s.audit_as_attempt(first.run_id, 1, &[started(1)]).await;
        assert!(matches!(stale, Err(StoreError::Fenced { .. })), "{stale:?}");
        s.audit_as_attempt(second.run_id, 2, &[started(2)])
            .await
            .unwrap();
        let entries = s.audit_entries(&AuditFilter::default()).await.unwrap();
        assert_eq!(
            entries.len(),
            1,
            "only the current attempt's entry: {entries:?}"
        );
        assert_eq!(s.states("c").await.unwrap()[0].state.state, "{\"n\":10}");
        s.finish_run(second.run_id, 2, RunStatus::Succeeded, None, &stats, 0)
            .await
            .unwrap();
        let third = s.begin_run(&lock, "c", false).await.unwrap();
        assert_ne!(third.run_id, first.run_id);
        assert_eq!(third.attempt, 1);
        s.finish_run(third.run_id, 1, RunStatus::Failed, Some("boom"), &[], 0)
            .await
            .unwrap();
        let fresh = s.begin_run(&lock, "c", true).await.unwrap();
        assert_ne!(fresh.run_id, third.run_id);
        let runs = s.runs(Some("c"), 10).await.unwrap();
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[1].error.as_deref(), Some("boom"));
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        for (url, shown) in [
            (
                "postgres://u:p%40ss@db:5432/s",
                "postgres://u:***@db:5432/s",
            ),
            (
                "postgres://u:a:b@c@db/s?sslmode=require",
                "postgres://u:***@db/s?sslmode=require",
            ),
            ("postgres://u@db/s", "postgres://u@db/s"),
            ("postgres://db/s", "postgres://db/s"),
            ("not a url", "(a value that is not a URL)"),
            (
                "host=db user=u password=hunter2",
                "(a value that is not a URL)",
            ),
            (
                "postgres://u:ab/cd@db/s?Password=x&pass%77ord=y",
                "postgres://u:***@db/s?Password=***&pass%77ord=***",
            ),
            (
                "postgres://db/s?user=u&password=hunter2&sslmode=require",
                "postgres://db/s?user=u&password=***&sslmode=require",
            ),
        ] {
            assert_eq!(without_password(url), shown, "{url}");
        }
    }

    /// A data dir's name is a name, whatever it holds: `?`, `#`, `%41`, spaces and a `..`
    /// through a symlink open (and reopen) the file in that very directory.
    #[tokio::test]
    async fn data_dirs_with_url_characters_in_their_names_hold_their_own_store() {
        let root = tempfile::tempdir().unwrap();
        let odd = root.path().join("a b?c#d%41&mode=ro");
        std::fs::create_dir_all(odd.join("sub")).unwrap();
        let through = odd.join("sub").join("..");
        {
            let s = Store::open(&through).await.unwrap();
            s.set_secret("k", "v").await.unwrap();
        }
        assert!(odd.join("sluice.db").exists());
        assert!(!root.path().join("a b?c#dA&mode=ro").exists());
        let again = Store::open(&odd).await.unwrap();
        assert!(again.secret("k").await.unwrap().is_some());
    }

    /// Every connection of the pool has the settings the store's durability rests on (the
    /// URL names only the file; they are set as each connection opens).
    #[tokio::test]
    async fn every_sqlite_connection_is_durable_and_checks_foreign_keys() {
        let (_d, s) = store().await;
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut c = s.pool.acquire().await.unwrap();
            for (pragma, want) in [
                ("journal_mode", "wal"),
                ("synchronous", "2"),
                ("foreign_keys", "1"),
                ("busy_timeout", "10000"),
            ] {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}")))
                    .fetch_one(&mut *c)
                    .await
                    .unwrap();
                let got = row
                    .try_get::<String, _>(0)
                    .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                    .unwrap();
                assert_eq!(got, want, "{pragma}");
            }
            held.push(c);
        }
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
        let (c, other) = (s.lock("c").unwrap(), s.lock("other").unwrap());
        let one = s.begin_run(&c, "c", true).await.unwrap();
        s.commit_checkpoint(one.run_id, 1, "c", &[st("a", "1"), st("b", "1")], &[])
            .await
            .unwrap();
        s.finish_run(one.run_id, 1, RunStatus::Succeeded, None, &[], 0)
            .await
            .unwrap();
        let two = s.begin_run(&c, "c", true).await.unwrap();
        s.commit_checkpoint(two.run_id, 1, "c", &[st("a", "2")], &[])
            .await
            .unwrap();
        let three = s.begin_run(&other, "other", true).await.unwrap();
        s.commit_checkpoint(three.run_id, 1, "other", &[st("a", "9")], &[])
            .await
            .unwrap();
        let states = s.states("c").await.unwrap();
        assert_eq!(states.len(), 2);
        assert_eq!(
            (states[0].state.state.as_str(), states[0].run_id),
            ("2", two.run_id)
        );
        assert_eq!(
            (states[1].state.state.as_str(), states[1].run_id),
            ("1", one.run_id)
        );
        assert_eq!(s.reset_state("c").await.unwrap(), 2);
        assert!(s.states("c").await.unwrap().is_empty());
        assert_eq!(s.states("other").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn imported_states_replace_the_named_streams_and_are_sealed() {
        let (_d, s) = store().await;
        let c = s.lock("c").unwrap();
        let run = s.begin_run(&c, "c", true).await.unwrap();
        s.commit_checkpoint(run.run_id, 1, "c", &[st("a", "1"), st("b", "1")], &[])
            .await
            .unwrap();
        s.import_states("c", &[st("b", "{\"date\":\"2025-01-02\"}"), st("z", "7")])
            .await
            .unwrap();
        let states: Vec<(String, String, i64)> = s
            .states("c")
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.state.stream, c.state.state, c.run_id))
            .collect();
        assert_eq!(
            states,
            [
                ("a".into(), "1".into(), run.run_id),
                ("b".into(), "{\"date\":\"2025-01-02\"}".into(), 0),
                ("z".into(), "7".into(), 0),
            ]
        );
        let raw: String = sqlx::query("SELECT state FROM stream_state WHERE stream = 'b'")
            .fetch_one(&s.pool)
            .await
            .unwrap()
            .get("state");
        assert!(!raw.contains("2025-01-02"), "sealed at rest: {raw}");
    }
}
