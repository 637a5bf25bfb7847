//! The {{name}} API: a small axum service over PostgreSQL, the starting point to grow.
//!
//! - `GET /healthz`: the process is up; `GET /readyz`: it can reach the database.
//! - `GET /notes`, `POST /notes {"body": "…"}`: the `notes` table of `migrations/V1__init.sql`.
//! - `GET /docs`: what it answers, as a page.
//!
//! It listens on `GOODGO_API_ADDR` (default 127.0.0.1:8080) and reads `GOODGO_DATABASE_URL`
//! (`goodgo dev` sets both). A client that resets its connection ends that connection
//! only; SIGTERM or Ctrl-C lets in-flight requests finish, then the server stops.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

/// One database connection, opened on first use and again whenever it was lost.
#[derive(Clone)]
struct Db {
    url: Option<String>,
    client: Arc<Mutex<Option<Client>>>,
}

impl Db {
    /// Runs `f` with a live connection; an error response when there is none.
    async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, Problem> {
        let Some(url) = &self.url else {
            return Err(Problem::unavailable("GOODGO_DATABASE_URL is not set"));
        };
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(Client::is_closed) {
            let connect = tokio_postgres::connect(url, NoTls);
            let (client, connection) = tokio::time::timeout(Duration::from_secs(3), connect)
                .await
                .map_err(|_| Problem::unavailable("the database did not answer in 3 s"))?
                .map_err(|e| Problem::unavailable(&format!("cannot reach the database: {e}")))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    eprintln!("database connection lost: {e}");
                }
            });
            *slot = Some(client);
        }
        let client = slot.as_ref().expect("connected above");
        f(client).await.map_err(Problem::database)
    }
}

/// An error as an RFC 9457 problem document.
struct Problem {
    status: StatusCode,
    title: String,
}

impl Problem {
    fn unavailable(title: &str) -> Self {
        Problem {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: title.to_string(),
        }
    }

    fn database(e: tokio_postgres::Error) -> Self {
        let title = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        };
        Problem {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({"title": self.title, "status": self.status.as_u16()});
        (self.status, Json(body)).into_response()
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(db): State<Db>) -> Result<Json<serde_json::Value>, Problem> {
    db.with(async |c| c.simple_query("SELECT 1").await).await?;
    Ok(Json(json!({"status": "ready"})))
}

async fn list_notes(State(db): State<Db>) -> Result<Json<serde_json::Value>, Problem> {
    let rows = db
        .with(async |c| {
            c.query(
                "SELECT id, body, created_at::text FROM notes ORDER BY id DESC LIMIT 100",
                &[],
            )
            .await
        })
        .await?;
    let notes: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({"id": r.get::<_, i64>(0), "body": r.get::<_, String>(1), "created_at": r.get::<_, String>(2)})
        })
        .collect();
    Ok(Json(json!({"notes": notes})))
}

#[derive(serde::Deserialize)]
struct NewNote {
    body: String,
}

async fn create_note(
    State(db): State<Db>,
    Json(note): Json<NewNote>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    if note.body.trim().is_empty() || note.body.len() > 10_000 {
        return Err(Problem {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            title: "body must hold 1 to 10000 characters".into(),
        });
    }
    let row = db
        .with(async |c| {
            c.query_one(
                "INSERT INTO notes (body) VALUES ($1) RETURNING id, created_at::text",
                &[&note.body],
            )
            .await
        })
        .await?;
    let id: i64 = row.get(0);
    let created_at: String = row.get(1);
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "body": note.body, "created_at": created_at})),
    ))
}

const DOCS: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{name}} API</title>
<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:50em} code{background:#eceff1;padding:0 .3em}</style>
</head><body><h1>{{name}} API</h1>
<table>
<tr><td><code>GET /healthz</code></td><td>the process is up</td></tr>
<tr><td><code>GET /readyz</code></td><td>the database answers (503 when it does not)</td></tr>
<tr><td><code>GET /notes</code></td><td>the latest 100 notes, newest first</td></tr>
<tr><td><code>POST /notes</code></td><td>a new note: <code>{"body": "text"}</code>, answers 201 with it</td></tr>
<tr><td><code>GET /docs</code></td><td>this page</td></tr>
</table>
<p>Errors are problem documents: <code>{"title": "…", "status": 503}</code>.</p>
</body></html>
"#;

async fn docs() -> Html<&'static str> {
    Html(DOCS)
}

async fn not_found() -> Problem {
    Problem {
        status: StatusCode::NOT_FOUND,
        title: "No such resource".into(),
    }
}

fn router(db: Db) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/notes", get(list_notes).post(create_note))
        .route("/docs", get(docs))
        .fallback(not_found)
        .with_state(db)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C); a signal that cannot be listened for never comes.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let received = async |kind| match signal(kind) {
        Ok(mut stream) => stream.recv().await,
        Err(_) => std::future::pending().await,
    };
    tokio::select! {
        _ = received(SignalKind::terminate()) => {}
        _ = received(SignalKind::interrupt()) => {}
    }
    eprintln!("stopping: finishing in-flight requests");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let addr = std::env::var("GOODGO_API_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let db = Db {
        url: std::env::var("GOODGO_DATABASE_URL").ok(),
        client: Arc::default(),
    };
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    eprintln!("listening on {addr}");
    // axum::serve keeps accepting after a failed accept, and a connection that fails
    // (a reset, a bad request) ends only that connection.
    let served = axum::serve(listener, router(db))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server stopped: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
