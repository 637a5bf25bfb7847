//! Messages in English and Vietnamese: problem titles and details, and notification texts,
//! from Fluent catalogues (`service/locales/<locale>/*.ftl`, one key per message, built
//! into the binary). A request's locale is chosen from `Accept-Language` (English when
//! nothing acceptable is asked for) by the request context and read here with
//! [`current`]; e-mails use the locale stored with the account.
//!
//! A key missing from a locale falls back to English; a placeholder left unfilled is
//! logged. The tests check that every key exists in every locale with the same
//! placeholders, and that each one renders with nothing left unfilled.

use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language the API speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Locale {
    En,
    Vi,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::Vi];

    /// The language tag (`en`, `vi`), as stored with an account and sent in
    /// `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Vi => "vi",
        }
    }

    /// `en`, `vi`, or a tag of theirs (`vi-VN`, `en_GB`), case-insensitively.
    pub fn parse(tag: &str) -> Option<Locale> {
        let primary = tag
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Locale::En),
            "vi" => Some(Locale::Vi),
            _ => None,
        }
    }

    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Locale::En => &[
                (
                    "en/problems.ftl",
                    include_str!("../locales/en/problems.ftl"),
                ),
                (
                    "en/notifications.ftl",
                    include_str!("../locales/en/notifications.ftl"),
                ),
            ],
            Locale::Vi => &[
                (
                    "vi/problems.ftl",
                    include_str!("../locales/vi/problems.ftl"),
                ),
                (
                    "vi/notifications.ftl",
                    include_str!("../locales/vi/notifications.ftl"),
                ),
            ],
        }
    }
}

/// The catalogue files of `locale`: (path under `service/locales/`, text).
pub fn catalogue_files(locale: Locale) -> &'static [(&'static str, &'static str)] {
    locale.files()
}

/// The best locale for an `Accept-Language` header: the acceptable language (q > 0) with
/// the highest weight that the API speaks, the first listed on a tie; `*` or nothing
/// acceptable is English.
pub fn negotiate(header: Option<&str>) -> Locale {
    let mut best: Option<(f32, Locale)> = None;
    for item in header.unwrap_or("").split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .next()
            .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
            .unwrap_or(1.0);
        if q.is_nan() || q <= 0.0 {
            continue;
        }
        let Some(locale) = Locale::parse(tag) else {
            continue;
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, locale));
        }
    }
    best.map_or(Locale::En, |(_, l)| l)
}

type Bundle = FluentBundle<FluentResource>;

fn bundle(locale: Locale) -> &'static Bundle {
    static EN: OnceLock<Bundle> = OnceLock::new();
    static VI: OnceLock<Bundle> = OnceLock::new();
    let cell = match locale {
        Locale::En => &EN,
        Locale::Vi => &VI,
    };
    cell.get_or_init(|| build(locale))
}

fn build(locale: Locale) -> Bundle {
    let id: unic_langid::LanguageIdentifier = locale.tag().parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around placeholders: the texts go into JSON and e-mail
    // subjects, where the invisible characters only get in the way.
    bundle.set_use_isolating(false);
    for (path, text) in locale.files() {
        let resource = match FluentResource::try_new((*text).to_string()) {
            Ok(r) => r,
            Err((r, errors)) => {
                tracing::error!(file = path, errors = ?errors, "catalogue has syntax errors");
                r
            }
        };
        if let Err(errors) = bundle.add_resource(resource) {
            tracing::error!(file = path, errors = ?errors, "catalogue repeats keys");
        }
    }
    bundle
}

/// Placeholder values of a message.
pub type Args<'a> = [(&'a str, String)];

/// The message `key` in `locale` (in English when that locale lacks it) with `args` in
/// its placeholders; `None` when no locale has it.
pub fn message(locale: Locale, key: &str, args: &Args<'_>) -> Option<String> {
    format(locale, key, args)
        .map(|(text, _)| text)
        .or_else(|| format(Locale::En, key, args).map(|(text, _)| text))
}

/// The message and the errors of formatting it (a placeholder without a value, say).
fn format(locale: Locale, key: &str, args: &Args<'_>) -> Option<(String, Vec<String>)> {
    let bundle = bundle(locale);
    let pattern = bundle.get_message(key)?.value()?;
    let mut fluent_args = FluentArgs::new();
    for (name, value) in args {
        fluent_args.set(*name, FluentValue::from(value.as_str()));
    }
    let mut errors = Vec::new();
    let text = bundle
        .format_pattern(pattern, Some(&fluent_args), &mut errors)
        .into_owned();
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    if !errors.is_empty() {
        tracing::warn!(key, locale = locale.tag(), errors = ?errors, "message has unfilled placeholders");
    }
    Some((text, errors))
}

/// [`message`] with its formatting errors, for the tests.
pub fn message_checked(
    locale: Locale,
    key: &str,
    args: &Args<'_>,
) -> Option<(String, Vec<String>)> {
    format(locale, key, args)
}

tokio::task_local! {
    static LOCALE: Locale;
}

/// The locale of the request being served (English outside a request).
pub fn current() -> Locale {
    LOCALE.try_with(|l| *l).unwrap_or(Locale::En)
}

/// Runs `fut` with `locale` as the [`current`] one.
pub async fn scope<F: std::future::Future>(locale: Locale, fut: F) -> F::Output {
    LOCALE.scope(locale, fut).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_spoken_language() {
        assert_eq!(negotiate(None), Locale::En);
        assert_eq!(negotiate(Some("")), Locale::En);
        assert_eq!(negotiate(Some("vi")), Locale::Vi);
        assert_eq!(negotiate(Some("vi-VN,vi;q=0.9,en;q=0.8")), Locale::Vi);
        assert_eq!(negotiate(Some("fr-FR, en;q=0.5, vi;q=0.7")), Locale::Vi);
        assert_eq!(negotiate(Some("en, vi")), Locale::En);
        assert_eq!(negotiate(Some("vi;q=0, en;q=0.1")), Locale::En);
        assert_eq!(negotiate(Some("de, fr;q=0.9, *;q=0.1")), Locale::En);
        assert_eq!(negotiate(Some("VI-vn")), Locale::Vi);
        assert_eq!(negotiate(Some("vi;q=nonsense")), Locale::En);
    }

    #[test]
    fn a_missing_key_falls_back_to_english_then_to_none() {
        assert_eq!(
            message(Locale::Vi, "problem-not-found", &[]).as_deref(),
            Some("Không tìm thấy tài nguyên")
        );
        assert_eq!(message(Locale::Vi, "no-such-key", &[]), None);
    }

    #[test]
    fn placeholders_are_filled_without_isolation_marks() {
        let args = [("plan", "pro".to_string()), ("quota", "25".to_string())];
        let (text, errors) =
            message_checked(Locale::Vi, "detail-quota-exceeded", &args).unwrap_or_default();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(text.starts_with("gói pro cho phép 25 tin"), "{text}");
        let (_, errors) =
            message_checked(Locale::En, "detail-quota-exceeded", &[]).unwrap_or_default();
        assert!(!errors.is_empty(), "an unfilled placeholder is an error");
    }
}
