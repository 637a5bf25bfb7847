//! Who is calling: password hashing (argon2id), short-lived access tokens (HS256 JWT,
//! `Authorization: Bearer`), random refresh tokens stored only as SHA-256 digests, and the
//! double-submit CSRF check for the cookie-authenticated endpoints. A token only names the
//! account: every authenticated request reads the account's role and suspension from the
//! database, so a suspension (or a role change) holds from the next request on.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::AppState;
use crate::error::ApiError;

pub const REFRESH_COOKIE: &str = "goodgo_refresh";
pub const CSRF_COOKIE: &str = "goodgo_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
const ISSUER: &str = "goodgo-api";

/// A hash of a password nobody has, so a login for an unknown e-mail costs the same time.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not-a-real-password-for-timing").unwrap_or_default())
}

/// Hashes on the blocking pool: argon2 is deliberately slow and must not stall the
/// threads that serve other requests.
pub async fn hash_password_async(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal("hashing task", e))?
}

/// Verifies on the blocking pool (see [`hash_password_async`]).
pub async fn verify_password_async(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false)
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal("hashing a password", e))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::PasswordVerifier;
    let Ok(parsed) = argon2::PasswordHash::new(hash) else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// `n` random bytes, base64url without padding.
pub fn random_token(n: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| ApiError::internal("random bytes", e))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// A random UUID (version 4) as text.
pub fn random_uuid() -> Result<String, ApiError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| ApiError::internal("random bytes", e))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

pub fn sha256(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn issue_access_token(state: &AppState, user_id: i64, role: &str) -> Result<String, ApiError> {
    let iat = now();
    let claims = Claims {
        sub: user_id.to_string(),
        role: role.to_string(),
        iat,
        exp: iat + state.config.access_ttl.as_secs(),
        iss: ISSUER.into(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&state.config.jwt_secret),
    )
    .map_err(|e| ApiError::internal("signing a token", e))
}

/// The caller's role, or why its account may not act: one primary-key read per
/// authenticated request (a prepared statement kept per connection).
const ACCOUNT: &str = "SELECT role::text, suspended_at IS NOT NULL FROM users WHERE id = $1";

/// The authenticated caller, from a valid `Authorization: Bearer` access token of an
/// account that exists and is not suspended; `role` is the account's role now.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub role: String,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthenticated(
                "send an access token: Authorization: Bearer TOKEN",
            ))?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or(ApiError::Unauthenticated(
                "the Authorization header must be `Bearer TOKEN`",
            ))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(&state.config.jwt_secret),
            &validation,
        )
        .map_err(|_| {
            ApiError::Unauthenticated("the access token is invalid or expired; refresh it")
        })?;
        let id: i64 = data
            .claims
            .sub
            .parse()
            .map_err(|_| ApiError::Unauthenticated("the access token is invalid"))?;
        let client = state.pool.get().await?;
        let statement = client.prepare_cached(ACCOUNT).await?;
        let row = client
            .query_opt(&statement, &[&id])
            .await?
            .ok_or(ApiError::Unauthenticated("the account no longer exists"))?;
        if row.get::<_, bool>(1) {
            return Err(ApiError::Suspended);
        }
        Ok(AuthUser {
            id,
            role: row.get(0),
        })
    }
}

/// `Option<AuthUser>`: the caller when there is one; anonymous callers are `None` (a bad
/// token is still 401).
impl OptionalFromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Ok(None);
        }
        <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Double submit: the CSRF cookie and the `X-CSRF-Token` header must both be there and
/// equal (compared in constant time). A cross-site page can make the browser send the
/// cookie, but cannot read it to put it in the header.
pub fn check_csrf(headers: &HeaderMap) -> Result<(), ApiError> {
    let from_cookie = cookie(headers, CSRF_COOKIE).ok_or(ApiError::Forbidden(
        "the CSRF cookie is missing; log in again",
    ))?;
    let from_header = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Forbidden(
            "send the CSRF cookie's value in the X-CSRF-Token header",
        ))?;
    if from_cookie.len() == from_header.len()
        && bool::from(from_cookie.as_bytes().ct_eq(from_header.as_bytes()))
        && from_cookie.len() >= 16
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the X-CSRF-Token header does not match the CSRF cookie",
        ))
    }
}

/// `Set-Cookie` values for a fresh session: the refresh token (HttpOnly, only sent to the
/// auth endpoints) and the CSRF token (readable by the page, so it can echo it).
pub fn session_cookies(refresh: &str, csrf: &str, max_age_s: u64) -> [String; 2] {
    [
        format!(
            "{REFRESH_COOKIE}={refresh}; Path=/v1/auth; Max-Age={max_age_s}; HttpOnly; Secure; SameSite=Strict"
        ),
        format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={max_age_s}; Secure; SameSite=Strict"),
    ]
}

pub fn clear_cookies() -> [String; 2] {
    [
        format!("{REFRESH_COOKIE}=; Path=/v1/auth; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
        format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; Secure; SameSite=Strict"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens() {
        let h = hash_password("correct horse battery").unwrap_or_default();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert_ne!(
            random_token(32).unwrap_or_default(),
            random_token(32).unwrap_or_default()
        );
        assert_eq!(random_uuid().unwrap_or_default().len(), 36);
        assert_eq!(sha256("x").len(), 32);
    }

    #[test]
    fn csrf_needs_matching_cookie_and_header() {
        use axum::http::HeaderValue;
        let mut h = HeaderMap::new();
        assert!(check_csrf(&h).is_err());
        h.insert(
            "cookie",
            HeaderValue::from_static("a=b; goodgo_csrf=0123456789abcdef0123"),
        );
        assert!(check_csrf(&h).is_err(), "header missing");
        h.insert(
            CSRF_HEADER,
            HeaderValue::from_static("0123456789abcdef0124"),
        );
        assert!(check_csrf(&h).is_err(), "mismatch");
        h.insert(
            CSRF_HEADER,
            HeaderValue::from_static("0123456789abcdef0123"),
        );
        assert!(check_csrf(&h).is_ok());
    }
}
