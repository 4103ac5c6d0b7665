//! The run log: what connectors logged, printed and panicked, bounded so a flood cannot exhaust
//! the host.

use std::sync::{Arc, Mutex};

use crate::protocol::{LogLevel, LogLine};

/// What every line passes through before it is kept: secret and PII scrubbing.
pub type LineFilter = Arc<dyn Fn(&str) -> String + Send + Sync>;

#[derive(Default)]
struct Inner {
    filter: Option<LineFilter>,
    lines: Vec<LogLine>,
    dropped: u64,
    /// The last panic message per connector: the host quotes it when the connector traps.
    last_panic: Vec<(String, String)>,
}

/// A bounded, shared run log. Cloning gives another handle to the same log.
#[derive(Clone, Default)]
pub struct RunLog {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock().expect("run log lock");
        f.debug_struct("RunLog")
            .field("lines", &inner.lines.len())
            .field("dropped", &inner.dropped)
            .finish_non_exhaustive()
    }
}

impl RunLog {
    /// Lines kept per run; later lines are counted as dropped.
    pub const MAX_LINES: usize = 10_000;
    /// Bytes kept per line.
    pub const MAX_LINE_BYTES: usize = 4096;

    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pass every line (those kept so far too) through `filter` before it is kept or traced.
    pub fn set_filter(&self, filter: LineFilter) {
        let mut inner = self.inner.lock().expect("run log lock");
        for line in &mut inner.lines {
            line.message = filter(&line.message);
        }
        for (_, m) in &mut inner.last_panic {
            *m = filter(m);
        }
        inner.filter = Some(filter);
    }

    /// Append a line from `connector`.
    pub fn push(&self, connector: &str, level: LogLevel, message: &str) {
        let mut inner = self.inner.lock().expect("run log lock");
        let filtered;
        let message = match &inner.filter {
            Some(f) => {
                filtered = f(message);
                filtered.as_str()
            }
            None => message,
        };
        if level == LogLevel::Error && message.starts_with("panicked at") {
            let text = truncate(message, Self::MAX_LINE_BYTES).to_string();
            match inner.last_panic.iter_mut().find(|(c, _)| c == connector) {
                Some((_, m)) => *m = text,
                None => inner.last_panic.push((connector.to_string(), text)),
            }
        }
        if inner.lines.len() >= Self::MAX_LINES {
            inner.dropped += 1;
            return;
        }
        let message = truncate(message, Self::MAX_LINE_BYTES);
        if level >= LogLevel::Warn {
            tracing::warn!(target: "connector", connector, "{message}");
        } else {
            tracing::debug!(target: "connector", connector, "{message}");
        }
        inner.lines.push(LogLine {
            connector: connector.to_string(),
            level,
            message: message.to_string(),
        });
    }

    /// The lines kept so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.inner.lock().expect("run log lock").lines.clone()
    }

    /// How many lines were dropped because the log was full.
    pub fn dropped(&self) -> u64 {
        self.inner.lock().expect("run log lock").dropped
    }

    /// The last panic message `connector` logged, if any.
    pub fn last_panic(&self, connector: &str) -> Option<String> {
        let inner = self.inner.lock().expect("run log lock");
        inner
            .last_panic
            .iter()
            .find(|(c, _)| c == connector)
            .map(|(_, m)| m.clone())
    }
}

/// Cut `s` to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_applies_to_lines_before_and_after_it_is_set() {
        let log = RunLog::new();
        log.push("c", LogLevel::Info, "early s3cr3t");
        log.set_filter(Arc::new(|m: &str| m.replace("s3cr3t", "[secret:x]")));
        log.push("c", LogLevel::Error, "panicked at x: s3cr3t");
        let lines = log.lines();
        assert_eq!(lines[0].message, "early [secret:x]");
        assert!(!lines[1].message.contains("s3cr3t"));
        assert!(!log.last_panic("c").unwrap().contains("s3cr3t"));
    }

    #[test]
    fn a_flood_is_bounded_and_counted() {
        let log = RunLog::new();
        for i in 0..(RunLog::MAX_LINES + 25) {
            log.push("c", LogLevel::Info, &format!("line {i}"));
        }
        assert_eq!(log.lines().len(), RunLog::MAX_LINES);
        assert_eq!(log.dropped(), 25);
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let log = RunLog::new();
        log.push("c", LogLevel::Info, &"é".repeat(5000));
        let line = &log.lines()[0].message;
        assert!(line.len() <= RunLog::MAX_LINE_BYTES);
        assert!(line.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_last_panic_is_remembered_even_when_the_log_is_full() {
        let log = RunLog::new();
        for _ in 0..RunLog::MAX_LINES {
            log.push("c", LogLevel::Info, "x");
        }
        log.push("c", LogLevel::Error, "panicked at src/lib.rs:1:1:\nboom");
        assert!(log.last_panic("c").unwrap().contains("boom"));
        assert_eq!(log.last_panic("other"), None);
    }
}
