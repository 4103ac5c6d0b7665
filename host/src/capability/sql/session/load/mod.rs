//! Loading a batch of JSONL records into a table: CSV through `COPY` on PostgreSQL, chunked
//! multi-row `INSERT`s on SQLite.

pub(super) mod csv;
mod postgres;
mod sqlite;

pub(super) use postgres::load_pg;
pub(super) use sqlite::load_lite;
