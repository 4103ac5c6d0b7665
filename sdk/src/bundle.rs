//! Files packed into the component with its code (`sluice:connector/bundle`): read-only data that
//! came with the connector, covered by its digest and its package's signature. A declarative
//! source reads its manifest and stream schemas this way.
//!
//! Natively (tests, benchmarks) nothing is packed: [`names`] is empty and [`read`] is `None`.

/// The names of the packed files, sorted.
pub fn names() -> Vec<String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::glue::source_world::sluice::connector::bundle::names()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        Vec::new()
    }
}

/// One packed file's bytes, or `None` when no file of that name was packed.
pub fn read(name: &str) -> Option<Vec<u8>> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::glue::source_world::sluice::connector::bundle::read(name)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = name;
        None
    }
}
