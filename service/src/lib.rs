//! The GoodGo API: accounts, listings and search over PostgreSQL.
//!
//! [`config`] validates the environment before anything starts; [`router`] assembles the
//! routes (`routes/`) with the request context, rate limits, body and time limits, CORS
//! and security headers (`middleware`); errors are RFC 9457 problems (`error`); callers
//! are identified in `auth`. [`main`] is the binary: config, logs, pool, serve, and a
//! graceful shutdown on SIGTERM/SIGINT that lets in-flight requests finish.

pub mod audit;
pub mod auth;
pub mod cache;
pub mod config;
pub mod error;
pub mod i18n;
pub mod mail;
pub mod metrics;
pub mod middleware;
pub mod notify;
pub mod outbox;
pub mod payments;
pub mod photos;
pub mod routes;
pub mod sentry;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;

pub use config::Config;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: deadpool_postgres::Pool,
    pub config: Arc<Config>,
    pub auth_limiter: Arc<middleware::RateLimiter>,
    pub openapi: Arc<serde_json::Value>,
    /// The payment provider: the provider-neutral signed webhooks unless another is set.
    pub payments: Arc<dyn payments::PaymentProvider>,
    /// The listing photo bucket; `None`, the photo routes answer 503.
    pub photos: Option<Arc<photos::Storage>>,
    /// Where 5xx answers are reported (`GOODGO_SENTRY_DSN`); `None`, nowhere.
    pub sentry: Option<Arc<sentry::Reporter>>,
    /// Redis, when `GOODGO_REDIS_URL` is set: the cache and the shared rate limits.
    pub redis: Option<Arc<cache::Redis>>,
    /// What `/metrics` exposes.
    pub metrics: Arc<metrics::Metrics>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "GoodGo API", description = "Accounts, listings and property search for the GoodGo platform."),
    paths(
        routes::health::healthz, routes::health::readyz,
        routes::auth::register, routes::auth::login, routes::auth::refresh, routes::auth::logout, routes::auth::me,
        routes::listings::create, routes::listings::get_one, routes::listings::update, routes::listings::delete,
        routes::listings::publish, routes::listings::archive, routes::listings::mine, routes::search::search,
        routes::photos::create, routes::photos::confirm, routes::photos::list, routes::photos::delete,
        routes::billing::plans, routes::billing::checkout, routes::webhooks::payments,
        routes::subscription::get, routes::subscription::cancel,
        routes::admin::users::users, routes::admin::users::suspend, routes::admin::users::reinstate,
        routes::admin::moderation::unpublish, routes::admin::records::payments,
        routes::admin::records::subscriptions, routes::admin::records::audit,
        routes::notifications::list, routes::notifications::settings,
        routes::notifications::update_settings,
    ),
    components(schemas(error::Problem)),
    modifiers(&BearerAuth, &ProblemResponses),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every error is `application/problem+json`, and every operation can answer 400 (a
/// malformed path, query or body) and 408 (over the time limit), and all but `/healthz`
/// 503 (the database cannot be reached); operations with a body can also answer 413, 415
/// and 422; operations that need a token, 401 and 403 (a suspended account).
struct ProblemResponses;

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::Ref;
        use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ];
            for op in ops.into_iter().flatten() {
                for (status, response) in op.responses.responses.iter_mut() {
                    if (status.starts_with('4') || status.starts_with('5'))
                        && let RefOr::T(r) = response
                        && let Some(content) = r.content.shift_remove("application/json")
                    {
                        r.content
                            .insert("application/problem+json".to_string(), content);
                    }
                }
                let responses = &mut op.responses.responses;
                responses
                    .entry("400".into())
                    .or_insert_with(|| problem("The path, query or body is malformed"));
                responses.entry("408".into()).or_insert_with(|| {
                    problem("The request took longer than GOODGO_API_REQUEST_TIMEOUT_MS")
                });
                if path != "/healthz" {
                    responses.entry("503".into()).or_insert_with(|| {
                        problem("The database cannot be reached; retry after `Retry-After` seconds")
                    });
                }
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    responses.entry("401".into()).or_insert_with(|| {
                        problem("No valid access token: send Authorization: Bearer TOKEN")
                    });
                    responses.entry("403".into()).or_insert_with(|| {
                        problem("The account is suspended, or its role may not do this")
                    });
                }
                if op.request_body.is_some() {
                    responses
                        .entry("413".into())
                        .or_insert_with(|| problem("The body is larger than 64 KiB"));
                    responses
                        .entry("415".into())
                        .or_insert_with(|| problem("The body is not JSON"));
                    responses
                        .entry("422".into())
                        .or_insert_with(|| problem("The body does not have the documented shape"));
                }
            }
        }
    }
}

/// The OpenAPI document as JSON (what `/openapi.json` serves and `cargo xtask codegen`
/// writes to docs/openapi.json).
pub fn openapi_json() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// A pool for `config.database_url`.
pub fn pool(config: &Config) -> Result<deadpool_postgres::Pool, String> {
    let pg: tokio_postgres::Config = config
        .database_url
        .parse()
        .map_err(|e| format!("GOODGO_DATABASE_URL: {e}"))?;
    let manager = deadpool_postgres::Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(config.pool_size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| format!("database pool: {e}"))
}

pub fn state(config: Config, pool: deadpool_postgres::Pool) -> AppState {
    let photos = config
        .photos
        .clone()
        .and_then(|c| match photos::Storage::open(c) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                tracing::error!(error = %e, "listing photos are off");
                None
            }
        });
    let sentry = config.sentry_dsn.as_deref().and_then(|dsn| {
        match sentry::Reporter::new(dsn, config.release.as_deref()) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                tracing::error!(error = %e, "error reports are off");
                None
            }
        }
    });
    let metrics = Arc::new(metrics::Metrics::new());
    let redis = config.redis_url.as_deref().and_then(|url| {
        cache::Redis::new(
            url,
            config.cache_ttl,
            config.request_timeout,
            config.release.as_deref(),
            metrics.clone(),
        )
        .map_err(|e| tracing::error!(error = %e, "no cache"))
        .ok()
        .map(Arc::new)
    });
    AppState {
        photos,
        sentry,
        pool,
        redis,
        metrics,
        auth_limiter: Arc::new(middleware::RateLimiter::new(config.auth_rate_per_minute)),
        openapi: Arc::new(openapi_json()),
        payments: Arc::new(payments::SignedWebhooks::new(
            config.webhook_secrets.clone(),
            config.webhook_tolerance_s,
        )),
        config: Arc::new(config),
    }
}

/// The outbox worker with a handler per topic (`email` when `GOODGO_SMTP_URL` is set,
/// `photo.delete` when `GOODGO_S3_BUCKET` is);
/// `None` when no topic has a handler. A new kind of delivery is one more `.with(topic,
/// handler)` here.
pub fn outbox_worker(state: &AppState) -> Result<Option<outbox::Worker>, String> {
    let mut dispatcher = outbox::Dispatcher::new();
    if let Some(mail) = &state.config.mail {
        dispatcher = dispatcher.with(notify::EMAIL_TOPIC, Arc::new(mail::Email::new(mail)?));
    }
    if let Some(storage) = &state.photos {
        dispatcher = dispatcher.with(
            photos::DELETE_TOPIC,
            Arc::new(photos::DeleteObject(storage.clone())),
        );
    }
    if dispatcher.topics().is_empty() {
        return Ok(None);
    }
    Ok(Some(outbox::Worker::new(
        state.pool.clone(),
        dispatcher,
        state.config.outbox.clone(),
    )))
}

/// Every route with its layers.
pub fn router(state: AppState) -> Router {
    use routes::{
        auth as a, billing as b, docs, health, listings as l, search as s, webhooks as w,
    };
    let limited = Router::new()
        .route("/v1/auth/register", post(a::register))
        .route("/v1/auth/login", post(a::login))
        .route("/v1/auth/refresh", post(a::refresh))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::auth_rate_limit,
        ));
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(docs::openapi))
        .route("/docs", get(docs::page))
        .route("/docs/app.js", get(docs::script))
        .route("/v1/auth/logout", post(a::logout))
        .route("/v1/me", get(a::me))
        .route("/v1/listings", post(l::create))
        .route("/v1/listings/mine", get(l::mine))
        .route("/v1/listings/search", get(s::search))
        .route(
            "/v1/listings/{id}",
            get(l::get_one).patch(l::update).delete(l::delete),
        )
        .route("/v1/listings/{id}/publish", post(l::publish))
        .route("/v1/listings/{id}/archive", post(l::archive))
        .route(
            "/v1/listings/{id}/photos",
            post(routes::photos::create).get(routes::photos::list),
        )
        .route(
            "/v1/listings/{id}/photos/{photo_id}",
            axum::routing::delete(routes::photos::delete),
        )
        .route(
            "/v1/listings/{id}/photos/{photo_id}/confirm",
            post(routes::photos::confirm),
        )
        .route("/v1/plans", get(b::plans))
        .route("/v1/checkout", post(b::checkout))
        .route("/v1/webhooks/payments", post(w::payments))
        .route("/v1/me/subscription", get(routes::subscription::get))
        .route(
            "/v1/me/subscription/cancel",
            post(routes::subscription::cancel),
        )
        .route("/v1/me/notifications", get(routes::notifications::list))
        .route(
            "/v1/me/notifications/settings",
            get(routes::notifications::settings).patch(routes::notifications::update_settings),
        )
        .merge(routes::admin::router(state.clone()))
        .merge(limited);
    with_layers(routes, state)
}

/// The layers every route runs under, outermost first: the request context (id, span, access
/// log, security headers, problem documents), CORS, the panic catcher, the time limit and
/// the body limit; unknown paths are 404 problems. Public so tests can put a route of their
/// own under exactly the same stack.
pub fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(
            state
                .config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        ))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static(auth::CSRF_HEADER),
            header::HeaderName::from_static(middleware::REQUEST_ID),
        ])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));
    let timeout = state.config.request_timeout;
    // The release id on every response, errors and unknown paths included, so clients
    // (and `goodgo deploy`'s checks) see which release answered.
    let release = state
        .config
        .release
        .as_deref()
        .and_then(|r| HeaderValue::from_str(r).ok());
    routes
        .fallback(|| async { error::ApiError::NotFound })
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::panic_response,
        ))
        // Outside the time limit and the panic catcher: a change that committed has its
        // cache entries invalidated whatever the handler's fate.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cache::invalidate_after,
        ))
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::request_context,
        ))
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::HeaderName::from_static(RELEASE_HEADER),
                release,
            ),
        )
        .with_state(state)
}

/// The response header naming the serving release (`GOODGO_RELEASE`).
pub const RELEASE_HEADER: &str = "goodgo-release";

/// The JSON log format: one object per line, with the fields of the current span (the
/// request's `request_id`) on every line logged while a request is served.
pub fn log_subscriber<W>(filter: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(writer)
        .finish()
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let config = match Config::from_process_env() {
        Ok(c) => c,
        Err(problems) => {
            // Logging is not set up yet: say it plainly on stderr and refuse to start.
            let mut text = String::from("goodgo-api: refusing to start:\n");
            for p in problems {
                text.push_str(&format!("  - {p}\n"));
            }
            use std::io::Write;
            let _ = std::io::stderr().write_all(text.as_bytes());
            return ExitCode::from(2);
        }
    };
    if let Err(e) =
        tracing::subscriber::set_global_default(log_subscriber(&config.log, std::io::stderr))
    {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "goodgo-api: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
    // A panic is logged as JSON like everything else (with the request id of the request
    // that panicked); the panic catcher answers that request with a 500 problem.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
        // A handler's panic is reported with its request (a 500 answer); others here.
        if middleware::current_request_id().is_none()
            && let Some(reporter) = sentry::PANICS.get()
        {
            reporter.report_panic(&info.to_string());
            reporter.flush(Duration::from_secs(2));
        }
    }));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = config.workers {
        builder.worker_threads(workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let pool = pool(&config)?;
    let addr = config.addr;
    let state = state(config, pool);
    if let Some(reporter) = &state.sentry {
        let _ = sentry::PANICS.set(reporter.clone());
    }
    photos::spawn_worker(&state);
    let reporter = state.sentry.clone();
    // The outbox worker runs beside the server (in every replica: rows are shared with
    // SKIP LOCKED); it stops with the process, leaving an unfinished row pending.
    let worker = match outbox_worker(&state)? {
        Some(w) => Some(tokio::spawn(w.run())),
        None => {
            tracing::warn!(
                "neither GOODGO_SMTP_URL nor GOODGO_S3_BUCKET is set: no outbox worker; its rows stay pending"
            );
            None
        }
    };
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(addr = %addr, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| e.to_string())?;
    if let Some(w) = worker {
        w.abort();
    }
    tracing::info!("stopped after finishing in-flight requests");
    if let Some(r) = reporter {
        r.flush(Duration::from_secs(2));
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight requests"),
        _ = int.recv() => tracing::info!("SIGINT: finishing in-flight requests"),
    }
}
