//! Listings: create, read, update, publish, archive, delete (owner or admin; agents
//! create) and the caller's own, each change written with its audit entry (what changed,
//! before and after) in one transaction. The public search is in `search`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;

use crate::AppState;
use crate::audit::{self, Entry};
use crate::auth::AuthUser;
use crate::cache::{self, Lookup};
use crate::error::{ApiError, FieldErrors, add_error, check_fields};

pub(crate) const PROPERTY_TYPES: &[&str] = &[
    "apartment",
    "house",
    "villa",
    "townhouse",
    "land",
    "office",
    "shop",
];
pub(crate) const LISTING_TYPES: &[&str] = &["sale", "rent"];

/// A price or an area: a JSON number or a decimal string, kept exact.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Decimal {
    Number(serde_json::Number),
    Text(String),
}

impl Decimal {
    fn text(&self) -> String {
        match self {
            Decimal::Number(n) => n.to_string(),
            Decimal::Text(t) => t.trim().to_string(),
        }
    }
}

/// A positive decimal with at most `int_digits` digits before the point and two after.
pub(crate) fn check_decimal(
    field: &str,
    value: &Decimal,
    int_digits: usize,
    errors: &mut FieldErrors,
) -> String {
    let text = value.text();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let ok = !int.is_empty()
        && int.len() <= int_digits
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.len() <= 2
        && frac.chars().all(|c| c.is_ascii_digit())
        && text.chars().any(|c| c.is_ascii_digit() && c != '0');
    if !ok {
        add_error(
            errors,
            field,
            format!(
                "must be a positive number with at most {int_digits} digits before the point and 2 after"
            ),
        );
    }
    text
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListingInput {
    pub title: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<String>, example = "250000.00")]
    pub price: Option<Decimal>,
    /// ISO 4217, e.g. USD.
    pub currency: Option<String>,
    /// `sale` or `rent`.
    pub listing_type: Option<String>,
    /// apartment, house, villa, townhouse, land, office or shop.
    pub property_type: Option<String>,
    pub bedrooms: Option<i64>,
    pub bathrooms: Option<i64>,
    #[schema(value_type = Option<String>, example = "85.5")]
    pub area_m2: Option<Decimal>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
}

/// A new listing, as documented: [`ListingInput`] with the fields a listing cannot be
/// without marked required. The body is read as `ListingInput`, so that each missing field
/// gets its own message in the 422 answer.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documentation only: never built, see above
pub struct ListingCreate {
    #[schema(min_length = 3, max_length = 200)]
    pub title: String,
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// A positive decimal (a JSON number or a string), at most 12 digits before the point
    /// and 2 after.
    #[schema(value_type = String, example = "250000.00")]
    pub price: Decimal,
    /// ISO 4217, e.g. USD.
    pub currency: Option<String>,
    /// `sale` or `rent`.
    pub listing_type: String,
    /// apartment, house, villa, townhouse, land, office or shop.
    pub property_type: String,
    #[schema(minimum = 0, maximum = 50)]
    pub bedrooms: Option<i64>,
    #[schema(minimum = 0, maximum = 50)]
    pub bathrooms: Option<i64>,
    /// A positive decimal, at most 8 digits before the point and 2 after.
    #[schema(value_type = String, example = "85.5")]
    pub area_m2: Decimal,
    #[schema(max_length = 300)]
    pub address: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    pub city: String,
    #[schema(max_length = 100)]
    pub district: Option<String>,
}

/// Validated values, as text for SQL to cast, per column.
struct Checked(Vec<(&'static str, Option<String>, &'static str)>);

fn validate(input: &ListingInput, creating: bool) -> Result<Checked, ApiError> {
    let mut errors = FieldErrors::new();
    let mut out: Vec<(&'static str, Option<String>, &'static str)> = Vec::new();
    let mut text = |field: &'static str,
                    value: &Option<String>,
                    min: usize,
                    max: usize,
                    required: bool,
                    errors: &mut FieldErrors| {
        match value {
            None if required && creating => add_error(errors, field, "is required"),
            None => {}
            Some(v) => {
                crate::error::check_text(field, v, errors);
                let n = v.trim().chars().count();
                if n < min || n > max {
                    add_error(
                        errors,
                        field,
                        if min > 0 {
                            format!("must be {min} to {max} characters")
                        } else {
                            format!("must be at most {max} characters")
                        },
                    );
                }
                out.push((field, Some(v.trim().to_string()), "text"));
            }
        }
    };
    text("title", &input.title, 3, 200, true, &mut errors);
    text(
        "description",
        &input.description,
        0,
        10_000,
        false,
        &mut errors,
    );
    text("address", &input.address, 0, 300, false, &mut errors);
    text("city", &input.city, 1, 100, true, &mut errors);
    text("district", &input.district, 0, 100, false, &mut errors);
    for (field, value, int_digits) in [("price", &input.price, 12), ("area_m2", &input.area_m2, 8)]
    {
        match value {
            Some(v) => {
                let v = check_decimal(field, v, int_digits, &mut errors);
                out.push((field, Some(v), "numeric"));
            }
            None if creating => add_error(&mut errors, field, "is required"),
            None => {}
        }
    }
    if let Some(c) = &input.currency {
        crate::error::check_text("currency", c, &mut errors);
        if c.len() != 3 || !c.chars().all(|x| x.is_ascii_uppercase()) {
            add_error(
                &mut errors,
                "currency",
                "must be a 3-letter ISO 4217 code like USD",
            );
        }
        out.push(("currency", Some(c.clone()), "text"));
    }
    for (field, value, allowed, cast) in [
        (
            "listing_type",
            &input.listing_type,
            LISTING_TYPES,
            "listing_type",
        ),
        (
            "property_type",
            &input.property_type,
            PROPERTY_TYPES,
            "property_type",
        ),
    ] {
        match value {
            Some(v) if allowed.contains(&v.as_str()) => out.push((field, Some(v.clone()), cast)),
            Some(_) => add_error(
                &mut errors,
                field,
                format!("must be one of {}", allowed.join(", ")),
            ),
            None if creating => add_error(&mut errors, field, "is required"),
            None => {}
        }
    }
    for (field, value) in [("bedrooms", input.bedrooms), ("bathrooms", input.bathrooms)] {
        if let Some(n) = value {
            if !(0..=50).contains(&n) {
                add_error(&mut errors, field, "must be from 0 to 50");
            }
            out.push((field, Some(n.to_string()), "smallint"));
        }
    }
    check_fields(errors)?;
    Ok(Checked(out))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Listing {
    pub id: i64,
    pub owner_id: i64,
    pub status: String,
    pub title: String,
    pub description: String,
    pub price: String,
    pub currency: String,
    pub listing_type: String,
    pub property_type: String,
    pub bedrooms: i16,
    pub bathrooms: i16,
    pub area_m2: String,
    pub address: String,
    pub city: String,
    pub district: String,
    pub created_at: String,
    pub updated_at: String,
    pub published_at: Option<String>,
    /// Why an admin unpublished the listing; cleared when it is published again.
    pub moderation_note: Option<String>,
}

pub(crate) const LISTING_COLUMNS: &str = "id, owner_id, status::text, title, description, price::text, currency, listing_type::text, property_type::text, bedrooms, bathrooms, area_m2::text, address, city, district, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), to_char(published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), moderation_note";

pub(crate) fn listing(row: &tokio_postgres::Row) -> Listing {
    Listing {
        id: row.get(0),
        owner_id: row.get(1),
        status: row.get(2),
        title: row.get(3),
        description: row.get(4),
        price: row.get(5),
        currency: row.get(6),
        listing_type: row.get(7),
        property_type: row.get(8),
        bedrooms: row.get(9),
        bathrooms: row.get(10),
        area_m2: row.get(11),
        address: row.get(12),
        city: row.get(13),
        district: row.get(14),
        created_at: row.get(15),
        updated_at: row.get(16),
        published_at: row.get(17),
        moderation_note: row.get(18),
    }
}

/// A listing as a JSON object, for audit summaries.
fn as_value(l: &Listing) -> serde_json::Value {
    serde_json::to_value(l).unwrap_or_default()
}

fn params(values: &[String]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// Create a listing (agents and admins); it starts as a draft.
#[utoipa::path(post, path = "/v1/listings", tag = "listings", request_body = ListingCreate, security(("bearer" = [])),
    responses((status = 201, body = Listing), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(input): Json<ListingInput>,
) -> Result<(StatusCode, Json<Listing>), ApiError> {
    if user.role != "agent" && !user.is_admin() {
        return Err(ApiError::Forbidden("only agents create listings"));
    }
    let Checked(fields) = validate(&input, true)?;
    let mut columns = vec!["owner_id".to_string()];
    let mut placeholders = vec!["$1::text::bigint".to_string()];
    let mut values = vec![user.id.to_string()];
    for (name, value, cast) in fields {
        if let Some(v) = value {
            values.push(v);
            columns.push(name.to_string());
            placeholders.push(format!("${}::text::{cast}", values.len()));
        }
    }
    let sql = format!(
        "INSERT INTO listings ({}) VALUES ({}) RETURNING {LISTING_COLUMNS}",
        columns.join(", "),
        placeholders.join(", ")
    );
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx.query_one(&sql, &params(&values)).await?;
    let created = listing(&row);
    let after = serde_json::json!({"after": {"title": created.title, "status": created.status, "price": created.price, "currency": created.currency, "city": created.city}});
    audit::record(&tx, entry(&user, "listing.create", created.id, after)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The audit entry of `user`'s `action` on listing `id`.
fn entry<'a>(user: &AuthUser, action: &'a str, id: i64, data: serde_json::Value) -> Entry<'a> {
    Entry {
        actor: Some(user.id),
        action,
        entity: "listing",
        entity_id: id.to_string(),
        data,
    }
}

/// The listing when the caller may see it: active ones for everyone, others for their
/// owner and admins. Hidden ones are "not found", not "forbidden". With `lock`, the row
/// stays locked until `client`'s transaction ends, so what is read is what is changed.
pub(crate) async fn visible<C: deadpool_postgres::GenericClient>(
    client: &C,
    id: i64,
    user: Option<&AuthUser>,
    lock: bool,
) -> Result<Listing, ApiError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = client
        .query_opt(
            &format!("SELECT {LISTING_COLUMNS} FROM listings WHERE id = $1{lock}"),
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let l = listing(&row);
    if may_see(&l.status, l.owner_id, user) {
        Ok(l)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Active listings are everyone's to see; the others their owner's and admins'.
fn may_see(status: &str, owner_id: i64, user: Option<&AuthUser>) -> bool {
    status == "active" || user.is_some_and(|u| u.is_admin() || u.id == owner_id)
}

/// For changes: visible, and the caller owns it or is an admin (see [`visible`] for `lock`).
pub(crate) async fn owned<C: deadpool_postgres::GenericClient>(
    client: &C,
    id: i64,
    user: &AuthUser,
    lock: bool,
) -> Result<Listing, ApiError> {
    let l = visible(client, id, Some(user), lock).await?;
    if user.is_admin() || l.owner_id == user.id {
        Ok(l)
    } else {
        Err(ApiError::Forbidden(
            "only the listing's owner or an admin may change it",
        ))
    }
}

/// One listing (a token is optional: with one, the owner and admins also see drafts).
#[utoipa::path(get, path = "/v1/listings/{id}", tag = "listings", params(("id" = i64, Path)),
    responses((status = 200, body = Listing), (status = 401, description = "A token was sent and it is not valid", body = crate::error::Problem), (status = 403, description = "A token of a suspended account was sent", body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, ApiError> {
    /// What the cached listing says of who may see it.
    #[derive(Deserialize)]
    struct Seen {
        status: String,
        owner_id: i64,
    }
    let answer = |body: Vec<u8>, seen: &Seen| {
        if may_see(&seen.status, seen.owner_id, user.as_ref()) {
            Ok(crate::routes::search::json_body(body))
        } else {
            Err(ApiError::NotFound)
        }
    };
    // The listing as its owner sees it is cached; who may see it is decided per request.
    let mut store = None;
    if let Some(redis) = &state.redis {
        match redis.listing(id).await {
            Lookup::Hit(body) => {
                if let Ok(seen) = serde_json::from_slice::<Seen>(&body) {
                    return answer(body, &seen);
                }
            }
            Lookup::Miss(key) => store = Some(key),
            Lookup::Unavailable => {}
        }
    }
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {LISTING_COLUMNS} FROM listings WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let l = listing(&row);
    let body = serde_json::to_vec(&l).map_err(|e| ApiError::internal("writing a listing", e))?;
    if let (Some(redis), Some(key)) = (&state.redis, store) {
        redis.store(&key, &body).await;
    }
    let seen = Seen {
        status: l.status,
        owner_id: l.owner_id,
    };
    answer(body, &seen)
}

/// Change some fields of a listing (owner or admin).
#[utoipa::path(patch, path = "/v1/listings/{id}", tag = "listings", params(("id" = i64, Path)), request_body = ListingInput, security(("bearer" = [])),
    responses((status = 200, body = Listing), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Json(input): Json<ListingInput>,
) -> Result<Json<Listing>, ApiError> {
    let Checked(fields) = validate(&input, false)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let before = owned(&tx, id, &user, true).await?;
    let mut sets = vec!["updated_at = now()".to_string()];
    let mut values = vec![id.to_string()];
    for (name, value, cast) in fields {
        if let Some(v) = value {
            values.push(v);
            sets.push(format!("{name} = ${}::text::{cast}", values.len()));
        }
    }
    let sql = format!(
        "UPDATE listings SET {} WHERE id = $1::text::bigint RETURNING {LISTING_COLUMNS}",
        sets.join(", ")
    );
    let after = listing(&tx.query_one(&sql, &params(&values)).await?);
    let changed = audit::changes(&as_value(&before), &as_value(&after), &["updated_at"]);
    audit::record(&tx, entry(&user, "listing.update", id, changed)).await?;
    cache::listing_changed(
        id,
        &[
            (before.status.as_str(), before.city.as_str()),
            (after.status.as_str(), after.city.as_str()),
        ],
    );
    tx.commit().await?;
    Ok(Json(after))
}

async fn set_status(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    status: &str,
    action: &str,
) -> Result<Json<Listing>, ApiError> {
    let mut client = state.pool.get().await?;
    let current = owned(&client, id, user, false).await?;
    let tx = client.transaction().await?;
    // One more active listing must fit the owner's plan (checked under the owner's lock).
    if status == "active" && current.status != "active" {
        crate::routes::subscription::check_quota(&tx, current.owner_id).await?;
    }
    let row = tx
        .query_one(
            &format!("UPDATE listings SET status = $2::text::listing_status, updated_at = now(), published_at = CASE WHEN $2 = 'active' THEN coalesce(published_at, now()) ELSE published_at END, moderation_note = CASE WHEN $2 = 'active' THEN NULL ELSE moderation_note END WHERE id = $1 RETURNING {LISTING_COLUMNS}"),
            &[&id, &status],
        )
        .await?;
    let data = serde_json::json!({"before": current.status, "after": status});
    audit::record(&tx, entry(user, action, id, data)).await?;
    if status == "active" && current.status != "active" {
        let data = crate::notify::listing_data(id, &current.title);
        crate::notify::notify(
            &tx,
            current.owner_id,
            crate::notify::Kind::ListingPublished,
            data,
        )
        .await?;
    }
    let after = listing(&row);
    cache::listing_changed(
        id,
        &[
            (current.status.as_str(), current.city.as_str()),
            (after.status.as_str(), after.city.as_str()),
        ],
    );
    tx.commit().await?;
    Ok(Json(after))
}

/// Make a listing visible in search (owner or admin), within the owner's plan's quota of
/// active listings (402 `/problems/quota-exceeded` beyond it).
#[utoipa::path(post, path = "/v1/listings/{id}/publish", tag = "listings", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Listing), (status = 401, body = crate::error::Problem), (status = 402, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn publish(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> Result<Json<Listing>, ApiError> {
    set_status(&state, &user, id, "active", "listing.publish").await
}

/// Take a listing out of search (owner or admin).
#[utoipa::path(post, path = "/v1/listings/{id}/archive", tag = "listings", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Listing), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn archive(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> Result<Json<Listing>, ApiError> {
    set_status(&state, &user, id, "archived", "listing.archive").await
}

/// Delete a listing (owner or admin).
#[utoipa::path(delete, path = "/v1/listings/{id}", tag = "listings", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let gone = owned(&tx, id, &user, true).await?;
    tx.execute("DELETE FROM listings WHERE id = $1", &[&id])
        .await?;
    let before = serde_json::json!({"before": {"title": gone.title, "status": gone.status, "owner_id": gone.owner_id}});
    audit::record(&tx, entry(&user, "listing.delete", id, before)).await?;
    cache::listing_changed(id, &[(gone.status.as_str(), gone.city.as_str())]);
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyListings {
    pub items: Vec<Listing>,
}

/// The caller's own listings, every status, newest first (at most 500).
#[utoipa::path(get, path = "/v1/listings/mine", tag = "listings", security(("bearer" = [])),
    responses((status = 200, body = MyListings), (status = 401, body = crate::error::Problem)))]
pub async fn mine(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<MyListings>, ApiError> {
    let client = state.pool.get().await?;
    let rows = client
        .query(&format!("SELECT {LISTING_COLUMNS} FROM listings WHERE owner_id = $1 ORDER BY created_at DESC, id DESC LIMIT 500"), &[&user.id])
        .await?;
    Ok(Json(MyListings {
        items: rows.iter().map(listing).collect(),
    }))
}
