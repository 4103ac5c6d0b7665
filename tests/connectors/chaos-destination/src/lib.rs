//! A destination that misbehaves on purpose, chosen by `behavior` in its config. It counts what
//! it is given into `/output/count` on every flush, so tests can see what reached it.

use std::hint::black_box;

use serde::Deserialize;
use sluice_sdk::{
    Batch, ConfiguredCatalog, Destination, DestinationMode, Error, Result, Spec, Writer, json,
};

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Behavior {
    /// Accept everything.
    Ok,
    /// Panic on the first write.
    PanicOnWrite,
    /// Fail every flush with a transient error.
    FailFlush,
    /// Spin forever in write.
    LoopOnWrite,
    /// Take 20 ms over every write: a destination that falls behind.
    SlowWrite,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub behavior: Behavior,
}

pub struct ChaosDestination;

impl Destination for ChaosDestination {
    type Config = Config;
    type Writer = ChaosWriter;

    fn spec() -> Spec {
        Spec::new(json!({"type": "object"}))
            .destination_modes(&[DestinationMode::Append, DestinationMode::Overwrite])
    }

    fn check(_config: &Config) -> Result<()> {
        Ok(())
    }

    fn open(config: Config, _catalog: ConfiguredCatalog) -> Result<ChaosWriter> {
        Ok(ChaosWriter {
            behavior: config.behavior,
            records: 0,
        })
    }
}

pub struct ChaosWriter {
    behavior: Behavior,
    records: u64,
}

impl Writer for ChaosWriter {
    fn write(&mut self, batch: Batch<'_>) -> Result<()> {
        match self.behavior {
            Behavior::PanicOnWrite => panic!("chaos: destination bug"),
            Behavior::LoopOnWrite => loop {
                black_box(&mut self.records);
            },
            Behavior::SlowWrite => std::thread::sleep(std::time::Duration::from_millis(20)),
            _ => {}
        }
        self.records += batch.lines().count() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.behavior == Behavior::FailFlush {
            return Err(Error::transient("chaos: disk went away"));
        }
        if std::path::Path::new("/output").is_dir() {
            std::fs::write("/output/count", self.records.to_string())?;
        }
        Ok(())
    }
}

sluice_sdk::export_destination!(ChaosDestination);
