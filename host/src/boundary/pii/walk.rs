//! The record walk: one pass over a record's JSON text that copies every value no rule or
//! detector changes byte for byte, and rebuilds only the values that change. `serde_json` hands
//! over an object's members one at a time (keys unescaped, values as raw text) and each is
//! written as it arrives, with no list of members built; a ruled string is rewritten where it
//! stands. A record costs one scan, plus a second over its nested objects and the strings the
//! detectors read; not a parse into a tree and a re-serialization.

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor,
};
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

/// Walks one object (or array) as serde_json reads it: each member is written as it arrives,
/// so no list of members is built. Its value comes as raw text, so numbers keep theirs.
struct Walker<'w, 'm> {
    walk: &'w mut Walk<'m>,
    /// Keys deep, for the rules.
    depth: usize,
    /// The rules whose path matches so far.
    alive: &'w [usize],
    out: &'w mut Vec<u8>,
    /// An array, not an object.
    array: bool,
}

impl<'de> DeserializeSeed<'de> for Walker<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.array {
            d.deserialize_seq(self)
        } else {
            d.deserialize_map(self)
        }
    }
}

impl<'de> Visitor<'de> for Walker<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.array {
            "a JSON array"
        } else {
            "a JSON object"
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.out.push(b'{');
        let mut first = true;
        while let Some(Key(key)) = map.next_key()? {
            let raw: &RawValue = map.next_value()?;
            let done = self
                .walk
                .member(key, raw, self.depth, self.alive, &mut first, self.out);
            if let Err(e) = done {
                // Kept whole (a nested parser's error, or the depth bound) for the caller.
                self.walk.failed = Some(e);
                return Err(A::Error::custom("the walk stopped"));
            }
        }
        self.out.push(b'}');
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push(b'[');
        let mut first = true;
        while let Some(item) = seq.next_element::<&RawValue>()? {
            if !std::mem::take(&mut first) {
                self.out.push(b',');
            }
            if let Err(e) = self.walk.value(item, self.depth, self.alive, self.out) {
                self.walk.failed = Some(e);
                return Err(A::Error::custom("the walk stopped"));
            }
        }
        self.out.push(b']');
        Ok(())
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
    /// Why a walk inside serde_json's parse stopped (its own error says only that it did).
    failed: Option<WalkError>,
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
            failed: None,
            counts: Counts::default(),
        }
    }

    /// Mask one record (a JSON object) onto `out`.
    pub(super) fn record(&mut self, line: &str, out: &mut Vec<u8>) -> Result<(), WalkError> {
        self.field.clear();
        self.nesting = 0;
        let all = std::mem::take(&mut self.all);
        let done = self.parse(line, false, 0, &all, out);
        self.all = all;
        done
    }

    /// Walk `text`, an object (or an array), onto `out`; `alive` are the rules whose path
    /// matches so far (`depth` keys deep).
    fn parse(
        &mut self,
        text: &str,
        array: bool,
        depth: usize,
        alive: &[usize],
        out: &mut Vec<u8>,
    ) -> Result<(), WalkError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let walker = Walker {
            walk: self,
            depth,
            alive,
            out,
            array,
        };
        match walker.deserialize(&mut de).and_then(|()| de.end()) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failed.take().unwrap_or(WalkError::Json(e))),
        }
    }

    /// Write one member of an object: its rule applied, or its value walked.
    fn member(
        &mut self,
        key: Cow<'_, str>,
        raw: &RawValue,
        depth: usize,
        alive: &[usize],
        first: &mut bool,
        out: &mut Vec<u8>,
    ) -> Result<(), WalkError> {
        let mark = self.field.len();
        if mark > 0 {
            self.field.push('.');
        }
        self.field.push_str(&key);
        let here = |p: &[String]| p.len() > depth && p[depth] == *key;
        // One rule per field (the policy's check and `rules_for` see to it): the first found.
        let rule = alive
            .iter()
            .map(|&i| self.rules[i])
            .find(|(path, _)| path.len() == depth + 1 && here(path))
            .map(|(_, rule)| rule);
        let done = match rule {
            Some(Rule::Drop) => {
                self.counts.add(&self.field, Rule::Drop.name());
                Ok(())
            }
            _ => {
                if !std::mem::take(first) {
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
                match rule {
                    Some(Rule::Keep) => {
                        out.extend_from_slice(raw.get().as_bytes());
                        Ok(())
                    }
                    Some(rule) => {
                        if super::apply_raw(raw.get(), rule, self.masker, out)? {
                            self.counts.add(&self.field, rule.name());
                        }
                        Ok(())
                    }
                    None => {
                        let deeper = |i: &usize| {
                            let path = self.rules[*i].0;
                            path.len() > depth + 1 && here(path)
                        };
                        // Most members have no rule below them: no list to build.
                        if alive.iter().any(deeper) {
                            let below: Vec<usize> = alive.iter().copied().filter(deeper).collect();
                            self.value(raw, depth + 1, &below, out)
                        } else {
                            self.value(raw, depth + 1, &[], out)
                        }
                    }
                }
            }
        };
        self.field.truncate(mark);
        done
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
            Some(b'{') if descend => self.parse(text, false, depth, below, out),
            Some(b'[') if descend => self.parse(text, true, depth, below, out),
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
        // Most strings hold nothing a detector looks for, escapes or not: asked of the text.
        if !detect::may_hold(inner.as_bytes()) {
            out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
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
