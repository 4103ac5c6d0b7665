//! Events at the wall: every outbound request a connector made and every attempt refused,
//! recorded with the run. Never headers, bodies, record values or secrets: only who, what,
//! where and the outcome.
//!
//! Everything goes through [`EventLog::record`]. Refusals also go to the tamper-evident audit
//! log ([`super::audit`]) when the run ends.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Events kept per run; past this, events are counted but not kept.
const MAX_EVENTS: usize = 10_000;

/// Which capability an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Files and directories.
    Filesystem,
    /// Outbound HTTP.
    Network,
    /// A secret bound to a connection.
    Secret,
    /// A database reached through the host.
    Sql,
    /// What the component imports or asks for in its manifest.
    Load,
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Capability::Filesystem => "filesystem",
            Capability::Network => "network",
            Capability::Secret => "secret",
            Capability::Sql => "sql",
            Capability::Load => "load",
        })
    }
}

/// Whether the host allowed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done on the connector's behalf.
    Allowed,
    /// Refused: the connector reached past its grant.
    Refused,
    /// Allowed, but it did not complete (connection refused, timeout, TLS failure…).
    Failed,
}

/// One thing a connector did or tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time in milliseconds.
    pub at_ms: i64,
    /// The connector (name in the connection).
    pub connector: String,
    /// The capability involved.
    pub capability: Capability,
    /// Allowed or refused.
    pub outcome: Outcome,
    /// What it tried, e.g. `GET https://api.example.com:443/v1/users` or `open ../etc/passwd`.
    pub action: String,
    /// The result (status, bytes) or the reason for a refusal, with what to change to allow it.
    pub detail: String,
}

impl Event {
    /// The event as it may be stored and shown: `filter` (the run's secret scrubber and PII
    /// masker) applied to its text, then each field cut to
    /// [`EVENT_TEXT_BYTES`](crate::boundary::limits::EVENT_TEXT_BYTES).
    pub fn scrubbed(&self, filter: &dyn Fn(&str) -> String) -> Event {
        use crate::boundary::limits::{EVENT_TEXT_BYTES, cut};
        Event {
            connector: cut(&filter(&self.connector), EVENT_TEXT_BYTES),
            action: cut(&filter(&self.action), EVENT_TEXT_BYTES),
            detail: cut(&filter(&self.detail), EVENT_TEXT_BYTES),
            ..self.clone()
        }
    }
}

/// What makes guest text fit to be traced: the run's secret scrubber and PII masker.
pub type TextFilter = Arc<dyn Fn(&str) -> String + Send + Sync>;

#[derive(Default)]
struct Inner {
    events: Vec<Event>,
    dropped: u64,
    refused: u64,
    allowed: u64,
    filter: Option<TextFilter>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("events", &self.events.len())
            .field("dropped", &self.dropped)
            .field("filter", &self.filter.is_some())
            .finish_non_exhaustive()
    }
}

/// The events of one run, shared by the sandboxes of its connectors. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    inner: Arc<Mutex<Inner>>,
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trace refusals through `filter` from now on (the run's scrubber, once its secrets are
    /// known); until then a refusal is traced without the guest's text.
    pub fn set_filter(&self, filter: TextFilter) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).filter = Some(filter);
    }

    /// Record one event. The single entry point: refusals are also traced as warnings.
    pub fn record(
        &self,
        connector: &str,
        capability: Capability,
        outcome: Outcome,
        action: &str,
        detail: &str,
    ) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if outcome == Outcome::Refused {
            // Guest text reaches the process log only scrubbed and cut; before the run's
            // secrets are known ([`EventLog::set_filter`]), only what was refused.
            use crate::boundary::limits::{EVENT_TEXT_BYTES, cut};
            match &inner.filter {
                Some(f) => {
                    let (action, detail) = (
                        cut(&f(action), EVENT_TEXT_BYTES),
                        cut(&f(detail), EVENT_TEXT_BYTES),
                    );
                    tracing::warn!(connector, %capability, action, "refused: {detail}");
                }
                None => tracing::warn!(%capability, "a {capability} request was refused"),
            }
        }
        match outcome {
            Outcome::Refused => inner.refused += 1,
            Outcome::Allowed | Outcome::Failed => inner.allowed += 1,
        }
        if inner.events.len() >= MAX_EVENTS {
            inner.dropped += 1;
            return;
        }
        // Guest-controlled text is bounded here, and cut to its final length only once it has
        // been scrubbed ([`Event::scrubbed`]).
        use crate::boundary::limits::{EVENT_RAW_BYTES, cut};
        inner.events.push(Event {
            at_ms: now_ms(),
            connector: cut(connector, EVENT_RAW_BYTES),
            capability,
            outcome,
            action: cut(action, EVENT_RAW_BYTES),
            detail: cut(detail, EVENT_RAW_BYTES),
        });
    }

    /// Record a refusal.
    pub fn refused(&self, connector: &str, capability: Capability, action: &str, reason: &str) {
        self.record(connector, capability, Outcome::Refused, action, reason);
    }

    /// The events kept so far.
    pub fn events(&self) -> Vec<Event> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .clone()
    }

    /// How many refusals, and how many allowed actions, were recorded (kept or not).
    pub fn counts(&self) -> (u64, u64) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.refused, inner.allowed)
    }

    /// Events not kept because the log was full.
    pub fn dropped(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_kept_and_counted_and_the_log_is_bounded() {
        let log = EventLog::new();
        log.refused("c", Capability::Network, "GET http://10.0.0.1/", "private");
        log.record("c", Capability::Network, Outcome::Allowed, "GET x", "200");
        assert_eq!(log.counts(), (1, 1));
        assert_eq!(log.events()[0].outcome, Outcome::Refused);
        for _ in 0..MAX_EVENTS {
            log.record("c", Capability::Network, Outcome::Allowed, "GET x", "200");
        }
        assert_eq!(log.events().len(), MAX_EVENTS);
        assert_eq!(log.dropped(), 2);
        assert_eq!(log.counts(), (1, MAX_EVENTS as u64 + 1));
    }
}
