//! The writer behind `destination-postgres` and `destination-sqlite`: one table per stream,
//! columns typed from the stream's JSON schema, records bulk-loaded by the host
//! (`sql::Connection::load`), and one transaction per flush so that a checkpoint the host
//! commits after `flush` is never ahead of committed rows.
//!
//! Modes:
//! - `append`: load into the table;
//! - `overwrite`: the table is emptied inside the run's first transaction, so a run that fails
//!   before its first flush leaves the old rows in place;
//! - `append-dedup`: load into a staging table; each flush upserts its rows into the table on
//!   the primary key, the last record of a key winning.
//!
//! Column set: the schema's top-level `properties`; fields outside them are not stored. A table
//! that already exists is used as it is (no schema evolution yet).

mod schema;

use std::collections::HashMap;

use serde::Deserialize;
use sluice_sdk::sql::{Connection, Dialect, quote_ident};
use sluice_sdk::{Batch, ConfiguredCatalog, DestinationMode, Error, Result, Writer};

pub use schema::{Column, SqlType, columns};

/// The name both destinations' manifests request their database by: the connection's
/// `grant.sql` binds it to a database and a schema or table prefix.
pub const DATABASE: &str = "warehouse";

/// Both destinations' config: nothing, because where and what they write is the grant's to say.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The config schema both destinations publish.
pub fn config_schema(title: &str) -> serde_json::Value {
    serde_json::json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": title,
        "description": "No settings: the connection's `grant.sql` entry named `warehouse` says \
                        which database, and which schema or table prefix, it writes.",
        "type": "object",
        "additionalProperties": false,
        "properties": {}
    })
}

/// Open the granted database and check it speaks `dialect`.
pub fn connect(dialect: Dialect) -> Result<Connection> {
    let conn = Connection::open(DATABASE)?;
    if conn.dialect() != dialect {
        return Err(Error::config(format!(
            "database `{}` is {:?}, but this destination writes {:?}: grant it a {:?} \
             database, or use the other destination",
            DATABASE,
            conn.dialect(),
            dialect,
            dialect
        )));
    }
    if conn.scope().is_none() {
        return Err(Error::config(format!(
            "database `{}` is granted read-only; a destination needs a write grant (a schema \
             or table prefix)",
            DATABASE
        )));
    }
    Ok(conn)
}

/// A stream's table and how it is written.
struct Table {
    /// Quoted table name (bare: the host resolves it into the granted schema).
    table: String,
    /// Quoted staging table for append-dedup.
    stage: Option<String>,
    columns: Vec<String>,
    quoted: Vec<String>,
    key: Vec<String>,
    mode: DestinationMode,
    /// Overwrite: emptied in this run already.
    cleared: bool,
    /// Rows staged since the last flush.
    staged: bool,
}

/// A write in progress.
pub struct SqlWriter {
    conn: Connection,
    dialect: Dialect,
    tables: HashMap<String, Table>,
    in_tx: bool,
}

/// A stream name as a table name: lower-case letters, digits and `_`.
pub fn table_name(stream: &str) -> String {
    let mut s: String = stream
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

impl SqlWriter {
    /// Create the schema (PostgreSQL) and a table per stream, and start writing.
    pub fn open(conn: Connection, catalog: &ConfiguredCatalog) -> Result<SqlWriter> {
        let dialect = conn.dialect();
        let scope = conn.scope().unwrap_or_default();
        if dialect == Dialect::Postgres {
            conn.execute(&format!("CREATE SCHEMA IF NOT EXISTS {scope}"), &[])?;
        }
        let prefix = match dialect {
            Dialect::Postgres => String::new(),
            Dialect::Sqlite => scope.clone(),
        };
        let mut tables = HashMap::new();
        for cs in &catalog.streams {
            let name = &cs.stream.name;
            let cols = columns(&cs.stream.json_schema)
                .map_err(|e| Error::config(format!("stream `{name}`: {e}")))?;
            let key: Vec<String> = cs
                .primary_key
                .iter()
                .map(|path| match path.as_slice() {
                    [one] if cols.iter().any(|c| &c.name == one) => Ok(one.clone()),
                    _ => Err(Error::config(format!(
                        "stream `{name}`: primary key {path:?} must be a top-level field of \
                         its schema"
                    ))),
                })
                .collect::<Result<_>>()?;
            if cs.destination_mode == DestinationMode::AppendDedup && key.is_empty() {
                return Err(Error::config(format!(
                    "stream `{name}`: append-dedup needs a primary key"
                )));
            }
            let base = format!("{prefix}{}", table_name(name));
            let table = quote_ident(&base);
            let defs: Vec<String> = cols
                .iter()
                .map(|c| format!("{} {}", quote_ident(&c.name), c.ty.sql(dialect)))
                .collect();
            let pk = if key.is_empty() {
                String::new()
            } else {
                let k: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
                format!(", PRIMARY KEY ({})", k.join(", "))
            };
            conn.execute(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {table} ({}{pk})",
                    defs.join(", ")
                ),
                &[],
            )?;
            let stage = if cs.destination_mode == DestinationMode::AppendDedup {
                let stage = quote_ident(&format!("{prefix}_sluice_stage_{}", table_name(name)));
                let seq = match dialect {
                    // Load order, so the last record of a key wins.
                    Dialect::Postgres => ", \"_sluice_seq\" bigserial",
                    Dialect::Sqlite => "",
                };
                conn.execute(
                    &format!(
                        "CREATE TABLE IF NOT EXISTS {stage} ({}{seq})",
                        defs.join(", ")
                    ),
                    &[],
                )?;
                // Whatever an earlier, interrupted run staged was never committed to the table:
                // the rerun sends it again.
                conn.execute(&format!("DELETE FROM {stage}"), &[])?;
                Some(stage)
            } else {
                None
            };
            tables.insert(
                name.clone(),
                Table {
                    table,
                    stage,
                    quoted: cols.iter().map(|c| quote_ident(&c.name)).collect(),
                    columns: cols.into_iter().map(|c| c.name).collect(),
                    key,
                    mode: cs.destination_mode,
                    cleared: false,
                    staged: false,
                },
            );
        }
        Ok(SqlWriter {
            conn,
            dialect,
            tables,
            in_tx: false,
        })
    }

    fn ensure_tx(&mut self) -> Result<()> {
        if !self.in_tx {
            self.conn.begin()?;
            self.in_tx = true;
        }
        Ok(())
    }

    fn clear(conn: &Connection, dialect: Dialect, t: &mut Table) -> Result<()> {
        if t.mode == DestinationMode::Overwrite && !t.cleared {
            let stmt = match dialect {
                Dialect::Postgres => format!("TRUNCATE {}", t.table),
                Dialect::Sqlite => format!("DELETE FROM {}", t.table),
            };
            conn.execute(&stmt, &[])?;
            t.cleared = true;
        }
        Ok(())
    }

    fn merge(conn: &Connection, dialect: Dialect, t: &mut Table) -> Result<()> {
        let Some(stage) = &t.stage else { return Ok(()) };
        if !t.staged {
            return Ok(());
        }
        let cols = t.quoted.join(", ");
        let keys: Vec<String> = t.key.iter().map(|k| quote_ident(k)).collect();
        let keys = keys.join(", ");
        let updates: Vec<String> = t
            .columns
            .iter()
            .zip(&t.quoted)
            .filter(|(c, _)| !t.key.contains(c))
            .map(|(_, q)| format!("{q} = EXCLUDED.{q}"))
            .collect();
        let on_conflict = if updates.is_empty() {
            format!("ON CONFLICT ({keys}) DO NOTHING")
        } else {
            format!("ON CONFLICT ({keys}) DO UPDATE SET {}", updates.join(", "))
        };
        match dialect {
            Dialect::Postgres => {
                conn.execute(
                    &format!(
                        "INSERT INTO {} ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM {stage} \
                         ORDER BY {keys}, \"_sluice_seq\" DESC {on_conflict}",
                        t.table
                    ),
                    &[],
                )?;
                conn.execute(&format!("TRUNCATE {stage}"), &[])?;
            }
            Dialect::Sqlite => {
                // Replace in load order: the last record of a key wins.
                conn.execute(
                    &format!(
                        "INSERT OR REPLACE INTO {} ({cols}) SELECT {cols} FROM {stage} ORDER BY rowid",
                        t.table
                    ),
                    &[],
                )?;
                conn.execute(&format!("DELETE FROM {stage}"), &[])?;
            }
        }
        t.staged = false;
        Ok(())
    }
}

impl Writer for SqlWriter {
    fn write(&mut self, batch: Batch<'_>) -> Result<()> {
        self.ensure_tx()?;
        let t = self.tables.get_mut(batch.stream).ok_or_else(|| {
            Error::fatal(format!(
                "stream `{}` is not in the configured catalog",
                batch.stream
            ))
        })?;
        Self::clear(&self.conn, self.dialect, t)?;
        let target = t.stage.as_ref().unwrap_or(&t.table);
        self.conn.load(target, &t.columns, batch.records)?;
        t.staged |= t.stage.is_some();
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.ensure_tx()?;
        for t in self.tables.values_mut() {
            Self::clear(&self.conn, self.dialect, t)?;
            Self::merge(&self.conn, self.dialect, t)?;
        }
        self.conn.commit()?;
        self.in_tx = false;
        Ok(())
    }
}
