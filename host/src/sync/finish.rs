//! Phase three of a run: whatever the attempt did, keep its failed-record samples, store its log
//! and events (scrubbed), finish the run record and write the run's audit entries, sealed.

use super::*;

/// What a run hands its finish.
pub(super) struct Finishing<'a> {
    pub(super) conn: &'a Connection,
    pub(super) retention: &'a Retention,
    pub(super) start: &'a crate::store::RunStart,
    pub(super) actor: &'a str,
    pub(super) resource: &'a str,
    pub(super) began: Instant,
    pub(super) log: &'a RunLog,
    pub(super) events: &'a EventLog,
    pub(super) secrets: &'a [(String, SecretString)],
    pub(super) masker: Option<Arc<Masker>>,
    pub(super) staging: wall::Staging,
    pub(super) area: &'a Path,
    pub(super) audit: Vec<NewEntry>,
}

/// Finish the run: what the store, the audit log and the report say of it.
pub(super) async fn finish(
    store: &Store,
    f: Finishing<'_>,
    mut outcome: PumpOutcome<SyncError>,
) -> Result<RunReport, SyncError> {
    let Finishing {
        conn,
        retention,
        start,
        actor,
        resource,
        began,
        log,
        events,
        secrets,
        masker,
        staging,
        area,
        mut audit,
    } = f;
    let actor = actor.to_string();
    let scrub = wall::text_filter(secrets, masker.clone());
    // Failed-record samples: masked like everything else, sealed in staging, then kept.
    let mut limits = conn.failed_records;
    if !retention.samples.stores() {
        limits.samples = 0;
    }
    let mut samples = wall::Samples::new(limits, &staging, area, start.run_id, start.attempt);
    let kept = outcome
        .invalid
        .iter()
        .try_for_each(|r| {
            let record = scrub(&String::from_utf8_lossy(&r.record));
            samples.add(store, &r.stream, r.line, &r.reason, &record)
        })
        .and_then(|()| samples.keep())
        .map_err(|source| SyncError::Staging {
            path: staging.path().to_path_buf(),
            source,
        });
    let sampled = match kept {
        Ok(Some((path, n))) => {
            store.add_samples(start.run_id, &path, n as u64).await?;
            n as u64
        }
        Ok(None) => 0,
        Err(e) => {
            if outcome.result.is_ok() {
                outcome.result = Err(e);
            }
            0
        }
    };
    drop(staging);

    let (status, error) = match &outcome.result {
        Ok(()) => (RunStatus::Succeeded, None),
        Err(e @ SyncError::Stopped(_)) => (RunStatus::Interrupted, Some(scrub(&e.to_string()))),
        Err(e) => (RunStatus::Failed, Some(scrub(&e.to_string()))),
    };
    let lines = log.lines();
    // Events hold guest text (paths, URLs, SQL): scrubbed like log lines, then cut, before
    // they are stored, audited or reported.
    let recorded: Vec<crate::boundary::events::Event> = events
        .events()
        .iter()
        .map(|e| e.scrubbed(&*scrub))
        .collect();
    if retention.run_logs.stores() {
        store.append_logs(start.run_id, &lines).await?;
        store.append_events(start.run_id, &recorded).await?;
    }
    store.add_masking(start.run_id, &outcome.masked).await?;
    let totals = super::attempt::add(&start.committed, &outcome.stats);
    store
        .finish_run(
            start.run_id,
            start.attempt,
            status,
            error.as_deref(),
            &totals,
            log.dropped(),
        )
        .await?;
    let refusals = events.counts().0;
    for e in recorded
        .iter()
        .filter(|e| e.outcome == Outcome::Refused)
        .take(MAX_AUDITED_REFUSALS)
    {
        audit.push(NewEntry::new(
            format!("connector:{}", e.connector),
            "capability.refused",
            resource,
            "refused",
            json!({
                "run": start.run_id,
                "capability": e.capability,
                "action": e.action,
                "reason": e.detail,
            }),
        ));
    }
    audit.push(NewEntry::new(
        &actor,
        "run.finished",
        resource,
        match status {
            RunStatus::Succeeded => "ok",
            RunStatus::Interrupted => "stopped",
            _ => "failed",
        },
        json!({
            "run": start.run_id,
            "attempt": start.attempt,
            "records": totals.iter().map(|s| s.records).sum::<u64>(),
            "bytes": totals.iter().map(|s| s.bytes).sum::<u64>(),
            "streams": totals,
            "masked": outcome.masked.total(),
            "skipped": outcome.skipped,
            "samples": sampled,
            "spilled_bytes": outcome.spilled.bytes,
            "refusals": refusals,
            "error": error,
        }),
    ));
    store.audit(&audit).await?;
    store.audit_seal().await?;
    Ok(RunReport {
        run_id: start.run_id,
        attempt: start.attempt,
        streams: std::mem::take(&mut outcome.stats),
        commits: outcome.commits,
        active: std::mem::take(&mut outcome.active),
        duration: began.elapsed(),
        log: lines,
        log_dropped: log.dropped(),
        events: recorded,
        refusals,
        masked: std::mem::take(&mut outcome.masked),
        skipped: outcome.skipped,
        samples: sampled,
        spilled: outcome.spilled,
        error: outcome.result.err(),
        error_message: error,
    })
}
