//! The caller's notifications (newest first, keyset paged) in the request's language, and
//! their settings: the language of their e-mails and the kinds of e-mail turned off.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, FieldErrors, add_error, check_fields};
use crate::i18n::{self, Locale};
use crate::notify::{self, Kind};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: i64,
    /// welcome, listing.published, listing.unpublished, payment.receipt or
    /// subscription.ended.
    pub kind: String,
    /// In the request's language (`Accept-Language`, English by default).
    pub subject: String,
    pub body: String,
    /// What the texts are made of (a listing's id and title, a plan, ...).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// The e-mail: `pending`, `sent`, `failed`, or `off` (that kind was turned off, before
    /// or while it waited).
    pub email: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The caller's notifications, newest first, in the request's language (`Accept-Language`;
/// `Content-Language` says which).
#[utoipa::path(get, path = "/v1/me/notifications", tag = "notifications", params(NotificationQuery), security(("bearer" = [])),
    responses((status = 200, body = NotificationPage), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<NotificationQuery>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let mut errors = FieldErrors::new();
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        add_error(&mut errors, "limit", "must be from 1 to 100");
    }
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => {
            let id = Some(c)
                .filter(|c| (1..=19).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|c| c.parse::<i64>().ok());
            if id.is_none() {
                add_error(
                    &mut errors,
                    "cursor",
                    "must be a next_cursor of a previous page",
                );
            }
            id
        }
    };
    check_fields(errors)?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT n.id, n.kind, n.data::text, CASE WHEN o.status IN ('pending', 'sent', 'failed') THEN o.status ELSE 'off' END, \
                    to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                    u.email, u.display_name \
             FROM notifications n JOIN users u ON u.id = n.user_id \
             LEFT JOIN outbox o ON o.id = n.outbox_id \
             WHERE n.user_id = $1 AND ($2::bigint IS NULL OR n.id < $2) \
             ORDER BY n.id DESC LIMIT $3",
            &[&user.id, &before, &(limit + 1)],
        )
        .await?;
    let locale = i18n::current();
    let mut items: Vec<Notification> = rows
        .iter()
        .map(|r| {
            let kind: String = r.get(1);
            let data: serde_json::Value =
                serde_json::from_str(r.get::<_, &str>(2)).unwrap_or_default();
            let args = notify::args(&data, r.get(5), r.get(6));
            let texts = notify::texts(locale, &kind, &args);
            Notification {
                id: r.get(0),
                kind,
                subject: texts.subject,
                body: texts.body,
                data,
                email: r.get(3),
                created_at: r.get(4),
            }
        })
        .collect();
    let limit = usize::try_from(limit).unwrap_or(50);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|n| n.id.to_string())
    } else {
        None
    };
    Ok((
        [(axum::http::header::CONTENT_LANGUAGE, locale.tag())],
        Json(NotificationPage { items, next_cursor }),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationSettings {
    /// The language of the caller's e-mails: `en` or `vi`.
    pub locale: String,
    /// Per kind of notification, whether it is also sent by e-mail.
    pub email: BTreeMap<String, bool>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// `en` or `vi`.
    pub locale: Option<String>,
    /// Kinds to turn on (`true`) or off (`false`); kinds not named keep their setting.
    pub email: Option<BTreeMap<String, bool>>,
}

async fn read_settings(
    client: &impl deadpool_postgres::GenericClient,
    user: i64,
) -> Result<NotificationSettings, ApiError> {
    let row = client
        .query_opt(
            "SELECT locale, email_muted FROM users WHERE id = $1",
            &[&user],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let muted: Vec<String> = row.get(1);
    Ok(NotificationSettings {
        locale: row.get(0),
        email: Kind::ALL
            .iter()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    !muted.iter().any(|m| m == k.as_str()),
                )
            })
            .collect(),
    })
}

/// The caller's notification settings.
#[utoipa::path(get, path = "/v1/me/notifications/settings", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = NotificationSettings), (status = 401, body = crate::error::Problem)))]
pub async fn settings(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<NotificationSettings>, ApiError> {
    let client = state.pool.get().await?;
    read_settings(&client, user.id).await.map(Json)
}

/// Change the language of the caller's e-mails, or turn kinds of e-mail on or off. A kind
/// turned off still appears in `GET /v1/me/notifications`; e-mails already waiting for it
/// are not sent.
#[utoipa::path(patch, path = "/v1/me/notifications/settings", tag = "notifications", request_body = SettingsChange, security(("bearer" = [])),
    responses((status = 200, body = NotificationSettings), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update_settings(
    State(state): State<AppState>,
    user: AuthUser,
    Json(change): Json<SettingsChange>,
) -> Result<Json<NotificationSettings>, ApiError> {
    let mut errors = FieldErrors::new();
    let locale = change.locale.as_deref().map(|l| {
        let parsed = Locale::parse(l).filter(|p| p.tag() == l.trim().to_ascii_lowercase());
        if parsed.is_none() {
            add_error(&mut errors, "locale", "must be en or vi");
        }
        parsed.unwrap_or(Locale::En).tag()
    });
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for (kind, enabled) in change.email.unwrap_or_default() {
        match Kind::parse(&kind) {
            Some(k) if enabled => on.push(k.as_str().to_string()),
            Some(k) => off.push(k.as_str().to_string()),
            None => add_error(
                &mut errors,
                "email",
                format!(
                    "`{}` is not a kind of notification ({})",
                    kind.chars().take(64).collect::<String>(),
                    Kind::ALL.map(Kind::as_str).join(", ")
                ),
            ),
        }
    }
    check_fields(errors)?;
    let client = state.pool.get().await?;
    client
        .execute(
            "UPDATE users SET locale = coalesce($2, locale), \
                    email_muted = ARRAY(SELECT DISTINCT k FROM unnest(email_muted || $3::text[]) k \
                                        WHERE k <> ALL ($4::text[]) ORDER BY k), \
                    updated_at = now() \
             WHERE id = $1",
            &[&user.id, &locale, &off, &on],
        )
        .await?;
    read_settings(&client, user.id).await.map(Json)
}
