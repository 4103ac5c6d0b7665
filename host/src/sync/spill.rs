//! Spilling: when the destination falls behind, the source need not wait for it. Messages queue
//! in memory up to a segment, then in sealed segment files in the run's staging directory
//! (streaming AES-256-GCM, [`crate::boundary::crypto::stream`]), up to a limit; past the limit
//! the source waits as it would without spilling.
//!
//! Order is kept exactly: the destination gets what is in memory ahead of the disk first, then
//! the segments oldest first, then the newest messages. Each segment is bound to its run,
//! attempt and number, so a segment replaced by another, modified or cut does not open.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::boundary::crypto::stream::{SealedReader, SealedWriter};
use crate::boundary::crypto::{CryptoError, Keyring};
use crate::protocol::{Batch, Message, StreamState};

/// Bytes of messages per segment file.
pub const SEGMENT_BYTES: usize = 4 << 20;

/// Where and how much to spill.
#[derive(Clone)]
pub struct SpillConfig {
    /// The directory segments go to (the run's staging directory).
    pub dir: PathBuf,
    /// Seals the segments.
    pub ring: Arc<Keyring>,
    /// Whose segments these are (`run-ID/attempt-N`); bound into each segment.
    pub identity: String,
    /// Most bytes held back for the destination, in memory and on disk together.
    pub max_bytes: u64,
    /// Bytes per segment file.
    pub segment_bytes: usize,
}

impl std::fmt::Debug for SpillConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillConfig")
            .field("dir", &self.dir)
            .field("identity", &self.identity)
            .field("max_bytes", &self.max_bytes)
            .field("segment_bytes", &self.segment_bytes)
            .finish_non_exhaustive()
    }
}

/// What was spilled.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpillStats {
    /// Segment files written.
    pub segments: u64,
    /// Message bytes that went through them (before sealing).
    pub bytes: u64,
}

/// A segment could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// Writing or reading its file.
    #[error(
        "cannot {op} spill segment {}: {source}; check the free space and permissions of the \
         data dir, or lower `limits.spill_mib`",
        path.display()
    )]
    Io {
        /// `write` or `read`.
        op: &'static str,
        /// The segment file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// It does not open (modified, truncated, replaced) or is not a segment.
    #[error("spill segment {} cannot be used: {source}", path.display())]
    Sealed {
        /// The segment file.
        path: PathBuf,
        /// Why.
        source: CryptoError,
    },
}

fn size(m: &Message) -> u64 {
    match m {
        Message::Batch(b) => (b.stream.len() + b.records.len()) as u64,
        Message::State(s) => (s.stream.len() + s.state.len()) as u64,
    }
}

/// Frame: kind (`b` or `s`), stream length (u32 BE), stream, payload length (u64 BE), payload.
fn frame(m: &Message, out: &mut impl Write) -> std::io::Result<()> {
    let (kind, stream, payload) = match m {
        Message::Batch(b) => (b'b', &b.stream, b.records.as_slice()),
        Message::State(s) => (b's', &s.stream, s.state.as_bytes()),
    };
    out.write_all(&[kind])?;
    out.write_all(&(stream.len() as u32).to_be_bytes())?;
    out.write_all(stream.as_bytes())?;
    out.write_all(&(payload.len() as u64).to_be_bytes())?;
    out.write_all(payload)
}

fn unframe(data: &[u8]) -> Result<Vec<Message>, String> {
    fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if data.len() < n {
            return Err("a message is cut short".into());
        }
        let (head, rest) = data.split_at(n);
        *data = rest;
        Ok(head)
    }
    let mut data = data;
    let mut out = Vec::new();
    while !data.is_empty() {
        let kind = take(&mut data, 1)?[0];
        let n = u32::from_be_bytes(take(&mut data, 4)?.try_into().expect("4 bytes")) as usize;
        let stream = String::from_utf8(take(&mut data, n)?.to_vec())
            .map_err(|_| "a stream name is not UTF-8".to_string())?;
        let n = u64::from_be_bytes(take(&mut data, 8)?.try_into().expect("8 bytes"));
        let payload = take(&mut data, usize::try_from(n).map_err(|_| "too long")?)?.to_vec();
        out.push(match kind {
            b'b' => Message::Batch(Batch {
                stream,
                records: payload,
            }),
            b's' => Message::State(StreamState {
                stream,
                state: String::from_utf8(payload)
                    .map_err(|_| "a checkpoint is not UTF-8".to_string())?,
            }),
            k => return Err(format!("unknown message kind {k:#04x}")),
        });
    }
    Ok(out)
}

struct Segment {
    path: PathBuf,
    identity: String,
    bytes: u64,
}

fn write_segment(ring: &Keyring, seg: &Segment, messages: &[Message]) -> Result<(), SpillError> {
    let io = |source| SpillError::Io {
        op: "write",
        path: seg.path.clone(),
        source,
    };
    let file = create_private(&seg.path).map_err(io)?;
    let mut w = SealedWriter::new(ring, &seg.identity, file).map_err(io)?;
    for m in messages {
        frame(m, &mut w).map_err(io)?;
    }
    w.finish().map_err(io)?;
    Ok(())
}

fn read_segment(ring: &Keyring, seg: &Segment) -> Result<Vec<Message>, SpillError> {
    let io = |source| SpillError::Io {
        op: "read",
        path: seg.path.clone(),
        source,
    };
    let sealed = |source| SpillError::Sealed {
        path: seg.path.clone(),
        source,
    };
    let file = File::open(&seg.path).map_err(io)?;
    let mut r =
        SealedReader::new(ring, &seg.identity, std::io::BufReader::new(file)).map_err(sealed)?;
    let mut data = Vec::with_capacity(seg.bytes as usize + 1024);
    // The reader reports a failed chunk as an I/O error that carries the CryptoError.
    if let Err(e) = r.read_to_end(&mut data) {
        return Err(match e.downcast::<CryptoError>() {
            Ok(c) => sealed(c),
            Err(e) => io(e),
        });
    }
    let _ = std::fs::remove_file(&seg.path);
    unframe(&data).map_err(|reason| {
        sealed(CryptoError::Format {
            what: format!("spill segment {}", seg.path.display()),
            reason,
        })
    })
}

fn create_private(path: &Path) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Sits between the source (`rx`) and the destination (`tx`) until the source is done and
/// everything was handed on, or the destination went away.
pub async fn spool(
    cfg: SpillConfig,
    mut rx: mpsc::Receiver<Message>,
    tx: mpsc::Sender<Message>,
) -> Result<SpillStats, SpillError> {
    let mut stats = SpillStats::default();
    // Oldest first: `front` (ready for the destination), `disk`, `back` (filling a segment).
    let mut front: VecDeque<Message> = VecDeque::new();
    let mut disk: VecDeque<Segment> = VecDeque::new();
    let mut back: Vec<Message> = Vec::new();
    let (mut front_bytes, mut back_bytes, mut disk_bytes) = (0u64, 0u64, 0u64);
    let mut source_done = false;
    let mut next_segment = 0u64;

    loop {
        if front.is_empty() {
            if let Some(seg) = disk.pop_front() {
                let ring = cfg.ring.clone();
                let (seg, messages) = tokio::task::spawn_blocking(move || {
                    let m = read_segment(&ring, &seg);
                    (seg, m)
                })
                .await
                .expect("reading a spill segment does not panic");
                disk_bytes -= seg.bytes;
                front_bytes = seg.bytes;
                front.extend(messages?);
            } else if !back.is_empty() {
                front.extend(back.drain(..));
                front_bytes = std::mem::take(&mut back_bytes);
            }
        }
        if front.is_empty() && source_done {
            return Ok(stats);
        }
        let held = front_bytes + disk_bytes + back_bytes;
        let take = !source_done && held < cfg.max_bytes;
        tokio::select! {
            permit = tx.reserve(), if !front.is_empty() => {
                let Ok(permit) = permit else {
                    // The destination stopped; its error tells the story.
                    return Ok(stats);
                };
                let m = front.pop_front().expect("not empty");
                front_bytes = front_bytes.saturating_sub(size(&m));
                permit.send(m);
            }
            m = rx.recv(), if take => match m {
                None => source_done = true,
                Some(m) => {
                    back_bytes += size(&m);
                    back.push(m);
                    if back_bytes as usize >= cfg.segment_bytes {
                        let seg = Segment {
                            path: cfg.dir.join(format!(
                                "spill-{}-{next_segment:06}.slc",
                                cfg.identity.replace('/', "-")
                            )),
                            identity: format!("spill/{}/{next_segment}", cfg.identity),
                            bytes: back_bytes,
                        };
                        next_segment += 1;
                        let ring = cfg.ring.clone();
                        let messages = std::mem::take(&mut back);
                        let seg = tokio::task::spawn_blocking(move || {
                            write_segment(&ring, &seg, &messages).map(|()| seg)
                        })
                        .await
                        .expect("writing a spill segment does not panic")?;
                        stats.segments += 1;
                        stats.bytes += seg.bytes;
                        disk_bytes += seg.bytes;
                        back_bytes = 0;
                        disk.push_back(seg);
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Arc<Keyring> {
        Arc::new(Keyring::generate(
            crate::boundary::crypto::KeyringSource::Env,
        ))
    }

    fn batch(i: usize) -> Message {
        Message::Batch(Batch {
            stream: "users".into(),
            records: format!("{{\"id\":{i},\"email\":\"person{i}@example.com\"}}\n")
                .repeat(50)
                .into_bytes(),
        })
    }

    fn config(dir: &Path, ring: Arc<Keyring>, max_bytes: u64) -> SpillConfig {
        SpillConfig {
            dir: dir.to_path_buf(),
            ring,
            identity: "run-1/attempt-1".into(),
            max_bytes,
            segment_bytes: 16 << 10,
        }
    }

    fn messages() -> Vec<Message> {
        let mut v = Vec::new();
        for i in 0..200 {
            v.push(batch(i));
            if i % 10 == 9 {
                v.push(Message::State(StreamState {
                    stream: "users".into(),
                    state: format!("{{\"cursor\":{i}}}"),
                }));
            }
        }
        v
    }

    /// The source sends everything before the destination reads anything: all but the last
    /// partial segment goes to disk, sealed, and comes back in order; the files are gone after.
    #[tokio::test]
    async fn a_stalled_destination_gets_everything_in_order_from_sealed_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (src_tx, src_rx) = mpsc::channel(1);
        let (dst_tx, mut dst_rx) = mpsc::channel(1);
        let spooler = tokio::spawn(spool(config(dir.path(), ring(), u64::MAX), src_rx, dst_tx));
        let sent = messages();
        for m in sent.clone() {
            src_tx.send(m).await.unwrap();
        }
        // Let the spooler take the last one, then look at the disk while nothing was read.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(files.len() > 10, "segments on disk: {}", files.len());
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert!(
                !bytes.windows(11).any(|w| w == b"example.com"),
                "{} holds plaintext",
                f.display()
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(f).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "{} is readable by others", f.display());
            }
        }
        drop(src_tx);
        let mut got = Vec::new();
        while let Some(m) = dst_rx.recv().await {
            got.push(m);
        }
        assert_eq!(got, sent);
        let stats = spooler.await.unwrap().unwrap();
        assert_eq!(stats.segments, files.len() as u64);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// Past the limit the source waits instead of filling the disk.
    #[tokio::test]
    async fn the_limit_holds_the_source_back() {
        let dir = tempfile::tempdir().unwrap();
        let (src_tx, src_rx) = mpsc::channel(1);
        let (dst_tx, mut dst_rx) = mpsc::channel(1);
        let limit = 64 << 10;
        tokio::spawn(spool(config(dir.path(), ring(), limit), src_rx, dst_tx));
        let sent = messages();
        let total: u64 = sent.iter().map(size).sum();
        assert!(total > 4 * limit);
        let producer = tokio::spawn(async move {
            for m in sent {
                src_tx.send(m).await.unwrap();
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!producer.is_finished(), "the source was not held back");
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(
            on_disk <= limit + 4096,
            "{on_disk} bytes spilled over a {limit} limit"
        );
        let mut n = 0;
        while dst_rx.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, messages().len());
        producer.await.unwrap();
    }

    /// A segment modified, or replaced by another one, while it waits fails the spool with
    /// the segment's path; nothing after it is handed on.
    #[tokio::test]
    async fn a_tampered_or_swapped_segment_is_refused() {
        for swap in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (src_tx, src_rx) = mpsc::channel(1);
            let (dst_tx, mut dst_rx) = mpsc::channel(1);
            let spooler = tokio::spawn(spool(config(dir.path(), ring(), u64::MAX), src_rx, dst_tx));
            for m in messages() {
                src_tx.send(m).await.unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut files: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            let victim = &files[3];
            if swap {
                std::fs::copy(&files[4], victim).unwrap();
            } else {
                let mut bytes = std::fs::read(victim).unwrap();
                let i = bytes.len() / 2;
                bytes[i] ^= 1;
                std::fs::write(victim, bytes).unwrap();
            }
            drop(src_tx);
            while dst_rx.recv().await.is_some() {}
            let err = spooler.await.unwrap().unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&victim.display().to_string()) && text.contains("authentication"),
                "{text}"
            );
        }
    }
}
