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

/// A JSON text nested deeper than allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nests {depth} levels deep at byte {at} (the limit is {limit}: `limits.max_json_depth`)")]
pub struct TooDeep {
    /// The depth reached when the limit was passed.
    pub depth: usize,
    /// Where, as a byte offset in the scanned text.
    pub at: usize,
    /// The limit.
    pub limit: usize,
}

/// Check that no object or array in `json` (one JSON text, or newline-delimited texts) nests
/// deeper than `limit`. One pass over the bytes; brackets inside strings do not count.
pub fn json_depth(json: &[u8], limit: usize) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (at, &b) in json.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Err(TooDeep { depth, at, limit });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            // A new record starts at the top again, whatever the last one left open.
            b'\n' => depth = 0,
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
        assert_eq!(json_depth(br#"{"a":[1,{"b":[]}]}"#, 4), Ok(()));
        let e = json_depth(br#"{"a":[1,{"b":[]}]}"#, 3).unwrap_err();
        assert_eq!((e.depth, e.limit), (4, 3));
        assert!(e.to_string().contains("limits.max_json_depth"));
        // Brackets in strings, escaped quotes included, are text.
        assert_eq!(json_depth(br#"{"a":"[[[[\"[[[[","b":"\\"}"#, 1), Ok(()));
        // Each line of a batch starts again at the top.
        assert_eq!(json_depth(b"{\"a\":{}}\n{\"b\":{}}\n", 2), Ok(()));
        // The outside attack: 100,000 levels, refused at once.
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            json_depth(deep.as_bytes(), JSON_DEPTH).unwrap_err().depth,
            JSON_DEPTH + 1
        );
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
}
