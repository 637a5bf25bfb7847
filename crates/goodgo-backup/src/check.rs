//! `backup verify` and `backup restore`: every file checked against the manifest before
//! any database is touched; a restore proven by counting and hashing every table.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use goodgo_db::admin::{Scratch, Target};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::create::{DUMP_DIR, copy_hashed};
use crate::manifest::{self, FileEntry, MANIFEST, Manifest, Verified};
use crate::{BackupError, Event, Tools, run_tool, stats, store};

/// Reads the manifest of the backup in `dir` and checks every file it lists (size and
/// SHA-256), on `jobs` threads. The first bad file is the error, naming it.
pub fn verify_files(
    dir: &Path,
    jobs: usize,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Manifest, BackupError> {
    check_files(dir, jobs, on_event, |entry, path| {
        check_stream(entry, path, open(path)?, std::io::sink())
    })
}

/// Checks every file of the backup in `dir` and writes the dump, decompressed, into
/// `into` (a folder pg_restore reads). Nothing is returned until every file is checked.
pub fn materialize(
    dir: &Path,
    into: &Path,
    jobs: usize,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Manifest, BackupError> {
    check_files(dir, jobs, on_event, |entry, path| {
        let rel = entry
            .path
            .strip_prefix(&format!("{DUMP_DIR}/"))
            .unwrap_or(&entry.path);
        let file = open(path)?;
        if let Some(plain) = rel.strip_suffix(".zst") {
            let out_path = into.join(plain);
            let out = create(&out_path)?;
            let mut tee = Tee::new(file);
            {
                let mut decoder = zstd::stream::Decoder::new(&mut tee)
                    .map_err(|e| BackupError::io("decompressing", path, e))?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
                std::io::copy(&mut decoder, &mut out).map_err(|e| corrupt_or_io(entry, path, e))?;
                out.flush()
                    .map_err(|e| BackupError::io("writing", &out_path, e))?;
            }
            // What the decoder left unread (trailing bytes) still counts.
            std::io::copy(&mut tee, &mut std::io::sink())
                .map_err(|e| BackupError::io("reading", path, e))?;
            compare(
                entry,
                path,
                tee.size,
                &manifest::hex(&tee.hasher.finalize()),
            )
        } else {
            let out_path = into.join(rel);
            check_stream(entry, path, file, create(&out_path)?)
        }
    })
}

fn open(path: &Path) -> Result<File, BackupError> {
    File::open(path).map_err(|e| {
        BackupError::read_failed(path, e, |path| BackupError::Corrupt {
            path,
            problem: "missing: the manifest lists it".into(),
        })
    })
}

fn create(path: &Path) -> Result<File, BackupError> {
    File::create(path).map_err(|e| BackupError::io("creating", path, e))
}

/// A decompression error is a corrupt file when the bytes do not match the manifest; the
/// checksum decides which, so the hint is right.
fn corrupt_or_io(entry: &FileEntry, path: &Path, e: std::io::Error) -> BackupError {
    let _ = entry;
    BackupError::Corrupt {
        path: path.to_path_buf(),
        problem: format!("cannot be decompressed ({e}): its bytes differ from the backup's"),
    }
}

/// Copies `file` (at `path`) into `out`, then compares its size and SHA-256 with `entry`.
fn check_stream(
    entry: &FileEntry,
    path: &Path,
    file: File,
    out: impl Write,
) -> Result<(), BackupError> {
    let (size, sha256) = copy_hashed(file, path, out)?;
    compare(entry, path, size, &sha256)
}

fn compare(entry: &FileEntry, path: &Path, size: u64, sha256: &str) -> Result<(), BackupError> {
    if size != entry.size {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            problem: format!("{size} bytes, the manifest records {}", entry.size),
        });
    }
    if sha256 != entry.sha256 {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            problem: format!("SHA-256 {sha256}, the manifest records {}", entry.sha256),
        });
    }
    Ok(())
}

/// Reads the manifest of the backup in `dir` and runs `check` on every file it lists,
/// largest first, on `jobs` threads; the first error (in manifest order) wins.
fn check_files(
    dir: &Path,
    jobs: usize,
    on_event: &(dyn Fn(Event) + Sync),
    check: impl Fn(&FileEntry, &Path) -> Result<(), BackupError> + Sync,
) -> Result<Manifest, BackupError> {
    let manifest = Manifest::read(&dir.join(MANIFEST))?;
    for entry in &manifest.files {
        // A path leaving the backup's folder is not one goodgo wrote.
        if entry
            .path
            .split('/')
            .any(|part| part == ".." || part.is_empty())
        {
            return Err(BackupError::Manifest {
                path: dir.join(MANIFEST),
                message: format!("file path {:?} leaves the backup", entry.path),
            });
        }
    }
    let mut work: Vec<&FileEntry> = manifest.files.iter().collect();
    work.sort_by_key(|e| e.size);
    on_event(Event::Bytes {
        total: manifest.size(),
    });
    let queue = Mutex::new(work);
    let errors: Mutex<Vec<(String, BackupError)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                    let Some(entry) = next else { break };
                    let path: PathBuf = dir.join(&entry.path);
                    if let Err(e) = check(entry, &path) {
                        if let Ok(mut errs) = errors.lock() {
                            errs.push((entry.path.clone(), e));
                        }
                        break;
                    }
                    on_event(Event::Advance(entry.size));
                }
            });
        }
    });
    let mut errors = errors.into_inner().unwrap_or_default();
    errors.sort_by(|a, b| a.0.cmp(&b.0));
    match errors.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(manifest),
    }
}

/// Restores the backup in `dir` into the existing, empty database `target`: every file
/// checked and decompressed into a scratch folder first, then `pg_restore --jobs`, then
/// every table counted and hashed against the manifest.
pub async fn restore(
    dir: &Path,
    target: &Target,
    tools: &Tools,
    jobs: usize,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Manifest, BackupError> {
    let scratch = tempfile::Builder::new()
        .prefix(".goodgo-restore-")
        .tempdir()
        .map_err(|e| BackupError::io("creating a folder in", std::env::temp_dir(), e))?;
    let manifest = materialize(dir, scratch.path(), jobs, on_event)?;
    restore_checked(scratch.path(), &manifest, target, tools, jobs, on_event).await?;
    Ok(manifest)
}

/// Restores a checked, decompressed dump (see [`materialize`]) into the existing, empty
/// database `target` with `pg_restore --jobs`, then compares every table with the manifest.
pub async fn restore_checked(
    dump: &Path,
    manifest: &Manifest,
    target: &Target,
    tools: &Tools,
    jobs: usize,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), BackupError> {
    on_event(Event::Restoring);
    let mut command = target.libpq_command(&tools.pg_restore);
    command
        .arg(format!("--jobs={}", jobs.max(1)))
        .arg("--exit-on-error")
        .arg(dump);
    tokio::task::spawn_blocking(move || run_tool(command, "pg_restore"))
        .await
        .map_err(|e| BackupError::Tool {
            program: "pg_restore".into(),
            message: e.to_string(),
        })??;
    on_event(Event::Hashing);
    let client = target.connect().await?;
    let found = stats::tables(&client).await?;
    stats::compare(&manifest.tables, &found)
}

/// `verify --restore`: restores into a scratch database on `server`'s server (dropped
/// afterwards, whatever happens), and records the verification in `verified.json`.
pub async fn verify_by_restore(
    dir: &Path,
    server: &Target,
    tools: &Tools,
    jobs: usize,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(Manifest, Verified), BackupError> {
    let started = Instant::now();
    let folder = tempfile::Builder::new()
        .prefix(".goodgo-verify-")
        .tempdir()
        .map_err(|e| BackupError::io("creating a folder in", std::env::temp_dir(), e))?;
    let manifest = materialize(dir, folder.path(), jobs, on_event)?;
    let scratch = Scratch::create(server, "goodgo_verify", None).await?;
    let restored = restore_checked(
        folder.path(),
        &manifest,
        &scratch.target,
        tools,
        jobs,
        on_event,
    )
    .await;
    let dropped = scratch.remove().await;
    restored?;
    dropped?;
    let verified = record(dir, true, started)?;
    Ok((manifest, verified))
}

/// Writes `verified.json` for the backup in `dir`.
pub fn record(dir: &Path, restored: bool, started: Instant) -> Result<Verified, BackupError> {
    let verified = Verified {
        verified_at: manifest::format_time(OffsetDateTime::now_utc()),
        restored,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    store::write_verified(dir, &verified)?;
    Ok(verified)
}

/// Reads through to the inner reader, counting and hashing the bytes.
struct Tee<R> {
    inner: BufReader<R>,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Tee<R> {
    fn new(inner: R) -> Self {
        Tee {
            inner: BufReader::with_capacity(1 << 20, inner),
            hasher: Sha256::new(),
            size: 0,
        }
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}
