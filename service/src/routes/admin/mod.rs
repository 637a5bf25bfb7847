//! The admin API (`/v1/admin/*`): users (list, search, suspend, reinstate), listing
//! moderation, payments, subscriptions and the audit log. Admins only, and that is checked
//! in one place: [`router`] puts every admin route under the [`require_admin`] layer, which
//! authenticates the caller (suspension included) and refuses anyone but an admin before
//! any handler runs; handlers receive the caller as [`Admin`], which only that layer
//! provides. Lists are keyset paged by id, newest first (`cursor` from `next_cursor`).

pub mod moderation;
pub mod records;
pub mod users;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldErrors, add_error, check_text};

use moderation::unpublish;
use records::{audit, payments, subscriptions};
use users::{Reason, reinstate, suspend, users};

/// Every admin route, behind [`require_admin`].
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/admin/users", get(users))
        .route("/v1/admin/users/{id}/suspend", post(suspend))
        .route("/v1/admin/users/{id}/reinstate", post(reinstate))
        .route("/v1/admin/listings/{id}/unpublish", post(unpublish))
        .route("/v1/admin/payments", get(payments))
        .route("/v1/admin/subscriptions", get(subscriptions))
        .route("/v1/admin/audit", get(audit))
        .route_layer(axum::middleware::from_fn_with_state(state, require_admin))
}

/// The one check of the admin API: a valid token of an account that is not suspended
/// (401 or 403 otherwise, as everywhere) and whose role is admin (403 otherwise).
pub async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let user = match AuthUser::from_request_parts(&mut parts, &state).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    if !user.is_admin() {
        return ApiError::Forbidden("only admins may use the admin API").into_response();
    }
    parts.extensions.insert(Admin(user));
    next.run(Request::from_parts(parts, body)).await
}

/// The admin making the request, as [`require_admin`] found it. A handler that takes it
/// outside that layer gets a 403, never an unchecked caller.
#[derive(Debug, Clone)]
pub struct Admin(pub AuthUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Admin>()
            .cloned()
            .ok_or(ApiError::Forbidden("only admins may use the admin API"))
    }
}

/// A page's size: `limit` from 1 to 100 (default 50).
fn page_size(limit: Option<i64>, errors: &mut FieldErrors) -> i64 {
    let limit = limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        add_error(errors, "limit", "must be from 1 to 100");
        return 50;
    }
    limit
}

/// Where a page starts: the `cursor` a previous page answered as `next_cursor`.
fn page_start(cursor: Option<&str>, errors: &mut FieldErrors) -> Option<i64> {
    let cursor = cursor?;
    let id = Some(cursor)
        .filter(|c| (1..=19).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<i64>().ok());
    if id.is_none() {
        add_error(errors, "cursor", "must be a next_cursor of a previous page");
    }
    id
}

/// The rows of a page of `limit`, fetched as `limit + 1` (the extra row only says that
/// there is a next page), and the cursor of the next page: the last row's id, which
/// `id_of` reads.
fn paged<T>(mut items: Vec<T>, limit: i64, id_of: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(50);
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| id_of(last).to_string())
    } else {
        None
    };
    (items, next)
}

/// A text filter: at most `max` characters, no NUL; `None` when absent or empty.
fn text_filter(
    field: &str,
    value: Option<&str>,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    check_text(field, value, errors);
    if value.chars().count() > max {
        add_error(errors, field, format!("must be at most {max} characters"));
    }
    Some(value.to_string())
}

/// A filter that must be one of `allowed`.
fn choice(
    field: &str,
    value: Option<&str>,
    allowed: &[&str],
    errors: &mut FieldErrors,
) -> Option<String> {
    let value = value?;
    if !allowed.contains(&value) {
        add_error(
            errors,
            field,
            format!("must be one of {}", allowed.join(", ")),
        );
    }
    Some(value.to_string())
}

/// A moment, as PostgreSQL will read it: an RFC 3339 time (`2026-12-01T10:00:00Z`,
/// `2026-12-01T10:00:00.5+07:00`) or a day (`2026-12-01`, midnight UTC). Checked here,
/// calendar included, so that no value reaches the database that it would refuse.
fn moment(field: &str, value: Option<&str>, errors: &mut FieldErrors) -> Option<String> {
    let value = value?;
    let valid = parse_moment(value).is_some();
    if !valid {
        add_error(
            errors,
            field,
            "must be an RFC 3339 time like 2026-12-01T10:00:00Z, or a day like 2026-12-01",
        );
        return None;
    }
    Some(if value.len() == 10 {
        format!("{value}T00:00:00Z")
    } else {
        value.to_string()
    })
}

/// `Some(())` when `value` is a valid RFC 3339 time or date (years 1 to 9999).
fn parse_moment(value: &str) -> Option<()> {
    let b = value.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if year == 0 || b[4] != b'-' || b[7] != b'-' || !(1..=days).contains(&day) {
        return None;
    }
    if b.len() == 10 {
        return Some(());
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[10] != b'T' || b[13] != b':' || b[16] != b':' || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        rest = &fraction[digits..];
    }
    let at = b.len() - rest.len();
    match rest.first() {
        Some(b'Z') if rest.len() == 1 => Some(()),
        Some(b'+' | b'-') if rest.len() == 6 && rest[3] == b':' => {
            let (hours, minutes) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            (hours <= 15 && minutes <= 59).then_some(())
        }
        _ => None,
    }
}

/// `column` (a timestamptz) as RFC 3339 text in UTC, seconds (or microseconds with
/// `micros`).
fn rfc3339(column: &str, micros: bool) -> String {
    let fraction = if micros { ".US" } else { "" };
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS{fraction}\"Z\"')")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_rfc3339_times_or_days_with_a_real_calendar() {
        for good in [
            "2026-12-01",
            "2024-02-29",
            "2026-12-01T10:00:00Z",
            "2026-12-01T23:59:59.123456Z",
            "2026-12-01T10:00:00+07:00",
            "2026-12-01T10:00:00.5-03:30",
            "0001-01-01T00:00:00Z",
        ] {
            assert!(parse_moment(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-29",
            "2025-04-31",
            "0000-01-01",
            "2026-12-01T24:00:00Z",
            "2026-12-01T10:60:00Z",
            "2026-12-01T10:00:60Z",
            "2026-12-01T10:00:00",
            "2026-12-01 10:00:00Z",
            "2026-12-01T10:00:00.Z",
            "2026-12-01T10:00:00+16:00",
            "2026-12-01T10:00:00+07:0x",
            "2026-12-01T10:00:00Zjunk",
            "２０２６-12-01",
            "2026-1-01",
        ] {
            assert!(parse_moment(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn pages_and_cursors() {
        let mut errors = FieldErrors::new();
        assert_eq!(page_start(Some("42"), &mut errors), Some(42));
        assert_eq!(page_size(None, &mut errors), 50);
        assert!(errors.is_empty());
        for bad in ["", "-1", "4x", "99999999999999999999", "١٢"] {
            let mut errors = FieldErrors::new();
            assert_eq!(page_start(Some(bad), &mut errors), None, "{bad}");
            assert!(errors.contains_key("cursor"), "{bad}");
        }
        let (items, next) = paged(vec![9, 8, 7], 2, |i| *i);
        assert_eq!((items, next.as_deref()), (vec![9, 8], Some("8")));
        let (items, next) = paged(vec![9, 8], 2, |i| *i);
        assert_eq!((items, next), (vec![9, 8], None));
    }
}
