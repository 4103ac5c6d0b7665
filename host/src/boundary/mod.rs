//! What happens to traffic and data at the sandbox wall, independent of wasmtime: the record of
//! what connectors did and were refused ([`audit`]), outbound rate limits with backoff
//! ([`ratelimit`]), and encryption at rest ([`crypto`]).

pub mod audit;
pub mod crypto;
pub mod limits;
pub mod pii;
pub mod ratelimit;
pub mod retention;
pub mod scrub;
