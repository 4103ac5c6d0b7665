//! The signature on webhook deliveries, Stripe-style:
//! `Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "{t}.{raw body}")>`, with one
//! `v1` per valid secret (two during a rotation's grace). A receiver accepts a delivery when
//! `t` is within its tolerance (5 minutes is usual) of its clock and any `v1` matches, compared
//! in constant time. [`verify`] is that check, for receivers written in Rust and for tests.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The header carrying the signature.
pub const HEADER: &str = "sluice-signature";
/// The header carrying the delivery's id (the same on every retry: deduplicate on it).
pub const DELIVERY: &str = "sluice-delivery";
/// The header carrying the event type.
pub const EVENT: &str = "sluice-event";
/// How far from its clock a receiver should accept `t` (what the docs recommend).
pub const TOLERANCE: Duration = Duration::from_secs(300);

fn mac(secret: &[u8], t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `t` (unix seconds), signed with each of `secrets`.
pub fn header(secrets: &[SecretString], t: i64, body: &[u8]) -> String {
    let mut value = format!("t={t}");
    for s in secrets {
        let sig = mac(s.expose_secret().as_bytes(), t, body).finalize();
        value.push_str(",v1=");
        value.push_str(&hex::encode(sig.into_bytes()));
    }
    value
}

/// Why a delivery does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No `t=` or no `v1=`, or one that does not parse.
    #[error("malformed signature header")]
    Malformed,
    /// `t` is outside the tolerance.
    #[error("timestamp outside the tolerance")]
    Stale,
    /// No `v1` matches the secret.
    #[error("no signature matches")]
    Wrong,
}

/// Check a `Sluice-Signature` header against `body` and `secret`, at `now` (unix seconds).
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &str,
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| VerifyError::Malformed)?),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            // Other schemes (a future v2) are ignored, as Stripe's are.
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if sigs.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if now.abs_diff(t) > tolerance.as_secs() {
        return Err(VerifyError::Stale);
    }
    let expected = mac(secret.as_bytes(), t, body);
    // `verify_slice` compares in constant time.
    if sigs
        .iter()
        .any(|sig| expected.clone().verify_slice(sig).is_ok())
    {
        Ok(())
    } else {
        Err(VerifyError::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn a_signature_verifies_with_each_secret_it_was_made_with_and_no_other() {
        let body = br#"{"type":"run.succeeded"}"#;
        let h = header(
            &[secret("whsec_new"), secret("whsec_old")],
            1_700_000_000,
            body,
        );
        assert_eq!(h.matches(",v1=").count(), 2, "{h}");
        for s in ["whsec_new", "whsec_old"] {
            assert_eq!(verify(&h, body, s, 1_700_000_100, TOLERANCE), Ok(()));
        }
        assert_eq!(
            verify(&h, body, "whsec_other", 1_700_000_000, TOLERANCE),
            Err(VerifyError::Wrong)
        );
        let tampered = br#"{"type":"run.failed"}"#;
        assert_eq!(
            verify(&h, tampered, "whsec_new", 1_700_000_000, TOLERANCE),
            Err(VerifyError::Wrong)
        );
    }

    #[test]
    fn the_timestamp_is_signed_and_checked_against_the_tolerance() {
        let body = b"{}";
        let h = header(&[secret("whsec_a")], 1_700_000_000, body);
        assert_eq!(
            verify(&h, body, "whsec_a", 1_700_000_301, TOLERANCE),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(&h, body, "whsec_a", 1_699_999_699, TOLERANCE),
            Err(VerifyError::Stale)
        );
        // A replay with a fresh `t` on an old signature does not match.
        let moved = h.replace("t=1700000000", "t=1700000200");
        assert_eq!(
            verify(&moved, body, "whsec_a", 1_700_000_200, TOLERANCE),
            Err(VerifyError::Wrong)
        );
        for bad in [
            "",
            "v1=00",
            "t=1700000000",
            "t=x,v1=00",
            "t=1700000000,v1=zz",
        ] {
            assert_eq!(
                verify(bad, body, "whsec_a", 1_700_000_000, TOLERANCE),
                Err(VerifyError::Malformed),
                "{bad:?}"
            );
        }
    }
}
