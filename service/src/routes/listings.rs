//! Listings: create, read, update, publish, archive, delete (owner or admin; agents
//! create), the caller's own, and the public search.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use goodgo_db::search::{Filters, Param, Sort, col};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;

use crate::AppState;
use crate::auth::{AuthUser, MaybeUser};
use crate::error::{ApiError, FieldErrors};
use crate::routes::auth::audit;

const PROPERTY_TYPES: &[&str] = &[
    "apartment",
    "house",
    "villa",
    "townhouse",
    "land",
    "office",
    "shop",
];
const LISTING_TYPES: &[&str] = &["sale", "rent"];

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
fn check_decimal(
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
        errors.entry(field.into()).or_default().push(format!("must be a positive number with at most {int_digits} digits before the point and 2 after"));
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
            None if required && creating => errors
                .entry(field.into())
                .or_default()
                .push("is required".into()),
            None => {}
            Some(v) => {
                crate::error::check_text(field, v, errors);
                let n = v.trim().chars().count();
                if n < min || n > max {
                    errors.entry(field.into()).or_default().push(if min > 0 {
                        format!("must be {min} to {max} characters")
                    } else {
                        format!("must be at most {max} characters")
                    });
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
            None if creating => errors
                .entry(field.into())
                .or_default()
                .push("is required".into()),
            None => {}
        }
    }
    if let Some(c) = &input.currency {
        crate::error::check_text("currency", c, &mut errors);
        if c.len() != 3 || !c.chars().all(|x| x.is_ascii_uppercase()) {
            errors
                .entry("currency".into())
                .or_default()
                .push("must be a 3-letter ISO 4217 code like USD".into());
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
            Some(_) => errors
                .entry(field.into())
                .or_default()
                .push(format!("must be one of {}", allowed.join(", "))),
            None if creating => errors
                .entry(field.into())
                .or_default()
                .push("is required".into()),
            None => {}
        }
    }
    for (field, value) in [("bedrooms", input.bedrooms), ("bathrooms", input.bathrooms)] {
        if let Some(n) = value {
            if !(0..=50).contains(&n) {
                errors
                    .entry(field.into())
                    .or_default()
                    .push("must be from 0 to 50".into());
            }
            out.push((field, Some(n.to_string()), "smallint"));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
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
}

const LISTING_COLUMNS: &str = "id, owner_id, status::text, title, description, price::text, currency, listing_type::text, property_type::text, bedrooms, bathrooms, area_m2::text, address, city, district, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), to_char(published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

fn listing(row: &tokio_postgres::Row) -> Listing {
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
    }
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
    let client = state.pool.get().await?;
    let row = client.query_one(&sql, &params(&values)).await?;
    let created = listing(&row);
    audit(
        &client,
        Some(user.id),
        "listing.create",
        "listing",
        &created.id.to_string(),
    )
    .await;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The listing when the caller may see it: active ones for everyone, others for their
/// owner and admins. Hidden ones are "not found", not "forbidden".
async fn visible(
    client: &deadpool_postgres::Object,
    id: i64,
    user: Option<&AuthUser>,
) -> Result<Listing, ApiError> {
    let row = client
        .query_opt(
            &format!("SELECT {LISTING_COLUMNS} FROM listings WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let l = listing(&row);
    let allowed = l.status == "active" || user.is_some_and(|u| u.is_admin() || u.id == l.owner_id);
    if allowed {
        Ok(l)
    } else {
        Err(ApiError::NotFound)
    }
}

/// For changes: visible, and the caller owns it or is an admin.
async fn owned(
    client: &deadpool_postgres::Object,
    id: i64,
    user: &AuthUser,
) -> Result<Listing, ApiError> {
    let l = visible(client, id, Some(user)).await?;
    if user.is_admin() || l.owner_id == user.id {
        Ok(l)
    } else {
        Err(ApiError::Forbidden(
            "only the listing's owner or an admin may change it",
        ))
    }
}

/// One listing.
#[utoipa::path(get, path = "/v1/listings/{id}", tag = "listings", params(("id" = i64, Path)),
    responses((status = 200, body = Listing), (status = 404, body = crate::error::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<i64>,
) -> Result<Json<Listing>, ApiError> {
    let client = state.pool.get().await?;
    Ok(Json(visible(&client, id, user.as_ref()).await?))
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
    let client = state.pool.get().await?;
    owned(&client, id, &user).await?;
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
    let row = client.query_one(&sql, &params(&values)).await?;
    audit(
        &client,
        Some(user.id),
        "listing.update",
        "listing",
        &id.to_string(),
    )
    .await;
    Ok(Json(listing(&row)))
}

async fn set_status(
    state: &AppState,
    user: &AuthUser,
    id: i64,
    status: &str,
    action: &str,
) -> Result<Json<Listing>, ApiError> {
    let client = state.pool.get().await?;
    owned(&client, id, user).await?;
    let row = client
        .query_one(
            &format!("UPDATE listings SET status = $2::text::listing_status, updated_at = now(), published_at = CASE WHEN $2 = 'active' THEN coalesce(published_at, now()) ELSE published_at END WHERE id = $1 RETURNING {LISTING_COLUMNS}"),
            &[&id, &status],
        )
        .await?;
    audit(&client, Some(user.id), action, "listing", &id.to_string()).await;
    Ok(Json(listing(&row)))
}

/// Make a listing visible in search (owner or admin).
#[utoipa::path(post, path = "/v1/listings/{id}/publish", tag = "listings", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Listing), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
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
    let client = state.pool.get().await?;
    owned(&client, id, &user).await?;
    client
        .execute("DELETE FROM listings WHERE id = $1", &[&id])
        .await?;
    audit(
        &client,
        Some(user.id),
        "listing.delete",
        "listing",
        &id.to_string(),
    )
    .await;
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Words to find in title and description.
    pub q: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub min_price: Option<String>,
    pub max_price: Option<String>,
    /// At least this many bedrooms.
    pub bedrooms: Option<i64>,
    pub property_type: Option<String>,
    pub listing_type: Option<String>,
    /// relevance (needs q), newest (default), price_asc or price_desc.
    pub sort: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchItem<'a> {
    pub id: i64,
    pub title: &'a str,
    pub price: &'a str,
    pub currency: &'a str,
    pub listing_type: &'a str,
    pub property_type: &'a str,
    pub bedrooms: i16,
    pub bathrooms: i16,
    pub area_m2: &'a str,
    pub address: &'a str,
    pub city: &'a str,
    pub district: &'a str,
    pub published_at: &'a str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage<'a> {
    pub items: Vec<SearchItem<'a>>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What a cursor carries: the sort, a digest of the filters, and the last row's sort key
/// and id. A cursor only continues the search it came from.
#[derive(Serialize, Deserialize)]
struct Cursor {
    s: String,
    f: String,
    k: String,
    i: i64,
}

/// A short digest of the filters (not the sort, cursor or limit), so a cursor used with
/// other filters is refused instead of silently paging a different result set.
fn filters_digest(f: &Filters) -> String {
    use sha2::Digest as _;
    let canonical = serde_json::json!([
        f.q,
        f.city,
        f.district,
        f.min_price,
        f.max_price,
        f.min_bedrooms,
        f.property_type,
        f.listing_type
    ]);
    let digest = sha2::Sha256::digest(canonical.to_string().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..9])
}

fn sort_name(s: Sort) -> &'static str {
    match s {
        Sort::Relevance => "relevance",
        Sort::Newest => "newest",
        Sort::PriceAsc => "price_asc",
        Sort::PriceDesc => "price_desc",
    }
}

fn decimal_param(field: &str, v: &Option<String>, errors: &mut FieldErrors) -> Option<String> {
    v.as_ref()
        .map(|t| check_decimal(field, &Decimal::Text(t.clone()), 12, errors))
}

/// Search active listings.
#[utoipa::path(get, path = "/v1/listings/search", tag = "listings", params(SearchQuery),
    responses((status = 200, body = SearchPage), (status = 422, body = crate::error::Problem)))]
pub async fn search(
    State(state): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::new();
    let sort = match q.sort.as_deref().unwrap_or("newest") {
        "relevance" => Sort::Relevance,
        "newest" => Sort::Newest,
        "price_asc" => Sort::PriceAsc,
        "price_desc" => Sort::PriceDesc,
        _ => {
            errors
                .entry("sort".into())
                .or_default()
                .push("must be relevance, newest, price_asc or price_desc".into());
            Sort::Newest
        }
    };
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        errors
            .entry("limit".into())
            .or_default()
            .push("must be from 1 to 100".into());
    }
    let bedrooms = match q.bedrooms {
        Some(b) if (0..=50).contains(&b) => i16::try_from(b).ok(),
        Some(_) => {
            errors
                .entry("bedrooms".into())
                .or_default()
                .push("must be from 0 to 50".into());
            None
        }
        None => None,
    };
    for (field, value, allowed) in [
        ("property_type", &q.property_type, PROPERTY_TYPES),
        ("listing_type", &q.listing_type, LISTING_TYPES),
    ] {
        if let Some(v) = value
            && !allowed.contains(&v.as_str())
        {
            errors
                .entry(field.into())
                .or_default()
                .push(format!("must be one of {}", allowed.join(", ")));
        }
    }
    for (field, value) in [("q", &q.q), ("city", &q.city), ("district", &q.district)] {
        if let Some(v) = value {
            crate::error::check_text(field, v, &mut errors);
        }
    }
    let min_price = decimal_param("min_price", &q.min_price, &mut errors);
    let max_price = decimal_param("max_price", &q.max_price, &mut errors);
    let text =
        q.q.as_ref()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
    if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
        errors
            .entry("q".into())
            .or_default()
            .push("must be at most 200 characters".into());
    }
    let mut filters = Filters {
        q: text,
        city: q.city.clone().filter(|c| !c.is_empty()),
        district: q.district.clone().filter(|d| !d.is_empty()),
        min_price,
        max_price,
        min_bedrooms: bedrooms,
        property_type: q.property_type.clone(),
        listing_type: q.listing_type.clone(),
        sort,
        after: None,
        limit,
    };
    if let Some(raw) = &q.cursor {
        let cursor: Option<Cursor> = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match cursor {
            Some(c)
                if c.s == sort_name(filters.effective_sort())
                    && c.f == filters_digest(&filters) =>
            {
                filters.after = Some((c.k, c.i))
            }
            _ => {
                errors
                    .entry("cursor".into())
                    .or_default()
                    .push("is not a cursor from this search (same filters and sort)".into());
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let query = filters.to_query();
    let owned: Vec<Box<dyn ToSql + Sync + Send>> = query
        .params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(t) => Box::new(t.clone()),
                Param::Int(i) => Box::new(*i),
            }
        })
        .collect();
    let refs: Vec<&(dyn ToSql + Sync)> = owned
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let client = state.pool.get().await?;
    // Prepared once per connection and shape of query, then reused: one round trip a search.
    let statement = client.prepare_cached(&query.sql).await?;
    let rows = client.query(&statement, &refs).await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(20);
    let rows = &rows[..rows.len().min(usize::try_from(limit).unwrap_or(20))];
    let effective = filters.effective_sort();
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => {
            // The query selects the key of its sort as text, whatever the sort.
            let key: String = last
                .try_get(col::SORT_KEY)
                .map_err(|e| ApiError::Internal(format!("search row without its sort key: {e}")))?;
            let c = Cursor {
                s: sort_name(effective).into(),
                f: filters_digest(&filters),
                k: key,
                i: last.try_get(col::ID)?,
            };
            serde_json::to_vec(&c)
                .ok()
                .map(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
        }
        _ => None,
    };
    // The hot path of the API: fields are borrowed from the rows (no copy per field), read
    // by position, and the page is written once into a buffer sized for it.
    let items = rows
        .iter()
        .map(|r| {
            Ok(SearchItem {
                id: r.try_get(col::ID)?,
                title: r.try_get(col::TITLE)?,
                price: r.try_get(col::PRICE)?,
                currency: r.try_get(col::CURRENCY)?,
                listing_type: r.try_get(col::LISTING_TYPE)?,
                property_type: r.try_get(col::PROPERTY_TYPE)?,
                bedrooms: r.try_get(col::BEDROOMS)?,
                bathrooms: r.try_get(col::BATHROOMS)?,
                area_m2: r.try_get(col::AREA_M2)?,
                address: r.try_get(col::ADDRESS)?,
                city: r.try_get(col::CITY)?,
                district: r.try_get(col::DISTRICT)?,
                published_at: r.try_get(col::PUBLISHED_AT)?,
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    let mut body = Vec::with_capacity(128 + 640 * items.len());
    serde_json::to_writer(&mut body, &SearchPage { items, next_cursor })
        .map_err(|e| ApiError::Internal(format!("writing a search page: {e}")))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}
