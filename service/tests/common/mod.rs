//! What the API's HTTP tests share: the router served on a loopback port over a migrated
//! database of the test's own (real PostgreSQL, the test kit's client), accounts of each
//! role, and signed payment events.
#![allow(dead_code)] // each test binary uses its own part of the kit

use std::net::SocketAddr;

use goodgo_api::payments::SignedWebhooks;
use goodgo_testkit::TestDb;
use goodgo_testkit::http::{Answer, Http, Method};
use serde_json::{Value, json};
use tokio_postgres::types::FromSql;

pub const JWT: &str = "k3J9xQz7LmN2vB8wR4tY6uP0aS5dF1gHjKlTest";
pub const NEW: &str = "whsec_N3wQz7LmN2vB8wR4tY6uP0aS5dF1gHjK";
pub const OLD: &str = "whsec_0ldQz7LmN2vB8wR4tY6uP0aS5dF1gHjK";

/// The API on a loopback port, on a migrated database of its own (dropped with it).
pub struct Api {
    pub port: u16,
    /// A connection of the test's own to the database (the server's superuser).
    pub client: tokio_postgres::Client,
    pub db: TestDb,
}

impl Api {
    /// The API with two webhook secrets ([`NEW`], [`OLD`]) and no rate limit to speak of.
    pub async fn start(name: &str) -> Option<Api> {
        Api::start_with(name, &[]).await
    }

    /// [`Api::start`] with more settings (`extra` overrides the defaults).
    pub async fn start_with(name: &str, extra: &[(&str, &str)]) -> Option<Api> {
        let db = TestDb::create(name)?;
        let c = migrated(&db.url).await;
        let url = db.url.clone();
        let secrets = format!("{NEW},{OLD}");
        let mut vars: Vec<(String, String)> = [
            ("GOODGO_DATABASE_URL", url.as_str()),
            ("GOODGO_JWT_SECRET", JWT),
            ("GOODGO_AUTH_RATE_LIMIT", "100000"),
            ("GOODGO_PAYMENTS_WEBHOOK_SECRETS", &secrets),
            ("GOODGO_API_REQUEST_TIMEOUT_MS", "60000"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // A later value of a variable wins.
        let mut seen = std::collections::HashSet::new();
        vars.reverse();
        vars.retain(|(k, _)| seen.insert(k.clone()));
        let config = goodgo_api::Config::from_env(&move |k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        let pool = goodgo_api::pool(&config).unwrap();
        let state = goodgo_api::state(config, pool);
        // With photo storage, what the binary starts beside the server: the sweeper of
        // stale uploads and the outbox worker that deletes objects. (The e-mail tests drive
        // their outbox worker themselves.)
        if state.photos.is_some() {
            goodgo_api::photos::spawn_worker(&state);
            if let Some(worker) = goodgo_api::outbox_worker(&state).unwrap() {
                tokio::spawn(worker.run());
            }
        }
        let app = goodgo_api::router(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Some(Api {
            port,
            client: c,
            db,
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: Vec<(String, String)>,
        body: Option<String>,
    ) -> Answer {
        let port = self.port;
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            Http::local(port)
                .send(method, &path, &h, body.as_deref())
                .expect("an answer")
        })
        .await
        .unwrap()
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let headers = token
            .map(|t| vec![("authorization".to_string(), format!("Bearer {t}"))])
            .unwrap_or_default();
        self.send(method, path, headers, body.map(|b| b.to_string()))
            .await
    }

    /// A JSON request whose answer must be `status`: the answer's JSON (null when empty).
    pub async fn expect(
        &self,
        status: u16,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let a = self.json(method, path, token, body).await;
        assert_eq!(a.status, status, "{path}: {}", a.body);
        if a.body.is_empty() {
            Value::Null
        } else {
            a.json()
        }
    }

    /// A new account's access token; an admin is registered as a buyer, made an admin in
    /// the database (admin is never self-assigned), then logged in.
    pub async fn user(&self, email: &str, role: &str) -> String {
        let registered = if role == "admin" { "buyer" } else { role };
        let body = json!({"email": email, "password": "a-long-password", "role": registered});
        let mut tokens = self
            .expect(201, Method::POST, "/v1/auth/register", None, Some(body))
            .await;
        if role == "admin" {
            self.client
                .execute(
                    "UPDATE users SET role = 'admin' WHERE email = $1",
                    &[&email],
                )
                .await
                .unwrap();
            let body = json!({"email": email, "password": "a-long-password"});
            tokens = self
                .expect(200, Method::POST, "/v1/auth/login", None, Some(body))
                .await;
        }
        tokens["access_token"].as_str().unwrap().to_string()
    }

    pub async fn webhook(&self, signature: Option<String>, body: &str) -> Answer {
        let headers = signature
            .map(|s| vec![("goodgo-signature".to_string(), s)])
            .unwrap_or_default();
        self.send(
            Method::POST,
            "/v1/webhooks/payments",
            headers,
            Some(body.to_string()),
        )
        .await
    }

    /// Access tokens of an agent, a buyer and an admin.
    pub async fn accounts(&self) -> (String, String, String) {
        (
            self.user("agent@example.com", "agent").await,
            self.user("buyer@example.com", "buyer").await,
            self.user("admin@example.com", "admin").await,
        )
    }

    /// Delivers `body` signed with `secret` now: the outcome acknowledged (the answer is 200).
    pub async fn deliver(&self, secret: &str, body: &str) -> String {
        let a = self.webhook(signed(secret, body), body).await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.json()["status"].as_str().unwrap().to_string()
    }

    /// One value of a query's single row.
    pub async fn scalar<T: for<'a> FromSql<'a>>(&self, sql: &str) -> T {
        self.client.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// The id of the account with e-mail `email`.
    pub async fn id_of(&self, email: &str) -> i64 {
        let row = self
            .client
            .query_one("SELECT id FROM users WHERE email = $1", &[&email])
            .await
            .unwrap();
        row.get(0)
    }

    /// How many rows `SELECT count(*) FROM {rows}` counts.
    pub async fn count(&self, rows: &str) -> i64 {
        self.scalar(&format!("SELECT count(*) FROM {rows}")).await
    }
}

/// A connection to the database at `url`, after every migration of this repository is
/// applied through it.
pub async fn migrated(url: &str) -> tokio_postgres::Client {
    migrated_with(&url.parse().unwrap()).await
}

/// [`migrated`], connecting with `config` (another role, say).
pub async fn migrated_with(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let files = goodgo_db::migrations::load(&dir, std::path::Path::new("migrations")).unwrap();
    let (mut c, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    goodgo_db::runner::migrate(&mut c, &files, None, &|_| {})
        .await
        .unwrap();
    c
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An event of type `kind` about checkout `reference`, created now.
pub fn event(id: &str, kind: &str, reference: &str) -> String {
    goodgo_webhook::envelope(id, kind, now(), reference)
}

pub fn signed(secret: &str, body: &str) -> Option<String> {
    Some(SignedWebhooks::sign(
        secret.as_bytes(),
        now(),
        body.as_bytes(),
    ))
}

/// `token`'s checkout of `plan`: its reference.
pub async fn checkout(api: &Api, token: &str, plan: &str) -> String {
    let body = Some(json!({"plan": plan}));
    let c = api
        .expect(201, Method::POST, "/v1/checkout", Some(token), body)
        .await;
    c["reference"].as_str().unwrap().to_string()
}
