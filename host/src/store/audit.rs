//! The audit log's rows: appended in one transaction each, chained and signed as
//! `boundary::audit` defines.

use sqlx::{Connection, Row};

use super::{Backend, Store, StoreError, db, now};

/// The PostgreSQL advisory lock (transaction-scoped) every audit append takes first.
const AUDIT_LOCK: i64 = 7_310_411;
use crate::boundary::audit::{
    self, DIGEST_EVERY_ENTRIES, DIGEST_EVERY_SECS, Entry, GENESIS, NewEntry, SignedDigest,
    Verification,
};

/// Which entries `sluice audit list` shows. Every field narrows; `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// At or after (RFC 3339).
    pub since: Option<String>,
    /// Before (RFC 3339).
    pub until: Option<String>,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// This action, or actions under it (`run` matches `run.started`).
    pub action: Option<String>,
    /// This resource, or resources under it (`connection/a` matches `connection/a/users`).
    pub resource: Option<String>,
    /// At most this many, oldest first.
    pub limit: Option<u32>,
}

fn entry(r: &sqlx::any::AnyRow) -> Entry {
    Entry {
        seq: r.get("seq"),
        at: r.get("at"),
        actor: r.get("actor"),
        action: r.get("action"),
        resource: r.get("resource"),
        outcome: r.get("outcome"),
        source_ip: r.get("source_ip"),
        details: r.get("details"),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}

fn digest(r: &sqlx::any::AnyRow) -> SignedDigest {
    SignedDigest {
        seq: r.get("seq"),
        at: r.get("at"),
        last_seq: r.get("last_seq"),
        last_hash: r.get("last_hash"),
        prev_signature: r.get("prev_signature"),
        key_id: r.get("key_id"),
        public_key: r.get("public_key"),
        signature: r.get("signature"),
    }
}

impl Store {
    /// Append entries to the audit log, chained to the last one; signs a digest when enough
    /// entries (or time) have gone unsigned.
    pub async fn audit(&self, entries: &[NewEntry]) -> Result<(), StoreError> {
        self.append_audit(entries, true, false, None).await
    }

    /// [`Store::audit`] on behalf of attempt `attempt` of run `run_id`, refused with
    /// [`StoreError::Fenced`] once the run has moved on from it: checked under the chain's lock,
    /// so a run's `run.started` entries are in attempt order, and a worker whose lease lapsed
    /// before it got this far records nothing.
    pub async fn audit_as_attempt(
        &self,
        run_id: i64,
        attempt: i64,
        entries: &[NewEntry],
    ) -> Result<(), StoreError> {
        self.append_audit(entries, true, false, Some((run_id, attempt)))
            .await
    }

    /// [`Store::audit`], then a signed digest over everything up to these entries in the same
    /// transaction: the end of a change (an API write), anchored at once.
    pub async fn audit_sealed(&self, entries: &[NewEntry]) -> Result<(), StoreError> {
        self.append_audit(entries, true, true, None).await
    }

    /// [`Store::audit`] for high-volume entries (one per API request): the write reaches the
    /// operating system before this returns, so it survives the process being killed, but the
    /// disk flush is left to the next checkpoint (SQLite's `synchronous = NORMAL` in WAL mode),
    /// so a power cut may lose the last moments of entries. The chain stays whole either way.
    pub async fn audit_unflushed(&self, entries: &[NewEntry]) -> Result<(), StoreError> {
        self.append_audit(entries, false, false, None).await
    }

    async fn append_audit(
        &self,
        entries: &[NewEntry],
        flush: bool,
        seal: bool,
        attempt: Option<(i64, i64)>,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.immediate(flush, async |conn| {
            if let Some((run_id, attempt)) = attempt {
                super::runs::fence(conn, run_id, attempt).await?;
            }
            let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *conn)
                .await
                .map_err(db("audit head"))?;
            let (mut seq, mut prev) = match head {
                Some(r) => (r.get::<i64, _>("seq"), r.get::<String, _>("hash")),
                None => (
                    sqlx::query("SELECT COALESCE(MAX(last_seq), 0) AS s FROM audit_digests")
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(db("audit head"))?
                        .get::<i64, _>("s"),
                    GENESIS.to_string(),
                ),
            };
            if seq > 0 && prev == GENESIS {
                // Every entry was purged: continue from the last digest's anchor.
                prev = sqlx::query("SELECT last_hash FROM audit_digests ORDER BY seq DESC LIMIT 1")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db("audit anchor"))?
                    .get("last_hash");
            }
            let at = now();
            for n in entries {
                seq += 1;
                let mut e = Entry {
                    seq,
                    at: at.clone(),
                    actor: n.actor.clone(),
                    action: n.action.clone(),
                    resource: n.resource.clone(),
                    outcome: n.outcome.clone(),
                    source_ip: n.source_ip.clone(),
                    details: n.details.to_string(),
                    prev_hash: prev,
                    hash: String::new(),
                };
                e.hash = e.compute_hash();
                sqlx::query("INSERT INTO audit_log (seq, at, actor, action, resource, outcome, source_ip, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                    .bind(e.seq)
                    .bind(&e.at)
                    .bind(&e.actor)
                    .bind(&e.action)
                    .bind(&e.resource)
                    .bind(&e.outcome)
                    .bind(&e.source_ip)
                    .bind(&e.details)
                    .bind(&e.prev_hash)
                    .bind(&e.hash)
                    .execute(&mut *conn)
                    .await
                    .map_err(db("append audit entry"))?;
                prev = e.hash;
            }
            self.sign_if_due(conn, seal).await
        })
        .await
    }

    /// Run `f` in a transaction that holds the chain's write lock before the head is read, so
    /// two processes appending at once cannot fork the chain: SQLite's `BEGIN IMMEDIATE`, or
    /// PostgreSQL's advisory lock [`AUDIT_LOCK`].
    /// Without `flush`, the commit does not wait for the disk (see [`Store::audit_unflushed`]).
    async fn immediate<T>(
        &self,
        flush: bool,
        f: impl AsyncFnOnce(&mut sqlx::AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db("audit"))?;
        let sqlite = self.backend == Backend::Sqlite;
        if !flush && sqlite {
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *conn)
                .await
                .map_err(db("audit"))?;
        }
        let result = async {
            // A transaction sqlx tracks: dropped (a caller that went away) or failed, it is
            // rolled back before the connection is used again.
            let mut tx = if sqlite {
                conn.begin_with("BEGIN IMMEDIATE").await
            } else {
                // The head is read after the lock is granted: READ COMMITTED, whatever the
                // role's default isolation.
                conn.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .await
            }
            .map_err(db("begin audit"))?;
            if !sqlite {
                // A transaction-scoped advisory lock taken before the head is read serializes
                // every writer of the chain, on every node of a fleet.
                sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1)")
                    .bind(AUDIT_LOCK)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("lock audit"))?;
            }
            let result = f(&mut tx).await;
            match &result {
                Ok(_) => tx.commit().await.map_err(db("commit audit"))?,
                Err(_) => tx.rollback().await.map_err(db("end audit"))?,
            }
            result
        }
        .await;
        if !flush
            && sqlite
            && sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await
                .is_err()
        {
            // Never hand a connection that does not flush back to the pool.
            let _ = conn.detach();
        }
        result
    }

    /// Sign a digest over every entry not yet covered by one (at the end of a run or command).
    pub async fn audit_seal(&self) -> Result<(), StoreError> {
        self.immediate(true, async |conn| self.sign_if_due(conn, true).await)
            .await
    }

    async fn sign_if_due(
        &self,
        conn: &mut sqlx::AnyConnection,
        force: bool,
    ) -> Result<(), StoreError> {
        let last_digest = sqlx::query("SELECT * FROM audit_digests ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("read digest"))?
            .map(|r| digest(&r));
        let covered = last_digest.as_ref().map_or(0, |d| d.last_seq);
        let unsigned =
            sqlx::query("SELECT COUNT(*) AS n, MIN(at) AS oldest FROM audit_log WHERE seq > $1")
                .bind(covered)
                .fetch_one(&mut *conn)
                .await
                .map_err(db("count unsigned"))?;
        let n: i64 = unsigned.get("n");
        if n == 0 {
            return Ok(());
        }
        let oldest: String = unsigned.get("oldest");
        let age =
            time::OffsetDateTime::parse(&oldest, &time::format_description::well_known::Rfc3339)
                .map(|t| (time::OffsetDateTime::now_utc() - t).whole_seconds())
                .unwrap_or(i64::MAX);
        if !(force || n >= DIGEST_EVERY_ENTRIES || age >= DIGEST_EVERY_SECS) {
            return Ok(());
        }
        let last = sqlx::query("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_one(&mut *conn)
            .await
            .map_err(db("audit head"))?;
        let (key_id, key) = self.keyring().signing_key();
        let d = SignedDigest::sign(
            last_digest.as_ref().map_or(1, |d| d.seq + 1),
            now(),
            &entry(&last),
            last_digest.as_ref().map_or("", |d| &d.signature),
            key_id,
            key,
        );
        sqlx::query("INSERT INTO audit_digests (seq, at, last_seq, last_hash, prev_signature, key_id, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(d.seq)
            .bind(&d.at)
            .bind(d.last_seq)
            .bind(&d.last_hash)
            .bind(&d.prev_signature)
            .bind(&d.key_id)
            .bind(&d.public_key)
            .bind(&d.signature)
            .execute(&mut *conn)
            .await
            .map_err(db("write digest"))?;
        // The high-water mark, outside the database, written while the write lock is held so
        // processes cannot move it backwards.
        self.write_anchor(&d)?;
        Ok(())
    }

    /// A store signed before anchors existed (or whose anchor file was removed) gets one from
    /// its newest digest: trusted on first use, as the database is then.
    pub(super) async fn adopt_anchor(&self) -> Result<(), StoreError> {
        if self.anchor_path().exists() {
            return Ok(());
        }
        let newest = sqlx::query("SELECT * FROM audit_digests ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read digest"))?;
        match newest {
            Some(r) => self.write_anchor(&digest(&r)),
            None => Ok(()),
        }
    }

    fn anchor_path(&self) -> std::path::PathBuf {
        self.dir.join(audit::ANCHOR_FILE)
    }

    fn write_anchor(&self, d: &SignedDigest) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::Io {
            path: self.anchor_path(),
            source: e,
        };
        let body = serde_json::to_vec_pretty(d).map_err(|e| io(std::io::Error::other(e)))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, &body).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(self.anchor_path()).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Audit entries matching `filter`, oldest first.
    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<Entry>, StoreError> {
        let prefix = |p: &Option<String>| p.as_ref().map(|p| format!("{p}%"));
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR at < $2) \
             AND ($3 IS NULL OR actor = $3) AND ($4 IS NULL OR action = $4 OR action LIKE $5) \
             AND ($6 IS NULL OR resource = $6 OR resource LIKE $7) ORDER BY seq LIMIT $8",
        )
        .bind(&filter.since)
        .bind(&filter.until)
        .bind(&filter.actor)
        .bind(&filter.action)
        .bind(filter.action.as_ref().map(|a| format!("{a}.%")))
        .bind(&filter.resource)
        .bind(prefix(&filter.resource.as_ref().map(|r| format!("{r}/"))))
        // No limit: PostgreSQL refuses SQLite's `LIMIT -1`.
        .bind(filter.limit.map_or(i64::MAX, i64::from))
        .fetch_all(&self.pool)
        .await
        .map_err(db("read audit log"))?;
        Ok(rows.iter().map(entry).collect())
    }

    /// Verify the whole audit log against the keyring's audit key.
    pub async fn audit_verify(&self) -> Result<Verification, StoreError> {
        let entries = sqlx::query("SELECT * FROM audit_log ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(db("read audit log"))?;
        let digests = sqlx::query("SELECT * FROM audit_digests ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(db("read digests"))?;
        let entries: Vec<Entry> = entries.iter().map(entry).collect();
        let digests: Vec<SignedDigest> = digests.iter().map(digest).collect();
        let key = self.keyring().verifying_key();
        let mut v = audit::verify(&entries, &digests, &key);
        if v.problem.is_none() {
            v.problem = match std::fs::read(self.anchor_path()) {
                Ok(bytes) => match serde_json::from_slice::<SignedDigest>(&bytes) {
                    Ok(anchor) => {
                        audit::check_anchor(&anchor, &digests, entries.last().map(|e| e.seq), &key)
                    }
                    Err(e) => Some(format!(
                        "the audit anchor ({}) is unreadable: {e}",
                        audit::ANCHOR_FILE
                    )),
                },
                // Never sealed yet (or a store from before anchors): nothing to compare, unless
                // digests exist, which means the anchor was removed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && digests.is_empty() => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                    "the audit anchor ({}) is missing although {} digests were signed",
                    audit::ANCHOR_FILE,
                    digests.len()
                )),
                Err(e) => Some(format!(
                    "the audit anchor ({}) cannot be read: {e}",
                    audit::ANCHOR_FILE
                )),
            };
        }
        Ok(v)
    }

    /// Remove audit entries older than `cutoff` (RFC 3339), only up to the last signed digest
    /// that ends before it, so verification can start from that digest. Returns entries removed.
    pub async fn purge_audit(&self, cutoff: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM audit_log WHERE seq <= (SELECT COALESCE(MAX(d.last_seq), 0) \
             FROM audit_digests d JOIN audit_log e ON e.seq = d.last_seq WHERE e.at < $1)",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await
        .map_err(db("purge audit"))?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// The newest audit entry with exactly this action and resource.
    pub async fn last_audit(
        &self,
        action: &str,
        resource: &str,
    ) -> Result<Option<Entry>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM audit_log WHERE action = $1 AND resource = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(action)
        .bind(resource)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read audit log"))?;
        Ok(row.as_ref().map(entry))
    }
}
