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
    /// A component of the granted path is a symbolic link.
    #[error(
        "granted directory {} passes through a symbolic link at {}: grant paths are never \
         resolved through symlinks (a connector with a writable directory could have planted \
         it); grant the real path instead",
        path.display(),
        link.display()
    )]
    Symlink {
        /// The granted path.
        path: PathBuf,
        /// The component that is a link.
        link: PathBuf,
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
        // Every component the grant itself names is checked (for an absolute path, all of
        // them); the base — the connection file's directory or the workspace's file area — is
        // the operator's.
        let (start, rest) = if self.host.is_absolute() {
            (PathBuf::new(), self.host.as_path())
        } else {
            (base.to_path_buf(), self.host.as_path())
        };
        if let Some(link) = first_symlink(&start, rest) {
            return Err(FsGrantError::Symlink { path: host, link });
        }
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

/// The first path, joining the components of `rest` onto `start` one by one, that is a
/// symbolic link.
fn first_symlink(start: &Path, rest: &Path) -> Option<PathBuf> {
    let mut at = start.to_path_buf();
    for c in rest.components() {
        at.push(c);
        if matches!(c, std::path::Component::Normal(_))
            && std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink())
        {
            return Some(at);
        }
    }
    None
}

/// Preopen `dirs` into a WASI context under construction.
pub fn apply(builder: &mut WasiCtxBuilder, dirs: &[Preopen]) -> Result<(), FsGrantError> {
    for dir in dirs {
        // Resolved (canonical, so link-free) when the grant was checked; a link that appeared
        // since, on any component, refuses the preopen.
        if let Some(link) = first_symlink(Path::new(""), &dir.host) {
            return Err(FsGrantError::Symlink {
                path: dir.host.clone(),
                link,
            });
        }
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

    #[cfg(unix)]
    #[test]
    fn a_grant_through_a_symlink_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("out/real")).unwrap();
        std::fs::create_dir_all(dir.path().join("elsewhere/secret")).unwrap();
        // What a destination with `out` writable can do: a link inside it, pointing out.
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), dir.path().join("out/link"))
            .unwrap();
        let grant = |host: &str| DirGrant {
            host: host.into(),
            guest: "/input".into(),
            access: None,
        };
        for host in ["out/link", "out/link/secret", "./out/link/secret"] {
            match grant(host).resolve(dir.path(), Access::ReadOnly) {
                Err(FsGrantError::Symlink { link, .. }) => {
                    assert_eq!(link.file_name().unwrap(), "link", "{host}")
                }
                other => panic!("{host}: {other:?}"),
            }
        }
        let abs = dir.path().join("out/link/secret");
        let e = grant(abs.to_str().unwrap())
            .resolve(Path::new("/"), Access::ReadOnly)
            .unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // The real path is fine, and a link appearing after the check refuses the preopen.
        let ok = grant("out/real")
            .resolve(dir.path(), Access::ReadOnly)
            .unwrap();
        std::fs::remove_dir(dir.path().join("out/real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), dir.path().join("out/real"))
            .unwrap();
        let mut b = WasiCtxBuilder::new();
        assert!(matches!(
            apply(&mut b, &[ok]),
            Err(FsGrantError::Symlink { .. })
        ));
    }
}
