//! Envelope encryption of small objects: a fresh 256-bit data key per object encrypts the
//! object; the keyring's current KEK wraps the data key. The header names the KEK by id
//! (Tink-style), so rotation only re-wraps the data key and old objects keep opening.
//!
//! ```text
//! "slc" kind version | key-id length, key id | wrap nonce (12) | wrapped data key (48)
//! kind 'e': nonce (12) | ciphertext + tag            kind 's': see `stream`
//! ```
//!
//! The wrapped key is bound to the header and the object's identity; the ciphertext to the
//! identity. Moving either to another record, or editing a byte, fails authentication.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::{CryptoError, Keyring, cipher, random};

const MAGIC: &[u8; 3] = b"slc";
const VERSION: u8 = 1;
pub(super) const ENVELOPE: u8 = b'e';
pub(super) const STREAM: u8 = b's';
const WRAPPED_LEN: usize = 32 + 16;

/// The header every sealed object starts with.
pub(super) struct Header {
    pub kind: u8,
    pub key_id: String,
    pub wrap_nonce: [u8; 12],
    pub wrapped: [u8; WRAPPED_LEN],
}

fn wrap_aad(kind: u8, key_id: &str, identity: &str) -> Vec<u8> {
    let mut aad = b"sluice/data-key/v1\0".to_vec();
    aad.push(kind);
    aad.extend_from_slice(key_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(identity.as_bytes());
    aad
}

/// Associated data of the object itself: its identity.
pub(super) fn data_aad(identity: &str) -> Vec<u8> {
    let mut aad = b"sluice/data/v1\0".to_vec();
    aad.extend_from_slice(identity.as_bytes());
    aad
}

fn format_err(what: &str, reason: &str) -> CryptoError {
    CryptoError::Format {
        what: what.to_string(),
        reason: reason.to_string(),
    }
}

impl Header {
    /// A fresh data key, wrapped under the current KEK.
    pub fn new(ring: &Keyring, kind: u8, identity: &str) -> (Header, Zeroizing<[u8; 32]>) {
        let mut dek = Zeroizing::new([0u8; 32]);
        random(dek.as_mut());
        let (key_id, kek) = ring.current();
        let mut header = Header {
            kind,
            key_id: key_id.to_string(),
            wrap_nonce: [0; 12],
            wrapped: [0; WRAPPED_LEN],
        };
        header.wrap(&kek, &dek, identity);
        (header, dek)
    }

    fn wrap(&mut self, kek: &Aes256Gcm, dek: &[u8; 32], identity: &str) {
        random(&mut self.wrap_nonce);
        let aad = wrap_aad(self.kind, &self.key_id, identity);
        let ct = kek
            .encrypt(
                &Nonce::from(self.wrap_nonce),
                Payload {
                    msg: dek,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encrypts 32 bytes");
        self.wrapped.copy_from_slice(&ct);
    }

    /// Unwrap the data key with the KEK the header names.
    pub fn unwrap_key(
        &self,
        ring: &Keyring,
        identity: &str,
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let kek = ring
            .kek(&self.key_id)
            .ok_or_else(|| CryptoError::UnknownKey {
                what: identity.to_string(),
                key: self.key_id.clone(),
            })?;
        let aad = wrap_aad(self.kind, &self.key_id, identity);
        let dek = Zeroizing::new(
            kek.decrypt(
                &Nonce::from(self.wrap_nonce),
                Payload {
                    msg: &self.wrapped,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Tampered {
                what: identity.to_string(),
                at: " (its data key)".into(),
            })?,
        );
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&dek);
        Ok(out)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.push(self.kind);
        out.push(VERSION);
        out.push(self.key_id.len() as u8);
        out.extend_from_slice(self.key_id.as_bytes());
        out.extend_from_slice(&self.wrap_nonce);
        out.extend_from_slice(&self.wrapped);
    }

    /// Parse a header of `kind` from the start of `bytes`; returns it and its length.
    pub fn parse(bytes: &[u8], kind: u8, what: &str) -> Result<(Header, usize), CryptoError> {
        if bytes.len() < 6 || &bytes[..3] != MAGIC {
            return Err(format_err(what, "no sluice header"));
        }
        if bytes[3] != kind {
            return Err(format_err(what, "a different kind of sealed object"));
        }
        if bytes[4] != VERSION {
            return Err(format_err(
                what,
                &format!("format version {} (this sluice reads {VERSION})", bytes[4]),
            ));
        }
        let id_len = bytes[5] as usize;
        let end = 6 + id_len + 12 + WRAPPED_LEN;
        if bytes.len() < end {
            return Err(format_err(what, "its header is cut short"));
        }
        let key_id = std::str::from_utf8(&bytes[6..6 + id_len])
            .map_err(|_| format_err(what, "its key id is not text"))?
            .to_string();
        let mut h = Header {
            kind,
            key_id,
            wrap_nonce: [0; 12],
            wrapped: [0; WRAPPED_LEN],
        };
        h.wrap_nonce
            .copy_from_slice(&bytes[6 + id_len..6 + id_len + 12]);
        h.wrapped.copy_from_slice(&bytes[6 + id_len + 12..end]);
        Ok((h, end))
    }

    /// The length of the header once written.
    pub fn len(&self) -> usize {
        6 + self.key_id.len() + 12 + WRAPPED_LEN
    }
}

/// Seal `plaintext` as the object `identity` under the keyring's current KEK.
pub fn seal(ring: &Keyring, identity: &str, plaintext: &[u8]) -> Vec<u8> {
    let (header, dek) = Header::new(ring, ENVELOPE, identity);
    let mut nonce = [0u8; 12];
    random(&mut nonce);
    let ct = cipher(&dek)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &data_aad(identity),
            },
        )
        .expect("AES-GCM encrypts any object that fits in memory");
    let mut out = Vec::with_capacity(header.len() + 12 + ct.len());
    header.write(&mut out);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Open the object `identity` sealed by [`seal`].
pub fn open(
    ring: &Keyring,
    identity: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (header, at) = Header::parse(sealed, ENVELOPE, identity)?;
    let dek = header.unwrap_key(ring, identity)?;
    let body = &sealed[at..];
    if body.len() < 12 + 16 {
        return Err(CryptoError::Tampered {
            what: identity.to_string(),
            at: " (it is cut short)".into(),
        });
    }
    cipher(&dek)
        .decrypt(
            &Nonce::from(<[u8; 12]>::try_from(&body[..12]).expect("12 bytes")),
            Payload {
                msg: &body[12..],
                aad: &data_aad(identity),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Tampered {
            what: identity.to_string(),
            at: String::new(),
        })
}

/// Re-wrap the data key of a sealed object (envelope or stream header) under the current KEK,
/// leaving the data untouched. `None` when it already is under the current KEK.
pub fn rewrap(
    ring: &Keyring,
    identity: &str,
    sealed: &[u8],
) -> Result<Option<Vec<u8>>, CryptoError> {
    let kind = match sealed.get(3) {
        Some(&STREAM) => STREAM,
        _ => ENVELOPE,
    };
    let (mut header, at) = Header::parse(sealed, kind, identity)?;
    let (current, kek) = ring.current();
    if header.key_id == current {
        return Ok(None);
    }
    let dek = header.unwrap_key(ring, identity)?;
    header.key_id = current.to_string();
    header.wrap(&kek, &dek, identity);
    let mut out = Vec::with_capacity(sealed.len());
    header.write(&mut out);
    out.extend_from_slice(&sealed[at..]);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boundary::crypto::KeyringSource;

    fn ring() -> (tempfile::TempDir, Keyring) {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open_file(&dir.path().join("k.json")).unwrap();
        (dir, ring)
    }

    #[test]
    fn round_trip_and_every_tamper_is_an_error() {
        let (_d, ring) = ring();
        let sealed = seal(&ring, "state/c/users", b"{\"cursor\":42}");
        assert_eq!(
            &open(&ring, "state/c/users", &sealed).unwrap()[..],
            b"{\"cursor\":42}"
        );
        assert!(!sealed.windows(6).any(|w| w == b"cursor"));
        // Every single flipped bit, anywhere, is caught.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open(&ring, "state/c/users", &bad).is_err(), "byte {i}");
        }
        // Moved to another record.
        let err = open(&ring, "state/c/orders", &sealed).unwrap_err();
        assert!(matches!(err, CryptoError::Tampered { .. }), "{err}");
        // Truncated.
        assert!(open(&ring, "state/c/users", &sealed[..sealed.len() - 1]).is_err());
        assert!(open(&ring, "state/c/users", &sealed[..10]).is_err());
        // Not sealed at all.
        let err = open(&ring, "x", b"{\"plain\":1}").unwrap_err().to_string();
        assert!(err.contains("not a sealed object"), "{err}");
    }

    #[test]
    fn a_wrong_key_is_a_clear_error() {
        let (_d, ring) = ring();
        let sealed = seal(&ring, "secret/tok", b"v");
        let other = Keyring::generate(KeyringSource::Env);
        let err = open(&other, "secret/tok", &sealed).unwrap_err().to_string();
        assert!(err.contains("failed authentication"), "{err}");
    }

    #[test]
    fn rotation_keeps_old_objects_readable_and_rewrap_moves_them() {
        let (_d, mut ring) = ring();
        let old = seal(&ring, "secret/tok", b"value");
        ring.rotate().unwrap();
        assert_eq!(&open(&ring, "secret/tok", &old).unwrap()[..], b"value");
        let moved = rewrap(&ring, "secret/tok", &old).unwrap().unwrap();
        assert_eq!(
            Header::parse(&moved, ENVELOPE, "x").unwrap().0.key_id,
            "kek-2"
        );
        assert_eq!(&open(&ring, "secret/tok", &moved).unwrap()[..], b"value");
        assert!(rewrap(&ring, "secret/tok", &moved).unwrap().is_none());
        // A keyring without the old key cannot open the old object, and says which key.
        let json = Keyring::generate(KeyringSource::Env)
            .to_json()
            .replace("kek-1", "kek-9");
        let fresh = Keyring::parse(&json, KeyringSource::Env).unwrap();
        let err = open(&fresh, "secret/tok", &old).unwrap_err().to_string();
        assert!(err.contains("`kek-1`"), "{err}");
    }
}
