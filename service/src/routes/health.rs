//! `/healthz` (the process is alive) and `/readyz` (the database answers and its schema is
//! at least at the newest migration this build knows).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        detail: None,
    })
}

/// The database is reachable and migrated at least to this build's newest migration.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let head: i32 = env!("GOODGO_MIGRATIONS_HEAD").parse().unwrap_or(0);
    let not_ready = |detail: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                detail: Some(detail),
            }),
        )
    };
    let client = match state.pool.get().await {
        Ok(c) => c,
        Err(_) => return not_ready("the database is unreachable".into()),
    };
    let at = match goodgo_db::runner::applied(&client).await {
        Ok(history) => Ok(history.iter().map(|a| a.version).max().unwrap_or(0)),
        Err(e) => Err(e),
    };
    match at {
        Ok(at) => {
            // A newer schema (applied by a newer release, or by `goodgo dev`) keeps this
            // build ready: migrations only add. An older one lacks what this build needs.
            if at >= head {
                (
                    StatusCode::OK,
                    Json(Health {
                        status: "ready",
                        detail: None,
                    }),
                )
            } else {
                not_ready(format!(
                    "the schema is at migration {at}, this build needs {head} or later: run `goodgo db migrate`"
                ))
            }
        }
        Err(_) => not_ready("the database did not answer".into()),
    }
}
