//! `destination-postgres`: one PostgreSQL table per stream, written through the host's `sql`
//! interface. The grant named `warehouse` says which database and where in it; see the
//! `sql-destination` crate for tables, modes and transactions.

use sluice_sdk::sql::Dialect;
use sluice_sdk::{ConfiguredCatalog, Destination, DestinationMode, Result, Spec};
use sql_destination::{Config, SqlWriter};

/// The destination.
pub struct PostgresDestination;

impl Destination for PostgresDestination {
    type Config = Config;
    type Writer = SqlWriter;

    fn spec() -> Spec {
        Spec::new(sql_destination::config_schema("PostgreSQL")).destination_modes(&[
            DestinationMode::Append,
            DestinationMode::Overwrite,
            DestinationMode::AppendDedup,
        ])
    }

    fn check(_: &Config) -> Result<()> {
        sql_destination::connect(Dialect::Postgres)?;
        Ok(())
    }

    fn open(_: Config, catalog: ConfiguredCatalog) -> Result<SqlWriter> {
        SqlWriter::open(sql_destination::connect(Dialect::Postgres)?, &catalog)
    }
}

sluice_sdk::export_destination!(PostgresDestination);
