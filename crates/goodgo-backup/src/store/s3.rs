//! An S3 destination (`s3://bucket/prefix`), through object_store's S3 client: AWS or any
//! S3-compatible server (`AWS_ENDPOINT_URL`), credentials from the `AWS_*` variables (or the
//! instance's, container's or web identity's role).
//!
//! A backup's objects are `prefix/{id}/…`, uploaded as they are compressed (a file larger
//! than one part as a multipart upload); `prefix/{id}/manifest.json` is uploaded last, and
//! an id without it is not a backup. While it runs, a backup holds
//! `prefix/{id}/.partial.json`, naming the machine, its PID namespace and the process: the
//! next run on the same machine removes the objects of a backup whose process is gone
//! (`kill -9`), and any run removes those of a backup whose objects are all older than a
//! day. Multipart uploads cut short hold no object; S3 forgets them by the bucket's
//! lifecycle rule (`AbortIncompleteMultipartUpload`).
//!
//! All S3 requests run on a small runtime of their own, so the caller's runtime (whatever
//! its flavour, and even while its thread waits on the compression threads) never drives
//! them: async methods hand their work to it and await the result, and the readers and
//! writers the compression and checking threads use block on it.

use std::future::Future;
use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::runtime::{Handle, Runtime};

use crate::BackupError;
use crate::manifest::{self, MANIFEST};

/// The marker of a backup being written.
const PARTIAL: &str = ".partial.json";
/// A partial backup none of whose objects changed for this long is abandoned.
const STALE_SECS: i64 = 24 * 3600;
/// The smallest part of a multipart upload (S3's minimum is 5 MiB); a file that fits in
/// one is uploaded with one PUT.
pub const PART_MIN: usize = 8 << 20;
/// S3 allows 10,000 parts: parts grow with the file so that the largest fits.
const PARTS_MAX: u64 = 9_000;
/// Parts of one file in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

pub struct S3 {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    io: Io,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3({})", self.url(""))
    }
}

/// Where S3 settings come from: the `AWS_*` variables among `vars`.
pub fn open(
    bucket: &str,
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<S3, BackupError> {
    // reqwest is built with rustls and no provider: the workspace's is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
    let mut plain_http = false;
    for (key, value) in vars {
        if !key.starts_with("AWS_") {
            continue;
        }
        if key.starts_with("AWS_ENDPOINT") && value.starts_with("http://") {
            // A local server (MinIO, moto) named by an http:// URL: that is what was asked.
            plain_http = true;
        }
        if let Ok(config) = key.to_ascii_lowercase().parse() {
            builder = builder.with_config(config, value);
        }
    }
    let retry = RetryConfig {
        max_retries: 4,
        retry_timeout: std::time::Duration::from_secs(60),
        ..RetryConfig::default()
    };
    let store = builder
        .with_allow_http(plain_http)
        .with_retry(retry)
        .build()
        .map_err(|e| BackupError::Input(format!("s3://{bucket}: {e}")))?;
    Ok(S3 {
        store: Arc::new(store),
        bucket: bucket.to_string(),
        prefix: prefix.trim_matches('/').to_string(),
        io: Io::new()?,
    })
}

/// What `.partial.json` holds: who writes the backup.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Writer {
    /// The machine and PID namespace (`hostname`, boot id, `/proc/self/ns/pid`).
    host: String,
    pid: u32,
    started_at: String,
}

impl Writer {
    fn this_process() -> Writer {
        Writer {
            host: goodgo_db::scratch::this_host().unwrap_or_default(),
            pid: std::process::id(),
            started_at: manifest::format_time(time::OffsetDateTime::now_utc()),
        }
    }

    /// Whether the process is known to be gone: it ran here and no such process runs now.
    fn gone(&self) -> bool {
        goodgo_db::scratch::process_gone(&self.host, self.pid)
    }
}

/// `None` for an object that is not there.
fn found<T>(result: object_store::Result<T>) -> object_store::Result<Option<T>> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn remote(doing: &'static str, place: String) -> impl FnOnce(object_store::Error) -> BackupError {
    move |e| BackupError::Remote {
        doing,
        place,
        message: said_by_the_server(&e.to_string()),
    }
}

/// An S3 client's error as the server said it: the `Code` and `Message` of the XML error
/// document the client quotes (`NoSuchBucket: The specified bucket does not exist`), with
/// the HTTP status; else the client's message as it is.
fn said_by_the_server(message: &str) -> String {
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = message.find(&open)? + open.len();
        let len = message[start..].find(&format!("</{name}>"))?;
        Some(&message[start..start + len])
    };
    let status = message
        .split_once("status code: ")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map(|(status, _)| status.trim());
    match (element("Code"), element("Message"), status) {
        (Some(code), Some(said), Some(status)) => format!("{code}: {said} (HTTP {status})"),
        (Some(code), Some(said), None) => format!("{code}: {said}"),
        _ => message.to_string(),
    }
}

impl S3 {
    /// `s3://bucket/prefix/{rest}`.
    pub fn url(&self, rest: &str) -> String {
        let mut url = format!("s3://{}", self.bucket);
        for part in [self.prefix.as_str(), rest] {
            if !part.is_empty() {
                url.push('/');
                url.push_str(part);
            }
        }
        url
    }

    /// The object key of `rest` (`{id}/{path}`) under the prefix.
    fn key(&self, rest: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rest)
        } else {
            Key::from(format!("{}/{rest}", self.prefix))
        }
    }

    /// The ids under the prefix that hold objects.
    pub async fn ids(&self) -> Result<Vec<String>, BackupError> {
        let store = self.store.clone();
        let prefix = (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()));
        let listed = self
            .io
            .run(async move { store.list_with_delimiter(prefix.as_ref()).await })
            .await?
            .map_err(remote("listing", self.url("")))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .filter(|name| !name.starts_with('.'))
            .collect())
    }

    /// Runs `request` on the S3 runtime with the store and the key of `{id}/{name}`; a
    /// failure is described as `doing` that object.
    async fn on<T, F>(
        &self,
        doing: &'static str,
        id: &str,
        name: &str,
        request: impl FnOnce(Arc<dyn ObjectStore>, Key) -> F,
    ) -> Result<T, BackupError>
    where
        T: Send + 'static,
        F: Future<Output = object_store::Result<T>> + Send + 'static,
    {
        let rest = format!("{id}/{name}");
        let work = request(self.store.clone(), self.key(&rest));
        self.io
            .run(work)
            .await?
            .map_err(remote(doing, self.url(&rest)))
    }

    /// Reads `{id}/{name}`; `None` when there is no such object.
    pub async fn read(&self, id: &str, name: &str) -> Result<Option<Vec<u8>>, BackupError> {
        self.on("reading", id, name, |store, key| async move {
            match found(store.get(&key).await)? {
                Some(got) => Ok(Some(got.bytes().await?.to_vec())),
                None => Ok(None),
            }
        })
        .await
    }

    /// Whether `{id}/{name}` exists (a HEAD request).
    async fn has(&self, id: &str, name: &str) -> Result<bool, BackupError> {
        self.on("reading", id, name, |store, key| async move {
            Ok(found(store.head(&key).await)?.is_some())
        })
        .await
    }

    /// Writes `{id}/{name}` with one PUT (which S3 makes visible whole or not at all).
    pub async fn write(&self, id: &str, name: &str, bytes: Vec<u8>) -> Result<(), BackupError> {
        self.on("uploading", id, name, |store, key| async move {
            store.put(&key, PutPayload::from(bytes)).await.map(drop)
        })
        .await
    }

    /// Deletes `{id}/{name}`, if it is there.
    async fn remove(&self, id: &str, name: &str) -> Result<(), BackupError> {
        self.on("deleting", id, name, |store, key| async move {
            found(store.delete(&key).await).map(drop)
        })
        .await
    }

    /// Every object of `{id}/`, and the newest modification time among them (Unix time).
    async fn objects(&self, id: &str) -> Result<(Vec<Key>, i64), BackupError> {
        let store = self.store.clone();
        let prefix = self.key(id);
        let metas: Vec<object_store::ObjectMeta> = self
            .io
            .run(async move { store.list(Some(&prefix)).try_collect().await })
            .await?
            .map_err(remote("listing", self.url(id)))?;
        let newest = metas
            .iter()
            .map(|m| m.last_modified.timestamp())
            .max()
            .unwrap_or(0);
        Ok((metas.into_iter().map(|m| m.location).collect(), newest))
    }

    /// Whether `{id}/` holds any object.
    pub async fn exists(&self, id: &str) -> Result<bool, BackupError> {
        Ok(!self.objects(id).await?.0.is_empty())
    }

    /// Deletes every object of `{id}/`, the manifest first.
    pub async fn delete(&self, id: &str) -> Result<(), BackupError> {
        self.remove(id, MANIFEST).await?;
        let (keys, _) = self.objects(id).await?;
        let store = self.store.clone();
        self.io
            .run(async move {
                let keys = futures_util::stream::iter(keys.into_iter().map(Ok)).boxed();
                store.delete_stream(keys).try_collect::<Vec<_>>().await
            })
            .await?
            .map(drop)
            .map_err(remote("deleting", self.url(id)))
    }

    /// Marks `{id}/` as being written by this process.
    pub async fn start(&self, id: &str) -> Result<(), BackupError> {
        let text = serde_json::to_vec_pretty(&Writer::this_process()).unwrap_or_default();
        self.write(id, PARTIAL, text).await
    }

    /// Removes the marker of a finished backup (its manifest uploaded). A marker left
    /// behind in a complete backup does no harm.
    pub async fn finish(&self, id: &str) {
        let _ = self.remove(id, PARTIAL).await;
    }

    /// Removes the objects of the backups without a manifest whose writer is gone (same
    /// machine) or that nobody touched for a day; returns their ids.
    pub async fn clean_partials(&self) -> Result<Vec<String>, BackupError> {
        let mut removed = Vec::new();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        for id in self.ids().await? {
            if self.has(&id, MANIFEST).await? {
                continue;
            }
            let writer: Option<Writer> = self
                .read(&id, PARTIAL)
                .await?
                .and_then(|b| serde_json::from_slice(&b).ok());
            let gone = writer.as_ref().is_some_and(Writer::gone);
            if gone || now - self.objects(&id).await?.1 > STALE_SECS {
                self.delete(&id).await?;
                removed.push(id);
            }
        }
        Ok(removed)
    }

    /// A reader of `{id}/{path}`, for a checking thread (never async code).
    pub fn reader(&self, id: &str, path: &str) -> Result<Box<dyn Read + Send>, BackupError> {
        let rest = format!("{id}/{path}");
        let key = self.key(&rest);
        let got = self.io.block_on(self.store.get(&key));
        match got {
            Ok(got) => Ok(Box::new(ObjectReader {
                handle: self.io.handle().clone(),
                stream: got.into_stream(),
                chunk: Bytes::new(),
            })),
            Err(object_store::Error::NotFound { .. }) => Err(BackupError::Corrupt {
                path: self.url(&rest).into(),
                problem: "missing: the manifest lists it".into(),
            }),
            Err(e) => Err(remote("reading", self.url(&rest))(e)),
        }
    }

    /// A writer of `{id}/{path}`, for a compression thread (never async code): one PUT when
    /// it fits in a part, else a multipart upload with parts sized for `size_hint` bytes.
    pub fn writer(&self, id: &str, path: &str, size_hint: u64) -> ObjectWriter {
        let part = usize::try_from(size_hint.div_ceil(PARTS_MAX))
            .unwrap_or(usize::MAX)
            .max(PART_MIN);
        let key = self.key(&format!("{id}/{path}"));
        ObjectWriter {
            handle: self.io.handle().clone(),
            writer: Some(
                BufWriter::with_capacity(self.store.clone(), key, part)
                    .with_max_concurrency(PARTS_IN_FLIGHT),
            ),
        }
    }
}

/// The body of an object, read by blocking on the S3 runtime.
struct ObjectReader {
    handle: Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(next) => self.chunk = next.map_err(io::Error::other)?,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// An object being uploaded: nothing is visible until [`ObjectWriter::finish`]; dropped
/// before that, a multipart upload is aborted.
pub struct ObjectWriter {
    handle: Handle,
    writer: Option<BufWriter>,
}

impl ObjectWriter {
    pub fn finish(mut self) -> io::Result<()> {
        match self.writer.take() {
            Some(mut w) => self.handle.block_on(w.shutdown()),
            None => Ok(()),
        }
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(w) = self.writer.as_mut() else {
            return Err(io::Error::other("the upload is finished"));
        };
        self.handle
            .block_on(w.put(Bytes::copy_from_slice(buf)))
            .map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Some(mut w) = self.writer.take() {
            let _ = self.handle.block_on(w.abort());
        }
    }
}

/// The runtime S3 requests run on.
struct Io {
    handle: Handle,
    runtime: Option<Runtime>,
}

impl Io {
    fn new() -> Result<Io, BackupError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("goodgo-s3")
            .enable_all()
            .build()
            .map_err(|e| BackupError::io("starting the S3 runtime for", "s3://", e))?;
        Ok(Io {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `work` on the S3 runtime; callable from any async code.
    async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BackupError> {
        self.handle()
            .spawn(work)
            .await
            .map_err(|e| BackupError::Remote {
                doing: "running",
                place: "an S3 request".into(),
                message: e.to_string(),
            })
    }

    /// Blocks on `work`: only from a thread that runs no async code.
    fn block_on<F: Future>(&self, work: F) -> F::Output {
        self.handle().block_on(work)
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // Dropped from async code too: do not wait for the runtime's threads.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_error_document_is_told_by_its_code_and_message() {
        let client = "Generic S3 error: Error performing list request: Error performing GET http://127.0.0.1:5055/bk?list-type=2 in 3.6ms - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>bk</BucketName><RequestId>IKa</RequestId></Error>";
        assert_eq!(
            said_by_the_server(client),
            "NoSuchBucket: The specified bucket does not exist (HTTP 404 Not Found)"
        );
        // Anything else stays as the client said it.
        let timeout = "Generic S3 error: Error performing request: operation timed out";
        assert_eq!(said_by_the_server(timeout), timeout);
    }

    #[test]
    fn a_writer_is_gone_only_when_it_ran_here_and_its_process_has_ended() {
        let alive = Writer::this_process();
        assert!(!alive.gone(), "this process runs");
        // Above Linux's largest pid_max: no such process can exist. (No child is spawned
        // here: a fork would hold other tests' flock descriptors for a moment.)
        let pid = i32::MAX as u32;
        let ended = Writer {
            pid,
            ..Writer::this_process()
        };
        assert!(ended.gone(), "pid {pid} does not run");
        let elsewhere = Writer {
            host: "another-machine boot pid:[1]".into(),
            ..ended
        };
        assert!(
            !elsewhere.gone(),
            "a process elsewhere is not known to be gone"
        );
    }
}
