//! The deploy lock: one deploy (or rollback, or `down`) at a time per target.
//!
//! `.goodgo/deploy/<target>/lock` (an [`crate::ops::lockfile::LockFile`]), held for the
//! whole run; the holder writes who it is (user, host, pid, command, since) into it, so a
//! second deploy waits saying whose turn it is, and gives up after `--lock-timeout`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::UserError;
use crate::ops::lockfile::LockFile;
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

/// Held until dropped.
pub struct Lock {
    _file: LockFile,
}

impl Lock {
    /// Takes the lock in `dir`, waiting up to `timeout` for its holder.
    pub fn take(dir: &Path, me: &Holder, timeout: Duration, printer: &Printer) -> Result<Lock> {
        let mut file = LockFile::open(&dir.join("lock"))?;
        let text = serde_json::to_string(me)?;
        let start = Instant::now();
        let mut said = false;
        while !file.try_take(&text)? {
            let holder = file
                .holder()
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
        Ok(Lock { _file: file })
    }
}
