//! Compiled components on disk, keyed by the component's SHA-256 and the engine's compatibility
//! hash, so loading a connector a second time skips Cranelift entirely.
//!
//! Trust: a cached file is native code the host maps and runs, so the cache directory must be
//! as trusted as the host binary (it lives in the operator's data dir). A file that fails to
//! load (corrupt, truncated, other engine) is recompiled and replaced.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a load came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialized from the cache.
    Hit,
    /// Compiled (and stored for next time).
    Compiled,
    /// Compiled; no cache is configured.
    Uncached,
}

/// The on-disk cache of compiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ComponentCache {
    /// A cache under `dir` (created on first store), or none.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        ComponentCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    fn path_for(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }

    /// Load `bytes` (whose SHA-256 is `digest`) from the cache, or compile and store it.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(path) = self.path_for(digest) else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Uncached));
        };
        if path.exists() {
            // SAFETY: the file was written by `store` below from `Component::serialize` of a
            // component with this digest on an engine with this compatibility hash, in a
            // directory only the operator controls (see the module docs). wasmtime checks the
            // header and engine settings and fails cleanly on a mismatch.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(
                    "compiled cache entry {} is unusable ({e}); recompiling",
                    path.display()
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store(&path, &component.serialize()?) {
            tracing::warn!("cannot write compiled cache {}: {e}", path.display());
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

impl ComponentCache {
    /// Where a compiled entry for `digest` is (or would be) kept, if there is a cache.
    pub fn entry_path(&self, digest: &str) -> Option<PathBuf> {
        self.path_for(digest)
    }

    /// Keep an already compiled component (whose SHA-256 is `digest`); returns the file, or
    /// `None` when there is no cache.
    pub fn insert(&self, digest: &str, component: &Component) -> wasmtime::Result<Option<PathBuf>> {
        let Some(path) = self.path_for(digest) else {
            return Ok(None);
        };
        store(&path, &component.serialize()?)?;
        Ok(Some(path))
    }
}

/// Write atomically: a reader sees the old file or the whole new one, never a torn one.
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
