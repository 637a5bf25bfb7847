//! Listing moderation: an admin takes an active listing out of search (back to draft, never
//! deleted) with a reason its owner reads in `moderation_note`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;

use super::{Admin, Reason};
use crate::AppState;
use crate::audit::{self, Entry};
use crate::error::ApiError;
use crate::routes::listings::{LISTING_COLUMNS, Listing, listing};

/// Unpublish an active listing with a reason: it goes back to draft (nothing is deleted),
/// its owner sees the reason as `moderation_note`, and may edit it and publish again.
#[utoipa::path(post, path = "/v1/admin/listings/{id}/unpublish", tag = "admin", params(("id" = i64, Path)), request_body = Reason, security(("bearer" = [])),
    responses((status = 200, body = Listing), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn unpublish(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
    Json(body): Json<Reason>,
) -> Result<Json<Listing>, ApiError> {
    let reason = body.checked()?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT status::text, owner_id FROM listings WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let (status, owner): (String, i64) = (row.get(0), row.get(1));
    if status != "active" {
        return Err(ApiError::Conflict(format!(
            "only an active listing can be unpublished; this one is {status}"
        )));
    }
    let row = tx
        .query_one(
            &format!(
                "UPDATE listings SET status = 'draft', moderation_note = $2, updated_at = now() \
                 WHERE id = $1 RETURNING {LISTING_COLUMNS}"
            ),
            &[&id, &reason],
        )
        .await?;
    let entry = Entry {
        actor: Some(admin.0.id),
        action: "listing.moderate",
        entity: "listing",
        entity_id: id.to_string(),
        data: json!({"reason": reason, "owner_id": owner, "before": "active", "after": "draft"}),
    };
    audit::record(&tx, entry).await?;
    let unpublished = listing(&row);
    let mut data = crate::notify::listing_data(id, &unpublished.title);
    data["reason"] = json!(reason);
    crate::notify::notify(&tx, owner, crate::notify::Kind::ListingUnpublished, data).await?;
    crate::cache::listing_changed(id, &[("active", unpublished.city.as_str())]);
    tx.commit().await?;
    Ok(Json(unpublished))
}
