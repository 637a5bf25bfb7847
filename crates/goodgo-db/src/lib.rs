//! GoodGo's database, as goodgo and the API use it.
//!
//! - [`migrations`]: the `V{n}__{name}.sql` files, read and validated (pure but for reading).
//! - [`runner`]: applying them with refinery under a PostgreSQL advisory lock, so that any
//!   number of concurrent runners apply each migration exactly once; and the status of a
//!   database against the files.
//! - [`admin`]: connecting, creating and dropping databases, arguments for libpq tools.
//! - [`schema`]: normalising `pg_dump --schema-only` output and diffing two schemas.
//! - [`seed`]: deterministic, realistic data loaded with COPY.
//! - [`search`]: the listing search query (shared with the API), built from filters.

pub mod admin;
pub mod migrations;
pub mod runner;
pub mod schema;
pub mod search;
pub mod seed;

use std::path::PathBuf;

/// What can go wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A migration file is wrong: bad name, duplicate version, SQL the server rejected.
    #[error("{}:{line}:{col}: {message}", path.display())]
    File {
        path: PathBuf,
        line: u32,
        col: u32,
        message: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    /// The database's history disagrees with the files.
    #[error("{0}")]
    History(String),
    #[error("{context}: {message}")]
    Postgres { context: String, message: String },
    #[error("{0}")]
    Other(String),
}

impl goodgo_diag::Diagnostic for DbError {
    fn class(&self) -> Option<goodgo_diag::Class> {
        Some(if self.is_input() {
            goodgo_diag::Class::Input
        } else {
            goodgo_diag::Class::Failed
        })
    }

    fn hint(&self) -> Option<String> {
        match self {
            DbError::Connect { .. } => Some(
                "is the server running? `goodgo doctor` checks the tools; the URL comes from --database-url, GOODGO_DATABASE_URL or goodgo.yaml".into(),
            ),
            DbError::History(_) => Some("`goodgo db status` shows every migration's state".into()),
            _ => None,
        }
    }

    fn location(&self) -> Option<goodgo_diag::Location<'_>> {
        match self {
            DbError::File {
                path,
                line,
                col,
                message,
            } => Some(goodgo_diag::Location {
                path,
                line: *line,
                col: *col,
                message,
            }),
            _ => None,
        }
    }
}

impl DbError {
    /// Bad input in a file the user wrote (exit 2), as opposed to a job that failed.
    pub fn is_input(&self) -> bool {
        matches!(self, DbError::File { .. })
    }

    pub(crate) fn pg(context: impl Into<String>, err: &tokio_postgres::Error) -> Self {
        DbError::Postgres {
            context: context.into(),
            message: describe(err),
        }
    }
}

/// A PostgreSQL error as one line: the server's message and detail, or the client's.
pub fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut out = db.message().to_string();
            if let Some(detail) = db.detail() {
                out.push_str(&format!(" ({detail})"));
            }
            out
        }
        None => {
            let mut out = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                out.push_str(&format!(": {s}"));
                source = s.source();
            }
            out
        }
    }
}
