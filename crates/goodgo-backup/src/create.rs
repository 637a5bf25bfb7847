//! `backup create`: dump, compress (and encrypt), checksum, store, manifest last.
//!
//! goodgo opens a repeatable-read transaction and exports its snapshot; `pg_dump
//! --snapshot` dumps it (with the settings of [`lines::PGDUMP_OPTIONS`]), while a
//! connection of goodgo's that imported the same snapshot counts and hashes the large
//! objects, if any. pg_dump writes into a local folder (the partial backup itself for a
//! local destination, a staging folder for S3); each file is then packed on its way to the
//! destination as pg_dump writes it: a table's data file has its lines counted and hashed
//! (format 5's table hash, [`lines`]) and is compressed with zstd, every file is encrypted
//! with age when there are recipients, and hashed (SHA-256) as stored, in the same pass.
//! Once pg_dump is done, its table of contents (`pg_restore --list`) says which data
//! file is which table's.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use goodgo_db::admin::Target;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::crypt::{self, Recipients};
use crate::follow::Follow;
use crate::lines::{Hashing, LineHash};
use crate::manifest::{self, FileEntry, Manifest, TableEntry};
use crate::stats::TableHash;
use crate::store::{Partial, Store};
use crate::{BackupError, Event, Tools, lines, list_of, load, pg, run_tool, stats};

/// The folder inside a backup that holds pg_dump's output.
pub const DUMP_DIR: &str = "dump";
/// zstd's level for data files: its default, far faster than pg_dump's gzip and smaller.
pub const ZSTD_LEVEL: i32 = 3;
/// A data file at least this large is compressed by zstd's own worker threads (`--jobs`
/// of them) rather than by its packing thread alone: a database is often one big table.
const ZSTD_MT_BYTES: u64 = 32 << 20;

/// What `create` needs besides the database and the destination.
#[derive(Debug, Clone)]
pub struct Options {
    pub jobs: usize,
    pub git_commit: Option<String>,
    /// Encrypt every file to these age recipients; `None`: no encryption.
    pub recipients: Option<Recipients>,
}

/// A finished backup.
#[derive(Debug)]
pub struct Created {
    /// Where it is: its folder, or its `s3://` URL.
    pub place: String,
    pub manifest: Manifest,
    /// Partial backups of interrupted runs that were removed first.
    pub cleaned: Vec<String>,
}

pub async fn create(
    db: &Target,
    tools: &Tools,
    store: &Store,
    options: &Options,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Created, BackupError> {
    let cleaned = store.clean_partials().await?;
    let started = OffsetDateTime::now_utc();
    let id = manifest::new_id(started);
    let partial = store.start(&id).await?;
    let made = dump(db, tools, options, started, &partial, on_event).await;
    match made {
        Ok(manifest) => {
            let place = partial.finish(&manifest).await?;
            Ok(Created {
                place,
                manifest,
                cleaned,
            })
        }
        Err(e) => {
            partial.abandon().await;
            Err(e)
        }
    }
}

async fn dump(
    db: &Target,
    tools: &Tools,
    options: &Options,
    started: OffsetDateTime,
    partial: &Partial<'_>,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Manifest, BackupError> {
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
    let locale = goodgo_db::admin::text_settings(&tx).await?;
    let migration_head = migration_head(&tx).await?;
    let tables = stats::list(&tx, TableHash::of_format(manifest::FORMAT_VERSION)).await?;
    on_event(Event::Dumping {
        tables: tables
            .iter()
            .filter(|t| t.name != stats::LARGE_OBJECTS)
            .count(),
    });

    let jobs = options.jobs.max(1);
    // The tables' size on disk: the progress bar's first guess at the dump's size.
    let estimate: u64 = tables
        .iter()
        .map(|t| u64::try_from(t.bytes).unwrap_or(0))
        .sum();
    // Tables are hashed from pg_dump's data files as they are packed; only the large
    // objects are hashed by the server, in the dump's snapshot.
    let (tables, large_objects): (Vec<_>, Vec<_>) = tables
        .into_iter()
        .partition(|t| t.name != stats::LARGE_OBJECTS);
    let (hasher, imported) = Hasher::start(db, &snapshot, large_objects, jobs);
    // pg_dump writes into an existing folder when it is empty: created first, so that it
    // can be followed from the start.
    let dump_dir = partial.staging().join(DUMP_DIR);
    std::fs::create_dir_all(&dump_dir).map_err(|e| BackupError::io("creating", &dump_dir, e))?;
    let mut command = db.libpq_command(&tools.pg_dump);
    command
        .arg("--format=directory")
        .arg(format!("--jobs={jobs}"))
        .arg("--compress=0")
        .arg(format!("--snapshot={snapshot}"))
        .arg("--no-sync")
        .arg("--file")
        .arg(&dump_dir)
        .env(
            "PGOPTIONS",
            lines::pgoptions(std::env::var_os("PGOPTIONS").as_deref()),
        );
    on_event(Event::Total(estimate));
    let (dumped, packed) = dump_and_pack(command, &dump_dir, estimate, partial, options, on_event);
    // The snapshot must stay open until pg_dump's workers and the hashing connection have
    // taken it: end it only now.
    if imported.await.is_err() {
        // The hashing thread ended without importing it: its error says why (after
        // pg_dump's, if that failed too).
        let failed = hasher.finish().err();
        dumped?;
        return Err(failed.unwrap_or_else(|| BackupError::Tool {
            program: "goodgo".into(),
            message: "the table hashing ended early".into(),
        }));
    }
    let ended = tx
        .commit()
        .await
        .map_err(|e| pg("ending the backup's transaction".into(), e));
    // pg_dump's failure first: the packing's is then only its consequence.
    let listed = match dumped.and(ended).and(packed) {
        Ok(files) => table_entries(tools, &dump_dir, &tables, files),
        Err(e) => Err(e),
    };
    let (files, mut tables) = match listed {
        Ok(listed) => listed,
        Err(e) => {
            hasher.stop();
            return Err(e);
        }
    };
    let pg_dump_version = tool_version(&tools.pg_dump);
    tables.extend(hasher.finish()?);
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Manifest {
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
        encryption: options.recipients.as_ref().map(Recipients::describe),
        locale: Some(locale),
        files,
        tables,
    })
}

/// The files of the dump in `dump_dir` and the count and hash of each table whose data it
/// holds (`tables` being the database's), from `packed` (every file's entry, and its lines'
/// count and hash for a table's data file). The table of contents is removed once read when
/// it is not stored there as it is.
fn table_entries(
    tools: &Tools,
    dump_dir: &Path,
    tables: &[stats::Table],
    packed: Vec<Packed>,
) -> Result<(Vec<FileEntry>, Vec<TableEntry>), BackupError> {
    let toc = dump_dir.join("toc.dat");
    let list = list_of(tools, dump_dir)?;
    let mut files = Vec::with_capacity(packed.len());
    let mut lines = std::collections::HashMap::new();
    for (entry, hashed) in packed {
        if let Some((id, hashed)) = hashed {
            lines.insert(id, hashed);
        }
        files.push(entry);
    }
    if !files
        .iter()
        .any(|f| f.path == format!("{DUMP_DIR}/toc.dat"))
    {
        std::fs::remove_file(&toc).map_err(|e| BackupError::io("removing", &toc, e))?;
    }
    let mut entries = Vec::new();
    for data in load::data_entries(&list) {
        let Some(table) = tables.iter().find(|t| t.oid == data.oid) else {
            return Err(BackupError::Tool {
                program: "pg_dump".into(),
                message: format!(
                    "dumped the data of a table goodgo does not know: {}",
                    data.line
                ),
            });
        };
        // An extension makes the rows of its tables: pg_dump dumps those its configuration
        // names, if any, which are restored beside the extension's own.
        if table.extension {
            continue;
        }
        let Some((rows, hash)) = lines.remove(&data.id) else {
            return Err(BackupError::Tool {
                program: "pg_dump".into(),
                message: format!("wrote no data file for table {}", table.name),
            });
        };
        entries.push(TableEntry {
            name: table.name.clone(),
            rows: i64::try_from(rows).unwrap_or(i64::MAX),
            hash,
        });
    }
    Ok((files, entries))
}

/// The large objects being counted and hashed (format 4's hash) on a thread of their own,
/// on a connection that imported the dump's snapshot, while pg_dump runs and the files are
/// packed.
struct Hasher {
    thread: std::thread::JoinHandle<Result<Vec<TableEntry>, BackupError>>,
    stop: Arc<AtomicBool>,
}

impl Hasher {
    /// Starts hashing `tables`; the receiver gets a message once every connection has
    /// imported `snapshot` (and none if one could not: the thread ends with the error).
    fn start(
        db: &Target,
        snapshot: &str,
        tables: Vec<stats::Table>,
        jobs: usize,
    ) -> (Hasher, tokio::sync::oneshot::Receiver<()>) {
        let (db, snapshot) = (db.clone(), snapshot.to_string());
        let (imported, imported_rx) = tokio::sync::oneshot::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| BackupError::Tool {
                    program: "goodgo".into(),
                    message: format!("cannot start the table hashing: {e}"),
                })?;
            runtime.block_on(async move {
                let n = jobs.clamp(1, tables.len().max(1));
                let hash = TableHash::of_format(manifest::FORMAT_VERSION);
                let clients = stats::connect(&db, n, hash, Some(&snapshot)).await?;
                let _ = imported.send(());
                stats::hash(&clients, tables, hash, &stopped).await
            })
        });
        (Hasher { thread, stop }, imported_rx)
    }

    /// Starts no further table and waits for the thread.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }

    /// Every table's count and hash, in name order.
    fn finish(self) -> Result<Vec<TableEntry>, BackupError> {
        self.thread.join().unwrap_or_else(|_| {
            Err(BackupError::Tool {
                program: "goodgo".into(),
                message: "the table hashing panicked".into(),
            })
        })
    }
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

/// Runs pg_dump (`command`, writing into `dump_dir`) while `jobs` threads pack its files
/// as it writes them; pg_dump's outcome and the entries, sorted by path. `estimate` is
/// the database's size, a bound for the upload's part sizes.
fn dump_and_pack(
    command: std::process::Command,
    dump_dir: &Path,
    estimate: u64,
    partial: &Partial<'_>,
    options: &Options,
    on_event: &(dyn Fn(Event) + Sync),
) -> (Result<(), BackupError>, Result<Vec<Packed>, BackupError>) {
    let jobs = options.jobs.max(1);
    let follow = Follow::start(dump_dir, is_packed);
    let results: Mutex<Vec<Result<Packed, BackupError>>> = Mutex::new(Vec::new());
    let seen = AtomicU64::new(0);
    let dumped = std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let done = match follow.next() {
                        Ok(Some((path, following))) => {
                            let counted = Counted {
                                inner: following,
                                seen: &seen,
                                on_event,
                            };
                            let input = std::io::BufReader::with_capacity(1 << 20, counted);
                            if let Some(id) = table_data_id(&path) {
                                let mut input = Hashing {
                                    inner: input,
                                    lines: LineHash::new(),
                                };
                                pack_one(partial, &path, &mut input, estimate, options)
                                    .map(|entry| (entry, Some((id, input.lines.finish()))))
                            } else {
                                pack_one(partial, &path, input, estimate, options)
                                    .map(|entry| (entry, None))
                            }
                        }
                        Ok(None) => break,
                        Err(e) => Err(e),
                    };
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
        let dumped = run_tool(command, "pg_dump");
        follow.ended(dumped.is_ok());
        dumped
    });
    if dumped.is_ok() {
        on_event(Event::Total(seen.load(Ordering::Relaxed)));
    }
    let packed = (|| {
        let mut files = Vec::new();
        for r in results.into_inner().unwrap_or_default() {
            files.push(r?);
        }
        files.sort_by(|a: &Packed, b| a.0.path.cmp(&b.0.path));
        Ok(files)
    })();
    (dumped, packed)
}

/// A packed file's entry, and for a table's data file its dump id and its lines' count and
/// hash.
type Packed = (FileEntry, Option<(String, (u64, String))>);

/// The dump id of `path` when it is a table's data file (`ID.dat`), not the table of
/// contents or a large object's.
fn table_data_id(path: &Path) -> Option<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".dat"))
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
}

/// Files the packing writes beside pg_dump's (a local backup is packed in place).
fn is_packed(name: &str) -> bool {
    name.ends_with(".zst") || name.ends_with(crypt::SUFFIX)
}

/// A file being packed, its bytes counted into the progress as they are read.
struct Counted<'a, R> {
    inner: R,
    seen: &'a AtomicU64,
    on_event: &'a (dyn Fn(Event) + Sync),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.seen.fetch_add(n as u64, Ordering::Relaxed);
            (self.on_event)(Event::Advance(n as u64));
        }
        Ok(n)
    }
}

/// One file of pg_dump's output, read from `input` (at most about `size_hint` bytes): a
/// data file is compressed, every file is encrypted when there are recipients; the hash is
/// of the bytes as stored. A file stored unchanged at a local destination (`toc.dat`,
/// unencrypted) is only checksummed.
fn pack_one(
    partial: &Partial<'_>,
    path: &Path,
    input: impl Read,
    size_hint: u64,
    options: &Options,
) -> Result<FileEntry, BackupError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let source = format!("{DUMP_DIR}/{name}");
    let compress = name.ends_with(".dat") && name != "toc.dat";
    let mut stored = source.clone();
    if compress {
        stored.push_str(".zst");
    }
    if options.recipients.is_some() {
        stored.push_str(crypt::SUFFIX);
    }
    if stored == source && partial.stored_in_place() {
        let (size, sha256) = copy_hashed(input, path, std::io::sink())?;
        return Ok(FileEntry {
            path: stored,
            size,
            sha256,
        });
    }
    let place = partial.file_place(&stored);
    // A file already large when its packing starts (written faster than it was packed)
    // is compressed on zstd's worker threads too; one followed from its start keeps up
    // with pg_dump on one.
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let sink = HashingWriter::new(partial.sink(&stored, size_hint.saturating_mul(4))?);
    let zstd_workers = if compress && size >= ZSTD_MT_BYTES {
        options.jobs.max(1) as u32
    } else {
        0
    };
    let layers = Layers {
        compress,
        zstd_workers,
    };
    let written = match &options.recipients {
        Some(recipients) => recipients
            .encrypt(sink)
            .and_then(|w| layers.copy(input, w))
            .and_then(|w| w.finish()),
        None => layers.copy(input, sink),
    };
    let (sink, size, sha256) = written
        .and_then(HashingWriter::finish)
        .map_err(|e| BackupError::io("packing", &place, e))?;
    sink.finish()
        .map_err(|e| BackupError::io("storing", &place, e))?;
    // The original is packed: free its room now (the staging folder goes at the end). The
    // table of contents is read once the dump is complete: removed then.
    if name != "toc.dat" {
        std::fs::remove_file(path).map_err(|e| BackupError::io("removing", path, e))?;
    }
    Ok(FileEntry {
        path: stored,
        size,
        sha256,
    })
}

/// The compression layer of a packed file.
struct Layers {
    compress: bool,
    zstd_workers: u32,
}

impl Layers {
    /// Copies `input` into `out`, compressed when asked; returns `out`.
    fn copy<W: Write>(&self, mut input: impl Read, mut out: W) -> std::io::Result<W> {
        if !self.compress {
            std::io::copy(&mut input, &mut out)?;
            return Ok(out);
        }
        let mut encoder = zstd::stream::Encoder::new(out, ZSTD_LEVEL)?;
        if self.zstd_workers > 0 {
            encoder.multithread(self.zstd_workers)?;
        }
        std::io::copy(&mut input, &mut encoder)?;
        encoder.finish()
    }
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

/// Writes through, counting and hashing the bytes.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(mut self) -> std::io::Result<(W, u64, String)> {
        self.inner.flush()?;
        Ok((
            self.inner,
            self.size,
            manifest::hex(&self.hasher.finalize()),
        ))
    }
}

impl<W: Write> Write for HashingWriter<W> {
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
