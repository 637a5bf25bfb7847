//! What admins read: payments, subscriptions and the audit log, filtered and keyset paged
//! by id, newest first. Every filter reaches SQL as a bind parameter of a fixed statement.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::{Admin, choice, moment, page_size, page_start, paged, rfc3339, text_filter};
use crate::AppState;
use crate::error::{ApiError, FieldErrors, add_error, check_fields};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PaymentQuery {
    /// Only this account's.
    pub user: Option<i64>,
    /// pending, succeeded, failed or refunded.
    pub status: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100, default 50.
    pub limit: Option<i64>,
}

/// A payment or checkout, as admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentRecord {
    pub id: i64,
    pub user_id: i64,
    pub provider: String,
    /// The checkout's reference (what the provider's events name).
    pub reference: String,
    pub plan: Option<String>,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub subscription_id: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentPage {
    pub items: Vec<PaymentRecord>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Payments and checkouts, newest first.
#[utoipa::path(get, path = "/v1/admin/payments", tag = "admin", params(PaymentQuery), security(("bearer" = [])),
    responses((status = 200, body = PaymentPage), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn payments(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<PaymentQuery>,
) -> Result<Json<PaymentPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let statuses = ["pending", "succeeded", "failed", "refunded"];
    let status = choice("status", q.status.as_deref(), &statuses, &mut errors);
    let limit = page_size(q.limit, &mut errors);
    let before = page_start(q.cursor.as_deref(), &mut errors);
    check_fields(errors)?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT id, user_id, provider, provider_event_id, plan, amount::text, currency, status, \
                        subscription_id, {}, {} FROM payments \
                 WHERE ($1::bigint IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2) \
                   AND ($3::bigint IS NULL OR id < $3) \
                 ORDER BY id DESC LIMIT $4",
                rfc3339("created_at", false),
                rfc3339("updated_at", false)
            ),
            &[&q.user, &status, &before, &(limit + 1)],
        )
        .await?;
    let rows = rows
        .iter()
        .map(|r| PaymentRecord {
            id: r.get(0),
            user_id: r.get(1),
            provider: r.get(2),
            reference: r.get(3),
            plan: r.get(4),
            amount: r.get(5),
            currency: r.get(6),
            status: r.get(7),
            subscription_id: r.get(8),
            created_at: r.get(9),
            updated_at: r.get(10),
        })
        .collect();
    let (items, next_cursor) = paged(rows, limit, |p| p.id);
    Ok(Json(PaymentPage { items, next_cursor }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionQuery {
    /// Only this account's.
    pub user: Option<i64>,
    /// trialing, active, past_due or canceled.
    pub status: Option<String>,
    /// A plan id, e.g. pro.
    pub plan: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100, default 50.
    pub limit: Option<i64>,
}

/// A subscription, as admins see it (`Subscription` is the agent's own view).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionRecord {
    pub id: i64,
    pub user_id: i64,
    pub plan: String,
    pub status: String,
    pub provider: String,
    pub current_period_end: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionPage {
    pub items: Vec<SubscriptionRecord>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Subscriptions, newest first.
#[utoipa::path(get, path = "/v1/admin/subscriptions", tag = "admin", params(SubscriptionQuery), security(("bearer" = [])),
    responses((status = 200, body = SubscriptionPage), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn subscriptions(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<SubscriptionQuery>,
) -> Result<Json<SubscriptionPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let statuses = ["trialing", "active", "past_due", "canceled"];
    let status = choice("status", q.status.as_deref(), &statuses, &mut errors);
    let plan = text_filter("plan", q.plan.as_deref(), 32, &mut errors);
    let limit = page_size(q.limit, &mut errors);
    let before = page_start(q.cursor.as_deref(), &mut errors);
    check_fields(errors)?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT id, user_id, plan, status, provider, {}, {}, {} FROM subscriptions \
                 WHERE ($1::bigint IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2) \
                   AND ($3::text IS NULL OR plan = $3) AND ($4::bigint IS NULL OR id < $4) \
                 ORDER BY id DESC LIMIT $5",
                rfc3339("current_period_end", false),
                rfc3339("created_at", false),
                rfc3339("updated_at", false)
            ),
            &[&q.user, &status, &plan, &before, &(limit + 1)],
        )
        .await?;
    let rows = rows
        .iter()
        .map(|r| SubscriptionRecord {
            id: r.get(0),
            user_id: r.get(1),
            plan: r.get(2),
            status: r.get(3),
            provider: r.get(4),
            current_period_end: r.get(5),
            created_at: r.get(6),
            updated_at: r.get(7),
        })
        .collect();
    let (items, next_cursor) = paged(rows, limit, |s| s.id);
    Ok(Json(SubscriptionPage { items, next_cursor }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only what this account did.
    pub actor: Option<i64>,
    /// An action (`listing.publish`), or every action under a prefix (`listing.*`).
    pub action: Option<String>,
    /// What kind of record changed: user, listing, payment, subscription.
    pub entity: Option<String>,
    /// Which record changed (needs `entity`).
    pub entity_id: Option<String>,
    /// Entries at or after this time (RFC 3339, or a day: 2026-12-01).
    pub since: Option<String>,
    /// Entries before this time.
    pub until: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// When (UTC, microseconds).
    pub created_at: String,
    /// Who: an account's id; null for the system (a payment provider's webhook).
    pub actor_id: Option<i64>,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<String>,
    /// The id of the request that made the change (its `X-Request-Id`).
    pub request_id: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// What changed: a before/after summary.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `action` as an exact action and a prefix: `listing.*` is every action under `listing.`.
fn action_filter(
    action: Option<&str>,
    errors: &mut FieldErrors,
) -> (Option<String>, Option<String>) {
    let Some(action) = action else {
        return (None, None);
    };
    let (name, prefix) = match action.strip_suffix(".*") {
        Some(name) => (name, true),
        None => (action, false),
    };
    let valid = (1..=100).contains(&name.len())
        && name.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        });
    if !valid {
        add_error(
            errors,
            "action",
            "must be an action like listing.publish, or a prefix like listing.*",
        );
        return (None, None);
    }
    if prefix {
        (None, Some(format!("{name}.")))
    } else {
        (Some(name.to_string()), None)
    }
}

/// The audit log, newest first: who did what to which record, from where, and what
/// changed.
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", params(AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn audit(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let (action, prefix) = action_filter(q.action.as_deref(), &mut errors);
    let entity = text_filter("entity", q.entity.as_deref(), 100, &mut errors);
    let entity_id = text_filter("entity_id", q.entity_id.as_deref(), 100, &mut errors);
    if entity_id.is_some() && entity.is_none() {
        add_error(&mut errors, "entity_id", "needs `entity` too");
    }
    let since = moment("since", q.since.as_deref(), &mut errors);
    let until = moment("until", q.until.as_deref(), &mut errors);
    let limit = page_size(q.limit, &mut errors);
    let before = page_start(q.cursor.as_deref(), &mut errors);
    check_fields(errors)?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT id, {}, actor_id, action, entity, entity_id, request_id, host(ip), data::text \
                 FROM audit_log \
                 WHERE ($1::bigint IS NULL OR actor_id = $1) AND ($2::text IS NULL OR action = $2) \
                   AND ($3::text IS NULL OR starts_with(action, $3)) \
                   AND ($4::text IS NULL OR entity = $4) AND ($5::text IS NULL OR entity_id = $5) \
                   AND ($6::text IS NULL OR created_at >= $6::text::timestamptz) \
                   AND ($7::text IS NULL OR created_at < $7::text::timestamptz) \
                   AND ($8::bigint IS NULL OR id < $8) \
                 ORDER BY id DESC LIMIT $9",
                rfc3339("created_at", true)
            ),
            &[
                &q.actor,
                &action,
                &prefix,
                &entity,
                &entity_id,
                &since,
                &until,
                &before,
                &(limit + 1),
            ],
        )
        .await?;
    let rows = rows
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            created_at: r.get(1),
            actor_id: r.get(2),
            action: r.get(3),
            entity: r.get(4),
            entity_id: r.get(5),
            request_id: r.get(6),
            ip: r.get(7),
            data: serde_json::from_str(r.get::<_, &str>(8)).unwrap_or_default(),
        })
        .collect();
    let (items, next_cursor) = paged(rows, limit, |e| e.id);
    Ok(Json(AuditPage { items, next_cursor }))
}
