//! Backups of the GoodGo database that are proven by restoring them.
//!
//! A backup is a folder (or an S3 key prefix): the real `pg_dump --format=directory
//! --jobs N` output, each data file compressed with zstd (PostgreSQL 15's pg_dump offers
//! only gzip), every file optionally encrypted with age, and a `manifest.json` written last
//! with every file's size and SHA-256 and every table's row count and content hash
//! (computed by the server in the dump's own snapshot). The format is documented in
//! docs/backup.md. [`create`] makes one, [`check`] verifies and restores one, [`store`]
//! lists, locates and deletes them at a local or S3 destination, [`crypt`] encrypts and
//! decrypts, [`policy`] decides which ones `prune` keeps. Nothing here prints: progress
//! goes through a callback.

mod error;
mod follow;

pub mod check;
pub mod create;
pub mod crypt;
pub mod lines;
pub mod load;
pub mod manifest;
pub mod policy;
pub mod stats;
pub mod store;

use std::path::PathBuf;

pub use error::BackupError;
pub use manifest::{Manifest, MigrationCheck, Verified};

/// The PostgreSQL programs a backup runs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
}

/// What a job reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    /// pg_dump is starting on `tables` tables (which are being hashed meanwhile, and its
    /// files packed as it writes them).
    Dumping { tables: usize },
    /// A backup's files are being checked (and, restoring, decompressed): `total` bytes
    /// in all.
    Bytes { total: u64 },
    /// `n` more bytes done.
    Advance(u64),
    /// The bytes to go through in all: a dump's is estimated from its tables' size while
    /// it runs, then exact.
    Total(u64),
    /// pg_restore is running.
    Restoring,
    /// The rows of `table` (its quoted name) are being loaded on `connections` connections
    /// at once, while pg_restore loads the other tables.
    Loading { table: String, connections: usize },
    /// Tables are being counted and hashed (after a restore's data, while pg_restore
    /// builds the indexes and constraints).
    Hashing,
}

/// A failed statement, saying what was being done.
pub(crate) fn pg(doing: String, source: tokio_postgres::Error) -> BackupError {
    BackupError::Db(goodgo_db::DbError::Postgres {
        doing,
        source: source.into(),
    })
}

/// `pg_restore --list` of the dump in `dump`.
pub(crate) fn list_of(tools: &Tools, dump: &std::path::Path) -> Result<String, BackupError> {
    let mut command = std::process::Command::new(&tools.pg_restore);
    command.arg("--list").arg(dump);
    let out = tool_output(command, "pg_restore")?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Runs `program` to completion; its stderr is the error message when it fails.
pub(crate) fn run_tool(command: std::process::Command, program: &str) -> Result<(), BackupError> {
    tool_output(command, program).map(drop)
}

/// Runs `program` to completion and returns its standard output; its stderr is the error
/// message when it fails.
pub(crate) fn tool_output(
    mut command: std::process::Command,
    program: &str,
) -> Result<Vec<u8>, BackupError> {
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| BackupError::Tool {
            program: program.to_string(),
            message: format!("cannot start it: {e}"),
        })?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(BackupError::Tool {
        program: program.to_string(),
        message: format!("{} ({})", stderr.trim(), output.status),
    })
}
