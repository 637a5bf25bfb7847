//! Error reports to Sentry (TEC-1604), only when `GOODGO_SENTRY_DSN` is set: every answer
//! of 500 or above (a handler's panic included) and any panic outside a request become
//! one event, with the request id, the matched route (`/v1/listings/{id}`, never the raw
//! path or query), the method, the status and the release (`GOODGO_RELEASE`, the git
//! commit `goodgo deploy` serves).
//!
//! Nothing personal leaves: no request bodies, headers (so no `Authorization` or cookies),
//! client addresses or users; the cause's text has e-mail addresses replaced by
//! `[email]`, and a last check before sending scrubs every text of the event again.
//!
//! The client is the `sentry` crate without default features, sending over its reqwest
//! transport: the workspace's reqwest 0.13 with rustls and the ring provider (no second
//! reqwest, rustls, aws-lc or OpenSSL). Each [`Reporter`] has a client of its own (not the
//! process-global hub), so several servers in one process report to their own DSNs.

use std::sync::Arc;
use std::time::Duration;

use ::sentry::protocol::{Event, Exception, Level, Values};

/// The reporter of the server's process, for panics outside any request.
pub static PANICS: std::sync::OnceLock<Arc<Reporter>> = std::sync::OnceLock::new();

/// Why `dsn` cannot be used, if it cannot.
pub fn check_dsn(dsn: &str) -> Option<String> {
    dsn.parse::<::sentry::types::Dsn>().err().map(|e| {
        format!("GOODGO_SENTRY_DSN is not a Sentry DSN like https://KEY@HOST/PROJECT: {e}")
    })
}

/// Sends error reports to one DSN.
pub struct Reporter {
    client: Arc<::sentry::Client>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reporter")
    }
}

impl Reporter {
    /// A reporter for `dsn` (checked by [`check_dsn`]), stamping events with `release`.
    pub fn new(dsn: &str, release: Option<&str>) -> Result<Reporter, String> {
        let dsn = dsn
            .parse::<::sentry::types::Dsn>()
            .map_err(|e| e.to_string())?;
        // The transport's reqwest has rustls without a bundled provider: the workspace's is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut options = ::sentry::ClientOptions::default();
        options.dsn = Some(dsn);
        options.release = release.map(|r| r.to_string().into());
        options.send_default_pii = false;
        // Reports only what `report` builds: no integrations, breadcrumbs or sessions.
        options.default_integrations = false;
        options.max_breadcrumbs = 0;
        options.auto_session_tracking = false;
        options.before_send = Some(Arc::new(|mut event: Event<'static>| {
            scrub_event(&mut event);
            Some(event)
        }));
        let transport_options = ::sentry::TransportOptions::try_from_client_options(&options)
            .ok_or_else(|| "no DSN".to_string())?;
        let transport: Arc<dyn ::sentry::Transport> = Arc::new(
            ::sentry::transports::ReqwestHttpTransportOptions::from(transport_options).build(),
        );
        options.transport = Some(Arc::new(move |_: &::sentry::ClientOptions| {
            transport.clone()
        }));
        Ok(Reporter {
            client: Arc::new(::sentry::Client::from(options)),
        })
    }

    /// Reports an answer of `status` (500 or above) to request `request_id` on `route`.
    pub fn report(
        &self,
        request_id: &str,
        method: &str,
        route: &str,
        status: u16,
        cause: Option<&crate::error::ProblemCause>,
    ) {
        let kind = cause.map_or("http", |c| c.kind.as_str());
        let mut event = Event {
            level: Level::Error,
            message: Some(format!("{method} {route} answered {status}")),
            transaction: Some(format!("{method} {route}")),
            ..Default::default()
        };
        event.tags.insert("request_id".into(), request_id.into());
        event.tags.insert("route".into(), route.into());
        event.tags.insert("method".into(), method.into());
        event.tags.insert("status".into(), status.to_string());
        event.tags.insert("cause".into(), kind.into());
        if let Some(c) = cause {
            event.exception = Values::from(vec![Exception {
                ty: c.kind.clone(),
                value: Some(scrub(&c.text)),
                ..Default::default()
            }]);
        }
        self.client.capture_event(event, None);
    }

    /// Reports a panic outside any request (a background task's).
    pub fn report_panic(&self, message: &str) {
        let event = Event {
            level: Level::Fatal,
            message: Some(format!("panic: {}", scrub(message))),
            ..Default::default()
        };
        self.client.capture_event(event, None);
    }

    /// Waits up to `timeout` for the reports queued so far to be sent.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.client.flush(Some(timeout))
    }
}

/// Every text of `event` that could carry personal data, with e-mail addresses scrubbed,
/// and the parts this module never fills emptied, whatever put them there.
fn scrub_event(event: &mut Event<'static>) {
    event.request = None;
    event.user = None;
    event.breadcrumbs = Default::default();
    event.extra.clear();
    event.server_name = None;
    if let Some(m) = &mut event.message {
        *m = scrub(m);
    }
    for e in &mut event.exception.values {
        if let Some(v) = &mut e.value {
            *v = scrub(v);
        }
    }
    for v in event.tags.values_mut() {
        *v = scrub(v);
    }
}

/// `text` with every e-mail address (`local@domain.tld`) replaced by `[email]`.
pub fn scrub(text: &str) -> String {
    let local = |c: char| c.is_ascii_alphanumeric() || "._%+-'".contains(c);
    let domain = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut done = 0; // chars[..done] are in `out`
    while i < chars.len() {
        if chars[i] == '@' {
            let mut start = i;
            while start > done && local(chars[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < chars.len() && domain(chars[end]) {
                end += 1;
            }
            // The domain ends at its last label, without trailing dots or hyphens.
            while end > i + 1 && !chars[end - 1].is_ascii_alphanumeric() {
                end -= 1;
            }
            let host: String = chars[i + 1..end].iter().collect();
            if start < i && host.contains('.') && !host.starts_with('.') {
                out.extend(&chars[done..start]);
                out.push_str("[email]");
                done = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.extend(&chars[done..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e_mail_addresses_are_scrubbed() {
        assert_eq!(
            scrub("Key (email)=(jane.doe+x@mail.example.com) already exists."),
            "Key (email)=([email]) already exists."
        );
        assert_eq!(scrub("a@b.co, c@d.org."), "[email], [email].");
        assert_eq!(
            scrub("no address @ all, user@localhost"),
            "no address @ all, user@localhost"
        );
        assert_eq!(scrub("ünïcode x@y.io"), "ünïcode [email]");
    }

    #[test]
    fn dsns_are_checked() {
        assert!(check_dsn("http://public@127.0.0.1:9/1").is_none());
        assert!(check_dsn("not a dsn").is_some());
    }
}
