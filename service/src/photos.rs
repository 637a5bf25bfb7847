//! Listing photos on private S3-compatible storage (TEC-1452): the settings, the bucket
//! client, presigned URLs, and the worker that deletes the objects of removed photos.
//!
//! The API never carries a photo's bytes. A client asks for an upload and receives a
//! presigned PUT URL for a random key (never derived from anything the client sent) with
//! the declared content type bound into the signature; it uploads straight to the bucket,
//! then confirms, and the API checks the object with a HEAD (size within
//! `GOODGO_PHOTO_MAX_BYTES`, the declared content type) before the photo shows. Reads are
//! presigned GET URLs that expire after `GOODGO_PHOTO_URL_TTL` seconds: the bucket stays
//! private, with no public-read policy anywhere.
//!
//! Deleting a photo's row (the photo, its listing, its owner) writes the deletion of its
//! object to the outbox (topic [`DELETE_TOPIC`]) in the same transaction (a trigger, see
//! V9); the outbox worker runs [`DeleteObject`] for it, retried with the outbox's backoff
//! while the storage cannot be reached, so an outage delays deletions and loses none.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::signer::{HeaderValue, Method, SignedUrlOptions, Signer};
use object_store::{Attribute, GetOptions, ObjectStore, ObjectStoreExt, RetryConfig};

/// The content types a photo may have, with the file extension its key gets.
pub const CONTENT_TYPES: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/webp", "webp"),
    ("image/avif", "avif"),
];

/// Where photos live, from `GOODGO_S3_BUCKET` and the `AWS_*` variables (the names the
/// backups and every S3 tool use).
#[derive(Clone)]
pub struct StorageConfig {
    pub bucket: String,
    /// `AWS_ENDPOINT_URL`: a server other than AWS; presigned URLs point at it.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    secret_access_key: Option<String>,
    /// The largest photo accepted.
    pub max_bytes: u64,
    /// How long a presigned URL stays valid.
    pub url_ttl: Duration,
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret key.
        f.debug_struct("StorageConfig")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("max_bytes", &self.max_bytes)
            .field("url_ttl", &self.url_ttl)
            .finish_non_exhaustive()
    }
}

impl StorageConfig {
    /// The settings, or `None` when `GOODGO_S3_BUCKET` is not set (photos are then off);
    /// what is wrong is added to `problems`.
    pub fn from_env(
        get: &dyn Fn(&str) -> Option<String>,
        problems: &mut Vec<String>,
    ) -> Option<StorageConfig> {
        let mut number = |name: &str, default: u64, min: u64, max: u64| match get(name) {
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
        };
        let max_bytes = number("GOODGO_PHOTO_MAX_BYTES", 10 << 20, 1, 1 << 30);
        let ttl = number("GOODGO_PHOTO_URL_TTL", 300, 1, 7 * 86_400);
        let bucket = get("GOODGO_S3_BUCKET").filter(|b| !b.is_empty())?;
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            problems.push(format!(
                "GOODGO_S3_BUCKET `{bucket}` is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
            ));
        }
        let endpoint = get("AWS_ENDPOINT_URL").filter(|e| !e.is_empty());
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            problems.push(format!(
                "AWS_ENDPOINT_URL `{e}` is not a URL like https://s3.example.com"
            ));
        }
        Some(StorageConfig {
            bucket,
            endpoint,
            region: get("AWS_REGION")
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id: get("AWS_ACCESS_KEY_ID").filter(|v| !v.is_empty()),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY").filter(|v| !v.is_empty()),
            max_bytes,
            url_ttl: Duration::from_secs(ttl),
        })
    }
}

/// A storage request that failed (after object_store's few retries).
#[derive(Debug, thiserror::Error)]
#[error("photo storage: {0}")]
pub struct StorageError(#[from] object_store::Error);

/// What a HEAD of an uploaded object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub content_type: Option<String>,
}

/// The photo bucket.
pub struct Storage {
    s3: AmazonS3,
    pub config: StorageConfig,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({:?})", self.config)
    }
}

impl Storage {
    pub fn open(config: StorageConfig) -> Result<Storage, String> {
        // object_store's client is the workspace's reqwest: rustls without a bundled
        // provider; the workspace's is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            // A request in the API's path fails quickly: the client retries, not us.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(5),
                ..RetryConfig::default()
            });
        if let Some(e) = &config.endpoint {
            builder = builder
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"));
        }
        if let Some(k) = &config.access_key_id {
            builder = builder.with_access_key_id(k);
        }
        if let Some(s) = &config.secret_access_key {
            builder = builder.with_secret_access_key(s);
        }
        let s3 = builder
            .build()
            .map_err(|e| format!("photo storage (bucket {}): {e}", config.bucket))?;
        Ok(Storage { s3, config })
    }

    /// A new random key for a photo of `content_type` (one of [`CONTENT_TYPES`]).
    pub fn new_key(content_type: &str) -> Result<String, crate::error::ApiError> {
        let ext = extension(content_type).unwrap_or("bin");
        Ok(format!("photos/{}.{ext}", crate::auth::random_uuid()?))
    }

    /// A URL that lets whoever holds it PUT the object `key` with exactly `content_type`,
    /// for the configured time.
    pub async fn upload_url(&self, key: &str, content_type: &str) -> Result<String, StorageError> {
        let mut options = SignedUrlOptions::new();
        if let Ok(v) = HeaderValue::from_str(content_type) {
            options = options.with_signed_header(
                object_store::signer::HeaderName::from_static("content-type"),
                v,
            );
        }
        let url = self
            .s3
            .signed_url_opts(Method::PUT, &Key::from(key), self.config.url_ttl, &options)
            .await?;
        Ok(url.to_string())
    }

    /// A URL that lets whoever holds it GET the object `key`, for the configured time.
    pub async fn read_url(&self, key: &str) -> Result<String, StorageError> {
        let url = self
            .s3
            .signed_url(Method::GET, &Key::from(key), self.config.url_ttl)
            .await?;
        Ok(url.to_string())
    }

    /// The object's size and content type; `None` when there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<Head>, StorageError> {
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        match self.s3.get_opts(&Key::from(key), options).await {
            Ok(r) => Ok(Some(Head {
                size: r.meta.size,
                content_type: r
                    .attributes
                    .get(&Attribute::ContentType)
                    .map(|v| v.to_string()),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the object `key` (done when there is none).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.s3.delete(&Key::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The file extension of an accepted content type.
pub fn extension(content_type: &str) -> Option<&'static str> {
    CONTENT_TYPES
        .iter()
        .find(|(t, _)| *t == content_type)
        .map(|(_, e)| *e)
}

/// The outbox topic of an object to delete; its payload is `{"key": "photos/…"}`.
pub const DELETE_TOPIC: &str = "photo.delete";

/// The outbox handler of [`DELETE_TOPIC`]: deletes the object (done when it is already
/// gone); a storage that cannot be reached is worth another attempt.
pub struct DeleteObject(pub Arc<Storage>);

impl crate::outbox::Handler for DeleteObject {
    fn handle<'a>(
        &'a self,
        _tx: &'a deadpool_postgres::Transaction<'_>,
        job: &'a crate::outbox::Job,
    ) -> crate::outbox::HandlerFuture<'a> {
        Box::pin(async move {
            let Some(key) = job.payload["key"].as_str().filter(|k| !k.is_empty()) else {
                return Err(crate::outbox::Failure::Permanent(
                    "the payload names no object key".into(),
                ));
            };
            match self.0.delete(key).await {
                Ok(()) => Ok(crate::outbox::Done::Sent),
                Err(e) => Err(crate::outbox::Failure::Retry(e.to_string())),
            }
        })
    }
}

/// A pending upload never confirmed is dropped (and its object, if any, deleted) after this.
pub const PENDING_FOR: &str = "1 day";

/// How often stale pending uploads are looked for.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Drops pending uploads older than [`PENDING_FOR`] (which writes their objects' deletions
/// to the outbox): how many.
pub async fn sweep_pending(pool: &deadpool_postgres::Pool) -> Result<u64, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .execute(
            &format!(
                "DELETE FROM listing_photos WHERE status = 'pending' AND created_at < now() - interval '{PENDING_FOR}'"
            ),
            &[],
        )
        .await
        .map_err(|e| goodgo_db::describe(&e))
}

/// Starts the sweeper of stale pending uploads on the current runtime (when photos are on).
pub fn spawn_worker(state: &crate::AppState) {
    if state.photos.is_none() {
        return;
    }
    let pool = state.pool.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = sweep_pending(&pool).await {
                tracing::warn!(error = %e, "sweeping stale photo uploads");
            }
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    });
}

/// The storage of `state`, or the 503 problem that says photos are off.
pub fn storage(state: &crate::AppState) -> Result<Arc<Storage>, crate::error::ApiError> {
    state
        .photos
        .clone()
        .ok_or(crate::error::ApiError::PhotosDisabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> (Option<StorageConfig>, Vec<String>) {
        let mut problems = Vec::new();
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        (StorageConfig::from_env(&get, &mut problems), problems)
    }

    #[test]
    fn photos_are_off_without_a_bucket_and_checked_with_one() {
        assert!(config(&[]).0.is_none());
        let (c, problems) = config(&[
            ("GOODGO_S3_BUCKET", "goodgo-photos"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        let c = c.unwrap_or_else(|| panic!("a config"));
        assert_eq!(c.max_bytes, 10 << 20);
        assert_eq!(c.url_ttl, Duration::from_secs(300));
        assert!(
            !format!("{c:?}").contains("very-secret"),
            "no secret in Debug"
        );
        let (_, problems) = config(&[
            ("GOODGO_S3_BUCKET", "Not_A_Bucket"),
            ("AWS_ENDPOINT_URL", "localhost:9000"),
            ("GOODGO_PHOTO_URL_TTL", "0"),
        ]);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn keys_are_random_and_typed() {
        let a = Storage::new_key("image/png").unwrap_or_default();
        let b = Storage::new_key("image/png").unwrap_or_default();
        assert!(a.starts_with("photos/") && a.ends_with(".png"), "{a}");
        assert_ne!(a, b);
        assert_eq!(extension("image/jpeg"), Some("jpg"));
        assert_eq!(extension("text/html"), None);
    }
}
