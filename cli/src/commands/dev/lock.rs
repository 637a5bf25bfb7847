//! The session lock: one `goodgo dev` per workspace.
//!
//! `.goodgo/dev.lock` (an [`crate::ops::lockfile::LockFile`]), held for the whole session
//! and holding our pid, so a second `dev` in the same workspace says who runs instead of
//! fighting it.

use std::path::Path;

use anyhow::Result;

use crate::error::UserError;
use crate::ops::lockfile::LockFile;

/// Held until dropped.
pub(super) struct Lock {
    _file: LockFile,
}

impl Lock {
    pub(super) fn take(root: &Path) -> Result<Lock> {
        let mut file = LockFile::open(&root.join(".goodgo").join("dev.lock"))?;
        if file.try_take(&std::process::id().to_string())? {
            return Ok(Lock { _file: file });
        }
        let who = file
            .holder()
            .map(|pid| format!(" (pid {})", pid.trim()))
            .unwrap_or_default();
        Err(UserError::failed(format!(
            "`goodgo dev` is already running in this workspace{who}"
        ))
        .with_hint("use that session, or stop it with Ctrl-C in its terminal")
        .into())
    }
}
