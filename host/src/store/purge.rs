//! Removing what retention says is overdue: run logs and events, failed-record samples, staging
//! left by runs that died, audit entries (up to a signed digest), stale checkpoints.

use std::path::PathBuf;

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, db};
use crate::boundary::retention::{Keep, Retention};

/// What a purge removed, per class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PurgeReport {
    /// Run log lines.
    pub run_log_lines: u64,
    /// Wall events.
    pub run_events: u64,
    /// Sample files.
    pub samples: u64,
    /// Staging directories.
    pub staging: u64,
    /// Audit entries.
    pub audit_entries: u64,
    /// Checkpoints.
    pub states: u64,
}

impl PurgeReport {
    /// Whether anything was removed.
    pub fn is_empty(&self) -> bool {
        *self == PurgeReport::default()
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Store {
    /// Remove everything `retention` says is overdue at `now`.
    pub async fn purge(
        &self,
        retention: &Retention,
        now: time::OffsetDateTime,
    ) -> Result<PurgeReport, StoreError> {
        let mut r = PurgeReport::default();
        if let Some(cut) = retention.run_logs.cutoff(now).map(rfc3339) {
            for (sql, n) in [
                (
                    "DELETE FROM run_logs WHERE run_id IN \
                     (SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < $1)",
                    &mut r.run_log_lines,
                ),
                (
                    "DELETE FROM run_events WHERE run_id IN \
                     (SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < $1)",
                    &mut r.run_events,
                ),
            ] {
                *n = sqlx::query(sql)
                    .bind(&cut)
                    .execute(&self.pool)
                    .await
                    .map_err(db("purge run logs"))?
                    .rows_affected();
            }
        }
        if let Some(cut) = retention.samples.cutoff(now).map(rfc3339) {
            let rows = sqlx::query(
                "SELECT s.run_id, s.file FROM run_samples s JOIN runs r ON r.id = s.run_id \
                 WHERE r.finished_at IS NOT NULL AND r.finished_at < $1",
            )
            .bind(&cut)
            .fetch_all(&self.pool)
            .await
            .map_err(db("find samples"))?;
            for row in rows {
                let file: String = row.get("file");
                match std::fs::remove_file(self.dir.join(&file)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(StoreError::DataDir {
                            path: self.dir.join(&file),
                            source: e,
                        });
                    }
                }
                sqlx::query("DELETE FROM run_samples WHERE run_id = $1 AND file = $2")
                    .bind(row.get::<i64, _>("run_id"))
                    .bind(&file)
                    .execute(&self.pool)
                    .await
                    .map_err(db("purge samples"))?;
                r.samples += 1;
            }
        }
        if let Some(cut) = retention.staging.cutoff(now) {
            r.staging = self.purge_staging(cut)?;
        }
        if let Some(cut) = retention.audit.cutoff(now).map(rfc3339) {
            r.audit_entries = self.purge_audit(&cut).await?;
        }
        if let Keep::For(_) = retention.state
            && let Some(cut) = retention.state.cutoff(now).map(rfc3339)
        {
            r.states = sqlx::query(
                "DELETE FROM stream_state WHERE connection IN (SELECT connection FROM \
                 stream_state GROUP BY connection HAVING MAX(updated_at) < $1)",
            )
            .bind(&cut)
            .execute(&self.pool)
            .await
            .map_err(db("purge states"))?
            .rows_affected();
        }
        Ok(r)
    }

    /// Staging directories last modified before `cut` (a finished run removes its own).
    fn purge_staging(&self, cut: time::OffsetDateTime) -> Result<u64, StoreError> {
        let cut = std::time::SystemTime::from(cut);
        let mut n = 0;
        for root in self.areas("staging") {
            let Ok(entries) = std::fs::read_dir(&root) else {
                continue;
            };
            for e in entries.flatten() {
                let path: PathBuf = e.path();
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < cut);
                if old {
                    std::fs::remove_dir_all(&path)
                        .map_err(|source| StoreError::DataDir { path, source })?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// `DATA_DIR/NAME` and each workspace's `DATA_DIR/workspaces/WS/NAME` (staging, samples).
    pub fn areas(&self, name: &str) -> Vec<PathBuf> {
        let mut out = vec![self.dir.join(name)];
        if let Ok(entries) = std::fs::read_dir(self.dir.join("workspaces")) {
            out.extend(entries.flatten().map(|e| e.path().join(name)));
        }
        out
    }

    /// Record a run's sample file (a path relative to the data dir is stored).
    pub async fn add_samples(
        &self,
        run_id: i64,
        file: &std::path::Path,
        records: u64,
    ) -> Result<(), StoreError> {
        let rel = file.strip_prefix(&self.dir).unwrap_or(file);
        sqlx::query(
            "INSERT INTO run_samples (run_id, file, records) VALUES ($1, $2, $3) \
             ON CONFLICT (run_id, file) DO UPDATE SET records = excluded.records",
        )
        .bind(run_id)
        .bind(rel.to_string_lossy().into_owned())
        .bind(records as i64)
        .execute(&self.pool)
        .await
        .map_err(db("record samples"))?;
        Ok(())
    }

    /// A run's sample files (relative to the data dir) and their record counts.
    pub async fn samples(&self, run_id: i64) -> Result<Vec<(String, u64)>, StoreError> {
        let rows =
            sqlx::query("SELECT file, records FROM run_samples WHERE run_id = $1 ORDER BY file")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db("read samples"))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("file"), r.get::<i64, _>("records") as u64))
            .collect())
    }
}
