//! PII policy at the wall: per stream and field path a rule (keep, mask, redact, hash, drop,
//! generalize), and detectors over every other string value. Applied to each batch before the
//! destination sees it; what was masked is counted per stream, field and rule or detector, and
//! never logged.
//!
//! Hashing is HMAC-SHA256 under a per-workspace key derived from the keyring: stable across
//! runs (joins still work), different in every workspace, and not reversible by a dictionary of
//! likely values without the key.

pub mod detect;
mod policy;

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

pub use detect::Entity;
pub use policy::{FieldRule, Granularity, OnDetect, PiiFile, PiiPolicy, Rule, RuleKind};

/// How many values were masked, per (stream, field path, rule or detector).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaskStats {
    counts: BTreeMap<(String, String, String), u64>,
}

/// One line of [`MaskStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaskCount {
    /// The stream.
    pub stream: String,
    /// The field path (`address.city`).
    pub field: String,
    /// The rule (`hash`, `mask`…) or the detector (`email`, `card`…).
    pub by: String,
    /// Values masked.
    pub count: u64,
}

impl MaskStats {
    fn add(&mut self, stream: &str, path: &[String], by: &str) {
        let key = (stream.to_string(), path.join("."), by.to_string());
        *self.counts.entry(key).or_default() += 1;
    }

    /// Add another set of counts to these.
    pub fn merge(&mut self, other: &MaskStats) {
        for (k, v) in &other.counts {
            *self.counts.entry(k.clone()).or_default() += v;
        }
    }

    /// Every count, ordered by stream, field and rule.
    pub fn lines(&self) -> Vec<MaskCount> {
        self.counts
            .iter()
            .map(|((stream, field, by), count)| MaskCount {
                stream: stream.clone(),
                field: field.clone(),
                by: by.clone(),
                count: *count,
            })
            .collect()
    }

    /// Values masked in all.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Rebuild from stored lines.
    pub fn from_lines(lines: impl IntoIterator<Item = MaskCount>) -> MaskStats {
        let mut s = MaskStats::default();
        for l in lines {
            *s.counts.entry((l.stream, l.field, l.by)).or_default() += l.count;
        }
        s
    }
}

/// A record that is not a JSON object (the wall's validation should have refused it).
#[derive(Debug, thiserror::Error)]
#[error("line {line} of the batch for stream `{stream}` cannot be masked: {reason}")]
pub struct MaskError {
    /// The stream.
    pub stream: String,
    /// 1-based line.
    pub line: usize,
    /// Why (never the value).
    pub reason: String,
}

/// A policy ready to apply: rules grouped by stream, and the workspace's hash key.
pub struct Masker {
    policy: PiiPolicy,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

struct Ctx<'a> {
    stream: &'a str,
    rules: Vec<(&'a [String], &'a Rule)>,
    masker: &'a Masker,
    stats: &'a mut MaskStats,
    path: Vec<String>,
}

impl Masker {
    /// Apply `policy`, hashing with `key` (the workspace's pseudonym key).
    pub fn new(policy: PiiPolicy, key: Zeroizing<[u8; 32]>) -> Masker {
        Masker { policy, key }
    }

    /// The policy.
    pub fn policy(&self) -> &PiiPolicy {
        &self.policy
    }

    fn hmac_hex(&self, text: &str) -> String {
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.key.as_ref())
            .expect("any key length");
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Mask a batch of JSON lines of `stream`, counting into `stats`. Returns the new batch.
    pub fn apply(
        &self,
        stream: &str,
        records: &[u8],
        stats: &mut MaskStats,
    ) -> Result<Vec<u8>, MaskError> {
        let rules = self.policy.rules_for(stream);
        let mut out = Vec::with_capacity(records.len() + records.len() / 8);
        let mut ctx = Ctx {
            stream,
            rules,
            masker: self,
            stats,
            path: Vec::new(),
        };
        for (i, line) in records.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let bad = |reason: String| MaskError {
                stream: stream.to_string(),
                line: i + 1,
                reason,
            };
            let mut value: Value = serde_json::from_slice(line)
                .map_err(|e| bad(format!("not valid JSON ({})", e.classify_name())))?;
            let Value::Object(map) = &mut value else {
                return Err(bad("not a JSON object".into()));
            };
            ctx.path.clear();
            for i in 0..ctx.rules.len() {
                let (path, rule) = ctx.rules[i];
                apply_rule(map, path, rule, &mut ctx);
            }
            if !self.policy.detectors.is_empty() {
                ctx.path.clear();
                detect_map(map, &mut ctx);
            }
            serde_json::to_writer(&mut out, &value).expect("a Value always serializes");
            out.push(b'\n');
        }
        Ok(out)
    }

    /// Replace what the detectors find in free text (a log line, an error message).
    pub fn scrub_text(&self, text: &str) -> String {
        let found = detect::find(text, &self.policy.detectors);
        if found.is_empty() {
            return text.to_string();
        }
        self.replace_findings(text, &found)
    }

    fn replace_findings(&self, text: &str, found: &[detect::Finding]) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for f in found {
            out.push_str(&text[last..f.start]);
            let original = &text[f.start..f.end];
            out.push_str(&match self.policy.on_detect {
                OnDetect::Redact => format!("[{}]", f.entity),
                OnDetect::Mask => mask(original, 4),
                OnDetect::Hash => format!("{}:{}", f.entity, self.hmac_hex(original)),
            });
            last = f.end;
        }
        out.push_str(&text[last..]);
        out
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "ends early",
        }
    }
}

/// Keep the last `keep` characters (at most half of them), star the rest.
fn mask(s: &str, keep: usize) -> String {
    let n = s.chars().count();
    let keep = keep.min(n / 2);
    s.chars()
        .enumerate()
        .map(|(i, c)| if i + keep < n { '*' } else { c })
        .collect()
}

fn apply_rule(map: &mut Map<String, Value>, path: &[String], rule: &Rule, ctx: &mut Ctx<'_>) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        let full: Vec<String> = ctx.path.iter().cloned().chain([head.clone()]).collect();
        if matches!(rule, Rule::Drop) {
            if map.shift_remove(head).is_some() {
                ctx.stats.add(ctx.stream, &full, rule.name());
            }
        } else if let Some(v) = map.get_mut(head)
            && apply_value(v, rule, ctx.masker)
        {
            ctx.stats.add(ctx.stream, &full, rule.name());
        }
        return;
    }
    ctx.path.push(head.clone());
    match map.get_mut(head) {
        Some(Value::Object(inner)) => apply_rule(inner, rest, rule, ctx),
        Some(Value::Array(items)) => {
            for item in items {
                if let Value::Object(inner) = item {
                    apply_rule(inner, rest, rule, ctx);
                }
            }
        }
        _ => {}
    }
    ctx.path.pop();
}

/// Apply a rule to one value. Returns whether it changed anything worth counting. A rule that
/// cannot apply to the value's type redacts it: the policy fails closed.
fn apply_value(v: &mut Value, rule: &Rule, m: &Masker) -> bool {
    match rule {
        Rule::Keep => false,
        Rule::Drop => true,
        Rule::Redact => {
            *v = Value::String("[redacted]".into());
            true
        }
        Rule::Hash => {
            if v.is_null() {
                return false;
            }
            let text = match &*v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            *v = Value::String(m.hmac_hex(&text));
            true
        }
        Rule::Mask { keep_last } => match v {
            Value::Null => false,
            Value::String(s) => {
                *s = mask(s, *keep_last);
                true
            }
            Value::Number(_) | Value::Bool(_) => {
                *v = Value::String(mask(&v.to_string(), *keep_last));
                true
            }
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |a, i| apply_value(i, rule, m) | a),
            Value::Object(o) => o
                .values_mut()
                .fold(false, |a, i| apply_value(i, rule, m) | a),
        },
        Rule::Generalize { to, bucket } => {
            let new = match (&*v, to, bucket) {
                (Value::Null, _, _) => return false,
                (Value::String(s), Some(g), _) => match g.truncate(s) {
                    Some(t) => Value::String(t),
                    None => Value::String("[redacted]".into()),
                },
                (Value::Number(n), _, Some(b)) => {
                    let floor = (n.as_f64().unwrap_or(0.0) / b).floor() * b;
                    if floor.fract() == 0.0 && floor.abs() < 9e15 {
                        Value::from(floor as i64)
                    } else {
                        serde_json::Number::from_f64(floor).map_or(Value::Null, Value::Number)
                    }
                }
                _ => Value::String("[redacted]".into()),
            };
            *v = new;
            true
        }
    }
}

fn covered(ctx: &Ctx<'_>, key: &str) -> bool {
    let depth = ctx.path.len();
    ctx.rules
        .iter()
        .any(|(p, _)| p.len() == depth + 1 && p[depth] == key && p[..depth] == ctx.path[..])
}

fn detect_map(map: &mut Map<String, Value>, ctx: &mut Ctx<'_>) {
    for (k, v) in map.iter_mut() {
        if covered(ctx, k) {
            continue;
        }
        ctx.path.push(k.clone());
        detect_value(v, ctx);
        ctx.path.pop();
    }
}

fn detect_value(v: &mut Value, ctx: &mut Ctx<'_>) {
    match v {
        Value::String(s) => {
            let found = detect::find(s, &ctx.masker.policy.detectors);
            if !found.is_empty() {
                for f in &found {
                    ctx.stats.add(ctx.stream, &ctx.path, f.entity.name());
                }
                *s = ctx.masker.replace_findings(s, &found);
            }
        }
        Value::Array(items) => {
            for i in items {
                detect_value(i, ctx);
            }
        }
        Value::Object(inner) => detect_map(inner, ctx),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
