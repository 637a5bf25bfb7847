//! Plans (public, from the database) and checkout: an agent picks a plan and gets a pending
//! payment with the `reference` the provider's events will name. The amount and currency
//! come from the plan, never from the client.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::audit::{self, Entry};
use crate::auth::AuthUser;
use crate::error::ApiError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Plan {
    /// e.g. free, pro, agency.
    pub id: String,
    pub name: String,
    /// A decimal, e.g. "29.00", per period.
    pub price: String,
    /// ISO 4217, e.g. USD.
    pub currency: String,
    /// The length of one paid period, e.g. "1 mon".
    pub period: String,
    /// How many listings may be active at once on this plan.
    pub listing_quota: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Plans {
    pub items: Vec<Plan>,
}

/// The plans on offer, cheapest first.
#[utoipa::path(get, path = "/v1/plans", tag = "billing",
    responses((status = 200, body = Plans)))]
pub async fn plans(State(state): State<AppState>) -> Result<Json<Plans>, ApiError> {
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT id, name, price::text, currency, period::text, listing_quota FROM plans \
             WHERE active ORDER BY position, price, id",
            &[],
        )
        .await?;
    Ok(Json(Plans {
        items: rows
            .iter()
            .map(|r| Plan {
                id: r.get(0),
                name: r.get(1),
                price: r.get(2),
                currency: r.get(3),
                period: r.get(4),
                listing_quota: r.get(5),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutInput {
    /// The id of an active, paid plan (see `GET /v1/plans`).
    #[schema(min_length = 1, max_length = 32)]
    pub plan: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Checkout {
    /// What the provider's events name to settle this checkout.
    pub reference: String,
    pub plan: String,
    pub amount: String,
    pub currency: String,
    /// `pending` until the provider reports the payment.
    pub status: String,
    pub provider: String,
    /// Where the payer completes the payment, when the provider hosts a page.
    pub checkout_url: Option<String>,
}

/// Start paying for a plan (agents): a pending payment the provider's webhook settles.
#[utoipa::path(post, path = "/v1/checkout", tag = "billing", request_body = CheckoutInput, security(("bearer" = [])),
    responses((status = 201, body = Checkout), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn checkout(
    State(state): State<AppState>,
    user: AuthUser,
    Json(CheckoutInput { plan }): Json<CheckoutInput>,
) -> Result<(StatusCode, Json<Checkout>), ApiError> {
    if user.role != "agent" {
        return Err(ApiError::Forbidden("only agents subscribe to plans"));
    }
    if plan.is_empty() || plan.len() > 32 || plan.contains('\0') {
        return Err(ApiError::field(
            "plan",
            "must be a plan id from GET /v1/plans",
        ));
    }
    let reference = format!("chk_{}", crate::auth::random_token(18)?);
    let provider = state.payments.name();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "INSERT INTO payments (user_id, provider, amount, currency, status, provider_event_id, plan) \
             SELECT $1, $2, price, currency, 'pending', $3, id FROM plans \
             WHERE id = $4 AND active AND price > 0 \
             RETURNING id, amount::text, currency",
            &[&user.id, &provider, &reference, &plan],
        )
        .await?;
    let Some(row) = row else {
        let free = tx
            .query_opt(
                "SELECT 1 FROM plans WHERE id = $1 AND active AND price = 0",
                &[&plan],
            )
            .await?
            .is_some();
        return Err(ApiError::field(
            "plan",
            if free {
                "is free: it needs no checkout"
            } else {
                "is not a plan on offer (see GET /v1/plans)"
            },
        ));
    };
    let id: i64 = row.get(0);
    let out = Checkout {
        checkout_url: state.payments.checkout_url(&reference),
        reference,
        plan,
        amount: row.get(1),
        currency: row.get(2),
        status: "pending".into(),
        provider: provider.into(),
    };
    audit::record(
        &tx,
        Entry {
            actor: Some(user.id),
            action: "payment.checkout",
            entity: "payment",
            entity_id: id.to_string(),
            data: json!({"after": {"status": "pending", "plan": out.plan, "amount": out.amount, "reference": out.reference}}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}
