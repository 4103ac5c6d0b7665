//! # sluice
//!
//! A host runtime for data connectors compiled to WebAssembly components. Each connector runs in
//! its own sandbox with only the capabilities its operator granted; every batch it produces or
//! consumes crosses the sandbox wall through the host.
//!
//! The modules are the architecture (dependencies point down):
//! - [`sync`]: one run, source → host → destination, with checkpoints;
//! - [`runtime`], [`capability`]: the sandbox and what it may touch;
//! - [`boundary`]: what happens at the wall (events, rate limits), independent of wasmtime;
//! - [`store`]: control-plane persistence (SQLite);
//! - [`protocol`]: the contract's data, shared by all of them.

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
