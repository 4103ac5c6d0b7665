//! Schema inference: the JSON type of every field, from the records themselves.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};

use sluice_sdk::{Error, Result, Value, json};

use crate::{Format, StreamFile};

/// How many records inference looks at per file.
const SAMPLE: usize = 10_000;

/// The JSON type a CSV column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Integer,
    Number,
    Boolean,
    String,
}

/// The JSON schema of a stream file's records.
pub fn schema_of(file: &StreamFile) -> Result<Value> {
    let fields = match file.format {
        Format::Jsonl => jsonl_fields(file)?,
        Format::Csv => csv_fields(file)?,
    };
    let properties: serde_json::Map<String, Value> = fields
        .into_iter()
        .map(|(name, types)| {
            let types: Vec<&str> = types.into_iter().collect();
            let ty = if types.len() == 1 {
                json!(types[0])
            } else {
                json!(types)
            };
            (name, json!({ "type": ty }))
        })
        .collect();
    Ok(json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": properties
    }))
}

type Fields = Vec<(String, BTreeSet<&'static str>)>;

fn note(fields: &mut Fields, name: &str, ty: &'static str) {
    match fields.iter_mut().find(|(n, _)| n == name) {
        Some((_, types)) => {
            types.insert(ty);
        }
        None => fields.push((name.to_string(), BTreeSet::from([ty]))),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn jsonl_fields(file: &StreamFile) -> Result<Fields> {
    let f = File::open(&file.path)
        .map_err(|e| Error::fatal(format!("cannot open {}: {e}", file.path.display())))?;
    let mut fields = Fields::new();
    let mut seen = 0;
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Map<String, Value> = serde_json::from_str(&line).map_err(|e| {
            Error::fatal(format!(
                "{} line {}: not a JSON object: {e}",
                file.path.display(),
                i + 1
            ))
        })?;
        for (k, v) in &record {
            note(&mut fields, k, json_type(v));
        }
        seen += 1;
        if seen == SAMPLE {
            break;
        }
    }
    // An integer field that also held decimals is a number field.
    for (_, types) in &mut fields {
        if types.contains("number") {
            types.remove("integer");
        }
    }
    Ok(fields)
}

/// The narrowest type a CSV cell fits; `None` for an empty cell.
fn cell_type(cell: &[u8]) -> Option<Column> {
    let s = std::str::from_utf8(cell).ok()?;
    if s.is_empty() {
        None
    } else if s.parse::<i64>().is_ok() {
        Some(Column::Integer)
    } else if s.parse::<f64>().is_ok_and(f64::is_finite) {
        Some(Column::Number)
    } else if s == "true" || s == "false" {
        Some(Column::Boolean)
    } else {
        Some(Column::String)
    }
}

fn csv_fields(file: &StreamFile) -> Result<Fields> {
    let f = File::open(&file.path)
        .map_err(|e| Error::fatal(format!("cannot open {}: {e}", file.path.display())))?;
    let mut rows = csv::Reader::from_reader(f);
    let bad = |e: csv::Error| Error::fatal(format!("{}: {e}", file.path.display()));
    let header = rows.byte_headers().map_err(bad)?.clone();
    let mut kinds: Vec<Option<Column>> = vec![None; header.len()];
    let mut nullable = vec![false; header.len()];
    let mut record = csv::ByteRecord::new();
    let mut seen = 0;
    while seen < SAMPLE && rows.read_byte_record(&mut record).map_err(bad)? {
        for (i, cell) in record.iter().enumerate().take(header.len()) {
            match (kinds[i], cell_type(cell)) {
                (_, None) => nullable[i] = true,
                (None, Some(t)) => kinds[i] = Some(t),
                (Some(a), Some(b)) if a == b => {}
                (Some(Column::Integer), Some(Column::Number))
                | (Some(Column::Number), Some(Column::Integer)) => kinds[i] = Some(Column::Number),
                (Some(_), Some(_)) => kinds[i] = Some(Column::String),
            }
        }
        seen += 1;
    }
    Ok(header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut types = BTreeSet::new();
            types.insert(match kinds[i].unwrap_or(Column::String) {
                Column::Integer => "integer",
                Column::Number => "number",
                Column::Boolean => "boolean",
                Column::String => "string",
            });
            if nullable[i] {
                types.insert("null");
            }
            (String::from_utf8_lossy(name).into_owned(), types)
        })
        .collect())
}

/// Each CSV column's name and the type the stream's schema gives it.
pub fn columns(header: &csv::ByteRecord, schema: &Value) -> Vec<(String, Column)> {
    header
        .iter()
        .map(|name| {
            let name = String::from_utf8_lossy(name).into_owned();
            let ty = &schema["properties"][&name]["type"];
            let has = |t: &str| ty == t || ty.as_array().is_some_and(|a| a.iter().any(|x| x == t));
            let column = if has("integer") {
                Column::Integer
            } else if has("number") {
                Column::Number
            } else if has("boolean") {
                Column::Boolean
            } else {
                Column::String
            };
            (name, column)
        })
        .collect()
}

/// One CSV row as a JSON object, cells converted to their column's type. A cell that does not
/// fit its column's type is kept as a string rather than lost.
pub fn row_to_json(columns: &[(String, Column)], row: &csv::ByteRecord) -> Value {
    let mut object = serde_json::Map::with_capacity(columns.len());
    for ((name, column), cell) in columns.iter().zip(row.iter()) {
        let text = String::from_utf8_lossy(cell);
        let value = if text.is_empty() {
            Value::Null
        } else {
            match column {
                Column::Integer => text.parse::<i64>().map(Value::from).ok(),
                Column::Number => text
                    .parse::<f64>()
                    .ok()
                    .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number)),
                Column::Boolean => text.parse::<bool>().map(Value::Bool).ok(),
                Column::String => None,
            }
            .unwrap_or_else(|| Value::String(text.into_owned()))
        };
        object.insert(name.clone(), value);
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, FileSource};
    use sluice_sdk::source::wire;
    use sluice_sdk::{ConfiguredCatalog, ConfiguredStream, DestinationMode, Message, SyncMode};

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn config(dir: &std::path::Path) -> String {
        json!({ "path": dir }).to_string()
    }

    #[test]
    fn discover_infers_types_from_csv_and_jsonl() {
        let dir = dir_with(&[
            (
                "people.csv",
                "id,name,score,ok\n1,Ann,1.5,true\n2,,2,false\n",
            ),
            (
                "events.jsonl",
                "{\"id\":1,\"tags\":[\"a\"],\"v\":1}\n\n{\"id\":2,\"v\":2.5,\"x\":null}\n",
            ),
            ("notes.txt", "ignored"),
        ]);
        let catalog = wire::discover::<FileSource>(&config(dir.path())).unwrap();
        let names: Vec<_> = catalog.streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["events", "people"]);
        let events = &catalog.streams[0].json_schema["properties"];
        assert_eq!(events["id"]["type"], "integer");
        assert_eq!(events["v"]["type"], "number");
        assert_eq!(events["tags"]["type"], "array");
        let people = &catalog.streams[1].json_schema["properties"];
        assert_eq!(people["id"]["type"], "integer");
        assert_eq!(people["name"]["type"], json!(["null", "string"]));
        assert_eq!(people["score"]["type"], "number");
        assert_eq!(people["ok"]["type"], "boolean");
    }

    fn read_all(dir: &std::path::Path, state: Vec<(String, String)>) -> (Vec<Value>, Vec<String>) {
        let catalog = wire::discover::<FileSource>(&config(dir)).unwrap();
        let configured = ConfiguredCatalog {
            streams: catalog
                .streams
                .into_iter()
                .map(|stream| ConfiguredStream {
                    stream,
                    sync_mode: SyncMode::FullRefresh,
                    destination_mode: DestinationMode::Append,
                    cursor_field: vec![],
                    primary_key: vec![],
                })
                .collect(),
        };
        let mut reader = wire::read::<FileSource>(&config(dir), configured, state).unwrap();
        let (mut records, mut states) = (Vec::new(), Vec::new());
        while let Some(m) = reader.next(2).unwrap() {
            match m {
                Message::Batch { records: r, .. } => {
                    for l in r.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                        records.push(serde_json::from_slice(l).unwrap());
                    }
                }
                Message::State { stream, state } => states.push(format!("{stream}:{state}")),
            }
        }
        (records, states)
    }

    #[test]
    fn csv_rows_become_typed_objects_and_resume_from_the_offset() {
        let dir = dir_with(&[("p.csv", "id,name\n1,a\n2,b\n3,\"c, d\"\n")]);
        let (records, states) = read_all(dir.path(), vec![]);
        assert_eq!(
            records,
            [
                json!({"id":1,"name":"a"}),
                json!({"id":2,"name":"b"}),
                json!({"id":3,"name":"c, d"})
            ]
        );
        assert_eq!(states[0], "p:{\"offset\":16}");
        let (rest, _) = read_all(dir.path(), vec![("p".into(), "{\"offset\":16}".into())]);
        assert_eq!(rest, [json!({"id":3,"name":"c, d"})]);
    }

    #[test]
    fn jsonl_lines_pass_through_and_resume_from_the_offset() {
        let dir = dir_with(&[("e.jsonl", "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n")]);
        let (records, states) = read_all(dir.path(), vec![]);
        assert_eq!(records.len(), 3);
        assert_eq!(states[0], "e:{\"offset\":16}");
        let (rest, _) = read_all(dir.path(), vec![("e".into(), "{\"offset\":16}".into())]);
        assert_eq!(rest, [json!({"a":3})]);
    }

    #[test]
    fn a_missing_directory_is_a_config_error() {
        let err = wire::check::<FileSource>(&json!({"path": "/definitely/not/here"}).to_string())
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("/definitely/not/here")),
            "{err}"
        );
        let _ = Config { path: "/x".into() };
    }
}
