//! Chunked streaming encryption for files too large to seal in one piece (staging files,
//! failed-record samples): the STREAM construction (`aead-stream`, big-endian 32-bit counter)
//! over AES-256-GCM with an enveloped data key.
//!
//! ```text
//! header (kind 's', see `envelope`) | nonce prefix (7) | chunk size (u32 BE) | chunks…
//! ```
//!
//! Each chunk is authenticated with its position and a last-chunk flag, so a modified, swapped,
//! dropped or truncated chunk fails to open with the chunk's number.

use std::io::{self, Read, Write};

use aead_stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::Aes256Gcm;

use super::envelope::{Header, STREAM, data_aad};
use super::{CryptoError, Keyring, cipher, random};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

/// Writes a sealed stream; call [`SealedWriter::finish`] to write the last chunk (a stream
/// never finished does not open: it reads as truncated).
pub struct SealedWriter<W: Write> {
    out: W,
    enc: Option<EncryptorBE32<Aes256Gcm>>,
    aad: Vec<u8>,
    buf: Vec<u8>,
}

impl<W: Write> SealedWriter<W> {
    /// Start sealing the object `identity` into `out`.
    pub fn new(ring: &Keyring, identity: &str, mut out: W) -> io::Result<Self> {
        let (header, dek) = Header::new(ring, STREAM, identity);
        let mut prefix = [0u8; 7];
        random(&mut prefix);
        let mut head = Vec::with_capacity(header.len() + 11);
        header.write(&mut head);
        head.extend_from_slice(&prefix);
        head.extend_from_slice(&(CHUNK as u32).to_be_bytes());
        out.write_all(&head)?;
        let aead = cipher(&dek);
        Ok(SealedWriter {
            out,
            enc: Some(EncryptorBE32::from_aead(aead, &prefix.into())),
            aad: data_aad(identity),
            buf: Vec::with_capacity(CHUNK + TAG),
        })
    }

    /// Seal the full chunk in `buf` and write it out. A chunk is sealed only once more data
    /// follows it: the last one is sealed by `finish`.
    fn seal_chunk(&mut self) -> io::Result<()> {
        let enc = self.enc.as_mut().expect("not finished");
        enc.encrypt_next_in_place(&self.aad, &mut self.buf)
            .map_err(|_| io::Error::other("the stream is too long to seal (2^32 chunks)"))?;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Seal the last chunk and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let enc = self.enc.take().expect("finish once");
        enc.encrypt_last_in_place(&self.aad, &mut self.buf)
            .map_err(|_| io::Error::other("cannot seal the last chunk"))?;
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for SealedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            if self.buf.len() == CHUNK {
                self.seal_chunk()?;
            }
            let take = (CHUNK - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads a sealed stream, failing (as `io::ErrorKind::InvalidData` wrapping a
/// [`CryptoError`]) at the first chunk that does not authenticate.
pub struct SealedReader<R: Read> {
    input: R,
    dec: Option<DecryptorBE32<Aes256Gcm>>,
    aad: Vec<u8>,
    what: String,
    chunk: usize,
    /// Ciphertext read but not yet opened (up to one chunk + tag + one lookahead byte).
    raw: Vec<u8>,
    /// Plaintext opened but not yet returned.
    plain: Vec<u8>,
    pos: usize,
    index: u64,
    eof: bool,
}

fn invalid(e: CryptoError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<R: Read> SealedReader<R> {
    /// Open the sealed object `identity` read from `input`.
    pub fn new(ring: &Keyring, identity: &str, mut input: R) -> Result<Self, CryptoError> {
        let io_err = |source| CryptoError::Io {
            what: format!("reading {identity}"),
            source,
        };
        // The header has a variable-length key id: read its fixed start, then the rest.
        let mut head = vec![0u8; 6];
        read_full(&mut input, &mut head).map_err(io_err)?;
        let id_len = head[5] as usize;
        head.resize(6 + id_len + 12 + 48 + 7 + 4, 0);
        let got = read_full(&mut input, &mut head[6..]).map_err(io_err)?;
        head.truncate(6 + got);
        let (header, at) = Header::parse(&head, STREAM, identity)?;
        if head.len() < at + 11 {
            return Err(CryptoError::Format {
                what: identity.into(),
                reason: "its header is cut short".into(),
            });
        }
        let dek = header.unwrap_key(ring, identity)?;
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&head[at..at + 7]);
        let chunk = u32::from_be_bytes(head[at + 7..at + 11].try_into().expect("4 bytes")) as usize;
        if chunk == 0 || chunk > 16 << 20 {
            return Err(CryptoError::Format {
                what: identity.into(),
                reason: format!("chunk size {chunk} is out of range"),
            });
        }
        let aead = cipher(&dek);
        Ok(SealedReader {
            input,
            dec: Some(DecryptorBE32::from_aead(aead, &prefix.into())),
            aad: data_aad(identity),
            what: identity.to_string(),
            chunk,
            raw: Vec::with_capacity(chunk + TAG + 1),
            plain: Vec::new(),
            pos: 0,
            index: 0,
            eof: false,
        })
    }

    /// Open the next chunk into `plain`. Returns false at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        let Some(dec) = self.dec.as_mut() else {
            return Ok(false);
        };
        let want = self.chunk + TAG + 1;
        let have = self.raw.len();
        self.raw.resize(want, 0);
        let got = read_full(&mut self.input, &mut self.raw[have..])?;
        self.raw.truncate(have + got);
        let tampered = |index: u64, what: &str, truncated: bool| {
            invalid(CryptoError::Tampered {
                what: what.to_string(),
                at: if truncated {
                    format!(" at chunk {index} (the stream ends early)")
                } else {
                    format!(" at chunk {index}")
                },
            })
        };
        let index = self.index;
        self.index += 1;
        if self.raw.len() == want {
            // More follows this chunk: it must not be the last.
            // Keep the lookahead byte, open the chunk in place, and reuse the spent plaintext
            // buffer for the next chunk's ciphertext (no allocation per chunk).
            let lookahead = self.raw.pop().expect("want > 0");
            dec.decrypt_next_in_place(&self.aad, &mut self.raw)
                .map_err(|_| tampered(index, &self.what, false))?;
            std::mem::swap(&mut self.plain, &mut self.raw);
            self.raw.clear();
            self.raw.push(lookahead);
        } else {
            // The end of the input: this chunk must be the one sealed as last.
            let dec = self.dec.take().expect("checked above");
            let mut last = std::mem::take(&mut self.raw);
            dec.decrypt_last_in_place(&self.aad, &mut last)
                .map_err(|_| tampered(index, &self.what, true))?;
            self.plain = last;
            self.eof = true;
        }
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> Read for SealedReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.eof || !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Read until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Seal `data` as a whole stream (tests and benchmarks).
pub fn seal_all(ring: &Keyring, identity: &str, data: &[u8]) -> Vec<u8> {
    let chunks = data.len() / CHUNK + 1;
    let out = Vec::with_capacity(data.len() + chunks * TAG + 128);
    let mut w = SealedWriter::new(ring, identity, out).expect("writing to memory");
    w.write_all(data).expect("writing to memory");
    w.finish().expect("writing to memory")
}

/// Open a whole sealed stream.
pub fn open_all(ring: &Keyring, identity: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut r = SealedReader::new(ring, identity, sealed)?;
    let mut out = Vec::with_capacity(sealed.len());
    r.read_to_end(&mut out).map_err(|e| match e.into_inner() {
        Some(inner) => match inner.downcast::<CryptoError>() {
            Ok(c) => *c,
            Err(other) => CryptoError::Io {
                what: identity.to_string(),
                source: io::Error::other(other),
            },
        },
        None => CryptoError::Io {
            what: identity.to_string(),
            source: io::Error::other("read failed"),
        },
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> (tempfile::TempDir, Keyring) {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open_file(&dir.path().join("k.json")).unwrap();
        (dir, ring)
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Where chunk `i` starts in a sealed stream.
    fn chunk_at(sealed: &[u8], i: usize) -> usize {
        let (h, at) = Header::parse(sealed, STREAM, "x").unwrap();
        drop(h);
        at + 11 + i * (CHUNK + TAG)
    }

    #[test]
    fn round_trips_at_every_boundary() {
        let (_d, ring) = ring();
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7] {
            let plain = data(n);
            let sealed = seal_all(&ring, "staging/run-1", &plain);
            assert_eq!(
                open_all(&ring, "staging/run-1", &sealed).unwrap(),
                plain,
                "{n}"
            );
        }
    }

    #[test]
    fn flipped_truncated_swapped_moved_and_wrong_key_are_each_refused() {
        let (_d, ring) = ring();
        let plain = data(3 * CHUNK + 100);
        let sealed = seal_all(&ring, "staging/run-1", &plain);
        let msg = |r: Result<Vec<u8>, CryptoError>| r.unwrap_err().to_string();

        let mut flipped = sealed.clone();
        flipped[chunk_at(&sealed, 1) + 5] ^= 0x80;
        let e = msg(open_all(&ring, "staging/run-1", &flipped));
        assert!(e.contains("failed authentication at chunk 1"), "{e}");

        // Cut at a chunk boundary: every remaining chunk is intact, but the last is missing.
        let cut = &sealed[..chunk_at(&sealed, 2)];
        let e = msg(open_all(&ring, "staging/run-1", cut));
        assert!(e.contains("chunk 1 (the stream ends early)"), "{e}");
        let e = msg(open_all(
            &ring,
            "staging/run-1",
            &sealed[..sealed.len() - 3],
        ));
        assert!(e.contains("at chunk 3"), "{e}");

        let mut swapped = sealed.clone();
        let (a, b) = (chunk_at(&sealed, 0), chunk_at(&sealed, 1));
        let first = sealed[a..b].to_vec();
        let second = sealed[b..b + (b - a)].to_vec();
        swapped[a..b].copy_from_slice(&second);
        swapped[b..b + (b - a)].copy_from_slice(&first);
        let e = msg(open_all(&ring, "staging/run-1", &swapped));
        assert!(e.contains("at chunk 0"), "{e}");

        let e = msg(open_all(&ring, "staging/run-2", &sealed));
        assert!(e.contains("failed authentication"), "{e}");

        let other = Keyring::generate(super::super::KeyringSource::Env);
        let e = msg(open_all(&other, "staging/run-1", &sealed));
        assert!(e.contains("its data key"), "{e}");
    }

    #[test]
    fn a_rewrapped_stream_still_opens() {
        let (_d, mut ring) = ring();
        let plain = data(CHUNK + 9);
        let sealed = seal_all(&ring, "samples/run-1", &plain);
        ring.rotate().unwrap();
        let moved = super::super::rewrap(&ring, "samples/run-1", &sealed)
            .unwrap()
            .unwrap();
        assert_eq!(open_all(&ring, "samples/run-1", &moved).unwrap(), plain);
        assert_eq!(open_all(&ring, "samples/run-1", &sealed).unwrap(), plain);
    }
}
