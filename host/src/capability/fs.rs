//! Filesystem grants: host directories preopened into the sandbox over cap-std, so no path the
//! connector opens can leave them (`..`, absolute paths and symlinks pointing out are refused by
//! construction).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// A directory a connection grants, as written in the connection file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The host directory (relative paths are relative to the connection file).
    pub host: PathBuf,
    /// Where the connector sees it, e.g. `/input`.
    pub guest: String,
    /// Narrower access than the connector's request (`read-only` for a destination that should
    /// only read); default: what the connector requested for that path.
    #[serde(default)]
    pub access: Option<Access>,
}

/// Whether a connector may change what is in a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Sources: read files, list directories.
    ReadOnly,
    /// Destinations: also create, write, truncate and remove.
    ReadWrite,
}

/// A directory ready to be preopened: resolved host path, guest path, access.
#[derive(Debug, Clone, PartialEq)]
pub struct Preopen {
    /// Absolute host path of an existing directory.
    pub host: PathBuf,
    /// Guest path.
    pub guest: String,
    /// Access.
    pub access: Access,
}

/// Why a directory grant cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FsGrantError {
    /// The host directory does not exist or is not a directory.
    #[error("granted directory {} is not usable: {reason}", path.display())]
    Unusable {
        /// The host path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The guest path is not an absolute, plain path.
    #[error("guest path `{0}` must be absolute and plain, like `/input` (no `..`, no `.`)")]
    BadGuestPath(String),
}

/// A guest path must be absolute and plain: `/input`, not `input`, `/a/../b` or `/a//b`.
pub fn check_guest_path(guest: &str) -> Result<(), FsGrantError> {
    let plain = guest.starts_with('/')
        && guest
            .split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !plain && guest != "/" {
        return Err(FsGrantError::BadGuestPath(guest.to_string()));
    }
    Ok(())
}

impl DirGrant {
    /// Resolve against `base` (the connection file's directory) and check it can be preopened.
    pub fn resolve(&self, base: &Path, access: Access) -> Result<Preopen, FsGrantError> {
        let guest = &self.guest;
        check_guest_path(guest)?;
        let host = base.join(&self.host);
        let meta = std::fs::metadata(&host).map_err(|e| FsGrantError::Unusable {
            path: host.clone(),
            reason: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(FsGrantError::Unusable {
                path: host,
                reason: "not a directory".into(),
            });
        }
        let host = host.canonicalize().map_err(|e| FsGrantError::Unusable {
            path: host.clone(),
            reason: e.to_string(),
        })?;
        Ok(Preopen {
            host,
            guest: guest.clone(),
            access,
        })
    }
}

/// Preopen `dirs` into a WASI context under construction.
pub fn apply(builder: &mut WasiCtxBuilder, dirs: &[Preopen]) -> Result<(), FsGrantError> {
    for dir in dirs {
        let perms = match dir.access {
            Access::ReadOnly => FsPerms::ReadOnly,
            Access::ReadWrite => FsPerms::ReadWrite,
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| FsGrantError::Unusable {
                path: dir.host.clone(),
                reason: e.to_string(),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_must_be_plain_and_absolute() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["input", "/a/../b", "/./x", "", "/a//b"] {
            let g = DirGrant {
                host: ".".into(),
                guest: bad.into(),
                access: None,
            };
            assert!(
                matches!(
                    g.resolve(dir.path(), Access::ReadOnly),
                    Err(FsGrantError::BadGuestPath(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn host_dirs_resolve_relative_to_the_connection_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let g = DirGrant {
            host: "data".into(),
            guest: "/input".into(),
            access: None,
        };
        let p = g.resolve(dir.path(), Access::ReadOnly).unwrap();
        assert_eq!(p.host, dir.path().join("data").canonicalize().unwrap());
        let missing = DirGrant {
            host: "nope".into(),
            guest: "/input".into(),
            access: None,
        };
        let err = missing.resolve(dir.path(), Access::ReadOnly).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
