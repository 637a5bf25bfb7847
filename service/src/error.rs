//! Errors as RFC 9457 problem details (`application/problem+json`) with a stable `type`.
//! Internal causes are logged with the request id, never sent to the client.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Field name → what is wrong with it.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// The cause of an internal error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthenticated(&'static str),
    #[error("forbidden")]
    Forbidden(&'static str),
    /// The caller's account is suspended: its tokens, refresh tokens and password stop
    /// working until an admin reinstates it.
    #[error("account suspended")]
    Suspended,
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// Publishing beyond the plan's active-listing quota.
    #[error("the {plan} plan's quota of {quota} active listings is used up")]
    QuotaExceeded { plan: String, quota: i64 },
    #[error("too many requests")]
    RateLimited { retry_after_s: u64 },
    /// Something failed on our side: what we were doing, and why (kept as the source, logged
    /// with the request id, never sent to the client).
    #[error("internal error: {context}")]
    Internal {
        context: &'static str,
        #[source]
        source: BoxError,
    },
    /// The database cannot be reached (no connection from the pool): worth a retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// No photo storage is configured (`GOODGO_S3_BUCKET`): the photo routes are off.
    #[error("photo storage is not configured")]
    PhotosDisabled,
    /// The photo storage cannot be reached or refused a request: worth a retry.
    #[error(transparent)]
    Storage(#[from] crate::photos::StorageError),
}

/// The problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A stable identifier of the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Per field, what is wrong (validation problems only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<FieldErrors>,
}

/// Records what is wrong with `field`, after anything already said about it.
pub fn add_error(errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
    errors
        .entry(field.to_string())
        .or_default()
        .push(message.into());
}

/// `Ok` when no field is wrong; otherwise the validation problem that lists them.
pub fn check_fields(errors: FieldErrors) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Text PostgreSQL can store: no NUL characters. Records a field error otherwise.
pub fn check_text(field: &str, value: &str, errors: &mut FieldErrors) {
    if value.contains('\0') {
        add_error(errors, field, "must not contain NUL characters");
    }
}

impl ApiError {
    /// An internal error: `context` says what was being done, `source` why it failed.
    pub fn internal(context: &'static str, source: impl Into<BoxError>) -> ApiError {
        ApiError::Internal {
            context,
            source: source.into(),
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Validation(BTreeMap::from([(field.to_string(), vec![message.into()])]))
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str, Option<String>) {
        match self {
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "The request has invalid fields",
                None,
            ),
            ApiError::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                "bad-request",
                "The request is malformed",
                Some(m.clone()),
            ),
            ApiError::Unauthenticated(why) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication is required",
                Some((*why).to_string()),
            ),
            ApiError::Forbidden(why) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "You may not do this",
                Some((*why).to_string()),
            ),
            ApiError::Suspended => (
                StatusCode::FORBIDDEN,
                "account-suspended",
                "This account is suspended",
                Some("an administrator suspended this account; until it is reinstated, none of its tokens work".into()),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not-found", "No such resource", None),
            ApiError::Conflict(m) => (
                StatusCode::CONFLICT,
                "conflict",
                "The request conflicts with existing data",
                Some(m.clone()),
            ),
            ApiError::QuotaExceeded { plan, quota } => (
                StatusCode::PAYMENT_REQUIRED,
                "quota-exceeded",
                "The plan's active-listing quota is used up",
                Some(format!(
                    "the {plan} plan allows {quota} active listings; archive one, or move to a larger plan (GET /v1/plans, POST /v1/checkout)"
                )),
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests; slow down",
                None,
            ),
            ApiError::Internal { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Something went wrong on our side",
                None,
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service is briefly unavailable; try again shortly",
                None,
            ),
            ApiError::PhotosDisabled => (
                StatusCode::SERVICE_UNAVAILABLE,
                "photos-disabled",
                "Listing photos are not available on this server",
                Some("this server has no photo storage configured".into()),
            ),
            ApiError::Storage(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage-unavailable",
                "The photo storage is briefly unavailable; try again shortly",
                None,
            ),
        }
    }
}

/// The cause of a 5xx answer, kept in the response's extensions for the error report
/// (`sentry`); never serialised.
#[derive(Debug, Clone)]
pub struct ProblemCause {
    /// What was being done (`database`, `storage`, `panic` …).
    pub kind: String,
    pub text: String,
}
/// Every problem type's slug (`/problems/<slug>`), from [`ApiError`] and the request
/// context's problems for the framework's own errors: each has a title in every locale.
pub const PROBLEM_SLUGS: &[&str] = &[
    "validation-failed",
    "bad-request",
    "unauthenticated",
    "forbidden",
    "account-suspended",
    "not-found",
    "conflict",
    "quota-exceeded",
    "rate-limited",
    "internal",
    "unavailable",
    "photos-disabled",
    "storage-unavailable",
    "method-not-allowed",
    "timeout",
    "payload-too-large",
    "unsupported-media-type",
    "error",
];

/// A response body as problem+json.
pub fn problem_response(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: Option<String>,
    errors: Option<FieldErrors>,
) -> Response {
    // The title in the request's language (`Accept-Language`; the catalogue's key is
    // `problem-<slug>`), the English given here when the catalogue lacks it.
    let locale = crate::i18n::current();
    let title = crate::i18n::message(locale, &format!("problem-{slug}"), &[])
        .unwrap_or_else(|| title.to_string());
    let body = Problem {
        kind: format!("/problems/{slug}"),
        title,
        status: status.as_u16(),
        detail,
        errors,
    };
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res.headers_mut().insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(locale.tag()),
    );
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            // The cause goes to the log (with the request id of the request's span), not out.
            ApiError::Internal { context, source } => {
                tracing::error!(context, cause = %chain(source.as_ref()), "internal error")
            }
            ApiError::Unavailable(cause) => tracing::error!(cause = %cause, "database unavailable"),
            ApiError::Storage(e) => {
                tracing::error!(cause = %chain(e), "photo storage unavailable")
            }
            _ => {}
        }
        let (status, slug, title, mut detail) = self.parts();
        // The details that are the API's own words, in the request's language.
        let locale = crate::i18n::current();
        let localized = match &self {
            ApiError::Suspended => crate::i18n::message(locale, "detail-account-suspended", &[]),
            ApiError::PhotosDisabled => crate::i18n::message(locale, "detail-photos-disabled", &[]),
            ApiError::QuotaExceeded { plan, quota } => crate::i18n::message(
                locale,
                "detail-quota-exceeded",
                &[("plan", plan.clone()), ("quota", quota.to_string())],
            ),
            _ => None,
        };
        if localized.is_some() {
            detail = localized;
        }
        let errors = match &self {
            ApiError::Validation(e) => Some(e.clone()),
            _ => None,
        };
        let mut res = problem_response(status, slug, title, detail, errors);
        // What went wrong, for the error report of a 5xx answer (never sent to the client).
        match &self {
            ApiError::Internal { context, source } => {
                res.extensions_mut().insert(ProblemCause {
                    kind: (*context).to_string(),
                    text: chain(source.as_ref()),
                });
            }
            ApiError::Unavailable(cause) => {
                res.extensions_mut().insert(ProblemCause {
                    kind: "unavailable".into(),
                    text: cause.clone(),
                });
            }
            ApiError::Storage(e) => {
                res.extensions_mut().insert(ProblemCause {
                    kind: "storage".into(),
                    text: chain(e),
                });
            }
            _ => {}
        }
        if let ApiError::RateLimited { retry_after_s } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            match db.code().code() {
                "23505" => {
                    return ApiError::Conflict("a record with these values already exists".into());
                }
                "23514" | "22P02" | "22003" => {
                    return ApiError::Validation(BTreeMap::from([(
                        "body".to_string(),
                        vec!["a value is out of range".to_string()],
                    )]));
                }
                _ => {}
            }
        }
        let described = goodgo_db::describe(&e);
        // The driver's own text for a server error is a bare "db error": keep the error as
        // the source and the described text beside it.
        ApiError::Internal {
            context: "database",
            source: Box::new(Described {
                described,
                source: e,
            }),
        }
    }
}

/// A database error with the text `goodgo_db::describe` gives it (code, message, detail).
#[derive(Debug, thiserror::Error)]
#[error("{described}")]
struct Described {
    described: String,
    #[source]
    source: tokio_postgres::Error,
}

/// An error and its sources, `: `-separated, each only once.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cur = s.source();
    }
    text
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::Unavailable(format!("database pool: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_keep_their_source_and_never_show_it() {
        let io = std::io::Error::other("disk on fire");
        let e = ApiError::internal("writing a page", io);
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk on fire"));
        assert_eq!(chain(&e), "internal error: writing a page: disk on fire");
        let (_, _, _, detail) = e.parts();
        assert_eq!(detail, None, "the cause never reaches the client");
    }
}
