//! A local destination: a folder holding one folder per backup, named by its id.
//!
//! A backup is written into `.partial-{id}/` and renamed to `{id}/` once its manifest is
//! written, so a folder named like an id always holds a complete backup. The writer holds
//! an exclusive lock on `.partial-{id}/.lock` (`flock`, released by the kernel however the
//! process ends); the next run removes partial folders whose lock nobody holds, so a
//! backup killed with `kill -9` leaves nothing behind for long and is never listed.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::BackupError;
use crate::manifest::{MANIFEST, Manifest, VERIFIED, Verified};

const PARTIAL: &str = ".partial-";
const LOCK: &str = ".lock";

/// A backup found at a destination.
#[derive(Debug, Clone)]
pub struct Listed {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub verified: Option<Verified>,
}

/// A backup being written: its folder and the lock that marks it as in progress.
#[derive(Debug)]
pub struct Partial {
    pub dir: PathBuf,
    pub id: String,
    _lock: File,
}

/// Creates `.partial-{id}/` under `dest`, locked.
pub fn start(dest: &Path, id: &str) -> Result<Partial, BackupError> {
    std::fs::create_dir_all(dest).map_err(|e| BackupError::io("creating", dest, e))?;
    let dir = dest.join(format!("{PARTIAL}{id}"));
    std::fs::create_dir(&dir).map_err(|e| BackupError::io("creating", &dir, e))?;
    let lock_path = dir.join(LOCK);
    let lock = File::create(&lock_path).map_err(|e| BackupError::io("creating", &lock_path, e))?;
    lock.lock()
        .map_err(|e| BackupError::io("locking", &lock_path, e))?;
    Ok(Partial {
        dir,
        id: id.to_string(),
        _lock: lock,
    })
}

impl Partial {
    /// Moves the finished backup (manifest written) to `{id}/`.
    pub fn finish(self) -> Result<PathBuf, BackupError> {
        let lock_path = self.dir.join(LOCK);
        std::fs::remove_file(&lock_path).map_err(|e| BackupError::io("removing", &lock_path, e))?;
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        let done = parent.join(&self.id);
        if done.exists() {
            return Err(BackupError::Input(format!(
                "{} already exists",
                done.display()
            )));
        }
        std::fs::rename(&self.dir, &done).map_err(|e| BackupError::io("renaming", &self.dir, e))?;
        Ok(done)
    }

    /// Removes what was written (a failed run).
    pub fn abandon(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes the partial folders no running backup holds; returns the names removed.
pub fn clean_partials(dest: &Path) -> Result<Vec<String>, BackupError> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dest) else {
        return Ok(removed);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(PARTIAL) {
            continue;
        }
        let dir = entry.path();
        let abandoned = match File::open(dir.join(LOCK)) {
            Ok(file) => file.try_lock().is_ok(),
            // Without its lock file the folder is either finishing (the lock is removed just
            // before the rename) or was cut short right after it was made: leave young ones.
            Err(_) => entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 600)),
        };
        // A pg_dump orphaned by a killed run may still be writing there: what cannot be
        // removed now is removed by a later run.
        if abandoned && std::fs::remove_dir_all(&dir).is_ok() {
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Every complete backup at `dest`, newest first. A folder whose manifest is missing or
/// unreadable is not a backup and is skipped (`verify` on it names the problem).
pub fn list(dest: &Path) -> Result<Vec<Listed>, BackupError> {
    let entries = match std::fs::read_dir(dest) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::io("reading", dest, e)),
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        let dir = entry.path();
        let Ok(manifest) = Manifest::read(&dir.join(MANIFEST)) else {
            continue;
        };
        if manifest.id != name {
            continue;
        }
        let verified = read_verified(&dir);
        found.push(Listed {
            dir,
            manifest,
            verified,
        });
    }
    // Newest first by start time (to the millisecond): two backups started in the same
    // second have ids that differ only by their random part.
    found.sort_by(|a, b| {
        (b.manifest.started(), &b.manifest.id).cmp(&(a.manifest.started(), &a.manifest.id))
    });
    Ok(found)
}

/// The folder of backup `id` (or the newest one) at `dest`, without reading its manifest.
pub fn locate(dest: &Path, id: Option<&str>) -> Result<PathBuf, BackupError> {
    match id {
        Some(id) => {
            let dir = dest.join(id);
            if id.starts_with('.') || id.contains('/') || !dir.is_dir() {
                return Err(BackupError::NotFound {
                    id: id.to_string(),
                    dest: dest.to_path_buf(),
                });
            }
            Ok(dir)
        }
        None => list(dest)?
            .into_iter()
            .next()
            .map(|l| l.dir)
            .ok_or_else(|| BackupError::NotFound {
                id: "(newest)".into(),
                dest: dest.to_path_buf(),
            }),
    }
}

pub fn read_verified(dir: &Path) -> Option<Verified> {
    let text = std::fs::read(dir.join(VERIFIED)).ok()?;
    serde_json::from_slice(&text).ok()
}

pub fn write_verified(dir: &Path, verified: &Verified) -> Result<(), BackupError> {
    let path = dir.join(VERIFIED);
    let tmp = dir.join(format!(".{VERIFIED}.tmp"));
    let text = serde_json::to_vec_pretty(verified).unwrap_or_default();
    std::fs::write(&tmp, text).map_err(|e| BackupError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| BackupError::io("renaming", &tmp, e))
}

/// Deletes backup folder `dir`: its manifest first, so an interrupted delete leaves a
/// folder that is no longer listed.
pub fn delete(dir: &Path) -> Result<(), BackupError> {
    let manifest = dir.join(MANIFEST);
    match std::fs::remove_file(&manifest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::io("removing", &manifest, e)),
    }
    std::fs::remove_dir_all(dir).map_err(|e| BackupError::io("removing", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_folder_is_removed_only_when_nobody_holds_it() {
        let dest = tempfile::tempdir().expect("tempdir");
        let running = start(dest.path(), "20260101T000000Z-aaaaaa").expect("start");
        let abandoned = start(dest.path(), "20260101T000000Z-bbbbbb").expect("start");
        std::fs::write(abandoned.dir.join("toc.dat"), b"half").expect("write");
        // Dropping the handle releases the lock, as the kernel does for a killed process.
        drop(abandoned);
        let removed = clean_partials(dest.path()).expect("clean");
        assert_eq!(removed, [".partial-20260101T000000Z-bbbbbb"]);
        assert!(running.dir.is_dir(), "a running backup is left alone");
        assert!(
            list(dest.path()).expect("list").is_empty(),
            "partials are never listed"
        );
        // Finished: renamed to its id, no lock file left.
        std::fs::write(running.dir.join(MANIFEST), b"{}").expect("write");
        let done = running.finish().expect("finish");
        assert_eq!(done, dest.path().join("20260101T000000Z-aaaaaa"));
        assert!(!done.join(LOCK).exists());
        assert!(clean_partials(dest.path()).expect("clean").is_empty());
    }
}
