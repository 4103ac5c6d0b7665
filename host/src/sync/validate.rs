//! The wall's first check: every batch is UTF-8, one JSON object per line, for a stream in the
//! configured catalog, and not larger than the limit. Messages give positions, never record
//! contents (which may hold personal data).

use serde::de::IgnoredAny;

use crate::protocol::{Batch, ConfiguredCatalog, Failure, StreamState};

/// Check `batch` and return its record count. Adds a final newline if the source left it off.
pub fn batch(
    batch: &mut Batch,
    catalog: &ConfiguredCatalog,
    max_bytes: usize,
) -> Result<u64, Failure> {
    envelope(batch, catalog, max_bytes)?;
    records(batch)
}

/// Check what holds for a batch as a whole: a configured stream, the size limit, UTF-8. Adds a
/// final newline if the source left it off. The records are checked by [`records`], or by the
/// PII masker, whose walk over each record is the same check.
pub fn envelope(
    batch: &mut Batch,
    catalog: &ConfiguredCatalog,
    max_bytes: usize,
) -> Result<(), Failure> {
    let bad = |message: String| Err(Failure::Protocol { message });
    if catalog.get(&batch.stream).is_none() {
        return bad(format!(
            "it sent a batch for stream `{}`, which is not in the configured catalog",
            printable(&batch.stream)
        ));
    }
    if batch.records.len() > max_bytes {
        return bad(format!(
            "it sent a batch of {} MiB for stream `{}`, over the limit of {} MiB; emit smaller \
             batches, or raise `limits.max_batch_mib` in the connection file",
            batch.records.len() >> 20,
            batch.stream,
            max_bytes >> 20
        ));
    }
    if let Err(e) = std::str::from_utf8(&batch.records) {
        return bad(format!(
            "its batch for stream `{}` is not valid UTF-8 (at byte {})",
            batch.stream,
            e.valid_up_to()
        ));
    }
    if !batch.records.is_empty() && batch.records.last() != Some(&b'\n') {
        batch.records.push(b'\n');
    }
    Ok(())
}

/// Check every record of `batch` against the host's shape limits, nesting at most `limit` deep
/// (before anything walks them: the PII masker's walk follows the nesting, serde_json skips
/// values with no depth limit, and keys become columns downstream).
pub fn depth(batch: &Batch, limit: usize) -> Result<(), Failure> {
    let shape = crate::boundary::limits::Shape::with_depth(limit);
    crate::boundary::limits::check_shape(&batch.records, &shape).map_err(|e| {
        let line = batch.records[..e.at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Failure::Protocol {
            message: format!(
                "line {line} of its batch for stream `{}` {e}; a connection may raise it up to {}",
                batch.stream,
                crate::boundary::limits::MAX_JSON_DEPTH
            ),
        }
    })
}

/// Check that every line of a batch that passed [`envelope`] is one JSON object; returns the
/// record count.
pub fn records(batch: &Batch) -> Result<u64, Failure> {
    let Some(body) = batch.records.strip_suffix(b"\n") else {
        return Ok(0);
    };
    let mut records = 0;
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let is_object = line.trim_ascii_start().first() == Some(&b'{');
        match (is_object, serde_json::from_slice::<IgnoredAny>(line)) {
            (true, Ok(_)) => records += 1,
            (_, Err(e)) => return Err(line_failure(&batch.stream, i + 1, Some(&e.to_string()))),
            (false, Ok(_)) => return Err(line_failure(&batch.stream, i + 1, None)),
        }
    }
    Ok(records)
}

/// The refusal of line `line` (from 1) of a batch: not JSON (with the parser's position-only
/// message) or, for `None`, JSON but not an object.
pub fn line_failure(stream: &str, line: usize, not_json: Option<&str>) -> Failure {
    Failure::Protocol {
        message: match not_json {
            Some(e) => {
                format!("line {line} of its batch for stream `{stream}` is not valid JSON ({e})")
            }
            None => format!(
                "line {line} of its batch for stream `{stream}` is JSON but not an object; \
                 every record must be a JSON object"
            ),
        },
    }
}

/// A record the wall left out.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// Its stream.
    pub stream: String,
    /// Its line in the batch, from 1.
    pub line: usize,
    /// Why (never the contents).
    pub reason: String,
    /// The record as the source sent it.
    pub record: Vec<u8>,
}

/// Remove lines that are not JSON objects from `batch`, keeping the first of them in `kept`
/// (up to `keep` in all). Returns how many were removed.
pub fn take_invalid(batch: &mut Batch, kept: &mut Vec<Invalid>, keep: usize) -> u64 {
    let is_record = |line: &[u8]| {
        line.trim_ascii_start().first() == Some(&b'{')
            && serde_json::from_slice::<IgnoredAny>(line).is_ok()
    };
    let lines: Vec<&[u8]> = batch
        .records
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .collect();
    if lines.iter().all(|l| is_record(l)) {
        return 0;
    }
    let mut out = Vec::with_capacity(batch.records.len());
    let mut removed = 0;
    for (i, line) in lines.iter().enumerate() {
        if is_record(line) {
            out.extend_from_slice(line);
            out.push(b'\n');
            continue;
        }
        removed += 1;
        if kept.len() < keep {
            kept.push(Invalid {
                stream: batch.stream.clone(),
                line: i + 1,
                reason: if std::str::from_utf8(line).is_err() {
                    "not valid UTF-8".into()
                } else if serde_json::from_slice::<IgnoredAny>(line).is_err() {
                    "not valid JSON".into()
                } else {
                    "JSON but not an object".into()
                },
                record: line.to_vec(),
            });
        }
    }
    batch.records = out;
    removed
}

/// Check a checkpoint: a known stream and a JSON state.
pub fn state(state: &StreamState, catalog: &ConfiguredCatalog) -> Result<(), Failure> {
    if catalog.get(&state.stream).is_none() {
        return Err(Failure::Protocol {
            message: format!(
                "it checkpointed stream `{}`, which is not in the configured catalog",
                printable(&state.stream)
            ),
        });
    }
    serde_json::from_str::<IgnoredAny>(&state.state).map_err(|e| Failure::Protocol {
        message: format!("its state for stream `{}` is not JSON: {e}", state.stream),
    })?;
    Ok(())
}

/// A stream name as it can be shown: control characters escaped, length bounded.
fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(100).flat_map(char::escape_debug).collect();
    if s.chars().count() > 100 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::*;

    fn catalog() -> ConfiguredCatalog {
        crate::sync::tests::one_stream("users", SyncMode::FullRefresh, DestinationMode::Overwrite)
    }

    fn check(stream: &str, records: &[u8]) -> Result<(u64, Vec<u8>), String> {
        let mut b = Batch {
            stream: stream.into(),
            records: records.to_vec(),
        };
        batch(&mut b, &catalog(), 1 << 20)
            .map(|n| (n, b.records))
            .map_err(|f| f.to_string())
    }

    #[test]
    fn good_batches_are_counted_and_newline_terminated() {
        assert_eq!(check("users", b"{\"a\":1}\n{}\n").unwrap().0, 2);
        let (n, bytes) = check("users", b"{\"a\":1}\n { \"b\" : [1] }").unwrap();
        assert_eq!((n, bytes.last()), (2, Some(&b'\n')));
        assert_eq!(check("users", b"").unwrap().0, 0);
    }

    #[test]
    fn bad_batches_say_what_and_where_without_the_data() {
        let e = check("orders", b"{}\n").unwrap_err();
        assert!(
            e.contains("`orders`") && e.contains("not in the configured catalog"),
            "{e}"
        );
        let e = check("users", b"{\"a\":1}\n{\"ssn\":\"123-45\xff\"}\n").unwrap_err();
        assert!(e.contains("not valid UTF-8 (at byte"), "{e}");
        let e = check("users", b"{\"a\":1}\n[1,2]\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("not an object"), "{e}");
        let e = check("users", b"{\"secret\":\"hunter2\"\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("not valid JSON"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = check("users", b"{}\n\n{}\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn oversized_batches_name_the_limit() {
        let mut b = Batch {
            stream: "users".into(),
            records: vec![b' '; 3 << 20],
        };
        let e = batch(&mut b, &catalog(), 1 << 20).unwrap_err().to_string();
        assert!(e.contains("3 MiB") && e.contains("max_batch_mib"), "{e}");
    }

    #[test]
    fn states_must_be_json_for_a_known_stream() {
        let st = |s: &str, v: &str| StreamState {
            stream: s.into(),
            state: v.into(),
        };
        assert!(state(&st("users", "{\"c\":1}"), &catalog()).is_ok());
        assert!(state(&st("nope", "{}"), &catalog()).is_err());
        assert!(state(&st("users", "{"), &catalog()).is_err());
    }
}
