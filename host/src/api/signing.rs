//! Signed requests, for keys that require them: the client sends
//! `X-Sluice-Timestamp: <unix seconds>` and
//! `X-Sluice-Signature: v1=<hex HMAC-SHA256(signing secret, "{ts}.{METHOD}.{path?query}.{body}")>`.
//! A timestamp more than [`TOLERANCE`] away from the server's clock is refused, and so is a
//! signature seen before within that window (a replay).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Method};
use sha2::Sha256;

/// The timestamp header.
pub const TIMESTAMP: &str = "x-sluice-timestamp";
/// The signature header.
pub const SIGNATURE: &str = "x-sluice-signature";
/// How far a signed request's timestamp may be from the server's clock.
pub const TOLERANCE: Duration = Duration::from_secs(300);
/// The largest body a signed request may have (it is read whole to be checked).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// Why a signed request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No timestamp or no signature.
    Missing,
    /// A timestamp or signature that does not parse.
    Malformed,
    /// Outside the tolerance window.
    Stale,
    /// The signature does not match.
    Wrong,
    /// Seen before.
    Replayed,
    /// A body larger than [`MAX_BODY`].
    TooLarge,
}

impl Refusal {
    /// For the audit log.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "unsigned request from a signing key",
            Refusal::Malformed => "malformed signature headers",
            Refusal::Stale => "stale signature timestamp",
            Refusal::Wrong => "wrong signature",
            Refusal::Replayed => "replayed request",
            Refusal::TooLarge => "signed body too large",
        }
    }

    /// For the caller: what to do.
    pub fn message(self) -> String {
        match self {
            Refusal::Missing | Refusal::Malformed => format!(
                "this key's requests must be signed: send `{TIMESTAMP}: <unix seconds>` and \
                 `{SIGNATURE}: v1=<hex HMAC-SHA256 of \"{{timestamp}}.{{METHOD}}.{{path?query}}.{{body}}\">` \
                 (see docs/api.md)"
            ),
            Refusal::Stale => format!(
                "the request's timestamp is more than {}s from the server's clock: sign it \
                 again now (and check the client's clock)",
                TOLERANCE.as_secs()
            ),
            Refusal::Wrong => "the request's signature does not match".to_string(),
            Refusal::Replayed => {
                "this signed request was already received: sign each request anew".to_string()
            }
            Refusal::TooLarge => format!("a signed request's body is at most {MAX_BODY} bytes"),
        }
    }
}

/// What is signed.
pub fn payload(timestamp: &str, method: &Method, path_and_query: &str, body: &[u8]) -> Vec<u8> {
    let mut p = format!("{timestamp}.{method}.{path_and_query}.").into_bytes();
    p.extend_from_slice(body);
    p
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length")
}

/// The `X-Sluice-Signature` value for `payload` (what a client computes).
pub fn sign(secret: &[u8], payload: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(payload);
    format!("v1={}", hex::encode(m.finalize().into_bytes()))
}

/// Signatures seen within the tolerance window, to refuse replays.
#[derive(Debug, Default)]
pub struct Replays(Mutex<HashMap<Vec<u8>, u64>>);

impl Replays {
    /// Record `signature` (valid until `until`, unix seconds); `false` if it was seen.
    fn first_time(&self, signature: &[u8], until: u64, now: u64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= 4096 {
            seen.retain(|_, t| *t >= now);
        }
        seen.insert(signature.to_vec(), until)
            .is_none_or(|t| t < now)
    }
}

/// Check a signed request: headers, clock, signature (in constant time), then replay.
pub fn verify(
    secret: &[u8],
    headers: &HeaderMap,
    method: &Method,
    path_and_query: &str,
    body: &[u8],
    now: u64,
    replays: &Replays,
) -> Result<(), Refusal> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(ts), Some(sig)) = (header(TIMESTAMP), header(SIGNATURE)) else {
        return Err(Refusal::Missing);
    };
    let at: u64 = ts.trim().parse().map_err(|_| Refusal::Malformed)?;
    if at.abs_diff(now) > TOLERANCE.as_secs() {
        return Err(Refusal::Stale);
    }
    let given = sig
        .trim()
        .strip_prefix("v1=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(Refusal::Malformed)?;
    let mut m = mac(secret);
    m.update(&payload(ts.trim(), method, path_and_query, body));
    m.verify_slice(&given).map_err(|_| Refusal::Wrong)?;
    if !replays.first_time(&given, at + TOLERANCE.as_secs(), now) {
        return Err(Refusal::Replayed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP, ts.parse().unwrap());
        h.insert(SIGNATURE, sig.parse().unwrap());
        h
    }

    #[test]
    fn a_signature_is_accepted_once_within_the_window_and_refused_otherwise() {
        let secret = b"sluice_sig_test";
        let now = 1_800_000_000u64;
        let ts = now.to_string();
        let body = br#"{"a":1}"#;
        let good = sign(secret, &payload(&ts, &Method::POST, "/v1/x?y=1", body));
        let replays = Replays::default();
        let check = |h: &HeaderMap, path: &str, body: &[u8], at: u64| {
            verify(secret, h, &Method::POST, path, body, at, &replays)
        };
        assert_eq!(check(&headers(&ts, &good), "/v1/x?y=1", body, now), Ok(()));
        assert_eq!(
            check(&headers(&ts, &good), "/v1/x?y=1", body, now + 1),
            Err(Refusal::Replayed)
        );
        // Anything changed: the body, the path, the query, the key.
        let fresh = Replays::default();
        for (path, b) in [("/v1/x?y=1", &br#"{"a":2}"#[..]), ("/v1/x?y=2", body)] {
            assert_eq!(
                verify(
                    secret,
                    &headers(&ts, &good),
                    &Method::POST,
                    path,
                    b,
                    now,
                    &fresh
                ),
                Err(Refusal::Wrong)
            );
        }
        let other = sign(b"other", &payload(&ts, &Method::POST, "/v1/x?y=1", body));
        assert_eq!(
            verify(
                secret,
                &headers(&ts, &other),
                &Method::POST,
                "/v1/x?y=1",
                body,
                now,
                &fresh
            ),
            Err(Refusal::Wrong)
        );
        // The clock: inside the tolerance on both sides, not beyond.
        let tol = TOLERANCE.as_secs();
        for (at, ok) in [
            (now - tol, true),
            (now + tol, true),
            (now - tol - 1, false),
            (now + tol + 1, false),
        ] {
            let ts = at.to_string();
            let sig = sign(secret, &payload(&ts, &Method::GET, "/", b""));
            let got = verify(
                secret,
                &headers(&ts, &sig),
                &Method::GET,
                "/",
                b"",
                now,
                &Replays::default(),
            );
            assert_eq!(got.is_ok(), ok, "{at}: {got:?}");
            if !ok {
                assert_eq!(got, Err(Refusal::Stale));
            }
        }
        assert_eq!(
            verify(
                secret,
                &HeaderMap::new(),
                &Method::GET,
                "/",
                b"",
                now,
                &fresh
            ),
            Err(Refusal::Missing)
        );
        assert_eq!(
            verify(
                secret,
                &headers("yesterday", &good),
                &Method::GET,
                "/",
                b"",
                now,
                &fresh
            ),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            verify(
                secret,
                &headers(&ts, "v1=zz"),
                &Method::GET,
                "/",
                b"",
                now,
                &fresh
            ),
            Err(Refusal::Malformed)
        );
    }
}
