//! The GoodGo API against a real PostgreSQL (from `cargo xtask test`): every endpoint's
//! happy path and failures, the authorisation matrix, refresh rotation and reuse, CSRF,
//! search correctness, and the binary's start-up refusal and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a failed setup step is a failed test

use std::net::SocketAddr;
use std::process::Command;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use goodgo_testkit::http::{Answer, Http};
use goodgo_testkit::{ChildGuard, Signal, TestDb, free_port};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_postgres::types::FromSql;
use tower::ServiceExt;

const SECRET: &str = "k3J9xQz7LmN2vB8wR4tY6uP0aS5dF1gHjKlTest";

/// An answer: status, headers, and the body as JSON (null when it is not JSON).
type Reply = (StatusCode, HeaderMap, Value);

/// A migrated database of its own and the app on it.
struct TestApp {
    app: axum::Router,
    state: goodgo_api::AppState,
    /// Dropped (its sessions ended) with the app.
    db: TestDb,
    client: tokio_postgres::Client,
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

impl TestApp {
    async fn new(name: &str, migrate: bool, extra: &[(&str, &str)]) -> Option<TestApp> {
        let db = TestDb::create(&format!("api_{name}"))?;
        let url = db.url.clone();
        if migrate {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
            let files =
                goodgo_db::migrations::load(&dir, std::path::Path::new("migrations")).unwrap();
            let mut c = connect(&url).await;
            goodgo_db::runner::migrate(&mut c, &files, None, &|_| {})
                .await
                .unwrap();
        }
        let mut vars: Vec<(String, String)> = vec![
            ("GOODGO_DATABASE_URL".into(), url.clone()),
            ("GOODGO_JWT_SECRET".into(), SECRET.into()),
            ("GOODGO_AUTH_RATE_LIMIT".into(), "100000".into()),
            // Argon2 on a loaded machine can take seconds: no test is about the default limit.
            ("GOODGO_API_REQUEST_TIMEOUT_MS".into(), "60000".into()),
        ];
        for (k, v) in extra {
            vars.retain(|(n, _)| n != k);
            vars.push((k.to_string(), v.to_string()));
        }
        let config = goodgo_api::Config::from_env(&move |k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        let pool = goodgo_api::pool(&config).unwrap();
        let state = goodgo_api::state(config, pool);
        let app = goodgo_api::router(state.clone())
            .layer(MockConnectInfo(SocketAddr::from(([10, 1, 2, 3], 40000))));
        Some(TestApp {
            app,
            state,
            db,
            client: connect(&url).await,
        })
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let (status, headers, bytes) = self.raw(req).await;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, value)
    }

    /// A request as built, the answer's body as bytes.
    async fn raw(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes.to_vec())
    }

    /// A request with no header but the bearer `token`'s.
    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call(method, uri, token, body, &[]).await
    }

    async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, uri, token, None).await
    }

    /// A POST without a body (publish, archive).
    async fn post(&self, uri: &str, token: Option<&str>) -> Reply {
        self.send(Method::POST, uri, token, None).await
    }

    /// A new draft of [`listing_body`] by `agent`, as the API answered it.
    async fn create_listing(&self, agent: &str) -> Value {
        let (s, _, b) = self
            .send(
                Method::POST,
                "/v1/listings",
                Some(agent),
                Some(listing_body()),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    /// `POST /v1/auth/{action}` of `body` (register or login), as an anonymous caller.
    async fn auth(&self, action: &str, body: Value) -> Reply {
        let uri = format!("/v1/auth/{action}");
        self.send(Method::POST, &uri, None, Some(body)).await
    }

    /// `POST /v1/auth/{action}` (register or login) of an e-mail and a password.
    async fn credentials(&self, action: &str, email: &str, password: &str) -> Reply {
        self.auth(action, json!({"email": email, "password": password}))
            .await
    }

    /// A login with the password every test account has.
    async fn login(&self, email: &str) -> Reply {
        self.credentials("login", email, "a-long-password").await
    }

    /// `POST /v1/auth/{action}` (refresh or logout) with a session's cookies, and `csrf` in
    /// the X-CSRF-Token header when given.
    async fn with_cookies(
        &self,
        action: &str,
        (refresh, cookie_csrf): &(String, String),
        csrf: Option<&str>,
    ) -> Reply {
        let cookie = format!("goodgo_refresh={refresh}; goodgo_csrf={cookie_csrf}");
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend(csrf.map(|c| ("x-csrf-token", c)));
        let uri = format!("/v1/auth/{action}");
        self.call(Method::POST, &uri, None, None, &headers).await
    }

    /// One value of a query's single row.
    async fn scalar<T: for<'a> FromSql<'a>>(&self, sql: &str) -> T {
        self.client.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// How many rows `SELECT count(*) FROM {rows}` counts.
    async fn count(&self, rows: &str) -> i64 {
        self.scalar(&format!("SELECT count(*) FROM {rows}")).await
    }

    /// A new account's access token.
    async fn register(&self, email: &str, role: &str) -> String {
        let body = json!({"email": email, "password": "a-long-password", "role": role});
        let (s, _, b) = self.auth("register", body).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["access_token"].as_str().unwrap().to_string()
    }

    /// A new buyer's session: its refresh token and CSRF token, as the cookies carry them.
    async fn session(&self, email: &str) -> (String, String) {
        let (s, h, b) = self.credentials("register", email, "a-long-password").await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        set_cookies(&h)
    }

    /// An admin: made in the database (admin is never self-assigned), then logged in.
    async fn admin(&self) -> String {
        self.register("admin@test.dev", "buyer").await;
        self.client
            .execute(
                "UPDATE users SET role = 'admin' WHERE email = 'admin@test.dev'",
                &[],
            )
            .await
            .unwrap();
        let (s, _, b) = self.login("admin@test.dev").await;
        assert_eq!(s, StatusCode::OK);
        b["access_token"].as_str().unwrap().to_string()
    }
}

fn listing_body() -> Value {
    json!({"title": "Sunny flat by the river", "description": "Two balconies.", "price": 185000, "currency": "USD", "listing_type": "sale",
           "property_type": "apartment", "bedrooms": 2, "bathrooms": 1, "area_m2": "72.5", "address": "12 Bach Dang Street", "city": "Da Nang", "district": "Hai Chau"})
}

/// Asserts that `reply` is a problem document of `status` and type `/problems/{kind}`.
#[track_caller]
fn assert_problem((status_got, headers, body): &Reply, status: StatusCode, kind: &str) {
    let kind = format!("/problems/{kind}");
    assert_eq!(
        (*status_got, body["type"].as_str()),
        (status, Some(kind.as_str())),
        "{body}"
    );
    assert_eq!(headers["content-type"], "application/problem+json");
}

/// The names of the fields a validation problem lists, in order.
fn invalid_fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

fn set_cookies(h: &HeaderMap) -> (String, String) {
    let mut refresh = String::new();
    let mut csrf = String::new();
    for v in h.get_all("set-cookie") {
        let v = v.to_str().unwrap();
        let pair = v.split(';').next().unwrap();
        let (k, val) = pair.split_once('=').unwrap();
        if k == "goodgo_refresh" {
            refresh = val.to_string();
            assert!(
                v.contains("HttpOnly") && v.contains("Secure") && v.contains("SameSite=Strict"),
                "{v}"
            );
        }
        if k == "goodgo_csrf" {
            csrf = val.to_string();
        }
    }
    (refresh, csrf)
}

#[tokio::test]
async fn health_and_readiness() {
    let Some(app) = TestApp::new("health", true, &[]).await else {
        return;
    };
    let healthz = async |id| {
        app.call(Method::GET, "/healthz", None, None, &[("x-request-id", id)])
            .await
    };
    let (s, h, b) = healthz("trace-me-123").await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(
        h["x-request-id"], "trace-me-123",
        "a sane request id is echoed"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    let (_, h2, _) = healthz("bad id with spaces").await;
    assert_ne!(
        h2["x-request-id"], "bad id with spaces",
        "an unsafe one is replaced"
    );
    let (s, _, b) = app.get("/readyz", None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ready")));

    // A newer schema (a newer release's migration, or `goodgo dev`'s) keeps this build
    // ready; an older one does not.
    let head: i32 = app
        .scalar("SELECT max(version) FROM refinery_schema_history")
        .await;
    app.client
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES ($1, 'from_a_newer_release', '2030-01-01T00:00:00Z', '1')",
            &[&(head + 1)],
        )
        .await
        .unwrap();
    let (s, _, b) = app.get("/readyz", None).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("ready")),
        "{b}"
    );
    app.client
        .execute(
            "DELETE FROM refinery_schema_history WHERE version >= $1",
            &[&head],
        )
        .await
        .unwrap();
    let (s, _, b) = app.get("/readyz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains(&format!(
            "at migration {}, this build needs {head}",
            head - 1
        )),
        "{b}"
    );

    // A database nobody answers on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(unreachable) = TestApp::new(
        "unreachable",
        false,
        &[(
            "GOODGO_DATABASE_URL",
            &format!("postgres://postgres@127.0.0.1:{closed}/postgres"),
        )],
    )
    .await
    else {
        return;
    };
    let (s, _, b) = unreachable.get("/readyz", None).await;
    assert_eq!(
        (s, b["detail"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("the database is unreachable")
        )
    );
    let (s, _, _) = unreachable.get("/healthz", None).await;
    assert_eq!(s, StatusCode::OK, "alive, just not ready");
    let reply = unreachable.get("/v1/listings/search", None).await;
    assert_problem(&reply, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let (_, h, b) = reply;
    assert_eq!(h["retry-after"], "5");
    assert!(!b.to_string().contains("127.0.0.1"), "no internals: {b}");

    let Some(empty) = TestApp::new("notready", false, &[]).await else {
        return;
    };
    let (s, _, b) = empty.get("/readyz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        b["detail"].as_str().unwrap().contains("goodgo db migrate"),
        "{b}"
    );
}

#[tokio::test]
async fn accounts_happy_paths_and_failures() {
    let Some(app) = TestApp::new("accounts", true, &[]).await else {
        return;
    };
    let (s, h, b) = app
        .credentials("register", " New.User@Example.com ", "a-long-password")
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        (b["token_type"].as_str(), b["expires_in"].as_u64()),
        (Some("Bearer"), Some(900))
    );
    let (refresh, csrf) = set_cookies(&h);
    assert!(refresh.len() >= 40 && csrf.len() >= 30);
    let token = b["access_token"].as_str().unwrap();
    let (s, _, me) = app.get("/v1/me", Some(token)).await;
    assert_eq!(
        (s, me["email"].as_str(), me["role"].as_str()),
        (StatusCode::OK, Some("new.user@example.com"), Some("buyer"))
    );
    let stored: Vec<u8> = app.scalar("SELECT token_hash FROM refresh_tokens").await;
    assert_ne!(
        stored,
        refresh.as_bytes(),
        "only a digest of the refresh token is stored"
    );

    // A duplicate, a wrong password, an unknown account.
    let user = "new.user@example.com";
    let refused = (StatusCode::UNAUTHORIZED, "unauthenticated");
    let conflict = (StatusCode::CONFLICT, "conflict");
    for (action, email, password, (status, kind)) in [
        ("register", user, "another-long-one", conflict),
        ("login", user, "wrong-password!", refused),
        ("login", "nobody@example.com", "whatever-long", refused),
    ] {
        let reply = app.credentials(action, email, password).await;
        assert_problem(&reply, status, kind);
    }
    // Weak, self-made admin, unknown field.
    let (s, _, b) = app
        .auth(
            "register",
            json!({"email": "not-an-email", "password": "short", "role": "admin"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid_fields(&b), ["email", "password", "role"]);
    let (s, _, b) = app
        .auth(
            "register",
            json!({"email": "a@b.co", "password": "a-long-password", "is_admin": true}),
        )
        .await;
    assert!(
        s.is_client_error() && b["type"].as_str().is_some(),
        "{s} {b}"
    );

    // No token, not a token, and a token signed with another key are refused.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "1", "role": "admin", "iat": 0, "exp": 9_999_999_999u64, "iss": "goodgo-api"}),
        &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret-of-enough-length!!"),
    )
    .unwrap();
    for token in [None, Some("not.a.jwt"), Some(forged.as_str())] {
        let (s, _, _) = app.get("/v1/me", token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{token:?}");
    }

    // Malformed JSON and unknown routes are problems too, without internals.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let res = app.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let reply = app.get("/v1/nothing-here", None).await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not-found");
    let big = "x".repeat(100 * 1024);
    let reply = app.credentials("login", &big, "x").await;
    assert_problem(&reply, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
}

#[tokio::test]
async fn refresh_rotates_detects_reuse_and_needs_csrf() {
    let Some(app) = TestApp::new("refresh", true, &[]).await else {
        return;
    };
    let first = app.session("r@test.dev").await;
    let csrf1 = Some(first.1.as_str());

    let (s, _, b) = app.with_cookies("refresh", &first, None).await;
    assert_eq!(
        (s, b["detail"].as_str().map(|d| d.contains("X-CSRF-Token"))),
        (StatusCode::FORBIDDEN, Some(true)),
        "CSRF header missing"
    );
    let wrong = Some("0000000000000000000000000000000000");
    let (s, _, _) = app.with_cookies("refresh", &first, wrong).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "CSRF header wrong");

    let (s, h, b) = app.with_cookies("refresh", &first, csrf1).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let second = set_cookies(&h);
    assert_ne!(second.0, first.0, "rotated");
    let (s, _, _) = app.get("/v1/me", b["access_token"].as_str()).await;
    assert_eq!(s, StatusCode::OK);

    // Reusing the rotated token ends the whole family: the newest token stops working too.
    let (s, _, b) = app.with_cookies("refresh", &first, csrf1).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        b["detail"].as_str().unwrap().contains("already used"),
        "{b}"
    );
    let (s, _, _) = app.with_cookies("refresh", &second, Some(&second.1)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the family was revoked");
    let reuse = app
        .count("audit_log WHERE action = 'session.reuse_detected'")
        .await;
    assert_eq!(reuse, 1);

    // Logout ends a fresh session.
    let (_, h, _) = app.login("r@test.dev").await;
    let third = set_cookies(&h);
    let (s, h, _) = app.with_cookies("logout", &third, Some(&third.1)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(
        h.get_all("set-cookie")
            .iter()
            .all(|v| v.to_str().unwrap().contains("Max-Age=0"))
    );
    let (s, _, _) = app.with_cookies("refresh", &third, Some(&third.1)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn authorisation_matrix() {
    let Some(app) = TestApp::new("matrix", true, &[]).await else {
        return;
    };
    let owner = app.register("owner@test.dev", "agent").await;
    let other = app.register("other@test.dev", "agent").await;
    let buyer = app.register("buyer@test.dev", "buyer").await;
    let admin = app.admin().await;
    // The owner publishes a listing per cell: on the agency plan, the quota is not the matter
    // here (tests/payments.rs checks it).
    app.client
        .execute(
            "INSERT INTO subscriptions (user_id, plan, status, provider, provider_subscription_id, current_period_end) \
             SELECT id, 'agency', 'active', 'test', 'sub_owner', now() + interval '1 day' FROM users WHERE email = 'owner@test.dev'",
            &[],
        )
        .await
        .unwrap();
    let actors: [(&str, Option<&str>); 5] = [
        ("anonymous", None),
        ("buyer", Some(&buyer)),
        ("other agent", Some(&other)),
        ("owner", Some(&owner)),
        ("admin", Some(&admin)),
    ];

    // A fresh, published listing of the owner's for each cell.
    let fresh = || async {
        let b = app.create_listing(&owner).await;
        assert_eq!(b["status"], "draft");
        let id = b["id"].as_i64().unwrap();
        let (s, _, _) = app
            .post(&format!("/v1/listings/{id}/publish"), Some(&owner))
            .await;
        assert_eq!(s, StatusCode::OK);
        id
    };
    let mut table = String::new();
    for (who, token) in actors {
        let (create, _, _) = app
            .send(Method::POST, "/v1/listings", token, Some(listing_body()))
            .await;
        let id = fresh().await;
        let price = Some(json!({"price": "199000.50"}));
        let (patch, _, _) = app
            .send(Method::PATCH, &format!("/v1/listings/{id}"), token, price)
            .await;
        let (archive, _, _) = app.post(&format!("/v1/listings/{id}/archive"), token).await;
        let id2 = fresh().await;
        app.post(&format!("/v1/listings/{id2}/archive"), Some(&owner))
            .await;
        let (publish, _, _) = app
            .post(&format!("/v1/listings/{id2}/publish"), token)
            .await;
        let id3 = fresh().await;
        let (delete, _, _) = app
            .send(Method::DELETE, &format!("/v1/listings/{id3}"), token, None)
            .await;
        table.push_str(&format!(
            "{who:<12} create {} patch {} archive {} publish {} delete {}\n",
            create.as_u16(),
            patch.as_u16(),
            archive.as_u16(),
            publish.as_u16(),
            delete.as_u16()
        ));
    }
    // Only agents (and admins) create; only the owner and admins change. An archived
    // listing is hidden from everyone else (404), an active one is forbidden (403).
    assert_eq!(
        table,
        "anonymous    create 401 patch 401 archive 401 publish 401 delete 401\n\
         buyer        create 403 patch 403 archive 403 publish 404 delete 403\n\
         other agent  create 201 patch 403 archive 403 publish 404 delete 403\n\
         owner        create 201 patch 200 archive 200 publish 200 delete 204\n\
         admin        create 201 patch 200 archive 200 publish 200 delete 204\n"
    );
}

#[tokio::test]
async fn listings_lifecycle_and_validation() {
    let Some(app) = TestApp::new("lifecycle", true, &[]).await else {
        return;
    };
    let owner = app.register("agent@test.dev", "agent").await;
    let created = app.create_listing(&owner).await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        (
            created["price"].as_str(),
            created["area_m2"].as_str(),
            created["status"].as_str()
        ),
        (Some("185000.00"), Some("72.50"), Some("draft"))
    );

    // A draft is the owner's alone.
    let stranger = app.register("someone@test.dev", "buyer").await;
    let uri = format!("/v1/listings/{id}");
    assert_eq!(app.get(&uri, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&uri, Some(&stranger)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&uri, Some(&owner)).await.0, StatusCode::OK);
    let (_, _, mine) = app.get("/v1/listings/mine", Some(&owner)).await;
    assert_eq!(mine["items"][0]["id"], id);

    let (s, _, b) = app.post(&format!("{uri}/publish"), Some(&owner)).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("active")));
    assert!(b["published_at"].is_string());
    assert_eq!(
        app.get(&uri, None).await.0,
        StatusCode::OK,
        "active listings are public"
    );

    let (s, _, b) = app
        .send(
            Method::PATCH,
            &uri,
            Some(&owner),
            Some(json!({"title": "Renamed flat", "bedrooms": 3})),
        )
        .await;
    assert_eq!(
        (s, b["title"].as_str(), b["bedrooms"].as_i64()),
        (StatusCode::OK, Some("Renamed flat"), Some(3))
    );

    let bad = json!({"title": "x", "price": -5, "currency": "usd", "listing_type": "swap", "property_type": "castle", "bedrooms": 99, "area_m2": "abc", "city": ""});
    let (s, _, b) = app
        .send(Method::POST, "/v1/listings", Some(&owner), Some(bad))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        invalid_fields(&b),
        [
            "area_m2",
            "bedrooms",
            "city",
            "currency",
            "listing_type",
            "price",
            "property_type",
            "title"
        ]
    );
    let (s, _, _) = app.get("/v1/listings/not-a-number", None).await;
    assert!(s.is_client_error());
    let (s, _, _) = app.send(Method::DELETE, &uri, Some(&owner), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&uri, Some(&owner)).await.0, StatusCode::NOT_FOUND);
    let audited = format!("audit_log WHERE entity = 'listing' AND entity_id = '{id}'");
    assert_eq!(
        app.count(&audited).await,
        4,
        "create, publish, update, delete"
    );
}

/// NUL characters cannot be stored by PostgreSQL; they are refused as input, never a 500
/// (found by schemathesis).
#[tokio::test]
async fn nul_characters_are_bad_input_not_server_errors() {
    let Some(app) = TestApp::new("nul", true, &[]).await else {
        return;
    };
    let (s, _, b) = app.get("/v1/listings/search?q=a%00b&city=Hue", None).await;
    assert_eq!(
        (s, b["errors"]["q"][0].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("must not contain NUL characters")
        )
    );
    let (s, _, _) = app
        .credentials("login", "a\u{0}@b.co", "whatever-long")
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = app
        .credentials("register", "a\u{0}@b.co", "whatever-long")
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let agent = app.register("nul@test.dev", "agent").await;
    let mut body = listing_body();
    body["title"] = json!("bad\u{0}title");
    let (s, _, b) = app
        .send(Method::POST, "/v1/listings", Some(&agent), Some(body))
        .await;
    assert_eq!(
        (s, b["errors"]["title"].is_array()),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
}

/// Pages through every result with `limit` and compares with the same filter run as one
/// query: same ids, same order, no gaps, no duplicates.
#[tokio::test]
async fn search_is_correct_on_seeded_data() {
    let Some(app) = TestApp::new("search", true, &[]).await else {
        return;
    };
    let mut c = connect(&app.db.url).await;
    goodgo_db::seed::seed(&mut c, 1500).await.unwrap();
    let quiet = "search @@ websearch_to_tsquery('simple', 'quiet')";
    let cases: Vec<(&str, &str, String, usize)> = vec![
        ("", "newest", "TRUE ORDER BY published_at DESC, id DESC".into(), 37),
        (
            "&city=Hanoi&bedrooms=2",
            "newest",
            "city = 'Hanoi' AND bedrooms >= 2 ORDER BY published_at DESC, id DESC".into(),
            37,
        ),
        (
            "&min_price=100000&max_price=400000",
            "price_asc",
            "price BETWEEN 100000 AND 400000 ORDER BY price, id".into(),
            37,
        ),
        (
            "&listing_type=rent&property_type=apartment",
            "price_desc",
            "listing_type = 'rent' AND property_type = 'apartment' ORDER BY price DESC, id DESC".into(),
            37,
        ),
        (
            "&district=Son%20Tra",
            "newest",
            "district = 'Son Tra' ORDER BY published_at DESC, id DESC".into(),
            37,
        ),
        (
            "&q=villa%20pool",
            "relevance",
            "search @@ websearch_to_tsquery('simple', 'villa pool') ORDER BY ts_rank(search, websearch_to_tsquery('simple', 'villa pool')) DESC, id DESC".into(),
            37,
        ),
        // Many matches with many equal ranks, in small pages: every sort's cursor continues
        // exactly where the previous page stopped.
        (
            "&q=quiet",
            "relevance",
            format!("{quiet} ORDER BY ts_rank(search, websearch_to_tsquery('simple', 'quiet')) DESC, id DESC"),
            5,
        ),
        ("&q=quiet", "newest", format!("{quiet} ORDER BY published_at DESC, id DESC"), 5),
        ("&q=quiet", "price_asc", format!("{quiet} ORDER BY price, id"), 5),
        ("&q=quiet", "price_desc", format!("{quiet} ORDER BY price DESC, id DESC"), 5),
    ];
    for (filters, sort, sql, limit) in cases {
        let rows = app
            .client
            .query(
                &format!("SELECT id FROM listings WHERE status = 'active' AND {sql}"),
                &[],
            )
            .await
            .unwrap();
        let expected: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        assert!(!expected.is_empty(), "{filters}: the seed has matches");
        if limit == 5 {
            assert!(expected.len() > 3 * limit, "{filters}: several pages");
        }
        let mut got: Vec<i64> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        for _ in 0..1000 {
            let mut uri = format!("/v1/listings/search?limit={limit}&sort={sort}{filters}");
            if let Some(c) = &cursor {
                uri.push_str(&format!("&cursor={c}"));
            }
            let (s, _, page) = app.get(&uri, None).await;
            assert_eq!(s, StatusCode::OK, "{uri}: {page}");
            pages += 1;
            got.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].as_i64().unwrap()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(got, expected, "{filters} sorted by {sort}");
        assert_eq!(
            pages,
            expected.len().div_ceil(limit),
            "{filters} sorted by {sort}"
        );
    }

    // A cursor continues only the search it came from: the same filters and sort.
    let (_, _, page) = app
        .get(
            "/v1/listings/search?limit=5&sort=price_asc&q=quiet&city=Hanoi",
            None,
        )
        .await;
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (s, _, b) = app
        .get(
            &format!(
                "/v1/listings/search?limit=5&sort=price_asc&q=quiet&city=Hanoi&cursor={cursor}"
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "same search: {b}");
    for other in [
        "sort=price_desc&q=quiet&city=Hanoi",
        "sort=price_asc&q=quiet",
        "sort=price_asc&q=quiet&city=Hue",
        "sort=price_asc&q=villa&city=Hanoi",
        "sort=price_asc&q=quiet&city=Hanoi&bedrooms=2",
        "sort=price_asc&q=quiet&city=Hanoi&min_price=1",
        "sort=price_asc&q=quiet&city=Hanoi&listing_type=rent",
    ] {
        let (s, _, b) = app
            .get(
                &format!("/v1/listings/search?limit=5&{other}&cursor={cursor}"),
                None,
            )
            .await;
        assert_eq!(
            (s, b["errors"]["cursor"].is_array()),
            (StatusCode::UNPROCESSABLE_ENTITY, true),
            "{other}: {b}"
        );
    }
    let (s, _, b) = app.get("/v1/listings/search?cursor=garbage", None).await;
    assert_eq!(
        (s, b["errors"]["cursor"].is_array()),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
    let (s, _, _) = app
        .get("/v1/listings/search?sort=cheapest&limit=0", None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn auth_endpoints_are_rate_limited_per_address() {
    // One a minute: still a burst of 3 (the floor), and a token comes back only after 60 s,
    // however long the first password checks take.
    let Some(app) = TestApp::new("ratelimit", true, &[("GOODGO_AUTH_RATE_LIMIT", "1")]).await
    else {
        return;
    };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (s, h, _) = app
            .credentials("login", "x@test.dev", "whatever-long")
            .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
        }
        statuses.push(s.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    assert_eq!(
        app.get("/v1/listings/search", None).await.0,
        StatusCode::OK,
        "other endpoints are not limited"
    );
}

#[test]
fn the_binary_refuses_weak_secrets() {
    for (secret, says) in [
        ("changeme", "placeholder"),
        ("short-Xy7!", "at least 32"),
        ("", "empty"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_goodgo-api"))
            .env_clear()
            .env("GOODGO_DATABASE_URL", "postgres://x@127.0.0.1/x")
            .env("GOODGO_JWT_SECRET", secret)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{secret}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refusing to start") && err.contains(says),
            "{secret}: {err}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_goodgo-api"))
        .env_clear()
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GOODGO_DATABASE_URL is not set")
            && err.contains("GOODGO_JWT_SECRET is not set"),
        "{err}"
    );
}

/// One request to the real server on `port`, on a connection of its own that closes after
/// the answer; `None` when no answer came.
fn request(
    port: u16,
    method: Method,
    path: &str,
    request_id: &str,
    body: Option<&str>,
) -> Option<Answer> {
    Http::local(port).send(
        method,
        path,
        &[("x-request-id", request_id), ("connection", "close")],
        body,
    )
}

/// Whether the process `pid` has accepted an open TCP connection to its port `server` and
/// read everything sent on it (Linux /proc/net/tcp: a connection still in the accept queue
/// has no inode; `rx_queue` counts the bytes not read yet; state `01` is established, so
/// connections already closed do not count).
fn read_by_server(pid: u32, server: u16) -> bool {
    let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
        return false;
    };
    // Addresses are hex `IP:PORT`; 127.0.0.1 is `0100007F`.
    let local = format!("0100007F:{server:04X}");
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 9 && f[1] == local && f[3] == "01" && f[4].ends_with(":00000000") && f[9] != "0"
    })
}

/// Starts the binary, serves a failing request and a slow one, sends `signal` while the
/// slow one is in flight: it finishes, the server exits cleanly, and the JSON logs carry
/// request ids and latencies but no secrets.
async fn serve_then_stop(name: &str, signal: &str) {
    let Some(app) = TestApp::new(name, true, &[]).await else {
        return;
    };
    let port = free_port();
    let mut child = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_goodgo-api"))
            .env("GOODGO_DATABASE_URL", &app.db.url)
            .env("GOODGO_JWT_SECRET", SECRET)
            .env("GOODGO_API_ADDR", format!("127.0.0.1:{port}"))
            .env("GOODGO_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read on a thread, so the server never blocks on a full pipe.
    let mut stderr = child.0.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut logs = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut logs).unwrap();
        logs
    });
    let mut ready = false;
    // Generous: a debug build on a loaded machine can take seconds to start.
    for _ in 0..600 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "the server listens");
    // An internal error: the table the search reads is gone.
    app.client
        .batch_execute("ALTER TABLE listings RENAME TO listings_gone")
        .await
        .unwrap();
    let failed = tokio::task::spawn_blocking(move || {
        request(
            port,
            Method::GET,
            "/v1/listings/search",
            "failing-req-1",
            None,
        )
    })
    .await
    .unwrap()
    .expect("an answer");
    assert_eq!(failed.status, 500, "{failed:?}");
    assert!(
        !format!("{:?}{}", failed.headers, failed.body).contains("listings"),
        "no SQL in the answer: {failed:?}"
    );
    // A request that takes a while (a register hashes a password) is in flight when the
    // signal arrives, and still completes.
    let in_flight = tokio::task::spawn_blocking(move || {
        request(
            port,
            Method::POST,
            "/v1/auth/register",
            "slow-req-1",
            Some(r#"{"email":"late@test.dev","password":"a-long-password"}"#),
        )
    });
    // Signal only once the server has accepted the connection and read the request: it is
    // then in flight (hashing the password takes hundreds of ms in a debug build).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !read_by_server(child.id(), port) {
        assert!(
            std::time::Instant::now() < deadline,
            "the server reads the request"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    child.signal(if signal == "TERM" {
        Signal::TERM
    } else {
        Signal::INT
    });
    let response = in_flight.await.unwrap().expect("an answer");
    assert_eq!(
        response.status, 201,
        "in-flight request finished after SIG{signal}: {response:?}"
    );
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    let logs = logs.join().unwrap();
    for line in logs.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "every log line is JSON: {line}"
        );
    }
    let access = logs
        .lines()
        .find(|l| l.contains("\"route\":\"/v1/auth/register\""))
        .unwrap_or_else(|| panic!("no access line: {logs}"));
    assert!(
        access.contains("\"status\":201")
            && access.contains("\"request_id\":\"slow-req-1\"")
            && access.contains("\"latency_ms\":"),
        "{access}"
    );
    let error = logs
        .lines()
        .find(|l| l.contains("\"level\":\"ERROR\"") && l.contains("internal error"))
        .unwrap_or_else(|| panic!("no error line: {logs}"));
    assert!(
        error.contains("\"request_id\":\"failing-req-1\""),
        "{error}"
    );
    assert!(
        logs.contains(&format!("SIG{signal}: finishing in-flight requests")),
        "{logs}"
    );
    // Nothing secret: not the password, the JWT key, the tokens or the cookies' values.
    let tokens = response.json();
    let access_token = tokens["access_token"].as_str().unwrap();
    let mut secrets = vec![
        "a-long-password".to_string(),
        SECRET.to_string(),
        access_token.to_string(),
    ];
    for cookie in response.header_all("set-cookie") {
        let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
        secrets.push(value.to_string());
    }
    assert_eq!(secrets.len(), 5, "two cookies: {response:?}");
    for secret in secrets {
        assert!(!logs.contains(&secret), "`{secret}` is in the logs: {logs}");
    }
}

#[tokio::test]
async fn the_binary_serves_and_shuts_down_gracefully_on_sigterm() {
    serve_then_stop("sigterm", "TERM").await;
}

#[tokio::test]
async fn the_binary_serves_and_shuts_down_gracefully_on_sigint() {
    serve_then_stop("sigint", "INT").await;
}

#[tokio::test]
async fn refresh_rotation_is_atomic() {
    let Some(app) = TestApp::new("atomic", true, &[]).await else {
        return;
    };
    let session = app.session("atomic@test.dev").await;
    let refresh = async || {
        app.with_cookies("refresh", &session, Some(&session.1))
            .await
    };
    // Storing the successor fails: the rotation must not be half done.
    app.client
        .batch_execute(
            "CREATE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON refresh_tokens FOR EACH ROW EXECUTE FUNCTION refuse_insert();",
        )
        .await
        .unwrap();
    let (s, _, b) = refresh().await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
    assert!(!b.to_string().contains("refused"), "no internal text: {b}");
    app.client
        .batch_execute("DROP TRIGGER refuse ON refresh_tokens")
        .await
        .unwrap();
    // The old token is still the live one: no reuse detection, a normal rotation.
    let (s, _, b) = refresh().await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let live = app
        .count("refresh_tokens WHERE rotated_at IS NULL AND revoked_at IS NULL")
        .await;
    assert_eq!(live, 1, "exactly one live token in the family");
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_logged_with_its_request_id() {
    let Some(app) = TestApp::new("panic", false, &[]).await else {
        return;
    };
    #[derive(Clone)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Default::default());
    let writer = buf.clone();
    let _logs = tracing::subscriber::set_default(goodgo_api::log_subscriber("info", move || {
        writer.clone()
    }));
    async fn boom() -> &'static str {
        panic!("index out of bounds near internal-detail-42")
    }
    let router = goodgo_api::with_layers(
        axum::Router::new().route("/boom", axum::routing::get(boom)),
        app.state.clone(),
    );
    let res = router
        .oneshot(
            Request::builder()
                .uri("/boom")
                .header("x-request-id", "panic-req-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.headers()["x-request-id"], "panic-req-1");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"type": "/problems/internal", "title": "Something went wrong on our side", "status": 500})
    );
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("a handler panicked"))
        .unwrap_or_else(|| panic!("no panic line in {logs}"));
    assert!(
        line.contains("\"request_id\":\"panic-req-1\"") && line.contains("internal-detail-42"),
        "{line}"
    );
    let access = logs
        .lines()
        .find(|l| l.contains("\"route\":\"/boom\""))
        .unwrap_or_else(|| panic!("no access line in {logs}"));
    assert!(access.contains("\"status\":500"), "{access}");
}

#[tokio::test]
async fn cors_follows_the_allowlist() {
    let Some(app) = TestApp::new(
        "cors",
        false,
        &[(
            "GOODGO_CORS_ORIGINS",
            "https://app.goodgo.test, https://admin.goodgo.test/",
        )],
    )
    .await
    else {
        return;
    };
    let get = |origin: &str| {
        Request::builder()
            .uri("/healthz")
            .header("origin", origin)
            .body(Body::empty())
            .unwrap()
    };
    for allowed in ["https://app.goodgo.test", "https://admin.goodgo.test"] {
        let (s, h, _) = app.raw(get(allowed)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["access-control-allow-origin"], allowed);
        assert_eq!(h["access-control-allow-credentials"], "true");
    }
    for refused in [
        "https://evil.test",
        "http://app.goodgo.test",
        "https://app.goodgo.test.evil.test",
    ] {
        let (_, h, _) = app.raw(get(refused)).await;
        assert!(
            h.get("access-control-allow-origin").is_none(),
            "{refused}: {h:?}"
        );
    }
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/auth/refresh")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "x-csrf-token, content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    let (s, h, _) = app.raw(preflight("https://app.goodgo.test")).await;
    assert!(s.is_success(), "{s}");
    assert_eq!(h["access-control-allow-origin"], "https://app.goodgo.test");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-max-age"], "600");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("PATCH"),
        "{methods}"
    );
    let headers = h["access-control-allow-headers"].to_str().unwrap();
    assert!(
        headers.contains("x-csrf-token") && headers.contains("content-type"),
        "{headers}"
    );
    let (_, h, _) = app.raw(preflight("https://evil.test")).await;
    assert!(h.get("access-control-allow-origin").is_none(), "{h:?}");
}

#[tokio::test]
async fn every_answer_has_the_security_headers() {
    let Some(app) = TestApp::new("headers", true, &[]).await else {
        return;
    };
    for (method, uri, status) in [
        (Method::GET, "/healthz", StatusCode::OK),
        (Method::GET, "/v1/listings/search", StatusCode::OK),
        (Method::GET, "/nowhere", StatusCode::NOT_FOUND),
        (Method::GET, "/v1/me", StatusCode::UNAUTHORIZED),
        (Method::PUT, "/v1/me", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let (s, h, _) = app.send(method, uri, None, None).await;
        assert_eq!(s, status, "{uri}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{uri}");
        assert_eq!(h["x-frame-options"], "DENY", "{uri}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{uri}");
        assert_eq!(
            h["strict-transport-security"], "max-age=31536000; includeSubDomains",
            "{uri}"
        );
        assert_eq!(
            h["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{uri}"
        );
        assert!(h["x-request-id"].to_str().is_ok_and(|v| !v.is_empty()));
    }
}

#[tokio::test]
async fn requests_over_the_time_limit_are_408_problems() {
    let Some(app) = TestApp::new("timeout", true, &[("GOODGO_API_REQUEST_TIMEOUT_MS", "1")]).await
    else {
        return;
    };
    // Hashing a password with argon2 takes far longer than a millisecond.
    let (s, h, b) = app
        .credentials("register", "slow@test.dev", "a-long-password")
        .await;
    assert_eq!(s, StatusCode::REQUEST_TIMEOUT, "{b}");
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(b["type"], "/problems/timeout");
    assert!(
        goodgo_api::Config::from_env(&|k| match k {
            "GOODGO_DATABASE_URL" => Some("postgres://x".into()),
            "GOODGO_JWT_SECRET" => Some(SECRET.into()),
            "GOODGO_API_REQUEST_TIMEOUT_MS" => Some("0".into()),
            _ => None,
        })
        .is_err(),
        "a zero time limit is refused"
    );
}

#[tokio::test]
async fn docs_page_works_offline_and_openapi_is_the_committed_one() {
    let Some(app) = TestApp::new("docs", false, &[]).await else {
        return;
    };
    // A 200 answer of `content_type`: its headers and body.
    let fetch = async |uri: &str, content_type: &str| {
        let (s, h, body) = app
            .raw(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        let got = h["content-type"].to_str().unwrap();
        assert!(got.starts_with(content_type), "{uri}: {got}");
        (h, body)
    };
    let (_, page) = fetch("/docs", "text/html").await;
    let page = String::from_utf8(page).unwrap();
    let (h, script) = fetch("/docs/app.js", "text/javascript").await;
    let script = String::from_utf8(script).unwrap();
    assert!(page.contains("src=\"/docs/app.js\""), "{page}");
    assert!(script.contains("fetch('/openapi.json')"), "{script}");
    for (name, text) in [("page", &page), ("script", &script)] {
        assert!(
            !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
            "the {name} references nothing off-site"
        );
        for attr in ["src=\"", "href=\""] {
            for rest in text.split(attr).skip(1) {
                assert!(rest.starts_with('/'), "{name}: {attr}{rest}");
            }
        }
    }
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );

    let (_, served) = fetch("/openapi.json", "application/json").await;
    let served: Value = serde_json::from_slice(&served).unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        served == committed,
        "/openapi.json differs from docs/openapi.json: run `cargo xtask codegen`"
    );
}

#[tokio::test]
async fn failures_of_the_remaining_endpoints() {
    let Some(app) = TestApp::new("failures", true, &[]).await else {
        return;
    };
    let agent = app.register("agent@test.dev", "agent").await;
    let reply = app.get("/v1/listings/mine", None).await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED, "unauthenticated");

    // Unknown listings, whatever the operation.
    for (method, uri) in [
        (Method::GET, "/v1/listings/987654"),
        (Method::DELETE, "/v1/listings/987654"),
        (Method::POST, "/v1/listings/987654/publish"),
        (Method::POST, "/v1/listings/987654/archive"),
    ] {
        let (s, h, b) = app.send(method, uri, Some(&agent), None).await;
        assert_eq!(
            (s, b["type"].as_str()),
            (StatusCode::NOT_FOUND, Some("/problems/not-found")),
            "{uri}"
        );
        assert_eq!(h["content-type"], "application/problem+json");
    }
    let (s, _, _) = app
        .send(
            Method::PATCH,
            "/v1/listings/987654",
            Some(&agent),
            Some(json!({"title": "A fine title"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // PATCH with invalid fields: each is named.
    let created = app.create_listing(&agent).await;
    let uri = format!("/v1/listings/{}", created["id"]);
    let bad = json!({"title": "", "price": "12.345", "bathrooms": -1, "property_type": "castle", "currency": "dollars"});
    let (s, _, b) = app.send(Method::PATCH, &uri, Some(&agent), Some(bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(
        invalid_fields(&b),
        ["bathrooms", "currency", "price", "property_type", "title"]
    );
    let (s, _, b) = app
        .send(
            Method::PATCH,
            &uri,
            Some(&agent),
            Some(json!({"colour": "blue"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields: {b}");
    let (_, _, unchanged) = app.get(&uri, Some(&agent)).await;
    assert_eq!(unchanged["title"], created["title"]);
    assert_eq!(unchanged["price"], created["price"]);

    // Refresh without a refresh cookie: 401, with or without the CSRF pair.
    let csrf = "c".repeat(32);
    for headers in [
        vec![],
        vec![
            ("cookie", format!("goodgo_csrf={csrf}")),
            ("x-csrf-token", csrf.clone()),
        ],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, _, b) = app
            .call(Method::POST, "/v1/auth/refresh", None, None, &headers)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    }
    // Logout with the refresh cookie but no CSRF header: 403, and the session lives on.
    let (_, h, _) = app.login("agent@test.dev").await;
    let session = set_cookies(&h);
    let reply = app.with_cookies("logout", &session, None).await;
    assert_problem(&reply, StatusCode::FORBIDDEN, "forbidden");
    let (s, _, _) = app
        .with_cookies("refresh", &session, Some(&session.1))
        .await;
    assert_eq!(s, StatusCode::OK, "the refused logout ended nothing");
}

#[tokio::test]
async fn register_and_refresh_are_rate_limited_too() {
    for (name, uri, body, allowed) in [
        ("limitreg", "/v1/auth/register", true, 201),
        ("limitref", "/v1/auth/refresh", false, 401),
    ] {
        // One a minute: a burst of 3, and no token back during slow password hashes.
        let Some(app) = TestApp::new(name, true, &[("GOODGO_AUTH_RATE_LIMIT", "1")]).await else {
            return;
        };
        let mut statuses = Vec::new();
        for i in 0..4 {
            let body = body
                .then(|| json!({"email": format!("u{i}@test.dev"), "password": "a-long-password"}));
            let (s, h, _) = app.send(Method::POST, uri, None, body).await;
            if s == StatusCode::TOO_MANY_REQUESTS {
                assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
            }
            statuses.push(s.as_u16());
        }
        assert_eq!(statuses, [allowed, allowed, allowed, 429], "{uri}");
    }
}
