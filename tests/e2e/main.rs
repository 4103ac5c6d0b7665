//! End-to-end tests: real components in real sandboxes, the real binary, a real store.
//!
//! Run with `cargo xtask test`, which builds the connectors and the binary first.

mod airbyte_import;
mod api;
mod api_e2e;
mod api_schedule;
mod api_tls;
mod api_webhooks;
mod boundary;
mod chaos;
mod cli;
mod connection_files;
mod faker_to_file;
mod fleet;
mod hostile;
mod hostile_serve;
mod marketplace;
mod packages;
mod pii_faker;
mod resume;
mod source_declarative;
mod source_file;
mod source_http;
mod sql;
mod sql_walls;
mod store_backends;
mod store_queue;
mod store_schema;
