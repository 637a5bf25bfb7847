//! The signed-webhook scheme of GoodGo's payment events, shared by the one who signs (the
//! CLI's `goodgo api webhook send`, the tests, the benchmarks) and the one who checks (the
//! API's provider-neutral payment adapter), so both sides are the same code.
//!
//! It is the de facto standard scheme (Stripe's): a `GoodGo-Signature` header
//! `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">` over the raw body, several `v1` while
//! secrets rotate, checked against every active secret with a constant-time comparison and a
//! tolerance window against replays. Events use the common envelope
//! `{"id", "type", "created", "data": {"object": {"reference"}}}`.
//!
//! No I/O: signing and checking are pure functions of their inputs.

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// The header the signature travels in (lower case, as HTTP/2 and axum name it).
pub const SIGNATURE_HEADER: &str = "goodgo-signature";

/// The event types the API acts on; others are acknowledged and ignored.
pub const EVENT_TYPES: &[&str] = &[
    "payment.succeeded",
    "payment.failed",
    "payment.refunded",
    "subscription.renewed",
    "subscription.cancelled",
];

/// Why a delivery is refused. None of them changes any state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the GoodGo-Signature header is missing")]
    Missing,
    #[error("the GoodGo-Signature header is not `t=<unix time>,v1=<hex signature>`")]
    Malformed,
    #[error("no signature matches the body with an active secret")]
    Mismatch,
    #[error(
        "the signature's timestamp is outside the tolerance window; deliveries are not replayable"
    )]
    Expired,
    #[error("webhook signing is not configured on this server (GOODGO_PAYMENTS_WEBHOOK_SECRETS)")]
    NotConfigured,
}

/// The JSON text of an event of type `kind` with id `id`, created at `created` (unix
/// seconds), about the checkout `reference`.
pub fn envelope(id: &str, kind: &str, created: i64, reference: &str) -> String {
    serde_json::json!({
        "id": id,
        "type": kind,
        "created": created,
        "data": {"object": {"reference": reference}},
    })
    .to_string()
}

/// The header value for `body` signed with `secret` at `t` (what a provider sends).
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex_tag(secret, t, body))
}

/// Lower-case hex of HMAC-SHA256(secret, "t.body").
fn hex_tag(secret: &[u8], t: i64, body: &[u8]) -> String {
    use std::fmt::Write as _;
    // HMAC accepts keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for b in tag.iter() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The comparison of a computed signature with a presented one: constant time in where they
/// differ (`subtle`), so the time taken tells an attacker nothing about how many leading
/// characters were right. Lengths are public (always 64 hex characters).
pub fn tags_match(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len() && bool::from(expected.ct_eq(given))
}

/// `t` and every `v1` of a signature header; other schemes (`v0`, …) are skipped.
fn parse_header(header: &str) -> Result<(i64, Vec<&str>), SignatureError> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => v1.push(v),
            _ => {}
        }
    }
    match t {
        Some(t) if !v1.is_empty() && v1.len() <= 8 => Ok((t, v1)),
        _ => Err(SignatureError::Malformed),
    }
}

/// Checks a delivery's `header` over the raw `body` at `now` (unix seconds) against every
/// secret of `secrets` (newest first), allowing `tolerance_s` seconds between the signed
/// time and now, either way.
pub fn verify(
    secrets: &[Vec<u8>],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NotConfigured);
    }
    let (t, candidates) = parse_header(header.ok_or(SignatureError::Missing)?)?;
    // Every secret and every candidate is checked (no early exit on a match either), so
    // the time does not tell which secret matched.
    let mut matched = false;
    for secret in secrets {
        let expected = hex_tag(secret, t, body);
        for candidate in &candidates {
            matched |= tags_match(expected.as_bytes(), candidate.as_bytes());
        }
    }
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if now.abs_diff(t) > tolerance_s.unsigned_abs() {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_900_000_000;

    fn secrets() -> Vec<Vec<u8>> {
        vec![
            b"newest-secret-0123456789abcdefXYZ".to_vec(),
            b"older-secret-0123456789abcdefXYZ".to_vec(),
        ]
    }

    fn check(header: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError> {
        verify(&secrets(), header, body, now, 300)
    }

    #[test]
    fn signatures_verify_with_any_active_secret() {
        let body = br#"{"id":"evt_1"}"#;
        for secret in &secrets() {
            let h = sign(secret, NOW, body);
            assert_eq!(check(Some(&h), body, NOW), Ok(()));
        }
        // A header with an old-secret and a new-secret signature (rotation) passes too.
        let h = format!(
            "t={NOW},v1={},v1={}",
            hex_tag(b"retired-secret-0123456789abcdefXYZ", NOW, body),
            hex_tag(&secrets()[0], NOW, body)
        );
        assert_eq!(check(Some(&h), body, NOW), Ok(()));
    }

    #[test]
    fn wrong_secret_altered_body_old_or_malformed_are_refused() {
        let body = br#"{"id":"evt_1"}"#;
        let wrong = sign(b"another-secret-0123456789abcdefXYZ", NOW, body);
        assert_eq!(
            check(Some(&wrong), body, NOW),
            Err(SignatureError::Mismatch)
        );
        let good = sign(&secrets()[0], NOW, body);
        assert_eq!(
            check(Some(&good), br#"{"id":"evt_2"}"#, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Some(&good), body, NOW + 301),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            check(Some(&good), body, NOW - 301),
            Err(SignatureError::Expired)
        );
        assert_eq!(check(Some(&good), body, NOW + 300), Ok(()));
        // The timestamp is signed: moving it breaks the signature.
        let moved = good.replacen(&format!("t={NOW}"), &format!("t={}", NOW + 60), 1);
        assert_eq!(
            check(Some(&moved), body, NOW),
            Err(SignatureError::Mismatch)
        );
        for bad in ["", "t=1", "v1=ab", "t=x,v1=ab", "garbage"] {
            assert_eq!(
                check(Some(bad), body, NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(check(None, body, NOW), Err(SignatureError::Missing));
        assert_eq!(
            verify(&[], Some(&good), body, NOW, 300),
            Err(SignatureError::NotConfigured)
        );
        // Extreme timestamps are refused, not overflowed.
        let far = sign(&secrets()[0], i64::MIN, body);
        assert_eq!(
            check(Some(&far), body, i64::MAX),
            Err(SignatureError::Expired)
        );
    }

    /// HMAC-SHA256 of `message` under `key` in hex, computed in one piece.
    fn hmac_hex(key: &[u8], message: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        mac.update(message);
        let tag = mac.finalize().into_bytes();
        tag.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_tag_is_hmac_sha256_of_t_dot_body_in_hex() {
        // The widely published HMAC-SHA256 test vector.
        let fox = b"The quick brown fox jumps over the lazy dog";
        assert_eq!(
            hmac_hex(b"key", fox),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        // Signing at t = 1 is HMAC over "1." followed by the body.
        let header = sign(b"key", 1, fox);
        let whole = hmac_hex(b"key", &[b"1.".as_slice(), fox].concat());
        assert_eq!(header, format!("t=1,v1={whole}"));
    }

    #[test]
    fn the_envelope_is_the_common_shape() {
        let body = envelope("evt_1", "payment.succeeded", 7, "chk_\"x");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(v["id"], "evt_1");
        assert_eq!(v["type"], "payment.succeeded");
        assert_eq!(v["created"], 7);
        assert_eq!(v["data"]["object"]["reference"], "chk_\"x");
    }
}
