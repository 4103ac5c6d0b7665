//! # sluice
//!
//! A host runtime for data connectors compiled to WebAssembly components. Each connector runs in
//! its own sandbox with only the capabilities its operator granted; every batch it produces or
//! consumes crosses the sandbox wall through the host.
//!
//! The modules are the architecture; dependencies point down, layer by layer
//! (`tests/architecture.rs` holds the code to it):
//! - [`api`]: the control API, HTTP only, over [`server`]'s services;
//! - [`server`]: what `sluice serve` runs (runs, scheduler, webhooks, purge);
//! - [`marketplace`], [`sync`]: installing connectors; one run, source → host → destination;
//! - [`connection`]: the connection file;
//! - [`runtime`]: the sandbox (wasmtime);
//! - [`store`], [`capability`]: control-plane persistence; what a sandbox may touch;
//! - [`protocol`], [`boundary`]: the contract's data; what happens at the wall.

pub mod api;
pub mod boundary;
pub mod capability;
pub mod connection;
pub mod marketplace;
pub mod protocol;
pub mod runtime;
pub mod server;
pub mod store;
pub mod sync;
