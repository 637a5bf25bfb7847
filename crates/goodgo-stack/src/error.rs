//! What can go wrong while running services, and what goodgo's one renderer is told about it.
//!
//! Every failure keeps its cause as `#[source]` (the engine's error, the I/O error) and
//! says, through [`goodgo_diag::Diagnostic`], whether it is bad input or a failed job and
//! what to do next. Nothing here prints; a failed service's last log lines travel in the
//! error ([`StackError::logs`]) for the caller to show.

use std::path::PathBuf;

use goodgo_diag::{Class, Diagnostic};

/// What can go wrong while running services.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The request cannot be served as asked (an image goodgo cannot run natively, …).
    #[error("{message}")]
    Unsupported {
        message: String,
        hint: Option<String>,
    },
    /// A published port is already taken.
    #[error("{message}")]
    PortTaken { message: String, hint: String },
    /// A service did not come up; `logs` are its last lines.
    #[error("{message}")]
    Failed {
        message: String,
        logs: Vec<String>,
        hint: Option<String>,
    },
    /// The Docker engine cannot be reached.
    #[error("cannot reach the Docker engine")]
    Connect {
        #[source]
        source: EngineError,
    },
    /// The engine failed a request; `doing` says which (`creating container shop-db-1`).
    #[error("{doing}")]
    Engine {
        doing: String,
        #[source]
        source: EngineError,
    },
    /// A missing image the engine could not pull.
    #[error("image {image} for service `{service}` is not present locally and could not be pulled")]
    Pull {
        service: String,
        image: String,
        #[source]
        source: EngineError,
    },
    /// A service's image did not build; `logs` are the build's last lines.
    #[error("building the image of `{service}` failed")]
    Build {
        service: String,
        logs: Vec<String>,
        #[source]
        source: EngineError,
    },
    /// A container name that another project (or no project) already uses.
    #[error("a container named {name} already exists and is not this project's")]
    NameTaken {
        name: String,
        #[source]
        source: EngineError,
    },
    /// A service's build context could not be packed.
    #[error("packing the build context of `{service}`")]
    Context {
        service: String,
        #[source]
        source: crate::tarball::PackError,
    },
    /// A native PostgreSQL service's database could not be looked up or created.
    #[error("creating database {database} for `{service}`")]
    Database {
        service: String,
        database: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file or folder of the native runtime's state could not be read or written.
    #[error("{doing} {}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A program the native runtime runs could not be started.
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// What the engine said when it failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The API call itself failed.
    #[error(transparent)]
    Api(#[from] bollard::errors::Error),
    /// An error the engine reported inside a stream (a pull or build step).
    #[error("{0}")]
    Reported(String),
    /// The engine's unix socket is not there (or cannot be looked at).
    #[error("no socket at {}", path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("the Docker engine did not answer within {0} s")]
    Timeout(u64),
    /// A blocking task (packing a context) did not finish.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

impl StackError {
    /// The engine failed while `doing` something.
    pub(crate) fn engine(doing: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let doing = doing.into();
        move |e| StackError::Engine {
            doing,
            source: EngineError::Api(e),
        }
    }

    /// An I/O error while `doing` something to `path`.
    pub(crate) fn io(
        doing: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StackError::Io {
            doing,
            path,
            source,
        }
    }

    /// A failed service's (or build's) last log lines, for the caller to show.
    pub fn logs(&self) -> &[String] {
        match self {
            StackError::Failed { logs, .. } | StackError::Build { logs, .. } => logs,
            _ => &[],
        }
    }
}

impl Diagnostic for StackError {
    fn class(&self) -> Option<Class> {
        match self {
            StackError::Unsupported { .. } => Some(Class::Input),
            _ => Some(Class::Failed),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            StackError::Unsupported { hint, .. } | StackError::Failed { hint, .. } => hint.clone(),
            StackError::PortTaken { hint, .. } => Some(hint.clone()),
            StackError::Connect { .. } => Some(
                "start the Docker engine (`goodgo doctor` checks it), or use `--runtime native`"
                    .into(),
            ),
            StackError::Pull { image, .. } => Some(format!(
                "no registry may be reachable from here: build {image} locally (`cargo xtask images` builds goodgo/postgres:15 and goodgo/redis:7; a `build:` section builds a service's own image), or use `--runtime native`"
            )),
            StackError::NameTaken { name, .. } => Some(format!(
                "remove it (`docker rm -f {name}`) or set another project name with -p"
            )),
            StackError::Engine { .. }
            | StackError::Build { .. }
            | StackError::Context { .. }
            | StackError::Database { .. }
            | StackError::Io { .. }
            | StackError::Spawn { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_failures_keep_their_cause_and_say_their_class() {
        let err = StackError::Pull {
            service: "db".into(),
            image: "x:1".into(),
            source: EngineError::Reported("manifest unknown".into()),
        };
        assert_eq!(
            std::error::Error::source(&err).map(ToString::to_string),
            Some("manifest unknown".to_string())
        );
        assert_eq!(err.class(), Some(Class::Failed));
        assert!(err.hint().is_some_and(|h| h.contains("cargo xtask images")));
        let io = StackError::io("writing", "/x/pid")(std::io::Error::other("disk full"));
        assert_eq!(io.to_string(), "writing /x/pid");
        assert!(std::error::Error::source(&io).is_some());
        let unsupported = StackError::Unsupported {
            message: "no".into(),
            hint: None,
        };
        assert_eq!(unsupported.class(), Some(Class::Input));
    }
}
