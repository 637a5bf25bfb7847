//! S3 as a local process: `s3s-fs` (an S3 API server over a folder, which checks SigV4
//! signatures, presigned URLs' included) in place of a MinIO image, over the service's
//! `data` folder, with MinIO's credentials (`MINIO_ROOT_USER`/`MINIO_ROOT_PASSWORD`), on
//! the port the service publishes; ready when it answers HTTP. Each bucket is a folder of
//! `data`: the photo bucket ([`PHOTO_BUCKET`]) is made when missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use goodgo_compose::Service;

use super::logs::new_log;
use super::{Kind, NativeRuntime, spawn};
use crate::{StackError, probe};

/// The port MinIO listens on in its container, and s3s-fs here when nothing is published.
pub const S3_PORT: u16 = 9000;

/// The bucket the API keeps listing photos in on the local stack (`GOODGO_S3_BUCKET`).
pub const PHOTO_BUCKET: &str = "goodgo-photos";

/// The region the local server is addressed with (s3s-fs accepts any).
pub const S3_REGION: &str = "us-east-1";

/// Where an S3 service answers and with which credentials, as a client sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    /// `http://127.0.0.1:9000`.
    pub url: String,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for S3Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret key.
        f.debug_struct("S3Endpoint")
            .field("url", &self.url)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl S3Endpoint {
    /// The API's settings for photos in [`PHOTO_BUCKET`] on this server (docs/api.md).
    pub fn api_env(&self) -> Vec<(String, String)> {
        [
            ("GOODGO_S3_BUCKET", PHOTO_BUCKET),
            ("AWS_ENDPOINT_URL", &self.url),
            ("AWS_REGION", S3_REGION),
            ("AWS_ACCESS_KEY_ID", &self.access_key),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

/// The endpoint of an S3 service (MinIO's contract): its published port for 9000, and
/// `MINIO_ROOT_USER`/`MINIO_ROOT_PASSWORD` (the older `MINIO_ACCESS_KEY`/
/// `MINIO_SECRET_KEY`), else MinIO's defaults.
pub fn s3_endpoint(service: &Service) -> S3Endpoint {
    let env = |names: [&str; 2], default: &str| {
        names
            .iter()
            .find_map(|n| service.environment.get(*n).filter(|v| !v.is_empty()))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let (ip, port) = NativeRuntime::endpoint(service, S3_PORT);
    let host = crate::connect_host(Some(&ip));
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    S3Endpoint {
        url: format!("http://{host}:{port}"),
        access_key: env(["MINIO_ROOT_USER", "MINIO_ACCESS_KEY"], "minioadmin"),
        secret_key: env(["MINIO_ROOT_PASSWORD", "MINIO_SECRET_KEY"], "minioadmin"),
    }
}

impl NativeRuntime {
    pub(super) async fn start_s3(
        &self,
        service: &Service,
        dir: &Path,
        deadline: Instant,
    ) -> Result<(), StackError> {
        let program = self
            .s3s_fs
            .clone()
            .unwrap_or_else(|| PathBuf::from("s3s-fs"));
        let (ip, port) = Self::endpoint(service, S3_PORT);
        let bucket = dir.join("data").join(PHOTO_BUCKET);
        std::fs::create_dir_all(&bucket).map_err(StackError::io("creating", &bucket))?;
        let S3Endpoint {
            access_key,
            secret_key,
            ..
        } = s3_endpoint(service);
        let log = new_log(dir)?;
        let log2 = log
            .try_clone()
            .map_err(StackError::io("opening the log in", dir))?;
        let mut cmd = Command::new(program);
        cmd.args(["--host", &ip, "--port", &port.to_string()])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(dir.join("data"))
            // Refused requests (a wrong signature, an expired URL) for `goodgo logs`, not
            // whatever level the caller's RUST_LOG asks of the API.
            .env("RUST_LOG", "warn");
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(spawn("s3s-fs"))?;
        Self::write_pid(dir, child.id(), Kind::S3)?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(self.failed(service, &format!("exited ({status}) while starting")));
            }
            if probe::http_answers(&ip, port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failed(service, "did not answer HTTP in time"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn service(text: &str) -> Service {
        let p = goodgo_compose::load_str(text, Path::new("/p"), Path::new("c.yaml"), &|_| None)
            .unwrap();
        p.services["s3"].clone()
    }

    #[test]
    fn the_endpoint_follows_minio_s_contract() {
        let s = service(
            "services:\n  s3:\n    image: minio/minio\n    environment:\n      MINIO_ROOT_USER: u\n      MINIO_ROOT_PASSWORD: secret\n    ports: [\"127.0.0.1:19000:9000\", \"9001:9001\"]\n",
        );
        let e = s3_endpoint(&s);
        assert_eq!(e.url, "http://127.0.0.1:19000");
        assert_eq!(
            (e.access_key.as_str(), e.secret_key.as_str()),
            ("u", "secret")
        );
        assert!(!format!("{e:?}").contains("secret"));
        let env = e.api_env();
        assert!(env.contains(&("GOODGO_S3_BUCKET".into(), PHOTO_BUCKET.into())));
        assert!(env.contains(&("AWS_SECRET_ACCESS_KEY".into(), "secret".into())));
        // Nothing published, no credentials: MinIO's port and defaults; IPv6 bracketed.
        let bare = s3_endpoint(&service("services:\n  s3:\n    image: minio/minio\n"));
        assert_eq!(bare.url, "http://127.0.0.1:9000");
        assert_eq!(bare.access_key, "minioadmin");
        let v6 = s3_endpoint(&service(
            "services:\n  s3:\n    image: minio/minio\n    ports: [\"[::1]:9100:9000\"]\n",
        ));
        assert_eq!(v6.url, "http://[::1]:9100");
    }
}
