//! Phase two of a run: instantiate both connectors, discover and configure, then pump, committing
//! checkpoints into the store as the destination makes data durable.

use super::load::Side;
use super::*;

/// Commits into the store, adding the counts of earlier attempts of the same run.
struct StoreCheckpoints<'a> {
    store: &'a Store,
    run_id: i64,
    attempt: i64,
    connection: &'a str,
    base: Vec<StreamStats>,
}

pub(super) fn add(base: &[StreamStats], this: &[StreamStats]) -> Vec<StreamStats> {
    let mut out = base.to_vec();
    for s in this {
        match out.iter_mut().find(|b| b.stream == s.stream) {
            Some(b) => {
                b.records += s.records;
                b.bytes += s.bytes;
            }
            None => out.push(s.clone()),
        }
    }
    out
}

impl Checkpoints for StoreCheckpoints<'_> {
    type Error = StoreError;
    async fn commit(
        &mut self,
        states: Vec<StreamState>,
        stats: Vec<StreamStats>,
    ) -> Result<(), StoreError> {
        let total = add(&self.base, &stats);
        self.store
            .commit_checkpoint(self.run_id, self.attempt, self.connection, &states, &total)
            .await?;
        Ok(())
    }
}

/// Both prepared sides and what the attempt adds to the run's scrubbing.
pub(super) struct Sides<'a> {
    pub(super) source: &'a Side,
    pub(super) destination: &'a Side,
    pub(super) masker: Option<Arc<Masker>>,
    pub(super) log: &'a RunLog,
    pub(super) events: &'a EventLog,
    /// Secrets to scrub; config fields the connectors' specs mark secret are added.
    pub(super) secrets: &'a mut Vec<(String, SecretString)>,
    /// The run's staging directory (spill segments go there).
    pub(super) staging: &'a std::path::Path,
}

pub(super) async fn attempt(
    runtime: &Runtime,
    store: &Store,
    conn: &Connection,
    sides: Sides<'_>,
    start: &crate::store::RunStart,
    options: &RunOptions,
) -> PumpOutcome<SyncError> {
    let Sides {
        source,
        destination,
        masker,
        log,
        events,
        secrets,
        staging,
    } = sides;
    let prepared = async {
        let mut src = source.connector.source(runtime, &source.sandbox).await?;
        let mut dst = destination
            .connector
            .destination(runtime, &destination.sandbox)
            .await?;
        let src_spec = src.spec().await?;
        let spec = dst.spec().await?;
        // Config fields the connectors mark secret are scrubbed like granted secrets.
        for (side, sp) in [(source, &src_spec), (destination, &spec)] {
            let config: serde_json::Value = serde_json::from_str(&side.config).unwrap_or_default();
            for v in crate::boundary::scrub::secret_values(&sp.config_schema, &config) {
                secrets.push((
                    format!("{}.config", side.connector.name()),
                    SecretString::from(v),
                ));
            }
        }
        log.set_filter(wall::text_filter(secrets, masker.clone()));
        events.set_filter(wall::text_filter(secrets, masker.clone()));
        let catalog = src.discover(&source.config).await?;
        let catalog = conn.configure(&catalog, &spec)?;
        if let Some(m) = &masker {
            let names: Vec<&str> = catalog
                .streams
                .iter()
                .map(|s| s.stream.name.as_str())
                .collect();
            let unknown = m.policy().unknown_streams(&names);
            if !unknown.is_empty() {
                log.push(
                    "sluice",
                    crate::protocol::LogLevel::Warn,
                    &format!(
                        "the PII policy names streams this run does not move: {}",
                        unknown.join(", ")
                    ),
                );
            }
        }
        let committed = store.states(&conn.name).await?;
        let (states, dest_catalog) = resume_plan(&catalog, &committed, start.run_id);
        let reader = src.read(&source.config, &catalog, &states).await?;
        let writer = dst.open(&destination.config, &dest_catalog).await?;
        Ok::<_, SyncError>((reader, writer, catalog))
    }
    .await;
    let (reader, writer, catalog) = match prepared {
        Ok(p) => p,
        Err(e) => return PumpOutcome::failed(e),
    };
    let checkpoints = StoreCheckpoints {
        store,
        run_id: start.run_id,
        attempt: start.attempt,
        connection: &conn.name,
        base: start.committed.clone(),
    };
    let cfg = PumpConfig {
        batch_records: conn.limits.batch_records,
        max_batch_bytes: conn.limits.max_batch_bytes,
        max_json_depth: conn.limits.max_json_depth,
        checkpoint_interval: conn.limits.checkpoint_interval,
        masker,
        on_invalid: conn.failed_records.on_invalid,
        keep_invalid: conn.failed_records.samples,
        spill: (conn.limits.spill_bytes > 0).then(|| spill::SpillConfig {
            dir: staging.to_path_buf(),
            ring: store.keyring_arc(),
            identity: format!("run-{}/attempt-{}", start.run_id, start.attempt),
            max_bytes: conn.limits.spill_bytes,
            segment_bytes: spill::SEGMENT_BYTES,
        }),
        stop: options.stop.clone(),
        ..PumpConfig::default()
    };
    pump(
        reader,
        writer,
        Arc::new(catalog),
        checkpoints,
        cfg,
        options.progress.clone(),
    )
    .await
    .map_err(SyncError::from)
}
