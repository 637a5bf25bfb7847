//! A lock file: an exclusive `flock` on a file that names its holder.
//!
//! The holder writes who it is into the file right after locking it, so a second goodgo
//! can say whose turn it is. The kernel releases a flock when its process ends, however
//! it ends: the lock of a crashed or killed run expires with it, and its stale text is
//! simply overwritten by the next holder. The file itself stays, so nobody can lock a
//! path that is being removed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};

pub struct LockFile {
    file: std::fs::File,
    path: PathBuf,
    held: bool,
}

impl LockFile {
    /// Opens (creating it and its folder) the lock file at `path`, without locking it.
    pub fn open(path: &Path) -> Result<LockFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(LockFile {
            file,
            path: path.to_path_buf(),
            held: false,
        })
    }

    /// Takes the lock if nobody holds it and writes `holder` into the file; `false` when
    /// someone else holds it.
    pub fn try_take(&mut self, holder: &str) -> Result<bool> {
        match self.file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(
                    anyhow::Error::new(e).context(format!("locking {}", self.path.display()))
                );
            }
        }
        self.held = true;
        self.file
            .set_len(0)
            .and_then(|()| self.file.write_all(holder.as_bytes()))
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(true)
    }

    /// What the current holder wrote; `None` while it has written nothing yet (it writes
    /// right after locking: this waits up to half a second for it).
    pub fn holder(&self) -> Option<String> {
        for _ in 0..20 {
            let text = std::fs::read_to_string(&self.path).unwrap_or_default();
            if !text.trim().is_empty() {
                return Some(text);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        None
    }
}

impl Drop for LockFile {
    /// Empties the file when this holds the lock; the lock itself goes with the handle.
    fn drop(&mut self) {
        if self.held {
            let _ = self.file.set_len(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_file_names_it_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/run.lock");
        let mut first = LockFile::open(&path).unwrap();
        assert!(first.try_take("first").unwrap());
        let mut second = LockFile::open(&path).unwrap();
        assert!(!second.try_take("second").unwrap());
        assert_eq!(second.holder().as_deref(), Some("first"));
        // A refused opener leaves the holder's text alone when it goes.
        drop(second);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        drop(first);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let mut third = LockFile::open(&path).unwrap();
        assert!(third.try_take("third").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "third");
    }
}
