//! An agent's subscription: what plan drives their quota (the newest subscription that is
//! active, past due or trialing and not past its period end; the free plan otherwise), the
//! publishing quota, the downgrade rule (extra listings are unpublished, oldest first, never
//! deleted), `GET /v1/me/subscription` and `POST /v1/me/subscription/cancel`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::json;

use crate::AppState;
use crate::audit::{self, Entry};
use crate::auth::AuthUser;
use crate::error::ApiError;

/// The plan in force for `user` and its quota, with the count of their active listings.
/// Locks the user's row first, so publishes and downgrades of one agent are serialised and
/// the count cannot go stale between the check and the change.
async fn in_force(
    tx: &deadpool_postgres::Transaction<'_>,
    user: i64,
) -> Result<(String, i64, i64), ApiError> {
    tx.query_opt("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user])
        .await?
        .ok_or(ApiError::NotFound)?;
    let row = tx
        .query_one(
            "SELECT p.id, p.listing_quota, \
                    (SELECT count(*) FROM listings WHERE owner_id = $1 AND status = 'active') \
             FROM plans p WHERE p.id = coalesce( \
                (SELECT s.plan FROM subscriptions s WHERE s.user_id = $1 \
                   AND s.status IN ('active', 'past_due', 'trialing') AND s.current_period_end > now() \
                 ORDER BY s.current_period_end DESC, s.id DESC LIMIT 1), 'free')",
            &[&user],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// Refuses to publish one more listing of `owner` beyond their plan's quota (402, naming it).
pub(crate) async fn check_quota(
    tx: &deadpool_postgres::Transaction<'_>,
    owner: i64,
) -> Result<(), ApiError> {
    let (plan, quota, active) = in_force(tx, owner).await?;
    if active >= quota {
        return Err(ApiError::QuotaExceeded { plan, quota });
    }
    Ok(())
}

/// After a downgrade: unpublishes (back to draft, never deleted) the oldest active listings
/// beyond the quota now in force, with an audit entry each; their ids, oldest first.
pub(crate) async fn enforce_quota(
    tx: &deadpool_postgres::Transaction<'_>,
    owner: i64,
    actor: Option<i64>,
) -> Result<Vec<i64>, ApiError> {
    let (plan, quota, _) = in_force(tx, owner).await?;
    let rows = tx
        .query(
            "UPDATE listings SET status = 'draft', updated_at = now() WHERE id IN ( \
                SELECT id FROM listings WHERE owner_id = $1 AND status = 'active' \
                ORDER BY published_at DESC, id DESC OFFSET $2) \
             RETURNING id, published_at, city",
            &[&owner, &quota],
        )
        .await?;
    for r in &rows {
        crate::cache::listing_changed(r.get(0), &[("active", r.get(2))]);
    }
    let mut ids: Vec<(std::time::SystemTime, i64)> = rows
        .iter()
        .map(|r| (r.get::<_, std::time::SystemTime>(1), r.get::<_, i64>(0)))
        .collect();
    ids.sort();
    for (_, id) in &ids {
        audit::record(
            tx,
            Entry {
                actor,
                action: "listing.unpublish",
                entity: "listing",
                entity_id: id.to_string(),
                data: json!({"reason": "over quota", "plan": plan, "quota": quota, "before": "active", "after": "draft"}),
            },
        )
        .await?;
    }
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    /// The plan in force (free when there is no current subscription).
    pub plan: String,
    /// active, past_due, trialing, canceled, or none (never subscribed).
    pub status: String,
    /// When the paid period ends (UTC, RFC 3339); null on the free plan.
    pub current_period_end: Option<String>,
    pub listing_quota: i64,
    pub active_listings: i64,
    /// Listings unpublished (oldest first) because of this change; empty otherwise.
    pub unpublished: Vec<i64>,
}

async fn view(
    tx: &deadpool_postgres::Transaction<'_>,
    user: i64,
    unpublished: Vec<i64>,
) -> Result<Subscription, ApiError> {
    let (plan, quota, active) = in_force(tx, user).await?;
    let latest = tx
        .query_opt(
            "SELECT status, to_char(current_period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM subscriptions WHERE user_id = $1 ORDER BY current_period_end DESC, id DESC LIMIT 1",
            &[&user],
        )
        .await?;
    let (status, end) = match latest {
        Some(r) => (r.get(0), Some(r.get(1))),
        None => ("none".to_string(), None),
    };
    Ok(Subscription {
        plan,
        status,
        current_period_end: end,
        listing_quota: quota,
        active_listings: active,
        unpublished,
    })
}

/// For agents only: runs `change` and reads the caller's subscription as it then stands, in
/// one transaction; `change` returns the listings it unpublished.
async fn for_agent(
    state: &AppState,
    user: &AuthUser,
    change: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<Vec<i64>, ApiError>,
) -> Result<Json<Subscription>, ApiError> {
    if user.role != "agent" {
        return Err(ApiError::Forbidden("only agents have subscriptions"));
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let unpublished = change(&tx).await?;
    let out = view(&tx, user.id, unpublished).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// The caller's subscription, plan, quota and how much of it is used (agents).
#[utoipa::path(get, path = "/v1/me/subscription", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = Subscription), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Subscription>, ApiError> {
    for_agent(&state, &user, async |_| Ok(Vec::new())).await
}

/// Cancel the caller's subscription now (agents): the free plan's quota applies, and the
/// oldest active listings beyond it are unpublished (never deleted) and listed.
#[utoipa::path(post, path = "/v1/me/subscription/cancel", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = Subscription), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Subscription>, ApiError> {
    for_agent(&state, &user, async |tx| {
        in_force(tx, user.id).await?;
        let cancelled = tx
            .query_opt(
                "UPDATE subscriptions SET status = 'canceled', updated_at = now() WHERE id = ( \
                    SELECT id FROM subscriptions WHERE user_id = $1 AND status <> 'canceled' \
                    ORDER BY current_period_end DESC, id DESC LIMIT 1) \
                 RETURNING id, plan",
                &[&user.id],
            )
            .await?
            .ok_or_else(|| ApiError::Conflict("there is no subscription to cancel".into()))?;
        let (id, plan): (i64, String) = (cancelled.get(0), cancelled.get(1));
        audit::record(
            tx,
            Entry {
                actor: Some(user.id),
                action: "subscription.cancel",
                entity: "subscription",
                entity_id: id.to_string(),
                data: json!({"plan": plan, "after": "canceled"}),
            },
        )
        .await?;
        let unpublished = enforce_quota(tx, user.id, Some(user.id)).await?;
        let data = json!({"plan": plan, "unpublished": unpublished.len()});
        crate::notify::notify(tx, user.id, crate::notify::Kind::SubscriptionEnded, data).await?;
        Ok(unpublished)
    })
    .await
}
