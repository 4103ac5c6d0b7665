//! What happens to traffic and data at the sandbox wall, independent of wasmtime: the record of
//! what connectors did and were refused ([`events`]), the tamper-evident audit log ([`audit`]),
//! outbound rate limits with backoff ([`ratelimit`]), and encryption at rest ([`crypto`]).

pub mod audit;
pub mod crypto;
pub mod events;
pub mod limits;
pub mod pii;
pub mod ratelimit;
pub mod retention;
pub mod scrub;
