//! The record walk: one pass over a record's JSON text that copies every value no rule or
//! detector changes byte for byte, and rebuilds only the values that change. Objects are split
//! into members by `serde_json` (keys unescaped, values as raw text), so a record costs one
//! scan plus the strings the detectors read, not a parse into a tree and a re-serialization.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::policy::Rule;
use super::{Masker, detect};
use crate::boundary::limits::MAX_JSON_DEPTH;

/// Why a record could not be walked.
#[derive(Debug)]
pub(super) enum WalkError {
    /// Not JSON, or not an object (serde_json's error; its data errors quote the value).
    Json(serde_json::Error),
    /// Objects and arrays nested deeper than the host ever allows: the wall checks a
    /// connection's own, lower limit before the walk, and the walk holds this one itself.
    TooDeep,
}

impl From<serde_json::Error> for WalkError {
    fn from(e: serde_json::Error) -> WalkError {
        WalkError::Json(e)
    }
}

/// An object's members in order: keys unescaped (borrowed when they hold no escapes), values
/// as their raw JSON text. Duplicate keys are kept, so a rule applies to every copy.
pub(super) struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                // serde_json cannot say how many: room for a typical record's members, so
                // the list is not regrown on the way.
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(32));
                while let Some(Key(k)) = map.next_key()? {
                    members.push((k, map.next_value()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Object)
    }
}

/// A member name, borrowed from the record when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl<'de> Visitor<'de> for Name {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Name)
    }
}

/// Masked-value counts of one batch, per (field path, rule or detector): a short list, so a
/// count costs no allocation once its field has been seen.
#[derive(Default)]
pub(super) struct Counts(pub(super) Vec<(String, &'static str, u64)>);

impl Counts {
    fn add(&mut self, field: &str, by: &'static str) {
        match self.0.iter_mut().find(|(f, b, _)| *b == by && f == field) {
            Some((_, _, n)) => *n += 1,
            None => self.0.push((field.to_string(), by, 1)),
        }
    }
}

/// The walk over the records of one batch of one stream.
pub(super) struct Walk<'m> {
    masker: &'m Masker,
    /// The stream's rules: field path and rule, in policy order.
    rules: Vec<(&'m [String], &'m Rule)>,
    /// Every rule, the starting set at the top of a record.
    all: Vec<usize>,
    detect: bool,
    /// The dotted path of the member being walked (for the counts).
    field: String,
    /// Objects and arrays open around the value being walked.
    nesting: usize,
    pub(super) counts: Counts,
}

impl<'m> Walk<'m> {
    pub(super) fn new(masker: &'m Masker, stream: &str) -> Walk<'m> {
        let rules = masker.policy.rules_for(stream);
        Walk {
            all: (0..rules.len()).collect(),
            rules,
            masker,
            detect: !masker.policy.detectors.is_empty(),
            field: String::new(),
            nesting: 0,
            counts: Counts::default(),
        }
    }

    /// Mask one record (a JSON object) onto `out`.
    pub(super) fn record(&mut self, line: &str, out: &mut Vec<u8>) -> Result<(), WalkError> {
        let members: Members<'_> = serde_json::from_str(line)?;
        self.field.clear();
        self.nesting = 0;
        let all = std::mem::take(&mut self.all);
        let done = self.object(members, 0, &all, out);
        self.all = all;
        done
    }

    /// Write an object's members; `alive` are the rules whose path matches so far (`depth`
    /// keys deep).
    fn object(
        &mut self,
        members: Members<'_>,
        depth: usize,
        alive: &[usize],
        out: &mut Vec<u8>,
    ) -> Result<(), WalkError> {
        out.push(b'{');
        let mut first = true;
        for (key, raw) in members.0 {
            let mark = self.field.len();
            if mark > 0 {
                self.field.push('.');
            }
            self.field.push_str(&key);
            let here = |p: &[String]| p.len() > depth && p[depth] == *key;
            // The rules for exactly this member, in order; a drop ends them.
            let (mut ruled, mut dropped, mut value) = (false, false, None::<Value>);
            for &i in alive {
                let (path, rule) = self.rules[i];
                if path.len() != depth + 1 || !here(path) {
                    continue;
                }
                ruled = true;
                match rule {
                    Rule::Keep => {}
                    Rule::Drop => {
                        self.counts.add(&self.field, rule.name());
                        dropped = true;
                        break;
                    }
                    _ => {
                        let v = match &mut value {
                            Some(v) => v,
                            None => value.insert(serde_json::from_str(raw.get())?),
                        };
                        if super::apply_value(v, rule, self.masker) {
                            self.counts.add(&self.field, rule.name());
                        }
                    }
                }
            }
            if !dropped {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                match &key {
                    // Borrowed means the name had no escapes (and control characters do not
                    // parse): its text is already valid JSON.
                    Cow::Borrowed(k) => {
                        out.push(b'"');
                        out.extend_from_slice(k.as_bytes());
                        out.extend_from_slice(b"\":");
                    }
                    Cow::Owned(k) => {
                        serde_json::to_writer(&mut *out, k)?;
                        out.push(b':');
                    }
                }
                match value {
                    Some(v) => serde_json::to_writer(&mut *out, &v)?,
                    None if ruled => out.extend_from_slice(raw.get().as_bytes()),
                    None => {
                        let deeper = |i: &usize| {
                            let path = self.rules[*i].0;
                            path.len() > depth + 1 && here(path)
                        };
                        // Most members have no rule below them: no list to build.
                        if alive.iter().any(deeper) {
                            let below: Vec<usize> = alive.iter().copied().filter(deeper).collect();
                            self.value(raw, depth + 1, &below, out)?;
                        } else {
                            self.value(raw, depth + 1, &[], out)?;
                        }
                    }
                }
            }
            self.field.truncate(mark);
        }
        out.push(b'}');
        Ok(())
    }

    /// Write a value no rule names: descend where rules or detectors need to, copy the rest.
    fn value(
        &mut self,
        raw: &RawValue,
        depth: usize,
        below: &[usize],
        out: &mut Vec<u8>,
    ) -> Result<(), WalkError> {
        let text = raw.get().trim_ascii();
        let descend = self.detect || !below.is_empty();
        let open = matches!(text.as_bytes().first(), Some(b'{' | b'['));
        if descend && open {
            self.nesting += 1;
            if self.nesting > MAX_JSON_DEPTH {
                return Err(WalkError::TooDeep);
            }
        }
        let done = self.descend(text, descend, depth, below, out);
        if descend && open {
            self.nesting -= 1;
        }
        done
    }

    fn descend(
        &mut self,
        text: &str,
        descend: bool,
        depth: usize,
        below: &[usize],
        out: &mut Vec<u8>,
    ) -> Result<(), WalkError> {
        match text.as_bytes().first() {
            Some(b'{') if descend => {
                let members: Members<'_> = serde_json::from_str(text)?;
                self.object(members, depth, below, out)
            }
            Some(b'[') if descend => {
                let items: Vec<&RawValue> = serde_json::from_str(text)?;
                out.push(b'[');
                for (i, item) in items.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.value(item, depth, below, out)?;
                }
                out.push(b']');
                Ok(())
            }
            Some(b'"') if self.detect => self.string(text, out),
            _ => {
                out.extend_from_slice(text.as_bytes());
                Ok(())
            }
        }
    }

    /// Run the detectors over a string value (its JSON text, quotes included).
    fn string(&mut self, text: &str, out: &mut Vec<u8>) -> Result<(), WalkError> {
        let inner = &text[1..text.len() - 1];
        let unescaped;
        let s = if inner.contains('\\') {
            unescaped = serde_json::from_str::<String>(text)?;
            unescaped.as_str()
        } else {
            inner
        };
        let context = detect::Context {
            field: &self.field,
            regions: &self.masker.policy.phone_regions,
        };
        let found = detect::find_in(s, &self.masker.policy.detectors, &context);
        if found.is_empty() {
            out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        for f in &found {
            self.counts.add(&self.field, f.entity.name());
        }
        Ok(serde_json::to_writer(
            &mut *out,
            &self.masker.replace_findings(s, &found),
        )?)
    }
}
