//! The tamper-evident audit log: who did what, to what, with what outcome. Append-only; each
//! entry carries the SHA-256 of the one before, and every so often the host signs a digest
//! (ed25519) of the chain so far that also covers the previous digest's signature (the
//! CloudTrail idea): an edited, deleted, inserted or reordered entry breaks the chain, and a
//! chain rewritten from that point on no longer matches a signed digest.
//!
//! This module is the format and the checks; the store keeps the rows.

use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Sign a digest once this many entries are unsigned…
pub const DIGEST_EVERY_ENTRIES: i64 = 100;
/// …or once the oldest unsigned entry is this old (checked as entries are appended).
pub const DIGEST_EVERY_SECS: i64 = 300;

/// What happened, as a caller records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    /// Who: `cli:alice`, `run:42`, `api:key_3f…`.
    pub actor: String,
    /// What: `run.started`, `capability.refused`, `key.rotated`…
    pub action: String,
    /// To what: `connection/users-to-file`, `secret/github-token`.
    pub resource: String,
    /// `ok`, `refused`, `failed`.
    pub outcome: String,
    /// Where the request came from, when there is one.
    pub source_ip: Option<String>,
    /// More, as JSON: counts, reasons, digests. Never secret or record values.
    pub details: serde_json::Value,
}

impl NewEntry {
    /// An entry with no source IP.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
        outcome: impl Into<String>,
        details: serde_json::Value,
    ) -> NewEntry {
        NewEntry {
            actor: actor.into(),
            action: action.into(),
            resource: resource.into(),
            outcome: outcome.into(),
            source_ip: None,
            details,
        }
    }
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AuditEntry)]
pub struct Entry {
    /// Position in the log, from 1.
    pub seq: i64,
    /// RFC 3339.
    pub at: String,
    /// See [`NewEntry::actor`].
    pub actor: String,
    /// See [`NewEntry::action`].
    pub action: String,
    /// See [`NewEntry::resource`].
    pub resource: String,
    /// See [`NewEntry::outcome`].
    pub outcome: String,
    /// See [`NewEntry::source_ip`].
    pub source_ip: Option<String>,
    /// JSON text.
    pub details: String,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 of this entry's fields and `prev_hash`, hex.
    pub hash: String,
}

impl Entry {
    /// The hash this entry should carry.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::to_vec(&(
            "sluice-audit/v1",
            self.seq,
            &self.at,
            &self.actor,
            &self.action,
            &self.resource,
            &self.outcome,
            &self.source_ip,
            &self.details,
            &self.prev_hash,
        ))
        .expect("a tuple of strings serializes");
        hex::encode(Sha256::digest(&canonical))
    }
}

/// A signed digest as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDigest {
    /// Position among digests, from 1.
    pub seq: i64,
    /// RFC 3339.
    pub at: String,
    /// The last entry it covers.
    pub last_seq: i64,
    /// That entry's hash.
    pub last_hash: String,
    /// The previous digest's signature (empty for the first).
    pub prev_signature: String,
    /// The signing key's id in the keyring.
    pub key_id: String,
    /// The public key, hex (informational: verification uses the keyring's key).
    pub public_key: String,
    /// The ed25519 signature, hex.
    pub signature: String,
}

impl SignedDigest {
    fn message(&self) -> Vec<u8> {
        format!(
            "sluice-audit-digest/v1\n{}\n{}\n{}\n{}\n{}\n{}",
            self.seq, self.at, self.last_seq, self.last_hash, self.prev_signature, self.key_id
        )
        .into_bytes()
    }

    /// A digest over the chain up to `last`, following `prev`, signed with `key`.
    pub fn sign(
        seq: i64,
        at: String,
        last: &Entry,
        prev_signature: &str,
        key_id: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> SignedDigest {
        let mut d = SignedDigest {
            seq,
            at,
            last_seq: last.seq,
            last_hash: last.hash.clone(),
            prev_signature: prev_signature.to_string(),
            key_id: key_id.to_string(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            signature: String::new(),
        };
        d.signature = hex::encode(key.sign(&d.message()).to_bytes());
        d
    }

    fn verify(&self, key: &VerifyingKey) -> bool {
        let Ok(bytes) = hex::decode(&self.signature) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&bytes) else {
            return false;
        };
        key.verify(&self.message(), &sig).is_ok()
    }
}

/// The file beside the keyring holding the newest signed digest: the audit log's high-water
/// mark, kept outside the database so that deleting the newest entries and digests there is
/// seen.
pub const ANCHOR_FILE: &str = "audit-anchor.json";

/// Check the database's digests against the anchor (the newest digest ever signed, as kept
/// outside the database): the anchor must be validly signed and be among `digests`, unchanged,
/// and the log must not end before it. The problem, when there is one.
pub fn check_anchor(
    anchor: &SignedDigest,
    digests: &[SignedDigest],
    last_entry: Option<i64>,
    key: &VerifyingKey,
) -> Option<String> {
    if !anchor.verify(key) {
        return Some(format!(
            "the audit anchor ({ANCHOR_FILE}) is not signed by the keyring's audit key"
        ));
    }
    match digests.iter().find(|d| d.seq == anchor.seq) {
        None => Some(format!(
            "digest {} (covering entries up to {}) was signed but is missing from the database:              the newest digests and entries were deleted",
            anchor.seq, anchor.last_seq
        )),
        Some(d) if d != anchor => Some(format!(
            "digest {} differs from the one signed when it was written",
            anchor.seq
        )),
        Some(_) if last_entry.is_some_and(|l| l < anchor.last_seq) => Some(format!(
            "the log ends at entry {} but entry {} was signed: the newest entries were deleted",
            last_entry.unwrap_or_default(),
            anchor.last_seq
        )),
        Some(_) => None,
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Entries checked.
    pub entries: u64,
    /// Digests checked.
    pub digests: u64,
    /// Entries after the last digest (chained, not yet signed).
    pub unsigned: u64,
    /// The first problem, naming the entry (or digest); `None` when the log is intact.
    pub problem: Option<String>,
}

impl Verification {
    /// Whether the log is intact.
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Check `entries` (ordered by seq) and `digests` (ordered by seq) against the signing key.
///
/// The first entry may follow purged ones: its `prev_hash` must then be the hash a signed
/// digest recorded for the entry before it.
pub fn verify(entries: &[Entry], digests: &[SignedDigest], key: &VerifyingKey) -> Verification {
    let mut v = Verification {
        entries: entries.len() as u64,
        digests: digests.len() as u64,
        unsigned: 0,
        problem: None,
    };
    let problem = check(entries, digests, key);
    v.unsigned = entries
        .iter()
        .filter(|e| digests.last().is_none_or(|d| e.seq > d.last_seq))
        .count() as u64;
    v.problem = problem;
    v
}

fn check(entries: &[Entry], digests: &[SignedDigest], key: &VerifyingKey) -> Option<String> {
    // Digests first: each signed by our key, chained to the one before, numbered in order.
    let mut prev_sig = "";
    for (i, d) in digests.iter().enumerate() {
        if d.seq != i as i64 + 1 {
            return Some(format!(
                "digest {} is missing: the digests go from {} to {}",
                i + 1,
                if i == 0 { 0 } else { digests[i - 1].seq },
                d.seq
            ));
        }
        if !d.verify(key) {
            return Some(format!(
                "digest {} (covering entries up to {}) does not carry a valid signature from \
                 this keyring's audit key",
                d.seq, d.last_seq
            ));
        }
        if d.prev_signature != prev_sig {
            return Some(format!(
                "digest {} does not follow digest {}: a digest was removed or replaced",
                d.seq,
                d.seq - 1
            ));
        }
        prev_sig = &d.signature;
    }

    let Some(first) = entries.first() else {
        return digests.last().map(|d| {
            format!(
                "the log is empty but digest {} covers entries up to {}: entries were deleted",
                d.seq, d.last_seq
            )
        });
    };
    let mut prev_hash = if first.seq == 1 {
        GENESIS.to_string()
    } else {
        // Purged up to an anchor: a signed digest must vouch for where the log now starts.
        match digests.iter().find(|d| d.last_seq == first.seq - 1) {
            Some(d) => d.last_hash.clone(),
            None => {
                return Some(format!(
                    "the log starts at entry {} and no signed digest ends at entry {}: \
                     entries 1 to {} were deleted",
                    first.seq,
                    first.seq - 1,
                    first.seq - 1
                ));
            }
        }
    };
    let mut expected = first.seq;
    let mut next_digest = digests
        .iter()
        .skip_while(|d| d.last_seq < first.seq)
        .peekable();
    for e in entries {
        if e.seq != expected {
            return Some(format!(
                "entry {expected} is missing (the next entry is {}): entries were deleted",
                e.seq
            ));
        }
        if e.prev_hash != prev_hash {
            return Some(format!(
                "entry {} does not follow entry {}: an entry was inserted, deleted or moved \
                 here",
                e.seq,
                e.seq - 1
            ));
        }
        if e.compute_hash() != e.hash {
            return Some(format!(
                "entry {} was edited: its contents no longer match its hash",
                e.seq
            ));
        }
        while let Some(d) = next_digest.peek() {
            if d.last_seq != e.seq {
                break;
            }
            if d.last_hash != e.hash {
                return Some(format!(
                    "signed digest {} vouches for a different entry {}: entries up to {} were \
                     rewritten after they were signed",
                    d.seq, e.seq, e.seq
                ));
            }
            next_digest.next();
        }
        prev_hash = e.hash.clone();
        expected += 1;
    }
    if let Some(d) = next_digest.next() {
        return Some(format!(
            "signed digest {} covers entries up to {}, but the log ends at entry {}: entries \
             were deleted",
            d.seq,
            d.last_seq,
            expected - 1
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for seq in 1..=n {
            let mut e = Entry {
                seq,
                at: format!("2026-11-23T10:00:{seq:02}Z"),
                actor: "cli:test".into(),
                action: "run.started".into(),
                resource: format!("connection/c{seq}"),
                outcome: "ok".into(),
                source_ip: None,
                details: "{}".into(),
                prev_hash: out.last().map_or(GENESIS.to_string(), |p| p.hash.clone()),
                hash: String::new(),
            };
            e.hash = e.compute_hash();
            out.push(e);
        }
        out
    }

    #[test]
    fn an_intact_log_verifies_and_a_rehashed_rewrite_is_caught_by_the_digest() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let mut entries = chain(10);
        let d1 = SignedDigest::sign(1, "t".into(), &entries[4], "", "sig-1", &key);
        let d2 = SignedDigest::sign(2, "t".into(), &entries[9], &d1.signature, "sig-1", &key);
        let digests = vec![d1, d2];
        let v = verify(&entries, &digests, &key.verifying_key());
        assert!(v.ok(), "{v:?}");
        assert_eq!((v.entries, v.digests, v.unsigned), (10, 2, 0));

        // Someone who knows the format edits entry 3 and recomputes every hash after it.
        entries[2].outcome = "refused".into();
        for i in 2..entries.len() {
            entries[i].prev_hash = if i == 0 {
                GENESIS.into()
            } else {
                entries[i - 1].hash.clone()
            };
            entries[i].hash = entries[i].compute_hash();
        }
        let v = verify(&entries, &digests, &key.verifying_key());
        assert!(
            v.problem.as_deref().unwrap().contains("digest 1 vouches"),
            "{v:?}"
        );

        // A digest removed.
        let v = verify(&chain(10), &digests[1..], &key.verifying_key());
        assert!(v.problem.unwrap().contains("digest 1 is missing"));
        // Signed by someone else.
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let v = verify(&chain(10), &digests, &other.verifying_key());
        assert!(v.problem.unwrap().contains("valid signature"));
    }
}
