//! What can go wrong with a backup, as typed errors that keep their cause.
//!
//! A backup that fails its checks (a file whose SHA-256 differs, a missing file, a manifest
//! that does not parse) is a failed job (exit 1) and names the file, and so is an S3
//! request that fails; an unknown backup id, a destination goodgo cannot read, a bad key or
//! a missing or wrong identity is bad input (exit 2).

use std::path::{Path, PathBuf};

use goodgo_diag::{Class, Diagnostic};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{doing} {}: {source}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A program (pg_dump, pg_restore) could not be started or failed.
    #[error("{program} failed: {message}")]
    Tool { program: String, message: String },
    #[error(transparent)]
    Db(#[from] goodgo_db::DbError),
    /// The manifest is missing, truncated or not a manifest of a format this version reads.
    #[error("{}: not a readable backup manifest: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    /// A file of the backup differs from what its manifest records.
    #[error("{}: {problem}", path.display())]
    Corrupt { path: PathBuf, problem: String },
    /// The restored data differs from what the manifest records.
    #[error("table {table}: {problem}")]
    Mismatch { table: String, problem: String },
    #[error("no backup {id} in {}", dest.display())]
    NotFound { id: String, dest: PathBuf },
    /// A request to the S3 API failed (after object_store's retries).
    #[error("{doing} {place}: {message}")]
    Remote {
        doing: &'static str,
        place: String,
        message: String,
    },
    /// An encrypted backup cannot be opened with the identity given (or none was given).
    #[error("{0}")]
    Identity(String),
    #[error("{0}")]
    Input(String),
}

impl BackupError {
    pub(crate) fn io(
        doing: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        BackupError::Io {
            doing,
            path: path.into(),
            source,
        }
    }

    /// Reading `path` failed: `missing` (given the path) when there is no such file, an
    /// I/O error otherwise.
    pub(crate) fn read_failed(
        path: &Path,
        e: std::io::Error,
        missing: impl FnOnce(PathBuf) -> Self,
    ) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            missing(path.to_path_buf())
        } else {
            BackupError::io("reading", path, e)
        }
    }
}

impl Diagnostic for BackupError {
    fn class(&self) -> Option<Class> {
        match self {
            BackupError::NotFound { .. } | BackupError::Input(_) | BackupError::Identity(_) => {
                Some(Class::Input)
            }
            BackupError::Db(e) => e.class(),
            _ => Some(Class::Failed),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            // Transparent: the database error is not a link of its own in the chain.
            BackupError::Db(e) => e.hint(),
            BackupError::NotFound { .. } => Some("`goodgo backup list` shows the backups there".into()),
            BackupError::Corrupt { .. } | BackupError::Manifest { .. } => Some(
                "this backup cannot be trusted: restore another one (`goodgo backup list`), and make a new one with `goodgo backup create`".into(),
            ),
            BackupError::Identity(_) => Some(
                "an identity file holds an `AGE-SECRET-KEY-1…` line (`age-keygen -o FILE` makes one); `age-keygen -y FILE` prints its public key, which must be among the backup's recipients (`backup.recipients`)".into(),
            ),
            BackupError::Remote { .. } => Some(
                "S3 settings come from the environment: AWS_ENDPOINT_URL (for a server other than AWS), AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; the bucket must exist".into(),
            ),
            BackupError::Tool { program, message }
                if program == "pg_restore"
                    && message.contains("ERROR:  role \"")
                    && message.contains("does not exist") =>
            {
                Some(
                    "the backup's objects belong to (or are granted to) roles this server does not have: create them first, or restore with --no-owner (every object the connecting user's, no GRANTs)".into(),
                )
            }
            BackupError::Tool { program, message }
                if program == "pg_dump" && message.contains("row-level security") =>
            {
                Some(
                "a row-level security policy hides rows from the connecting role, so pg_dump refuses to dump the table: back up as a superuser or a role with BYPASSRLS (or, as the table's owner, with NO FORCE ROW LEVEL SECURITY)".into(),
                )
            }
            BackupError::Tool { program, message }
                if program == "pg_dump" && message.contains("permission denied") =>
            {
                Some(
                    "the connecting role cannot read every object of the database: back up as its owner, a superuser, or a role granted pg_read_all_data (PostgreSQL 14 and later)".into(),
                )
            }
            BackupError::Tool { program, message }
                if program.starts_with("pg_")
                    && (message.contains("version") || message.contains("cannot start")) =>
            {
                Some(
                    "check that PostgreSQL's client tools match the server's major version (`goodgo doctor`), or set pg_bin_dir".into(),
                )
            }
            _ => None,
        }
    }
}
