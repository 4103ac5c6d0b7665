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

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The file name in the data dir.
pub const FILE: &str = "retention.toml";

/// The longest retention a setting may name (a century); anything longer is `forever`.
pub const MAX_KEEP: Duration = Duration::from_secs(36_500 * 86_400);

/// Audit entries younger than this are never purged, whatever the settings say, and the API
/// cannot set a shorter audit retention. Only `sluice serve --audit-floor` lowers it (for that
/// server), so that a compromised key cannot erase recent history by shortening retention.
pub const AUDIT_FLOOR: Duration = Duration::from_secs(365 * 86_400);

/// Below this, the audit floor is not given by a duration alone: `sluice serve` takes it only
/// with the flag's value spelt out (nothing in the API or the file reaches it).
pub const AUDIT_MIN: Duration = Duration::from_secs(30 * 86_400);

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
    fn parse(class: &str, s: &str) -> Result<Keep, SettingError> {
        match s {
            "do_not_store" => return Ok(Keep::DoNotStore),
            "forever" => return Ok(Keep::Forever),
            _ => {}
        }
        let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let bad = || SettingError::NotADuration {
            class: class.to_string(),
            value: s.to_string(),
        };
        let n: u64 = n.parse().map_err(|_| bad())?;
        let secs = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => return Err(bad()),
        };
        // Longer than a century is `forever`; past it the arithmetic would overflow.
        match n.checked_mul(secs) {
            Some(total) if total <= MAX_KEEP.as_secs() => Ok(Keep::For(Duration::from_secs(total))),
            _ => Err(SettingError::TooLong {
                class: class.to_string(),
                value: s.to_string(),
                max_days: MAX_KEEP.as_secs() / 86_400,
            }),
        }
    }

    /// A duration as the settings write one (`14d`, `12h`, `30m`, `90s`).
    pub fn parse_duration(s: &str) -> Option<Duration> {
        match Keep::parse("", s) {
            Ok(Keep::For(d)) => Some(d),
            _ => None,
        }
    }

    /// Whether anything of the class is written.
    pub fn stores(self) -> bool {
        self != Keep::DoNotStore
    }

    /// The moment before which data is overdue, as RFC 3339; `None` when nothing is.
    pub fn cutoff(self, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
        match self {
            Keep::DoNotStore => Some(now + time::Duration::days(1)),
            // Before the calendar's start: nothing is that old.
            Keep::For(d) => now.checked_sub(time::Duration::try_from(d).ok()?),
            Keep::Forever => None,
        }
    }
}

impl fmt::Display for Keep {
    /// As written in the settings: `14d`, `12h`, `forever`, `do_not_store`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::DoNotStore => f.write_str("do_not_store"),
            Keep::Forever => f.write_str("forever"),
            Keep::For(d) => {
                let secs = d.as_secs();
                let (n, unit) = [(86_400, "d"), (3_600, "h"), (60, "m")]
                    .into_iter()
                    .find(|(u, _)| secs > 0 && secs % u == 0)
                    .map_or((secs, "s"), |(u, unit)| (secs / u, unit));
                write!(f, "{n}{unit}")
            }
        }
    }
}

/// What a retention setting looks like: a number and `d`, `h`, `m` or `s`, `forever` or
/// `do_not_store` (its value is checked further: at most [`MAX_KEEP`], and audit at least the
/// server's floor).
pub const KEEP_PATTERN: &str = "^([0-9]{1,12}[dhms]|forever|do_not_store)$";

/// Retention as written (the file, the API): each class a duration (`14d`, `12h`, `30m`,
/// `45s`), `"forever"` or `"do_not_store"`; a class left out has its default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Leftovers of runs that died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^([0-9]{1,12}[dhms]|forever|do_not_store)$")]
    pub staging: Option<String>,
    /// Connector log lines and wall events of runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^([0-9]{1,12}[dhms]|forever|do_not_store)$")]
    pub run_logs: Option<String>,
    /// Failed-record samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^([0-9]{1,12}[dhms]|forever|do_not_store)$")]
    pub samples: Option<String>,
    /// Audit log entries (removed only up to a signed digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^([0-9]{1,12}[dhms]|forever|do_not_store)$")]
    pub audit: Option<String>,
    /// Checkpoints of connections not run for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^([0-9]{1,12}[dhms]|forever|do_not_store)$")]
    pub state: Option<String>,
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

/// Why retention settings are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// A value that is not a duration, `forever` or `do_not_store`.
    #[error(
        "`{class} = \"{value}\"`: write a number of days, hours, minutes or seconds (`14d`, \
         `12h`), \"forever\" or \"do_not_store\""
    )]
    NotADuration {
        /// The data class.
        class: String,
        /// What was written.
        value: String,
    },
    /// Longer than [`MAX_KEEP`].
    #[error(
        "`{class}` = `{value}` is longer than {max_days} days: write `forever` to keep it always"
    )]
    TooLong {
        /// The data class.
        class: String,
        /// What was written.
        value: String,
        /// The longest a setting may name.
        max_days: u64,
    },
    /// `do_not_store` for `audit` or `state`.
    #[error(
        "`audit` and `state` cannot be \"do_not_store\": without the audit log nothing is \
         accountable, and without state every run starts over"
    )]
    MustStore,
    /// An audit retention below the server's floor (through the API).
    #[error(
        "`audit = \"{audit}\"` is below this server's audit floor of {floor}: audit entries are \
         kept at least that long, and only the operator lowers the floor (`sluice serve \
         --audit-floor`), never the API"
    )]
    BelowFloor {
        /// What was asked for.
        audit: Keep,
        /// The floor.
        floor: Keep,
    },
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
    /// These settings with the audit retention raised to at least `floor` (what purges apply).
    pub fn floored(mut self, floor: Duration) -> Retention {
        if let Keep::For(d) = self.audit
            && d < floor
        {
            self.audit = Keep::For(floor);
        }
        self
    }

    /// Refuse an audit retention below `floor` (for settings sent through the API).
    pub fn check_floor(&self, floor: Duration) -> Result<(), SettingError> {
        match self.audit {
            Keep::For(d) if d < floor => Err(SettingError::BelowFloor {
                audit: self.audit,
                floor: Keep::For(floor),
            }),
            _ => Ok(()),
        }
    }

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
        let f: RetentionSettings = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        Retention::from_settings(f).map_err(|e| err(e.to_string()))
    }

    /// Retention from settings as written; the reason when they cannot be used.
    pub fn from_settings(f: RetentionSettings) -> Result<Retention, SettingError> {
        let d = Retention::default();
        let get = |class: &str, v: Option<String>, default: Keep| match v {
            Some(s) => Keep::parse(class, &s),
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
            return Err(SettingError::MustStore);
        }
        Ok(r)
    }

    /// Every class as written.
    pub fn settings(&self) -> RetentionSettings {
        RetentionSettings {
            staging: Some(self.staging.to_string()),
            run_logs: Some(self.run_logs.to_string()),
            samples: Some(self.samples.to_string()),
            audit: Some(self.audit.to_string()),
            state: Some(self.state.to_string()),
        }
    }

    /// Write these settings to the data dir's `retention.toml` (replacing it whole, so a
    /// reader never sees half a file).
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let body = toml::to_string(&self.settings()).map_err(std::io::Error::other)?;
        let mut tmp = tempfile::NamedTempFile::new_in(data_dir)?;
        use std::io::Write;
        writeln!(
            tmp,
            "# How long sluice keeps each class of data (see docs/boundary.md); written by \
             `PUT /v1/retention`."
        )?;
        tmp.write_all(body.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(data_dir.join(FILE)).map_err(|e| e.error)?;
        Ok(())
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

    #[test]
    fn saved_settings_load_back_as_they_were_written() {
        let dir = tempfile::tempdir().unwrap();
        let r = Retention {
            staging: Keep::For(Duration::from_secs(7200)),
            run_logs: Keep::DoNotStore,
            samples: Keep::For(Duration::from_secs(90)),
            audit: Keep::For(Duration::from_secs(400 * 86_400)),
            state: Keep::Forever,
        };
        r.save(dir.path()).unwrap();
        assert_eq!(Retention::load(dir.path()).unwrap(), r);
        let s = r.settings();
        assert_eq!(s.staging.as_deref(), Some("2h"));
        assert_eq!(s.samples.as_deref(), Some("90s"));
        assert_eq!(s.audit.as_deref(), Some("400d"));
        assert_eq!(s.run_logs.as_deref(), Some("do_not_store"));
        assert_eq!(Keep::For(Duration::from_secs(120)).to_string(), "2m");
    }

    #[test]
    fn the_audit_floor_holds_whatever_the_settings_say() {
        let short = Retention {
            audit: Keep::For(Duration::ZERO),
            ..Retention::default()
        };
        assert_eq!(short.floored(AUDIT_FLOOR).audit, Keep::For(AUDIT_FLOOR));
        let e = short.check_floor(AUDIT_FLOOR).unwrap_err();
        assert!(matches!(e, SettingError::BelowFloor { .. }));
        let e = e.to_string();
        assert!(e.contains("--audit-floor"), "{e}");
        // Longer, or forever, is kept as it is; the operator's lower floor lets it through.
        let long = Retention {
            audit: Keep::For(AUDIT_FLOOR * 2),
            ..Retention::default()
        };
        assert_eq!(long.floored(AUDIT_FLOOR), long);
        assert!(long.check_floor(AUDIT_FLOOR).is_ok());
        assert_eq!(
            Retention::default().floored(AUDIT_FLOOR),
            Retention::default()
        );
        let day = Duration::from_secs(86_400);
        assert!(short.check_floor(Duration::ZERO).is_ok());
        assert_eq!(short.floored(day).audit, Keep::For(day));
        assert_eq!(
            Keep::parse_duration("12h"),
            Some(Duration::from_secs(43_200))
        );
        assert_eq!(Keep::parse_duration("forever"), None);
    }

    /// Found by an outside review: `10000000d` was accepted and then panicked every purge
    /// (`now - d` overflowed), and `213503982334602d` wrapped round to 64 days.
    #[test]
    fn a_retention_too_long_to_compute_is_refused_and_cutoffs_never_overflow() {
        for s in [
            "10000000d",
            "213503982334602d",
            "36501d",
            "18446744073709551615s",
        ] {
            let e = Keep::parse("audit", s).unwrap_err();
            assert!(
                matches!(
                    e,
                    SettingError::TooLong { .. } | SettingError::NotADuration { .. }
                ),
                "{s}"
            );
            let e = e.to_string();
            assert!(e.contains("audit") && e.contains("forever"), "{s}: {e}");
        }
        assert_eq!(Keep::parse("audit", "36500d"), Ok(Keep::For(MAX_KEEP)));
        let now = time::OffsetDateTime::now_utc();
        assert!(Keep::For(MAX_KEEP).cutoff(now).unwrap() < now);
        // A duration no setting can name still gives no panic: nothing is that old.
        assert_eq!(Keep::For(Duration::from_secs(u64::MAX)).cutoff(now), None);
    }
}
