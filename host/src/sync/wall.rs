//! What a run sets up at the wall besides the connectors: the PII masker, the scrubber for log
//! lines and errors, the run's staging directory and sealed failed-record samples, and the
//! audit entries that record it all.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::boundary::audit::NewEntry;
use crate::boundary::crypto::stream::SealedWriter;
use crate::boundary::pii::Masker;
use crate::boundary::scrub::Scrubber;
use crate::capability::Secret;
use crate::connection::{Connection, FailedRecords};
use crate::runtime::LineFilter;
use crate::store::{Store, StoreError};

/// The sealed-secret names the connection's grants read from the store, opened.
pub async fn stored_secrets(
    store: &Store,
    conn: &Connection,
) -> Result<BTreeMap<String, SecretString>, StoreError> {
    let mut out = BTreeMap::new();
    if let Some(held) = &conn.held_secrets {
        return Ok(held.clone());
    }
    for g in conn
        .source
        .grant
        .secrets
        .iter()
        .chain(&conn.destination.grant.secrets)
        .filter(|g| g.stored)
    {
        if let Some(v) = store.secret(&g.name).await? {
            out.insert(g.name.clone(), v);
        }
    }
    Ok(out)
}

/// A short fingerprint of something's debug form, to notice when a grant or policy changes
/// between runs (never the values: secrets in grants are names and sources, not values).
pub fn fingerprint(what: &impl std::fmt::Debug) -> String {
    hex::encode(&Sha256::digest(format!("{what:?}").as_bytes())[..8])
}

/// What text passes through before it is kept or shown (log lines, samples, run errors):
/// secret values in every form, then the PII detectors when a policy is on.
pub fn text_filter(secrets: &[(String, SecretString)], masker: Option<Arc<Masker>>) -> LineFilter {
    let scrubber = Scrubber::new(secrets.iter().map(|(n, v)| (n.as_str(), v.expose_secret())));
    Arc::new(move |line: &str| {
        let line = scrubber.scrub(line);
        match &masker {
            Some(m) => m.scrub_text(&line),
            None => line,
        }
    })
}

/// Name and value of each secret, for the scrubber.
pub fn named(secrets: &[Secret]) -> Vec<(String, SecretString)> {
    secrets
        .iter()
        .map(|s| (s.name.clone(), SecretString::from(s.expose().to_string())))
        .collect()
}

/// The run's staging directory, `DATA_DIR/staging/run-ID`: removed when the run ends,
/// whatever its outcome (and by `sluice purge` if the process died first).
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Create it under `area` (the data dir, or a workspace's folder).
    pub fn create(area: &Path, run_id: i64) -> std::io::Result<Staging> {
        let dir = area.join("staging").join(format!("run-{run_id}"));
        std::fs::create_dir_all(&dir)?;
        Ok(Staging { dir })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove staging {}: {e}", self.dir.display());
        }
    }
}

/// Failed-record samples of one attempt: at most `samples` records of at most
/// `max_sample_bytes` each, masked by the PII policy and the secret scrubber, sealed as they
/// are written into staging; kept under `DATA_DIR/samples/` when the attempt ends.
pub struct Samples {
    limits: FailedRecords,
    identity: String,
    staged: PathBuf,
    kept_at: PathBuf,
    writer: Option<SealedWriter<std::fs::File>>,
    kept: usize,
    /// Failed records seen, sampled or not.
    pub seen: u64,
}

impl Samples {
    /// Where samples of `run_id` attempt `attempt` are kept under `area` (the data dir, or a
    /// workspace's folder), and the identity they are sealed under.
    pub fn location(area: &Path, run_id: i64, attempt: i64) -> (PathBuf, String) {
        (
            area.join("samples")
                .join(format!("run-{run_id}-attempt-{attempt}.sealed")),
            format!("samples/run-{run_id}/attempt-{attempt}"),
        )
    }

    /// The identity a kept sample file (`run-7-attempt-1.sealed`) was sealed under.
    pub fn identity_of(file: &Path) -> Option<String> {
        let name = file.file_name()?.to_str()?.strip_suffix(".sealed")?;
        let (run, attempt) = name.split_once("-attempt-")?;
        Some(format!("samples/{run}/attempt-{attempt}"))
    }

    /// Samples for one attempt (inactive when `limits.samples` is 0).
    pub fn new(
        limits: FailedRecords,
        staging: &Staging,
        data_dir: &Path,
        run_id: i64,
        attempt: i64,
    ) -> Samples {
        let (kept_at, identity) = Self::location(data_dir, run_id, attempt);
        Samples {
            limits,
            identity,
            staged: staging.path().join("samples.sealed"),
            kept_at,
            writer: None,
            kept: 0,
            seen: 0,
        }
    }

    /// Record one failed record (already masked).
    pub fn add(
        &mut self,
        store: &Store,
        stream: &str,
        line: usize,
        reason: &str,
        record: &str,
    ) -> std::io::Result<()> {
        self.seen += 1;
        if self.kept >= self.limits.samples {
            return Ok(());
        }
        if self.writer.is_none() {
            let f = std::fs::File::create(&self.staged)?;
            self.writer = Some(SealedWriter::new(store.keyring(), &self.identity, f)?);
        }
        let mut cut = record.len().min(self.limits.max_sample_bytes);
        while !record.is_char_boundary(cut) {
            cut -= 1;
        }
        let sample = json!({
            "stream": stream,
            "line": line,
            "reason": reason,
            "record": &record[..cut],
            "truncated": cut < record.len(),
        });
        let w = self.writer.as_mut().expect("opened above");
        serde_json::to_writer(&mut *w, &sample)?;
        w.write_all(b"\n")?;
        self.kept += 1;
        Ok(())
    }

    /// Seal the last chunk and move the file out of staging. Returns its path and how many
    /// samples it holds, or `None` when nothing was sampled.
    pub fn keep(mut self) -> std::io::Result<Option<(PathBuf, usize)>> {
        let Some(w) = self.writer.take() else {
            return Ok(None);
        };
        w.finish()?.sync_all()?;
        if let Some(dir) = self.kept_at.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::rename(&self.staged, &self.kept_at)?;
        Ok(Some((self.kept_at.clone(), self.kept)))
    }
}

/// The audit entries that open a run: its start (with the grant and policy fingerprints), and a
/// `grant.changed` / `policy.changed` entry when they differ from the last run's.
pub fn start_entries(
    actor: &str,
    conn: &Connection,
    run_id: i64,
    attempt: i64,
    last_start: Option<&serde_json::Value>,
) -> Vec<NewEntry> {
    let resource = format!("connection/{}", conn.name);
    let grant = fingerprint(&(&conn.source.grant, &conn.destination.grant));
    let policy = fingerprint(&(&conn.pii, &conn.workspace, &conn.failed_records));
    let mut out = Vec::new();
    if let Some(last) = last_start {
        for (what, now) in [("grant", &grant), ("policy", &policy)] {
            let before = last.get(what).and_then(|v| v.as_str()).unwrap_or_default();
            if before != now.as_str() {
                out.push(NewEntry::new(
                    actor,
                    format!("{what}.changed"),
                    &resource,
                    "ok",
                    json!({ "from": before, "to": now }),
                ));
            }
        }
    }
    out.push(NewEntry::new(
        actor,
        "run.started",
        &resource,
        "ok",
        json!({
            "run": run_id,
            "attempt": attempt,
            "workspace": conn.workspace,
            "grant": grant,
            "policy": policy,
            "pii": conn.pii.is_some(),
        }),
    ));
    out
}
