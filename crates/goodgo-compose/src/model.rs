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
    /// The file as shown in messages (the `shown` argument of [`load`](crate::load)); with
    /// several files, the first.
    pub file: PathBuf,
    /// Every file read, as shown: those given, then those they include or extend.
    pub files: Vec<PathBuf>,
    pub services: BTreeMap<String, Service>,
    pub volumes: BTreeMap<String, VolumeDef>,
    /// Declared networks, plus `default` when a service uses it.
    pub networks: BTreeMap<String, NetworkDef>,
    pub secrets: BTreeMap<String, SecretDef>,
    pub configs: BTreeMap<String, ConfigDef>,
    /// Warnings: keys read but not acted on, unset variables. Never errors.
    pub diagnostics: Vec<Diagnostic>,
}

/// One service, resolved.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Service {
    pub name: String,
    /// Where the service's key is written. Not part of [`config_hash`](crate::config_hash).
    pub pos: Pos,
    /// The file `pos` is in, as shown. Not serialized.
    #[serde(skip)]
    pub file: PathBuf,
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
    pub depends_on_pos: BTreeMap<String, Place>,
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
    /// Left out of the hash when empty, so services without configs keep their hash.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ConfigRef>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub platform: Option<String>,
    pub working_dir: Option<String>,
    pub init: Option<bool>,
    pub tty: bool,
    pub stdin_open: bool,
    pub extra_hosts: Vec<HostEntry>,
    /// `network_mode`: the container shares another network namespace instead of joining
    /// the project's networks (`networks` is then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    /// Privileges, namespaces, limits and devices; left out of the hash when unset, so
    /// services that set none keep the hash they had before these keys were read.
    #[serde(skip_serializing_if = "HostSettings::is_unset")]
    pub host: HostSettings,
    /// When to pull (or build) the image; `None`: when it is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    /// `deploy` keys that steer a Swarm orchestrator (`placement`, `update_config`, …), kept
    /// as written (JSON) for a Swarm deploy; a single engine does not apply them, and they
    /// are not part of the hash.
    #[serde(skip)]
    pub swarm: BTreeMap<String, serde_json::Value>,
}

impl Service {
    /// Where the `depends_on` entry for `dep` is written (else the service's key).
    pub fn dependency_place(&self, dep: &str) -> Place {
        self.depends_on_pos.get(dep).cloned().unwrap_or(Place {
            file: self.file.clone(),
            pos: self.pos,
        })
    }
}

/// A place in a Compose file, for messages: the file as shown, and the position.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    pub file: PathBuf,
    pub pos: Pos,
}

/// A service's `network_mode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The host's network stack.
    Host,
    /// A loopback interface only.
    None,
    /// The engine's default bridge, outside the project's networks.
    Bridge,
    /// Another service's container's namespace: started after that service.
    Service(String),
    /// A container not of this project, by name or id.
    Container(String),
}

impl NetworkMode {
    /// As Compose files write it: `host`, `service:db`, …
    pub fn as_compose(&self) -> String {
        match self {
            NetworkMode::Host => "host".into(),
            NetworkMode::None => "none".into(),
            NetworkMode::Bridge => "bridge".into(),
            NetworkMode::Service(s) => format!("service:{s}"),
            NetworkMode::Container(c) => format!("container:{c}"),
        }
    }
}

/// `pull_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Pull on every `up`, even when present.
    Always,
    /// Pull when missing (the default; `if_not_present` too).
    Missing,
    /// Never pull: a missing image is an error.
    Never,
    /// Build from `build` on every `up`.
    Build,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "always",
            PullPolicy::Missing => "missing",
            PullPolicy::Never => "never",
            PullPolicy::Build => "build",
        }
    }
}

/// What a container gets from the host beyond the common keys.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HostSettings {
    pub privileged: bool,
    pub read_only: bool,
    /// `pid`, `ipc`, `uts`, `userns_mode`, `cgroup` (namespace modes), as written.
    pub pid: Option<String>,
    pub ipc: Option<String>,
    pub uts: Option<String>,
    pub userns_mode: Option<String>,
    pub cgroup: Option<String>,
    pub cgroup_parent: Option<String>,
    pub security_opt: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Bytes.
    pub shm_size: Option<u64>,
    pub devices: Vec<Device>,
    pub group_add: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_opt: Vec<String>,
    pub domainname: Option<String>,
    pub logging: Option<Logging>,
    pub limits: Limits,
}

impl HostSettings {
    /// Whether the file set none of these.
    pub fn is_unset(&self) -> bool {
        *self == HostSettings::default()
    }

    /// The Compose keys that set these settings (`privileged`, `mem_limit`, …), for a
    /// runtime to name what it does not apply.
    pub fn keys(&self) -> Vec<&'static str> {
        let l = &self.limits;
        [
            ("privileged", self.privileged),
            ("read_only", self.read_only),
            ("pid", self.pid.is_some()),
            ("ipc", self.ipc.is_some()),
            ("uts", self.uts.is_some()),
            ("userns_mode", self.userns_mode.is_some()),
            ("cgroup", self.cgroup.is_some()),
            ("cgroup_parent", self.cgroup_parent.is_some()),
            ("security_opt", !self.security_opt.is_empty()),
            ("sysctls", !self.sysctls.is_empty()),
            ("ulimits", !self.ulimits.is_empty()),
            ("shm_size", self.shm_size.is_some()),
            ("devices", !self.devices.is_empty()),
            ("group_add", !self.group_add.is_empty()),
            ("dns", !self.dns.is_empty()),
            ("dns_search", !self.dns_search.is_empty()),
            ("dns_opt", !self.dns_opt.is_empty()),
            ("domainname", self.domainname.is_some()),
            ("logging", self.logging.is_some()),
            ("mem_limit", l.memory.is_some()),
            ("mem_reservation", l.memory_reservation.is_some()),
            ("memswap_limit", l.memswap.is_some()),
            ("cpus", l.nano_cpus.is_some()),
            ("cpu_shares", l.cpu_shares.is_some()),
            ("cpu_quota", l.cpu_quota.is_some()),
            ("cpu_period", l.cpu_period.is_some()),
            ("cpuset", l.cpuset.is_some()),
            ("pids_limit", l.pids.is_some()),
            ("oom_score_adj", l.oom_score_adj.is_some()),
            ("oom_kill_disable", l.oom_kill_disable.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

/// A `ulimits` entry: one number is both limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

/// A `devices` entry: `host[:container[:permissions]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub host: String,
    pub container: String,
    /// `rwm` or a part of it.
    pub permissions: String,
}

/// `logging`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Logging {
    pub driver: Option<String>,
    pub options: BTreeMap<String, String>,
}

/// CPU, memory and process limits: from `mem_limit`, `cpus`, … and
/// `deploy.resources` (which wins where both are set).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    pub memory_reservation: Option<u64>,
    /// Bytes of memory plus swap; `-1`: unlimited swap.
    pub memswap: Option<i64>,
    /// Billionths of a CPU (`cpus: 1.5` is 1 500 000 000).
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpuset: Option<String>,
    pub pids: Option<i64>,
    pub oom_score_adj: Option<i64>,
    pub oom_kill_disable: Option<bool>,
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
    /// Options of the long syntax (and a short tmpfs entry's); left out of the hash when
    /// none is set.
    #[serde(skip_serializing_if = "MountOptions::is_unset")]
    pub options: MountOptions,
}

/// What a mount's long syntax can add.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MountOptions {
    /// Tmpfs: its size in bytes, and the mode of its root (octal as written: `1777`).
    pub tmpfs_size: Option<u64>,
    pub tmpfs_mode: Option<u32>,
    /// Bind: `rprivate`, `shared`, …
    pub propagation: Option<String>,
    /// Bind: relabel the host path for SELinux, `z` (shared) or `Z` (private); left out of
    /// the hash when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
    /// Volume: do not copy the image's content into a new volume.
    pub nocopy: bool,
    /// Volume: mount only this path inside it.
    pub subpath: Option<String>,
}

impl MountOptions {
    pub fn is_unset(&self) -> bool {
        *self == MountOptions::default()
    }
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
    /// `dockerfile_inline`: the Dockerfile's text, used instead of a file of the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
}

/// Where the files of secrets live in a container unless their `target` is absolute.
pub const SECRETS_DIR: &str = "/run/secrets";

/// A service's use of a secret or a config: the file it gets in its container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// The name under the top-level `secrets:` or `configs:`.
    pub source: String,
    /// Where it appears, as written; `None`: named after `source` (see
    /// [`secret_path`](Self::secret_path) and [`config_path`](Self::config_path)).
    pub target: Option<String>,
    /// Owner, group (numeric ids, as written) and mode of the file; left out of the hash
    /// when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// What the file holds, from the top-level definition.
    pub from: FileSource,
}

/// A secret's use; see [`FileRef`].
pub type SecretRef = FileRef;
/// A config's use; see [`FileRef`].
pub type ConfigRef = FileRef;

impl FileRef {
    /// The path of a secret's file in the container: `target` when absolute, else
    /// `/run/secrets/<target or source>`.
    pub fn secret_path(&self) -> String {
        self.path_under(SECRETS_DIR)
    }

    /// The path of a config's file in the container: `target` when absolute, else
    /// `/<target or source>`.
    pub fn config_path(&self) -> String {
        self.path_under("")
    }

    fn path_under(&self, dir: &str) -> String {
        match &self.target {
            Some(t) if t.starts_with('/') => t.clone(),
            Some(t) => format!("{dir}/{t}"),
            None => format!("{dir}/{}", self.source),
        }
    }

    /// Whether the runtime writes the file into the container (text, or a host file with
    /// an owner, group or mode to honour) rather than bind-mounting the host file.
    pub fn is_copied(&self) -> bool {
        matches!(self.from, FileSource::Text(_))
            || self.uid.is_some()
            || self.gid.is_some()
            || self.mode.is_some()
    }

    /// The file's mode in the container when copied: `mode`, else `0444` (as Compose).
    pub fn copied_mode(&self) -> u32 {
        self.mode.unwrap_or(0o444)
    }
}

/// What a secret's or config's file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A host file (`file:`), absolute.
    File(PathBuf),
    /// Text: a config's `content`, or the value of the variable `environment` names.
    Text(String),
}

/// Serialized (for the hash) as the host path, or as the SHA-256 of the text: a secret's
/// value is never written out, yet a changed value changes the hash.
impl Serialize for FileSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use sha2::Digest as _;
        use std::fmt::Write as _;
        match self {
            FileSource::File(path) => s.serialize_newtype_variant("FileSource", 0, "file", path),
            FileSource::Text(text) => {
                let hex = sha2::Sha256::digest(text.as_bytes()).iter().fold(
                    String::with_capacity(64),
                    |mut hex, b| {
                        let _ = write!(hex, "{b:02x}");
                        hex
                    },
                );
                s.serialize_newtype_variant("FileSource", 1, "text_sha256", &hex)
            }
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

/// A top-level secret or config: where its content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FileObjectDef {
    /// Absolute: resolved against the folder of the file it is written in.
    pub file: Option<PathBuf>,
    /// The text itself (configs only).
    pub content: Option<String>,
    /// The variable holding the content.
    pub environment: Option<String>,
    pub external: bool,
    pub name: Option<String>,
}

/// A top-level secret; see [`FileObjectDef`].
pub type SecretDef = FileObjectDef;
/// A top-level config; see [`FileObjectDef`].
pub type ConfigDef = FileObjectDef;

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
