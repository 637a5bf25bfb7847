//! The arguments of `goodgo api`: helpers for working on the GoodGo API, today
//! `api webhook send`.
//!
//! Why a module of its own: the command line's one file would be too long with them.

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Args)]
pub struct ApiArgs {
    #[command(subcommand)]
    pub command: ApiCommand,
}

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Payment webhooks, for development
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Sign a payment event and post it to the running API, as the payment provider would
    #[command(
        long_about = "Sign a payment event and post it to the running API, as the payment provider would.\n\nThe event is the common envelope ({\"id\", \"type\", \"created\", \"data\": {\"object\": {\"reference\"}}}) signed as `GoodGo-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of \"t.body\">` with the first secret of GOODGO_PAYMENTS_WEBHOOK_SECRETS (the environment's, else the workspace's .env), and posted to /v1/webhooks/payments of the API `goodgo dev` serves (GOODGO_API_ADDR, else .env, else 127.0.0.1:8080). Prints the API's answer; exits 1 when it refuses the event or does not answer.\n\nExamples:\n  goodgo api webhook send payment.succeeded\n  goodgo api webhook send payment.refunded --reference chk_abc\n  goodgo api webhook send subscription.renewed --id evt_1 --url http://127.0.0.1:9090"
    )]
    Send(WebhookSendArgs),
}

#[derive(Debug, Args)]
pub struct WebhookSendArgs {
    /// The event's type
    #[arg(value_enum, value_name = "EVENT")]
    pub event: WebhookEvent,
    /// The signing secret [default: the first of GOODGO_PAYMENTS_WEBHOOK_SECRETS, from the environment, else the workspace's .env]
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,
    /// The checkout the event settles (POST /v1/checkout's `reference`) [default: the newest checkout in the workspace's database]
    #[arg(long, value_name = "REF")]
    pub reference: Option<String>,
    /// The API's base URL [default: http:// and GOODGO_API_ADDR, from the environment, else .env, else 127.0.0.1:8080]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The event's id; the same id again is a replay the API acknowledges as a duplicate [default: a new evt_…]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// The database to find the newest checkout in, without --reference [default: as `goodgo db` finds it]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

/// The event types the API acts on (`goodgo_webhook::EVENT_TYPES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WebhookEvent {
    #[value(name = "payment.succeeded")]
    PaymentSucceeded,
    #[value(name = "payment.failed")]
    PaymentFailed,
    #[value(name = "payment.refunded")]
    PaymentRefunded,
    #[value(name = "subscription.renewed")]
    SubscriptionRenewed,
    #[value(name = "subscription.cancelled")]
    SubscriptionCancelled,
}

impl WebhookEvent {
    /// The type as the envelope names it.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_events_are_the_ones_the_api_acts_on() {
        let names: Vec<String> = WebhookEvent::value_variants()
            .iter()
            .map(|e| e.name())
            .collect();
        assert_eq!(names, goodgo_webhook::EVENT_TYPES);
    }
}
