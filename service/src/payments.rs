//! Payment providers behind one trait. The provider-neutral default signs its webhooks the
//! way the de facto standard does (Stripe's scheme): a `GoodGo-Signature` header
//! `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`, over the raw body, with several active
//! secrets (newest first, for rotation) and a tolerance window against replays. A real
//! provider is one more implementation of [`PaymentProvider`].

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// The header the signature arrives in.
pub const SIGNATURE_HEADER: &str = "goodgo-signature";

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

/// An event in the common envelope: `{"id", "type", "created", "data": {"object": {…}}}`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct Event {
    /// The provider's event id, e.g. `evt_…`: an event is applied once, whatever the deliveries.
    pub id: String,
    /// payment.succeeded, payment.failed, payment.refunded, subscription.renewed or
    /// subscription.cancelled (others are acknowledged and ignored).
    #[serde(rename = "type")]
    pub kind: String,
    /// When the provider created the event (unix seconds).
    pub created: i64,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct EventData {
    pub object: EventObject,
}

/// What the event is about: the checkout it settles, by the reference `POST /v1/checkout`
/// answered.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct EventObject {
    pub reference: String,
}

/// A payment provider: its name (stored with payments and events), how it verifies a
/// webhook delivery, and where a checkout is paid.
pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Checks a delivery's signature over the raw body at `now` (unix seconds).
    fn verify(&self, signature: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError>;
    /// Where the payer completes a checkout, if the provider hosts a page for it.
    fn checkout_url(&self, reference: &str) -> Option<String>;
}

/// The provider-neutral default.
pub struct SignedWebhooks {
    secrets: Vec<Vec<u8>>,
    tolerance_s: i64,
}

impl SignedWebhooks {
    pub fn new(secrets: Vec<Vec<u8>>, tolerance_s: i64) -> SignedWebhooks {
        SignedWebhooks {
            secrets,
            tolerance_s,
        }
    }

    /// The header value for `body` signed with `secret` at `t` (what a provider sends; the
    /// CLI's `goodgo api webhook send` and the tests sign the same way).
    pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
        format!("t={t},v1={}", hex_tag(secret, t, body))
    }
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

impl PaymentProvider for SignedWebhooks {
    fn name(&self) -> &'static str {
        "goodgo"
    }

    fn verify(&self, signature: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError> {
        if self.secrets.is_empty() {
            return Err(SignatureError::NotConfigured);
        }
        let (t, candidates) = parse_header(signature.ok_or(SignatureError::Missing)?)?;
        // Every secret and every candidate is checked (no early exit on a match either), so
        // the time does not tell which secret matched.
        let mut matched = false;
        for secret in &self.secrets {
            let expected = hex_tag(secret, t, body);
            for candidate in &candidates {
                matched |= tags_match(expected.as_bytes(), candidate.as_bytes());
            }
        }
        if !matched {
            return Err(SignatureError::Mismatch);
        }
        if (now - t).abs() > self.tolerance_s {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }

    fn checkout_url(&self, _reference: &str) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_900_000_000;

    fn provider() -> SignedWebhooks {
        SignedWebhooks::new(
            vec![
                b"newest-secret-0123456789abcdefXYZ".to_vec(),
                b"older-secret-0123456789abcdefXYZ".to_vec(),
            ],
            300,
        )
    }

    #[test]
    fn signatures_verify_with_any_active_secret() {
        let p = provider();
        let body = br#"{"id":"evt_1"}"#;
        for secret in &p.secrets {
            let h = SignedWebhooks::sign(secret, NOW, body);
            assert_eq!(p.verify(Some(&h), body, NOW), Ok(()));
        }
        // A header with an old-secret and a new-secret signature (rotation) passes too.
        let h = format!(
            "t={NOW},v1={},v1={}",
            hex_tag(b"retired-secret-0123456789abcdefXYZ", NOW, body),
            hex_tag(&p.secrets[0], NOW, body)
        );
        assert_eq!(p.verify(Some(&h), body, NOW), Ok(()));
    }

    #[test]
    fn wrong_secret_altered_body_old_or_malformed_are_refused() {
        let p = provider();
        let body = br#"{"id":"evt_1"}"#;
        let wrong = SignedWebhooks::sign(b"another-secret-0123456789abcdefXYZ", NOW, body);
        assert_eq!(
            p.verify(Some(&wrong), body, NOW),
            Err(SignatureError::Mismatch)
        );
        let good = SignedWebhooks::sign(&p.secrets[0], NOW, body);
        assert_eq!(
            p.verify(Some(&good), br#"{"id":"evt_2"}"#, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            p.verify(Some(&good), body, NOW + 301),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            p.verify(Some(&good), body, NOW - 301),
            Err(SignatureError::Expired)
        );
        assert_eq!(p.verify(Some(&good), body, NOW + 300), Ok(()));
        // The timestamp is signed: moving it breaks the signature.
        let moved = good.replacen(&format!("t={NOW}"), &format!("t={}", NOW + 60), 1);
        assert_eq!(
            p.verify(Some(&moved), body, NOW),
            Err(SignatureError::Mismatch)
        );
        for bad in ["", "t=1", "v1=ab", "t=x,v1=ab", "garbage"] {
            assert_eq!(
                p.verify(Some(bad), body, NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(p.verify(None, body, NOW), Err(SignatureError::Missing));
        let none = SignedWebhooks::new(Vec::new(), 300);
        assert_eq!(
            none.verify(Some(&good), body, NOW),
            Err(SignatureError::NotConfigured)
        );
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") from RFC 4231's
        // companion examples, with the timestamp prefix spelled out.
        let tag = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap_or_else(|_| unreachable!());
            mac.update(b"The quick brown fox jumps over the lazy dog");
            mac.finalize().into_bytes()
        };
        assert_eq!(
            tag.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert_eq!(hex_tag(b"key", 1, b"x").len(), 64);
    }
}
