//! Publisher keys: an ed25519 key pair a publisher signs packages with, and the set of public
//! keys an operator trusts. A key is named by its id, `NAME:FINGERPRINT`, where the fingerprint
//! is the first 16 hex digits of a SHA-256 over the name and the public key, so two keys never
//! share an id and a key cannot be passed off under another publisher's name.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What can go wrong with a key file or the trust store.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a key of the expected kind.
    #[error("{path} is not a {expected}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What it should have been.
        expected: &'static str,
        /// Why not (never key material).
        reason: String,
    },
    /// A publisher name that cannot be part of a key id.
    #[error(
        "publisher name `{0}` is not allowed: use 1 to 64 of a-z, 0-9 and `-`, starting with a letter"
    )]
    BadName(String),
}

/// The id of a public key: `NAME:FINGERPRINT`, the fingerprint covering the name too, so a
/// key file renamed to another publisher does not load.
pub fn key_id(name: &str, public: &VerifyingKey) -> String {
    let mut h = Sha256::new();
    h.update(format!("sluice-publisher-key\n{name}\n").as_bytes());
    h.update(public.as_bytes());
    let digest = h.finalize();
    format!("{name}:{}", &hex::encode(digest)[..16])
}

fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_string()))
    }
}

/// A publisher's signing key (the secret half). Its file is written 0600 and never printed.
pub struct PublisherKey {
    id: String,
    signing: SigningKey,
}

impl std::fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    kind: String,
    id: String,
    secret: String,
}

/// A publisher's public key: what operators trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// `NAME:FINGERPRINT`.
    pub id: String,
    /// The ed25519 key.
    pub key: VerifyingKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicFile {
    kind: String,
    id: String,
    public: String,
}

const SECRET_KIND: &str = "sluice-publisher-secret-key";
const PUBLIC_KIND: &str = "sluice-publisher-public-key";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl PublisherKey {
    /// A new key pair for publisher `name`.
    pub fn generate(name: &str) -> Result<PublisherKey, KeyError> {
        check_name(name)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        crate::boundary::crypto::random(seed.as_mut());
        let signing = SigningKey::from_bytes(&seed);
        Ok(PublisherKey {
            id: key_id(name, &signing.verifying_key()),
            signing,
        })
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            id: self.id.clone(),
            key: self.signing.verifying_key(),
        }
    }

    /// Sign `message`.
    pub fn sign(&self, message: &[u8]) -> ed25519_dalek::Signature {
        use ed25519_dalek::Signer;
        self.signing.sign(message)
    }

    /// Write the secret key to a new file, mode 0600 (an existing file is never overwritten).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let file = SecretFile {
            kind: SECRET_KIND.into(),
            id: self.id.clone(),
            secret: B64.encode(self.signing.to_bytes()),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&file).expect("serializes"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(path).map_err(io(path))?;
        std::io::Write::write_all(&mut f, text.as_bytes()).map_err(io(path))?;
        f.sync_all().map_err(io(path))
    }

    /// Read a secret key file.
    pub fn load(path: &Path) -> Result<PublisherKey, KeyError> {
        let invalid = |reason: &str| KeyError::Invalid {
            path: path.display().to_string(),
            expected: "publisher secret key",
            reason: reason.into(),
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io(path))?);
        let file: SecretFile =
            serde_json::from_str(&text).map_err(|_| invalid("it is not a key file"))?;
        if file.kind != SECRET_KIND {
            return Err(invalid(&format!("its kind is `{}`", file.kind)));
        }
        let bytes = Zeroizing::new(
            B64.decode(file.secret.as_bytes())
                .map_err(|_| invalid("its key is not base64"))?,
        );
        let seed: &[u8; 32] = bytes[..]
            .try_into()
            .map_err(|_| invalid("its key is not 32 bytes"))?;
        let signing = SigningKey::from_bytes(seed);
        let name = file.id.split(':').next().unwrap_or_default();
        if key_id(name, &signing.verifying_key()) != file.id {
            return Err(invalid("its id does not match its key"));
        }
        Ok(PublisherKey {
            id: file.id,
            signing,
        })
    }
}

impl PublicKey {
    /// The public key file's text.
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(&PublicFile {
            kind: PUBLIC_KIND.into(),
            id: self.id.clone(),
            public: B64.encode(self.key.as_bytes()),
        })
        .expect("serializes")
            + "\n"
    }

    /// Parse a public key file's text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<PublicKey, KeyError> {
        let invalid = |reason: &str| KeyError::Invalid {
            path: origin.to_string(),
            expected: "publisher public key",
            reason: reason.into(),
        };
        let file: PublicFile =
            serde_json::from_str(text).map_err(|e| invalid(&format!("not a key file ({e})")))?;
        if file.kind != PUBLIC_KIND {
            return Err(invalid(&format!("its kind is `{}`", file.kind)));
        }
        let bytes = B64
            .decode(file.public.as_bytes())
            .map_err(|_| invalid("its key is not base64"))?;
        let bytes: [u8; 32] = bytes[..]
            .try_into()
            .map_err(|_| invalid("its key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| invalid("not an ed25519 key"))?;
        let name = file.id.split(':').next().unwrap_or_default();
        check_name(name).map_err(|_| invalid("its id has no valid publisher name"))?;
        if key_id(name, &key) != file.id {
            return Err(invalid("its id does not match its key"));
        }
        Ok(PublicKey { id: file.id, key })
    }
}

/// The publisher keys an operator trusts: `DATA_DIR/trust/ID.pub`, one file each.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: Vec<PublicKey>,
}

impl TrustStore {
    /// The trust store of a data dir (empty if it has none yet).
    pub fn open(data_dir: &Path) -> Result<TrustStore, KeyError> {
        let dir = data_dir.join("trust");
        let mut keys = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TrustStore::default()),
            Err(e) => return Err(io(&dir)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io(&dir))?.path();
            if path.extension().is_some_and(|e| e == "pub") {
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                keys.push(PublicKey::parse(&text, &path.display().to_string())?);
            }
        }
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(TrustStore { keys })
    }

    /// Trust `key` from now on (idempotent). Returns whether it was new.
    pub fn add(data_dir: &Path, key: &PublicKey) -> Result<bool, KeyError> {
        let dir = data_dir.join("trust");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("{}.pub", key.id.replace(':', "_")));
        if path.exists() {
            return Ok(false);
        }
        std::fs::write(&path, key.to_text()).map_err(io(&path))?;
        Ok(true)
    }

    /// The trusted key with this id.
    pub fn get(&self, id: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Every trusted key, by id.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_the_secret_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let key = PublisherKey::generate("acme").unwrap();
        assert!(key.id().starts_with("acme:") && key.id().len() == 5 + 16);
        let path = dir.path().join("acme.key");
        key.save(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(key.save(&path).is_err(), "never overwritten");
        let back = PublisherKey::load(&path).unwrap();
        assert_eq!(back.public(), key.public());
        assert!(!format!("{back:?}").contains("secret"));
        let public = PublicKey::parse(&key.public().to_text(), "acme.pub").unwrap();
        assert_eq!(public, key.public());
    }

    #[test]
    fn a_key_whose_id_was_changed_is_refused() {
        let key = PublisherKey::generate("acme").unwrap();
        let text = key.public().to_text().replace("acme:", "trusted-co:");
        let e = PublicKey::parse(&text, "k.pub").unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");
        assert!(PublisherKey::generate("Bad Name").is_err());
    }

    #[test]
    fn the_trust_store_lists_what_was_added() {
        let dir = tempfile::tempdir().unwrap();
        assert!(TrustStore::open(dir.path()).unwrap().keys().is_empty());
        let a = PublisherKey::generate("a").unwrap().public();
        assert!(TrustStore::add(dir.path(), &a).unwrap());
        assert!(!TrustStore::add(dir.path(), &a).unwrap());
        let store = TrustStore::open(dir.path()).unwrap();
        assert_eq!(store.get(&a.id), Some(&a));
        assert_eq!(store.keys().len(), 1);
    }
}
