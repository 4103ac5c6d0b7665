//! # sluice-sdk
//!
//! Write a [sluice](https://github.com/sluice-dev/sluice) data connector in plain Rust.
//!
//! A **source** implements [`Source`] (spec, check, discover, read) and a [`Reader`] that emits
//! records and checkpoints through an [`Emitter`]; a **destination** implements
//! [`Destination`] and a [`Writer`]. One macro call exports the connector as a WebAssembly
//! component for the `wasm32-wasip2` target:
//!
//! ```text
//! struct Faker;
//! impl sluice_sdk::Source for Faker { … }
//! sluice_sdk::export_source!(Faker);
//! ```
//!
//! A complete, tested example is `examples/hello-source` in the sluice repository.
//!
//! Records cross the sandbox wall as batches of newline-delimited JSON; the SDK does the
//! batching. Configs are decoded into your own serde types, so a bad config becomes a clear
//! [`Error::Config`] without code of yours. The same connector crate also builds natively, which
//! is how the host benchmarks the sandbox against native code.

extern crate self as sluice_sdk;

pub mod bundle;
mod catalog;
pub mod destination;
mod error;
pub mod http;
pub mod log;
pub mod source;
pub mod sql;

#[doc(hidden)]
pub mod glue;

pub use catalog::{
    Catalog, ConfiguredCatalog, ConfiguredStream, DestinationMode, Spec, State, Stream, SyncMode,
};
pub use destination::{Batch, Destination, Writer};
pub use error::{Error, Result};
pub use serde_json::{Value, json};
pub use source::{Emitter, Message, Reader, ReaderDriver, Source};

/// Implementation details the export macros expand to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::glue::{DestinationExport, SourceExport, destination_world, source_world};
    pub use wit_bindgen;
}

/// Embed the connector crate's `sluice.toml` (its manifest: name, version, kind, description,
/// requested capabilities) in the component as the `sluice:manifest` custom section, where the
/// host reads it before it instantiates anything. The export macros call it.
#[doc(hidden)]
#[macro_export]
macro_rules! __embed_manifest {
    () => {
        #[used]
        #[unsafe(link_section = "sluice:manifest")]
        static __SLUICE_MANIFEST: [u8; include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sluice.toml"
        ))
        .len()] = *include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/sluice.toml"));
    };
}

/// Export a [`Source`] implementation as this crate's WebAssembly component, with the crate's
/// `sluice.toml` manifest embedded.
///
/// Expands to nothing when not building for WebAssembly, so the crate also builds natively.
#[macro_export]
macro_rules! export_source {
    ($source:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            $crate::__embed_manifest!();
            type __SluiceSourceExport = $crate::__private::SourceExport<$source>;
            $crate::__private::source_world::__export_source_world!(
                __SluiceSourceExport with_types_in $crate::__private::source_world
            );
        };
    };
}

/// Export a [`Destination`] implementation as this crate's WebAssembly component, with the
/// crate's `sluice.toml` manifest embedded.
///
/// Expands to nothing when not building for WebAssembly, so the crate also builds natively.
#[macro_export]
macro_rules! export_destination {
    ($destination:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            $crate::__embed_manifest!();
            type __SluiceDestinationExport = $crate::__private::DestinationExport<$destination>;
            $crate::__private::destination_world::__export_destination_world!(
                __SluiceDestinationExport with_types_in $crate::__private::destination_world
            );
        };
    };
}
