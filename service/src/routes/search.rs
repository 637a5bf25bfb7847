//! The public search over active listings: filters, sorts, and keyset cursors that only
//! continue the search they came from.

use axum::extract::{Query, State};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use goodgo_db::search::{Filters, Param, Sort, col};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;

use crate::AppState;
use crate::cache::Lookup;
use crate::error::{ApiError, FieldErrors, add_error, check_fields};
use crate::routes::listings::{Decimal, LISTING_TYPES, PROPERTY_TYPES, check_decimal};

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
            add_error(
                &mut errors,
                "sort",
                "must be relevance, newest, price_asc or price_desc",
            );
            Sort::Newest
        }
    };
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        add_error(&mut errors, "limit", "must be from 1 to 100");
    }
    let bedrooms = match q.bedrooms {
        Some(b) if (0..=50).contains(&b) => i16::try_from(b).ok(),
        Some(_) => {
            add_error(&mut errors, "bedrooms", "must be from 0 to 50");
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
            add_error(
                &mut errors,
                field,
                format!("must be one of {}", allowed.join(", ")),
            );
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
        add_error(&mut errors, "q", "must be at most 200 characters");
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
                add_error(
                    &mut errors,
                    "cursor",
                    "is not a cursor from this search (same filters and sort)",
                );
            }
        }
    }
    check_fields(errors)?;
    let query = filters.to_query();
    // The page is a function of the query and its parameters: cached under their digest,
    // in the generation of the city searched (or of all cities).
    let mut store = None;
    if let Some(redis) = &state.redis {
        match redis
            .search(filters.city.as_deref(), &query_digest(&query))
            .await
        {
            Lookup::Hit(body) => return Ok(json_body(body)),
            Lookup::Miss(key) => store = Some(key),
            Lookup::Unavailable => {}
        }
    }
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
                .map_err(|e| ApiError::internal("search row without its sort key", e))?;
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
        .map_err(|e| ApiError::internal("writing a search page", e))?;
    if let (Some(redis), Some(key)) = (&state.redis, store) {
        redis.store(&key, &body).await;
    }
    Ok(json_body(body))
}

/// A JSON answer of `body`.
pub(crate) fn json_body(body: Vec<u8>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A digest of a search's SQL and parameters: equal digests, equal pages.
fn query_digest(query: &goodgo_db::search::Query) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(query.sql.as_bytes());
    for p in &query.params {
        match p {
            Param::Text(t) => {
                h.update([0u8]);
                h.update(u64::try_from(t.len()).unwrap_or(0).to_le_bytes());
                h.update(t.as_bytes());
            }
            Param::Int(i) => {
                h.update([1u8]);
                h.update(i.to_le_bytes());
            }
        }
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}
