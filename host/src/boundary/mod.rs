//! What happens to traffic and data at the sandbox wall, independent of wasmtime: the record of
//! what connectors did and were refused ([`audit`]), and outbound rate limits with backoff
//! ([`ratelimit`]).

pub mod audit;
pub mod ratelimit;
