//! Compiled components on disk, keyed by the component's SHA-256 and the engine's compatibility
//! hash, so loading a connector a second time skips Cranelift entirely.
//!
//! Trust: a cached file is native code the host runs. Each file starts with an HMAC-SHA256 (under
//! a key from the keyring) over the component's digest, the engine key and the compiled bytes,
//! checked on the bytes in memory before wasmtime sees them: a file the host did not write
//! (planted through a symlinked grant, say, or copied from another keyring's data dir) is never
//! deserialized. A file that fails the check or to load is recompiled and replaced.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;
use zeroize::Zeroizing;

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
#[derive(Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ComponentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCache")
            .field("dir", &self.dir)
            .field("engine_key", &self.engine_key)
            .finish_non_exhaustive()
    }
}

/// Bytes of the MAC at the head of a cache file.
const MAC_LEN: usize = 32;

impl ComponentCache {
    /// A cache under `dir` (created on first store), or none; entries are authenticated under
    /// `key`.
    pub fn new(engine: &Engine, dir: Option<PathBuf>, key: Zeroizing<[u8; 32]>) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        ComponentCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
            key,
        }
    }

    fn mac(&self, digest: &str) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_ref())
            .expect("HMAC takes any key length");
        m.update(b"sluice-cwasm-v1\n");
        m.update(digest.as_bytes());
        m.update(b"\n");
        m.update(self.engine_key.as_bytes());
        m.update(b"\n");
        m
    }

    /// The compiled bytes of a cache file, if its MAC is this host's for `digest`.
    fn authenticated<'a>(&self, digest: &str, file: &'a [u8]) -> Option<&'a [u8]> {
        let (tag, compiled) = file.split_at_checked(MAC_LEN)?;
        let mut m = self.mac(digest);
        m.update(compiled);
        m.verify_slice(tag).ok()?;
        Some(compiled)
    }

    /// A cache file's contents: the MAC, then the compiled bytes.
    fn sealed(&self, digest: &str, compiled: &[u8]) -> Vec<u8> {
        let mut m = self.mac(digest);
        m.update(compiled);
        let mut out = m.finalize().into_bytes().to_vec();
        out.extend_from_slice(compiled);
        out
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
        if let Ok(file) = std::fs::read(&path) {
            match self.authenticated(digest, &file) {
                // SAFETY: these bytes, in memory, carry this host's MAC over the component's
                // digest and the engine key: `store` below wrote them from
                // `Component::serialize` of this component on an engine with this
                // compatibility hash. wasmtime checks the header and engine settings as well.
                Some(compiled) => match unsafe { Component::deserialize(engine, compiled) } {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => tracing::warn!(
                        "compiled cache entry {} is unusable ({e}); recompiling",
                        path.display()
                    ),
                },
                None => tracing::warn!(
                    "compiled cache entry {} does not carry this host's MAC (not written by it, \
                     or under another keyring); recompiling, never loading it",
                    path.display()
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store(&path, &self.sealed(digest, &component.serialize()?)) {
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
        store(&path, &self.sealed(digest, &component.serialize()?))?;
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
