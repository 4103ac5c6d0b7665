//! `source-faker`: deterministic fake `users`, `products` and `purchases`, with the field names
//! and nesting of Airbyte's source-faker, for demos, tests and benchmarks.
//!
//! The same `seed` and `count` always produce byte-identical records. Every stream is ordered by
//! `updated_at` and checkpoints it, so incremental reads and resumed reads pick up exactly where
//! the committed state points.

mod data;
mod generate;

use serde::{Deserialize, Serialize};
use sluice_sdk::{
    Catalog, ConfiguredCatalog, Emitter, Error, Reader, Result, Source, Spec, State, Stream, json,
};

use generate::{Generator, Kind, PRODUCT_COUNT};

/// The connector's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How many users to generate (purchases follow from users; there are always 100 products).
    #[serde(default = "default_count")]
    pub count: u64,
    /// The seed: the same seed gives the same records.
    #[serde(default)]
    pub seed: u64,
}

fn default_count() -> u64 {
    1000
}

/// A checkpoint: the `updated_at` of the last record emitted.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    updated_at: String,
}

/// The source.
pub struct Faker;

impl Source for Faker {
    type Config = Config;
    type Reader = FakerReader;

    fn spec() -> Spec {
        Spec::new(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Faker",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "count": {
                    "type": "integer", "minimum": 0, "default": 1000,
                    "description": "How many users to generate."
                },
                "seed": {
                    "type": "integer", "minimum": 0, "default": 0,
                    "description": "The same seed always gives the same records."
                }
            }
        }))
        .documentation("https://github.com/sluice-dev/sluice/tree/main/connectors/source-faker")
    }

    fn check(_config: &Config) -> Result<()> {
        // Decoding the config is the whole check: there is nothing remote to reach.
        Ok(())
    }

    fn discover(_config: &Config) -> Result<Catalog> {
        Ok(Catalog {
            streams: Kind::ALL
                .iter()
                .map(|k| {
                    Stream::new(k.name(), k.schema())
                        .incremental_on("updated_at")
                        .primary_key("id")
                })
                .collect(),
        })
    }

    fn read(config: Config, catalog: ConfiguredCatalog, state: State) -> Result<FakerReader> {
        let mut streams = Vec::new();
        for configured in &catalog.streams {
            let name = configured.stream.name.as_str();
            let kind = Kind::from_name(name).ok_or_else(|| {
                Error::config(format!(
                    "unknown stream `{name}`: source-faker has users, products and purchases"
                ))
            })?;
            let after = match state.decode::<Cursor>(name)? {
                Some(c) => Some(generate::parse_timestamp(&c.updated_at).ok_or_else(|| {
                    Error::config(format!(
                        "the saved state of `{name}` has an unreadable updated_at `{}`",
                        c.updated_at
                    ))
                })?),
                None => None,
            };
            streams.push(Generator::new(kind, config.seed, config.count, after));
        }
        streams.reverse(); // popped from the back, in catalog order
        Ok(FakerReader { streams })
    }
}

/// A read in progress: the generators of the streams still to emit.
pub struct FakerReader {
    streams: Vec<Generator>,
}

impl Reader for FakerReader {
    fn read(&mut self, out: &mut Emitter) -> Result<bool> {
        let Some(current) = self.streams.last_mut() else {
            return Ok(false);
        };
        let name = current.kind().name();
        let mut last = None;
        while out.wants_more() {
            match current.next_record(out)? {
                Some(updated_at) => last = Some(updated_at),
                None => break,
            }
        }
        if let Some(updated_at) = last {
            out.checkpoint(
                name,
                &Cursor {
                    updated_at: generate::timestamp(updated_at),
                },
            )?;
        }
        if current.is_done() {
            self.streams.pop();
        }
        Ok(true)
    }
}

/// Number of products, whatever the `count`: the catalog of things people buy is fixed.
pub const PRODUCTS: u64 = PRODUCT_COUNT;

sluice_sdk::export_source!(Faker);
