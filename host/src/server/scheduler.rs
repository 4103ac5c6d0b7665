//! The scheduler: active connections with a cron `schedule` run on time, in UTC.
//!
//! Each due occurrence starts a *chain*: wait for a run slot (at most `--max-runs` runs go at
//! once, whoever started them), run, and on failure retry with exponential backoff and jitter
//! until the retries are spent. A retry resumes the failed run (same id, next attempt). While a
//! connection's chain is in progress, its next occurrences are skipped (audited once per
//! chain), and a run started elsewhere (the API, the CLI) makes the chain stand down: runs of
//! one connection never overlap. Occurrences missed while the server was down are not caught
//! up; the next one after start-up runs.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use croner::Cron;
use serde_json::json;

use super::Server;
use super::resolve::resolve;
use super::runs::{RunEnd, StartError, start};
use crate::boundary::audit::NewEntry;
use crate::store::{ConnectionDef, Occurrence};

/// Who the audit log says started scheduled runs.
pub const ACTOR: &str = "scheduler";

/// How failed scheduled runs are retried.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleRetry {
    /// Retries after the first failure (0: none).
    pub retries: usize,
    /// The first retry's delay; each next one doubles (with jitter).
    pub delay: Duration,
}

impl Default for ScheduleRetry {
    fn default() -> Self {
        ScheduleRetry {
            retries: 3,
            delay: Duration::from_secs(60),
        }
    }
}

/// A schedule as the API accepts it: 5 cron fields, or 6 with seconds first, or an alias.
pub fn parse(schedule: &str) -> Result<Cron, croner::errors::CronError> {
    Cron::from_str(schedule)
}

/// How often the scheduler looks for due connections.
const TICK: Duration = Duration::from_millis(500);

/// Connections with a chain in progress, and whether a skipped occurrence was audited.
type Chains = Arc<Mutex<HashMap<String, bool>>>;

/// Run the scheduler until the server shuts down (`server.running` closes).
pub async fn run(server: Server, policy: ScheduleRetry) {
    let chains: Chains = Arc::default();
    let mut next: HashMap<String, (String, DateTime<Utc>)> = HashMap::new();
    let mut warned: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !server.running.is_closed() {
        tick.tick().await;
        let defs = match server.store.connection_defs(None).await {
            Ok(defs) => defs,
            Err(e) => {
                tracing::error!("the scheduler cannot read the connections: {e}");
                continue;
            }
        };
        let now = Utc::now();
        let scheduled: Vec<(ConnectionDef, String)> = defs
            .into_iter()
            .filter(|d| d.status == "active")
            .filter_map(|d| d.schedule.clone().map(|s| (d, s)))
            .collect();
        next.retain(|key, _| scheduled.iter().any(|(d, _)| d.key() == *key));
        for (def, schedule) in scheduled {
            let key = def.key();
            let cron = match parse(&schedule) {
                Ok(c) => c,
                Err(e) => {
                    // Checked when stored; only a definition written by hand gets here.
                    if warned.insert(key.clone()) {
                        tracing::warn!("connection `{key}` has an invalid schedule: {e}");
                    }
                    continue;
                }
            };
            let Ok(upcoming) = cron.find_next_occurrence(&now, false) else {
                continue;
            };
            match next.get(&key) {
                Some((pattern, at)) if *pattern == schedule => {
                    if *at > now {
                        continue;
                    }
                    let due = *at;
                    next.insert(key, (schedule, upcoming));
                    if server.worker.is_some() {
                        enqueue(&server, &chains, def, due).await;
                    } else {
                        fire(&server, &chains, def, policy).await;
                    }
                }
                // New or changed: wait for its next occurrence.
                _ => {
                    next.insert(key, (schedule, upcoming));
                }
            }
        }
    }
}

/// An occurrence of `def` (due `at`) on a store a fleet shares: enqueue it once, whichever
/// replica gets there first; a worker (this server's or another) runs it. Skipped while the
/// connection's previous run is queued or running (audited once until one is enqueued again).
/// A failed run is resumed by the next occurrence, not retried.
async fn enqueue(server: &Server, chains: &Chains, def: ConnectionDef, at: DateTime<Utc>) {
    let key = def.key();
    let labels = match resolve(&server.store, &def).await {
        Ok(conn) => conn.labels,
        Err(e) => {
            tracing::warn!("the scheduler cannot enqueue `{key}`: {e}");
            return;
        }
    };
    let occurrence = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match server
        .store
        .enqueue_occurrence(&key, &occurrence, &labels, ACTOR)
        .await
    {
        Ok(Occurrence::Enqueued(job)) => {
            chains
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            tracing::info!("enqueued the {occurrence} run of `{key}` as job {job}");
        }
        // Another replica enqueued it (or skipped it) already.
        Ok(Occurrence::Taken) => {}
        Ok(Occurrence::Busy) => {
            let first = chains
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, true)
                .is_none();
            if first {
                audit(
                    server,
                    "schedule.skipped",
                    &def,
                    json!({
                        "reason": "the previous run is still queued or running",
                        "occurrence": occurrence,
                    }),
                )
                .await;
            }
        }
        Err(e) => tracing::error!("the scheduler cannot enqueue `{key}`: {e}"),
    }
}

/// An occurrence of `def` is due: start its chain, or skip it while one is in progress.
async fn fire(server: &Server, chains: &Chains, def: ConnectionDef, policy: ScheduleRetry) {
    let key = def.key();
    let first_skip = {
        let mut map = chains.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&key) {
            Some(skipped) => !std::mem::replace(skipped, true),
            None => {
                map.insert(key.clone(), false);
                let (server, chains) = (server.clone(), chains.clone());
                tokio::spawn(async move {
                    chain(&server, &def, policy).await;
                    chains
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&def.key());
                });
                return;
            }
        }
    };
    if first_skip {
        audit(
            server,
            "schedule.skipped",
            &def,
            json!({ "reason": "the previous scheduled run (or its retries) is still in progress" }),
        )
        .await;
    }
}

/// One occurrence: run, retrying failures with backoff.
async fn chain(server: &Server, def: &ConnectionDef, policy: ScheduleRetry) {
    let mut delays = backon::ExponentialBuilder::new()
        .with_min_delay(policy.delay)
        .with_max_delay(policy.delay * 64)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(policy.retries)
        .build();
    for attempt in 1.. {
        let Some(slot) = server.running.slot().await else {
            return;
        };
        // It may have been paused, changed or deleted while waiting.
        let def = match server.store.connection_def(&def.workspace, &def.name).await {
            Ok(Some(d)) if d.status == "active" && d.schedule.is_some() => d,
            Ok(_) => return,
            Err(e) => {
                tracing::error!("the scheduler cannot read `{}`: {e}", def.key());
                return;
            }
        };
        let (run_id, outcome) = match resolve(&server.store, &def).await {
            Err(e) => (None, RunEnd::Failed(e.to_string())),
            Ok(conn) => match start(server, def.key(), conn, ACTOR.into(), false, slot).await {
                Ok(started) => (
                    Some(started.run_id),
                    started.done.await.unwrap_or_else(|e| {
                        RunEnd::Failed(format!("the run task ended abnormally: {e}"))
                    }),
                ),
                Err(StartError::Busy) => {
                    if !server.running.is_closed() {
                        audit(
                            server,
                            "schedule.skipped",
                            &def,
                            json!({ "reason": "a run of this connection is in progress" }),
                        )
                        .await;
                    }
                    return;
                }
                Err(StartError::Failed(e)) => (None, RunEnd::Failed(e)),
                Err(e @ StartError::NeedsLabels(_)) => (None, RunEnd::Failed(e.to_string())),
            },
        };
        let RunEnd::Failed(error) = outcome else {
            return;
        };
        match delays.next() {
            Some(delay) => {
                audit(
                    server,
                    "schedule.retry",
                    &def,
                    json!({
                        "run": run_id,
                        "failed_attempt": attempt,
                        "error": error,
                        "retry_in_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    }),
                )
                .await;
                tokio::time::sleep(delay).await;
            }
            None => {
                audit(
                    server,
                    "schedule.gave_up",
                    &def,
                    json!({ "run": run_id, "attempts": attempt, "error": error }),
                )
                .await;
                return;
            }
        }
    }
}

async fn audit(server: &Server, action: &str, def: &ConnectionDef, details: serde_json::Value) {
    let entry = NewEntry::new(
        ACTOR,
        action,
        format!("workspace/{}/connections/{}", def.workspace, def.name),
        if action == "schedule.gave_up" {
            "failed"
        } else {
            "ok"
        },
        details,
    );
    if let Err(e) = server.store.audit(&[entry]).await {
        tracing::error!("cannot audit `{action}` for `{}`: {e}", def.key());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_take_five_or_six_fields_and_aliases_and_refuse_the_rest() {
        for ok in ["0 * * * *", "*/2 * * * * *", "@daily", "30 2 * * MON-FRI"] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "every hour", "61 * * * *", "* * * *", "0 0 32 * *"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_next_occurrence_is_in_utc_and_strictly_after_now() {
        let now: DateTime<Utc> = "2026-11-23T13:59:59Z".parse().unwrap();
        let hourly = parse("0 * * * *").unwrap();
        let at = hourly.find_next_occurrence(&now, false).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-23T14:00:00+00:00");
        let at2 = hourly.find_next_occurrence(&at, false).unwrap();
        assert_eq!(at2.to_rfc3339(), "2026-11-23T15:00:00+00:00");
    }
}
