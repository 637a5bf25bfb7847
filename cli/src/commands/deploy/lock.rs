//! The deploy lock: one deploy (or rollback, or `down`) at a time per target.
//!
//! `.goodgo/deploy/<target>/lock`, held with an exclusive `flock` for the whole run; the
//! holder writes who it is (user, host, pid, command, since) into it, so a second deploy
//! waits saying whose turn it is, and gives up after `--lock-timeout`. The kernel releases
//! a flock when its process ends, however it ends: the lock of a crashed or killed deploy
//! expires with it, and its stale text is simply overwritten by the next holder.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::error::UserError;
use crate::printer::Printer;

/// Who holds the lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub since: String,
}

impl Holder {
    pub fn me(command: &str) -> Holder {
        Holder {
            user: super::history::user(),
            host: super::history::host(),
            pid: std::process::id(),
            command: command.to_string(),
            since: super::history::now(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{}@{} (pid {}, `{}`, since {})",
            self.user, self.host, self.pid, self.command, self.since
        )
    }
}

pub struct Lock(std::fs::File);

impl Lock {
    /// Takes the lock in `dir`, waiting up to `timeout` for its holder.
    pub fn take(dir: &Path, me: &Holder, timeout: Duration, printer: &Printer) -> Result<Lock> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let start = Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("locking {}", path.display()))
                    );
                }
            }
            let holder = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<Holder>(&t).ok())
                .map(|h| h.describe())
                .unwrap_or_else(|| "another goodgo".into());
            if start.elapsed() >= timeout {
                return Err(UserError::failed(format!(
                    "another deploy of this target still runs after {} s: {holder}",
                    timeout.as_secs()
                ))
                .with_hint("wait for it, or give it longer with --lock-timeout")
                .into());
            }
            if !said {
                printer.status(&format!(
                    "waiting for the deploy lock, held by {holder} (--lock-timeout {} s)",
                    timeout.as_secs()
                ));
                said = true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        file.set_len(0)?;
        let text = serde_json::to_string(me)?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    /// Empties the file; the lock goes with the handle.
    fn drop(&mut self) {
        let _ = self.0.set_len(0);
    }
}
