//! What the host accepts from a guest: the one place its limits on guest data are defined.
//!
//! Whatever a connector hands the host is bounded here, and exceeding a limit is a typed error
//! that names the limit and the setting that raises it; the host never dies of guest data.
//! Checks are iterative scans, so the data they refuse cannot hurt them either.

/// How deeply a record (or any JSON a guest sends) may nest objects and arrays, by default.
/// serde_json skips values without a depth limit, and the PII walk follows the nesting: a
/// record 100,000 levels deep overflowed the host's stack. 128 is serde_json's own limit for
/// parsing into a tree.
pub const JSON_DEPTH: usize = 128;

/// The most a connection may raise [`JSON_DEPTH`] to (`limits.max_json_depth`): deeper than
/// this, walking a record would need more stack than a runtime worker has.
pub const MAX_JSON_DEPTH: usize = 1024;

/// The longest an event's action or detail is kept (guest-controlled: a path, a URL, SQL text).
/// Longer text is cut at a character boundary, after it is scrubbed of secrets.
pub const EVENT_TEXT_BYTES: usize = 2048;

/// What an event keeps before it is scrubbed: [`EVENT_TEXT_BYTES`] and a margin, so that a
/// secret (in any encoded form, up to this long) starting before the final cut is whole when
/// the scrubber sees it, and no prefix of it survives the cut.
pub const EVENT_RAW_BYTES: usize = EVENT_TEXT_BYTES + (64 << 10);

/// Entries a connector's sandbox may hold in its WASI resource table at once (streams, fields,
/// requests, responses, files…). wasmtime's default is a million.
pub const RESOURCE_TABLE_ENTRIES: usize = 10_000;

/// Outbound HTTP requests one connector may have in flight at once.
pub const HTTP_IN_FLIGHT: usize = 16;

/// SQL sessions one connector may hold open at once.
pub const SQL_SESSIONS: usize = 8;

/// The longest time any setting may name, in seconds (a year): timeouts, intervals, budgets
/// and retention past it are mistakes, and `Duration` arithmetic on them would overflow.
pub const SETTING_SECONDS: f64 = 366.0 * 86_400.0;

/// A setting's number of seconds as a duration: positive, finite, at most
/// [`SETTING_SECONDS`]; `None` for anything else (the caller names the setting).
pub fn seconds(v: f64) -> Option<std::time::Duration> {
    (v.is_finite() && v > 0.0 && v <= SETTING_SECONDS)
        .then(|| std::time::Duration::from_secs_f64(v))
}

/// The most linear memory a connector may be given, in MiB: what a wasm32 memory can address.
pub const MEMORY_MIB: u64 = 4096;

/// The largest batch a connection may allow, in MiB (the host holds a batch in memory).
pub const BATCH_MIB: u64 = 1024;

/// `text` cut to at most `max` bytes at a character boundary, marked when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[cut at {max} bytes]", &text[..end])
}

/// The largest `spec()` a connector may return (its config schema and documentation).
pub const SPEC_BYTES: usize = 1 << 20;

/// The largest `discover()` catalog, all stream schemas together.
pub const CATALOG_BYTES: usize = 64 << 20;

/// The largest state one checkpoint may carry (it is stored, sealed, and handed back on resume).
pub const STATE_BYTES: usize = 16 << 20;

/// The most streams a catalog may list.
pub const CATALOG_STREAMS: usize = 10_000;

/// The longest string value a record may hold (a batch is bounded by `limits.max_batch_mib`
/// too).
pub const STRING_BYTES: usize = 32 << 20;

/// The longest object key (it becomes a column name downstream).
pub const KEY_BYTES: usize = 4096;

/// The longest number, in characters: beyond this it is not a quantity but a payload.
pub const NUMBER_CHARS: usize = 1024;

/// The most keys one object may have (each may become a column downstream).
pub const KEYS_PER_OBJECT: usize = 10_000;

/// Which limit a JSON text passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Objects and arrays nested too deep.
    Depth,
    /// A string value too long.
    StringBytes,
    /// An object key too long.
    KeyBytes,
    /// A number too long.
    NumberChars,
    /// An object with too many keys.
    KeysPerObject,
}

impl Limit {
    fn describe(self) -> &'static str {
        match self {
            Limit::Depth => "nesting depth",
            Limit::StringBytes => "string length in bytes",
            Limit::KeyBytes => "object key length in bytes",
            Limit::NumberChars => "number length in characters",
            Limit::KeysPerObject => "keys in one object",
        }
    }

    /// What raises it.
    fn setting(self) -> &'static str {
        match self {
            Limit::Depth => "`limits.max_json_depth`",
            _ => "a host limit, not configurable",
        }
    }
}

/// A JSON text past one of its limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("has {} {found} at byte {at}, over the limit of {max} ({})", .limit.describe(), .limit.setting())]
pub struct Exceeded {
    /// Which limit.
    pub limit: Limit,
    /// What was found when it was passed.
    pub found: usize,
    /// The limit.
    pub max: usize,
    /// Where, as a byte offset in the scanned text.
    pub at: usize,
}

/// The limits a JSON text is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Nesting of objects and arrays.
    pub depth: usize,
    /// Bytes of one string value (as written, escapes included).
    pub string_bytes: usize,
    /// Bytes of one object key (as written).
    pub key_bytes: usize,
    /// Characters of one number.
    pub number_chars: usize,
    /// Keys of one object.
    pub keys_per_object: usize,
}

impl Shape {
    /// The host's limits, with nesting `depth`.
    pub fn with_depth(depth: usize) -> Shape {
        Shape {
            depth,
            string_bytes: STRING_BYTES,
            key_bytes: KEY_BYTES,
            number_chars: NUMBER_CHARS,
            keys_per_object: KEYS_PER_OBJECT,
        }
    }
}

impl Default for Shape {
    fn default() -> Self {
        Shape::with_depth(JSON_DEPTH)
    }
}

/// An open object or array during the scan.
struct Open {
    object: bool,
    keys: usize,
    expecting_key: bool,
}

/// Check `json` (one JSON text, or newline-delimited texts) against `shape`: one pass over the
/// bytes, no tree built, memory bounded by `shape.depth`. Brackets inside strings do not count.
/// Malformed JSON is not this check's business (the parser that follows refuses it).
pub fn check_shape(json: &[u8], shape: &Shape) -> Result<(), Exceeded> {
    let over = |limit, found, max, at| {
        Err(Exceeded {
            limit,
            found,
            max,
            at,
        })
    };
    let mut open: Vec<Open> = Vec::new();
    let mut string: Option<(usize, bool)> = None; // (start, is a key)
    let mut escaped = false;
    let mut number = 0usize;
    for (at, &b) in json.iter().enumerate() {
        if let Some((start, key)) = string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    string = None;
                    if key && let Some(top) = open.last_mut() {
                        top.keys += 1;
                        top.expecting_key = false;
                        if top.keys > shape.keys_per_object {
                            return over(Limit::KeysPerObject, top.keys, shape.keys_per_object, at);
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let (limit, max) = if key {
                (Limit::KeyBytes, shape.key_bytes)
            } else {
                (Limit::StringBytes, shape.string_bytes)
            };
            if at - start > max {
                return over(limit, at - start, max, start);
            }
            continue;
        }
        if matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
            number += 1;
            if number > shape.number_chars {
                return over(
                    Limit::NumberChars,
                    number,
                    shape.number_chars,
                    at + 1 - number,
                );
            }
            continue;
        }
        number = 0;
        match b {
            b'"' => {
                let key = open.last().is_some_and(|o| o.object && o.expecting_key);
                string = Some((at, key));
            }
            b'{' | b'[' => {
                if open.len() >= shape.depth {
                    return over(Limit::Depth, open.len() + 1, shape.depth, at);
                }
                open.push(Open {
                    object: b == b'{',
                    keys: 0,
                    expecting_key: b == b'{',
                });
            }
            b'}' | b']' => {
                open.pop();
            }
            b',' => {
                if let Some(top) = open.last_mut()
                    && top.object
                {
                    top.expecting_key = true;
                }
            }
            // A new record starts at the top again, whatever the last one left open.
            b'\n' => open.clear(),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        let d = Shape::with_depth;
        assert_eq!(check_shape(br#"{"a":[1,{"b":[]}]}"#, &d(4)), Ok(()));
        let e = check_shape(br#"{"a":[1,{"b":[]}]}"#, &d(3)).unwrap_err();
        assert_eq!((e.limit, e.found, e.max), (Limit::Depth, 4, 3));
        assert!(e.to_string().contains("limits.max_json_depth"), "{e}");
        // Brackets in strings, escaped quotes included, are text.
        assert_eq!(
            check_shape(br#"{"a":"[[[[\"[[[[","b":"\\"}"#, &d(1)),
            Ok(())
        );
        // Each line of a batch starts again at the top.
        assert_eq!(check_shape(b"{\"a\":{}}\n{\"b\":{}}\n", &d(2)), Ok(()));
        // The outside attack: 100,000 levels, refused at once.
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            check_shape(deep.as_bytes(), &Shape::default())
                .unwrap_err()
                .found,
            JSON_DEPTH + 1
        );
    }

    #[test]
    fn strings_keys_numbers_and_key_counts_are_bounded() {
        let shape = Shape {
            depth: 8,
            string_bytes: 8,
            key_bytes: 4,
            number_chars: 5,
            keys_per_object: 3,
        };
        let limit = |json: &str| check_shape(json.as_bytes(), &shape).err().map(|e| e.limit);
        assert_eq!(limit(r#"{"abcd":"12345678","n":-15e3,"k":[1,2]}"#), None);
        assert_eq!(limit(r#"{"a":"123456789"}"#), Some(Limit::StringBytes));
        assert_eq!(limit(r#"{"abcde":1}"#), Some(Limit::KeyBytes));
        // A long string value is not a key, even in an object; a key in a nested object is.
        assert_eq!(limit(r#"{"a":{"b":"12345678"},"c":["12345678"]}"#), None);
        assert_eq!(limit(r#"{"a":{"b":1,"bbbbb":2}}"#), Some(Limit::KeyBytes));
        assert_eq!(limit(r#"{"n":123456}"#), Some(Limit::NumberChars));
        assert_eq!(
            limit(r#"{"a":1,"b":2,"c":3,"d":4}"#),
            Some(Limit::KeysPerObject)
        );
        // Keys count per object, and escapes inside strings do not end them.
        assert_eq!(
            limit(r#"{"a":{"x":1,"y":2},"b":{"x":1,"y":2},"c":3}"#),
            None
        );
        assert_eq!(limit(r#"{"a":"\"\"\"\""}"#), None);
        let e = check_shape(br#"{"n":123456}"#, &shape).unwrap_err();
        assert!(e.to_string().contains("not configurable"), "{e}");
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        assert_eq!(cut("short", 10), "short");
        let c = cut("ééé", 3);
        assert!(
            c.starts_with('é') && !c.starts_with("éé") && c.contains("cut at 3"),
            "{c}"
        );
    }

    #[test]
    fn seconds_refuse_what_would_overflow_a_duration() {
        assert_eq!(seconds(1.5), Some(std::time::Duration::from_millis(1500)));
        assert_eq!(
            seconds(SETTING_SECONDS),
            Some(std::time::Duration::from_secs(366 * 86_400))
        );
        for bad in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            1e300,
            SETTING_SECONDS * 1.01,
        ] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
    }
}
