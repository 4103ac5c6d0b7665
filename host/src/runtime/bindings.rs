//! Host bindings generated from `wit/connector.wit`.

/// The `source` world.
pub mod source {
    wasmtime::component::bindgen!({
        world: "source",
        path: "../wit",
        exports: { default: async },
    });
}

/// The `destination` world; shared interfaces come from the source world's bindings.
pub mod destination {
    wasmtime::component::bindgen!({
        world: "destination",
        path: "../wit",
        exports: { default: async },
        with: {
            "sluice:connector/types": super::source::sluice::connector::types,
            "sluice:connector/logging": super::source::sluice::connector::logging,
        },
    });
}

pub use source::sluice::connector::{logging, types};
