//! Secret values scrubbed from text before it is stored or printed: connector log lines, run
//! errors. Each value is matched raw and in the forms it leaks in (URL-encoded, base64 at any
//! alignment, hex), and the longest match wins, so a short secret never breaks the masking of a
//! longer one that contains it.

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

/// Values shorter than this are not scrubbed (a one-character "secret" would shred every line);
/// such a secret is refused where it is loaded instead.
pub const MIN_LEN: usize = 4;

/// Replaces secret values in text with `[secret:NAME]`. `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Scrubber {
    names: Vec<String>,
    /// Per pattern, the secret's name.
    labels: Vec<usize>,
    matcher: Option<AhoCorasick>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("secrets", &self.names)
            .finish_non_exhaustive()
    }
}

/// The base64 text of `value` as it appears inside any longer base64 string: encoded at each
/// of the three byte alignments, with the characters that depend on neighbouring bytes cut off.
fn base64_forms(value: &[u8], engine: &impl Engine) -> Vec<String> {
    let mut out = Vec::new();
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(value);
        let enc = engine.encode(&padded);
        let enc = enc.trim_end_matches('=');
        // Leading characters mix in the zero prefix; trailing ones the unknown next byte.
        let skip = (offset * 8).div_ceil(6);
        let total_bits = padded.len() * 8;
        let full_chars = total_bits / 6;
        if full_chars > skip + 2 {
            out.push(enc[skip..full_chars].to_string());
        }
    }
    out
}

impl Scrubber {
    /// A scrubber for `secrets` (name, value). Values shorter than [`MIN_LEN`] are skipped.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Scrubber {
        let mut names = Vec::new();
        let mut patterns: Vec<Zeroizing<String>> = Vec::new();
        let mut labels = Vec::new();
        for (name, value) in secrets {
            if value.len() < MIN_LEN {
                continue;
            }
            let id = names.len();
            names.push(name.to_string());
            let bytes = value.as_bytes();
            let mut forms = vec![
                value.to_string(),
                utf8_percent_encode(value, NON_ALPHANUMERIC).to_string(),
                url_form_encode(value),
                hex::encode(bytes),
                hex::encode_upper(bytes),
            ];
            forms.extend(escaped_forms(value));
            forms.extend(base64_forms(bytes, &STANDARD));
            forms.extend(base64_forms(bytes, &URL_SAFE));
            for f in forms {
                if f.len() >= MIN_LEN && !patterns.iter().any(|p| **p == f) {
                    patterns.push(Zeroizing::new(f));
                    labels.push(id);
                }
            }
        }
        let matcher = (!patterns.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(patterns.iter().map(|p| p.as_bytes()))
                .expect("literal patterns always build")
        });
        Scrubber {
            names,
            labels,
            matcher,
        }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// The name of the first secret any form of which appears in `bytes`.
    pub fn find(&self, bytes: &[u8]) -> Option<&str> {
        let found = self.matcher.as_ref()?.find(bytes)?;
        Some(&self.names[self.labels[found.pattern().as_usize()]])
    }

    /// The length of the longest form matched: text that may hold the start of a match must
    /// be kept this long minus one byte before it can be judged clean.
    pub fn longest(&self) -> usize {
        self.matcher.as_ref().map_or(0, |m| m.max_pattern_len())
    }

    /// `text` with every secret form replaced by `[secret:NAME]`.
    pub fn scrub(&self, text: &str) -> String {
        let Some(m) = &self.matcher else {
            return text.to_string();
        };
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for found in m.find_iter(text) {
            // Matches on bytes may split a UTF-8 character only if the secret itself does,
            // which it cannot (it is a str): boundaries are character boundaries.
            out.push_str(&text[last..found.start()]);
            out.push_str("[secret:");
            out.push_str(&self.names[self.labels[found.pattern().as_usize()]]);
            out.push(']');
            last = found.end();
        }
        out.push_str(&text[last..]);
        out
    }
}

/// The value as servers commonly escape it when they echo it: percent-encoded with other safe
/// sets and lowercase hex (RFC 3986 unreserved, Python's `quote` keeping `/`, .NET's lowercase),
/// JSON-escaped (`\/`, `\uXXXX` for non-ASCII and `<>&` as Python's `ensure_ascii` and Go do),
/// and HTML-escaped (named entities, decimal and hex character references).
fn escaped_forms(value: &str) -> Vec<String> {
    use percent_encoding::AsciiSet;
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    const PATH_SAFE: &AsciiSet = &UNRESERVED.remove(b'/');
    let mut out = Vec::new();
    for set in [NON_ALPHANUMERIC, UNRESERVED, PATH_SAFE] {
        let upper = utf8_percent_encode(value, set).to_string();
        out.push(lower_percent_hex(&upper));
        out.push(upper);
    }
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    out.push(json.replace('/', "\\/"));
    out.push(json_ascii(value, &[]));
    out.push(json_ascii(value, &['<', '>', '&']));
    out.push(json_ascii(value, &['<', '>', '&']).replace('/', "\\/"));
    out.push(json);
    let mut named = String::new();
    let (mut dec, mut hex) = (String::new(), String::new());
    for c in value.chars() {
        match c {
            '&' => named.push_str("&amp;"),
            '<' => named.push_str("&lt;"),
            '>' => named.push_str("&gt;"),
            '"' => named.push_str("&quot;"),
            '\'' => named.push_str("&#39;"),
            c => named.push(c),
        }
        if c.is_ascii_alphanumeric() {
            dec.push(c);
            hex.push(c);
        } else {
            dec.push_str(&format!("&#{};", c as u32));
            hex.push_str(&format!("&#x{:x};", c as u32));
        }
    }
    out.extend([named.replace("&#39;", "&#x27;"), named, dec, hex]);
    out
}

/// `%2F` → `%2f`.
fn lower_percent_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(&esc.to_ascii_lowercase());
        rest = &rest[i + esc.len()..];
    }
    out.push_str(rest);
    out
}

/// JSON string content with every non-ASCII character (and each of `extra`) as `\uXXXX`
/// (lowercase hex, surrogate pairs beyond the BMP).
fn json_ascii(value: &str, extra: &[char]) -> String {
    let mut out = String::new();
    for c in value.chars() {
        let plain = serde_json::to_string(&c.to_string()).unwrap_or_default();
        let plain = plain.trim_matches('"');
        if c.is_ascii() && !extra.contains(&c) {
            out.push_str(plain);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// `application/x-www-form-urlencoded` (spaces as `+`).
fn url_form_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b' ' => out.push('+'),
            b'*' | b'-' | b'.' | b'_' => out.push(b as char),
            b if b.is_ascii_alphanumeric() => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The values of the fields `schema` marks `"secret": true` in `config` (nested objects and
/// arrays followed), for scrubbing.
pub fn secret_values(schema: &serde_json::Value, config: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(schema, config, &mut out);
    out
}

fn collect(schema: &serde_json::Value, value: &serde_json::Value, out: &mut Vec<String>) {
    if schema.get("secret").and_then(|v| v.as_bool()) == Some(true) {
        match value {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Null => {}
            other => out.push(other.to_string()),
        }
        return;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for alt in schema
            .get(key)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            collect(alt, value, out);
        }
    }
    match value {
        serde_json::Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
                for (k, sub) in props {
                    if let Some(v) = map.get(k) {
                        collect(sub, v, out);
                    }
                }
            }
        }
        serde_json::Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for v in items {
                    collect(sub, v, out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_scrubbed_and_the_longest_secret_wins() {
        let s = Scrubber::new([("short", "xk12"), ("long", "xk12-9f8e7d6c+/ä")]);
        let long = "xk12-9f8e7d6c+/ä";
        for leaked in [
            long.to_string(),
            utf8_percent_encode(long, NON_ALPHANUMERIC).to_string(),
            url_form_encode(long),
            hex::encode(long),
            hex::encode_upper(long),
            STANDARD.encode(long),
            URL_SAFE.encode(long),
            // Inside a longer base64 string, at every alignment (e.g. Basic auth).
            STANDARD.encode(format!("user:{long}")),
            STANDARD.encode(format!("us:{long}!")),
            STANDARD.encode(format!("u:{long}")),
        ] {
            let out = s.scrub(&format!("token={leaked} done"));
            assert!(out.contains("[secret:long]"), "{leaked} -> {out}");
            assert!(!out.contains("xk12"), "{out}");
        }
        assert_eq!(s.scrub("a xk12 b"), "a [secret:short] b");

        // As servers echo a value (an outside review found each missed): an AWS-style key.
        let key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY<&>ä";
        let s = Scrubber::new([("aws", key)]);
        for echoed in [
            r"wJalrXUtnFEMI\/K7MDENG+bPxRfiCYEXAMPLEKEY<&>ä", // PHP json_encode
            "wJalrXUtnFEMI/K7MDENG%2BbPxRfiCYEXAMPLEKEY%3C%26%3E%C3%A4", // Python quote()
            "wJalrXUtnFEMI%2fK7MDENG%2bbPxRfiCYEXAMPLEKEY%3c%26%3e%c3%a4", // .NET, lowercase
            r"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY<&>\u00e4", // Python json.dumps
            r"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\u003c\u0026\u003e\u00e4", // Go
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY&lt;&amp;&gt;ä", // HTML
            "wJalrXUtnFEMI&#47;K7MDENG&#43;bPxRfiCYEXAMPLEKEY&#60;&#38;&#62;&#228;",
            "wJalrXUtnFEMI&#x2f;K7MDENG&#x2b;bPxRfiCYEXAMPLEKEY&#x3c;&#x26;&#x3e;&#xe4;",
        ] {
            assert!(s.find(echoed.as_bytes()).is_some(), "missed: {echoed}");
        }
        assert_eq!(s.scrub("nothing here"), "nothing here");
        assert!(!format!("{s:?}").contains("xk12"));
    }

    #[test]
    fn secret_fields_are_found_by_schema() {
        let schema = serde_json::json!({"properties": {
            "token": {"type": "string", "secret": true},
            "name": {"type": "string"},
            "auth": {"oneOf": [{"properties": {"password": {"secret": true}}}]},
            "keys": {"items": {"secret": true}}
        }});
        let config = serde_json::json!({"token": "t0k3n", "name": "n", "auth": {"password": "pw123"}, "keys": ["k1", "k2"]});
        let mut v = secret_values(&schema, &config);
        v.sort();
        assert_eq!(v, ["k1", "k2", "pw123", "t0k3n"]);
    }
}
