//! The PII policy as a connection file writes it (`[pii]`), checked into rules.

use serde::Deserialize;

use super::detect::Entity;

/// What a field rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Leave it as is (and keep the detectors off it).
    Keep,
    /// Star all but the last `keep_last` characters.
    Mask,
    /// Replace it with `[redacted]`.
    Redact,
    /// Replace it with the workspace-keyed HMAC-SHA256 (hex).
    Hash,
    /// Remove the field.
    Drop,
    /// Coarsen a timestamp (`to`) or a number (`bucket`).
    Generalize,
}

/// How coarse a generalized timestamp becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// `2024`.
    Year,
    /// `2024-03`.
    Month,
    /// `2024-03-15`.
    Day,
}

impl Granularity {
    /// Truncate an ISO 8601 date or timestamp; `None` when `s` does not start with one.
    pub fn truncate(self, s: &str) -> Option<String> {
        self.keep(s).map(|n| s[..n].to_string())
    }

    /// How many bytes of `s` [`Granularity::truncate`] keeps (ASCII digits and dashes).
    pub(super) fn keep(self, s: &str) -> Option<usize> {
        let b = s.as_bytes();
        let digits =
            |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        let ok = digits(0..4)
            && (b.len() == 4 || (b.get(4) == Some(&b'-') && digits(5..7)))
            && (b.len() <= 7 || (b.get(7) == Some(&b'-') && digits(8..10)));
        if !ok {
            return None;
        }
        let keep = match self {
            Granularity::Year => 4,
            Granularity::Month => 7,
            Granularity::Day => 10,
        };
        (b.len() >= keep).then_some(keep)
    }
}

/// A rule, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// See [`RuleKind::Keep`].
    Keep,
    /// See [`RuleKind::Mask`].
    Mask {
        /// Characters left visible at the end (at most half the value).
        keep_last: usize,
    },
    /// See [`RuleKind::Redact`].
    Redact,
    /// See [`RuleKind::Hash`].
    Hash,
    /// See [`RuleKind::Drop`].
    Drop,
    /// See [`RuleKind::Generalize`].
    Generalize {
        /// For timestamps.
        to: Option<Granularity>,
        /// For numbers: round down to a multiple of this.
        bucket: Option<f64>,
    },
}

impl Rule {
    /// Its name in stats.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Keep => "keep",
            Rule::Mask { .. } => "mask",
            Rule::Redact => "redact",
            Rule::Hash => "hash",
            Rule::Drop => "drop",
            Rule::Generalize { .. } => "generalize",
        }
    }
}

/// What the detectors do with what they find.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDetect {
    /// Replace it with its kind: `[email]`.
    #[default]
    Redact,
    /// Star all but the last 4 characters.
    Mask,
    /// Replace it with `KIND:` and the workspace-keyed HMAC (stable, joinable).
    Hash,
}

/// `[[pii.fields]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    stream: Option<String>,
    path: String,
    rule: RuleKind,
    keep_last: Option<usize>,
    to: Option<Granularity>,
    bucket: Option<f64>,
}

/// `[pii]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiFile {
    /// Detectors to run over string values without a rule; default: all of them.
    detectors: Option<Vec<Entity>>,
    #[serde(default)]
    on_detect: OnDetect,
    /// Regions national phone numbers are read in (ISO 3166 codes); default
    /// [`super::phone::DEFAULT_REGIONS`].
    phone_regions: Option<Vec<String>>,
    #[serde(default)]
    fields: Vec<FieldFile>,
}

/// A field rule: which stream (all when `None`), which path, what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRule {
    /// The stream, or every stream.
    pub stream: Option<String>,
    /// The path, split on `.`.
    pub path: Vec<String>,
    /// The rule.
    pub rule: Rule,
}

/// A connection's PII policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PiiPolicy {
    /// Detectors over string values without a rule.
    pub detectors: Vec<Entity>,
    /// What detectors do with a finding.
    pub on_detect: OnDetect,
    /// Regions national phone numbers are read in.
    pub phone_regions: Vec<phonenumber::country::Id>,
    /// Field rules, in file order.
    pub fields: Vec<FieldRule>,
}

impl Default for PiiPolicy {
    /// Every detector, findings redacted, no field rules.
    fn default() -> Self {
        PiiPolicy {
            detectors: Entity::ALL.to_vec(),
            on_detect: OnDetect::Redact,
            phone_regions: super::phone::DEFAULT_REGIONS.to_vec(),
            fields: Vec::new(),
        }
    }
}

/// Why a PII policy is refused: the rule at fault (`pii.fields[2]`) and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A path with an empty segment.
    #[error("{at}: path `{path}` has an empty segment; write field names separated by `.`")]
    EmptySegment {
        /// The rule.
        at: String,
        /// Its path.
        path: String,
    },
    /// A setting of another kind of rule.
    #[error("{at}: `{setting}` applies only to rule = \"{kind}\"")]
    NotForRule {
        /// The rule.
        at: String,
        /// The setting.
        setting: &'static str,
        /// The rule kind it belongs to.
        kind: &'static str,
    },
    /// `generalize` with nothing to generalize to.
    #[error(
        "{at}: generalize needs `to` (\"year\", \"month\" or \"day\") for timestamps or \
         `bucket` (a positive number) for numbers"
    )]
    GeneralizeTo {
        /// The rule.
        at: String,
    },
    /// A bucket that is not a positive number.
    #[error("{at}: `bucket` must be a positive number")]
    Bucket {
        /// The rule.
        at: String,
    },
    /// A phone region that is not an ISO 3166 code libphonenumber knows.
    #[error(
        "pii.phone_regions: `{0}` is not a region: write ISO 3166 codes such as \"DE\", \"FR\", \
         \"JP\" (or leave it out for the default set)"
    )]
    UnknownRegion(String),
    /// An empty list of phone regions.
    #[error(
        "pii.phone_regions is empty: name at least one region, or leave it out for the default set"
    )]
    NoRegions,
    /// A rule on a field inside one that `keep` leaves as it is.
    #[error(
        "{at}: `{path}` is inside `{kept}`, which {keep_at} keeps as it is, so this rule would \
         never apply; remove one of the two"
    )]
    UnderKeep {
        /// The rule.
        at: String,
        /// Its path.
        path: String,
        /// The kept path above it.
        kept: String,
        /// The keep rule.
        keep_at: String,
    },
    /// Two rules for one field.
    #[error("{at}: `{path}` already has a rule{for_stream}; one rule per field")]
    Twice {
        /// The rule.
        at: String,
        /// Its path.
        path: String,
        /// ` for stream `S``, or nothing.
        for_stream: String,
    },
}

impl PiiFile {
    /// Check the policy; errors name the rule (`pii.fields[2]`) and what to change.
    pub fn check(self) -> Result<PiiPolicy, PolicyError> {
        let mut fields = Vec::new();
        for (i, f) in self.fields.into_iter().enumerate() {
            let at = format!("pii.fields[{i}]");
            let path: Vec<String> = f.path.split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err(PolicyError::EmptySegment { at, path: f.path });
            }
            let only = |setting: &'static str, present: bool, kind: &'static str| {
                if present {
                    Err(PolicyError::NotForRule {
                        at: at.clone(),
                        setting,
                        kind,
                    })
                } else {
                    Ok(())
                }
            };
            if f.rule != RuleKind::Mask {
                only("keep_last", f.keep_last.is_some(), "mask")?;
            }
            if f.rule != RuleKind::Generalize {
                only("to", f.to.is_some(), "generalize")?;
                only("bucket", f.bucket.is_some(), "generalize")?;
            }
            let rule = match f.rule {
                RuleKind::Keep => Rule::Keep,
                RuleKind::Mask => Rule::Mask {
                    keep_last: f.keep_last.unwrap_or(4),
                },
                RuleKind::Redact => Rule::Redact,
                RuleKind::Hash => Rule::Hash,
                RuleKind::Drop => Rule::Drop,
                RuleKind::Generalize => {
                    if f.to.is_none() && f.bucket.is_none() {
                        return Err(PolicyError::GeneralizeTo { at });
                    }
                    if let Some(b) = f.bucket
                        && !(b.is_finite() && b > 0.0)
                    {
                        return Err(PolicyError::Bucket { at });
                    }
                    Rule::Generalize {
                        to: f.to,
                        bucket: f.bucket,
                    }
                }
            };
            if fields
                .iter()
                .any(|r: &FieldRule| r.stream == f.stream && r.path == path)
            {
                return Err(PolicyError::Twice {
                    at,
                    for_stream: f
                        .stream
                        .as_deref()
                        .map(|s| format!(" for stream `{s}`"))
                        .unwrap_or_default(),
                    path: f.path,
                });
            }
            fields.push(FieldRule {
                stream: f.stream,
                path,
                rule,
            });
        }
        // A kept value is copied whole: a rule below it would silently not apply.
        for (k, keep) in fields.iter().enumerate() {
            if keep.rule != Rule::Keep {
                continue;
            }
            let under = fields.iter().position(|f| {
                f.path.len() > keep.path.len()
                    && f.path.starts_with(&keep.path)
                    && (f.stream.is_none() || keep.stream.is_none() || f.stream == keep.stream)
            });
            if let Some(i) = under {
                return Err(PolicyError::UnderKeep {
                    at: format!("pii.fields[{i}]"),
                    path: fields[i].path.join("."),
                    kept: keep.path.join("."),
                    keep_at: format!("pii.fields[{k}]"),
                });
            }
        }
        let mut detectors = self.detectors.unwrap_or_else(|| Entity::ALL.to_vec());
        // Resolution order is fixed (`Entity::ALL`), whatever order the file lists them in.
        detectors.sort_by_key(|d| Entity::ALL.iter().position(|a| a == d));
        detectors.dedup();
        let phone_regions = match self.phone_regions {
            None => super::phone::DEFAULT_REGIONS.to_vec(),
            Some(list) if list.is_empty() => return Err(PolicyError::NoRegions),
            Some(list) => list
                .iter()
                .map(|r| {
                    let code = r.trim().to_ascii_uppercase();
                    code.parse::<phonenumber::country::Id>()
                        .ok()
                        .filter(|_| code.len() == 2)
                        .ok_or_else(|| PolicyError::UnknownRegion(r.chars().take(16).collect()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(PiiPolicy {
            detectors,
            on_detect: self.on_detect,
            phone_regions,
            fields,
        })
    }
}

impl PiiPolicy {
    /// The rules that apply to `stream`: its own, then those for every stream on paths it
    /// does not set itself.
    pub fn rules_for(&self, stream: &str) -> Vec<(&[String], &Rule)> {
        let own = self
            .fields
            .iter()
            .filter(|f| f.stream.as_deref() == Some(stream));
        let all = self.fields.iter().filter(|f| {
            f.stream.is_none()
                && !self
                    .fields
                    .iter()
                    .any(|o| o.stream.as_deref() == Some(stream) && o.path == f.path)
        });
        own.chain(all)
            .map(|f| (f.path.as_slice(), &f.rule))
            .collect()
    }

    /// Streams the rules name that are not in `streams` (likely a typo).
    pub fn unknown_streams<'a>(&'a self, streams: &[&str]) -> Vec<&'a str> {
        let mut out: Vec<&str> = self
            .fields
            .iter()
            .filter_map(|f| f.stream.as_deref())
            .filter(|s| !streams.contains(s))
            .collect();
        out.dedup();
        out
    }
}
