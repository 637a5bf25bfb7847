//! `backup verify` and `backup restore`: every file checked against the manifest before
//! any database is touched; a restore proven by counting and hashing every table.
//!
//! The files are read from the destination (a folder or S3) on `jobs` threads; each is
//! hashed as stored and, when it is to be restored (or an identity is given to `verify`),
//! decrypted and decompressed on the way. The checksum has the last word: a file that
//! does not decode is reported by its checksum when that differs.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use goodgo_db::admin::{Scratch, Target};
use goodgo_db::migrations::MigrationFile;
use goodgo_db::runner::{self, State};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::create::DUMP_DIR;
use crate::crypt::{self, Identity};
use crate::manifest::{self, FileEntry, MANIFEST, Manifest, MigrationCheck, TableEntry, Verified};
use crate::stats::TableHash;
use crate::store::Store;
use crate::{BackupError, Event, Tools, list_of, load, run_tool, stats};

/// Reads the manifest of backup `id` and checks every file it lists (size and SHA-256),
/// on `jobs` threads; the first bad file is the error, naming it. With an `identity`, an
/// encrypted backup's files are also decrypted and decompressed (proving the key opens
/// them); without one, their stored bytes are checked.
pub async fn verify_files(
    store: &Store,
    id: &str,
    identity: Option<&Identity>,
    jobs: usize,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Manifest, BackupError> {
    let files = Files::open(store, id, jobs).await?;
    let opener = match identity {
        Some(_) => crypt::opener(&files.manifest, identity)?,
        None => None,
    };
    files.check(on_event, |entry, input, place| {
        let mut sink = std::io::sink();
        let decode = opener
            .filter(|_| entry.path.ends_with(crypt::SUFFIX))
            .map(|identity| Decode {
                identity: Some(identity),
                out: &mut sink,
                out_path: Path::new("/dev/null"),
            });
        check_one(entry, place, input, decode)
    })?;
    Ok(files.manifest)
}

/// Checks every file of backup `id` and writes the dump, decrypted and decompressed, into
/// `into` (a folder pg_restore reads). Nothing is returned until every file is checked;
/// an encrypted backup needs the `identity` of one of its recipients.
pub async fn materialize(
    store: &Store,
    id: &str,
    identity: Option<&Identity>,
    into: &Path,
    jobs: usize,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Manifest, BackupError> {
    let files = Files::open(store, id, jobs).await?;
    let opener = crypt::opener(&files.manifest, identity)?;
    files.check(on_event, |entry, input, place| {
        let rel = entry
            .path
            .strip_prefix(&format!("{DUMP_DIR}/"))
            .unwrap_or(&entry.path);
        let rel = rel.strip_suffix(crypt::SUFFIX).unwrap_or(rel);
        let plain = rel.strip_suffix(".zst").unwrap_or(rel);
        let out_path = into.join(plain);
        let out = File::create(&out_path).map_err(|e| BackupError::io("creating", &out_path, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
        let decode = Decode {
            identity: opener,
            out: &mut out,
            out_path: &out_path,
        };
        check_one(entry, place, input, Some(decode))
    })?;
    Ok(files.manifest)
}

/// Where a file's bytes go besides the hash: decrypted with the identity (when there is
/// one) and decompressed into `out` (`out_path`, for messages).
struct Decode<'a> {
    identity: Option<&'a Identity>,
    out: &'a mut dyn Write,
    out_path: &'a Path,
}

/// Hashes `input` (file `entry`, at `place`) as it is read, decoding it on the way when
/// asked, then compares its size and SHA-256 with the manifest.
fn check_one(
    entry: &FileEntry,
    place: &Path,
    input: Box<dyn Read + Send>,
    decode: Option<Decode<'_>>,
) -> Result<(), BackupError> {
    let mut tee = Tee::new(input);
    let decoded = match decode {
        Some(d) => unpack(entry, place, &mut tee, d),
        None => Ok(()),
    };
    // What the decoders left unread (trailing bytes) still counts.
    std::io::copy(&mut tee, &mut std::io::sink())
        .map_err(|e| BackupError::io("reading", place, e))?;
    // A read that failed (a disk, the network) is that failure, whatever a decoder made
    // of it.
    if let Some(e) = tee.failed.take() {
        return Err(BackupError::io("reading", place, e));
    }
    let sha256 = manifest::hex(&tee.hasher.finalize());
    match decoded {
        Err(e @ (BackupError::Identity(_) | BackupError::Io { .. })) => Err(e),
        decoded => compare(entry, place, tee.size, &sha256).and(decoded),
    }
}

/// Decrypts (a `.age` file) and decompresses (a `.zst` one) the stored bytes read from
/// `tee` into `d.out`.
fn unpack<R: Read>(
    entry: &FileEntry,
    place: &Path,
    tee: &mut Tee<R>,
    d: Decode<'_>,
) -> Result<(), BackupError> {
    let bad = |doing: &str, e: std::io::Error| BackupError::Corrupt {
        path: place.to_path_buf(),
        problem: format!("cannot be {doing} ({e}): its bytes differ from the backup's"),
    };
    let (encrypted, rest) = match entry.path.strip_suffix(crypt::SUFFIX) {
        Some(rest) => (true, rest),
        None => (false, entry.path.as_str()),
    };
    let plain: Box<dyn Read + '_> = match (encrypted, d.identity) {
        (false, _) => Box::new(tee),
        (true, Some(identity)) => Box::new(identity.decrypt(tee, place)?),
        (true, None) => {
            return Err(BackupError::Identity(format!(
                "{}: encrypted, and no identity was given",
                place.display()
            )));
        }
    };
    let (mut reader, doing): (Box<dyn Read + '_>, &str) = if rest.ends_with(".zst") {
        let decoder = zstd::stream::Decoder::new(plain).map_err(|e| bad("decompressed", e))?;
        (Box::new(decoder), "decompressed")
    } else {
        (plain, if encrypted { "decrypted" } else { "read" })
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(|e| bad(doing, e))?;
        if n == 0 {
            break;
        }
        d.out
            .write_all(&buf[..n])
            .map_err(|e| BackupError::io("writing", d.out_path, e))?;
    }
    d.out
        .flush()
        .map_err(|e| BackupError::io("writing", d.out_path, e))
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

/// The files of backup `id` at `store`, as its manifest lists them, read on `jobs` threads.
struct Files<'a> {
    store: &'a Store,
    id: &'a str,
    manifest: Manifest,
    jobs: usize,
}

impl<'a> Files<'a> {
    /// Reads the manifest of backup `id`.
    async fn open(store: &'a Store, id: &'a str, jobs: usize) -> Result<Files<'a>, BackupError> {
        Ok(Files {
            store,
            id,
            manifest: store.manifest(id).await?,
            jobs,
        })
    }

    /// Runs `check` on every file, largest first, each with a reader of the file and where
    /// it is; the first error (in manifest order) wins.
    fn check(
        &self,
        on_event: &(dyn Fn(Event) + Sync),
        check: impl Fn(&FileEntry, Box<dyn Read + Send>, &Path) -> Result<(), BackupError> + Sync,
    ) -> Result<(), BackupError> {
        let Files {
            store,
            id,
            ref manifest,
            jobs,
        } = *self;
        for entry in &manifest.files {
            // A path leaving the backup's folder is not one goodgo wrote.
            if entry
                .path
                .split('/')
                .any(|part| part == ".." || part.is_empty())
            {
                return Err(BackupError::Manifest {
                    path: store.file_place(id, MANIFEST),
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
                        let place: PathBuf = store.file_place(id, &entry.path);
                        let checked = store
                            .reader(id, &entry.path)
                            .and_then(|input| check(entry, input, &place));
                        if let Err(e) = checked {
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
            None => Ok(()),
        }
    }
}

/// Restores a checked, decompressed dump (see [`materialize`]) into the existing, empty
/// database `target` with `pg_restore --jobs`, then compares every table with the manifest.
/// With `no_owner`, every object is the connecting user's and no GRANT is restored.
///
/// The tables are counted and hashed as soon as their data is in, while pg_restore builds
/// the indexes and constraints (its post-data section, which changes no row).
pub async fn restore_checked(
    dump: &Path,
    manifest: &Manifest,
    target: &Target,
    tools: &Tools,
    jobs: usize,
    no_owner: bool,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), BackupError> {
    on_event(Event::Restoring);
    let pg_restore = |sections: &[&str], list: Option<&Path>| {
        let mut command = target.libpq_command(&tools.pg_restore);
        command
            .arg(format!("--jobs={}", jobs.max(1)))
            .arg("--exit-on-error");
        if no_owner {
            command.arg("--no-owner").arg("--no-privileges");
        }
        for section in sections {
            command.arg(format!("--section={section}"));
        }
        if let Some(list) = list {
            command.arg("--use-list").arg(list);
        }
        command.arg(dump);
        async move {
            tokio::task::spawn_blocking(move || run_tool(command, "pg_restore"))
                .await
                .map_err(|e| BackupError::Tool {
                    program: "pg_restore".into(),
                    message: e.to_string(),
                })?
        }
    };
    // The largest tables are loaded by goodgo on `jobs` connections each, while
    // pg_restore loads the others (see [`load`]). Format 5 hashes the restored tables as
    // their data files print them: the dump's `COPY` statements are needed.
    let list = list_of(tools, dump)?;
    let big = load::big_tables(&list, dump);
    let copy_lines = manifest.table_hash() == TableHash::CopyLines;
    let empty = if big.is_empty() && !copy_lines {
        None
    } else {
        Some(load::EmptyDump::new(dump, &list)?)
    };
    let mut copies = match &empty {
        Some(empty) if copy_lines => {
            let (script, entries) = load::copy_script(tools, empty, &list)?;
            let encoding = load::script_encoding(&script);
            let script = stats::to_utf8(target, script, &encoding).await?;
            Some(load::copies(&script, &entries, dump, &encoding)?)
        }
        _ => None,
    };
    // Format 5: the count and hash of each table goodgo loads, taken as it loads it.
    let mut loaded: Vec<TableEntry> = Vec::new();
    match &empty {
        Some(empty) if !big.is_empty() => {
            let big = load::scripts(tools, empty, big)?;
            let rest = empty.scratch().join("rest.list");
            std::fs::write(&rest, load::without(&list, big.iter().map(|(t, _)| t)))
                .map_err(|e| BackupError::io("creating", &rest, e))?;
            pg_restore(&["pre-data"], None).await?;
            let loading = async {
                for (table, script) in &big {
                    on_event(Event::Loading {
                        table: script.table().to_string(),
                        connections: jobs.max(1),
                    });
                    let (rows, sent) = load::load(target, table, script, jobs).await?;
                    // Format 5: the server's count of the rows it took and the hash of
                    // the lines it was given are this table's (it is not read back).
                    if copies.is_some() {
                        loaded.push(TableEntry {
                            name: script.table().to_string(),
                            rows: i64::try_from(rows).unwrap_or(i64::MAX),
                            hash: sent.finish().1,
                        });
                    }
                }
                Ok::<_, BackupError>(())
            };
            let (others, done) = tokio::join!(pg_restore(&["data"], Some(&rest)), loading);
            others?;
            done?;
        }
        _ => pg_restore(&["pre-data", "data"], None).await?,
    }
    // Only the tables the backup hashed count (not an extension's own).
    loaded.retain(|l| manifest.tables.iter().any(|t| t.name == l.name));
    on_event(Event::Hashing);
    let hashing = async {
        match &mut copies {
            // Every table but those goodgo loaded itself is printed back.
            Some(copies) => {
                copies.retain(|c| {
                    manifest.tables.iter().any(|t| t.name == c.table)
                        && !loaded.iter().any(|l| l.name == c.table)
                });
                stats::copy_lines(target, jobs, copies).await
            }
            None => stats::tables(target, jobs, manifest.table_hash()).await,
        }
    };
    let (post_data, found) = tokio::join!(pg_restore(&["post-data"], None), hashing);
    post_data?;
    let mut found = found?;
    found.append(&mut loaded);
    found.sort_by(|a, b| a.name.cmp(&b.name));
    stats::compare(&manifest.tables, &found)
}

/// A new database `{prefix}_…` on `server`'s server to restore backup `manifest` into,
/// created with the backup's encoding and locale (format 4; older backups do not say,
/// and get the server's defaults); with what it got instead of the backup's locale, when
/// this server cannot give it that (see [`goodgo_db::admin::create_database_like`]).
pub async fn database_for(
    server: &Target,
    prefix: &str,
    manifest: &Manifest,
) -> Result<(Scratch, Option<String>), BackupError> {
    Ok(match &manifest.locale {
        Some(like) => Scratch::create_like(server, prefix, like).await?,
        None => (Scratch::create(server, prefix, None).await?, None),
    })
}

/// `verify --restore`: restores into a scratch database on `server`'s server (dropped
/// afterwards, whatever happens), and records the verification in `verified.json`.
#[allow(clippy::too_many_arguments)]
pub async fn verify_by_restore(
    store: &Store,
    id: &str,
    identity: Option<&Identity>,
    server: &Target,
    tools: &Tools,
    jobs: usize,
    migrations: Option<&[MigrationFile]>,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(Manifest, Verified), BackupError> {
    let started = Instant::now();
    let folder = tempfile::Builder::new()
        .prefix(".goodgo-verify-")
        .tempdir()
        .map_err(|e| BackupError::io("creating a folder in", std::env::temp_dir(), e))?;
    let manifest = materialize(store, id, identity, folder.path(), jobs, on_event).await?;
    let (scratch, _) = database_for(server, "goodgo_verify", &manifest).await?;
    let restored = async {
        restore_checked(
            folder.path(),
            &manifest,
            &scratch.target,
            tools,
            jobs,
            false,
            on_event,
        )
        .await?;
        match migrations {
            Some(files) => migration_check(&scratch.target, &manifest, files)
                .await
                .map(Some),
            None => Ok(None),
        }
    }
    .await;
    let dropped = scratch.remove().await;
    let migrations = restored?;
    dropped?;
    let verified = record_with(store, id, true, started, migrations).await?;
    Ok((manifest, verified))
}

/// `goodgo db status` on the restored database: its history against the workspace's
/// migration `files`. The restored head must be the manifest's (else the dump is not the
/// database the manifest describes); divergent or missing migrations are reported, not
/// refused (the workspace may have moved on since the backup).
pub async fn migration_check(
    target: &Target,
    manifest: &Manifest,
    files: &[MigrationFile],
) -> Result<MigrationCheck, BackupError> {
    let client = target.connect().await?;
    let history = runner::applied(&client).await?;
    let head = history
        .iter()
        .max_by_key(|a| a.version)
        .map(|a| format!("V{}__{}", a.version, a.name));
    if head != manifest.migration_head {
        return Err(BackupError::Mismatch {
            table: runner::HISTORY_TABLE.to_string(),
            problem: format!(
                "the restored migration head is {}, the manifest records {}",
                head.as_deref().unwrap_or("none"),
                manifest.migration_head.as_deref().unwrap_or("none")
            ),
        });
    }
    let rows = runner::status(files, &history);
    let named = |state: State| {
        rows.iter()
            .filter(|r| r.state == state)
            .map(|r| format!("V{}__{}", r.version, r.name))
            .collect::<Vec<_>>()
    };
    Ok(MigrationCheck {
        head,
        applied: rows.iter().filter(|r| r.state == State::Applied).count(),
        pending: rows.iter().filter(|r| r.state == State::Pending).count(),
        divergent: named(State::Divergent),
        missing: named(State::Missing),
    })
}

/// Writes `verified.json` for backup `id`.
pub async fn record(
    store: &Store,
    id: &str,
    restored: bool,
    started: Instant,
) -> Result<Verified, BackupError> {
    record_with(store, id, restored, started, None).await
}

async fn record_with(
    store: &Store,
    id: &str,
    restored: bool,
    started: Instant,
    migrations: Option<MigrationCheck>,
) -> Result<Verified, BackupError> {
    let verified = Verified {
        verified_at: manifest::format_time(OffsetDateTime::now_utc()),
        restored,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        migrations,
    };
    store.write_verified(id, &verified).await?;
    Ok(verified)
}

/// Reads through to the inner reader, counting and hashing the bytes.
struct Tee<R> {
    inner: BufReader<R>,
    hasher: Sha256,
    size: u64,
    /// The first error of the inner reader.
    failed: Option<std::io::Error>,
}

impl<R: Read> Tee<R> {
    fn new(inner: R) -> Self {
        Tee {
            inner: BufReader::with_capacity(1 << 20, inner),
            hasher: Sha256::new(),
            size: 0,
            failed: None,
        }
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let copy = std::io::Error::new(e.kind(), e.to_string());
                self.failed.get_or_insert(copy);
                return Err(e);
            }
        };
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives the first half of `bytes`, then fails once like a dropped connection, then
    /// ends (as an object's body stream does after an error).
    struct Cut {
        bytes: Vec<u8>,
        at: usize,
        failed: bool,
    }

    impl Read for Cut {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.at >= self.bytes.len() / 2 {
                if self.failed {
                    return Ok(0);
                }
                self.failed = true;
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset",
                ));
            }
            let n = buf.len().min(self.bytes.len() / 2 - self.at).min(1000);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn a_read_that_fails_midway_is_a_failed_read_not_a_corrupt_file() {
        let plain: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let stored = zstd::encode_all(plain.as_slice(), 3).expect("compress");
        let entry = FileEntry {
            path: "dump/1.dat.zst".into(),
            size: stored.len() as u64,
            sha256: manifest::hex(&Sha256::digest(&stored)),
        };
        let mut out = Vec::new();
        let decode = Decode {
            identity: None,
            out: &mut out,
            out_path: Path::new("1.dat"),
        };
        let input = Box::new(Cut {
            bytes: stored.clone(),
            at: 0,
            failed: false,
        });
        let err = check_one(&entry, Path::new("s3://b/1.dat.zst"), input, Some(decode))
            .expect_err("cut short");
        assert!(matches!(err, BackupError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("connection reset"), "{err}");
        // The whole file checks and decodes.
        let mut out = Vec::new();
        let decode = Decode {
            identity: None,
            out: &mut out,
            out_path: Path::new("1.dat"),
        };
        let input = Box::new(std::io::Cursor::new(stored));
        check_one(&entry, Path::new("1.dat.zst"), input, Some(decode)).expect("intact");
        assert_eq!(out, plain);
    }
}
