//! PII policy at the wall: per stream and field path a rule (keep, mask, redact, hash, drop,
//! generalize), and detectors over every other string value. Applied to each batch before the
//! destination sees it; what was masked is counted per stream, field and rule or detector, and
//! never logged.
//!
//! Hashing is HMAC-SHA256 under a per-workspace key derived from the keyring: stable across
//! runs (joins still work), different in every workspace, and not reversible by a dictionary of
//! likely values without the key.

pub mod detect;
mod email;
pub mod phone;
mod plan;
mod policy;
mod walk;

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

pub use detect::Entity;
pub use policy::{FieldRule, Granularity, OnDetect, PiiFile, PiiPolicy, Rule, RuleKind};

/// How many values were masked, per (stream, field path, rule or detector).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaskStats {
    counts: BTreeMap<(String, String, String), u64>,
}

/// One line of [`MaskStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    /// Count `n` values of `stream`'s `field` masked by `by` (a rule or a detector).
    pub fn add(&mut self, stream: &str, field: &str, by: &str, n: u64) {
        let key = (stream.to_string(), field.to_string(), by.to_string());
        *self.counts.entry(key).or_default() += n;
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

/// A line of a batch that is not a JSON object: the masker's walk checks every record as it
/// goes, so a masked batch needs no other syntax check.
#[derive(Debug, thiserror::Error)]
#[error("line {line} of the batch for stream `{stream}` cannot be masked: {}", .not_json.as_deref().unwrap_or("it is JSON but not an object"))]
pub struct MaskError {
    /// The stream.
    pub stream: String,
    /// 1-based line.
    pub line: usize,
    /// The parser's message (positions only, never the value) when the line is not JSON;
    /// `None` when it is JSON but not an object.
    pub not_json: Option<String>,
}

/// A policy ready to apply: rules grouped by stream, and the workspace's hash key.
pub struct Masker {
    policy: PiiPolicy,
    /// HMAC-SHA256 keyed with the workspace key, cloned per value (zeroized on drop).
    mac: Hmac<sha2::Sha256>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Masker {
    /// Apply `policy`, hashing with `key` (the workspace's pseudonym key).
    pub fn new(policy: PiiPolicy, key: Zeroizing<[u8; 32]>) -> Masker {
        let mac =
            <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_ref()).expect("any key length");
        Masker { policy, mac }
    }

    /// The policy.
    pub fn policy(&self) -> &PiiPolicy {
        &self.policy
    }

    fn hmac_hex(&self, text: &str) -> String {
        let mut out = Vec::with_capacity(64);
        self.hmac_hex_into(text, &mut out);
        String::from_utf8(out).expect("hex is ASCII")
    }

    /// The workspace-keyed HMAC-SHA256 of `text`, as 64 hex digits appended to `out`.
    fn hmac_hex_into(&self, text: &str, out: &mut Vec<u8>) {
        let mut mac = self.mac.clone();
        mac.update(text.as_bytes());
        let mut hex = [0u8; 64];
        hex::encode_to_slice(mac.finalize().into_bytes(), &mut hex).expect("64 hex digits");
        out.extend_from_slice(&hex);
    }

    /// Mask a batch of JSON lines of `stream`, counting into `stats`. Returns the new batch
    /// and its record count.
    pub fn apply(
        &self,
        stream: &str,
        records: &[u8],
        stats: &mut MaskStats,
    ) -> Result<(Vec<u8>, u64), MaskError> {
        let mut walk = walk::Walk::new(self, stream);
        let mut out = Vec::with_capacity(records.len() + records.len() / 8);
        let bad = |line: usize, not_json: Option<String>| MaskError {
            stream: stream.to_string(),
            line,
            not_json,
        };
        let text = std::str::from_utf8(records).map_err(|e| {
            let line = records[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            bad(line + 1, Some("not valid UTF-8".into()))
        })?;
        let mut count = 0;
        if text.is_empty() {
            return Ok((out, 0));
        }
        // Every line is a record, blank ones included (they are refused, as by the wall).
        let body = text.strip_suffix('\n').unwrap_or(text);
        for (i, line) in body.split('\n').enumerate() {
            walk.record(line, &mut out).map_err(|e| {
                let e = match e {
                    walk::WalkError::Json(e) => e,
                    walk::WalkError::TooDeep => {
                        let most = crate::boundary::limits::MAX_JSON_DEPTH;
                        return bad(i + 1, Some(format!("nested more than {most} deep")));
                    }
                };
                // A data error's message quotes the value: say only what kind it was.
                let object = line.trim_ascii_start().starts_with('{');
                bad(
                    i + 1,
                    match (e.is_data(), object) {
                        (true, false) => None,
                        (true, true) => Some("unexpected data".into()),
                        (false, _) => Some(e.to_string()),
                    },
                )
            })?;
            out.push(b'\n');
            count += 1;
        }
        for (field, by, n) in walk.counts.0 {
            stats.add(stream, &field, by, n);
        }
        Ok((out, count))
    }

    /// Replace what the detectors find in free text (a log line, an error message).
    pub fn scrub_text(&self, text: &str) -> String {
        let context = detect::Context {
            field: "",
            regions: &self.policy.phone_regions,
        };
        let found = detect::find_in(text, &self.policy.detectors, &context);
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

/// Keep the last `keep` characters (at most half of them), star the rest.
fn mask(s: &str, keep: usize) -> String {
    let mut out = Vec::with_capacity(s.len());
    mask_into(s, keep, &mut out);
    String::from_utf8(out).expect("stars and the end of a string")
}

/// [`mask`], appended to `out`.
fn mask_into(s: &str, keep: usize, out: &mut Vec<u8>) {
    let n = s.chars().count();
    let keep = keep.min(n / 2);
    out.resize(out.len() + (n - keep), b'*');
    let tail = s.char_indices().nth(n - keep).map_or(s.len(), |(i, _)| i);
    out.extend_from_slice(&s.as_bytes()[tail..]);
}

/// Apply a rule to one value given as its JSON text, writing the result's JSON text onto
/// `out`. Returns whether it changed anything worth counting. A string without escapes (most
/// of them) is ruled where it stands, with no value built; anything else goes through
/// [`apply_value`], with the same result.
fn apply_raw(
    text: &str,
    rule: &Rule,
    m: &Masker,
    out: &mut Vec<u8>,
) -> Result<bool, serde_json::Error> {
    let text = text.trim_ascii();
    // The text of a JSON string with no escapes is the string itself between its quotes; it
    // holds no quote, backslash or control character, so any part of it is valid inside
    // quotes again.
    let plain = (text.len() >= 2 && text.starts_with('"') && !text.contains('\\'))
        .then(|| &text[1..text.len() - 1]);
    let quoted = |out: &mut Vec<u8>, write: &dyn Fn(&mut Vec<u8>)| {
        out.push(b'"');
        write(out);
        out.push(b'"');
    };
    match (rule, plain) {
        // Anything else is parsed first (below), so the walk still refuses what is not JSON.
        (Rule::Redact, Some(_)) => out.extend_from_slice(br#""[redacted]""#),
        (Rule::Hash, Some(s)) => quoted(out, &|out| m.hmac_hex_into(s, out)),
        (Rule::Mask { keep_last }, Some(s)) => quoted(out, &|out| mask_into(s, *keep_last, out)),
        (Rule::Generalize { to: Some(g), .. }, Some(s)) => match g.keep(s) {
            Some(n) => quoted(out, &|out| out.extend_from_slice(&s.as_bytes()[..n])),
            None => out.extend_from_slice(br#""[redacted]""#),
        },
        _ => {
            let mut v: Value = serde_json::from_str(text)?;
            let changed = apply_value(&mut v, rule, m);
            serde_json::to_writer(&mut *out, &v)?;
            return Ok(changed);
        }
    }
    Ok(true)
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

#[cfg(test)]
mod tests;
