//! `backup create`: dump, compress, checksum, manifest last, rename into place.
//!
//! The dump and the table hashes see the same data: goodgo opens a repeatable-read
//! transaction, exports its snapshot, hands it to `pg_dump --snapshot`, and hashes every
//! table inside that transaction while pg_dump runs.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use goodgo_db::admin::Target;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::manifest::{self, FileEntry, MANIFEST, Manifest};
use crate::{BackupError, Event, Tools, pg, run_tool, stats, store};

/// The folder inside a backup that holds pg_dump's output.
pub const DUMP_DIR: &str = "dump";
/// zstd's level for data files: its default, far faster than pg_dump's gzip and smaller.
pub const ZSTD_LEVEL: i32 = 3;

/// What `create` needs besides the database.
#[derive(Debug, Clone)]
pub struct Options {
    pub dest: PathBuf,
    pub jobs: usize,
    pub git_commit: Option<String>,
}

/// A finished backup.
#[derive(Debug)]
pub struct Created {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Partial folders of interrupted runs that were removed first.
    pub cleaned: Vec<String>,
}

pub async fn create(
    db: &Target,
    tools: &Tools,
    options: &Options,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Created, BackupError> {
    let cleaned = store::clean_partials(&options.dest)?;
    let started = OffsetDateTime::now_utc();
    let id = manifest::new_id(started);
    let partial = store::start(&options.dest, &id)?;
    match dump(db, tools, options, started, &partial, on_event).await {
        Ok(manifest) => {
            let dir = partial.finish()?;
            Ok(Created {
                dir,
                manifest,
                cleaned,
            })
        }
        Err(e) => {
            partial.abandon();
            Err(e)
        }
    }
}

async fn dump(
    db: &Target,
    tools: &Tools,
    options: &Options,
    started: OffsetDateTime,
    partial: &store::Partial,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Manifest, BackupError> {
    let dir = partial.dir.as_path();
    let mut client = db.connect().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| pg("starting the backup's transaction".into(), e))?;
    let snapshot: String = tx
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(|e| pg("exporting a snapshot".into(), e))?
        .get(0);
    let server_version: String = tx
        .query_one("SHOW server_version", &[])
        .await
        .map_err(|e| pg("asking the server's version".into(), e))?
        .get(0);
    let migration_head = migration_head(&tx).await?;

    let dump_dir = dir.join(DUMP_DIR);
    let mut command = db.libpq_command(&tools.pg_dump);
    command
        .arg("--format=directory")
        .arg(format!("--jobs={}", options.jobs.max(1)))
        .arg("--compress=0")
        .arg(format!("--snapshot={snapshot}"))
        .arg("--no-sync")
        .arg("--file")
        .arg(&dump_dir);
    let pg_dump = tokio::task::spawn_blocking(move || run_tool(command, "pg_dump"));
    let tables = stats::tables(&tx).await;
    if let Ok(t) = &tables {
        on_event(Event::Dumping { tables: t.len() });
    }
    let dumped = pg_dump.await.map_err(|e| BackupError::Tool {
        program: "pg_dump".into(),
        message: e.to_string(),
    })?;
    // The snapshot must stay open until pg_dump's workers have taken it: end it only now.
    tx.commit()
        .await
        .map_err(|e| pg("ending the backup's transaction".into(), e))?;
    dumped?;
    let tables = tables?;
    let pg_dump_version = tool_version(&tools.pg_dump);

    let files = pack(dir, &dump_dir, options.jobs.max(1), on_event)?;
    let manifest = Manifest {
        format: "goodgo-backup".into(),
        format_version: manifest::FORMAT_VERSION,
        id: partial.id.clone(),
        database: db.dbname(),
        server_version,
        pg_dump_version,
        git_commit: options.git_commit.clone(),
        migration_head,
        started_at: manifest::format_time(started),
        finished_at: manifest::format_time(OffsetDateTime::now_utc()),
        compression: "zstd".into(),
        files,
        tables,
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

async fn migration_head(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Option<String>, BackupError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| pg("looking for the migration history".into(), e))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT 'V' || version || '__' || name FROM refinery_schema_history ORDER BY version DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(|e| pg("reading the migration history".into(), e))?;
    Ok(row.map(|r| r.get(0)))
}

fn tool_version(program: &Path) -> String {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Compresses every data file of `dump_dir` (`*.dat` → `*.dat.zst`, the original removed)
/// and checksums every file, on `jobs` threads; returns the entries, sorted by path.
fn pack(
    dir: &Path,
    dump_dir: &Path,
    jobs: usize,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Vec<FileEntry>, BackupError> {
    let mut work: Vec<(PathBuf, u64)> = Vec::new();
    let entries =
        std::fs::read_dir(dump_dir).map_err(|e| BackupError::io("reading", dump_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BackupError::io("reading", dump_dir, e))?;
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        work.push((entry.path(), size));
    }
    // Largest first, so one big table does not start last.
    work.sort_by_key(|w| std::cmp::Reverse(w.1));
    on_event(Event::Bytes {
        total: work.iter().map(|w| w.1).sum(),
    });
    let queue = Mutex::new(work);
    let results: Mutex<Vec<Result<FileEntry, BackupError>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                    let Some((path, size)) = next else { break };
                    let done = pack_one(dir, &path);
                    on_event(Event::Advance(size));
                    let failed = done.is_err();
                    if let Ok(mut r) = results.lock() {
                        r.push(done);
                    }
                    if failed {
                        break;
                    }
                }
            });
        }
    });
    let mut files = Vec::new();
    for r in results.into_inner().unwrap_or_default() {
        files.push(r?);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// One file: a data file is compressed (the hash is of the compressed bytes), any other
/// file (pg_dump's `toc.dat`, `blobs.toc`) is only checksummed.
fn pack_one(dir: &Path, path: &Path) -> Result<FileEntry, BackupError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stored = if name.ends_with(".dat") && name != "toc.dat" {
        let out_path = path.with_file_name(format!("{name}.zst"));
        let input = File::open(path).map_err(|e| BackupError::io("reading", path, e))?;
        let out = File::create(&out_path).map_err(|e| BackupError::io("creating", &out_path, e))?;
        let writer = HashingWriter::new(out);
        let mut encoder = zstd::stream::Encoder::new(writer, ZSTD_LEVEL)
            .map_err(|e| BackupError::io("compressing", path, e))?;
        std::io::copy(&mut BufReader::with_capacity(1 << 20, input), &mut encoder)
            .map_err(|e| BackupError::io("compressing", path, e))?;
        let writer = encoder
            .finish()
            .map_err(|e| BackupError::io("compressing", path, e))?;
        std::fs::remove_file(path).map_err(|e| BackupError::io("removing", path, e))?;
        let (size, sha256) = writer
            .finish()
            .map_err(|e| BackupError::io("writing", &out_path, e))?;
        return Ok(FileEntry {
            path: relative(dir, &out_path),
            size,
            sha256,
        });
    } else {
        path.to_path_buf()
    };
    let (size, sha256) = hash_file(&stored)?;
    Ok(FileEntry {
        path: relative(dir, &stored),
        size,
        sha256,
    })
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Size and SHA-256 of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let file = File::open(path).map_err(|e| BackupError::io("reading", path, e))?;
    copy_hashed(file, path, std::io::sink())
}

/// Copies `from` (the file at `path`, for messages) into `out`; its size and SHA-256.
pub(crate) fn copy_hashed(
    mut from: impl Read,
    path: &Path,
    mut out: impl Write,
) -> Result<(u64, String), BackupError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = from
            .read(&mut buf)
            .map_err(|e| BackupError::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| BackupError::io("writing a copy of", path, e))?;
        size += n as u64;
    }
    Ok((size, manifest::hex(&hasher.finalize())))
}

/// Writes through to a file, counting and hashing the bytes.
struct HashingWriter {
    inner: std::io::BufWriter<File>,
    hasher: Sha256,
    size: u64,
}

impl HashingWriter {
    fn new(file: File) -> Self {
        HashingWriter {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(mut self) -> std::io::Result<(u64, String)> {
        self.inner.flush()?;
        Ok((self.size, manifest::hex(&self.hasher.finalize())))
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the manifest under a temporary name, flushed to disk, then renames it.
fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let path = dir.join(MANIFEST);
    let tmp = dir.join(format!(".{MANIFEST}.tmp"));
    let text = serde_json::to_vec_pretty(manifest).unwrap_or_default();
    let mut file = File::create(&tmp).map_err(|e| BackupError::io("creating", &tmp, e))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(|e| BackupError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| BackupError::io("renaming", &tmp, e))
}
