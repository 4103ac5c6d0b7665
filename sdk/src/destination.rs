//! Writing a destination: implement [`Destination`] and [`Writer`].

use serde::de::DeserializeOwned;

use crate::source::decode_config;
use crate::{ConfiguredCatalog, Error, Result, Spec};

/// A destination connector.
pub trait Destination {
    /// The connector's config, decoded from JSON.
    type Config: DeserializeOwned;
    /// A write in progress.
    type Writer: Writer + 'static;

    /// Describe the connector and its config.
    fn spec() -> Spec;
    /// Check the config and, where possible, that the target is writable.
    fn check(config: &Self::Config) -> Result<()>;
    /// Start writing the streams of `catalog`.
    fn open(config: Self::Config, catalog: ConfiguredCatalog) -> Result<Self::Writer>;
}

/// A write in progress.
pub trait Writer {
    /// Write one batch; it need not be durable until [`Writer::flush`].
    fn write(&mut self, batch: Batch<'_>) -> Result<()>;
    /// Make everything written so far durable. The host commits checkpoints only after this.
    fn flush(&mut self) -> Result<()>;
}

/// Records of one stream, as newline-delimited JSON. The host has already checked that every
/// line is a JSON object and that the stream is in the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The stream.
    pub stream: &'a str,
    /// The raw JSONL bytes.
    pub records: &'a [u8],
}

impl<'a> Batch<'a> {
    /// Each record's JSON text, without its newline.
    pub fn lines(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.records
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
    }

    /// Each record decoded into `T`.
    pub fn records<T: DeserializeOwned>(&self) -> impl Iterator<Item = Result<T>> + 'a {
        let stream = self.stream;
        self.lines().enumerate().map(move |(i, line)| {
            serde_json::from_slice(line)
                .map_err(|e| Error::fatal(format!("record {} of stream `{stream}`: {e}", i + 1)))
        })
    }
}

/// The wire-level destination calls, shared by the WebAssembly glue and native runs.
pub mod wire {
    use super::*;

    /// `spec()`.
    pub fn spec<D: Destination>() -> Spec {
        D::spec()
    }

    /// `check(config)`.
    pub fn check<D: Destination>(config: &str) -> Result<()> {
        D::check(&decode_config(config)?)
    }

    /// `open(config, catalog)`.
    pub fn open<D: Destination>(config: &str, catalog: ConfiguredCatalog) -> Result<D::Writer> {
        D::open(decode_config(config)?, catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_the_trailing_newline() {
        let b = Batch {
            stream: "s",
            records: b"{\"a\":1}\n{\"a\":2}\n",
        };
        let lines: Vec<_> = b.lines().collect();
        assert_eq!(lines, [&b"{\"a\":1}"[..], &b"{\"a\":2}"[..]]);
        let values: Vec<serde_json::Value> = b.records().collect::<Result<_>>().unwrap();
        assert_eq!(values[1]["a"], 2);
    }
}
