//! What can go wrong with the database, as typed errors that keep their cause.
//!
//! Every variant says what was being done and keeps the lower error (`io::Error`, the
//! PostgreSQL client's error, refinery's) as its `#[source]`. The CLI's one renderer walks
//! that chain and asks [`goodgo_diag::Diagnostic`] for the exit class, a hint and, for a
//! problem in a migration file, its place.
//!
//! PostgreSQL errors are wrapped in [`PgError`] because tokio-postgres shows a server error
//! only as "db error": the wrapper shows what the server said (message, detail, hint), and
//! keeps the client's error for code that wants the SQLSTATE or the raw report.

use std::path::PathBuf;

use tokio_postgres::error::{DbError as ServerReport, SqlState};

/// What can go wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A migration file is wrong: a bad name, a duplicate version, text refinery refuses.
    #[error("{}:{line}:{col}: {message}", path.display())]
    File {
        path: PathBuf,
        line: u32,
        col: u32,
        message: String,
    },
    /// refinery refuses a migration file (its name or text), before any server sees it.
    #[error("{}:1:1: {source}", path.display())]
    Refused {
        path: PathBuf,
        /// refinery's message, for the rendered location.
        message: String,
        #[source]
        source: refinery_core::Error,
    },
    /// The server rejected a migration's SQL, at this place in its file.
    #[error("{}:{line}:{col}: {source}", path.display())]
    Rejected {
        path: PathBuf,
        line: u32,
        col: u32,
        /// `V{n}__{name}` of the migration that was not applied.
        migration: String,
        /// What the server said ([`PgError`]'s text), for the rendered location.
        message: String,
        #[source]
        source: PgError,
    },
    /// A migration that runs outside a transaction failed part-way (boxed: it is large).
    #[error("{}:{}:{}: {}", .0.path.display(), .0.line, .0.col, .0.source)]
    OutsideTransaction(#[source] Box<OutsideFailure>),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A database URL that does not parse (shown with its password hidden).
    #[error("bad database URL {url}: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: PgError,
    },
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: PgError,
    },
    /// A statement failed; `doing` says what goodgo was doing.
    #[error("{doing}: {source}")]
    Postgres {
        doing: String,
        #[source]
        source: PgError,
    },
    /// An applied migration's file changed since.
    #[error(
        "{file} was applied with checksum {applied} but the file now has {now}; applied migrations must not change (add a new migration instead)"
    )]
    Divergent {
        file: String,
        applied: String,
        now: String,
    },
    /// An applied migration's file is gone.
    #[error("{migration} is applied but its file is missing from the migrations folder")]
    MissingFile { migration: String },
    /// Seeding needs an empty database.
    #[error("the database already has {rows} users and listings; seeding is for an empty database")]
    NotEmpty { rows: i64 },
    #[error("hashing the development password: {source}")]
    PasswordHash {
        #[source]
        source: argon2::password_hash::Error,
    },
    /// No async runtime could be started for a blocking call.
    #[error("starting an async runtime: {source}")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
    /// A PostgreSQL program (pg_dump) could not be started.
    #[error("cannot run {}: {source}", tool.display())]
    Tool {
        tool: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A PostgreSQL program ran and failed; `stderr` is what it said.
    #[error("{tool} of {url} failed: {stderr}")]
    ToolFailed {
        tool: String,
        url: String,
        stderr: String,
    },
}

/// Where and how a migration outside a transaction failed: `ran` of `total` statements
/// stayed applied, and the migration is not recorded.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct OutsideFailure {
    pub path: PathBuf,
    pub line: u32,
    pub col: u32,
    /// `V{n}__{name}`.
    pub migration: String,
    pub ran: usize,
    pub total: usize,
    /// Invalid indexes left behind (a failed `CREATE INDEX CONCURRENTLY`).
    pub invalid: Vec<String>,
    /// What the server said ([`PgError`]'s text), for the rendered location.
    pub message: String,
    #[source]
    pub source: PgError,
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
            DbError::BadUrl { .. } => Some(
                "a database URL looks like postgres://USER:PASSWORD@HOST:PORT/DATABASE".into(),
            ),
            DbError::Rejected { migration, .. } => Some(format!(
                "{migration} was not applied (the migrations before it were); fix the file and run `goodgo db migrate` again"
            )),
            DbError::OutsideTransaction(f) => {
                let OutsideFailure {
                    migration,
                    ran,
                    total,
                    invalid,
                    ..
                } = &**f;
                let kept = match ran {
                    0 => "none of its statements ran".to_string(),
                    n => format!("its first {n} of {total} statements ran and stay applied"),
                };
                let drop = if invalid.is_empty() {
                    String::new()
                } else {
                    let stmts: Vec<String> = invalid
                        .iter()
                        .map(|i| format!("`DROP INDEX CONCURRENTLY {i};`"))
                        .collect();
                    format!(
                        "; the failed build left invalid index(es): remove with {}",
                        stmts.join(" ")
                    )
                };
                Some(format!(
                    "{migration} ran outside a transaction and is not recorded: {kept}{drop}; then fix the file (statements that may run again: IF NOT EXISTS) and run `goodgo db migrate` again"
                ))
            }
            DbError::Divergent { .. } | DbError::MissingFile { .. } => {
                Some("`goodgo db status` shows every migration's state".into())
            }
            DbError::NotEmpty { .. } => Some("`goodgo db reset` starts over".into()),
            DbError::Tool { .. } => Some("`goodgo doctor` says how to install it".into()),
            DbError::Postgres { doing, source }
                if doing.starts_with("creating database")
                    && source.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) =>
            {
                Some(
                    "the connecting role may not create databases, and this needs one of its own (to restore or check into): a superuser can allow it (`ALTER ROLE … CREATEDB`), or connect as a role that may".into(),
                )
            }
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
            }
            | DbError::Rejected {
                path,
                line,
                col,
                message,
                ..
            } => Some(goodgo_diag::Location {
                path,
                line: *line,
                col: *col,
                message,
            }),
            DbError::OutsideTransaction(f) => Some(goodgo_diag::Location {
                path: &f.path,
                line: f.line,
                col: f.col,
                message: &f.message,
            }),
            DbError::Refused { path, message, .. } => Some(goodgo_diag::Location {
                path,
                line: 1,
                col: 1,
                message,
            }),
            _ => None,
        }
    }
}

impl DbError {
    /// Bad input the user wrote (exit 2): a migration file, a database URL; as opposed to a
    /// job that failed.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            DbError::File { .. }
                | DbError::Refused { .. }
                | DbError::Rejected { .. }
                | DbError::OutsideTransaction(_)
                | DbError::BadUrl { .. }
        )
    }

    /// A failed statement, saying what was being done.
    pub(crate) fn pg(doing: impl Into<String>, err: tokio_postgres::Error) -> Self {
        DbError::Postgres {
            doing: doing.into(),
            source: PgError::from(err),
        }
    }

    /// The server's report, when a statement failed on the server.
    pub fn server_report(&self) -> Option<&ServerReport> {
        match self {
            DbError::Rejected { source, .. }
            | DbError::BadUrl { source, .. }
            | DbError::Connect { source, .. }
            | DbError::Postgres { source, .. } => source.as_db_error(),
            DbError::OutsideTransaction(f) => f.source.as_db_error(),
            _ => None,
        }
    }
}

/// An error from PostgreSQL or the client talking to it, shown in full.
///
/// tokio-postgres shows a server error as "db error" and puts the report one link below;
/// this shows the server's message, detail and hint on one line (see [`describe`]). A
/// server error ends the chain here (its report is the message); a client error (no
/// connection, a closed socket) continues with its cause, such as the `io::Error`.
#[derive(Debug)]
pub struct PgError {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Client(tokio_postgres::Error),
    /// refinery's error, which wraps the client's when a statement failed.
    Migration(refinery_core::Error),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(err: tokio_postgres::Error) -> Self {
        PgError {
            inner: Inner::Client(err),
        }
    }
}

impl From<refinery_core::Error> for PgError {
    fn from(err: refinery_core::Error) -> Self {
        PgError {
            inner: Inner::Migration(err),
        }
    }
}

impl PgError {
    /// The client's error: directly, or the one refinery wraps.
    pub fn postgres(&self) -> Option<&tokio_postgres::Error> {
        match &self.inner {
            Inner::Client(err) => Some(err),
            Inner::Migration(err) => postgres_in(err),
        }
    }

    /// refinery's error, when this came from applying migrations.
    pub fn refinery(&self) -> Option<&refinery_core::Error> {
        match &self.inner {
            Inner::Migration(err) => Some(err),
            Inner::Client(_) => None,
        }
    }

    /// The server's report (message, detail, hint, position, SQLSTATE).
    pub fn as_db_error(&self) -> Option<&ServerReport> {
        self.postgres().and_then(tokio_postgres::Error::as_db_error)
    }

    /// The SQLSTATE, when the server reported one.
    pub fn code(&self) -> Option<&SqlState> {
        self.postgres().and_then(tokio_postgres::Error::code)
    }
}

/// The client's error somewhere in refinery's chain.
pub(crate) fn postgres_in(err: &refinery_core::Error) -> Option<&tokio_postgres::Error> {
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        if let Some(pg) = c.downcast_ref::<tokio_postgres::Error>() {
            return Some(pg);
        }
        cause = c.source();
    }
    None
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.postgres(), &self.inner) {
            (Some(pg), _) => f.write_str(&describe(pg)),
            (None, Inner::Migration(err)) => write!(f, "{err}"),
            (None, Inner::Client(err)) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.postgres() {
            // The server's report is this error's text: nothing below adds to it.
            Some(pg) if pg.as_db_error().is_some() => None,
            Some(pg) => std::error::Error::source(pg),
            None => self.refinery().and_then(std::error::Error::source),
        }
    }
}

/// A PostgreSQL error as one line: the server's message, detail and hint, or the client's
/// message followed by its causes.
pub fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut out = db.message().to_string();
            if let Some(detail) = db.detail() {
                out.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                out.push_str(&format!(" (hint: {hint})"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use goodgo_diag::{Class, Diagnostic};

    #[test]
    fn each_error_says_its_class_hint_and_place() {
        let file = DbError::File {
            path: "migrations/V1_x.sql".into(),
            line: 1,
            col: 1,
            message: "bad name".into(),
        };
        assert_eq!(file.class(), Some(Class::Input));
        let location = file.location().unwrap();
        assert_eq!(
            (location.path, location.line, location.message),
            (std::path::Path::new("migrations/V1_x.sql"), 1, "bad name")
        );
        let divergent = DbError::Divergent {
            file: "migrations/V2__x.sql".into(),
            applied: "1".into(),
            now: "2".into(),
        };
        assert_eq!(divergent.class(), Some(Class::Failed));
        assert!(divergent.hint().unwrap().contains("goodgo db status"));
        assert!(divergent.location().is_none());
        let full = DbError::NotEmpty { rows: 3 };
        assert_eq!(full.class(), Some(Class::Failed));
        assert!(full.to_string().contains("already has 3"));
        assert_eq!(
            full.hint().as_deref(),
            Some("`goodgo db reset` starts over")
        );
        let tool = DbError::Tool {
            tool: "/nowhere/pg_dump".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(std::error::Error::source(&tool).is_some());
        assert!(
            tool.to_string()
                .starts_with("cannot run /nowhere/pg_dump: ")
        );
    }
}
