//! The keyring: key-encryption keys (KEKs) by id, the audit log's signing key, and the secret
//! that per-workspace pseudonymization keys derive from.
//!
//! It lives in `DATA_DIR/keyring.json`, created with mode 0600 on first use (and refused when
//! anyone but its owner can read it), or comes whole from the `SLUICE_KEYRING` environment
//! variable (for secret managers; it cannot be rotated in place then). Rotation adds a KEK and
//! makes it current; old KEKs stay, so everything sealed under them still opens.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{CryptoError, cipher, random};

/// The environment variable that may hold the whole keyring (its JSON file's contents).
pub const ENV: &str = "SLUICE_KEYRING";
/// The keyring's file name in the data dir.
pub const FILE: &str = "keyring.json";

/// A key's id, as written in sealed headers (`kek-1`, `kek-2`…).
pub type KeyId = String;

/// Where the keyring came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringSource {
    /// A key file.
    File(PathBuf),
    /// The `SLUICE_KEYRING` variable.
    Env,
}

impl std::fmt::Display for KeyringSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyringSource::File(p) => write!(f, "{}", p.display()),
            KeyringSource::Env => write!(f, "${ENV}"),
        }
    }
}

/// The file format. Key bytes are base64; the file is the only place they exist at rest.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    version: u32,
    current: String,
    keys: Vec<KeyFile>,
    signing: KeyFile,
    pseudonym: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    id: String,
    created: String,
    key: String,
}

struct Kek {
    id: KeyId,
    created: String,
    key: Zeroizing<[u8; 32]>,
}

/// The keys of one data dir. `Debug` shows ids only.
pub struct Keyring {
    source: KeyringSource,
    keks: Vec<Kek>,
    current: usize,
    signing_id: KeyId,
    signing_created: String,
    signing: SigningKey,
    pseudonym: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("source", &self.source)
            .field("keks", &self.keks.iter().map(|k| &k.id).collect::<Vec<_>>())
            .field("current", &self.current_id())
            .field("signing", &self.signing_id)
            .finish_non_exhaustive()
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn fresh_key() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    random(k.as_mut());
    k
}

impl Keyring {
    /// The keyring of `data_dir`: from `SLUICE_KEYRING` when set, else the key file, created on
    /// first use.
    pub fn open(data_dir: &Path) -> Result<Keyring, CryptoError> {
        match std::env::var(ENV) {
            Ok(text) => Self::parse(&text, KeyringSource::Env),
            Err(_) => Self::open_file(&data_dir.join(FILE)),
        }
    }

    /// Load the key file at `path`, creating it (0600) if it does not exist.
    pub fn open_file(path: &Path) -> Result<Keyring, CryptoError> {
        let source = KeyringSource::File(path.to_path_buf());
        let err = |reason: String| CryptoError::Keyring {
            origin: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path).map_err(err)?;
                Self::parse(&text, source)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ring = Self::generate(source);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| err(format!("cannot create its directory: {e}")))?;
                }
                match ring.publish(path) {
                    Ok(()) => Ok(ring),
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::open_file(path)
                    }
                    Err(e) => Err(err(format!("cannot create it: {e}"))),
                }
            }
            Err(e) => Err(err(format!("cannot read it: {e}"))),
        }
    }

    /// A new keyring with one KEK, a signing key and a pseudonymization secret.
    pub fn generate(source: KeyringSource) -> Keyring {
        let seed = fresh_key();
        let at = now();
        Keyring {
            source,
            keks: vec![Kek {
                id: "kek-1".into(),
                created: at.clone(),
                key: fresh_key(),
            }],
            current: 0,
            signing_id: "sig-1".into(),
            signing_created: at,
            signing: SigningKey::from_bytes(&seed),
            pseudonym: fresh_key(),
        }
    }

    /// Parse the keyring's JSON text.
    pub fn parse(text: &str, source: KeyringSource) -> Result<Keyring, CryptoError> {
        let origin = source.to_string();
        let err = |reason: String| CryptoError::Keyring {
            origin: origin.clone(),
            reason,
        };
        let file: KeyringFile =
            serde_json::from_str(text).map_err(|e| err(format!("it is not a keyring: {e}")))?;
        if file.version != 1 {
            return Err(err(format!(
                "version {} is not known to this sluice",
                file.version
            )));
        }
        let key32 = |what: &str, b64: &str| -> Result<Zeroizing<[u8; 32]>, CryptoError> {
            let bytes = Zeroizing::new(
                B64.decode(b64)
                    .map_err(|_| err(format!("{what} is not base64")))?,
            );
            let mut k = Zeroizing::new([0u8; 32]);
            if bytes.len() != 32 {
                return Err(err(format!("{what} is not 32 bytes")));
            }
            k.copy_from_slice(&bytes);
            Ok(k)
        };
        let mut keks = Vec::new();
        for k in &file.keys {
            if keks.iter().any(|e: &Kek| e.id == k.id) {
                return Err(err(format!("key id `{}` appears twice", k.id)));
            }
            keks.push(Kek {
                id: k.id.clone(),
                created: k.created.clone(),
                key: key32(&format!("key `{}`", k.id), &k.key)?,
            });
        }
        let current = keks
            .iter()
            .position(|k| k.id == file.current)
            .ok_or_else(|| err(format!("the current key `{}` is not in it", file.current)))?;
        let seed = key32("the signing key", &file.signing.key)?;
        Ok(Keyring {
            source,
            keks,
            current,
            signing_id: file.signing.id,
            signing_created: file.signing.created,
            signing: SigningKey::from_bytes(&seed),
            pseudonym: key32("the pseudonym secret", &file.pseudonym)?,
        })
    }

    pub(super) fn to_json(&self) -> Zeroizing<String> {
        let file = KeyringFile {
            version: 1,
            current: self.current_id().to_string(),
            keys: self
                .keks
                .iter()
                .map(|k| KeyFile {
                    id: k.id.clone(),
                    created: k.created.clone(),
                    key: B64.encode(k.key.as_ref()),
                })
                .collect(),
            signing: KeyFile {
                id: self.signing_id.clone(),
                created: self.signing_created.clone(),
                key: B64.encode(self.signing.to_bytes()),
            },
            pseudonym: B64.encode(self.pseudonym.as_ref()),
        };
        Zeroizing::new(serde_json::to_string_pretty(&file).expect("keyring serializes"))
    }

    /// Create `path` (failing if it exists) with mode 0600 and write the keyring to it.
    fn write_new(&self, path: &Path) -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(path)?;
        f.write_all(self.to_json().as_bytes())?;
        f.sync_all()
    }

    /// Where it came from.
    pub fn source(&self) -> &KeyringSource {
        &self.source
    }

    /// The id of the KEK new objects are sealed under.
    pub fn current_id(&self) -> &str {
        &self.keks[self.current].id
    }

    /// Every KEK id, oldest first, with its creation time.
    pub fn key_ids(&self) -> Vec<(String, String)> {
        self.keks
            .iter()
            .map(|k| (k.id.clone(), k.created.clone()))
            .collect()
    }

    pub(super) fn current(&self) -> (&str, Aes256Gcm) {
        let k = &self.keks[self.current];
        (&k.id, cipher(&k.key))
    }

    pub(super) fn kek(&self, id: &str) -> Option<Aes256Gcm> {
        self.keks
            .iter()
            .find(|k| k.id == id)
            .map(|k| cipher(&k.key))
    }

    /// Add a KEK, make it current and save the file. Returns the new id. Old KEKs stay.
    pub fn rotate(&mut self) -> Result<KeyId, CryptoError> {
        let KeyringSource::File(path) = self.source.clone() else {
            return Err(CryptoError::Keyring {
                origin: self.source.to_string(),
                reason: "a keyring from the environment cannot be rotated in place; rotate the \
                         key file it was made from and update the variable"
                    .into(),
            });
        };
        let next = self
            .keks
            .iter()
            .filter_map(|k| k.id.strip_prefix("kek-")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let id = format!("kek-{next}");
        self.keks.push(Kek {
            id: id.clone(),
            created: now(),
            key: fresh_key(),
        });
        self.current = self.keks.len() - 1;
        self.save(&path)?;
        Ok(id)
    }

    /// Create the key file at `path` whole or not at all: written (0600) to a temporary file
    /// beside it and linked into place only if nothing is there, so a concurrent first start
    /// never reads a half-written keyring. Fails with `AlreadyExists` when another got there
    /// first.
    fn publish(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{FILE}."))
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(dir)?;
        tmp.write_all(self.to_json().as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Replace the key file atomically, keeping it private.
    fn save(&self, path: &Path) -> Result<(), CryptoError> {
        let err = |e: std::io::Error| CryptoError::Keyring {
            origin: path.display().to_string(),
            reason: format!("cannot save it: {e}"),
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{FILE}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        self.write_new(&tmp).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// The audit log's signing key and its id.
    pub fn signing_key(&self) -> (&str, &SigningKey) {
        (&self.signing_id, &self.signing)
    }

    /// The public half of the signing key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The HMAC key compiled components in the cache are authenticated with: a file the host
    /// did not write under this keyring is never loaded as native code.
    pub fn cache_key(&self) -> Zeroizing<[u8; 32]> {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(
            Some(b"sluice compiled cache v1"),
            self.pseudonym.as_ref(),
        );
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(b"cwasm", out.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        out
    }

    /// The HMAC key a workspace pseudonymizes with: stable for the workspace, different for
    /// every other, never stored.
    pub fn pseudonym_key(&self, workspace: &str) -> Zeroizing<[u8; 32]> {
        let hk =
            hkdf::Hkdf::<sha2::Sha256>::new(Some(b"sluice pii hash v1"), self.pseudonym.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(workspace.as_bytes(), out.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        out
    }
}

/// Refuse a key file others can read.
fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "its permissions are {:o}; it holds the keys to everything sealed in this data \
                 dir, so only its owner may read it: `chmod 600 {}`",
                mode & 0o777,
                path.display()
            ));
        }
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_reloaded_identical_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let ring = Keyring::open_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Keyring::open_file(&path).unwrap();
        assert_eq!(ring.current_id(), again.current_id());
        assert_eq!(*ring.pseudonym_key("w"), *again.pseudonym_key("w"));
        assert_ne!(*ring.pseudonym_key("w"), *ring.pseudonym_key("other"));
        assert_eq!(ring.verifying_key(), again.verifying_key());

        let mut ring = again;
        assert_eq!(ring.rotate().unwrap(), "kek-2");
        let reloaded = Keyring::open_file(&path).unwrap();
        assert_eq!(reloaded.current_id(), "kek-2");
        assert_eq!(reloaded.key_ids().len(), 2);
        assert!(!format!("{reloaded:?}").contains(&B64.encode(reloaded.keks[0].key.as_ref())));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        Keyring::open_file(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keyring::open_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_broken_keyring_says_what_is_wrong() {
        let err = Keyring::parse("{}", KeyringSource::Env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("$SLUICE_KEYRING") && err.contains("not a keyring"),
            "{err}"
        );
    }
}
