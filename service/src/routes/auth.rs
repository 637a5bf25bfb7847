//! Accounts and sessions: register, login, refresh (rotating, with reuse detection),
//! logout, me. Each change (an account, a session started, rotated, reused or ended) is
//! written with its audit entry in one transaction.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::audit::{self, Entry};
use crate::auth::{self, AuthUser};
use crate::error::{ApiError, FieldErrors, add_error, check_fields};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// 10 to 128 characters.
    #[schema(min_length = 10, max_length = 128)]
    pub password: String,
    /// `buyer` (default) or `agent`. Admins are never self-assigned.
    pub role: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub display_name: String,
    pub created_at: String,
}

fn normalize_email(raw: &str, errors: &mut FieldErrors) -> String {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        })
        && !email.chars().any(char::is_whitespace);
    if !valid {
        add_error(errors, "email", "must be an e-mail address");
    }
    email
}

/// Issues an access token and a new refresh token in `family`, with the session cookies.
/// `client` may be a transaction: a rotation stores the new token in the transaction that
/// retires the old one.
async fn session<C: deadpool_postgres::GenericClient>(
    state: &AppState,
    client: &C,
    user_id: i64,
    role: &str,
    family: &str,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let refresh = auth::random_token(32)?;
    let csrf = auth::random_token(24)?;
    let ttl = state.config.refresh_ttl.as_secs();
    client
        .execute(
            "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) VALUES ($1, $2::text::uuid, $3, now() + make_interval(secs => $4::bigint))",
            &[&user_id, &family, &auth::sha256(&refresh), &i64::try_from(ttl).unwrap_or(i64::MAX)],
        )
        .await?;
    let body = TokenResponse {
        access_token: auth::issue_access_token(state, user_id, role)?,
        token_type: "Bearer",
        expires_in: state.config.access_ttl.as_secs(),
    };
    let mut res = (status, Json(body)).into_response();
    for c in auth::session_cookies(&refresh, &csrf, ttl) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Starts a session of a new family for `user_id` and audits `action` (a register or a
/// login, whose `data` summarises it), in `tx`; the caller commits.
async fn new_session(
    state: &AppState,
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: i64,
    role: &str,
    action: &str,
    data: serde_json::Value,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let family = auth::random_uuid()?;
    let res = session(state, tx, user_id, role, &family, status).await?;
    audit::record(
        tx,
        Entry {
            actor: Some(user_id),
            action,
            entity: "user",
            entity_id: user_id.to_string(),
            data,
        },
    )
    .await?;
    Ok(res)
}

/// Create an account (buyer or agent) and start a session. The account's e-mails are in
/// the language `Accept-Language` asks for (English or Vietnamese; English by default).
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = TokenResponse), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::new();
    let email = normalize_email(&req.email, &mut errors);
    let len = req.password.chars().count();
    if !(10..=128).contains(&len) {
        add_error(&mut errors, "password", "must be 10 to 128 characters");
    }
    let role = req.role.unwrap_or_else(|| "buyer".into());
    if role != "buyer" && role != "agent" {
        add_error(&mut errors, "role", "must be `buyer` or `agent`");
    }
    crate::error::check_text("email", &req.email, &mut errors);
    let display_name = req.display_name.unwrap_or_default().trim().to_string();
    crate::error::check_text("display_name", &display_name, &mut errors);
    if display_name.chars().count() > 100 {
        add_error(
            &mut errors,
            "display_name",
            "must be at most 100 characters",
        );
    }
    check_fields(errors)?;
    let hash = auth::hash_password_async(req.password.clone()).await?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "INSERT INTO users (email, password_hash, role, display_name, locale) VALUES ($1, $2, $3::text::user_role, $4, $5) RETURNING id",
            &[&email, &hash, &role, &display_name, &crate::i18n::current().tag()],
        )
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Conflict(_) => ApiError::Conflict("an account with this e-mail already exists".into()),
            other => other,
        })?;
    let id: i64 = row.get(0);
    let after = serde_json::json!({"after": {"email": email, "role": role}});
    let res = new_session(
        &state,
        &tx,
        id,
        &role,
        "user.register",
        after,
        StatusCode::CREATED,
    )
    .await?;
    crate::notify::notify(&tx, id, crate::notify::Kind::Welcome, serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(res)
}

/// Log in with e-mail and password (a suspended account, with the right password: 403).
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::error::Problem), (status = 403, description = "The account is suspended", body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let email = req.email.trim().to_lowercase();
    if email.contains('\0') || email.len() > 254 {
        // No such account can exist; answer like any other failed login.
        auth::verify_password_async(req.password.clone(), auth::dummy_hash().to_string()).await;
        return Err(ApiError::Unauthenticated("wrong e-mail or password"));
    }
    let mut client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT id, password_hash, role::text, suspended_at IS NOT NULL FROM users WHERE email = $1",
            &[&email],
        )
        .await?;
    let (id, hash, role, suspended): (i64, String, String, bool) = match &row {
        Some(r) => (r.get(0), r.get(1), r.get(2), r.get(3)),
        None => (0, auth::dummy_hash().to_string(), String::new(), false),
    };
    // Verify even for an unknown e-mail, so timing does not tell which accounts exist.
    let ok = auth::verify_password_async(req.password.clone(), hash).await && row.is_some();
    if !ok {
        return Err(ApiError::Unauthenticated("wrong e-mail or password"));
    }
    // Only someone who knows the password learns that the account is suspended.
    if suspended {
        return Err(ApiError::Suspended);
    }
    let tx = client.transaction().await?;
    let res = new_session(
        &state,
        &tx,
        id,
        &role,
        "user.login",
        serde_json::json!({}),
        StatusCode::OK,
    )
    .await?;
    tx.commit().await?;
    Ok(res)
}

/// Exchange the refresh cookie for new tokens (needs the CSRF header). The old refresh
/// token stops working; presenting it again revokes the whole session family.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth",
    params(("x-csrf-token" = String, Header, description = "the value of the goodgo_csrf cookie")),
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Without a refresh cookie there is no session to protect: say so (401) before
    // asking for the CSRF header (403).
    let token = auth::cookie(&headers, auth::REFRESH_COOKIE)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated("no refresh cookie; log in"))?;
    auth::check_csrf(&headers)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT t.id, t.user_id, t.family_id::text, t.rotated_at IS NOT NULL, t.revoked_at IS NOT NULL, t.expires_at < now(), u.role::text, u.suspended_at IS NOT NULL
             FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1 FOR UPDATE OF t",
            &[&auth::sha256(&token)],
        )
        .await?;
    let Some(row) = row else {
        return Err(ApiError::Unauthenticated(
            "the refresh token is not valid; log in",
        ));
    };
    let (token_id, user_id, family, rotated, revoked, expired, role, suspended): (
        i64,
        i64,
        String,
        bool,
        bool,
        bool,
        String,
        bool,
    ) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
        row.get(6),
        row.get(7),
    );
    if suspended {
        return Err(ApiError::Suspended);
    }
    if revoked {
        return Err(ApiError::Unauthenticated("this session was ended; log in"));
    }
    let entry = |action, data| Entry {
        actor: Some(user_id),
        action,
        entity: "user",
        entity_id: user_id.to_string(),
        data,
    };
    if rotated {
        let ended = tx.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1::text::uuid AND revoked_at IS NULL", &[&family]).await?;
        let data = serde_json::json!({"family": family, "revoked": ended});
        audit::record(&tx, entry("session.reuse_detected", data)).await?;
        tx.commit().await?;
        tracing::warn!(user_id, "refresh token reuse: session family revoked");
        return Err(ApiError::Unauthenticated(
            "this refresh token was already used; the session was ended for safety, log in again",
        ));
    }
    if expired {
        return Err(ApiError::Unauthenticated("the session expired; log in"));
    }
    tx.execute(
        "UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1",
        &[&token_id],
    )
    .await?;
    // The old token is retired and its successor stored atomically: a failure in between
    // leaves the old token valid rather than the session without any token.
    let res = session(&state, &tx, user_id, &role, &family, StatusCode::OK).await?;
    let data = serde_json::json!({"family": family});
    audit::record(&tx, entry("session.refresh", data)).await?;
    tx.commit().await?;
    Ok(res)
}

/// End the session: its refresh tokens stop working and the cookies are cleared.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    params(("x-csrf-token" = String, Header, description = "the value of the goodgo_csrf cookie")),
    responses((status = 204), (status = 403, body = crate::error::Problem)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = auth::cookie(&headers, auth::REFRESH_COOKIE).filter(|t| !t.is_empty()) {
        auth::check_csrf(&headers)?;
        let mut client = state.pool.get().await?;
        let tx = client.transaction().await?;
        let ended = tx
            .query(
                "UPDATE refresh_tokens t SET revoked_at = now() FROM refresh_tokens presented \
                 WHERE presented.token_hash = $1 AND t.family_id = presented.family_id AND t.revoked_at IS NULL \
                 RETURNING t.user_id, t.family_id::text",
                &[&auth::sha256(&token)],
            )
            .await?;
        // An unknown or already ended session changes nothing, and leaves no entry.
        if let Some(first) = ended.first() {
            let (user_id, family): (i64, String) = (first.get(0), first.get(1));
            let entry = Entry {
                actor: Some(user_id),
                action: "session.logout",
                entity: "user",
                entity_id: user_id.to_string(),
                data: serde_json::json!({"family": family, "revoked": ended.len()}),
            };
            audit::record(&tx, entry).await?;
        }
        tx.commit().await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    for c in auth::clear_cookies() {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

/// The caller's account.
#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::Problem)))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<Me>, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT id, email, role::text, display_name, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM users WHERE id = $1",
            &[&user.id],
        )
        .await?
        .ok_or(ApiError::Unauthenticated("the account no longer exists"))?;
    Ok(Json(Me {
        id: row.get(0),
        email: row.get(1),
        role: row.get(2),
        display_name: row.get(3),
        created_at: row.get(4),
    }))
}
