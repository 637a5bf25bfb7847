//! A real S3 API server for one test: moto (`pip install 'moto[server]'`, which
//! `cargo xtask test` provisions) on a free loopback port, stopped when the test ends; the
//! `AWS_*` settings that point a client at it; and a signed client of its own
//! ([`Bucket`]) to look at, damage or remove objects behind goodgo's back.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::http::{Http, Method};
use crate::{ChildGuard, free_port, skip, strict, wait_until};

/// A running moto server.
pub struct S3Server {
    /// `http://127.0.0.1:{port}`.
    pub endpoint: String,
    port: u16,
    _server: ChildGuard,
    /// The folder of a server that keeps its objects in one.
    _root: Option<tempfile::TempDir>,
}

impl S3Server {
    /// Starts moto. `None` (with a visible skip line) only outside `cargo xtask test`, when
    /// `moto_server` is not installed.
    pub fn start(test: &str) -> Option<S3Server> {
        S3Server::start_on(test, free_port())
    }

    /// [`S3Server::start`] on `port`: a server started again where a stopped one was (an
    /// outage over; moto keeps nothing, so its buckets are gone).
    pub fn start_on(test: &str, port: u16) -> Option<S3Server> {
        S3Server::start_in(test, port, None)
    }

    /// [`S3Server::start_on`] with `moto_server` looked up on `search_path` (a `PATH`
    /// value) instead of the process's `PATH`.
    pub fn start_in(
        test: &str,
        port: u16,
        search_path: Option<&std::ffi::OsStr>,
    ) -> Option<S3Server> {
        let found = match search_path {
            Some(p) => which::which_in("moto_server", Some(p), "."),
            None => which::which("moto_server"),
        };
        let Ok(program) = found else {
            assert!(!strict(), "cargo xtask test installs moto[server]");
            skip(
                test,
                "moto_server is not installed (`pip install 'moto[server]'`)",
            );
            return None;
        };
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            _server: ChildGuard::new(child),
            _root: None,
        };
        let http = Http::new(&format!("127.0.0.1:{port}"), Duration::from_secs(5));
        wait_until("moto to answer", Duration::from_secs(60), || {
            http.get("/").is_some()
        });
        Some(server)
    }

    /// s3s-fs (`cargo install s3s-fs --features binary`, which `cargo xtask test`
    /// provisions) over a temporary folder, with `buckets` made: unlike moto it verifies
    /// signatures, presigned URLs' included (their expiry and signed headers). Its
    /// credentials are those of [`S3Server::env`]. `None` (with a visible skip line) only
    /// outside `cargo xtask test`, when s3s-fs is not installed.
    pub fn start_verifying(test: &str, buckets: &[&str]) -> Option<S3Server> {
        let Ok(program) = which::which("s3s-fs") else {
            assert!(!strict(), "cargo xtask test installs s3s-fs");
            skip(
                test,
                "s3s-fs is not installed (`cargo install s3s-fs --features binary`)",
            );
            return None;
        };
        let root = tempfile::tempdir().unwrap();
        for b in buckets {
            std::fs::create_dir(root.path().join(b)).unwrap();
        }
        let port = free_port();
        let child = Command::new(program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--access-key",
                "goodgo-test",
                "--secret-key",
                "goodgo-test-secret",
            ])
            .arg(root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            _server: ChildGuard::new(child),
            _root: Some(root),
        };
        let http = Http::new(&format!("127.0.0.1:{port}"), Duration::from_secs(5));
        wait_until("s3s-fs to answer", Duration::from_secs(30), || {
            http.get("/").is_some()
        });
        Some(server)
    }

    /// The settings a client needs (what a user exports): the endpoint, a region and
    /// credentials (moto accepts any).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "goodgo-test"),
            ("AWS_SECRET_ACCESS_KEY", "goodgo-test-secret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn http(&self) -> Http {
        Http::new(&format!("127.0.0.1:{}", self.port), Duration::from_secs(30))
    }

    /// Creates bucket `name` (private, as buckets are).
    pub fn create_bucket(&self, name: &str) {
        let answer = self
            .http()
            .send(Method::PUT, &format!("/{name}"), &[], None)
            .unwrap();
        assert_eq!(
            answer.status, 200,
            "creating bucket {name}: {}",
            answer.body
        );
    }

    /// The status of an unsigned GET of `key` in `bucket`, as anyone on the network
    /// could send it.
    pub fn anonymous_get(&self, bucket: &str, key: &str) -> u16 {
        self.http()
            .get(&format!("/{bucket}/{key}"))
            .map(|a| a.status)
            .unwrap_or(0)
    }

    /// A signed client for `bucket`.
    pub fn bucket(&self, bucket: &str) -> Bucket {
        Bucket::connect(&self.env(), bucket)
    }
}

/// A signed client of one bucket (object_store's, on a runtime of its own).
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
}

/// An object as a listing shows it.
#[derive(Debug, Clone)]
pub struct Object {
    pub key: String,
    pub size: u64,
    /// `…-N` for an object uploaded in N parts.
    pub e_tag: String,
}

impl Bucket {
    /// A signed client for `bucket` on the server `env` names (`AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`): a server this kit did
    /// not start, such as the one `goodgo up --profile s3` runs.
    pub fn connect(env: &[(String, String)], bucket: &str) -> Bucket {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_allow_http(true);
        for (k, v) in env.iter().filter(|(k, _)| k.starts_with("AWS_")) {
            builder = builder.with_config(k.to_ascii_lowercase().parse().unwrap(), v);
        }
        Bucket {
            store: Arc::new(builder.build().unwrap()),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// Whether `key` can be read: `Err` with the error's text when not (a wrong
    /// signature, a missing object).
    pub fn try_get(&self, key: &str) -> Result<Vec<u8>, String> {
        let key = Key::from(key);
        self.runtime
            .block_on(async { self.store.get(&key).await?.bytes().await })
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string())
    }

    /// The objects under `prefix`, sorted by key.
    pub fn objects(&self, prefix: &str) -> Vec<Object> {
        let prefix = Key::from(prefix);
        let metas: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&prefix)).try_collect())
            .unwrap();
        let mut objects: Vec<Object> = metas
            .into_iter()
            .map(|m| Object {
                key: m.location.to_string(),
                size: m.size,
                e_tag: m.e_tag.unwrap_or_default(),
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects
    }

    /// The keys under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.objects(prefix).into_iter().map(|o| o.key).collect()
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        let key = Key::from(key);
        self.runtime
            .block_on(async { self.store.get(&key).await?.bytes().await })
            .unwrap()
            .to_vec()
    }

    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        let key = Key::from(key);
        self.runtime
            .block_on(self.store.put(&key, PutPayload::from(bytes)))
            .unwrap();
    }

    pub fn delete(&self, key: &str) {
        let key = Key::from(key);
        self.runtime.block_on(self.store.delete(&key)).unwrap();
    }
}
