//! From the positioned tree to the resolved [`Project`].
//!
//! Why its own module: this is where Compose's many shapes meet goodgo's one model, and
//! where goodgo decides, key by key, what it does with a file written for `docker compose`:
//! read it (the model has a field for it), warn that it is ignored (the service still runs
//! as meant without it), or refuse the file (ignoring the key would change what runs).
//! The three lists are below, each entry with its reason, and every message names the key
//! with its full path (`services.db.deploy.resources`) at its `line:col`. A key in no list
//! is a typo and an error with a did-you-mean. `x-*` extension keys are ignored, as the
//! Compose specification says. A key whose value is empty, `null` or `false` changes
//! nothing, so it is accepted silently even where it is otherwise unsupported.
//!
//! File reads here: the Compose file, `.env` beside it, and each service's `env_file`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use goodgo_yaml::{Pos, did_you_mean};

use crate::error::ComposeError;
use crate::model::*;
use crate::yaml::{Entry, Node, Value};
use crate::{dotenv, interp, order, syntax, yaml};

type Result<T> = std::result::Result<T, ComposeError>;

/// Top-level keys goodgo reads.
const TOP_KEYS: &[&str] = &[
    "version", "name", "services", "volumes", "networks", "secrets",
];

/// Top-level keys ignored with a warning: they matter only through service keys that
/// goodgo refuses, so on their own they change nothing that runs.
const TOP_WARN: &[(&str, &str)] = &[
    (
        "configs",
        "only services' `configs` would use these, and goodgo refuses those",
    ),
    (
        "models",
        "only services' `models` would use these, and goodgo refuses those",
    ),
];

/// Top-level keys that make goodgo refuse the file.
const TOP_REFUSE: &[(&str, &str)] = &[(
    "include",
    "the services and resources of the included files would be missing",
)];

/// Service keys goodgo reads into [`Service`].
const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "volumes",
    "tmpfs",
    "networks",
    "healthcheck",
    "depends_on",
    "restart",
    "profiles",
    "labels",
    "container_name",
    "expose",
    "user",
    "hostname",
    "stop_signal",
    "stop_grace_period",
    "secrets",
    "cap_add",
    "cap_drop",
    "platform",
    "working_dir",
    "init",
    "tty",
    "stdin_open",
    "extra_hosts",
    "deploy",
    "scale",
];

/// Service keys ignored with a warning. Each only tunes or observes a service that runs
/// the same program with the same files, network and privileges without it: resource
/// limits and reservations, logging, DNS tweaks, kernel tunables, metadata, dev tooling.
const SERVICE_WARN: &[(&str, &str)] = &[
    (
        "logging",
        "logs are collected by goodgo, not by a logging driver",
    ),
    (
        "sysctls",
        "namespaced kernel parameters keep their defaults",
    ),
    ("ulimits", "process limits keep their defaults"),
    ("mem_limit", "memory limits are not enforced"),
    ("memswap_limit", "memory limits are not enforced"),
    ("mem_reservation", "memory reservations are not enforced"),
    ("mem_swappiness", "swap tuning is not applied"),
    ("cpus", "CPU limits are not enforced"),
    ("cpu_count", "CPU limits are not enforced"),
    ("cpu_percent", "CPU limits are not enforced"),
    ("cpu_shares", "CPU shares are not applied"),
    ("cpu_quota", "CPU limits are not enforced"),
    ("cpu_period", "CPU limits are not enforced"),
    ("cpu_rt_runtime", "real-time CPU limits are not applied"),
    ("cpu_rt_period", "real-time CPU limits are not applied"),
    ("cpuset", "the process may run on any CPU"),
    ("pids_limit", "the process count is not limited"),
    ("oom_kill_disable", "the OOM killer keeps its default"),
    ("oom_score_adj", "the OOM score keeps its default"),
    ("shm_size", "`/dev/shm` keeps the engine's default size"),
    ("blkio_config", "block I/O limits are not applied"),
    ("storage_opt", "storage driver options are not applied"),
    ("dns", "the engine's default resolver is used"),
    ("dns_search", "the engine's default search domains are used"),
    ("dns_opt", "the engine's default resolver options are used"),
    ("domainname", "the container keeps the default domain name"),
    ("mac_address", "the engine assigns the MAC address"),
    ("read_only", "the root file system stays writable"),
    ("pull_policy", "the image is pulled when it is missing"),
    ("annotations", "annotations are metadata only"),
    (
        "develop",
        "file watching (`compose watch`) is not supported",
    ),
    ("attach", "which logs are shown is decided by goodgo"),
    (
        "cgroup",
        "the engine's default cgroup namespace mode is used",
    ),
    (
        "cgroup_parent",
        "the engine's default cgroup parent is used",
    ),
    (
        "isolation",
        "the engine's default isolation is used (Windows only)",
    ),
    (
        "credential_spec",
        "credential specs are Windows-only and not applied",
    ),
];

/// Service keys that make goodgo refuse the file: without them the service would run a
/// different program, see different files or devices, sit in different namespaces, or
/// hold different privileges — so ignoring them would silently change what runs.
const SERVICE_REFUSE: &[(&str, &str)] = &[
    (
        "network_mode",
        "the service would join a different network namespace",
    ),
    (
        "runtime",
        "the container would run under the default OCI runtime instead",
    ),
    (
        "extends",
        "the keys inherited from the extended service would be missing",
    ),
    (
        "devices",
        "the host devices would be missing in the container",
    ),
    (
        "device_cgroup_rules",
        "device access rules would be missing",
    ),
    ("gpus", "the GPUs would be missing in the container"),
    (
        "privileged",
        "the process would lack the privileges it expects",
    ),
    (
        "security_opt",
        "the security profile (seccomp, AppArmor, SELinux) would differ",
    ),
    (
        "group_add",
        "the process would lack its supplementary groups",
    ),
    ("userns_mode", "the user namespace would differ"),
    ("pid", "the process namespace would differ"),
    ("ipc", "the IPC namespace would differ"),
    ("uts", "the UTS namespace would differ"),
    (
        "volumes_from",
        "the mounts of the other service or container would be missing",
    ),
    (
        "configs",
        "the config files would be missing in the container",
    ),
    (
        "links",
        "the link aliases and the start order they imply would be missing",
    ),
    (
        "external_links",
        "the linked containers would not be reachable by their aliases",
    ),
    ("post_start", "the lifecycle hooks would not run"),
    ("pre_stop", "the lifecycle hooks would not run"),
    (
        "use_api_socket",
        "the engine API socket would be missing in the container",
    ),
    ("models", "the AI models would not be provided"),
    ("provider", "the provider plugin would not run"),
    (
        "label_file",
        "the labels read from the file would be missing",
    ),
];

/// `deploy` keys goodgo reads.
const DEPLOY_KEYS: &[&str] = &["replicas"];

/// `deploy` keys ignored with a warning: they steer a Swarm orchestrator or limit
/// resources; one replica runs the same without them.
const DEPLOY_WARN: &[(&str, &str)] = &[
    (
        "resources",
        "CPU and memory limits and reservations are not enforced",
    ),
    ("restart_policy", "use the service's `restart` key"),
    ("placement", "there is a single host"),
    ("update_config", "rolling updates are a Swarm feature"),
    ("rollback_config", "rollbacks are a Swarm feature"),
    (
        "endpoint_mode",
        "service discovery uses the engine's default",
    ),
    ("mode", "one replica runs on the single host"),
    (
        "labels",
        "Swarm service labels are metadata only; container labels go under `labels`",
    ),
];

const BUILD_KEYS: &[&str] = &["context", "dockerfile", "target", "args"];

/// Build keys ignored with a warning: caching, tagging and build-time tuning; the built
/// image has the same content without them.
const BUILD_WARN: &[(&str, &str)] = &[
    ("cache_from", "the build cache is the builder's default"),
    ("cache_to", "the build cache is not exported"),
    ("no_cache", "the builder's cache is used"),
    ("pull", "base images are pulled when missing"),
    ("labels", "image labels are metadata only"),
    ("tags", "the image gets goodgo's tag only"),
    (
        "platforms",
        "the image is built for the service's platform only",
    ),
    ("shm_size", "`/dev/shm` keeps the builder's default size"),
    ("isolation", "the builder's default isolation is used"),
    ("network", "build steps use the builder's default network"),
    ("extra_hosts", "build steps use the default host resolution"),
    ("ulimits", "build steps keep the default process limits"),
];

/// Build keys that make goodgo refuse the file: the build would fail or build something
/// else without them.
const BUILD_REFUSE: &[(&str, &str)] = &[
    (
        "dockerfile_inline",
        "the inline Dockerfile would not be used",
    ),
    (
        "additional_contexts",
        "the extra build contexts would be missing",
    ),
    ("secrets", "the build secrets would be missing"),
    ("ssh", "the SSH agent would not be forwarded to the build"),
    ("privileged", "privileged build steps would fail"),
    ("entitlements", "build steps would lack their entitlements"),
];

const HEALTH_KEYS: &[&str] = &[
    "test",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
    "disable",
];

const PORT_KEYS: &[&str] = &["target", "published", "host_ip", "protocol", "mode"];
const PORT_WARN: &[(&str, &str)] = &[
    ("name", "port names are metadata only"),
    ("app_protocol", "the application protocol is metadata only"),
];

const MOUNT_KEYS: &[&str] = &[
    "type",
    "source",
    "target",
    "read_only",
    "bind",
    "volume",
    "tmpfs",
];
const MOUNT_WARN: &[(&str, &str)] = &[(
    "consistency",
    "mount consistency is a macOS performance hint",
)];
const BIND_KEYS: &[&str] = &["create_host_path"];
const BIND_WARN: &[(&str, &str)] = &[
    ("propagation", "the mount uses the default propagation"),
    ("selinux", "the mount is not relabeled for SELinux"),
];
const VOLUME_OPT_WARN: &[(&str, &str)] = &[(
    "nocopy",
    "the volume may be filled from the image on first use",
)];
const VOLUME_OPT_REFUSE: &[(&str, &str)] = &[(
    "subpath",
    "the whole volume would be mounted instead of the sub-path",
)];
const TMPFS_WARN: &[(&str, &str)] = &[
    ("size", "the tmpfs size is not limited"),
    ("mode", "the tmpfs keeps the default mode"),
];

const NET_ATTACH_KEYS: &[&str] = &["aliases", "ipv4_address", "ipv6_address"];
const NET_ATTACH_WARN: &[(&str, &str)] = &[
    ("priority", "networks are joined in the engine's order"),
    ("gw_priority", "the default gateway is the engine's choice"),
    ("link_local_ips", "link-local addresses are not assigned"),
    ("mac_address", "the engine assigns the MAC address"),
    ("driver_opts", "per-endpoint driver options are not applied"),
    ("interface_name", "the engine names the interface"),
];

const DEP_KEYS: &[&str] = &["condition", "restart", "required"];
const SECRET_REF_KEYS: &[&str] = &["source", "target"];
const SECRET_REF_WARN: &[(&str, &str)] = &[
    ("uid", "the secret file keeps the default owner"),
    ("gid", "the secret file keeps the default group"),
    ("mode", "the secret file keeps the default mode"),
];
const ENV_FILE_KEYS: &[&str] = &["path", "required"];
const ENV_FILE_REFUSE: &[(&str, &str)] = &[("format", "the file would be read in another format")];

const VOLUME_DEF_KEYS: &[&str] = &["driver", "driver_opts", "external", "name", "labels"];
const NETWORK_DEF_KEYS: &[&str] = &[
    "driver",
    "driver_opts",
    "external",
    "name",
    "labels",
    "internal",
    "attachable",
    "enable_ipv6",
    "ipam",
];
const NETWORK_DEF_WARN: &[(&str, &str)] = &[("enable_ipv4", "IPv4 stays enabled")];
const IPAM_KEYS: &[&str] = &["driver", "config", "options"];
const IPAM_POOL_KEYS: &[&str] = &["subnet", "ip_range", "gateway", "aux_addresses"];
const SECRET_DEF_KEYS: &[&str] = &["file", "environment", "external", "name"];
const SECRET_DEF_WARN: &[(&str, &str)] = &[
    ("labels", "secret labels are a Swarm feature"),
    ("driver", "secret drivers are a Swarm feature"),
    ("driver_opts", "secret drivers are a Swarm feature"),
    ("template_driver", "secret templates are a Swarm feature"),
];

const NO_PAIRS: &[(&str, &str)] = &[];

/// Reads and resolves the Compose file at `path`; `shown` is how messages name it.
///
/// Variables come from `env`, then from a `.env` file beside the Compose file (so the
/// process environment wins, as with `docker compose`).
pub fn load(path: &Path, shown: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Project> {
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
        path: shown.to_path_buf(),
        source,
    })?;
    let absolute = std::path::absolute(path).map_err(|source| ComposeError::Read {
        path: shown.to_path_buf(),
        source,
    })?;
    let dir = absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    load_str(&text, &dir, shown, env)
}

/// Like [`load`], for Compose text already read. `dir` is the (absolute) folder the text
/// stands for: its `.env` and `env_file`s are read from there and relative host paths are
/// resolved against it.
pub fn load_str(
    text: &str,
    dir: &Path,
    shown: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Project> {
    let mut loader = Loader {
        file: shown.to_path_buf(),
        dir: dir.to_path_buf(),
        shown_dir: shown.parent().map(Path::to_path_buf).unwrap_or_default(),
        env,
        dotenv: BTreeMap::new(),
        diags: Vec::new(),
        warned_vars: BTreeSet::new(),
        odd_secrets: BTreeMap::new(),
    };
    loader.read_dotenv()?;
    let root = yaml::parse(text).map_err(|e| ComposeError::at(shown, e.pos, e.message))?;
    let mut root = root.unwrap_or(Node {
        pos: Pos::new(1, 1),
        value: Value::Map(Vec::new()),
    });
    if matches!(root.value, Value::Null) {
        root.value = Value::Map(Vec::new());
    }
    loader.interpolate_tree(&mut root)?;
    loader.project(&root)
}

struct Loader<'a> {
    /// The Compose file as shown in messages.
    file: PathBuf,
    /// Its folder, absolute.
    dir: PathBuf,
    /// Its folder as shown in messages.
    shown_dir: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
    dotenv: BTreeMap<String, String>,
    diags: Vec<Diagnostic>,
    warned_vars: BTreeSet<String>,
    /// Top-level secrets goodgo cannot provide (`environment`, `external`): where each is
    /// written, its key, and whether a service uses it.
    odd_secrets: BTreeMap<String, OddSecret>,
}

/// A top-level secret that is not a `file`.
struct OddSecret {
    pos: Pos,
    key: &'static str,
    used: bool,
}

/// Names defined at the top level, which services may refer to.
struct Defined {
    volumes: BTreeSet<String>,
    networks: BTreeSet<String>,
    secrets: BTreeSet<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Whether ignoring this value would change nothing: empty, `null`, `false`, `no`.
fn is_noop(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Str(s) => matches!(s.as_str(), "false" | "False" | "FALSE" | "no" | ""),
        Value::Seq(items) => items.is_empty(),
        Value::Map(entries) => entries.is_empty(),
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Loader<'_> {
    fn fail(&self, pos: Pos, message: impl Into<String>) -> ComposeError {
        ComposeError::at(&self.file, pos, message)
    }

    fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Warning,
            path: self.file.clone(),
            pos,
            message: message.into(),
        });
    }

    /// A variable from the environment, then from `.env`.
    fn lookup(&self, name: &str) -> Option<String> {
        (self.env)(name).or_else(|| self.dotenv.get(name).cloned())
    }

    /// Interpolates one value, warning once per unset variable.
    fn expand(
        &mut self,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
        path: &Path,
        pos: Pos,
    ) -> Result<String> {
        let mut unset = Vec::new();
        let out = interp::interpolate(text, lookup, &mut |n| unset.push(n.to_string()))
            .map_err(|m| ComposeError::at(path, pos, m))?;
        for name in unset {
            if self.warned_vars.insert(name.clone()) {
                self.diags.push(Diagnostic {
                    severity: Severity::Warning,
                    path: path.to_path_buf(),
                    pos,
                    message: format!("variable `{name}` is not set; using an empty string"),
                });
            }
        }
        Ok(out)
    }

    fn read_dotenv(&mut self) -> Result<()> {
        let path = self.dir.join(".env");
        let shown = self.shown_dir.join(".env");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(ComposeError::Read {
                    path: shown,
                    source,
                });
            }
        };
        let lines = dotenv::parse(&text).map_err(|(pos, m)| ComposeError::at(&shown, pos, m))?;
        for line in lines {
            let value = match line.value {
                None => (self.env)(&line.key),
                Some(raw) if raw.literal => Some(raw.text),
                Some(raw) => {
                    let so_far = self.dotenv.clone();
                    let env = self.env;
                    let lookup = move |n: &str| env(n).or_else(|| so_far.get(n).cloned());
                    Some(self.expand(&raw.text, &lookup, &shown, raw.pos)?)
                }
            };
            if let Some(value) = value {
                self.dotenv.insert(line.key, value);
            }
        }
        Ok(())
    }

    /// Interpolates every scalar value of the tree (keys stay as written).
    fn interpolate_tree(&mut self, node: &mut Node) -> Result<()> {
        match &mut node.value {
            Value::Str(text) => {
                if text.contains('$') {
                    let file = self.file.clone();
                    let env = self.env;
                    let dotenv = self.dotenv.clone();
                    let lookup = move |n: &str| env(n).or_else(|| dotenv.get(n).cloned());
                    *text = self.expand(text, &lookup, &file, node.pos)?;
                }
                Ok(())
            }
            Value::Null => Ok(()),
            Value::Seq(items) => items.iter_mut().try_for_each(|n| self.interpolate_tree(n)),
            Value::Map(entries) => entries
                .iter_mut()
                .try_for_each(|e| self.interpolate_tree(&mut e.value)),
        }
    }

    // ---- typed readers -------------------------------------------------------------

    fn expected(&self, node: &Node, path: &str, what: &str) -> ComposeError {
        self.fail(
            node.pos,
            format!("{path}: expected {what}, found {}", node.value.kind()),
        )
    }

    fn entries<'n>(&self, node: &'n Node, path: &str) -> Result<&'n [Entry]> {
        match &node.value {
            Value::Map(entries) => Ok(entries),
            Value::Null => Ok(&[]),
            _ => Err(self.expected(node, path, "a mapping")),
        }
    }

    fn items<'n>(&self, node: &'n Node, path: &str) -> Result<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Ok(items),
            Value::Null => Ok(&[]),
            _ => Err(self.expected(node, path, "a list")),
        }
    }

    fn string(&self, node: &Node, path: &str) -> Result<String> {
        match &node.value {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(self.expected(node, path, "a string")),
        }
    }

    /// A string, or `None` for an empty one.
    fn opt_string(&self, node: &Node, path: &str) -> Result<Option<String>> {
        match &node.value {
            Value::Null => Ok(None),
            _ => Ok(Some(self.string(node, path)?).filter(|s| !s.is_empty())),
        }
    }

    fn boolean(&self, node: &Node, path: &str) -> Result<bool> {
        match &node.value {
            Value::Str(s) => match s.as_str() {
                "true" | "True" | "TRUE" => Ok(true),
                "false" | "False" | "FALSE" => Ok(false),
                _ => Err(self.fail(
                    node.pos,
                    format!("{path}: expected `true` or `false`, found `{s}`"),
                )),
            },
            _ => Err(self.expected(node, path, "`true` or `false`")),
        }
    }

    fn uint(&self, node: &Node, path: &str) -> Result<u32> {
        let s = self.string(node, path)?;
        s.parse().map_err(|_| {
            self.fail(
                node.pos,
                format!("{path}: expected a non-negative whole number, found `{s}`"),
            )
        })
    }

    fn duration(&self, node: &Node, path: &str) -> Result<Duration> {
        let s = self.string(node, path)?;
        syntax::parse_duration(&s).map_err(|m| self.fail(node.pos, format!("{path}: {m}")))
    }

    /// A list of strings; with `single`, one string stands for a list of one.
    fn strings(&self, node: &Node, path: &str, single: bool) -> Result<Vec<(String, Pos)>> {
        match &node.value {
            Value::Str(s) if single => Ok(vec![(s.clone(), node.pos)]),
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = format!("{path}[{i}]");
                    Ok((self.string(item, &p)?, item.pos))
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            _ => Err(self.expected(
                node,
                path,
                if single {
                    "a string or a list of strings"
                } else {
                    "a list of strings"
                },
            )),
        }
    }

    /// `- KEY=value` / `- KEY` items, or a `KEY: value` mapping. A missing value is `None`.
    fn key_values(&self, node: &Node, path: &str) -> Result<Vec<(String, Option<String>, Pos)>> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = format!("{path}[{i}]");
                    let text = self.string(item, &p)?;
                    let (k, v) = match text.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (text.clone(), None),
                    };
                    if k.is_empty() {
                        return Err(self.fail(
                            item.pos,
                            format!("{p}: expected `NAME=value`, found `{text}`"),
                        ));
                    }
                    Ok((k, v, item.pos))
                })
                .collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| {
                    let p = join(path, &e.key);
                    let v = match &e.value.value {
                        Value::Null => None,
                        Value::Str(s) => Some(s.clone()),
                        _ => return Err(self.expected(&e.value, &p, "a string or number")),
                    };
                    Ok((e.key.clone(), v, e.key_pos))
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            Value::Str(_) => Err(self.expected(node, path, "a list of `NAME=value` or a mapping")),
        }
    }

    /// A `KEY: value` mapping of strings.
    fn string_map(&self, node: &Node, path: &str) -> Result<BTreeMap<String, String>> {
        Ok(self
            .key_values(node, path)?
            .into_iter()
            .map(|(k, v, _)| (k, v.unwrap_or_default()))
            .collect())
    }

    /// Handles a key the caller does not read: extension, ignored with a warning,
    /// refused, or unknown.
    fn other_key(
        &mut self,
        entry: &Entry,
        path: &str,
        known: &[&str],
        warn: &[(&str, &str)],
        refuse: &[(&str, &str)],
    ) -> Result<()> {
        let key = entry.key.as_str();
        let full = join(path, key);
        if key.starts_with("x-") {
            return Ok(());
        }
        if let Some((_, why)) = refuse.iter().find(|(k, _)| *k == key) {
            if is_noop(&entry.value.value) {
                return Ok(());
            }
            return Err(self.fail(
                entry.key_pos,
                format!(
                    "`{full}` is not supported by goodgo: ignoring it would change what runs ({why}); remove it, or run this file with `docker compose`"
                ),
            ));
        }
        if let Some((_, why)) = warn.iter().find(|(k, _)| *k == key) {
            if !is_noop(&entry.value.value) {
                self.warn(
                    entry.key_pos,
                    format!("`{full}` is not supported by goodgo and is ignored: {why}"),
                );
            }
            return Ok(());
        }
        let candidates = known
            .iter()
            .copied()
            .chain(warn.iter().map(|(k, _)| *k))
            .chain(refuse.iter().map(|(k, _)| *k));
        let hint = did_you_mean(key, candidates)
            .map(|best| format!(" (did you mean `{best}`?)"))
            .unwrap_or_default();
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        Err(self.fail(entry.key_pos, format!("{prefix}unknown key `{key}`{hint}")))
    }

    /// A host path: `~` from `HOME`, relative paths against the Compose file's folder.
    fn host_path(&self, source: &str, pos: Pos, path: &str) -> Result<String> {
        let full = if source == "~" || source.starts_with("~/") {
            let Some(home) = self.lookup("HOME") else {
                return Err(self.fail(
                    pos,
                    format!("{path}: `{source}` starts with `~`, but `HOME` is not set"),
                ));
            };
            PathBuf::from(home).join(source.trim_start_matches('~').trim_start_matches('/'))
        } else if source.starts_with('~') {
            return Err(self.fail(
                pos,
                format!("{path}: `{source}`: `~user` paths are not supported; write the full path"),
            ));
        } else {
            self.dir.join(source)
        };
        normalize(&full)
            .into_os_string()
            .into_string()
            .map_err(|p| {
                self.fail(
                    pos,
                    format!(
                        "{path}: the host path {} is not valid UTF-8",
                        p.to_string_lossy()
                    ),
                )
            })
    }

    // ---- the project ---------------------------------------------------------------

    fn project(mut self, root: &Node) -> Result<Project> {
        let top = match &root.value {
            Value::Map(entries) => entries.as_slice(),
            _ => {
                return Err(self.fail(
                    root.pos,
                    format!(
                        "expected a mapping (`services:` and other keys) at the top level, found {}",
                        root.value.kind()
                    ),
                ));
            }
        };
        let mut project = Project {
            file: self.file.clone(),
            dir: self.dir.clone(),
            ..Project::default()
        };
        let mut services_node = None;
        for e in top {
            match e.key.as_str() {
                "version" => {} // Obsolete in the Compose specification; accepted and ignored.
                "name" => {
                    project.name = self.opt_string(&e.value, "name")?;
                    if let Some(name) = &project.name {
                        let ok = name
                            .starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                            && name.chars().all(|c| {
                                c.is_ascii_lowercase()
                                    || c.is_ascii_digit()
                                    || matches!(c, '_' | '-')
                            });
                        if !ok {
                            return Err(self.fail(
                                e.value.pos,
                                format!("name: invalid project name `{name}`: use lowercase letters, digits, `_` and `-`, starting with a letter or digit"),
                            ));
                        }
                    }
                }
                "services" => services_node = Some(e),
                "volumes" => project.volumes = self.volume_defs(&e.value)?,
                "networks" => project.networks = self.network_defs(&e.value)?,
                "secrets" => project.secrets = self.secret_defs(&e.value)?,
                _ => self.other_key(e, "", TOP_KEYS, TOP_WARN, TOP_REFUSE)?,
            }
        }
        let defined = Defined {
            volumes: project.volumes.keys().cloned().collect(),
            networks: project.networks.keys().cloned().collect(),
            secrets: project.secrets.keys().cloned().collect(),
        };
        if let Some(e) = services_node {
            for s in self.entries(&e.value, "services")? {
                if !valid_name(&s.key) {
                    return Err(self.fail(
                        s.key_pos,
                        format!("services: invalid service name `{}`: use letters, digits, `_`, `.` and `-`, starting with a letter or digit", s.key),
                    ));
                }
                let service = self.service(s, &defined)?;
                project.services.insert(s.key.clone(), service);
            }
        }
        self.check_dependencies(&mut project.services)?;
        order::check_cycles(&project.services, &self.file)?;
        let unused: Vec<(String, Pos, &str)> = self
            .odd_secrets
            .iter()
            .filter(|(_, o)| !o.used)
            .map(|(name, o)| (name.clone(), o.pos, o.key))
            .collect();
        for (name, pos, key) in unused {
            self.warn(
                pos,
                format!("`secrets.{name}.{key}` is not supported by goodgo and is ignored: no service uses this secret (goodgo provides `file` secrets only)"),
            );
        }
        if project
            .services
            .values()
            .any(|s| s.networks.iter().any(|n| n == "default"))
        {
            project.networks.entry("default".into()).or_default();
        }
        project.diagnostics = self.diags;
        Ok(project)
    }

    /// Unknown dependencies are errors, or warnings when `required: false`.
    fn check_dependencies(&mut self, services: &mut BTreeMap<String, Service>) -> Result<()> {
        let names: BTreeSet<String> = services.keys().cloned().collect();
        for service in services.values_mut() {
            let unknown: Vec<String> = service
                .depends_on
                .keys()
                .filter(|d| !names.contains(*d))
                .cloned()
                .collect();
            for dep in unknown {
                let pos = service
                    .depends_on_pos
                    .get(&dep)
                    .copied()
                    .unwrap_or(service.pos);
                let hint = did_you_mean(&dep, names.iter().map(String::as_str))
                    .map(|b| format!(" (did you mean `{b}`?)"))
                    .unwrap_or_default();
                let path = format!("services.{}.depends_on", service.name);
                if service.optional_deps.contains(&dep) {
                    self.warn(
                        pos,
                        format!("{path}: no service `{dep}`{hint}; skipped because it has `required: false`"),
                    );
                    service.depends_on.remove(&dep);
                    service.optional_deps.remove(&dep);
                } else {
                    return Err(self.fail(pos, format!("{path}: no service `{dep}`{hint}")));
                }
            }
        }
        Ok(())
    }

    // ---- services ------------------------------------------------------------------

    fn service(&mut self, entry: &Entry, defined: &Defined) -> Result<Service> {
        let name = entry.key.clone();
        let path = format!("services.{name}");
        let node = &entry.value;
        if !matches!(node.value, Value::Map(_)) {
            return Err(self.expected(node, &path, "a mapping"));
        }
        let mut s = Service {
            name: name.clone(),
            pos: entry.key_pos,
            ..Service::default()
        };
        let mut env_files: Vec<(String, Option<String>)> = Vec::new();
        let mut environment = Vec::new();
        let mut tmpfs = Vec::new();
        let mut networks_given = false;
        for e in self.entries(node, &path)? {
            let p = join(&path, &e.key);
            let v = &e.value;
            if matches!(v.value, Value::Null) && SERVICE_KEYS.contains(&e.key.as_str()) {
                continue;
            }
            match e.key.as_str() {
                "image" => s.image = self.opt_string(v, &p)?,
                "build" => s.build = Some(self.build(v, &p)?),
                "command" => s.command = Some(self.command_line(v, &p)?),
                "entrypoint" => s.entrypoint = Some(self.command_line(v, &p)?),
                "environment" => environment = self.key_values(v, &p)?,
                "env_file" => env_files = self.env_files(v, &p)?,
                "ports" => {
                    for (i, item) in self.items(v, &p)?.iter().enumerate() {
                        s.ports.extend(self.port(item, &format!("{p}[{i}]"))?);
                    }
                }
                "volumes" => {
                    for (i, item) in self.items(v, &p)?.iter().enumerate() {
                        s.volumes
                            .push(self.mount(item, &format!("{p}[{i}]"), defined)?);
                    }
                }
                "tmpfs" => {
                    for (target, pos) in self.strings(v, &p, true)? {
                        tmpfs.push(self.tmpfs_entry(&target, pos, &p)?);
                    }
                }
                "networks" => {
                    networks_given = true;
                    self.service_networks(v, &p, defined, &mut s)?;
                }
                "healthcheck" => s.healthcheck = Some(self.healthcheck(v, &p)?),
                "depends_on" => self.depends_on(v, &p, &mut s)?,
                "restart" => s.restart = Some(self.restart(v, &p)?),
                "profiles" => {
                    s.profiles = self
                        .strings(v, &p, false)?
                        .into_iter()
                        .map(|(x, _)| x)
                        .collect();
                }
                "labels" => s.labels = self.string_map(v, &p)?,
                "container_name" => s.container_name = self.opt_string(v, &p)?,
                "expose" => {
                    for (i, item) in self.items(v, &p)?.iter().enumerate() {
                        let ip = format!("{p}[{i}]");
                        let text = match &item.value {
                            Value::Str(t) => t.clone(),
                            _ => return Err(self.expected(item, &ip, "a string or number")),
                        };
                        let norm = syntax::parse_expose(&text)
                            .map_err(|m| self.fail(item.pos, format!("{ip}: {m}")))?;
                        s.expose.push(norm);
                    }
                }
                "user" => s.user = self.opt_string(v, &p)?,
                "hostname" => s.hostname = self.opt_string(v, &p)?,
                "stop_signal" => s.stop_signal = self.opt_string(v, &p)?,
                "stop_grace_period" => s.stop_grace_period = Some(self.duration(v, &p)?),
                "secrets" => {
                    for (i, item) in self.items(v, &p)?.iter().enumerate() {
                        let r = self.secret_ref(item, &format!("{p}[{i}]"), defined)?;
                        s.secrets.push(r);
                    }
                }
                "cap_add" => {
                    s.cap_add = self
                        .strings(v, &p, false)?
                        .into_iter()
                        .map(|x| x.0)
                        .collect();
                }
                "cap_drop" => {
                    s.cap_drop = self
                        .strings(v, &p, false)?
                        .into_iter()
                        .map(|x| x.0)
                        .collect();
                }
                "platform" => s.platform = self.opt_string(v, &p)?,
                "working_dir" => s.working_dir = self.opt_string(v, &p)?,
                "init" => s.init = Some(self.boolean(v, &p)?),
                "tty" => s.tty = self.boolean(v, &p)?,
                "stdin_open" => s.stdin_open = self.boolean(v, &p)?,
                "extra_hosts" => s.extra_hosts = self.extra_hosts(v, &p)?,
                "deploy" => self.deploy(v, &p)?,
                "scale" => {
                    let n = self.uint(v, &p)?;
                    if n != 1 {
                        return Err(self.fail(
                            v.pos,
                            format!("`{p}: {n}` is not supported by goodgo: it runs one instance of each service"),
                        ));
                    }
                }
                _ => self.other_key(e, &path, SERVICE_KEYS, SERVICE_WARN, SERVICE_REFUSE)?,
            }
        }
        if s.image.is_none() && s.build.is_none() {
            return Err(self.fail(
                entry.key_pos,
                format!("{path}: a service needs `image` or `build`"),
            ));
        }
        s.volumes.extend(tmpfs);
        if !networks_given {
            s.networks.push("default".into());
        }
        // env_file first, then environment over it.
        let written = environment.into_iter().map(|(k, v, _)| (k, v));
        for (key, value) in env_files.into_iter().chain(written) {
            match value.or_else(|| self.lookup(&key)) {
                Some(v) => {
                    s.environment.insert(key, v);
                }
                None => {
                    s.environment.remove(&key);
                }
            }
        }
        Ok(s)
    }

    fn command_line(&self, node: &Node, path: &str) -> Result<CommandLine> {
        match &node.value {
            Value::Str(text) => {
                syntax::shlex_split(text)
                    .map_err(|m| self.fail(node.pos, format!("{path}: {m}")))?;
                Ok(CommandLine::Shell(text.clone()))
            }
            Value::Seq(_) => Ok(CommandLine::Exec(
                self.strings(node, path, false)?
                    .into_iter()
                    .map(|x| x.0)
                    .collect(),
            )),
            _ => Err(self.expected(node, path, "a string or a list of strings")),
        }
    }

    fn build(&mut self, node: &Node, path: &str) -> Result<Build> {
        let mut context = ".".to_string();
        let mut context_pos = node.pos;
        let mut b = Build {
            context: PathBuf::new(),
            dockerfile: None,
            target: None,
            args: BTreeMap::new(),
        };
        match &node.value {
            Value::Str(text) => context = text.clone(),
            Value::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    let v = &e.value;
                    match e.key.as_str() {
                        "context" => {
                            context = self.opt_string(v, &p)?.unwrap_or_else(|| ".".into());
                            context_pos = v.pos;
                        }
                        "dockerfile" => b.dockerfile = self.opt_string(v, &p)?,
                        "target" => b.target = self.opt_string(v, &p)?,
                        "args" => {
                            for (k, val, _) in self.key_values(v, &p)? {
                                if let Some(val) = val.or_else(|| self.lookup(&k)) {
                                    b.args.insert(k, val);
                                }
                            }
                        }
                        _ => self.other_key(e, path, BUILD_KEYS, BUILD_WARN, BUILD_REFUSE)?,
                    }
                }
            }
            _ => return Err(self.expected(node, path, "a path or a mapping")),
        }
        let remote = context.contains("://")
            || context.starts_with("git@")
            || context.starts_with("github.com/");
        if remote {
            return Err(self.fail(
                context_pos,
                format!("`{path}` with the remote context `{context}` is not supported by goodgo: build from a local folder"),
            ));
        }
        b.context = normalize(&self.dir.join(&context));
        Ok(b)
    }

    fn env_files(&mut self, node: &Node, path: &str) -> Result<Vec<(String, Option<String>)>> {
        let mut files: Vec<(String, bool, Pos)> = Vec::new();
        match &node.value {
            Value::Str(s) => files.push((s.clone(), true, node.pos)),
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    match &item.value {
                        Value::Str(s) => files.push((s.clone(), true, item.pos)),
                        Value::Map(entries) => {
                            let mut file = None;
                            let mut required = true;
                            for e in entries {
                                let ep = join(&p, &e.key);
                                match e.key.as_str() {
                                    "path" => file = Some(self.string(&e.value, &ep)?),
                                    "required" => required = self.boolean(&e.value, &ep)?,
                                    _ => self.other_key(
                                        e,
                                        &p,
                                        ENV_FILE_KEYS,
                                        NO_PAIRS,
                                        ENV_FILE_REFUSE,
                                    )?,
                                }
                            }
                            let Some(file) = file else {
                                return Err(self.fail(item.pos, format!("{p}: missing key `path`")));
                            };
                            files.push((file, required, item.pos));
                        }
                        _ => return Err(self.expected(item, &p, "a path or a mapping")),
                    }
                }
            }
            _ => return Err(self.expected(node, path, "a path or a list of paths")),
        }
        let mut out = Vec::new();
        for (file, required, pos) in files {
            let real = self.dir.join(&file);
            let shown = self.shown_dir.join(&file);
            let text = match std::fs::read_to_string(&real) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => {
                    return Err(self.fail(
                        pos,
                        format!("{path}: cannot read `{}`: {e}", shown.display()),
                    ));
                }
            };
            let lines = dotenv::parse(&text).map_err(|(p, m)| ComposeError::at(&shown, p, m))?;
            let mut so_far: BTreeMap<String, String> = BTreeMap::new();
            for line in lines {
                let value = match line.value {
                    None => None,
                    Some(raw) if raw.literal => Some(raw.text),
                    Some(raw) => {
                        let env = self.env;
                        let mine = so_far.clone();
                        let dotenv = self.dotenv.clone();
                        let lookup = move |n: &str| {
                            env(n)
                                .or_else(|| mine.get(n).cloned())
                                .or_else(|| dotenv.get(n).cloned())
                        };
                        Some(self.expand(&raw.text, &lookup, &shown, raw.pos)?)
                    }
                };
                if let Some(v) = &value {
                    so_far.insert(line.key.clone(), v.clone());
                }
                out.push((line.key, value));
            }
        }
        Ok(out)
    }

    fn port(&mut self, node: &Node, path: &str) -> Result<Vec<Port>> {
        match &node.value {
            Value::Str(spec) => {
                syntax::parse_ports(spec).map_err(|m| self.fail(node.pos, format!("{path}: {m}")))
            }
            Value::Map(entries) => {
                let mut target = None;
                let mut published = None;
                let mut host_ip = None;
                let mut protocol = "tcp".to_string();
                for e in entries {
                    let p = join(path, &e.key);
                    let v = &e.value;
                    match e.key.as_str() {
                        "target" => {
                            let t = self.string(v, &p)?;
                            let ports = syntax::parse_ports(&t)
                                .map_err(|m| self.fail(v.pos, format!("{p}: {m}")))?;
                            match ports.as_slice() {
                                [one]
                                    if one.published.is_none()
                                        && one.host_ip.is_none()
                                        && one.protocol == "tcp"
                                        && !t.contains('/') =>
                                {
                                    target = Some(one.target);
                                }
                                _ => {
                                    return Err(self.fail(
                                        v.pos,
                                        format!("{p}: expected a port number, found `{t}`"),
                                    ));
                                }
                            }
                        }
                        "published" => {
                            let t = self.opt_string(v, &p)?;
                            if let Some(t) = t {
                                let n: Option<u16> = t.parse().ok().filter(|n| *n > 0);
                                match n {
                                    Some(n) => published = Some(n),
                                    None if t.contains('-') => {
                                        return Err(self.fail(
                                            v.pos,
                                            format!("{p}: the published port range `{t}` is not supported by goodgo: give one port"),
                                        ));
                                    }
                                    None => {
                                        return Err(self.fail(
                                            v.pos,
                                            format!("{p}: expected a port number from 1 to 65535, found `{t}`"),
                                        ));
                                    }
                                }
                            }
                        }
                        "host_ip" => host_ip = self.opt_string(v, &p)?,
                        "protocol" => {
                            let t = self.string(v, &p)?;
                            protocol = syntax::protocol(&t)
                                .map_err(|m| self.fail(v.pos, format!("{p}: {m}")))?;
                        }
                        // `host` or `ingress`: a Swarm routing mode; on one engine both
                        // publish the port on the host, so either runs the same.
                        "mode" => {
                            let m = self.string(v, &p)?;
                            if m != "host" && m != "ingress" {
                                return Err(self.fail(
                                    v.pos,
                                    format!("{p}: expected `host` or `ingress`, found `{m}`"),
                                ));
                            }
                        }
                        _ => self.other_key(e, path, PORT_KEYS, PORT_WARN, NO_PAIRS)?,
                    }
                }
                let Some(target) = target else {
                    return Err(self.fail(node.pos, format!("{path}: missing key `target`")));
                };
                Ok(vec![Port {
                    host_ip,
                    published,
                    target,
                    protocol,
                }])
            }
            _ => Err(self.expected(node, path, "a string or number, or a mapping")),
        }
    }

    fn named_volume(&self, name: &str, pos: Pos, path: &str, defined: &Defined) -> Result<()> {
        if defined.volumes.contains(name) {
            return Ok(());
        }
        let hint = did_you_mean(name, defined.volumes.iter().map(String::as_str))
            .map(|b| format!(" (did you mean `{b}`?)"))
            .unwrap_or_default();
        Err(self.fail(
            pos,
            format!("{path}: the volume `{name}` is not declared under the top-level `volumes`{hint}; a host path starts with `/`, `./` or `~`"),
        ))
    }

    fn mount(&mut self, node: &Node, path: &str, defined: &Defined) -> Result<Mount> {
        match &node.value {
            Value::Str(spec) => {
                let v = syntax::parse_volume(spec)
                    .map_err(|m| self.fail(node.pos, format!("{path}: {m}")))?;
                let mut read_only = false;
                for opt in &v.options {
                    match opt.as_str() {
                        "ro" => read_only = true,
                        "rw" => read_only = false,
                        "z" | "Z" => self.warn(
                            node.pos,
                            format!("{path}: the `{opt}` option is not supported by goodgo and is ignored: the mount is not relabeled for SELinux"),
                        ),
                        "cached" | "delegated" | "consistent" => self.warn(
                            node.pos,
                            format!("{path}: the `{opt}` option is not supported by goodgo and is ignored: mount consistency is a macOS performance hint"),
                        ),
                        "nocopy" => self.warn(
                            node.pos,
                            format!("{path}: the `nocopy` option is not supported by goodgo and is ignored: the volume may be filled from the image on first use"),
                        ),
                        "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => self.warn(
                            node.pos,
                            format!("{path}: the `{opt}` option is not supported by goodgo and is ignored: the mount uses the default propagation"),
                        ),
                        _ => {
                            return Err(self.fail(
                                node.pos,
                                format!("{path}: unknown volume option `{opt}`; expected `ro`, `rw`, `z`, `Z`, `nocopy` or a propagation mode"),
                            ));
                        }
                    }
                }
                match v.source {
                    None => Ok(Mount {
                        kind: MountKind::Volume,
                        source: None,
                        target: v.target,
                        read_only,
                    }),
                    Some(src) if syntax::is_host_path(&src) => Ok(Mount {
                        kind: MountKind::Bind,
                        source: Some(self.host_path(&src, node.pos, path)?),
                        target: v.target,
                        read_only,
                    }),
                    Some(src) => {
                        self.named_volume(&src, node.pos, path, defined)?;
                        Ok(Mount {
                            kind: MountKind::Volume,
                            source: Some(src),
                            target: v.target,
                            read_only,
                        })
                    }
                }
            }
            Value::Map(entries) => self.long_mount(node, entries, path, defined),
            _ => Err(self.expected(node, path, "a string or a mapping")),
        }
    }

    fn long_mount(
        &mut self,
        node: &Node,
        entries: &[Entry],
        path: &str,
        defined: &Defined,
    ) -> Result<Mount> {
        let mut kind = None;
        let mut source: Option<(String, Pos)> = None;
        let mut target = None;
        let mut read_only = false;
        for e in entries {
            let p = join(path, &e.key);
            let v = &e.value;
            match e.key.as_str() {
                "type" => {
                    let t = self.string(v, &p)?;
                    kind = Some(match t.as_str() {
                        "volume" => MountKind::Volume,
                        "bind" => MountKind::Bind,
                        "tmpfs" => MountKind::Tmpfs,
                        "npipe" | "cluster" | "image" => {
                            return Err(self.fail(
                                v.pos,
                                format!("`{p}: {t}` is not supported by goodgo: ignoring it would change what runs (the mount would be missing)"),
                            ));
                        }
                        _ => {
                            return Err(self.fail(
                                v.pos,
                                format!("{p}: unknown mount type `{t}`; expected `volume`, `bind` or `tmpfs`"),
                            ));
                        }
                    });
                }
                "source" => source = self.opt_string(v, &p)?.map(|s| (s, v.pos)),
                "target" => {
                    let t = self.string(v, &p)?;
                    if !t.starts_with('/') {
                        return Err(self.fail(
                            v.pos,
                            format!("{p}: `{t}` must be an absolute path in the container"),
                        ));
                    }
                    target = Some(t);
                }
                "read_only" => read_only = self.boolean(v, &p)?,
                "bind" => {
                    for b in self.entries(v, &p)? {
                        let bp = join(&p, &b.key);
                        match b.key.as_str() {
                            // Creating a missing host folder is the engine's default; `false`
                            // only turns that into an error.
                            "create_host_path" => {
                                self.boolean(&b.value, &bp)?;
                            }
                            _ => self.other_key(b, &p, BIND_KEYS, BIND_WARN, NO_PAIRS)?,
                        }
                    }
                }
                "volume" => {
                    for b in self.entries(v, &p)? {
                        self.other_key(b, &p, &[], VOLUME_OPT_WARN, VOLUME_OPT_REFUSE)?;
                    }
                }
                "tmpfs" => {
                    for b in self.entries(v, &p)? {
                        self.other_key(b, &p, &[], TMPFS_WARN, NO_PAIRS)?;
                    }
                }
                _ => self.other_key(e, path, MOUNT_KEYS, MOUNT_WARN, NO_PAIRS)?,
            }
        }
        let Some(kind) = kind else {
            return Err(self.fail(
                node.pos,
                format!("{path}: missing key `type` (`volume`, `bind` or `tmpfs`)"),
            ));
        };
        let Some(target) = target else {
            return Err(self.fail(node.pos, format!("{path}: missing key `target`")));
        };
        let source = match (kind, source) {
            (MountKind::Volume, Some((s, pos))) => {
                self.named_volume(&s, pos, &join(path, "source"), defined)?;
                Some(s)
            }
            (MountKind::Volume, None) => None,
            (MountKind::Bind, Some((s, pos))) => {
                Some(self.host_path(&s, pos, &join(path, "source"))?)
            }
            (MountKind::Bind, None) => {
                return Err(self.fail(node.pos, format!("{path}: a bind mount needs `source`")));
            }
            (MountKind::Tmpfs, Some((_, pos))) => {
                return Err(self.fail(pos, format!("{path}.source: a tmpfs mount has no source")));
            }
            (MountKind::Tmpfs, None) => None,
        };
        Ok(Mount {
            kind,
            source,
            target,
            read_only,
        })
    }

    fn tmpfs_entry(&mut self, spec: &str, pos: Pos, path: &str) -> Result<Mount> {
        let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
        if !target.starts_with('/') {
            return Err(self.fail(
                pos,
                format!("{path}: `{target}` must be an absolute path in the container"),
            ));
        }
        if !options.is_empty() {
            self.warn(
                pos,
                format!("{path}: the tmpfs options `{options}` are not supported by goodgo and are ignored: the tmpfs keeps the default size and mode"),
            );
        }
        Ok(Mount {
            kind: MountKind::Tmpfs,
            source: None,
            target: target.to_string(),
            read_only: false,
        })
    }

    fn service_networks(
        &mut self,
        node: &Node,
        path: &str,
        defined: &Defined,
        s: &mut Service,
    ) -> Result<()> {
        let check = |me: &Self, name: &str, pos: Pos| -> Result<()> {
            if name == "default" || defined.networks.contains(name) {
                return Ok(());
            }
            let hint = did_you_mean(name, defined.networks.iter().map(String::as_str))
                .map(|b| format!(" (did you mean `{b}`?)"))
                .unwrap_or_default();
            Err(me.fail(
                pos,
                format!("{path}: the network `{name}` is not declared under the top-level `networks`{hint}"),
            ))
        };
        match &node.value {
            Value::Seq(_) => {
                for (name, pos) in self.strings(node, path, false)? {
                    check(self, &name, pos)?;
                    if !s.networks.contains(&name) {
                        s.networks.push(name);
                    }
                }
            }
            Value::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    check(self, &e.key, e.key_pos)?;
                    let mut attach = NetworkAttachment::default();
                    for a in self.entries(&e.value, &p)? {
                        let ap = join(&p, &a.key);
                        match a.key.as_str() {
                            "aliases" => {
                                attach.aliases = self
                                    .strings(&a.value, &ap, false)?
                                    .into_iter()
                                    .map(|x| x.0)
                                    .collect();
                            }
                            "ipv4_address" => {
                                attach.ipv4_address = self.opt_string(&a.value, &ap)?
                            }
                            "ipv6_address" => {
                                attach.ipv6_address = self.opt_string(&a.value, &ap)?
                            }
                            _ => {
                                self.other_key(a, &p, NET_ATTACH_KEYS, NET_ATTACH_WARN, NO_PAIRS)?
                            }
                        }
                    }
                    s.networks.push(e.key.clone());
                    if attach != NetworkAttachment::default() {
                        s.network_settings.insert(e.key.clone(), attach);
                    }
                }
            }
            _ => return Err(self.expected(node, path, "a list or a mapping of networks")),
        }
        Ok(())
    }

    fn healthcheck(&mut self, node: &Node, path: &str) -> Result<Healthcheck> {
        let mut h = Healthcheck {
            test: Vec::new(),
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
            start_interval: None,
            disable: false,
        };
        for e in self.entries(node, path)? {
            let p = join(path, &e.key);
            let v = &e.value;
            if matches!(v.value, Value::Null) && HEALTH_KEYS.contains(&e.key.as_str()) {
                continue;
            }
            match e.key.as_str() {
                "test" => h.test = self.health_test(v, &p)?,
                "interval" => h.interval = Some(self.duration(v, &p)?),
                "timeout" => h.timeout = Some(self.duration(v, &p)?),
                "retries" => h.retries = Some(self.uint(v, &p)?),
                "start_period" => h.start_period = Some(self.duration(v, &p)?),
                "start_interval" => {
                    h.start_interval = Some(self.duration(v, &p)?);
                    self.warn(
                        e.key_pos,
                        format!("`{p}` is not supported by goodgo and is ignored: while a service starts, goodgo runs its check itself every ~50 ms"),
                    );
                }
                "disable" => h.disable = self.boolean(v, &p)?,
                _ => self.other_key(e, path, HEALTH_KEYS, NO_PAIRS, NO_PAIRS)?,
            }
        }
        if h.test == ["NONE"] {
            h.disable = true;
        }
        Ok(h)
    }

    fn health_test(&self, node: &Node, path: &str) -> Result<Vec<String>> {
        match &node.value {
            Value::Str(s) if s.trim().is_empty() => {
                Err(self.fail(node.pos, format!("{path}: the test command is empty")))
            }
            Value::Str(s) => Ok(vec!["CMD-SHELL".into(), s.clone()]),
            Value::Seq(_) => {
                let test: Vec<String> = self
                    .strings(node, path, false)?
                    .into_iter()
                    .map(|x| x.0)
                    .collect();
                let ok = match test.first().map(String::as_str) {
                    Some("NONE") => test.len() == 1,
                    Some("CMD") => test.len() >= 2,
                    Some("CMD-SHELL") => test.len() == 2,
                    _ => false,
                };
                if !ok {
                    return Err(self.fail(
                        node.pos,
                        format!("{path}: expected `[\"CMD\", program, args…]`, `[\"CMD-SHELL\", \"command\"]` or `[\"NONE\"]`"),
                    ));
                }
                Ok(test)
            }
            _ => Err(self.expected(node, path, "a string or a list")),
        }
    }

    fn depends_on(&mut self, node: &Node, path: &str, s: &mut Service) -> Result<()> {
        let add =
            |me: &Self, s: &mut Service, name: String, pos: Pos, cond: Condition| -> Result<()> {
                if name == s.name {
                    return Err(me.fail(
                        pos,
                        format!("{path}: the service `{name}` cannot depend on itself"),
                    ));
                }
                if s.depends_on.insert(name.clone(), cond).is_some() {
                    return Err(me.fail(pos, format!("{path}: `{name}` is listed twice")));
                }
                s.depends_on_pos.insert(name, pos);
                Ok(())
            };
        match &node.value {
            Value::Seq(_) => {
                for (name, pos) in self.strings(node, path, false)? {
                    add(self, s, name, pos, Condition::Started)?;
                }
            }
            Value::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    let mut cond = Condition::Started;
                    for d in self.entries(&e.value, &p)? {
                        let dp = join(&p, &d.key);
                        match d.key.as_str() {
                            "condition" => {
                                let c = self.string(&d.value, &dp)?;
                                cond = match c.as_str() {
                                    "service_started" => Condition::Started,
                                    "service_healthy" => Condition::Healthy,
                                    "service_completed_successfully" => {
                                        Condition::CompletedSuccessfully
                                    }
                                    _ => {
                                        let all = [
                                            "service_started",
                                            "service_healthy",
                                            "service_completed_successfully",
                                        ];
                                        let hint = did_you_mean(&c, all)
                                            .map(|b| format!(" (did you mean `{b}`?)"))
                                            .unwrap_or_default();
                                        return Err(self.fail(
                                            d.value.pos,
                                            format!("{dp}: unknown condition `{c}`{hint}; expected `service_started`, `service_healthy` or `service_completed_successfully`"),
                                        ));
                                    }
                                };
                            }
                            // Restart the dependent when this dependency is restarted by a
                            // Compose command: meaningful to `docker compose restart`, which
                            // goodgo's runtimes do not have; accepted (checked, not used).
                            "restart" => {
                                self.boolean(&d.value, &dp)?;
                            }
                            "required" => {
                                if !self.boolean(&d.value, &dp)? {
                                    s.optional_deps.insert(e.key.clone());
                                }
                            }
                            _ => self.other_key(d, &p, DEP_KEYS, NO_PAIRS, NO_PAIRS)?,
                        }
                    }
                    add(self, s, e.key.clone(), e.key_pos, cond)?;
                }
            }
            _ => return Err(self.expected(node, path, "a list or a mapping of services")),
        }
        Ok(())
    }

    fn restart(&self, node: &Node, path: &str) -> Result<String> {
        let r = self.string(node, path)?;
        let ok = match r.split_once(':') {
            Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
            Some(_) => false,
            None => matches!(
                r.as_str(),
                "no" | "always" | "on-failure" | "unless-stopped"
            ),
        };
        if !ok {
            let all = ["no", "always", "on-failure", "unless-stopped"];
            let hint = did_you_mean(&r, all)
                .map(|b| format!(" (did you mean `{b}`?)"))
                .unwrap_or_default();
            return Err(self.fail(
                node.pos,
                format!("{path}: unknown restart policy `{r}`{hint}; expected `no`, `always`, `on-failure[:N]` or `unless-stopped`"),
            ));
        }
        Ok(r)
    }

    fn secret_ref(&mut self, node: &Node, path: &str, defined: &Defined) -> Result<SecretRef> {
        let (r, pos) = match &node.value {
            Value::Str(name) => (
                SecretRef {
                    source: name.clone(),
                    target: None,
                },
                node.pos,
            ),
            Value::Map(entries) => {
                let mut source = None;
                let mut target = None;
                for e in entries {
                    let p = join(path, &e.key);
                    match e.key.as_str() {
                        "source" => source = Some((self.string(&e.value, &p)?, e.value.pos)),
                        "target" => target = self.opt_string(&e.value, &p)?,
                        _ => self.other_key(e, path, SECRET_REF_KEYS, SECRET_REF_WARN, NO_PAIRS)?,
                    }
                }
                let Some((source, pos)) = source else {
                    return Err(self.fail(node.pos, format!("{path}: missing key `source`")));
                };
                (SecretRef { source, target }, pos)
            }
            _ => return Err(self.expected(node, path, "a secret name or a mapping")),
        };
        if !defined.secrets.contains(&r.source) {
            let hint = did_you_mean(&r.source, defined.secrets.iter().map(String::as_str))
                .map(|b| format!(" (did you mean `{b}`?)"))
                .unwrap_or_default();
            return Err(self.fail(
                pos,
                format!(
                    "{path}: the secret `{}` is not declared under the top-level `secrets`{hint}",
                    r.source
                ),
            ));
        }
        if let Some(odd) = self.odd_secrets.get_mut(&r.source) {
            odd.used = true;
            let key = odd.key;
            let why = if key == "external" {
                "an external secret lives in a Swarm cluster"
            } else {
                "a secret from `environment` is not written to a file"
            };
            return Err(self.fail(
                pos,
                format!(
                    "{path}: the secret `{}` uses `secrets.{}.{key}`, which goodgo does not support ({why}): ignoring it would change what runs (the service would lack {}); use `file:` instead, or run this file with `docker compose`",
                    r.source,
                    r.source,
                    r.mount_path()
                ),
            ));
        }
        Ok(r)
    }

    fn extra_hosts(&self, node: &Node, path: &str) -> Result<Vec<HostEntry>> {
        let mut out = Vec::new();
        match &node.value {
            Value::Seq(_) => {
                for (i, (text, pos)) in self.strings(node, path, false)?.into_iter().enumerate() {
                    let (host, ip) = syntax::parse_host_entry(&text)
                        .map_err(|m| self.fail(pos, format!("{path}[{i}]: {m}")))?;
                    out.push(HostEntry { host, ip });
                }
            }
            Value::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    for (ip, _) in self.strings(&e.value, &p, true)? {
                        out.push(HostEntry {
                            host: e.key.clone(),
                            ip,
                        });
                    }
                }
            }
            _ => return Err(self.expected(node, path, "a list of `host:ip` or a mapping")),
        }
        Ok(out)
    }

    fn deploy(&mut self, node: &Node, path: &str) -> Result<()> {
        for e in self.entries(node, path)? {
            let p = join(path, &e.key);
            match e.key.as_str() {
                "replicas" => {
                    let n = self.uint(&e.value, &p)?;
                    if n != 1 {
                        return Err(self.fail(
                            e.value.pos,
                            format!("`{p}: {n}` is not supported by goodgo: it runs one instance of each service"),
                        ));
                    }
                }
                _ => self.other_key(e, path, DEPLOY_KEYS, DEPLOY_WARN, NO_PAIRS)?,
            }
        }
        Ok(())
    }

    // ---- top-level resources -------------------------------------------------------

    /// `external: true`, or the legacy `external: {name: x}`.
    fn external(&mut self, node: &Node, path: &str, name: &mut Option<String>) -> Result<bool> {
        match &node.value {
            Value::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    match e.key.as_str() {
                        "name" => *name = self.opt_string(&e.value, &p)?,
                        _ => self.other_key(e, path, &["name"], NO_PAIRS, NO_PAIRS)?,
                    }
                }
                Ok(true)
            }
            Value::Null => Ok(false),
            _ => self.boolean(node, path),
        }
    }

    fn volume_defs(&mut self, node: &Node) -> Result<BTreeMap<String, VolumeDef>> {
        let mut out = BTreeMap::new();
        for v in self.entries(node, "volumes")? {
            let path = format!("volumes.{}", v.key);
            let mut d = VolumeDef::default();
            let mut external_name = None;
            for e in self.entries(&v.value, &path)? {
                let p = join(&path, &e.key);
                match e.key.as_str() {
                    "driver" => d.driver = self.opt_string(&e.value, &p)?,
                    "driver_opts" => d.driver_opts = self.string_map(&e.value, &p)?,
                    "external" => d.external = self.external(&e.value, &p, &mut external_name)?,
                    "name" => d.name = self.opt_string(&e.value, &p)?,
                    "labels" => d.labels = self.string_map(&e.value, &p)?,
                    _ => self.other_key(e, &path, VOLUME_DEF_KEYS, NO_PAIRS, NO_PAIRS)?,
                }
            }
            d.name = d.name.or(external_name);
            out.insert(v.key.clone(), d);
        }
        Ok(out)
    }

    fn network_defs(&mut self, node: &Node) -> Result<BTreeMap<String, NetworkDef>> {
        let mut out = BTreeMap::new();
        for n in self.entries(node, "networks")? {
            let path = format!("networks.{}", n.key);
            let mut d = NetworkDef::default();
            let mut external_name = None;
            for e in self.entries(&n.value, &path)? {
                let p = join(&path, &e.key);
                let v = &e.value;
                match e.key.as_str() {
                    "driver" => d.driver = self.opt_string(v, &p)?,
                    "driver_opts" => d.driver_opts = self.string_map(v, &p)?,
                    "external" => d.external = self.external(v, &p, &mut external_name)?,
                    "name" => d.name = self.opt_string(v, &p)?,
                    "labels" => d.labels = self.string_map(v, &p)?,
                    "internal" => {
                        d.internal = !matches!(v.value, Value::Null) && self.boolean(v, &p)?
                    }
                    "attachable" => {
                        d.attachable = !matches!(v.value, Value::Null) && self.boolean(v, &p)?
                    }
                    "enable_ipv6" => {
                        d.enable_ipv6 = match v.value {
                            Value::Null => None,
                            _ => Some(self.boolean(v, &p)?),
                        }
                    }
                    "ipam" => d.ipam = Some(self.ipam(v, &p)?),
                    _ => self.other_key(e, &path, NETWORK_DEF_KEYS, NETWORK_DEF_WARN, NO_PAIRS)?,
                }
            }
            d.name = d.name.or(external_name);
            out.insert(n.key.clone(), d);
        }
        Ok(out)
    }

    fn ipam(&mut self, node: &Node, path: &str) -> Result<Ipam> {
        let mut ipam = Ipam::default();
        for e in self.entries(node, path)? {
            let p = join(path, &e.key);
            match e.key.as_str() {
                "driver" => ipam.driver = self.opt_string(&e.value, &p)?,
                "options" => ipam.options = self.string_map(&e.value, &p)?,
                "config" => {
                    for (i, item) in self.items(&e.value, &p)?.iter().enumerate() {
                        let ip = format!("{p}[{i}]");
                        let mut pool = IpamPool::default();
                        for c in self.entries(item, &ip)? {
                            let cp = join(&ip, &c.key);
                            match c.key.as_str() {
                                "subnet" => pool.subnet = self.opt_string(&c.value, &cp)?,
                                "ip_range" => pool.ip_range = self.opt_string(&c.value, &cp)?,
                                "gateway" => pool.gateway = self.opt_string(&c.value, &cp)?,
                                "aux_addresses" => {
                                    pool.aux_addresses = self.string_map(&c.value, &cp)?
                                }
                                _ => self.other_key(c, &ip, IPAM_POOL_KEYS, NO_PAIRS, NO_PAIRS)?,
                            }
                        }
                        ipam.config.push(pool);
                    }
                }
                _ => self.other_key(e, path, IPAM_KEYS, NO_PAIRS, NO_PAIRS)?,
            }
        }
        Ok(ipam)
    }

    fn secret_defs(&mut self, node: &Node) -> Result<BTreeMap<String, SecretDef>> {
        let mut out = BTreeMap::new();
        for s in self.entries(node, "secrets")? {
            let path = format!("secrets.{}", s.key);
            let mut d = SecretDef::default();
            let mut external_name = None;
            for e in self.entries(&s.value, &path)? {
                let p = join(&path, &e.key);
                let v = &e.value;
                match e.key.as_str() {
                    "file" => {
                        d.file = self
                            .opt_string(v, &p)?
                            .map(|f| normalize(&self.dir.join(f)));
                    }
                    "environment" => d.environment = self.opt_string(v, &p)?,
                    "external" => d.external = self.external(v, &p, &mut external_name)?,
                    "name" => d.name = self.opt_string(v, &p)?,
                    _ => self.other_key(e, &path, SECRET_DEF_KEYS, SECRET_DEF_WARN, NO_PAIRS)?,
                }
            }
            d.name = d.name.or(external_name);
            if d.file.is_none() && d.environment.is_none() && !d.external {
                return Err(self.fail(
                    s.key_pos,
                    format!("{path}: a secret needs `file`, `environment` or `external: true`"),
                ));
            }
            if d.file.is_none() {
                let key = if d.external {
                    "external"
                } else {
                    "environment"
                };
                let pos = self
                    .entries(&s.value, &path)?
                    .iter()
                    .find(|e| e.key == key)
                    .map_or(s.key_pos, |e| e.key_pos);
                self.odd_secrets.insert(
                    s.key.clone(),
                    OddSecret {
                        pos,
                        key,
                        used: false,
                    },
                );
            }
            out.insert(s.key.clone(), d);
        }
        Ok(out)
    }
}
