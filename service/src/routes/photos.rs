//! A listing's photos (TEC-1452): ask for an upload (a presigned PUT URL for a random
//! key), confirm it (checked with a HEAD of the object), list them (presigned GET URLs
//! with a short expiry) and delete them. The bytes never pass through the API; see
//! `crate::photos` for the storage and the deletion worker.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::audit::{self, Entry};
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldErrors, add_error, check_fields};
use crate::photos::{self, Storage};
use crate::routes::listings::{owned, visible};

/// Photos (confirmed or waiting for their upload) a listing may have at once.
pub const MAX_PHOTOS: i64 = 30;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// `image/jpeg`, `image/png`, `image/webp` or `image/avif`: the upload must send
    /// exactly this `Content-Type`.
    pub content_type: String,
}

/// Where and how to upload a photo's bytes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Upload {
    /// The photo's id, for the confirm call.
    pub id: i64,
    /// The object's key in the bucket (random).
    pub key: String,
    /// Send the bytes with `PUT` to this URL, with the `headers` below, before it expires.
    pub upload_url: String,
    pub method: String,
    /// Headers the upload must carry (the content type is part of the signature).
    pub headers: std::collections::BTreeMap<String, String>,
    /// Seconds until `upload_url` stops working.
    pub expires_in: u64,
    /// The largest photo the confirm call accepts, in bytes.
    pub max_bytes: u64,
}

/// A confirmed photo.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Photo {
    pub id: i64,
    pub listing_id: i64,
    /// Its place among the listing's photos, from 0.
    pub position: i16,
    pub content_type: String,
    pub size_bytes: i64,
    /// A presigned GET URL of the photo, valid for `url_expires_in` seconds.
    pub url: String,
    pub url_expires_in: u64,
    pub created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Photos {
    pub items: Vec<Photo>,
}

const PHOTO_COLUMNS: &str = "id, listing_id, position, content_type, size_bytes, object_key, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

async fn photo(storage: &Storage, row: &tokio_postgres::Row) -> Result<Photo, ApiError> {
    let key: String = row.get(5);
    Ok(Photo {
        id: row.get(0),
        listing_id: row.get(1),
        position: row.get::<_, Option<i16>>(2).unwrap_or_default(),
        content_type: row.get::<_, Option<String>>(3).unwrap_or_default(),
        size_bytes: row.get::<_, Option<i64>>(4).unwrap_or_default(),
        url: storage.read_url(&key).await?,
        url_expires_in: storage.config.url_ttl.as_secs(),
        created_at: row.get(6),
    })
}

fn entry<'a>(user: &AuthUser, action: &'a str, photo: i64, data: serde_json::Value) -> Entry<'a> {
    Entry {
        actor: Some(user.id),
        action,
        entity: "listing_photo",
        entity_id: photo.to_string(),
        data,
    }
}

/// Start a photo upload (the listing's owner or an admin): a presigned PUT URL for a new
/// random key; confirm the photo once the bytes are uploaded. 503
/// `/problems/photos-disabled` when the server has no photo storage.
#[utoipa::path(post, path = "/v1/listings/{id}/photos", tag = "photos", params(("id" = i64, Path)), request_body = UploadRequest, security(("bearer" = [])),
    responses((status = 201, body = Upload), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, description = "The listing has as many photos as it may", body = crate::error::Problem), (status = 422, body = crate::error::Problem),
        (status = 503, description = "No photo storage is configured, or it cannot be reached", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(input): Json<UploadRequest>,
) -> Result<(StatusCode, Json<Upload>), ApiError> {
    let storage = photos::storage(&state)?;
    let mut errors = FieldErrors::new();
    if photos::extension(&input.content_type).is_none() {
        let allowed: Vec<&str> = photos::CONTENT_TYPES.iter().map(|(t, _)| *t).collect();
        add_error(
            &mut errors,
            "content_type",
            format!("must be one of {}", allowed.join(", ")),
        );
    }
    check_fields(errors)?;
    let key = Storage::new_key(&input.content_type)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    owned(&tx, id, &user, true).await?;
    let count: i64 = tx
        .query_one(
            "SELECT count(*) FROM listing_photos WHERE listing_id = $1 AND (status = 'ready' OR created_at > now() - interval '1 hour')",
            &[&id],
        )
        .await?
        .get(0);
    if count >= MAX_PHOTOS {
        return Err(ApiError::Conflict(format!(
            "a listing has at most {MAX_PHOTOS} photos; delete one first"
        )));
    }
    let photo_id: i64 = tx
        .query_one(
            "INSERT INTO listing_photos (listing_id, object_key, status, content_type, uploaded_by) VALUES ($1, $2, 'pending', $3, $4) RETURNING id",
            &[&id, &key, &input.content_type, &user.id],
        )
        .await?
        .get(0);
    // Signed before the commit: a storage that cannot sign leaves no pending photo behind.
    let upload_url = storage.upload_url(&key, &input.content_type).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(Upload {
            id: photo_id,
            key,
            upload_url,
            method: "PUT".into(),
            headers: [("content-type".to_string(), input.content_type)].into(),
            expires_in: storage.config.url_ttl.as_secs(),
            max_bytes: storage.config.max_bytes,
        }),
    ))
}

/// Record an uploaded photo (the listing's owner or an admin): the object must exist, be
/// at most the size limit and have the content type asked for; then the photo joins the
/// listing's photos, last. A photo whose object is wrong is dropped (422), its object
/// deleted. Confirming a confirmed photo answers it again.
#[utoipa::path(post, path = "/v1/listings/{id}/photos/{photo_id}/confirm", tag = "photos", params(("id" = i64, Path), ("photo_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Photo), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 409, description = "Nothing was uploaded to the photo's URL yet", body = crate::error::Problem), (status = 422, description = "The uploaded object is too large, empty, or not of the content type asked for", body = crate::error::Problem),
        (status = 503, description = "No photo storage is configured, or it cannot be reached", body = crate::error::Problem)))]
pub async fn confirm(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, photo_id)): Path<(i64, i64)>,
) -> Result<Json<Photo>, ApiError> {
    let storage = photos::storage(&state)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    owned(&tx, id, &user, true).await?;
    let row = tx
        .query_opt(
            "SELECT status::text, object_key, content_type FROM listing_photos WHERE id = $1 AND listing_id = $2 FOR UPDATE",
            &[&photo_id, &id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let (status, key, declared): (String, String, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    if status == "pending" {
        let Some(head) = storage.head(&key).await? else {
            return Err(ApiError::Conflict(
                "nothing was uploaded to this photo's URL yet: PUT the bytes to upload_url first"
                    .into(),
            ));
        };
        let mut errors = FieldErrors::new();
        let max = storage.config.max_bytes;
        if head.size == 0 || head.size > max {
            add_error(
                &mut errors,
                "photo",
                format!("is {} bytes; a photo is 1 to {max} bytes", head.size),
            );
        }
        if head.content_type != declared {
            add_error(
                &mut errors,
                "photo",
                format!(
                    "was uploaded as {}, not {}",
                    head.content_type.as_deref().unwrap_or("(no content type)"),
                    declared.as_deref().unwrap_or("?")
                ),
            );
        }
        if !errors.is_empty() {
            // Dropping the row enqueues the object's deletion (V9's trigger).
            tx.execute("DELETE FROM listing_photos WHERE id = $1", &[&photo_id])
                .await?;
            tx.commit().await?;
            return Err(ApiError::Validation(errors));
        }
        let size = i64::try_from(head.size).unwrap_or(i64::MAX);
        tx.execute(
            "UPDATE listing_photos SET status = 'ready', size_bytes = $2, confirmed_at = now(), \
             position = (SELECT coalesce(max(position) + 1, 0) FROM listing_photos WHERE listing_id = $3 AND status = 'ready') \
             WHERE id = $1",
            &[&photo_id, &size, &id],
        )
        .await?;
        let data = serde_json::json!({"after": {"listing_id": id, "size_bytes": size, "content_type": declared}});
        audit::record(&tx, entry(&user, "listing.photo.add", photo_id, data)).await?;
    }
    let row = tx
        .query_one(
            &format!("SELECT {PHOTO_COLUMNS} FROM listing_photos WHERE id = $1"),
            &[&photo_id],
        )
        .await?;
    tx.commit().await?;
    Ok(Json(photo(&storage, &row).await?))
}

/// A listing's photos in order, each with a presigned GET URL that expires shortly (for
/// anyone who may see the listing: active ones for everyone, others for their owner and
/// admins).
#[utoipa::path(get, path = "/v1/listings/{id}/photos", tag = "photos", params(("id" = i64, Path)),
    responses((status = 200, body = Photos), (status = 401, description = "A token was sent and it is not valid", body = crate::error::Problem), (status = 403, description = "A token of a suspended account was sent", body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 503, description = "No photo storage is configured, or it cannot be reached", body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    Path(id): Path<i64>,
) -> Result<Json<Photos>, ApiError> {
    let storage = photos::storage(&state)?;
    let client = state.pool.get().await?;
    visible(&client, id, user.as_ref(), false).await?;
    let rows = client
        .query(
            &format!("SELECT {PHOTO_COLUMNS} FROM listing_photos WHERE listing_id = $1 AND status = 'ready' ORDER BY position"),
            &[&id],
        )
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        items.push(photo(&storage, row).await?);
    }
    Ok(Json(Photos { items }))
}

/// Delete a photo (the listing's owner or an admin); its object is deleted from the
/// bucket shortly after, retried while the storage cannot be reached.
#[utoipa::path(delete, path = "/v1/listings/{id}/photos/{photo_id}", tag = "photos", params(("id" = i64, Path), ("photo_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 503, description = "No photo storage is configured", body = crate::error::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, photo_id)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    photos::storage(&state)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    owned(&tx, id, &user, true).await?;
    let gone = tx
        .query_opt(
            "DELETE FROM listing_photos WHERE id = $1 AND listing_id = $2 RETURNING object_key",
            &[&photo_id, &id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let key: String = gone.get(0);
    let data = serde_json::json!({"before": {"listing_id": id, "key": key}});
    audit::record(&tx, entry(&user, "listing.photo.delete", photo_id, data)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
