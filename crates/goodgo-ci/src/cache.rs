//! The cache store: one folder per key under `<dir>/entries/`, holding `meta.json`, the
//! step's `log` and its outputs under `out/`.
//!
//! Safe under concurrent runs: a step takes its entry's lock (`locks/<key>.lock`, an OS file
//! lock) before looking it up and holds it while it runs and stores, so a second run waits
//! and then hits. An entry is built in `tmp/` and renamed into place (atomic), and every
//! file it holds is checked against the SHA-256 in `meta.json` when read: a corrupted or
//! half-deleted entry is a miss, never a crash. `last/<step>.json` keeps the key parts of
//! the step's last stored entry, for `--explain`.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::key::{KeyParts, hex};

/// Writes `body` to `path` through a temp file in the same folder and a rename.
pub fn write_atomic(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        unique()
    ));
    let mut f = File::create(&tmp)?;
    f.write_all(body)?;
    f.sync_data().ok();
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputFile {
    pub path: String,
    pub sha256: String,
}

/// What an entry records besides its files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub step: String,
    pub key: String,
    pub duration_ms: u64,
    pub log_sha256: String,
    pub outputs: Vec<OutputFile>,
    pub parts: KeyParts,
}

/// A usable entry.
#[derive(Debug)]
pub struct Hit {
    pub meta: Meta,
    pub log: Vec<u8>,
    dir: PathBuf,
}

/// The held lock of one entry; released when dropped.
pub struct EntryLock {
    _file: File,
}

pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        for sub in ["entries", "locks", "last", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// Waits for and takes the lock of entry `key`.
    pub fn lock(&self, key: &str) -> std::io::Result<EntryLock> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("locks").join(format!("{key}.lock")))?;
        file.lock()?;
        Ok(EntryLock { _file: file })
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.dir.join("entries").join(key)
    }

    /// The entry for `key` when it is there and whole.
    pub fn lookup(&self, key: &str) -> Option<Hit> {
        let dir = self.entry(key);
        let meta: Meta =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).ok()?).ok()?;
        if meta.key != key {
            return None;
        }
        let log = std::fs::read(dir.join("log")).ok()?;
        if hex(&Sha256::digest(&log)) != meta.log_sha256 {
            return None;
        }
        for out in &meta.outputs {
            let body = std::fs::read(dir.join("out").join(&out.path)).ok()?;
            if hex(&Sha256::digest(&body)) != out.sha256 {
                return None;
            }
        }
        Some(Hit { meta, log, dir })
    }

    /// Whether `key` has a whole entry (for `--dry-run`).
    pub fn contains(&self, key: &str) -> bool {
        self.lookup(key).is_some()
    }

    /// Copies the hit's outputs into the workspace at `root`.
    pub fn restore(&self, hit: &Hit, root: &Path) -> std::io::Result<()> {
        for out in &hit.meta.outputs {
            let to = root.join(&out.path);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let body = std::fs::read(hit.dir.join("out").join(&out.path))?;
            write_atomic(&to, &body)?;
        }
        Ok(())
    }

    /// Stores a successful step: its log and the `outputs` (relative paths under `root`).
    /// Call with the entry's lock held.
    pub fn store(
        &self,
        parts: &KeyParts,
        step: &str,
        log: &[u8],
        outputs: &[String],
        root: &Path,
        duration_ms: u64,
    ) -> std::io::Result<()> {
        let key = parts.key();
        let tmp = self.dir.join("tmp").join(unique());
        std::fs::create_dir_all(tmp.join("out"))?;
        let result = (|| {
            std::fs::write(tmp.join("log"), log)?;
            let mut files = Vec::new();
            for rel in outputs {
                let body = std::fs::read(root.join(rel))?;
                let to = tmp.join("out").join(rel);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&to, &body)?;
                files.push(OutputFile {
                    path: rel.clone(),
                    sha256: hex(&Sha256::digest(&body)),
                });
            }
            let meta = Meta {
                step: step.to_string(),
                key: key.clone(),
                duration_ms,
                log_sha256: hex(&Sha256::digest(log)),
                outputs: files,
                parts: parts.clone(),
            };
            std::fs::write(
                tmp.join("meta.json"),
                serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?,
            )?;
            let dest = self.entry(&key);
            // A corrupted entry in the way is replaced.
            if dest.exists() {
                std::fs::remove_dir_all(&dest)?;
            }
            std::fs::rename(&tmp, &dest)
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result?;
        write_atomic(
            &self.dir.join("last").join(format!("{step}.json")),
            &serde_json::to_vec(parts).map_err(std::io::Error::other)?,
        )
    }

    /// The key parts of `step`'s last stored entry.
    pub fn last(&self, step: &str) -> Option<KeyParts> {
        let body = std::fs::read(self.dir.join("last").join(format!("{step}.json"))).ok()?;
        serde_json::from_slice(&body).ok()
    }
}

/// The files under `root` that `set` matches, relative and `/`-separated. Walks only the
/// literal folders the globs start with, and ignores no file (outputs are often ignored).
pub fn collect_outputs(root: &Path, globs: &[String], set: &globset::GlobSet) -> Vec<String> {
    let mut bases: Vec<PathBuf> = globs
        .iter()
        .map(|g| {
            let literal: Vec<&str> = g
                .split('/')
                .take_while(|part| !part.contains(['*', '?', '[', '{']))
                .collect();
            PathBuf::from(literal.join("/"))
        })
        .collect();
    bases.sort();
    bases.dedup();
    let mut out = Vec::new();
    for base in bases {
        let start = root.join(&base);
        if start.is_file() {
            let rel = base.to_string_lossy().replace('\\', "/");
            if set.is_match(&rel) {
                out.push(rel);
            }
            continue;
        }
        let walker = ignore::WalkBuilder::new(&start)
            .standard_filters(false)
            .build();
        for entry in walker.flatten() {
            if entry.file_type().is_some_and(|t| t.is_file())
                && let Ok(rel) = entry.path().strip_prefix(root)
            {
                let rel = rel.to_string_lossy().replace('\\', "/");
                if set.is_match(&rel) {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
