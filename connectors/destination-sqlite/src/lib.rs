//! `destination-sqlite`: one SQLite table per stream, written through the host's `sql`
//! interface. The grant named `warehouse` says which database and where in it; see the
//! `sql-destination` crate for tables, modes and transactions.

use sluice_sdk::sql::Dialect;
use sluice_sdk::{ConfiguredCatalog, Destination, DestinationMode, Result, Spec};
use sql_destination::{Config, SqlWriter};

/// The destination.
pub struct SqliteDestination;

impl Destination for SqliteDestination {
    type Config = Config;
    type Writer = SqlWriter;

    fn spec() -> Spec {
        Spec::new(sql_destination::config_schema("SQLite")).destination_modes(&[
            DestinationMode::Append,
            DestinationMode::Overwrite,
            DestinationMode::AppendDedup,
        ])
    }

    fn check(_: &Config) -> Result<()> {
        sql_destination::connect(Dialect::Sqlite)?;
        Ok(())
    }

    fn open(_: Config, catalog: ConfiguredCatalog) -> Result<SqlWriter> {
        SqlWriter::open(sql_destination::connect(Dialect::Sqlite)?, &catalog)
    }
}

sluice_sdk::export_destination!(SqliteDestination);
