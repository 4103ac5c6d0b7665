//! Columns and their SQL types from a stream's JSON schema.

use serde_json::Value;
use sluice_sdk::sql::Dialect;

/// The SQL type a JSON schema type becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// `integer`.
    BigInt,
    /// `number`.
    Double,
    /// `boolean`.
    Bool,
    /// `string` with `format: date-time`.
    Timestamp,
    /// `string` with `format: date`.
    Date,
    /// Any other string, and fields of no single type.
    Text,
    /// `object` and `array`: JSON (`jsonb` in PostgreSQL, text in SQLite).
    Json,
}

impl SqlType {
    /// The type's name in `dialect`.
    pub fn sql(self, dialect: Dialect) -> &'static str {
        match (dialect, self) {
            (Dialect::Postgres, SqlType::BigInt) => "bigint",
            (Dialect::Postgres, SqlType::Double) => "double precision",
            (Dialect::Postgres, SqlType::Bool) => "boolean",
            (Dialect::Postgres, SqlType::Timestamp) => "timestamptz",
            (Dialect::Postgres, SqlType::Date) => "date",
            (Dialect::Postgres, SqlType::Text) => "text",
            (Dialect::Postgres, SqlType::Json) => "jsonb",
            (Dialect::Sqlite, SqlType::BigInt | SqlType::Bool) => "INTEGER",
            (Dialect::Sqlite, SqlType::Double) => "REAL",
            (Dialect::Sqlite, _) => "TEXT",
        }
    }
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The record's top-level field name.
    pub name: String,
    /// Its type.
    pub ty: SqlType,
}

/// The columns of a stream: its schema's top-level properties, in order.
pub fn columns(schema: &Value) -> Result<Vec<Column>, String> {
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())
        .ok_or("its JSON schema has no `properties`, so there are no columns to create")?;
    Ok(props
        .iter()
        .map(|(name, p)| Column {
            name: name.clone(),
            ty: sql_type(p),
        })
        .collect())
}

fn sql_type(p: &Value) -> SqlType {
    let types: Vec<&str> = match p.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let non_null: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    match non_null.as_slice() {
        ["integer"] => SqlType::BigInt,
        ["number"] | ["integer", "number"] | ["number", "integer"] => SqlType::Double,
        ["boolean"] => SqlType::Bool,
        ["object"] | ["array"] => SqlType::Json,
        ["string"] => match p.get("format").and_then(Value::as_str) {
            Some("date-time") => SqlType::Timestamp,
            Some("date") => SqlType::Date,
            _ => SqlType::Text,
        },
        _ => SqlType::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_schema_types_become_columns() {
        let cols = columns(&json!({"properties": {
            "id": {"type": "integer"},
            "at": {"type": ["null", "string"], "format": "date-time"},
            "price": {"type": "number"},
            "tags": {"type": "array"},
            "x": {}
        }}))
        .unwrap();
        let types: Vec<_> = cols.iter().map(|c| (c.name.as_str(), c.ty)).collect();
        assert_eq!(
            types,
            [
                ("id", SqlType::BigInt),
                ("at", SqlType::Timestamp),
                ("price", SqlType::Double),
                ("tags", SqlType::Json),
                ("x", SqlType::Text)
            ]
        );
        assert_eq!(SqlType::Json.sql(Dialect::Postgres), "jsonb");
        assert!(columns(&json!({"type": "object"})).is_err());
    }
}
