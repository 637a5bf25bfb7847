//! E-mail to users over SMTP (`lettre`, TLS by rustls): the outbox handler of topic
//! [`crate::notify::EMAIL_TOPIC`]. It reads the notification its row stands for and the
//! recipient (address, language, the kinds they turned off) at sending time, renders the
//! texts in the recipient's language and sends one plain-text message whose Message-ID is
//! `<outbox key@sender's domain>`: the same for every attempt of the row.
//!
//! Configured by `GOODGO_SMTP_URL` (`smtp://host:port`, plain; `smtp://host:587?tls=required`,
//! STARTTLS; `smtps://user:password@host:465`, TLS from the start) and `GOODGO_SMTP_FROM`
//! (`GoodGo <no-reply@example.vn>`). Without `GOODGO_SMTP_URL` no worker runs and e-mails
//! wait in the outbox as `pending`.

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::i18n::Locale;
use crate::notify;
use crate::outbox::{Done, Failure, Handler, HandlerFuture, Job};

/// How to reach the mail server, and who the mail is from.
#[derive(Clone)]
pub struct MailConfig {
    /// The SMTP URL; may hold a password, so never printed.
    url: String,
    pub from: Mailbox,
    /// How long one SMTP conversation may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl MailConfig {
    /// `None` when `GOODGO_SMTP_URL` is not set; problems are added to `problems`.
    pub fn from_env(
        get: &dyn Fn(&str) -> Option<String>,
        problems: &mut Vec<String>,
    ) -> Option<MailConfig> {
        let url = get("GOODGO_SMTP_URL").filter(|u| !u.trim().is_empty())?;
        let url = url.trim().to_string();
        if let Err(e) = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url) {
            problems.push(format!(
                "GOODGO_SMTP_URL is not an SMTP URL like smtp://mail.example.vn:587?tls=required: {e}"
            ));
            return None;
        }
        let from_text = get("GOODGO_SMTP_FROM").unwrap_or_default();
        let from = match from_text.trim().parse::<Mailbox>() {
            Ok(m) => m,
            Err(_) => {
                problems.push(format!(
                    "GOODGO_SMTP_FROM `{from_text}` is not an address like `GoodGo <no-reply@example.vn>` (required with GOODGO_SMTP_URL)"
                ));
                return None;
            }
        };
        let timeout_s = match get("GOODGO_SMTP_TIMEOUT") {
            None => 30,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (1..=600).contains(&n) => n,
                _ => {
                    problems.push(format!(
                        "GOODGO_SMTP_TIMEOUT must be a whole number from 1 to 600, not `{v}`"
                    ));
                    30
                }
            },
        };
        Some(MailConfig {
            url,
            from,
            timeout: Duration::from_secs(timeout_s),
        })
    }
}

/// The outbox handler that sends e-mails.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl Email {
    pub fn new(config: &MailConfig) -> Result<Email, String> {
        let domain = config.from.email.domain().to_string();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.url)
            .map_err(|e| format!("GOODGO_SMTP_URL: {e}"))?
            .hello_name(ClientId::Domain(domain.clone()))
            .timeout(Some(config.timeout))
            .build();
        Ok(Email {
            transport,
            from: config.from.clone(),
            domain,
        })
    }

    async fn deliver(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        job: &Job,
    ) -> Result<Done, Failure> {
        let db = |e: tokio_postgres::Error| Failure::Retry(goodgo_db::describe(&e));
        let row = tx
            .query_opt(
                "SELECT n.kind, n.data::text, u.email, u.display_name, u.locale, n.kind = ANY (u.email_muted) \
                 FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.outbox_id = $1",
                &[&job.id],
            )
            .await
            .map_err(db)?;
        // The account is gone, or has turned this kind off since: nothing to send.
        let Some(row) = row else {
            return Ok(Done::Skipped("no such notification or account".into()));
        };
        if row.get::<_, bool>(5) {
            return Ok(Done::Skipped("this kind of e-mail was turned off".into()));
        }
        let kind: String = row.get(0);
        let data: serde_json::Value =
            serde_json::from_str(row.get::<_, &str>(1)).unwrap_or_default();
        let email: String = row.get(2);
        let display_name: String = row.get(3);
        let locale = Locale::parse(row.get::<_, &str>(4)).unwrap_or(Locale::En);
        let args = notify::args(&data, &email, &display_name);
        let texts = notify::texts(locale, &kind, &args);
        let text = notify::email_text(locale, &texts.body, &args);
        let to: Mailbox = email
            .parse()
            .map_err(|e| Failure::Permanent(format!("recipient {email}: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(texts.subject)
            .message_id(Some(format!("<{}@{}>", job.key, self.domain)))
            .header(ContentType::TEXT_PLAIN)
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Content-Language"),
                locale.tag().to_string(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-GoodGo-Notification"),
                kind.clone(),
            ))
            .body(text)
            .map_err(|e| Failure::Permanent(format!("building the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(Done::Sent),
            Err(e) if e.is_permanent() => Err(Failure::Permanent(format!("SMTP: {e}"))),
            Err(e) => Err(Failure::Retry(format!("SMTP: {e}"))),
        }
    }
}

impl Handler for Email {
    fn handle<'a>(
        &'a self,
        tx: &'a deadpool_postgres::Transaction<'_>,
        job: &'a Job,
    ) -> HandlerFuture<'a> {
        Box::pin(self.deliver(tx, job))
    }
}
