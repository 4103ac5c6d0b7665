//! A source that misbehaves on purpose, chosen by `behavior` in its config, so the host's tests
//! can prove each misbehaviour ends the run with a clear error and nothing worse.
//!
//! Every behaviour first emits `records` good records of stream `items` (with a checkpoint
//! after each batch), then misbehaves.

use std::hint::black_box;

use serde::Deserialize;
use sluice_sdk::{
    Catalog, ConfiguredCatalog, Emitter, Error, Reader, Result, Source, Spec, State, Stream, json,
};

/// What to do after the good records.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Behavior {
    /// Nothing: finish normally.
    Ok,
    /// `panic!`.
    Panic,
    /// Spin forever.
    Loop,
    /// Block in a host call (sleep) forever.
    Sleep,
    /// Allocate 4 GiB.
    Alloc,
    /// Recurse without end.
    Recursion,
    /// Emit one record of `size_mib` MiB.
    BigBatch,
    /// Emit bytes that are not UTF-8.
    BadUtf8,
    /// Emit a line that is JSON but not an object.
    NotObject,
    /// Emit one record whose field nests `depth` arrays deep.
    DeepRecord,
    /// Emit one record with `depth` keys (`k0`, `k1`, …).
    WideRecord,
    /// Emit a batch for a stream not in the catalog.
    UnknownStream,
    /// Log a million lines, then finish normally.
    LogFlood,
    /// Print a hundred thousand lines to stdout, then finish normally.
    PrintFlood,
    /// Return a config error.
    ConfigError,
    /// Return a transient error.
    TransientError,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub behavior: Behavior,
    #[serde(default)]
    pub records: u64,
    #[serde(default = "default_size")]
    pub size_mib: usize,
    #[serde(default = "default_depth")]
    pub depth: usize,
}

fn default_depth() -> usize {
    100_000
}

fn default_size() -> usize {
    1024
}

pub struct Chaos;

impl Source for Chaos {
    type Config = Config;
    type Reader = ChaosReader;

    fn spec() -> Spec {
        Spec::new(json!({"type": "object", "required": ["behavior"]}))
    }

    fn check(_config: &Config) -> Result<()> {
        Ok(())
    }

    fn discover(_config: &Config) -> Result<Catalog> {
        Ok(Catalog {
            streams: vec![Stream::new(
                "items",
                json!({"type": "object", "properties": {"id": {"type": "integer"}}}),
            )],
        })
    }

    fn read(config: Config, _catalog: ConfiguredCatalog, state: State) -> Result<ChaosReader> {
        let next = state.decode::<u64>("items")?.unwrap_or(0);
        Ok(ChaosReader { config, next })
    }
}

pub struct ChaosReader {
    config: Config,
    next: u64,
}

#[inline(never)]
fn recurse(depth: u64, pad: [u64; 16]) -> u64 {
    let pad = black_box(pad);
    if black_box(depth) == u64::MAX {
        return pad[0];
    }
    recurse(depth + 1, pad).wrapping_add(pad[(depth % 16) as usize])
}

impl Reader for ChaosReader {
    fn read(&mut self, out: &mut Emitter) -> Result<bool> {
        if self.next < self.config.records {
            while out.wants_more() && self.next < self.config.records {
                self.next += 1;
                out.record("items", &json!({ "id": self.next }))?;
            }
            out.checkpoint("items", &self.next)?;
            return Ok(true);
        }
        match self.config.behavior {
            Behavior::Ok => return Ok(false),
            Behavior::Panic => panic!("chaos: the connector's own bug"),
            Behavior::Loop => loop {
                black_box(&mut self.next);
            },
            Behavior::Sleep => std::thread::sleep(std::time::Duration::from_secs(3600)),
            Behavior::Alloc => {
                // 4 GiB in 256 MiB pieces (one wasm32 allocation cannot exceed 2 GiB).
                let hog: Vec<Vec<u8>> = (0..16).map(|_| vec![1u8; 256 << 20]).collect();
                black_box(&hog);
            }
            Behavior::Recursion => {
                black_box(recurse(0, [1; 16]));
            }
            Behavior::BigBatch => {
                // One record of `size_mib` MiB: the SDK cannot split a record, so the batch is
                // at least that big.
                let mut line = Vec::with_capacity((self.config.size_mib << 20) + 16);
                line.extend_from_slice(b"{\"pad\":\"");
                line.resize((self.config.size_mib << 20) + 8, b'x');
                line.extend_from_slice(b"\"}");
                out.raw_record("items", &line);
            }
            Behavior::BadUtf8 => out.raw_record("items", b"{\"name\":\"caf\xe9\"}"),
            Behavior::NotObject => out.raw_record("items", b"[1,2,3]"),
            Behavior::DeepRecord => {
                let d = self.config.depth;
                let line = format!("{{\"id\":0,\"a\":{}1{}}}", "[".repeat(d), "]".repeat(d));
                out.raw_record("items", line.as_bytes());
            }
            Behavior::WideRecord => {
                let mut line = String::from("{\"id\":0");
                for k in 0..self.config.depth {
                    line.push_str(&format!(",\"k{k}\":0"));
                }
                line.push('}');
                out.raw_record("items", line.as_bytes());
            }
            Behavior::UnknownStream => out.raw_record("secrets", b"{\"id\":1}"),
            Behavior::LogFlood => {
                for i in 0..1_000_000 {
                    sluice_sdk::info!("log line {i}");
                }
                return Ok(false);
            }
            Behavior::PrintFlood => {
                for i in 0..100_000 {
                    println!("stdout line {i}");
                }
                return Ok(false);
            }
            Behavior::ConfigError => {
                return Err(Error::config("chaos: `api_key` is missing"));
            }
            Behavior::TransientError => return Err(Error::transient("chaos: upstream hiccup")),
        }
        self.config.behavior = Behavior::Ok;
        Ok(true)
    }
}

sluice_sdk::export_source!(Chaos);
