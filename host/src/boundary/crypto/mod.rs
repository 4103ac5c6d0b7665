//! Encryption at rest: a keyring of key-encryption keys ([`keyring`]), envelope-sealed objects
//! for small values such as secrets and checkpoints ([`envelope`]), and a chunked streaming format
//! for files ([`stream`]). AES-256-GCM throughout; the STREAM construction comes from
//! `aead-stream`, nothing is hand-rolled.
//!
//! Every sealed object is bound to an *identity* (what it is and whose it is, e.g.
//! `state/CONNECTION/STREAM`) as associated data, so a ciphertext moved to another record does
//! not open.

pub mod envelope;
pub mod keyring;
pub mod stream;

pub use envelope::{open, rewrap, seal};
pub use keyring::{KeyId, Keyring, KeyringSource};

/// The hex SHA-256 of `bytes`: how components, packages and files are named by content.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Why something could not be sealed or opened. Never contains key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The bytes are not in a format this version knows (not sealed, or from a newer sluice).
    #[error("{what} is not a sealed object this version of sluice can read ({reason})")]
    Format {
        /// What was being opened.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// It names a key the keyring does not hold.
    #[error(
        "{what} was sealed under key `{key}`, which is not in the keyring; restore the key file \
         that held it (keys are never deleted by rotation)"
    )]
    UnknownKey {
        /// What was being opened.
        what: String,
        /// The key id in its header.
        key: String,
    },
    /// Authentication failed: modified, truncated, reordered, moved, or the wrong key.
    #[error(
        "{what} failed authentication{at}: it was modified, truncated or reordered, belongs to \
         another record, or the keyring holds a different key under the same id"
    )]
    Tampered {
        /// What was being opened.
        what: String,
        /// Where (e.g. ` at chunk 3`), or empty.
        at: String,
    },
    /// The keyring file or variable.
    #[error("keyring {origin}: {reason}")]
    Keyring {
        /// The file or the environment variable.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing the underlying file.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Fill `buf` from the operating system's random source.
pub(crate) fn random(buf: &mut [u8]) {
    // The OS generator failing is not something a caller can handle; nothing sealed without
    // fresh randomness would be safe.
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// AES-256-GCM under `key`.
pub(crate) fn cipher(key: &[u8; 32]) -> aes_gcm::Aes256Gcm {
    use aes_gcm::KeyInit;
    aes_gcm::Aes256Gcm::new(key.into())
}
