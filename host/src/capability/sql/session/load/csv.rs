//! JSONL records → CSV rows of the load's columns, as `COPY … (FORMAT csv)` reads them.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::RawValue;

use super::super::SqlError;

pub(in crate::capability::sql::session) fn record_lines(
    records: &[u8],
) -> impl Iterator<Item = &[u8]> {
    records
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
}

/// The fields of one record a load takes, by column, borrowed from the batch: parsed without
/// building a map per record.
pub(in crate::capability::sql::session) struct Fields<'c, 'a> {
    index: HashMap<&'c str, usize>,
    pub(in crate::capability::sql::session) values: Vec<Option<&'a RawValue>>,
}

impl<'c, 'a> Fields<'c, 'a> {
    pub(in crate::capability::sql::session) fn new(columns: &'c [String]) -> Self {
        Fields {
            index: columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i))
                .collect(),
            values: vec![None; columns.len()],
        }
    }

    /// Parse record number `i` (0-based) into `values`.
    pub(in crate::capability::sql::session) fn parse(
        &mut self,
        line: &'a [u8],
        i: usize,
    ) -> Result<(), SqlError> {
        self.values.iter_mut().for_each(|v| *v = None);
        let mut de = serde_json::Deserializer::from_slice(line);
        serde::Deserializer::deserialize_map(&mut de, RecordVisitor { fields: self })
            .and_then(|()| de.end())
            .map_err(|e| {
                SqlError::Invalid(format!(
                    "record {} of the load is not a JSON object: {e}",
                    i + 1
                ))
            })
    }
}

struct RecordVisitor<'f, 'c, 'a> {
    fields: &'f mut Fields<'c, 'a>,
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for RecordVisitor<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            if let Some(&i) = self.fields.index.get(key.as_ref()) {
                self.fields.values[i] = Some(value);
            }
        }
        Ok(())
    }
}

/// Append one field to a CSV row: `NULL` as an empty unquoted field, everything else quoted.
fn csv_field(out: &mut Vec<u8>, raw: Option<&RawValue>) -> Result<(), SqlError> {
    let Some(raw) = raw else { return Ok(()) };
    let text = raw.get();
    let quoted = |out: &mut Vec<u8>, s: &str| {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    };
    match text.as_bytes().first() {
        Some(b'n') => {}
        Some(b'"') => {
            let s: Cow<'_, str> = serde_json::from_str(text)
                .map_err(|e| SqlError::Invalid(format!("bad string in a record: {e}")))?;
            quoted(out, &s);
        }
        Some(b'{' | b'[') => quoted(out, text),
        _ => out.extend_from_slice(text.as_bytes()),
    }
    Ok(())
}

pub(in crate::capability::sql::session) fn copy_statement(
    table: &str,
    quoted: &[String],
) -> String {
    format!(
        "COPY {table} ({}) FROM STDIN WITH (FORMAT csv)",
        quoted.join(", ")
    )
}

/// The records as CSV rows of `columns`, and how many there were.
pub(in crate::capability::sql::session) fn to_csv(
    columns: &[String],
    records: &[u8],
) -> Result<(Vec<u8>, u64), SqlError> {
    let mut csv = Vec::with_capacity(records.len());
    let mut fields = Fields::new(columns);
    let mut n = 0;
    for (i, line) in record_lines(records).enumerate() {
        fields.parse(line, i)?;
        for (j, v) in fields.values.iter().enumerate() {
            if j > 0 {
                csv.push(b',');
            }
            csv_field(&mut csv, *v)?;
        }
        csv.push(b'\n');
        n += 1;
    }
    Ok((csv, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(columns: &[&str], records: &str) -> String {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let (bytes, n) = to_csv(&columns, records.as_bytes()).unwrap();
        assert_eq!(
            n as usize,
            records.lines().filter(|l| !l.trim().is_empty()).count()
        );
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn strings_are_quoted_with_quotes_doubled_and_escapes_decoded() {
        let got = csv(
            &["s"],
            concat!(
                r#"{"s":"plain"}"#,
                "\n",
                r#"{"s":"say \"hi\", then, go"}"#,
                "\n",
                r#"{"s":"two\nlines"}"#,
                "\n",
                r#"{"s":"caf\u00e9 \ud83d\ude00"}"#,
                "\n",
                r#"{"s":""}"#,
                "\n",
            ),
        );
        assert_eq!(
            got,
            "\"plain\"\n\"say \"\"hi\"\", then, go\"\n\"two\nlines\"\n\"café 😀\"\n\"\"\n"
        );
    }

    #[test]
    fn null_and_missing_are_empty_unquoted_and_an_empty_string_is_not_null() {
        let got = csv(&["a", "b", "c"], "{\"a\":null,\"c\":\"\"}\n{\"b\":1}\n");
        assert_eq!(got, ",,\"\"\n,1,\n");
    }

    #[test]
    fn numbers_and_booleans_are_raw_and_nested_values_are_quoted_json() {
        let got = csv(
            &["n", "f", "t", "o", "l"],
            r#"{"n":-12,"f":1.5e3,"t":true,"o":{"k":"v \"q\""},"l":[1,"a"]}"#,
        );
        assert_eq!(
            got,
            "-12,1.5e3,true,\"{\"\"k\"\":\"\"v \\\"\"q\\\"\"\"\"}\",\"[1,\"\"a\"\"]\"\n"
        );
    }

    #[test]
    fn fields_not_in_the_columns_are_ignored_and_columns_keep_their_order() {
        assert_eq!(csv(&["b", "a"], r#"{"a":1,"x":"skip","b":2}"#), "2,1\n");
    }

    #[test]
    fn a_record_that_is_not_an_object_is_refused() {
        let columns = vec!["a".to_string()];
        assert!(to_csv(&columns, b"[1,2]\n").is_err());
        assert!(to_csv(&columns, b"{\"a\":\n").is_err());
    }

    #[test]
    fn the_copy_statement_names_the_columns_in_order() {
        assert_eq!(
            copy_statement("t", &["\"a\"".into(), "\"b\"".into()]),
            "COPY t (\"a\", \"b\") FROM STDIN WITH (FORMAT csv)"
        );
    }
}
