//! The key lists: for each mapping of a Compose file, the keys goodgo reads, the keys it
//! ignores with a warning, and the keys it refuses, each with its reason.
//!
//! Why its own module: these tables are goodgo's whole answer to "what of Compose do you
//! support?", so they are kept together and apart from the code that reads the values. A
//! key that is in no list of its mapping is a typo: an error with a did-you-mean (see
//! `Loader::other_key`).

/// Top-level keys goodgo reads.
pub(super) const TOP_KEYS: &[&str] = &[
    "version", "name", "services", "volumes", "networks", "secrets", "configs", "include",
];

/// Top-level keys ignored with a warning: they matter only through service keys that
/// goodgo refuses, so on their own they change nothing that runs.
pub(super) const TOP_WARN: &[(&str, &str)] = &[(
    "models",
    "only services' `models` would use these, and goodgo refuses those",
)];

/// Top-level keys that make goodgo refuse the file: none (`include` is resolved before
/// the keys are read).
pub(super) const TOP_REFUSE: &[(&str, &str)] = &[];

/// Service keys goodgo reads into [`Service`].
pub(super) const SERVICE_KEYS: &[&str] = &[
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
    "configs",
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
    // Read by `host`: applied by the engine.
    "network_mode",
    "privileged",
    "read_only",
    "pid",
    "ipc",
    "uts",
    "userns_mode",
    "cgroup",
    "cgroup_parent",
    "domainname",
    "security_opt",
    "group_add",
    "dns",
    "dns_search",
    "dns_opt",
    "sysctls",
    "ulimits",
    "shm_size",
    "devices",
    "logging",
    "mem_limit",
    "mem_reservation",
    "memswap_limit",
    "cpus",
    "cpu_shares",
    "cpu_quota",
    "cpu_period",
    "cpuset",
    "pids_limit",
    "oom_score_adj",
    "oom_kill_disable",
    "pull_policy",
];

/// Service keys ignored with a warning. Each only tunes or observes a service that runs
/// the same program with the same files, network and privileges without it: tuning the
/// engine has no API for, Windows-only keys, metadata, dev tooling.
pub(super) const SERVICE_WARN: &[(&str, &str)] = &[
    ("mem_swappiness", "swap tuning is not applied"),
    ("cpu_count", "CPU limits are not enforced"),
    ("cpu_percent", "CPU limits are not enforced"),
    ("cpu_rt_runtime", "real-time CPU limits are not applied"),
    ("cpu_rt_period", "real-time CPU limits are not applied"),
    ("blkio_config", "block I/O limits are not applied"),
    ("storage_opt", "storage driver options are not applied"),
    ("mac_address", "the engine assigns the MAC address"),
    ("annotations", "annotations are metadata only"),
    (
        "develop",
        "file watching (`compose watch`) is not supported",
    ),
    ("attach", "which logs are shown is decided by goodgo"),
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
pub(super) const SERVICE_REFUSE: &[(&str, &str)] = &[
    (
        "runtime",
        "the container would run under the default OCI runtime instead",
    ),
    (
        "device_cgroup_rules",
        "device access rules would be missing",
    ),
    ("gpus", "the GPUs would be missing in the container"),
    (
        "volumes_from",
        "the mounts of the other service or container would be missing",
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
pub(super) const DEPLOY_KEYS: &[&str] = &["replicas", "resources"];

/// `deploy` keys that steer a Swarm orchestrator: kept in the model as written, for a
/// Swarm deploy target; `up` on a single engine warns about them by name.
pub(super) const SWARM_KEYS: &[&str] = &[
    "placement",
    "update_config",
    "rollback_config",
    "endpoint_mode",
    "mode",
    "labels",
];

/// `deploy.resources.reservations` keys that make goodgo refuse the file.
pub(super) const RESERVATION_REFUSE: &[(&str, &str)] = &[
    (
        "devices",
        "the reserved devices (GPUs) would be missing in the container",
    ),
    (
        "generic_resources",
        "the reserved resources would be missing",
    ),
];

/// `deploy` keys ignored with a warning: the container's own `restart` decides.
pub(super) const DEPLOY_WARN: &[(&str, &str)] =
    &[("restart_policy", "use the service's `restart` key")];

pub(super) const BUILD_KEYS: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "target",
    "args",
];

/// Build keys ignored with a warning: caching, tagging and build-time tuning; the built
/// image has the same content without them.
pub(super) const BUILD_WARN: &[(&str, &str)] = &[
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
pub(super) const BUILD_REFUSE: &[(&str, &str)] = &[
    (
        "additional_contexts",
        "the extra build contexts would be missing",
    ),
    ("secrets", "the build secrets would be missing"),
    ("ssh", "the SSH agent would not be forwarded to the build"),
    ("privileged", "privileged build steps would fail"),
    ("entitlements", "build steps would lack their entitlements"),
];

pub(super) const HEALTH_KEYS: &[&str] = &[
    "test",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
    "disable",
];

pub(super) const PORT_KEYS: &[&str] = &["target", "published", "host_ip", "protocol", "mode"];
pub(super) const PORT_WARN: &[(&str, &str)] = &[
    ("name", "port names are metadata only"),
    ("app_protocol", "the application protocol is metadata only"),
];

pub(super) const MOUNT_KEYS: &[&str] = &[
    "type",
    "source",
    "target",
    "read_only",
    "bind",
    "volume",
    "tmpfs",
];
pub(super) const MOUNT_WARN: &[(&str, &str)] = &[(
    "consistency",
    "mount consistency is a macOS performance hint",
)];
pub(super) const BIND_KEYS: &[&str] = &["create_host_path", "propagation", "selinux"];
pub(super) const VOLUME_OPT_KEYS: &[&str] = &["nocopy"];
pub(super) const VOLUME_OPT_REFUSE: &[(&str, &str)] = &[(
    "subpath",
    "the whole volume would be mounted instead of the sub-path",
)];
pub(super) const TMPFS_KEYS: &[&str] = &["size", "mode"];

pub(super) const NET_ATTACH_KEYS: &[&str] = &["aliases", "ipv4_address", "ipv6_address"];
pub(super) const NET_ATTACH_WARN: &[(&str, &str)] = &[
    ("priority", "networks are joined in the engine's order"),
    ("gw_priority", "the default gateway is the engine's choice"),
    ("link_local_ips", "link-local addresses are not assigned"),
    ("mac_address", "the engine assigns the MAC address"),
    ("driver_opts", "per-endpoint driver options are not applied"),
    ("interface_name", "the engine names the interface"),
];

pub(super) const DEP_KEYS: &[&str] = &["condition", "restart", "required"];
/// A service's use of a secret or config.
pub(super) const FILE_REF_KEYS: &[&str] = &["source", "target", "uid", "gid", "mode"];
pub(super) const ENV_FILE_KEYS: &[&str] = &["path", "required"];
pub(super) const ENV_FILE_REFUSE: &[(&str, &str)] =
    &[("format", "the file would be read in another format")];

pub(super) const VOLUME_DEF_KEYS: &[&str] =
    &["driver", "driver_opts", "external", "name", "labels"];
pub(super) const NETWORK_DEF_KEYS: &[&str] = &[
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
pub(super) const NETWORK_DEF_WARN: &[(&str, &str)] = &[("enable_ipv4", "IPv4 stays enabled")];
pub(super) const IPAM_KEYS: &[&str] = &["driver", "config", "options"];
pub(super) const IPAM_POOL_KEYS: &[&str] = &["subnet", "ip_range", "gateway", "aux_addresses"];
pub(super) const SECRET_DEF_KEYS: &[&str] = &["file", "environment", "external", "name"];
pub(super) const CONFIG_DEF_KEYS: &[&str] = &["file", "content", "environment", "external", "name"];
pub(super) const CONFIG_DEF_WARN: &[(&str, &str)] = &[
    ("labels", "config labels are a Swarm feature"),
    ("template_driver", "config templates are a Swarm feature"),
];
pub(super) const SECRET_DEF_WARN: &[(&str, &str)] = &[
    ("labels", "secret labels are a Swarm feature"),
    ("driver", "secret drivers are a Swarm feature"),
    ("driver_opts", "secret drivers are a Swarm feature"),
    ("template_driver", "secret templates are a Swarm feature"),
];

pub(super) const NO_PAIRS: &[(&str, &str)] = &[];
