//! `POST /v1/webhooks/payments`: a payment provider's events, verified over the raw body
//! (see `payments`), applied once per event id even when delivered many times at once,
//! each in one transaction with its audit entry.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::json;

use crate::AppState;
use crate::audit::{self, Entry};
use crate::error::ApiError;
use crate::payments::{Event, SIGNATURE_HEADER, SignatureError};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookAck {
    /// `applied`; `ignored` (a type this API does not act on, or a transition that does not
    /// apply to the payment's state); `duplicate` (this event id was already received).
    pub status: &'static str,
    pub event_id: String,
}

fn refused(e: SignatureError) -> ApiError {
    match e {
        SignatureError::Malformed => ApiError::BadRequest(e.to_string()),
        SignatureError::Missing => {
            ApiError::Unauthenticated("the GoodGo-Signature header is missing")
        }
        SignatureError::Mismatch => {
            ApiError::Unauthenticated("no signature matches the body with an active secret")
        }
        SignatureError::Expired => {
            ApiError::Unauthenticated("the signature's timestamp is outside the tolerance window")
        }
        SignatureError::NotConfigured => {
            ApiError::Unauthenticated("webhook signing is not configured on this server")
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn sane(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Receive a payment provider's event (signed: `GoodGo-Signature: t=<unix>,v1=<hex
/// HMAC-SHA256 of "t.body">`).
#[utoipa::path(post, path = "/v1/webhooks/payments", tag = "billing", request_body = Event,
    params(("GoodGo-Signature" = String, Header, description = "t=<unix time>,v1=<hex HMAC-SHA256 of \"t.body\"> (several v1 while secrets rotate)")),
    responses((status = 200, body = WebhookAck), (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn payments(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    state
        .payments
        .verify(signature, &body, now())
        .map_err(refused)?;
    let event: Event = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not an event: {e}")))?;
    if !sane(&event.id, 255) {
        return Err(ApiError::field(
            "id",
            "must be 1 to 255 letters, digits, _ - .",
        ));
    }
    if !sane(&event.kind, 100) {
        return Err(ApiError::field("type", "must be like payment.succeeded"));
    }
    if !sane(&event.data.object.reference, 64) {
        return Err(ApiError::field(
            "data.object.reference",
            "must be a checkout reference",
        ));
    }
    apply(&state, &event).await.map(Json)
}

/// The events that change a payment's existing subscription (`$1` of the statement): the
/// payment's new status (`None`: unchanged) and the statement; `None` when `kind` does not
/// apply to a payment in status `before`.
fn subscription_change(
    kind: &str,
    before: &str,
    subscribed: bool,
) -> Option<(Option<&'static str>, &'static str)> {
    const CANCEL: &str =
        "UPDATE subscriptions SET status = 'canceled', updated_at = now() WHERE id = $1";
    match kind {
        "payment.failed" if before == "pending" => Some((
            Some("failed"),
            "UPDATE subscriptions SET status = 'past_due', updated_at = now() WHERE id = $1 AND status = 'active'",
        )),
        "payment.refunded" if before == "succeeded" => Some((Some("refunded"), CANCEL)),
        "subscription.renewed" if subscribed && before == "succeeded" => Some((
            None,
            "UPDATE subscriptions s SET status = 'active', updated_at = now(), \
             current_period_end = greatest(s.current_period_end, now()) + p.period \
             FROM plans p WHERE p.id = s.plan AND s.id = $1",
        )),
        "subscription.cancelled" if subscribed => Some((None, CANCEL)),
        _ => None,
    }
}

/// The statements of an event's transaction that do not depend on its type, and those of a
/// `payment.succeeded` (the benchmark's SQL peer runs exactly these, `cargo xtask bench
/// webhooks`). Parameters are bound, never formatted in.
pub mod sql {
    /// The idempotency check: `$1` provider, `$2` event id, `$3` type; a row when new.
    pub const RECORD_EVENT: &str = "INSERT INTO webhook_events (provider, event_id, type, outcome) \
         VALUES ($1, $2, $3, 'applied') ON CONFLICT DO NOTHING RETURNING 1";
    /// The checkout the event names, locked: `$1` reference, `$2` provider.
    pub const LOCK_PAYMENT: &str = "SELECT id, user_id, status, plan, subscription_id FROM payments \
         WHERE provider_event_id = $1 AND provider = $2 FOR UPDATE";
    /// `$1` a subscription's id.
    pub const SUBSCRIPTION_STATUS: &str = "SELECT status FROM subscriptions WHERE id = $1";
    /// A paid period of plan `$2` for account `$1` (provider `$3`, reference `$4`): from
    /// now, or added to what is left of the same plan's period; the subscription's id.
    pub const PAID_PERIOD: &str = "WITH plan AS (SELECT id, period FROM plans WHERE id = $2), \
         current AS (SELECT id FROM subscriptions WHERE user_id = $1 \
                     ORDER BY current_period_end DESC, id DESC LIMIT 1 FOR UPDATE), \
         updated AS ( \
            UPDATE subscriptions s SET \
                current_period_end = CASE WHEN s.plan = plan.id AND s.status <> 'canceled' \
                    THEN greatest(s.current_period_end, now()) ELSE now() END + plan.period, \
                plan = plan.id, status = 'active', updated_at = now() \
            FROM plan, current WHERE s.id = current.id RETURNING s.id), \
         inserted AS ( \
            INSERT INTO subscriptions (user_id, plan, status, provider, provider_subscription_id, current_period_end) \
            SELECT $1, plan.id, 'active', $3, $4, now() + plan.period FROM plan \
            WHERE NOT EXISTS (SELECT 1 FROM current) RETURNING id) \
         SELECT id FROM updated UNION ALL SELECT id FROM inserted";
    /// Payment `$1` to status `$2`, with subscription `$3`.
    pub const SETTLE_PAYMENT: &str =
        "UPDATE payments SET status = $2, subscription_id = $3, updated_at = now() WHERE id = $1";
    /// Event `$2` of provider `$1` names payment `$3`.
    pub const LINK_EVENT: &str =
        "UPDATE webhook_events SET payment_id = $3 WHERE provider = $1 AND event_id = $2";
}

/// `statement` prepared once per connection: each later use is one round trip to the
/// database instead of two (parse, then execute).
async fn cached(
    tx: &deadpool_postgres::Transaction<'_>,
    statement: &str,
) -> Result<tokio_postgres::Statement, ApiError> {
    Ok(tx.prepare_cached(statement).await?)
}

/// The effect of each event type: the payment's status change and the subscription's.
async fn apply(state: &AppState, event: &Event) -> Result<WebhookAck, ApiError> {
    let provider = state.payments.name();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    // The idempotency check: a concurrent delivery of the same event waits here for this
    // transaction, then finds the row and does nothing.
    let fresh = tx
        .query_opt(
            &cached(&tx, sql::RECORD_EVENT).await?,
            &[&provider, &event.id, &event.kind],
        )
        .await?
        .is_some();
    let ack = |status| WebhookAck {
        status,
        event_id: event.id.clone(),
    };
    if !fresh {
        return Ok(ack("duplicate"));
    }
    let payment = tx
        .query_opt(
            &cached(&tx, sql::LOCK_PAYMENT).await?,
            &[&event.data.object.reference, &provider],
        )
        .await?
        .ok_or_else(|| {
            ApiError::field(
                "data.object.reference",
                "names no checkout of this provider",
            )
        })?;
    let payment_id: i64 = payment.get(0);
    let user_id: i64 = payment.get(1);
    let before: String = payment.get(2);
    let plan: Option<String> = payment.get(3);
    let subscription: Option<i64> = payment.get(4);
    let sub_status = |id: Option<i64>| {
        let tx = &tx;
        async move {
            match id {
                Some(id) => {
                    let statement = cached(tx, sql::SUBSCRIPTION_STATUS).await?;
                    let row = tx.query_opt(&statement, &[&id]).await?;
                    Ok::<_, ApiError>(row.map(|r| r.get::<_, String>(0)))
                }
                None => Ok(None),
            }
        }
    };
    let sub_before = sub_status(subscription).await?;
    // The new payment status and subscription id, or None when the event does not apply.
    let applied: Option<(String, Option<i64>)> = match event.kind.as_str() {
        // A payment without a plan (recorded before checkouts existed) buys no period.
        "payment.succeeded" if plan.is_some() && (before == "pending" || before == "failed") => {
            // A paid period from now, or added to what is left of the same plan's period.
            let sub: i64 = tx
                .query_one(
                    &cached(&tx, sql::PAID_PERIOD).await?,
                    &[&user_id, &plan, &provider, &event.data.object.reference],
                )
                .await?
                .get(0);
            Some(("succeeded".into(), Some(sub)))
        }
        kind => match subscription_change(kind, &before, subscription.is_some()) {
            Some((after, sql)) => {
                tx.execute(sql, &[&subscription]).await?;
                Some((after.unwrap_or(&before).to_string(), subscription))
            }
            None => None,
        },
    };
    let Some((after, sub_after_id)) = applied else {
        tx.execute(
            "UPDATE webhook_events SET outcome = 'ignored', payment_id = $3 WHERE provider = $1 AND event_id = $2",
            &[&provider, &event.id, &payment_id],
        )
        .await?;
        tx.commit().await?;
        return Ok(ack("ignored"));
    };
    let settle = cached(&tx, sql::SETTLE_PAYMENT).await?;
    tx.execute(&settle, &[&payment_id, &after, &sub_after_id])
        .await?;
    let link = cached(&tx, sql::LINK_EVENT).await?;
    tx.execute(&link, &[&provider, &event.id, &payment_id])
        .await?;
    // A refund or a cancellation can leave more listings active than the free plan allows.
    let unpublished = if matches!(
        event.kind.as_str(),
        "payment.refunded" | "subscription.cancelled"
    ) {
        crate::routes::subscription::enforce_quota(&tx, user_id, None).await?
    } else {
        Vec::new()
    };
    let sub_after = sub_status(sub_after_id).await?;
    let action = event.kind.clone();
    audit::record(
        &tx,
        Entry {
            actor: None,
            action: &action,
            entity: "payment",
            entity_id: payment_id.to_string(),
            data: json!({
                "event_id": event.id,
                "before": {"payment": before, "subscription": sub_before},
                "after": {"payment": after, "subscription": sub_after},
                "unpublished": unpublished,
            }),
        },
    )
    .await?;
    tell(
        &tx,
        event,
        user_id,
        payment_id,
        sub_before.as_deref(),
        sub_after.as_deref(),
        &unpublished,
    )
    .await?;
    tx.commit().await?;
    Ok(ack("applied"))
}

/// The account's notification of an applied event, in its transaction: a receipt for a
/// payment that succeeded, the end of a subscription that a refund or a cancellation ended.
async fn tell(
    tx: &deadpool_postgres::Transaction<'_>,
    event: &Event,
    user: i64,
    payment: i64,
    sub_before: Option<&str>,
    sub_after: Option<&str>,
    unpublished: &[i64],
) -> Result<(), ApiError> {
    use crate::notify::{Kind, notify};
    let ended = sub_after == Some("canceled") && sub_before != Some("canceled");
    let kind = match event.kind.as_str() {
        "payment.succeeded" => Kind::PaymentReceipt,
        "payment.refunded" | "subscription.cancelled" if ended => Kind::SubscriptionEnded,
        _ => return Ok(()),
    };
    let row = tx
        .query_one(
            "SELECT coalesce(plan, ''), amount::text, currency, provider_event_id FROM payments WHERE id = $1",
            &[&payment],
        )
        .await?;
    let plan: String = row.get(0);
    let data = match kind {
        Kind::PaymentReceipt => json!({
            "plan": plan, "amount": row.get::<_, String>(1),
            "currency": row.get::<_, String>(2), "reference": row.get::<_, String>(3),
        }),
        _ => json!({"plan": plan, "unpublished": unpublished.len()}),
    };
    notify(tx, user, kind, data).await
}
