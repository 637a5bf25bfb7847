//! A local destination: a folder holding one folder per backup, named by its id.
//!
//! A backup is written into `.partial-{id}/` and renamed to `{id}/` once its manifest is
//! written, so a folder named like an id always holds a complete backup. The writer holds
//! an exclusive lock on `.partial-{id}/.lock` (`flock`, released by the kernel however the
//! process ends); the next run removes partial folders whose lock nobody holds, so a
//! backup killed with `kill -9` leaves nothing behind for long and is never listed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::BackupError;
use crate::manifest::MANIFEST;

const PARTIAL: &str = ".partial-";
const LOCK: &str = ".lock";

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

/// The names of the folders at `dest` that may be backups (not partial or hidden ones).
pub fn ids(dest: &Path) -> Result<Vec<String>, BackupError> {
    let entries = match std::fs::read_dir(dest) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::io("reading", dest, e)),
    };
    Ok(entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect())
}

/// Reads `dir/name`; `None` when there is no such file.
pub fn read(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, BackupError> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BackupError::io("reading", &path, e)),
    }
}

/// Writes `dir/name` under a temporary name, flushed to disk, then renames it.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), BackupError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = File::create(&tmp).map_err(|e| BackupError::io("creating", &tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| BackupError::io("writing", &tmp, e))?;
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
            ids(dest.path()).expect("list").is_empty(),
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
