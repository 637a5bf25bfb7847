//! Payment providers behind one trait. The provider-neutral default signs its webhooks the
//! way the de facto standard does (Stripe's scheme, implemented once in `goodgo-webhook`
//! for the API and the CLI alike): a `GoodGo-Signature` header
//! `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`, over the raw body, with several active
//! secrets (newest first, for rotation) and a tolerance window against replays. A real
//! provider is one more implementation of [`PaymentProvider`].

use serde::Deserialize;

pub use goodgo_webhook::{SIGNATURE_HEADER, SignatureError, tags_match};

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
        goodgo_webhook::sign(secret, t, body)
    }
}

impl PaymentProvider for SignedWebhooks {
    fn name(&self) -> &'static str {
        "goodgo"
    }

    fn verify(&self, signature: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError> {
        goodgo_webhook::verify(&self.secrets, signature, body, now, self.tolerance_s)
    }

    fn checkout_url(&self, _reference: &str) -> Option<String> {
        None
    }
}
