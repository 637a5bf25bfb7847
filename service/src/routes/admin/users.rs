//! Accounts, for admins: list and search them, suspend one (its access and refresh tokens
//! stop working from the next request, and its sessions end) and reinstate it.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Admin, choice, page_size, page_start, paged, rfc3339, text_filter};
use crate::AppState;
use crate::audit::{self, Entry};
use crate::error::{ApiError, FieldErrors, add_error, check_fields, check_text};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Part of the e-mail address or display name (case-insensitive).
    pub q: Option<String>,
    /// buyer, agent or admin.
    pub role: Option<String>,
    /// active or suspended.
    pub status: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100, default 50.
    pub limit: Option<i64>,
}

/// An account, as admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub display_name: String,
    pub created_at: String,
    /// When the account was suspended; null when it is active.
    pub suspended_at: Option<String>,
    pub suspension_reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountPage {
    pub items: Vec<Account>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Why an admin acts: shown to the account's owner or kept with the audit entry.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

impl Reason {
    /// The reason, trimmed, once it is 1 to 500 characters without NUL.
    pub(super) fn checked(&self) -> Result<String, ApiError> {
        let mut errors = FieldErrors::new();
        let reason = self.reason.trim();
        check_text("reason", reason, &mut errors);
        if !(1..=500).contains(&reason.chars().count()) {
            add_error(&mut errors, "reason", "must be 1 to 500 characters");
        }
        check_fields(errors)?;
        Ok(reason.to_string())
    }
}

fn columns() -> String {
    format!(
        "id, email, role::text, display_name, {}, {}, suspension_reason",
        rfc3339("created_at", false),
        rfc3339("suspended_at", false)
    )
}

fn account(row: &tokio_postgres::Row) -> Account {
    Account {
        id: row.get(0),
        email: row.get(1),
        role: row.get(2),
        display_name: row.get(3),
        created_at: row.get(4),
        suspended_at: row.get(5),
        suspension_reason: row.get(6),
    }
}

/// Accounts, newest first: search by e-mail or name, filter by role and status.
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", params(UserQuery), security(("bearer" = [])),
    responses((status = 200, body = AccountPage), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn users(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<UserQuery>,
) -> Result<Json<AccountPage>, ApiError> {
    let mut errors = FieldErrors::new();
    let text = text_filter("q", q.q.as_deref(), 254, &mut errors).map(|t| t.to_lowercase());
    let role = choice(
        "role",
        q.role.as_deref(),
        &["buyer", "agent", "admin"],
        &mut errors,
    );
    let status = choice(
        "status",
        q.status.as_deref(),
        &["active", "suspended"],
        &mut errors,
    );
    let suspended = status.map(|s| s == "suspended");
    let limit = page_size(q.limit, &mut errors);
    let before = page_start(q.cursor.as_deref(), &mut errors);
    check_fields(errors)?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {} FROM users \
                 WHERE ($1::text IS NULL OR strpos(email, $1) > 0 OR strpos(lower(display_name), $1) > 0) \
                   AND ($2::text IS NULL OR role::text = $2) \
                   AND ($3::bool IS NULL OR (suspended_at IS NOT NULL) = $3) \
                   AND ($4::bigint IS NULL OR id < $4) \
                 ORDER BY id DESC LIMIT $5",
                columns()
            ),
            &[&text, &role, &suspended, &before, &(limit + 1)],
        )
        .await?;
    let (items, next_cursor) = paged(rows.iter().map(account).collect(), limit, |u| u.id);
    Ok(Json(AccountPage { items, next_cursor }))
}

/// Suspends (`true`) or reinstates (`false`) account `id` for `admin`, with its audit entry.
async fn set_suspended(
    state: &AppState,
    admin: &Admin,
    id: i64,
    reason: Option<String>,
) -> Result<Json<Account>, ApiError> {
    let suspend = reason.is_some();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT suspended_at IS NOT NULL, suspension_reason FROM users WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let (was, old_reason): (bool, Option<String>) = (row.get(0), row.get(1));
    if suspend && id == admin.0.id {
        return Err(ApiError::Conflict(
            "admins cannot suspend their own account".into(),
        ));
    }
    if was == suspend {
        return Err(ApiError::Conflict(if suspend {
            "the account is already suspended".into()
        } else {
            "the account is not suspended".into()
        }));
    }
    let row = tx
        .query_one(
            &format!(
                "UPDATE users SET suspended_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END, \
                 suspension_reason = $2, updated_at = now() WHERE id = $1 RETURNING {}",
                columns()
            ),
            &[&id, &reason],
        )
        .await?;
    // A suspension ends every session: no refresh token of the account works any more.
    let ended = if suspend {
        tx.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
            &[&id],
        )
        .await?
    } else {
        0
    };
    let (action, data) = if suspend {
        (
            "user.suspend",
            json!({"reason": reason, "before": {"suspended": false}, "after": {"suspended": true}, "sessions_ended": ended}),
        )
    } else {
        (
            "user.reinstate",
            json!({"before": {"suspended": true, "reason": old_reason}, "after": {"suspended": false}}),
        )
    };
    let entry = Entry {
        actor: Some(admin.0.id),
        action,
        entity: "user",
        entity_id: id.to_string(),
        data,
    };
    audit::record(&tx, entry).await?;
    tx.commit().await?;
    Ok(Json(account(&row)))
}

/// Suspend an account: from its next request on, none of its tokens work (403
/// `/problems/account-suspended`), its sessions end and it cannot log in.
#[utoipa::path(post, path = "/v1/admin/users/{id}/suspend", tag = "admin", params(("id" = i64, Path)), request_body = Reason, security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn suspend(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
    Json(body): Json<Reason>,
) -> Result<Json<Account>, ApiError> {
    let reason = body.checked()?;
    set_suspended(&state, &admin, id, Some(reason)).await
}

/// Reinstate a suspended account: its owner can log in again.
#[utoipa::path(post, path = "/v1/admin/users/{id}/reinstate", tag = "admin", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn reinstate(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Json<Account>, ApiError> {
    set_suspended(&state, &admin, id, None).await
}
