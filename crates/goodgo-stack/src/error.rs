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
    /// Published ports already taken: every one of the request, not just the first.
    #[error("{}", clash_message(clashes))]
    PortTaken { clashes: Vec<PortClash> },
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
            StackError::PortTaken { clashes } => Some(clash_hint(clashes)),
            StackError::Connect { .. } => Some(
                "start the Docker engine (`goodgo doctor` checks it), or use `--runtime native`"
                    .into(),
            ),
            StackError::Pull { image, service, .. } => Some(pull_hint(service, image)),
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

/// A published port that something else holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortClash {
    pub service: String,
    /// The host address it is published on (`0.0.0.0` for all).
    pub ip: String,
    pub port: u16,
    /// Who holds it (`name (pid N)`, a container), when that can be told.
    pub holder: Option<String>,
    /// A free port near it, to suggest.
    pub free: Option<u16>,
    /// The variable the Compose file takes this port from (`REDIS_PORT`), when the caller
    /// found one: the stack crate sees only the resolved file.
    pub variable: Option<String>,
}

impl PortClash {
    /// A clash on `port`, with a free port near it to suggest.
    pub fn new(service: &str, ip: &str, port: u16, holder: Option<String>) -> PortClash {
        let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
        let free = (1..=100u16)
            .filter_map(|d| port.checked_add(d))
            .find(|p| crate::probe::port_is_free(ip, *p));
        PortClash {
            service: service.to_string(),
            ip: ip.to_string(),
            port,
            holder,
            free,
            variable: None,
        }
    }
}

fn clash_message(clashes: &[PortClash]) -> String {
    let by = |c: &PortClash| {
        c.holder
            .as_ref()
            .map(|h| format!(" by {h}"))
            .unwrap_or_default()
    };
    match clashes {
        [c] => format!(
            "port {} on {} for service `{}` is already taken{}",
            c.port,
            c.ip,
            c.service,
            by(c)
        ),
        _ => {
            let all: Vec<String> = clashes
                .iter()
                .map(|c| format!("{} on {} for `{}`{}", c.port, c.ip, c.service, by(c)))
                .collect();
            format!("ports already taken: {}", all.join("; "))
        }
    }
}

/// Stop the holders, or publish other ports: with the variables that set them when the
/// Compose file takes them from variables (`POSTGRES_PORT=5433 goodgo up`), else by
/// editing the service's `ports:`.
fn clash_hint(clashes: &[PortClash]) -> String {
    let them = if clashes.len() == 1 { "it" } else { "them" };
    let mut assignments = Vec::new();
    let mut edits = Vec::new();
    for c in clashes {
        match (&c.variable, c.free) {
            (Some(v), Some(free)) => assignments.push(format!("{v}={free}")),
            (Some(v), None) => assignments.push(format!("{v}=<port>")),
            (None, _) => edits.push(format!("`{}`", c.service)),
        }
    }
    let mut ways = Vec::new();
    if !assignments.is_empty() {
        ways.push(format!("`{} goodgo up`", assignments.join(" ")));
    }
    if !edits.is_empty() {
        ways.push(format!(
            "change the published port of {} (`ports:` in the Compose file)",
            edits.join(", ")
        ));
    }
    format!(
        "stop whatever holds {them}, or publish other ports: {}",
        ways.join(", and ")
    )
}

/// What to do about an image that is neither present nor pullable: only steps that work.
/// `cargo xtask images` builds goodgo's own images and nothing else; the native runtime
/// runs postgres, redis and minio (S3) images and nothing else.
pub fn pull_hint(service: &str, image: &str) -> String {
    if crate::LOCAL_IMAGES.contains(&image) {
        return format!(
            "no registry may be reachable from here: `cargo xtask images` builds {image} locally; or use `--runtime native`"
        );
    }
    let native = if crate::native::image_kind(image).is_some() {
        ", or use `--runtime native`"
    } else {
        ""
    };
    format!(
        "goodgo cannot build {image} and no registry answered: load it into the engine (`docker load -i <file>`, saved with `docker save` where a registry is reachable), give `{service}` a `build:` section, or leave `{service}` out (name the services to start, or drop its profile){native}"
    )
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
        assert!(
            err.hint()
                .is_some_and(|h| h.contains("load it into the engine"))
        );
        // Only goodgo's own images are said to be built by `cargo xtask images`, and only
        // images the native runtime runs are sent there: a hint names a step that works.
        let own = pull_hint("db", "goodgo/postgres:15");
        assert!(own.contains("cargo xtask images") && own.contains("--runtime native"));
        let web = pull_hint("web", "nginx:1.27");
        assert!(!web.contains("xtask") && !web.contains("--runtime native"));
        assert!(web.contains("docker load") && web.contains("leave `web` out"));
        assert!(pull_hint("cache", "redis:7").contains("--runtime native"));
        // MinIO runs natively as s3s-fs.
        assert!(pull_hint("minio", "minio/minio:latest").contains("--runtime native"));
        let io = StackError::io("writing", "/x/pid")(std::io::Error::other("disk full"));
        assert_eq!(io.to_string(), "writing /x/pid");
        assert!(std::error::Error::source(&io).is_some());
        let unsupported = StackError::Unsupported {
            message: "no".into(),
            hint: None,
        };
        assert_eq!(unsupported.class(), Some(Class::Input));
    }

    #[test]
    fn taken_ports_are_all_named_with_the_variable_that_moves_each() {
        let clash = |service: &str, port: u16, variable: Option<&str>| PortClash {
            service: service.into(),
            ip: "127.0.0.1".into(),
            port,
            holder: Some("x (pid 1)".into()),
            free: Some(port + 1),
            variable: variable.map(str::to_string),
        };
        let one = StackError::PortTaken {
            clashes: vec![clash("redis", 6379, Some("REDIS_PORT"))],
        };
        assert_eq!(
            one.to_string(),
            "port 6379 on 127.0.0.1 for service `redis` is already taken by x (pid 1)"
        );
        assert_eq!(
            one.hint().unwrap(),
            "stop whatever holds it, or publish other ports: `REDIS_PORT=6380 goodgo up`"
        );
        let two = StackError::PortTaken {
            clashes: vec![
                clash("postgres", 5432, Some("POSTGRES_PORT")),
                clash("redis", 6379, None),
            ],
        };
        assert_eq!(
            two.to_string(),
            "ports already taken: 5432 on 127.0.0.1 for `postgres` by x (pid 1); 6379 on 127.0.0.1 for `redis` by x (pid 1)"
        );
        assert_eq!(
            two.hint().unwrap(),
            "stop whatever holds them, or publish other ports: `POSTGRES_PORT=5433 goodgo up`, and change the published port of `redis` (`ports:` in the Compose file)"
        );
    }
}
