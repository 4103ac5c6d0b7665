//! The connector package: one uncompressed tar file (`NAME-VERSION.slpkg`) holding
//!
//! ```text
//! manifest.toml    the manifest, byte for byte the one embedded in the component
//! component.wasm   the component
//! signature.json   once signed: the publisher's key id and an ed25519 signature
//! ```
//!
//! The signature covers a short text naming the format, the package name and version, and
//! the SHA-256 digests of the component and the manifest ([`Digests::signed_message`]), so
//! neither file can change, and a signature cannot be moved to another package, without
//! failing verification.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::publisher::{PublisherKey, TrustStore};
use crate::capability::manifest::{Manifest, ManifestError};

/// The file extension of a package.
pub const EXTENSION: &str = "slpkg";
/// The largest component a package may hold.
pub const MAX_COMPONENT: u64 = 64 << 20;
const MAX_SMALL: u64 = 1 << 20;
/// The largest package file: the largest component, the two small files and tar's headers.
pub const MAX_PACKAGE: u64 = MAX_COMPONENT + 2 * MAX_SMALL + (16 << 10);
const MANIFEST: &str = "manifest.toml";
const COMPONENT: &str = "component.wasm";
const SIGNATURE: &str = "signature.json";
const FORMAT: &str = "sluice-package-v1";

/// Why a package cannot be built, read or trusted. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Reading or writing failed.
    #[error("{what}: {source}")]
    Io {
        /// The file.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a package.
    #[error("{what} is not a sluice package: {reason}")]
    Format {
        /// The file.
        what: String,
        /// Why.
        reason: String,
    },
    /// The component's manifest is missing or invalid.
    #[error("{what}: {source}")]
    Manifest {
        /// The file.
        what: String,
        /// Why.
        source: ManifestError,
    },
    /// `manifest.toml` differs from the manifest inside the component.
    #[error(
        "{what}: manifest.toml is not the manifest embedded in component.wasm; rebuild the package with `sluice connector pack`"
    )]
    ManifestMismatch {
        /// The file.
        what: String,
    },
    /// No signature.
    #[error(
        "{what} is not signed; sign it with `sluice connector sign PKG --key KEY` (installing needs a signature from a publisher you trust)"
    )]
    Unsigned {
        /// The file.
        what: String,
    },
    /// Signed by a key the operator does not trust.
    #[error(
        "{what} is signed by `{key_id}`, which is not a trusted publisher; if you trust it, add its public key with `sluice trust add KEY.pub`"
    )]
    Untrusted {
        /// The file.
        what: String,
        /// The signer's key id.
        key_id: String,
    },
    /// The signature does not verify.
    #[error(
        "{what}: the signature by `{key_id}` does not match its contents (it was changed after signing, or signed by another key)"
    )]
    BadSignature {
        /// The file.
        what: String,
        /// The key id it claims.
        key_id: String,
    },
}

/// The SHA-256 digests a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    /// Of `component.wasm`.
    pub component: [u8; 32],
    /// Of `manifest.toml`.
    pub manifest: [u8; 32],
}

impl Digests {
    /// The text that is signed: the format, name, version and both digests, a line each.
    pub fn signed_message(&self, name: &str, version: &str) -> Vec<u8> {
        format!(
            "{FORMAT}\n{name}\n{version}\ncomponent sha256:{}\nmanifest sha256:{}\n",
            hex::encode(self.component),
            hex::encode(self.manifest)
        )
        .into_bytes()
    }
}

/// `signature.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The publisher key's id, `NAME:FINGERPRINT`.
    pub key_id: String,
    /// The signature, base64.
    pub signature: String,
}

/// A package in memory.
#[derive(Debug, Clone)]
pub struct Package {
    /// The manifest, parsed.
    pub manifest: Manifest,
    /// `manifest.toml`, as stored.
    pub manifest_text: String,
    /// `component.wasm`.
    pub component: Vec<u8>,
    /// `signature.json`, once signed.
    pub signature: Option<Signature>,
}

impl Package {
    /// Build an unsigned package from a component (its manifest is the one it embeds).
    pub fn from_component(component: Vec<u8>, what: &str) -> Result<Package, PackageError> {
        let manifest_err = |source| PackageError::Manifest {
            what: what.to_string(),
            source,
        };
        let manifest_text = Manifest::embedded_text(&component).map_err(manifest_err)?;
        let manifest = Manifest::parse(&manifest_text).map_err(manifest_err)?;
        Ok(Package {
            manifest,
            manifest_text,
            component,
            signature: None,
        })
    }

    /// `NAME-VERSION.slpkg`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}.{EXTENSION}",
            self.manifest.name, self.manifest.version
        )
    }

    /// The digests of its two files.
    pub fn digests(&self) -> Digests {
        Digests {
            component: Sha256::digest(&self.component).into(),
            manifest: Sha256::digest(self.manifest_text.as_bytes()).into(),
        }
    }

    fn message(&self) -> Vec<u8> {
        self.digests()
            .signed_message(&self.manifest.name, &self.manifest.version)
    }

    /// Sign it (replacing any earlier signature).
    pub fn sign(&mut self, key: &PublisherKey) {
        let signature = key.sign(&self.message());
        self.signature = Some(Signature {
            algorithm: "ed25519".into(),
            key_id: key.id().to_string(),
            signature: B64.encode(signature.to_bytes()),
        });
    }

    /// Check that it is whole and signed by a publisher in `trust`; returns the signer's id.
    pub fn verify(&self, trust: &TrustStore, what: &str) -> Result<String, PackageError> {
        let what = what.to_string();
        if Manifest::embedded_text(&self.component).ok().as_deref()
            != Some(self.manifest_text.as_str())
        {
            return Err(PackageError::ManifestMismatch { what });
        }
        let Some(sig) = &self.signature else {
            return Err(PackageError::Unsigned { what });
        };
        let Some(key) = trust.get(&sig.key_id) else {
            return Err(PackageError::Untrusted {
                what,
                key_id: sig.key_id.clone(),
            });
        };
        let bad = || PackageError::BadSignature {
            what: what.clone(),
            key_id: sig.key_id.clone(),
        };
        if sig.algorithm != "ed25519" {
            return Err(bad());
        }
        let bytes = B64.decode(sig.signature.as_bytes()).map_err(|_| bad())?;
        let signature = ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| bad())?;
        key.key
            .verify_strict(&self.message(), &signature)
            .map_err(|_| bad())?;
        Ok(sig.key_id.clone())
    }

    /// The package file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, name, data)
                .expect("writing to memory");
        };
        add(MANIFEST, self.manifest_text.as_bytes());
        add(COMPONENT, &self.component);
        if let Some(sig) = &self.signature {
            let text = serde_json::to_string_pretty(sig).expect("serializes") + "\n";
            add(SIGNATURE, text.as_bytes());
        }
        tar.into_inner().expect("writing to memory")
    }

    /// Write it to `path` (whole or not at all).
    pub fn write(&self, path: &Path) -> Result<(), PackageError> {
        let io = |source| PackageError::Io {
            what: path.display().to_string(),
            source,
        };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let mut tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new("."))).map_err(io)?;
        std::io::Write::write_all(&mut tmp, &self.to_bytes()).map_err(io)?;
        // Packages are for sharing: readable by all, like any download.
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Read a package file.
    pub fn read(path: &Path) -> Result<Package, PackageError> {
        let what = path.display().to_string();
        let len = std::fs::metadata(path)
            .map_err(|source| PackageError::Io {
                what: what.clone(),
                source,
            })?
            .len();
        if len > MAX_PACKAGE {
            return Err(PackageError::Format {
                what,
                reason: format!("it is {} MiB, over the limit", len >> 20),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| PackageError::Io {
            what: what.clone(),
            source,
        })?;
        Package::parse(&bytes, &what)
    }

    /// Parse a package file's bytes (`what` names it in errors).
    pub fn parse(bytes: &[u8], what: &str) -> Result<Package, PackageError> {
        let format = |reason: String| PackageError::Format {
            what: what.to_string(),
            reason,
        };
        let (mut manifest, mut component, mut signature) = (None, None, None);
        let mut archive = tar::Archive::new(bytes);
        let entries = archive
            .entries()
            .map_err(|e| format(format!("not a tar file ({e})")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format(format!("a damaged entry ({e})")))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(format("it holds something other than plain files".into()));
            }
            let name = entry
                .path()
                .map_err(|e| format(format!("a bad file name ({e})")))?
                .to_string_lossy()
                .into_owned();
            let (slot, limit) = match name.as_str() {
                MANIFEST => (&mut manifest, MAX_SMALL),
                COMPONENT => (&mut component, MAX_COMPONENT),
                SIGNATURE => (&mut signature, MAX_SMALL),
                other => return Err(format(format!("unexpected file `{other}`"))),
            };
            if slot.is_some() {
                return Err(format(format!("`{name}` appears twice")));
            }
            if entry.size() > limit {
                return Err(format(format!("`{name}` is over {} MiB", limit >> 20)));
            }
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry
                .by_ref()
                .take(limit + 1)
                .read_to_end(&mut data)
                .map_err(|e| format(format!("`{name}` cannot be read ({e})")))?;
            *slot = Some(data);
        }
        let manifest_text =
            String::from_utf8(manifest.ok_or_else(|| format(format!("it has no {MANIFEST}")))?)
                .map_err(|_| format(format!("{MANIFEST} is not UTF-8")))?;
        let component = component.ok_or_else(|| format(format!("it has no {COMPONENT}")))?;
        let manifest =
            Manifest::parse(&manifest_text).map_err(|source| PackageError::Manifest {
                what: what.to_string(),
                source,
            })?;
        let signature = signature
            .map(|s| {
                serde_json::from_slice::<Signature>(&s)
                    .map_err(|e| format(format!("{SIGNATURE} is invalid ({e})")))
            })
            .transpose()?;
        Ok(Package {
            manifest,
            manifest_text,
            component,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST_TEXT: &str = "name = \"source-demo\"\nversion = \"1.2.0\"\nkind = \"source\"\n";

    /// A WebAssembly module carrying `manifest` in the `sluice:manifest` custom section.
    fn module(manifest: &str) -> Vec<u8> {
        let name = crate::capability::manifest::SECTION;
        let mut payload = vec![name.len() as u8];
        payload.extend_from_slice(name.as_bytes());
        payload.extend_from_slice(manifest.as_bytes());
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.push(0);
        // The section size as unsigned LEB128.
        let mut n = payload.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            m.push(if n > 0 { byte | 0x80 } else { byte });
            if n == 0 {
                break;
            }
        }
        m.extend_from_slice(&payload);
        m
    }

    fn trusted(key: &PublisherKey) -> TrustStore {
        let dir = tempfile::tempdir().unwrap();
        TrustStore::add(dir.path(), &key.public()).unwrap();
        TrustStore::open(dir.path()).unwrap()
    }

    #[test]
    fn a_signed_package_round_trips_and_verifies() {
        let key = PublisherKey::generate("acme").unwrap();
        let mut p = Package::from_component(module(MANIFEST_TEXT), "demo.wasm").unwrap();
        assert_eq!(p.file_name(), "source-demo-1.2.0.slpkg");
        p.sign(&key);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(p.file_name());
        p.write(&path).unwrap();
        let back = Package::read(&path).unwrap();
        assert_eq!(back.digests(), p.digests());
        assert_eq!(back.manifest.name, "source-demo");
        assert_eq!(back.verify(&trusted(&key), "pkg").unwrap(), key.id());
    }

    #[test]
    fn every_way_to_break_trust_is_refused_by_name() {
        let key = PublisherKey::generate("acme").unwrap();
        let trust = trusted(&key);
        let mut p = Package::from_component(module(MANIFEST_TEXT), "demo.wasm").unwrap();
        assert!(matches!(
            p.verify(&trust, "pkg"),
            Err(PackageError::Unsigned { .. })
        ));
        p.sign(&key);

        // Signed by someone else.
        let mut other = p.clone();
        other.sign(&PublisherKey::generate("mallory").unwrap());
        let e = other.verify(&trust, "pkg").unwrap_err();
        assert!(
            matches!(&e, PackageError::Untrusted { key_id, .. } if key_id.starts_with("mallory:")),
            "{e}"
        );

        // A changed component (with the same manifest).
        let mut changed = p.clone();
        // An extra (empty) custom section named `x`.
        changed.component.extend_from_slice(&[0, 2, 1, b'x']);
        let e = changed.verify(&trust, "pkg").unwrap_err();
        assert!(matches!(e, PackageError::BadSignature { .. }), "{e}");

        // A manifest edited to ask for more than the component embeds.
        let mut widened = p.clone();
        widened.manifest_text += "[capabilities]\nnetwork = [\"https://*\"]\n";
        let e = widened.verify(&trust, "pkg").unwrap_err();
        assert!(matches!(e, PackageError::ManifestMismatch { .. }), "{e}");

        // A signature moved onto another version of the same component.
        let v2 = MANIFEST_TEXT.replace("1.2.0", "1.3.0");
        let mut moved = Package::from_component(module(&v2), "v2.wasm").unwrap();
        moved.signature = p.signature.clone();
        let e = moved.verify(&trust, "pkg").unwrap_err();
        assert!(matches!(e, PackageError::BadSignature { .. }), "{e}");

        // The original still verifies.
        p.verify(&trust, "pkg").unwrap();
    }

    #[test]
    fn malformed_package_files_say_what_is_wrong() {
        let p = Package::from_component(module(MANIFEST_TEXT), "demo.wasm").unwrap();
        let e = Package::parse(b"not a tar file at all", "x").unwrap_err();
        assert!(matches!(e, PackageError::Format { .. }), "{e}");

        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        h.set_cksum();
        tar.append_data(&mut h, "run.sh", &b"x"[..]).unwrap();
        let e = Package::parse(&tar.into_inner().unwrap(), "x").unwrap_err();
        assert!(e.to_string().contains("unexpected file"), "{e}");

        let only_manifest = {
            let mut tar = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_ustar();
            h.set_size(MANIFEST_TEXT.len() as u64);
            h.set_cksum();
            tar.append_data(&mut h, MANIFEST, MANIFEST_TEXT.as_bytes())
                .unwrap();
            tar.into_inner().unwrap()
        };
        let e = Package::parse(&only_manifest, "x").unwrap_err();
        assert!(e.to_string().contains("no component.wasm"), "{e}");
        assert!(Package::parse(&p.to_bytes(), "x").is_ok());

        let e = Package::from_component(b"\0asm\x01\0\0\0".to_vec(), "bare.wasm").unwrap_err();
        assert!(matches!(e, PackageError::Manifest { .. }), "{e}");
    }
}
