//! `goodgo api`: helpers for working on the GoodGo API. `webhook send` is what `stripe
//! trigger` is to Stripe: it builds a payment event in the common envelope, signs it with
//! the secret the API checks (the one signing scheme, `goodgo-webhook`), posts it to the
//! API `goodgo dev` runs and prints the answer, so a checkout can be settled, failed,
//! refunded, renewed or cancelled without a payment provider.

use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use super::Context;
use crate::args::{ApiArgs, ApiCommand, WebhookCommand, WebhookSendArgs};
use crate::error::{ExitStatus, UserError};
use crate::printer::Printer;

pub fn run(ctx: &Context, args: &ApiArgs, printer: &Printer) -> Result<ExitStatus> {
    match &args.command {
        ApiCommand::Webhook {
            command: WebhookCommand::Send(send_args),
        } => send(ctx, send_args, printer),
    }
}

/// Where the API is: `--url`, else the address `goodgo dev` serves it on.
fn base_url(flag: Option<&str>, dotenv: &[(String, String)]) -> Result<String> {
    let url = match flag {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", crate::ops::api::address(dotenv)),
    };
    let host = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if host.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace)) {
        return Err(
            UserError::input(format!("--url {url}: not an http:// or https:// URL"))
                .with_hint("e.g. --url http://127.0.0.1:8080")
                .into(),
        );
    }
    Ok(url)
}

/// `evt_` and 24 random hex digits.
fn event_id() -> Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).context("reading random bytes for an event id")?;
    Ok(format!(
        "evt_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// The newest checkout's reference in the workspace's database.
async fn newest_checkout(ctx: &Context, database_url: Option<&str>) -> Result<String> {
    let (target, source) = crate::ops::database::resolve(ctx, database_url)?;
    let client = target.connect().await?;
    let row = client
        .query_opt(
            "SELECT provider_event_id FROM payments ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(|e| goodgo_db::DbError::Postgres {
            doing: format!(
                "reading the newest checkout of {} ({source})",
                target.redacted()
            ),
            source: e.into(),
        })?;
    match row {
        Some(row) => Ok(row.get(0)),
        None => Err(UserError::input(format!(
            "{} ({source}) has no checkout to name",
            target.redacted()
        ))
        .with_hint("start one with POST /v1/checkout as an agent, or pass --reference REF")
        .into()),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn send(ctx: &Context, args: &WebhookSendArgs, printer: &Printer) -> Result<ExitStatus> {
    let ws = &ctx.workspace;
    let dotenv = crate::ops::api::dotenv(&ws.root, &ws.display_path(&ws.root))?;
    let secret = args
        .secret
        .clone()
        .or_else(|| crate::ops::api::webhook_secret(&dotenv))
        .ok_or_else(|| {
            UserError::input("no webhook secret to sign with").with_hint(
                "pass --secret, or set GOODGO_PAYMENTS_WEBHOOK_SECRETS (in the environment or the workspace's .env) to what the API has",
            )
        })?;
    let base = base_url(args.url.as_deref(), &dotenv)?;
    let kind = args.event.name();
    let id = match &args.id {
        Some(id) => id.clone(),
        None => event_id()?,
    };
    let rt = crate::ops::stack::runtime()?;
    rt.block_on(async {
        let reference = match &args.reference {
            Some(r) => r.clone(),
            None => newest_checkout(ctx, args.database_url.as_deref()).await?,
        };
        let created = now();
        let body = goodgo_webhook::envelope(&id, &kind, created, &reference);
        let signature = goodgo_webhook::sign(secret.as_bytes(), created, body.as_bytes());
        let url = format!("{base}/v1/webhooks/payments");
        let client = crate::http::client(Duration::from_secs(30))?;
        let res = client
            .post(&url)
            .header(goodgo_webhook::SIGNATURE_HEADER, &signature)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_timeout() {
                    "no answer within 30 s".to_string()
                } else {
                    format!("nothing answers at {base}")
                };
                UserError::failed(format!("{why}: is the API running?"))
                    .with_hint("start it with `goodgo dev` (or pass --url where it runs)")
            })?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let outcome = match (&answer["status"], &answer["title"]) {
            (Value::String(s), _) => s.clone(),
            (_, Value::String(title)) => match answer["detail"].as_str() {
                Some(detail) => format!("{title}: {detail}"),
                None => title.clone(),
            },
            _ => answer.to_string(),
        };
        let human = format!("sent {kind} {id} for {reference} to {url}\n{status} {outcome}\n");
        let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        printer.report(
            &human,
            &json!({"url": url, "event": event, "status": status, "answer": answer}),
        );
        Ok(if (200..300).contains(&status) {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        })
    })
}
