//! One run per connection at a time, across processes: an OS file lock held for the run. The OS
//! releases it when the process dies, so a `kill -9` never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run of this connection holds the lock (in this process or another).
    #[error(
        "connection `{0}` is already running (started by this or another sluice process); \
         wait for it to finish (runs of one connection never overlap)"
    )]
    Busy(String),
    /// The lock file could not be opened.
    #[error("cannot open lock file {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Held while a connection runs; released on drop.
#[derive(Debug)]
pub struct ConnectionLock {
    _file: File,
}

impl ConnectionLock {
    /// Take the lock of `connection` under `dir`, or fail at once if it is held.
    pub fn acquire(dir: &Path, connection: &str) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let safe: String = connection
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!(
            "{safe}-{}.lock",
            &crate::boundary::crypto::sha256_hex(connection.as_bytes())[..8]
        ));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LockError::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(ConnectionLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Busy(connection.to_string())),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let a = ConnectionLock::acquire(dir.path(), "c/1").unwrap();
        assert!(matches!(
            ConnectionLock::acquire(dir.path(), "c/1"),
            Err(LockError::Busy(_))
        ));
        assert!(ConnectionLock::acquire(dir.path(), "other").is_ok());
        drop(a);
        assert!(ConnectionLock::acquire(dir.path(), "c/1").is_ok());
    }
}
