//! Running a Compose project's services, on the Docker engine or as native processes.
//!
//! The Compose model and the dependency order come from `goodgo-compose` (pure). This crate
//! is the I/O edge: [`docker`] drives the engine through its API (bollard), [`native`] runs
//! the images goodgo knows (PostgreSQL, Redis) as local processes tracked by pid files, and
//! [`probe`] holds what both need to know about ports and readiness. Both implement the one
//! [`Runtime`] trait, and [`up`] starts a request wave by wave on either. Neither prints:
//! they report [`Event`]s to a callback, and the CLI decides what a person sees; failures
//! are typed [`StackError`]s that keep their cause and say their class and hint.

pub mod docker;
mod error;
pub mod native;
pub mod probe;
pub mod runtime;
pub mod tarball;

use std::collections::BTreeMap;
use std::time::Duration;

use goodgo_compose::{Condition, Project, Service};
use serde::{Deserialize, Serialize};

pub use error::{EngineError, PortClash, StackError};
pub use runtime::{Runtime, ServiceStarter, up};

/// The images goodgo's repository builds itself (`cargo xtask images`, from
/// `compose/images`), for hints that name only steps that work.
pub const LOCAL_IMAGES: &[&str] = &["goodgo/postgres:15", "goodgo/redis:7"];

/// Labels goodgo puts on everything it creates, compatible with docker compose's own.
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
pub const LABEL_MANAGED: &str = "org.goodgo.managed-by";

/// What `up` was asked to do.
#[derive(Debug, Clone)]
pub struct UpRequest {
    pub project: String,
    /// Dependency waves of the services to run (names sorted within a wave).
    pub waves: Vec<Vec<String>>,
    /// How long to wait, in all, for every service to be up (and healthy where it has a check).
    pub timeout: Duration,
}

/// What happened to one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Created and started for the first time.
    Created,
    /// Its definition changed: replaced.
    Recreated,
    /// Existed with the same definition, was stopped: started again.
    Started,
    /// Running with the same definition: not touched.
    Unchanged,
}

/// Progress, for the caller to show.
#[derive(Debug, Clone)]
pub enum Event {
    Pulling {
        service: String,
        image: String,
    },
    /// A line of a pull or build; for a pull, the layer and its bytes so far and in all.
    PullProgress {
        image: String,
        layer: Option<String>,
        status: String,
        current: Option<u64>,
        total: Option<u64>,
    },
    Building {
        service: String,
    },
    Acting {
        service: String,
        action: Action,
    },
    Waiting {
        service: String,
        condition: &'static str,
    },
    Ready {
        service: String,
        after: Duration,
    },
    /// Something of the service's definition this runtime does not honour.
    Warning {
        service: String,
        message: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub service: String,
    pub action: Action,
    /// Milliseconds from the start of `up` until it was ready.
    pub ready_ms: u64,
}

/// A project's PostgreSQL as it runs now: the address its port is really published on and
/// the credentials it was started with. `db` commands connect to this rather than re-read
/// the Compose file with today's environment, which may name another port (or another
/// project's server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningDatabase {
    /// The Compose service.
    pub service: String,
    /// `docker` or `native`.
    pub runtime: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub db: String,
}

impl RunningDatabase {
    /// `postgres://user:password@host:port/db`, each part percent-encoded.
    pub fn url(&self) -> String {
        let password = self
            .password
            .as_deref()
            .map(|p| format!(":{}", percent_encode(p)))
            .unwrap_or_default();
        format!(
            "postgres://{}{password}@{}:{}/{}",
            percent_encode(&self.user),
            self.host,
            self.port,
            percent_encode(&self.db)
        )
    }
}

/// Percent-encodes what may not appear raw in a URL's user, password or path.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The address to connect to for a port published on `host_ip`: loopback for "all
/// interfaces" (`0.0.0.0`, `::`) or none.
pub fn connect_host(host_ip: Option<&str>) -> String {
    match host_ip {
        None | Some("" | "0.0.0.0" | "::") => "127.0.0.1".into(),
        Some(ip) => ip.to_string(),
    }
}

/// One row of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub runtime: &'static str,
    /// running, exited, created, …
    pub state: String,
    /// healthy, unhealthy, starting, or none without a healthcheck.
    pub health: String,
    pub ports: Vec<String>,
    pub uptime_s: Option<u64>,
    /// Container id or process id.
    pub id: String,
}

/// The services a request touches, by name.
pub fn services<'a>(project: &'a Project, waves: &[Vec<String>]) -> Vec<&'a Service> {
    waves
        .iter()
        .flatten()
        .filter_map(|name| project.services.get(name))
        .collect()
}

/// What a service's dependents wait for, strongest first.
pub fn needed_conditions(project: &Project, waves: &[Vec<String>]) -> BTreeMap<String, Condition> {
    let mut needed: BTreeMap<String, Condition> = BTreeMap::new();
    for service in services(project, waves) {
        for (dep, cond) in &service.depends_on {
            let entry = needed.entry(dep.clone()).or_insert(*cond);
            if rank(*cond) > rank(*entry) {
                *entry = *cond;
            }
        }
    }
    needed
}

fn rank(c: Condition) -> u8 {
    match c {
        Condition::Started => 0,
        Condition::Healthy => 1,
        Condition::CompletedSuccessfully => 2,
    }
}

/// What of a service's `deploy` section only a Swarm orchestrator applies, each named:
/// both runtimes warn with these on `up`.
pub fn swarm_warnings(service: &Service) -> Vec<String> {
    service
        .swarm
        .keys()
        .map(|key| {
            format!("`deploy.{key}` is kept for a Swarm deploy and not applied: a single engine has no orchestrator")
        })
        .collect()
}

/// Milliseconds, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
