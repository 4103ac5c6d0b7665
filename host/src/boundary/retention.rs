//! Retention: how long each class of data is kept. Set in `DATA_DIR/retention.toml`; every
//! class has a default, and `"do_not_store"` keeps nothing of it at all.
//!
//! ```toml
//! staging = "14d"          # leftovers of runs that died (a finished run removes its own)
//! run_logs = "30d"         # connector log lines and wall events of runs
//! samples = "30d"          # failed-record samples
//! audit = "365d"           # audit log entries (removed only up to a signed digest)
//! state = "forever"        # checkpoints of connections not run for this long
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The file name in the data dir.
pub const FILE: &str = "retention.toml";

/// How long one class is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Never written.
    DoNotStore,
    /// Removed once older than this.
    For(Duration),
    /// Never removed.
    Forever,
}

impl Keep {
    fn parse(class: &str, s: &str) -> Result<Keep, String> {
        match s {
            "do_not_store" => return Ok(Keep::DoNotStore),
            "forever" => return Ok(Keep::Forever),
            _ => {}
        }
        let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: u64 = n.parse().map_err(|_| bad(class, s))?;
        let secs = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => return Err(bad(class, s)),
        };
        Ok(Keep::For(Duration::from_secs(n * secs)))
    }

    /// Whether anything of the class is written.
    pub fn stores(self) -> bool {
        self != Keep::DoNotStore
    }

    /// The moment before which data is overdue, as RFC 3339; `None` when nothing is.
    pub fn cutoff(self, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
        match self {
            Keep::DoNotStore => Some(now + time::Duration::days(1)),
            Keep::For(d) => Some(now - d),
            Keep::Forever => None,
        }
    }
}

fn bad(class: &str, s: &str) -> String {
    format!(
        "`{class} = \"{s}\"`: write a number of days, hours, minutes or seconds (`14d`, `12h`), \
         \"forever\" or \"do_not_store\""
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    staging: Option<String>,
    run_logs: Option<String>,
    samples: Option<String>,
    audit: Option<String>,
    state: Option<String>,
}

/// Retention of every data class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Staging files of runs that died before cleaning up.
    pub staging: Keep,
    /// Run log lines and wall events.
    pub run_logs: Keep,
    /// Failed-record samples.
    pub samples: Keep,
    /// Audit log entries.
    pub audit: Keep,
    /// Checkpoints of connections not run within it.
    pub state: Keep,
}

impl Default for Retention {
    fn default() -> Self {
        let days = |d: u64| Keep::For(Duration::from_secs(d * 86_400));
        Retention {
            staging: days(14),
            run_logs: days(30),
            samples: days(30),
            audit: days(365),
            state: Keep::Forever,
        }
    }
}

/// Why the retention file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("retention settings {path}: {reason}")]
pub struct RetentionError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl Retention {
    /// The data dir's retention: its `retention.toml`, or the defaults.
    pub fn load(data_dir: &Path) -> Result<Retention, RetentionError> {
        let path = data_dir.join(FILE);
        let err = |reason: String| RetentionError {
            path: path.display().to_string(),
            reason,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Retention::default()),
            Err(e) => return Err(err(e.to_string())),
        };
        let f: RetentionFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let d = Retention::default();
        let get = |class: &str, v: Option<String>, default: Keep| match v {
            Some(s) => Keep::parse(class, &s).map_err(&err),
            None => Ok(default),
        };
        let r = Retention {
            staging: get("staging", f.staging, d.staging)?,
            run_logs: get("run_logs", f.run_logs, d.run_logs)?,
            samples: get("samples", f.samples, d.samples)?,
            audit: get("audit", f.audit, d.audit)?,
            state: get("state", f.state, d.state)?,
        };
        if r.audit == Keep::DoNotStore || r.state == Keep::DoNotStore {
            return Err(err(
                "`audit` and `state` cannot be \"do_not_store\": without the audit log nothing \
                 is accountable, and without state every run starts over"
                    .into(),
            ));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Retention::load(dir.path()).unwrap(), Retention::default());
        std::fs::write(
            dir.path().join(FILE),
            "run_logs = \"do_not_store\"\nstaging = \"2h\"\n",
        )
        .unwrap();
        let r = Retention::load(dir.path()).unwrap();
        assert_eq!(r.run_logs, Keep::DoNotStore);
        assert_eq!(r.staging, Keep::For(Duration::from_secs(7200)));
        assert_eq!(r.audit, Retention::default().audit);
        std::fs::write(dir.path().join(FILE), "samples = \"two weeks\"\n").unwrap();
        let e = Retention::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("samples") && e.contains("14d"), "{e}");
        std::fs::write(dir.path().join(FILE), "audit = \"do_not_store\"\n").unwrap();
        assert!(Retention::load(dir.path()).is_err());
    }
}
