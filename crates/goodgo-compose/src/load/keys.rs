//! The key lists: for each mapping of a Compose file, the keys goodgo reads, the keys it
//! ignores with a warning, and the keys it refuses, each with its reason.
//!
//! Why its own module: these tables are goodgo's whole answer to "what of Compose do you
//! support?", so they are kept together and apart from the code that reads the values. A
//! key that is in no list of its mapping is a typo: an error with a did-you-mean (see
//! `Loader::other_key`).

/// Top-level keys goodgo reads.
pub(super) const TOP_KEYS: &[&str] = &[
    "version", "name", "services", "volumes", "networks", "secrets",
];

/// Top-level keys ignored with a warning: they matter only through service keys that
/// goodgo refuses, so on their own they change nothing that runs.
pub(super) const TOP_WARN: &[(&str, &str)] = &[
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
pub(super) const TOP_REFUSE: &[(&str, &str)] = &[(
    "include",
    "the services and resources of the included files would be missing",
)];

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
pub(super) const SERVICE_WARN: &[(&str, &str)] = &[
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
pub(super) const SERVICE_REFUSE: &[(&str, &str)] = &[
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
pub(super) const DEPLOY_KEYS: &[&str] = &["replicas"];

/// `deploy` keys ignored with a warning: they steer a Swarm orchestrator or limit
/// resources; one replica runs the same without them.
pub(super) const DEPLOY_WARN: &[(&str, &str)] = &[
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

pub(super) const BUILD_KEYS: &[&str] = &["context", "dockerfile", "target", "args"];

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
pub(super) const BIND_KEYS: &[&str] = &["create_host_path"];
pub(super) const BIND_WARN: &[(&str, &str)] = &[
    ("propagation", "the mount uses the default propagation"),
    ("selinux", "the mount is not relabeled for SELinux"),
];
pub(super) const VOLUME_OPT_WARN: &[(&str, &str)] = &[(
    "nocopy",
    "the volume may be filled from the image on first use",
)];
pub(super) const VOLUME_OPT_REFUSE: &[(&str, &str)] = &[(
    "subpath",
    "the whole volume would be mounted instead of the sub-path",
)];
pub(super) const TMPFS_WARN: &[(&str, &str)] = &[
    ("size", "the tmpfs size is not limited"),
    ("mode", "the tmpfs keeps the default mode"),
];

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
pub(super) const SECRET_REF_KEYS: &[&str] = &["source", "target"];
pub(super) const SECRET_REF_WARN: &[(&str, &str)] = &[
    ("uid", "the secret file keeps the default owner"),
    ("gid", "the secret file keeps the default group"),
    ("mode", "the secret file keeps the default mode"),
];
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
pub(super) const SECRET_DEF_WARN: &[(&str, &str)] = &[
    ("labels", "secret labels are a Swarm feature"),
    ("driver", "secret drivers are a Swarm feature"),
    ("driver_opts", "secret drivers are a Swarm feature"),
    ("template_driver", "secret templates are a Swarm feature"),
];

pub(super) const NO_PAIRS: &[(&str, &str)] = &[];
