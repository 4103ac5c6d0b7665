//! Host bindings generated from `wit/connector.wit`.

/// The `source` world.
pub mod source {
    wasmtime::component::bindgen!({
        world: "source",
        path: "../wit",
        imports: { "sluice:connector/sql": async },
        exports: { default: async },
        with: {
            "sluice:connector/sql.connection": crate::capability::sql::Session,
            "sluice:connector/sql.rows": crate::capability::sql::Rows,
        },
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
            "sluice:connector/sql": super::source::sluice::connector::sql,
            "sluice:connector/bundle": super::source::sluice::connector::bundle,
        },
    });
}

pub use source::sluice::connector::{bundle, logging, sql, types};
