//! Error reports: the API's real Sentry client sends envelopes to a local HTTP endpoint
//! (the receiving end, in the test), which checks what arrived: a panic and an internal
//! error each reported once with the request id, the route and the release; no body,
//! credentials, cookies or e-mail addresses; nothing for answers under 500.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use goodgo_api::error::ApiError;
use serde_json::Value;

const JWT: &str = "k3J9xQz7LmN2vB8wR4tY6uP0aS5dF1gHjKlTest";

/// What the endpoint received: the raw envelopes.
type Received = Arc<Mutex<Vec<String>>>;

async fn sink() -> (u16, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = Router::new().route(
        "/api/{project}/envelope/",
        post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                store
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
                axum::Json(serde_json::json!({"id": "ok"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, received)
}

/// The events among the envelopes' items.
fn events(envelopes: &[String]) -> Vec<Value> {
    envelopes
        .iter()
        .flat_map(|e| e.lines())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("tags").is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_and_server_errors_reach_sentry_without_personal_data() {
    let (port, received) = sink().await;
    let dsn = format!("http://0123456789abcdef@127.0.0.1:{port}/42");
    let vars = [
        ("GOODGO_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
        ("GOODGO_JWT_SECRET", JWT),
        ("GOODGO_RELEASE", "3f2c9e1"),
        ("GOODGO_SENTRY_DSN", dsn.as_str()),
    ];
    let config = goodgo_api::Config::from_env(&|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let pool = goodgo_api::pool(&config).unwrap();
    let state = goodgo_api::state(config, pool);
    let reporter = state.sentry.clone().expect("a reporter");
    let routes = Router::new()
        .route(
            "/v1/boom/{id}",
            post(|| async {
                panic!("boom while serving jane.doe@example.com");
                #[allow(unreachable_code)]
                ""
            }),
        )
        .route(
            "/v1/fail",
            get(|| async {
                Err::<(), _>(ApiError::internal(
                    "testing",
                    std::io::Error::other("Key (email)=(jane.doe@example.com) already exists"),
                ))
            }),
        )
        .route("/v1/fine", get(|| async { "fine" }));
    let app = goodgo_api::with_layers(routes, state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });

    let client = reqwest::Client::new();
    let secret_token = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig";
    let boom = client
        .post(format!(
            "http://{api}/v1/boom/17?email=jane.doe@example.com"
        ))
        .header("authorization", secret_token)
        .header("cookie", "goodgo_refresh=cookie-secret-value")
        .header("x-request-id", "req-boom-1")
        .body(r#"{"password":"body-secret-value"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(boom.status().as_u16(), 500);
    let fail = client
        .get(format!("http://{api}/v1/fail"))
        .header("x-request-id", "req-fail-2")
        .send()
        .await
        .unwrap();
    assert_eq!(fail.status().as_u16(), 500);
    for path in ["/v1/fine", "/v1/nowhere"] {
        let a = client
            .get(format!("http://{api}{path}"))
            .send()
            .await
            .unwrap();
        assert!(a.status().as_u16() < 500);
    }
    assert!(
        tokio::task::spawn_blocking(move || reporter.flush(Duration::from_secs(10)))
            .await
            .unwrap()
    );

    let envelopes = received.lock().unwrap().clone();
    let all = envelopes.join("\n");
    for secret in [
        "jane.doe@example.com",
        "eyJhbGciOiJIUzI1NiJ9",
        "cookie-secret-value",
        "body-secret-value",
        "email=",
    ] {
        assert!(!all.contains(secret), "{secret} reached Sentry: {all}");
    }
    let events = events(&envelopes);
    assert_eq!(
        events.len(),
        2,
        "one event per 5xx answer, none for others: {all}"
    );
    let by_id = |id: &str| {
        events
            .iter()
            .find(|e| e["tags"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no event of {id}: {all}"))
            .clone()
    };
    let panic = by_id("req-boom-1");
    assert_eq!(panic["tags"]["route"], "/v1/boom/{id}");
    assert_eq!(panic["tags"]["method"], "POST");
    assert_eq!(panic["tags"]["status"], "500");
    assert_eq!(panic["tags"]["cause"], "panic");
    assert_eq!(panic["release"], "3f2c9e1");
    // `error` is the default level, left out of the JSON.
    assert!(panic.get("level").is_none_or(|l| l == "error"), "{panic}");
    let value = panic["exception"]["values"][0]["value"].as_str().unwrap();
    assert_eq!(value, "boom while serving [email]");
    for absent in ["request", "user", "breadcrumbs", "server_name"] {
        assert!(panic.get(absent).is_none(), "{absent}: {panic}");
    }
    let fail = by_id("req-fail-2");
    assert_eq!(fail["tags"]["route"], "/v1/fail");
    assert_eq!(fail["tags"]["cause"], "testing");
    assert_eq!(fail["release"], "3f2c9e1");
    assert_eq!(
        fail["exception"]["values"][0]["value"],
        "Key (email)=([email]) already exists"
    );
}

#[test]
fn a_malformed_dsn_stops_the_server_from_starting() {
    let vars = [
        ("GOODGO_DATABASE_URL", "postgres://x"),
        ("GOODGO_JWT_SECRET", JWT),
        ("GOODGO_SENTRY_DSN", "sentry.example.com"),
    ];
    let err = goodgo_api::Config::from_env(&|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .err()
    .unwrap_or_default();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].starts_with("GOODGO_SENTRY_DSN"), "{err:?}");
}
