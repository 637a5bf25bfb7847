//! What users are told: a notification per event they must hear about, written with the
//! change in its transaction ([`notify`]), listed by `GET /v1/me/notifications`, and sent
//! by e-mail through the outbox (topic [`EMAIL_TOPIC`], see `mail`) unless the user turned
//! that kind of e-mail off. Texts come from the catalogues (`i18n`): `<kind>-subject` and
//! `<kind>-body`, with the notification's data as placeholders.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::i18n::{self, Locale};

/// The outbox topic of e-mails to users.
pub const EMAIL_TOPIC: &str = "email";

/// The kinds of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An account was created. Data: nothing (the address is the account's).
    Welcome,
    /// The owner's listing went live. Data: `listing_id`, `title`.
    ListingPublished,
    /// A moderator unpublished the owner's listing. Data: `listing_id`, `title`, `reason`.
    ListingUnpublished,
    /// A payment succeeded. Data: `plan`, `amount`, `currency`, `reference`.
    PaymentReceipt,
    /// A subscription ended (cancelled or refunded). Data: `plan`, `unpublished`.
    SubscriptionEnded,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Welcome,
        Kind::ListingPublished,
        Kind::ListingUnpublished,
        Kind::PaymentReceipt,
        Kind::SubscriptionEnded,
    ];

    /// The kind's name, in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Welcome => "welcome",
            Kind::ListingPublished => "listing.published",
            Kind::ListingUnpublished => "listing.unpublished",
            Kind::PaymentReceipt => "payment.receipt",
            Kind::SubscriptionEnded => "subscription.ended",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The placeholders its texts use, besides `name` and `email` (the recipient's).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Welcome => &[],
            Kind::ListingPublished => &["listing_id", "title"],
            Kind::ListingUnpublished => &["listing_id", "title", "reason"],
            Kind::PaymentReceipt => &["plan", "amount", "currency", "reference"],
            Kind::SubscriptionEnded => &["plan", "unpublished"],
        }
    }
}

/// Tells `user` about `kind` of event (with `data`, an object of the kind's
/// [`Kind::fields`]) in `tx`, the transaction of the change: a notification, and an e-mail
/// in the outbox unless the user turned this kind off. Nothing is written for a user that
/// does not exist.
pub async fn notify<C: deadpool_postgres::GenericClient>(
    tx: &C,
    user: i64,
    kind: Kind,
    data: Value,
) -> Result<(), ApiError> {
    let statement = tx
        .prepare_cached(
            "WITH u AS (SELECT id, $2 = ANY (email_muted) AS muted FROM users WHERE id = $1), \
             o AS (INSERT INTO outbox (topic, key, payload) \
                   SELECT $4::text, gen_random_uuid(), jsonb_build_object('user_id', u.id, 'kind', $2::text) \
                   FROM u WHERE NOT u.muted RETURNING id) \
             INSERT INTO notifications (user_id, kind, data, outbox_id) \
             SELECT u.id, $2, $3::text::jsonb, (SELECT id FROM o) FROM u",
        )
        .await?;
    tx.execute(
        &statement,
        &[&user, &kind.as_str(), &data.to_string(), &EMAIL_TOPIC],
    )
    .await?;
    Ok(())
}

/// A notification's texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Texts {
    pub subject: String,
    pub body: String,
}

/// The placeholder values of a notification: its data's fields (strings as they are,
/// other values as JSON) and the recipient's `name` (the display name, else the e-mail's
/// local part) and `email`.
pub fn args(data: &Value, email: &str, display_name: &str) -> Vec<(&'static str, String)> {
    let name = if display_name.trim().is_empty() {
        email.split('@').next().unwrap_or(email).to_string()
    } else {
        display_name.to_string()
    };
    let mut out = vec![("name", name), ("email", email.to_string())];
    let all_fields = Kind::ALL.iter().flat_map(|k| k.fields().iter().copied());
    let mut seen: Vec<&'static str> = Vec::new();
    for field in all_fields {
        if seen.contains(&field) {
            continue;
        }
        seen.push(field);
        if let Some(v) = data.get(field) {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push((field, text));
        }
    }
    out
}

/// The subject and body of a `kind` notification in `locale`.
pub fn texts(locale: Locale, kind: &str, args: &i18n::Args<'_>) -> Texts {
    let key = kind.replace('.', "-");
    let subject = i18n::message(locale, &format!("{key}-subject"), args).unwrap_or_default();
    let body = i18n::message(locale, &format!("{key}-body"), args).unwrap_or_default();
    Texts { subject, body }
}

/// The e-mail's text: greeting, the notification's body, footer.
pub fn email_text(locale: Locale, body: &str, args: &i18n::Args<'_>) -> String {
    let greeting = i18n::message(locale, "email-greeting", args).unwrap_or_default();
    let footer = i18n::message(locale, "email-footer", args).unwrap_or_default();
    format!("{greeting}\n\n{body}\n\n{footer}\n")
}

/// The data of a listing notification.
pub fn listing_data(id: i64, title: &str) -> Value {
    json!({"listing_id": id, "title": title})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_render_in_both_languages() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            let data: serde_json::Map<String, Value> = kind
                .fields()
                .iter()
                .map(|f| (f.to_string(), Value::String(format!("<{f}>"))))
                .collect();
            let args = args(&Value::Object(data), "an@example.com", "");
            for locale in Locale::ALL {
                let t = texts(locale, kind.as_str(), &args);
                assert!(!t.subject.is_empty() && !t.body.is_empty(), "{kind:?}");
                for text in [&t.subject, &t.body] {
                    assert!(!text.contains('{'), "{kind:?} {locale:?}: {text}");
                }
            }
        }
        assert_eq!(Kind::parse("nope"), None);
    }

    #[test]
    fn the_name_is_the_display_name_or_the_local_part() {
        let a = args(
            &json!({"title": "Flat", "listing_id": 7}),
            "lan@example.vn",
            "",
        );
        assert!(a.contains(&("name", "lan".to_string())));
        assert!(a.contains(&("listing_id", "7".to_string())));
        let a = args(&json!({}), "lan@example.vn", "Lan Nguyễn");
        assert!(a.contains(&("name", "Lan Nguyễn".to_string())));
    }
}
