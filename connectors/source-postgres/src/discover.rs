//! Streams from the database's catalog: one per table or view in the configured schemas.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_sdk::sql::{Connection, quote_ident, quote_literal};
use sluice_sdk::{Catalog, Error, Result, Stream, SyncMode};

use super::Config;

/// The annotation discovery puts in a stream's schema to say which table it reads.
const RELATION: &str = "x-postgres-relation";
/// The annotation on a column: its PostgreSQL type (keyset parameters are cast to it).
const PG_TYPE: &str = "x-postgres-type";

/// The relation a discovered stream reads, quoted.
pub fn relation(schema: &Value) -> Option<String> {
    let r = schema.get(RELATION)?;
    Some(format!(
        "{}.{}",
        quote_ident(r.get("schema")?.as_str()?),
        quote_ident(r.get("table")?.as_str()?)
    ))
}

/// The type a bound value of `column` is cast to: its PostgreSQL type when discovery recorded
/// a plain one, else `text`.
pub fn cast_type(schema: &Value, column: &str) -> String {
    let t = schema
        .pointer(&format!("/properties/{column}/{PG_TYPE}"))
        .and_then(Value::as_str)
        .unwrap_or("text");
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        t.to_string()
    } else {
        "text".into()
    }
}

fn json_type(udt: &str) -> Value {
    let (t, format) = match udt {
        "int2" | "int4" | "int8" | "oid" => ("integer", None),
        "float4" | "float8" | "numeric" | "money" => ("number", None),
        "bool" => ("boolean", None),
        "timestamptz" | "timestamp" => ("string", Some("date-time")),
        "date" => ("string", Some("date")),
        "json" | "jsonb" => ("object", None),
        u if u.starts_with('_') => ("array", None),
        _ => ("string", None),
    };
    let mut v = json!({"type": ["null", t], PG_TYPE: udt});
    if let Some(f) = format {
        v["format"] = json!(f);
    }
    v
}

/// The catalog: tables and views of the configured schemas, plus the configured queries.
pub fn catalog(db: &Connection, config: &Config) -> Result<Catalog> {
    if config.schemas.is_empty() && config.queries.is_empty() {
        return Err(Error::config(
            "no `schemas` and no `queries`: nothing to read",
        ));
    }
    let mut streams = Vec::new();
    if !config.schemas.is_empty() {
        let list: Vec<String> = config.schemas.iter().map(|s| quote_literal(s)).collect();
        let list = list.join(", ");
        let cols = db.query_all(
            &format!(
                "SELECT c.table_schema, c.table_name, c.column_name, c.udt_name \
                 FROM information_schema.columns c \
                 JOIN information_schema.tables t \
                   ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
                 WHERE c.table_schema IN ({list}) AND t.table_type IN ('BASE TABLE', 'VIEW') \
                 ORDER BY c.table_schema, c.table_name, c.ordinal_position"
            ),
            &[],
        )?;
        // Primary keys from the catalog: `information_schema.table_constraints` shows only
        // tables the role has more than SELECT on, and a source's role has nothing more.
        let keys = db.query_all(
            &format!(
                "SELECT n.nspname AS table_schema, c.relname AS table_name, \
                        a.attname AS column_name \
                 FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_catalog.pg_attribute a \
                   ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indisprimary AND n.nspname IN ({list}) \
                 ORDER BY n.nspname, c.relname, \
                          array_position(i.indkey::int2[], a.attnum)"
            ),
            &[],
        )?;
        let s = |row: &serde_json::Map<String, Value>, k: &str| {
            row.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut tables: BTreeMap<(String, String), serde_json::Map<String, Value>> =
            BTreeMap::new();
        for row in &cols {
            tables
                .entry((s(row, "table_schema"), s(row, "table_name")))
                .or_default()
                .insert(s(row, "column_name"), json_type(&s(row, "udt_name")));
        }
        let several = config.schemas.len() > 1;
        for ((schema, table), props) in tables {
            let key: Vec<Vec<String>> = keys
                .iter()
                .filter(|k| s(k, "table_schema") == schema && s(k, "table_name") == table)
                .map(|k| vec![s(k, "column_name")])
                .collect();
            let cursor = ["updated_at", "modified_at", "updated"]
                .into_iter()
                .find(|c| {
                    props
                        .get(*c)
                        .and_then(|p| p.get("format"))
                        .is_some_and(|f| f == "date-time")
                })
                .map(|c| vec![c.to_string()])
                .unwrap_or_default();
            let name = if several {
                format!("{schema}.{table}")
            } else {
                table.clone()
            };
            let mut stream = Stream::new(
                name,
                json!({
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": props,
                    RELATION: {"schema": schema, "table": table}
                }),
            );
            stream.sync_modes = vec![SyncMode::FullRefresh, SyncMode::Incremental];
            stream.cursor_field = cursor;
            stream.primary_key = key;
            streams.push(stream);
        }
    }
    for q in &config.queries {
        // The query's columns: run it for no rows and read them off the plan-free result.
        let probe = db.query_all(
            &format!(
                "SELECT * FROM ({}) AS s LIMIT 1",
                q.query.trim().trim_end_matches(';')
            ),
            &[],
        )?;
        let props: serde_json::Map<String, Value> = probe
            .first()
            .map(|row| {
                row.iter()
                    .map(|(k, v)| {
                        let t = match v {
                            Value::Number(n) if n.is_i64() => "integer",
                            Value::Number(_) => "number",
                            Value::Bool(_) => "boolean",
                            Value::Object(_) => "object",
                            Value::Array(_) => "array",
                            _ => "string",
                        };
                        (k.clone(), json!({"type": ["null", t]}))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut stream = Stream::new(
            q.name.clone(),
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                   "properties": props}),
        );
        stream.sync_modes = vec![SyncMode::FullRefresh, SyncMode::Incremental];
        stream.cursor_field = q.cursor_field.iter().cloned().collect();
        stream.primary_key = q.primary_key.iter().map(|k| vec![k.clone()]).collect();
        streams.push(stream);
    }
    Ok(Catalog { streams })
}
