//! The server's configuration, from the environment, validated before anything starts:
//! a server with a weak JWT secret must not come up at all.

use std::net::SocketAddr;
use std::time::Duration;

/// Every variable the server reads.
pub const VARS: &[(&str, &str)] = &[
    ("GOODGO_DATABASE_URL", "PostgreSQL URL (required)"),
    (
        "GOODGO_JWT_SECRET",
        "HMAC key for access tokens: at least 32 bytes, random (required)",
    ),
    (
        "GOODGO_API_ADDR",
        "address to listen on (default 127.0.0.1:8080)",
    ),
    (
        "GOODGO_ACCESS_TOKEN_TTL",
        "access token lifetime in seconds (default 900)",
    ),
    (
        "GOODGO_REFRESH_TOKEN_TTL",
        "refresh token lifetime in seconds (default 2592000, 30 days)",
    ),
    (
        "GOODGO_CORS_ORIGINS",
        "comma-separated origins allowed by CORS (default none)",
    ),
    (
        "GOODGO_AUTH_RATE_LIMIT",
        "login/register/refresh requests per minute per client address (default 30)",
    ),
    ("GOODGO_DB_POOL_SIZE", "database connections (default 16)"),
    (
        "GOODGO_API_WORKERS",
        "threads serving requests; 0 means one per core (default 0). Where PostgreSQL shares a small machine with the API, fewer threads leave it the other cores",
    ),
    (
        "GOODGO_API_REQUEST_TIMEOUT_MS",
        "time limit of a request in milliseconds, answered 408 when exceeded (default 10000)",
    ),
    (
        "GOODGO_PAYMENTS_WEBHOOK_SECRETS",
        "comma-separated HMAC secrets of payment webhooks, newest first (several while rotating), each at least 32 random bytes; unset, webhooks are refused",
    ),
    (
        "GOODGO_PAYMENTS_WEBHOOK_TOLERANCE",
        "how old (or how far ahead) a webhook signature's timestamp may be, in seconds (default 300)",
    ),
    (
        "GOODGO_API_TRUSTED_PROXIES",
        "comma-separated addresses or networks (10.0.0.0/8) of reverse proxies in front of the API; from them, the client's address is read from X-Forwarded-For (default none: the connection's peer is the client)",
    ),
    (
        "GOODGO_SMTP_URL",
        "mail server for e-mails to users: smtp://host:port (plain), smtp://host:587?tls=required (STARTTLS) or smtps://user:password@host:465; unset, no outbox worker runs and e-mails stay pending",
    ),
    (
        "GOODGO_SMTP_FROM",
        "the sender of e-mails, e.g. `GoodGo <no-reply@example.vn>` (required with GOODGO_SMTP_URL); its domain ends every Message-ID",
    ),
    (
        "GOODGO_SMTP_TIMEOUT",
        "seconds one SMTP conversation may take before it counts as failed and is retried (default 30)",
    ),
    (
        "GOODGO_OUTBOX_POLL_MS",
        "how often the outbox worker looks for due rows when idle, in milliseconds (default 1000)",
    ),
    (
        "GOODGO_OUTBOX_RETRY_BASE_MS",
        "delay before retrying a failed outbox row, doubled per attempt, in milliseconds (default 30000)",
    ),
    (
        "GOODGO_OUTBOX_RETRY_MAX_MS",
        "longest delay between attempts of an outbox row, in milliseconds (default 3600000)",
    ),
    (
        "GOODGO_OUTBOX_MAX_ATTEMPTS",
        "attempts before an outbox row is given up as failed (default 10)",
    ),
    (
        "GOODGO_OUTBOX_KEEP_DAYS",
        "days sent and skipped outbox rows are kept before the worker deletes them (default 30; 0 keeps them forever); failed rows are kept",
    ),
    (
        "GOODGO_REDIS_URL",
        "Redis URL (redis://host:port/db): search pages and listings cached there, and the auth rate limit shared by every replica (default none: no cache, a limit per process)",
    ),
    (
        "GOODGO_CACHE_TTL",
        "how long a cached answer is kept, in seconds (default 300); changes through the API invalidate at once",
    ),
    (
        "GOODGO_LOG",
        "log filter, e.g. info or goodgo_api=debug (default info)",
    ),
    (
        "GOODGO_RELEASE",
        "the release this process serves (set by `goodgo deploy`); sent back in every response's `GoodGo-Release` header",
    ),
    (
        "GOODGO_S3_BUCKET",
        "the private bucket of listing photos; unset, the photo routes answer 503 (see also the AWS_* variables)",
    ),
    (
        "AWS_ENDPOINT_URL",
        "the S3 API's URL for a server other than AWS (MinIO, moto); presigned URLs point at it",
    ),
    ("AWS_REGION", "the bucket's region (default us-east-1)"),
    ("AWS_ACCESS_KEY_ID", "the S3 access key id"),
    ("AWS_SECRET_ACCESS_KEY", "the S3 secret access key"),
    (
        "GOODGO_PHOTO_MAX_BYTES",
        "the largest photo accepted, in bytes (default 10485760, 10 MiB)",
    ),
    (
        "GOODGO_PHOTO_URL_TTL",
        "how long a presigned photo URL (upload or read) stays valid, in seconds (default 300)",
    ),
    (
        "GOODGO_SENTRY_DSN",
        "a Sentry DSN: panics and 5xx answers are reported there (request id, route, release; no bodies, credentials or e-mails); unset, nothing is sent",
    ),
];

/// Any variable of [`VARS`] may instead name a file holding its value in `NAME_FILE`
/// (`GOODGO_JWT_SECRET_FILE=/run/secrets/GOODGO_JWT_SECRET`), as Docker and Swarm secrets
/// are mounted: the value then never appears in the process environment or `docker
/// inspect`. Setting both is refused; one trailing newline of the file is dropped.
pub const FILE_SUFFIX: &str = "_FILE";

/// The example value the docs show; refused like any other placeholder.
pub const DOCS_EXAMPLE_SECRET: &str = "replace-me-with-the-output-of-openssl-rand-base64-48";

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub jwt_secret: Vec<u8>,
    pub addr: SocketAddr,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub cors_origins: Vec<String>,
    pub auth_rate_per_minute: u32,
    pub pool_size: usize,
    /// Threads of the request runtime; `None`, one per core.
    pub workers: Option<usize>,
    pub request_timeout: Duration,
    /// Payment webhook secrets, newest first; empty, webhooks are refused.
    pub webhook_secrets: Vec<Vec<u8>>,
    pub webhook_tolerance_s: i64,
    /// Proxies whose `X-Forwarded-For` names the client; empty, the peer is the client.
    pub trusted_proxies: Vec<crate::middleware::Net>,
    pub log: String,
    /// The release id `goodgo deploy` started this process for, echoed in `GoodGo-Release`.
    pub release: Option<String>,
    /// Where listing photos live; `None`, the photo routes answer 503.
    pub photos: Option<crate::photos::StorageConfig>,
    /// Where panics and 5xx answers are reported; `None`, nowhere.
    pub sentry_dsn: Option<String>,
    /// The mail server; `None`, no outbox worker runs (e-mails wait as pending).
    pub mail: Option<crate::mail::MailConfig>,
    /// How the outbox worker paces itself.
    pub outbox: crate::outbox::Settings,
    /// `GOODGO_REDIS_URL`: the cache and the shared rate limits (none without it).
    pub redis_url: Option<String>,
    pub cache_ttl: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, not even in a debug dump.
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("access_ttl", &self.access_ttl)
            .field("cors_origins", &self.cors_origins)
            .field("request_timeout", &self.request_timeout)
            .field("release", &self.release)
            .field("photos", &self.photos)
            .field("sentry", &self.sentry_dsn.is_some())
            .finish_non_exhaustive()
    }
}

/// Why the secret is unacceptable, if it is.
pub fn weak_secret(secret: &str) -> Option<String> {
    weak_secret_named("GOODGO_JWT_SECRET", secret)
}

/// Why the secret in `name` is unacceptable, if it is.
pub fn weak_secret_named(name: &str, secret: &str) -> Option<String> {
    let lowered = secret.trim().to_ascii_lowercase();
    const PLACEHOLDERS: &[&str] = &[
        "secret",
        "changeme",
        "change-me",
        "change_me",
        "password",
        "jwt-secret",
        "jwt_secret",
        "your-secret",
        "your-256-bit-secret",
        "supersecret",
        "test",
        "example",
    ];
    if secret.is_empty() {
        return Some(format!("{name} is empty"));
    }
    if secret == DOCS_EXAMPLE_SECRET
        || PLACEHOLDERS.iter().any(|p| {
            lowered == *p || (lowered.contains(p) && lowered.len() < 48 && distinct(&lowered) < 12)
        })
    {
        return Some(format!(
            "{name} is a well-known placeholder; generate one with `openssl rand -base64 48`"
        ));
    }
    if secret.len() < 32 {
        return Some(format!(
            "{name} is {} bytes; it must be at least 32 random bytes (`openssl rand -base64 48`)",
            secret.len()
        ));
    }
    if distinct(secret) < 8 {
        return Some(format!(
            "{name} repeats a few characters; it must be random (`openssl rand -base64 48`)"
        ));
    }
    None
}

fn distinct(s: &str) -> usize {
    let mut chars: Vec<char> = s.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    chars.len()
}

/// Each variable of [`VARS`] from `get`, or from the file `NAME_FILE` names (see
/// [`FILE_SUFFIX`]); a file that cannot be read, or a variable set both ways, is a problem.
pub fn resolve_files(
    get: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&str) -> std::io::Result<String>,
) -> Result<std::collections::BTreeMap<String, String>, Vec<String>> {
    let mut values = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    for (name, _) in VARS {
        let file_var = format!("{name}{FILE_SUFFIX}");
        match (get(name), get(&file_var)) {
            (Some(_), Some(_)) => problems.push(format!(
                "{name} and {file_var} are both set; set one of them"
            )),
            (Some(v), None) => {
                values.insert(name.to_string(), v);
            }
            (None, Some(path)) => match read(&path) {
                Ok(text) => {
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    values.insert(name.to_string(), text.to_string());
                }
                Err(e) => problems.push(format!("{file_var}: cannot read {path}: {e}")),
            },
            (None, None) => {}
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

impl Config {
    /// Reads the configuration from the process environment, with `NAME_FILE` variables
    /// read from their files.
    pub fn from_process_env() -> Result<Config, Vec<String>> {
        let values = resolve_files(&|k| std::env::var(k).ok(), &|p| std::fs::read_to_string(p))?;
        Config::from_env(&|k| values.get(k).cloned())
    }

    /// Reads and validates the configuration; every problem is listed, not just the first.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<String>> {
        let mut problems = Vec::new();
        let database_url = get("GOODGO_DATABASE_URL").unwrap_or_default();
        if database_url.is_empty() {
            problems.push("GOODGO_DATABASE_URL is not set".to_string());
        }
        let secret = get("GOODGO_JWT_SECRET");
        match &secret {
            None => problems.push(
                "GOODGO_JWT_SECRET is not set; generate one with `openssl rand -base64 48`".into(),
            ),
            Some(s) => problems.extend(weak_secret(s)),
        }
        let addr_text = get("GOODGO_API_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into());
        let addr = addr_text.parse().unwrap_or_else(|_| {
            problems.push(format!(
                "GOODGO_API_ADDR `{addr_text}` is not an address like 127.0.0.1:8080"
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let mut number = |name: &str, default: u64, min: u64, max: u64| -> u64 {
            match get(name) {
                None => default,
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => n,
                    _ => {
                        problems.push(format!(
                            "{name} must be a whole number from {min} to {max}, not `{v}`"
                        ));
                        default
                    }
                },
            }
        };
        let access = number("GOODGO_ACCESS_TOKEN_TTL", 900, 30, 86_400);
        let refresh = number("GOODGO_REFRESH_TOKEN_TTL", 30 * 86_400, 300, 365 * 86_400);
        let rate = number("GOODGO_AUTH_RATE_LIMIT", 30, 1, 100_000);
        let pool = number("GOODGO_DB_POOL_SIZE", 16, 1, 512);
        let workers = number("GOODGO_API_WORKERS", 0, 0, 256);
        let timeout_ms = number("GOODGO_API_REQUEST_TIMEOUT_MS", 10_000, 1, 600_000);
        let tolerance = number("GOODGO_PAYMENTS_WEBHOOK_TOLERANCE", 300, 1, 86_400);
        let outbox = crate::outbox::Settings {
            poll: Duration::from_millis(number("GOODGO_OUTBOX_POLL_MS", 1000, 10, 60_000)),
            retry_base: Duration::from_millis(number(
                "GOODGO_OUTBOX_RETRY_BASE_MS",
                30_000,
                10,
                3_600_000,
            )),
            retry_max: Duration::from_millis(number(
                "GOODGO_OUTBOX_RETRY_MAX_MS",
                3_600_000,
                10,
                86_400_000,
            )),
            max_attempts: i32::try_from(number("GOODGO_OUTBOX_MAX_ATTEMPTS", 10, 1, 100))
                .unwrap_or(10),
            keep: match number("GOODGO_OUTBOX_KEEP_DAYS", 30, 0, 3650) {
                0 => None,
                days => Some(Duration::from_secs(days * 86_400)),
            },
        };
        let cache_ttl = number("GOODGO_CACHE_TTL", 300, 1, 86_400);
        let redis_url = get("GOODGO_REDIS_URL").filter(|u| !u.trim().is_empty());
        if let Some(url) = &redis_url
            && let Err(e) = redis::Client::open(url.as_str())
        {
            // The URL may hold a password: the error says what is wrong, never the URL.
            problems.push(format!(
                "GOODGO_REDIS_URL is not a Redis URL like redis://127.0.0.1:6379: {e}"
            ));
        }
        let webhook_secrets: Vec<String> = get("GOODGO_PAYMENTS_WEBHOOK_SECRETS")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        for (i, s) in webhook_secrets.iter().enumerate() {
            let name = format!("GOODGO_PAYMENTS_WEBHOOK_SECRETS (secret {})", i + 1);
            problems.extend(weak_secret_named(&name, s));
        }
        let mut trusted_proxies = Vec::new();
        for item in get("GOODGO_API_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match item.parse() {
                Ok(net) => trusted_proxies.push(net),
                Err(()) => problems.push(format!(
                    "GOODGO_API_TRUSTED_PROXIES: `{item}` is not an address or a network like 10.0.0.0/8"
                )),
            }
        }
        let cors_origins: Vec<String> = get("GOODGO_CORS_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        for origin in &cors_origins {
            if !(origin.starts_with("https://") || origin.starts_with("http://")) || origin == "*" {
                problems.push(format!(
                    "GOODGO_CORS_ORIGINS: `{origin}` is not an origin like https://app.example.com"
                ));
            }
        }
        let mail = crate::mail::MailConfig::from_env(get, &mut problems);
        let release = get("GOODGO_RELEASE").filter(|r| !r.is_empty());
        if let Some(r) = &release
            && (r.len() > 64 || !r.bytes().all(|b| b.is_ascii_graphic()))
        {
            problems.push(format!(
                "GOODGO_RELEASE `{r}` must be at most 64 visible ASCII characters"
            ));
        }
        let photos = crate::photos::StorageConfig::from_env(get, &mut problems);
        let sentry_dsn = get("GOODGO_SENTRY_DSN").filter(|d| !d.is_empty());
        if let Some(dsn) = &sentry_dsn {
            problems.extend(crate::sentry::check_dsn(dsn));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            database_url,
            jwt_secret: secret.unwrap_or_default().into_bytes(),
            addr,
            access_ttl: Duration::from_secs(access),
            refresh_ttl: Duration::from_secs(refresh),
            cors_origins,
            auth_rate_per_minute: u32::try_from(rate).unwrap_or(30),
            pool_size: usize::try_from(pool).unwrap_or(16),
            workers: usize::try_from(workers).ok().filter(|w| *w > 0),
            request_timeout: Duration::from_millis(timeout_ms),
            webhook_secrets: webhook_secrets
                .into_iter()
                .map(String::into_bytes)
                .collect(),
            webhook_tolerance_s: i64::try_from(tolerance).unwrap_or(300),
            trusted_proxies,
            log: get("GOODGO_LOG").unwrap_or_else(|| "info".into()),
            release,
            photos,
            sentry_dsn,
            mail,
            outbox,
            redis_url,
            cache_ttl: Duration::from_secs(cache_ttl),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(&move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn weak_secrets_are_refused_with_a_reason() {
        for weak in [
            "secret",
            "changeme",
            "short-but-random-Xy7",
            DOCS_EXAMPLE_SECRET,
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "CHANGEME",
        ] {
            let err = with(&[
                ("GOODGO_DATABASE_URL", "postgres://x"),
                ("GOODGO_JWT_SECRET", weak),
            ])
            .err()
            .unwrap_or_default();
            assert_eq!(err.len(), 1, "{weak}: {err:?}");
        }
        assert!(
            with(&[("GOODGO_DATABASE_URL", "postgres://x")]).is_err(),
            "missing secret"
        );
        let ok = with(&[
            ("GOODGO_DATABASE_URL", "postgres://x"),
            ("GOODGO_JWT_SECRET", "k3J9x!Qz7LmN2vB8wR4tY6uP0aS5dF1gH"),
        ]);
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn webhook_secrets_are_validated_like_the_jwt_secret() {
        let base = [
            ("GOODGO_DATABASE_URL", "postgres://x"),
            ("GOODGO_JWT_SECRET", "k3J9x!Qz7LmN2vB8wR4tY6uP0aS5dF1gH"),
        ];
        let secrets = |v: &str| {
            let mut vars = base.to_vec();
            vars.push(("GOODGO_PAYMENTS_WEBHOOK_SECRETS", v));
            with(&vars).map(|c| c.webhook_secrets.len())
        };
        assert_eq!(with(&base).map(|c| c.webhook_secrets.len()), Ok(0));
        assert_eq!(
            secrets(
                "whsec_Qx7Lm2vB8wR4tY6uP0aS5dF1gHjKzzA9, whsec_Zx7Lm2vB8wR4tY6uP0aS5dF1gHjKzzA8"
            ),
            Ok(2)
        );
        let err = secrets("whsec_Qx7Lm2vB8wR4tY6uP0aS5dF1gHjKzzA9,changeme")
            .err()
            .unwrap_or_default();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].starts_with("GOODGO_PAYMENTS_WEBHOOK_SECRETS (secret 2)"),
            "{err:?}"
        );
        assert!(secrets("").is_err(), "set but empty");
    }

    #[test]
    fn every_problem_is_listed() {
        let err = with(&[
            ("GOODGO_API_ADDR", "nowhere"),
            ("GOODGO_ACCESS_TOKEN_TTL", "0"),
        ])
        .err()
        .unwrap_or_default();
        assert_eq!(err.len(), 4, "{err:?}");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let base = [
            ("GOODGO_DATABASE_URL", "postgres://x"),
            ("GOODGO_JWT_SECRET", "Qx7Lm2vB8wR4tY6uP0aS5dF1gHjKzzA9"),
        ];
        let proxies = |v: &str| {
            let mut vars = base.to_vec();
            vars.push(("GOODGO_API_TRUSTED_PROXIES", v));
            with(&vars).map(|c| c.trusted_proxies.len())
        };
        assert_eq!(proxies("10.0.0.0/8, 127.0.0.1 ,::1,fd00::/8"), Ok(4));
        assert_eq!(proxies(""), Ok(0));
        let err = proxies("10.0.0.0/33,proxy.local").err().unwrap_or_default();
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(err[1].contains("`proxy.local`"), "{err:?}");
    }

    #[test]
    fn values_come_from_files_named_by_file_variables() {
        let env = [
            ("GOODGO_DATABASE_URL_FILE", "/run/secrets/url"),
            ("GOODGO_JWT_SECRET_FILE", "/run/secrets/jwt"),
            ("GOODGO_RELEASE", "r7"),
        ];
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let read = |p: &str| match p {
            "/run/secrets/url" => Ok("postgres://u:p@db/x\n".to_string()),
            "/run/secrets/jwt" => Ok("Qx7Lm2vB8wR4tY6uP0aS5dF1gHjKzzA9\n".to_string()),
            _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        };
        let values = resolve_files(&get, &read).unwrap_or_default();
        let config = Config::from_env(&|k| values.get(k).cloned());
        let config = config.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config.database_url, "postgres://u:p@db/x");
        assert_eq!(config.jwt_secret, b"Qx7Lm2vB8wR4tY6uP0aS5dF1gHjKzzA9");
        assert_eq!(config.release.as_deref(), Some("r7"));
        assert!(
            !format!("{config:?}").contains("Qx7Lm"),
            "no secret in Debug"
        );

        let both = [("GOODGO_JWT_SECRET", "x"), ("GOODGO_JWT_SECRET_FILE", "/y")];
        let get = |k: &str| {
            both.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let err = resolve_files(&get, &read).err().unwrap_or_default();
        assert_eq!(
            err,
            ["GOODGO_JWT_SECRET and GOODGO_JWT_SECRET_FILE are both set; set one of them"]
        );
        let missing = [("GOODGO_JWT_SECRET_FILE", "/nope")];
        let get = |k: &str| {
            missing
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let err = resolve_files(&get, &read).err().unwrap_or_default();
        assert!(
            err[0].starts_with("GOODGO_JWT_SECRET_FILE: cannot read /nope"),
            "{err:?}"
        );
    }

    #[test]
    fn workers_default_to_one_per_core() {
        let base = [
            ("GOODGO_DATABASE_URL", "postgres://x"),
            ("GOODGO_JWT_SECRET", "Qx7Lm2vB8wR4tY6uP0aS5dF1gHjKzzA9"),
        ];
        let workers = |v: Option<&str>| {
            let mut vars = base.to_vec();
            vars.extend(v.map(|v| ("GOODGO_API_WORKERS", v)));
            with(&vars).map(|c| c.workers)
        };
        assert_eq!(workers(None), Ok(None));
        assert_eq!(workers(Some("0")), Ok(None));
        assert_eq!(workers(Some("1")), Ok(Some(1)));
        let err = workers(Some("many")).err().unwrap_or_default();
        assert_eq!(
            err,
            ["GOODGO_API_WORKERS must be a whole number from 0 to 256, not `many`"]
        );
    }
}
