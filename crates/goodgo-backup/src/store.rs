//! Where backups live: a local folder ([`local`]) or an S3 bucket and prefix ([`s3`]),
//! behind one [`Store`], so creating, listing, checking, restoring and pruning are the same
//! code for both.
//!
//! A destination holds one folder (or key prefix) per backup, named by its id; a backup
//! exists once its `manifest.json` does, and that is written last. What differs is how the
//! last step is made atomic and how an interrupted run is cleaned up: a local backup is
//! written under `.partial-{id}/` (locked) and renamed into place; an S3 one is uploaded
//! under `{id}/` with the manifest last, and marked as running meanwhile.

pub mod local;
pub mod s3;

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures_util::stream::{self, StreamExt};

use crate::BackupError;
use crate::manifest::{MANIFEST, Manifest, VERIFIED, Verified};

/// A destination, as given by `--to` or `backup.to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    /// `s3://bucket/prefix`: the prefix has no leading or trailing `/` and may be empty.
    S3 {
        bucket: String,
        prefix: String,
    },
}

impl Location {
    /// `s3://bucket[/prefix]`, or a folder (made absolute by `resolve`). Other URLs are
    /// refused rather than taken for a folder named `http:`.
    pub fn parse(
        text: &str,
        resolve: impl FnOnce(&Path) -> PathBuf,
    ) -> Result<Location, BackupError> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BackupError::Input(format!(
                    "`{text}`: an S3 destination is s3://BUCKET or s3://BUCKET/PREFIX"
                )));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some((scheme, _)) = text.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
        {
            return Err(BackupError::Input(format!(
                "`{text}`: goodgo keeps backups in a folder or on S3 (s3://BUCKET/PREFIX), not at a {scheme}:// URL"
            )));
        }
        Ok(Location::Local(resolve(Path::new(text))))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(dir) => write!(f, "{}", dir.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// An open destination.
#[derive(Debug)]
pub struct Store {
    location: Location,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Local(PathBuf),
    S3(s3::S3),
}

/// A backup found at a destination.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Where it is: its folder, or its `s3://` URL.
    pub place: String,
    pub manifest: Manifest,
    pub verified: Option<Verified>,
}

impl Store {
    /// Opens `location`; S3 settings come from the process's `AWS_*` variables.
    pub fn open(location: Location) -> Result<Store, BackupError> {
        Store::open_with(location, std::env::vars())
    }

    /// Opens `location`; S3 settings come from the `AWS_*` variables among `vars`.
    pub fn open_with(
        location: Location,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Store, BackupError> {
        let backend = match &location {
            Location::Local(dir) => Backend::Local(dir.clone()),
            Location::S3 { bucket, prefix } => Backend::S3(s3::open(bucket, prefix, vars)?),
        };
        Ok(Store { location, backend })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Where backup `id` is (or would be): its folder, or its `s3://` URL.
    pub fn place(&self, id: &str) -> String {
        self.file_place(id, "")
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string()
    }

    /// Where file `path` of backup `id` is, for messages.
    pub fn file_place(&self, id: &str, path: &str) -> PathBuf {
        match &self.backend {
            Backend::Local(dir) => dir.join(id).join(path),
            Backend::S3(s3) => s3.url(&format!("{id}/{path}")).into(),
        }
    }

    fn not_found(&self, id: &str) -> BackupError {
        BackupError::NotFound {
            id: id.to_string(),
            dest: self.location.to_string().into(),
        }
    }

    async fn read(&self, id: &str, name: &str) -> Result<Option<Vec<u8>>, BackupError> {
        match &self.backend {
            Backend::Local(dir) => local::read(&dir.join(id), name),
            Backend::S3(s3) => s3.read(id, name).await,
        }
    }

    /// The manifest of backup `id`; a missing or unreadable one is the error.
    pub async fn manifest(&self, id: &str) -> Result<Manifest, BackupError> {
        let path = self.file_place(id, MANIFEST);
        match self.read(id, MANIFEST).await? {
            Some(bytes) => Manifest::parse(&path, &bytes),
            None => Err(BackupError::Manifest {
                path,
                message: "the file is missing".into(),
            }),
        }
    }

    /// The last successful verification of backup `id`, if any.
    pub async fn verified(&self, id: &str) -> Option<Verified> {
        let bytes = self.read(id, VERIFIED).await.ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    pub async fn write_verified(&self, id: &str, verified: &Verified) -> Result<(), BackupError> {
        let text = serde_json::to_vec_pretty(verified).unwrap_or_default();
        match &self.backend {
            Backend::Local(dir) => local::write(&dir.join(id), VERIFIED, &text),
            Backend::S3(s3) => s3.write(id, VERIFIED, text).await,
        }
    }

    /// Every complete backup, newest first. A folder (or prefix) whose manifest is missing,
    /// unreadable or names another id is not a backup and is skipped (`verify` on it names
    /// the problem).
    pub async fn list(&self) -> Result<Vec<Listed>, BackupError> {
        let ids = match &self.backend {
            Backend::Local(dir) => local::ids(dir)?,
            Backend::S3(s3) => s3.ids().await?,
        };
        let found: Vec<Option<Listed>> = stream::iter(ids)
            .map(|id| async move {
                let manifest = self.manifest(&id).await.ok()?;
                if manifest.id != id {
                    return None;
                }
                Some(Listed {
                    place: self.place(&id),
                    verified: self.verified(&id).await,
                    manifest,
                })
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let mut found: Vec<Listed> = found.into_iter().flatten().collect();
        // Newest first by start time (to the millisecond): two backups started in the same
        // second have ids that differ only by their random part.
        found.sort_by(|a, b| {
            (b.manifest.started(), &b.manifest.id).cmp(&(a.manifest.started(), &a.manifest.id))
        });
        Ok(found)
    }

    /// The id of backup `id` (or of the newest one), checked to exist, without reading its
    /// manifest.
    pub async fn locate(&self, id: Option<&str>) -> Result<String, BackupError> {
        let Some(id) = id else {
            return self
                .list()
                .await?
                .into_iter()
                .next()
                .map(|l| l.manifest.id)
                .ok_or_else(|| self.not_found("(newest)"));
        };
        if id.is_empty() || id.starts_with('.') || id.contains('/') || id.contains('\\') {
            return Err(self.not_found(id));
        }
        let exists = match &self.backend {
            Backend::Local(dir) => dir.join(id).is_dir(),
            Backend::S3(s3) => s3.exists(id).await?,
        };
        if exists {
            Ok(id.to_string())
        } else {
            Err(self.not_found(id))
        }
    }

    /// Deletes backup `id`: its manifest first, so an interrupted delete leaves something
    /// that is no longer listed.
    pub async fn delete(&self, id: &str) -> Result<(), BackupError> {
        match &self.backend {
            Backend::Local(dir) => local::delete(&dir.join(id)),
            Backend::S3(s3) => s3.delete(id).await,
        }
    }

    /// Removes what interrupted runs left; returns what was removed.
    pub async fn clean_partials(&self) -> Result<Vec<String>, BackupError> {
        match &self.backend {
            Backend::Local(dir) => local::clean_partials(dir),
            Backend::S3(s3) => {
                let mut removed = local::clean_partials(&staging_root())?;
                removed.extend(s3.clean_partials().await?);
                Ok(removed)
            }
        }
    }

    /// A reader of file `path` of backup `id`; called from checking threads only.
    pub(crate) fn reader(&self, id: &str, path: &str) -> Result<Box<dyn Read + Send>, BackupError> {
        match &self.backend {
            Backend::Local(dir) => {
                let file = dir.join(id).join(path);
                std::fs::File::open(&file)
                    .map(|f| Box::new(f) as Box<dyn Read + Send>)
                    .map_err(|e| {
                        BackupError::read_failed(&file, e, |path| BackupError::Corrupt {
                            path,
                            problem: "missing: the manifest lists it".into(),
                        })
                    })
            }
            Backend::S3(s3) => s3.reader(id, path),
        }
    }

    /// Starts backup `id`: a folder for pg_dump to write in, and what marks it as running.
    pub async fn start(&self, id: &str) -> Result<Partial<'_>, BackupError> {
        let kind = match &self.backend {
            Backend::Local(dir) => PartialKind::Local(local::start(dir, id)?),
            Backend::S3(s3) => {
                let staging = local::start(&staging_root(), id)?;
                if let Err(e) = s3.start(id).await {
                    staging.abandon();
                    return Err(e);
                }
                PartialKind::S3 { s3, staging }
            }
        };
        Ok(Partial {
            store: self,
            id: id.to_string(),
            kind,
        })
    }
}

/// Where pg_dump writes a backup bound for S3: `$TMPDIR/goodgo-backup-staging/`, one
/// locked `.partial-{id}/` folder per backup (room for the uncompressed dump is needed).
fn staging_root() -> PathBuf {
    std::env::temp_dir().join("goodgo-backup-staging")
}

/// A backup being written.
#[derive(Debug)]
pub struct Partial<'a> {
    store: &'a Store,
    pub id: String,
    kind: PartialKind<'a>,
}

#[derive(Debug)]
enum PartialKind<'a> {
    /// `.partial-{id}/` at the destination: pg_dump writes there and files are compressed in
    /// place.
    Local(local::Partial),
    /// pg_dump writes into a local staging folder (locked like a local partial backup, so
    /// the next run removes one a killed run left); files are uploaded as they are packed.
    S3 {
        s3: &'a s3::S3,
        staging: local::Partial,
    },
}

/// Where one packed file goes.
pub(crate) enum Sink {
    File(std::io::BufWriter<std::fs::File>),
    Object(Box<s3::ObjectWriter>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Object(o) => o.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Object(o) => o.flush(),
        }
    }
}

impl Sink {
    /// Makes the file complete (flushed, or uploaded).
    pub(crate) fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.into_inner().map_err(|e| e.into_error()).map(drop),
            Sink::Object(o) => o.finish(),
        }
    }
}

impl Partial<'_> {
    /// The folder pg_dump writes into (its `dump/` folder is made there).
    pub fn staging(&self) -> &Path {
        match &self.kind {
            PartialKind::Local(p) => &p.dir,
            PartialKind::S3 { staging, .. } => &staging.dir,
        }
    }

    /// Where file `path` of this backup will be, for messages.
    pub(crate) fn file_place(&self, path: &str) -> PathBuf {
        match &self.kind {
            PartialKind::Local(p) => p.dir.join(path),
            PartialKind::S3 { .. } => self.store.file_place(&self.id, path),
        }
    }

    /// Whether file `path`, as pg_dump wrote it in the staging folder, is already stored.
    pub(crate) fn stored_in_place(&self) -> bool {
        matches!(self.kind, PartialKind::Local(_))
    }

    /// A sink for file `path` of the backup, about `size_hint` bytes; called from packing
    /// threads only.
    pub(crate) fn sink(&self, path: &str, size_hint: u64) -> Result<Sink, BackupError> {
        match &self.kind {
            PartialKind::Local(p) => {
                let file = p.dir.join(path);
                std::fs::File::create(&file)
                    .map(|f| Sink::File(std::io::BufWriter::with_capacity(1 << 20, f)))
                    .map_err(|e| BackupError::io("creating", &file, e))
            }
            PartialKind::S3 { s3, .. } => {
                Ok(Sink::Object(Box::new(s3.writer(&self.id, path, size_hint))))
            }
        }
    }

    /// Stores the manifest, last, and makes the backup complete; returns where it is.
    pub async fn finish(self, manifest: &Manifest) -> Result<String, BackupError> {
        let bytes = manifest.to_bytes();
        match self.kind {
            PartialKind::Local(p) => {
                local::write(&p.dir, MANIFEST, &bytes)?;
                Ok(p.finish()?.to_string_lossy().into_owned())
            }
            PartialKind::S3 { s3, staging } => {
                staging.abandon();
                s3.write(&self.id, MANIFEST, bytes).await?;
                s3.finish(&self.id).await;
                Ok(self.store.place(&self.id))
            }
        }
    }

    /// Removes what was written (a failed run).
    pub async fn abandon(self) {
        match self.kind {
            PartialKind::Local(p) => p.abandon(),
            PartialKind::S3 { s3, staging } => {
                staging.abandon();
                let _ = s3.delete(&self.id).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_folders_or_s3_urls() {
        let at = |p: &Path| Path::new("/ws").join(p);
        assert_eq!(
            Location::parse("backups", at).expect("folder"),
            Location::Local("/ws/backups".into())
        );
        let s3 = Location::parse("s3://bucket/team/db/", at).expect("s3");
        assert_eq!(
            s3,
            Location::S3 {
                bucket: "bucket".into(),
                prefix: "team/db".into()
            }
        );
        assert_eq!(s3.to_string(), "s3://bucket/team/db");
        assert_eq!(
            Location::parse("s3://bucket", at).expect("s3").to_string(),
            "s3://bucket"
        );
        for bad in ["s3://", "s3:///x", "gs://bucket/x", "https://host/x"] {
            let err = Location::parse(bad, at).expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
