//! The session lock: one `goodgo dev` per workspace.
//!
//! `.goodgo/dev.lock`, held with an exclusive `flock` for the whole session and holding our
//! pid, so a second `dev` in the same workspace says who runs instead of fighting it. The
//! kernel releases the lock when the process ends, however it ends: no stale lock.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::error::UserError;

pub(super) struct Lock(std::fs::File);

impl Lock {
    pub(super) fn take(root: &Path) -> Result<Lock> {
        let dir = root.join(".goodgo");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("dev.lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder writes its pid right after locking: give it a moment.
                let mut pid = String::new();
                for _ in 0..20 {
                    pid = std::fs::read_to_string(&path).unwrap_or_default();
                    if !pid.trim().is_empty() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                let pid = pid.trim();
                let who = if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                };
                return Err(UserError::failed(format!(
                    "`goodgo dev` is already running in this workspace{who}"
                ))
                .with_hint("use that session, or stop it with Ctrl-C in its terminal")
                .into());
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(anyhow::Error::new(e).context(format!("locking {}", path.display())));
            }
        }
        file.set_len(0)?;
        std::io::Write::write_all(&mut file, std::process::id().to_string().as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    /// Empties the file; the lock itself goes with the file handle. The file stays, so
    /// nobody can lock a path that is being removed.
    fn drop(&mut self) {
        let _ = self.0.set_len(0);
    }
}
