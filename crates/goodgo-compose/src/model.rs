//! The resolved Compose model: what a runtime needs to run each service.
//!
//! Why its own module: these types are the contract between the loader and the runtimes
//! (the Docker-engine one and the native-process one), and the input of `--json` output and
//! of [`config_hash`](crate::config_hash). Everything in them is resolved: variables
//! interpolated, short syntax expanded, relative host paths made absolute, `env_file`
//! merged into `environment`. Maps are `BTreeMap`s so serialization (and so the hash) never
//! depends on iteration order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use goodgo_yaml::Pos;
use serde::Serialize;

use crate::syntax;

/// A published or container port; defined with its parser, the short port syntax.
pub use crate::syntax::Port;

/// A loaded Compose file.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Project {
    /// The top-level `name`, if the file sets one (the runtime picks a default otherwise).
    pub name: Option<String>,
    /// The Compose file's folder, absolute: relative paths in the file are resolved against it.
    pub dir: PathBuf,
    /// The file as shown in messages (the `shown` argument of [`load`](crate::load)).
    pub file: PathBuf,
    pub services: BTreeMap<String, Service>,
    pub volumes: BTreeMap<String, VolumeDef>,
    /// Declared networks, plus `default` when a service uses it.
    pub networks: BTreeMap<String, NetworkDef>,
    pub secrets: BTreeMap<String, SecretDef>,
    /// Warnings: keys read but not acted on, unset variables. Never errors.
    pub diagnostics: Vec<Diagnostic>,
}

/// One service, resolved.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Service {
    pub name: String,
    /// Where the service's key is written. Not part of [`config_hash`](crate::config_hash).
    pub pos: Pos,
    pub image: Option<String>,
    pub build: Option<Build>,
    pub command: Option<CommandLine>,
    pub entrypoint: Option<CommandLine>,
    /// `env_file` entries first, then `environment` over them. A key written without a value
    /// takes it from the environment lookup (then `.env`), or is dropped when unset.
    pub environment: BTreeMap<String, String>,
    pub ports: Vec<Port>,
    /// `volumes` and `tmpfs`, in that order.
    pub volumes: Vec<Mount>,
    /// The networks the service joins; `["default"]` when the file names none.
    pub networks: Vec<String>,
    /// Per-network settings, only for networks that have some.
    pub network_settings: BTreeMap<String, NetworkAttachment>,
    pub healthcheck: Option<Healthcheck>,
    /// Dependencies that exist in the file (an absent optional one is left out).
    pub depends_on: BTreeMap<String, Condition>,
    /// Dependencies written with `required: false`: skipped when disabled by a profile.
    pub optional_deps: BTreeSet<String>,
    /// Where each `depends_on` entry is written, for messages. Not serialized.
    #[serde(skip)]
    pub depends_on_pos: BTreeMap<String, Pos>,
    pub restart: Option<String>,
    pub profiles: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub container_name: Option<String>,
    /// Normalized: `3000`, `3000/udp`, `3000-3005`.
    pub expose: Vec<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub stop_signal: Option<String>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub stop_grace_period: Option<Duration>,
    pub secrets: Vec<SecretRef>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub platform: Option<String>,
    pub working_dir: Option<String>,
    pub init: Option<bool>,
    pub tty: bool,
    pub stdin_open: bool,
    pub extra_hosts: Vec<HostEntry>,
}

/// A `command` or `entrypoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandLine {
    /// Written as one string: split shell-style, without a shell.
    Shell(String),
    /// Written as a list: taken as is.
    Exec(Vec<String>),
}

impl CommandLine {
    /// The argument vector. A string command is split like a POSIX shell splits words
    /// (quotes, backslashes), without expansion; the loader has checked it splits.
    pub fn to_argv(&self) -> Vec<String> {
        match self {
            CommandLine::Exec(argv) => argv.clone(),
            CommandLine::Shell(text) => syntax::shlex_split(text)
                .unwrap_or_else(|_| text.split_whitespace().map(str::to_string).collect()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
}

/// A volume, bind mount or tmpfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub kind: MountKind,
    /// Volume: its name in `volumes:` (`None`: anonymous). Bind: an absolute host path.
    /// Tmpfs: `None`.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Healthcheck {
    /// `["CMD", ..]`, `["CMD-SHELL", ".."]` or `["NONE"]`; empty: the image's own test with
    /// the timings given here.
    pub test: Vec<String>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub interval: Option<Duration>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub start_period: Option<Duration>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub start_interval: Option<Duration>,
    /// `disable: true`, or a test of `["NONE"]`.
    pub disable: bool,
}

/// When a dependent may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Condition {
    #[serde(rename = "service_started")]
    Started,
    #[serde(rename = "service_healthy")]
    Healthy,
    #[serde(rename = "service_completed_successfully")]
    CompletedSuccessfully,
}

impl Condition {
    /// The name Compose files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Build {
    /// Absolute: resolved against the Compose file's folder.
    pub context: PathBuf,
    /// Relative to the context, as written.
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    /// An arg written without a value takes it from the environment lookup, or is dropped.
    pub args: BTreeMap<String, String>,
}

/// A service's use of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    /// The name under top-level `secrets:`.
    pub source: String,
    /// Where it appears; `None`: `/run/secrets/<source>`.
    pub target: Option<String>,
}

impl SecretRef {
    /// The path of the secret's file in the container: `target` when absolute, else
    /// `/run/secrets/<target or source>`.
    pub fn mount_path(&self) -> String {
        match &self.target {
            Some(t) if t.starts_with('/') => t.clone(),
            Some(t) => format!("/run/secrets/{t}"),
            None => format!("/run/secrets/{}", self.source),
        }
    }
}

/// An `extra_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostEntry {
    pub host: String,
    pub ip: String,
}

/// How a service joins one network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NetworkAttachment {
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
}

/// A top-level volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VolumeDef {
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub external: bool,
    /// The engine-side name, when set explicitly.
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// A top-level network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NetworkDef {
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub external: bool,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: Option<bool>,
    pub ipam: Option<Ipam>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Ipam {
    pub driver: Option<String>,
    pub config: Vec<IpamPool>,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct IpamPool {
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    pub aux_addresses: BTreeMap<String, String>,
}

/// A top-level secret.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SecretDef {
    /// Absolute: resolved against the Compose file's folder.
    pub file: Option<PathBuf>,
    /// The variable holding the secret's value.
    pub environment: Option<String>,
    pub external: bool,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
}

/// A warning about the file, located like an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub path: PathBuf,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}: {level}: {}",
            self.path.display(),
            self.pos,
            self.message
        )
    }
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&syntax::format_duration(*d)),
        None => s.serialize_none(),
    }
}
