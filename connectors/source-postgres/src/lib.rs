//! `source-postgres`: reads PostgreSQL tables (discovered from the catalog) or queries (one per
//! configured stream) through the host's `sql` interface, which gives it a read-only session and
//! refuses any statement that is not a query.
//!
//! Reading: with a primary key, in keyset pages (`WHERE (key) > (last) ORDER BY key LIMIT n`),
//! each page streamed to the host as the database returns it; incremental streams page on
//! `(cursor, key)` and checkpoint after every page, so a resumed read repeats at most one page.
//! Rows whose cursor is `NULL` are not read incrementally. Without a key, one streaming query.

mod discover;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_sdk::sql::{Connection, Rows, Value as P, quote_ident};
use sluice_sdk::{
    Catalog, ConfiguredCatalog, Emitter, Error, Reader, Result, Source, Spec, State, SyncMode, json,
};

/// The name the manifest requests its database by.
pub const DATABASE: &str = "db";

/// One stream defined by a query instead of a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryStream {
    /// The stream's name.
    pub name: String,
    /// A `SELECT` whose rows are the records.
    pub query: String,
    /// The column incremental reads order and filter by.
    #[serde(default)]
    pub cursor_field: Option<String>,
    /// The columns that identify a row (keyset pagination, dedup downstream).
    #[serde(default)]
    pub primary_key: Vec<String>,
}

/// The connector's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Schemas whose tables and views become streams (default: `public`).
    #[serde(default = "default_schemas")]
    pub schemas: Vec<String>,
    /// Streams defined by queries, in addition to the tables.
    #[serde(default)]
    pub queries: Vec<QueryStream>,
    /// Rows per keyset page (default 10,000).
    #[serde(default = "default_page")]
    pub page_size: u32,
}

fn default_schemas() -> Vec<String> {
    vec!["public".into()]
}

fn default_page() -> u32 {
    10_000
}

/// The source.
pub struct PostgresSource;

impl Source for PostgresSource {
    type Config = Config;
    type Reader = PgReader;

    fn spec() -> Spec {
        Spec::new(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "PostgreSQL",
            "description": "The database is the connection's `grant.sql` entry named `db`.",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "schemas": {"type": "array", "items": {"type": "string"}, "default": ["public"]},
                "queries": {"type": "array", "items": {
                    "type": "object", "required": ["name", "query"],
                    "properties": {
                        "name": {"type": "string"}, "query": {"type": "string"},
                        "cursor_field": {"type": "string"},
                        "primary_key": {"type": "array", "items": {"type": "string"}}
                    }
                }},
                "page_size": {"type": "integer", "minimum": 1, "default": 10000}
            }
        }))
    }

    fn check(_: &Config) -> Result<()> {
        let db = Connection::open(DATABASE)?;
        db.query_all("SELECT 1 AS ok", &[])?;
        Ok(())
    }

    fn discover(config: &Config) -> Result<Catalog> {
        let db = Connection::open(DATABASE)?;
        discover::catalog(&db, config)
    }

    fn read(config: Config, catalog: ConfiguredCatalog, state: State) -> Result<PgReader> {
        if config.page_size == 0 {
            return Err(Error::config("`page_size` must be at least 1"));
        }
        let db = Connection::open(DATABASE)?;
        // One snapshot for the whole read: pages never see a half-applied change.
        db.begin()?;
        let mut streams = Vec::new();
        for cs in &catalog.streams {
            let name = &cs.stream.name;
            let relation = match config.queries.iter().find(|q| &q.name == name) {
                Some(q) => format!("({}) AS s", q.query.trim().trim_end_matches(';')),
                None => discover::relation(&cs.stream.json_schema).ok_or_else(|| {
                    Error::config(format!(
                        "stream `{name}` is neither a discovered table nor one of `queries`"
                    ))
                })?,
            };
            let top = |path: &Vec<String>, what: &str| match path.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(Error::config(format!(
                    "stream `{name}`: the {what} must be one top-level column, not {path:?}"
                ))),
            };
            let key: Vec<String> = cs
                .primary_key
                .iter()
                .map(|p| top(p, "primary key"))
                .collect::<Result<_>>()?;
            let cursor = match cs.sync_mode {
                SyncMode::FullRefresh => None,
                SyncMode::Incremental => Some(top(&cs.cursor_field, "cursor field")?),
            };
            let saved: Option<Position> = match cursor {
                Some(_) => state.decode(name)?,
                None => None,
            };
            let mut order = Vec::new();
            order.extend(cursor.clone());
            order.extend(key.iter().cloned());
            let types = order
                .iter()
                .map(|c| discover::cast_type(&cs.stream.json_schema, c))
                .collect();
            streams.push(StreamRead {
                name: name.clone(),
                relation,
                cursor,
                paged: !key.is_empty(),
                order,
                types,
                last: saved.map(|p| p.values),
                rows: None,
                page_rows: 0,
                last_line: Vec::new(),
                done: false,
            });
        }
        streams.reverse();
        Ok(PgReader {
            db,
            page: config.page_size,
            streams,
        })
    }
}

/// An incremental stream's checkpoint: the `(cursor, key…)` values of the last row read.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Position {
    values: Vec<Value>,
}

struct StreamRead {
    name: String,
    relation: String,
    cursor: Option<String>,
    /// Keyset pages (there is a key); else one query.
    paged: bool,
    /// `cursor` then the key columns: the order rows are read in.
    order: Vec<String>,
    /// The SQL type to cast each bound `order` value to.
    types: Vec<String>,
    /// The `order` values of the last row read.
    last: Option<Vec<Value>>,
    rows: Option<Rows>,
    page_rows: u32,
    last_line: Vec<u8>,
    done: bool,
}

impl StreamRead {
    fn next_query(&self, page: u32) -> (String, Vec<P>) {
        let cols: Vec<String> = self.order.iter().map(|c| quote_ident(c)).collect();
        let mut filters = Vec::new();
        let mut params = Vec::new();
        if let Some(c) = &self.cursor {
            filters.push(format!("{} IS NOT NULL", quote_ident(c)));
        }
        if let Some(last) = &self.last {
            let placeholders: Vec<String> = self
                .types
                .iter()
                .enumerate()
                .map(|(i, t)| format!("CAST(${} AS {t})", i + 1))
                .collect();
            filters.push(format!(
                "({}) > ({})",
                cols.join(", "),
                placeholders.join(", ")
            ));
            params = last.iter().map(param).collect();
        }
        let mut sql = format!("SELECT * FROM {}", self.relation);
        if !filters.is_empty() {
            sql.push_str(&format!(" WHERE {}", filters.join(" AND ")));
        }
        if !cols.is_empty() {
            sql.push_str(&format!(" ORDER BY {}", cols.join(", ")));
        }
        if self.paged {
            sql.push_str(&format!(" LIMIT {page}"));
        }
        (sql, params)
    }

    fn remember_last(&mut self) -> Result<()> {
        if self.order.is_empty() || self.last_line.is_empty() {
            return Ok(());
        }
        let row: serde_json::Map<String, Value> = serde_json::from_slice(&self.last_line)
            .map_err(|e| Error::fatal(format!("stream `{}`: a row is not JSON: {e}", self.name)))?;
        self.last = Some(
            self.order
                .iter()
                .map(|c| row.get(c).cloned().unwrap_or(Value::Null))
                .collect(),
        );
        Ok(())
    }
}

/// A cursor or key value bound as text and cast by the query.
fn param(v: &Value) -> P {
    match v {
        Value::Null => P::Null,
        Value::String(s) => P::Text(s.clone()),
        other => P::Text(other.to_string()),
    }
}

/// A read in progress.
pub struct PgReader {
    db: Connection,
    page: u32,
    streams: Vec<StreamRead>,
}

impl Reader for PgReader {
    fn read(&mut self, out: &mut Emitter) -> Result<bool> {
        while out.wants_more() {
            let Some(s) = self.streams.last_mut() else {
                let _ = self.db.commit();
                return Ok(false);
            };
            if s.done {
                self.streams.pop();
                continue;
            }
            if s.rows.is_none() {
                let (sql, params) = s.next_query(self.page);
                s.rows = Some(self.db.query(&sql, &params)?);
                s.page_rows = 0;
            }
            let rows = s.rows.as_mut().expect("set above");
            match rows.next(self.page.min(1000))? {
                Some(batch) => {
                    for line in batch.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        out.raw_record(&s.name, line);
                        s.page_rows += 1;
                        s.last_line.clear();
                        s.last_line.extend_from_slice(line);
                    }
                }
                None => {
                    s.rows = None;
                    s.remember_last()?;
                    if s.cursor.is_some()
                        && let Some(values) = &s.last
                    {
                        out.checkpoint(
                            &s.name,
                            &Position {
                                values: values.clone(),
                            },
                        )?;
                    }
                    // A short page is the last one.
                    if !s.paged || s.page_rows < self.page {
                        s.done = true;
                    }
                }
            }
        }
        Ok(true)
    }
}

sluice_sdk::export_source!(PostgresSource);
