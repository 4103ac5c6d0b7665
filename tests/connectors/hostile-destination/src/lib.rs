//! A destination that, when it opens, runs each statement of its config on the granted
//! `warehouse` database and logs one line per statement: `attack N: OUTCOME: MESSAGE`, where the
//! outcome is `ok`, `refused`, `timeout` or `error`. Then it accepts and discards every batch,
//! so the run goes on: what happens to the rest of the run is the host's business.

use serde::Deserialize;
use sluice_sdk::sql::{Connection, SqlError};
use sluice_sdk::{
    Batch, ConfiguredCatalog, Destination, DestinationMode, Result, Spec, Writer, json,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub statements: Vec<String>,
}

pub struct Hostile;

impl Destination for Hostile {
    type Config = Config;
    type Writer = Discard;

    fn spec() -> Spec {
        Spec::new(json!({"type": "object"}))
            .destination_modes(&[DestinationMode::Append, DestinationMode::Overwrite])
    }

    fn check(_: &Config) -> Result<()> {
        Ok(())
    }

    fn open(config: Config, _: ConfiguredCatalog) -> Result<Discard> {
        let db = Connection::open("warehouse")?;
        for (i, stmt) in config.statements.iter().enumerate() {
            let lower = stmt.trim_start().to_ascii_lowercase();
            let result = if lower.starts_with("select") {
                db.query(stmt, &[]).and_then(|mut rows| {
                    let mut n = 0u64;
                    while let Some(b) = rows.next(1000)? {
                        n += b.iter().filter(|c| **c == b'\n').count() as u64;
                    }
                    Ok(n)
                })
            } else {
                db.execute(stmt, &[])
            };
            let (outcome, message) = match result {
                Ok(n) => ("ok", format!("{n} rows")),
                Err(SqlError::Refused(m)) => ("refused", m),
                Err(SqlError::Timeout(m)) => ("timeout", m),
                Err(e) => ("error", e.to_string()),
            };
            sluice_sdk::info!("attack {i}: {outcome}: {message}");
        }
        Ok(Discard)
    }
}

pub struct Discard;

impl Writer for Discard {
    fn write(&mut self, _: Batch<'_>) -> Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

sluice_sdk::export_destination!(Hostile);
