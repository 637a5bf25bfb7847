//! A service's host settings as the engine takes them: privileges, namespaces (with
//! `service:NAME` turned into that service's container), limits, devices, DNS, logging,
//! and the options of its mounts.
//!
//! Why its own module: every key here is a plain translation from the model to a
//! `HostConfig` field, kept apart from the container's life cycle (`containers`) so each
//! translation can be read (and tested) on its own.

use bollard::models::{
    DeviceMapping, HostConfig, HostConfigCgroupnsModeEnum, HostConfigLogConfig, MountBindOptions,
    MountBindOptionsPropagationEnum, MountTmpfsOptions, MountVolumeOptions, ResourcesUlimits,
};
use goodgo_compose::{HostSettings, Mount, MountKind, MountOptions, NetworkMode, Project, Service};

use super::containers::container_name;

/// `service:NAME` as the engine takes it: `container:` and that service's container.
pub(super) fn namespace(project: &Project, name: &str, mode: &str) -> String {
    match mode.strip_prefix("service:") {
        Some(service) => {
            let container = project.services.get(service).map_or_else(
                || format!("{name}-{service}-1"),
                |s| container_name(name, s),
            );
            format!("container:{container}")
        }
        None => mode.to_string(),
    }
}

/// The engine's `NetworkMode` for a service with `network_mode`; `None`: the project's
/// networks.
pub(super) fn network_mode(project: &Project, name: &str, service: &Service) -> Option<String> {
    service.network_mode.as_ref().map(|m| match m {
        NetworkMode::Host => "host".into(),
        NetworkMode::None => "none".into(),
        NetworkMode::Bridge => "bridge".into(),
        NetworkMode::Service(s) => namespace(project, name, &format!("service:{s}")),
        NetworkMode::Container(c) => format!("container:{c}"),
    })
}

fn list(items: &[String]) -> Option<Vec<String>> {
    (!items.is_empty()).then(|| items.to_vec())
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Fills `host` with the service's host settings.
pub(super) fn apply(project: &Project, name: &str, h: &HostSettings, host: &mut HostConfig) {
    let ns = |mode: &Option<String>| mode.as_deref().map(|m| namespace(project, name, m));
    host.privileged = h.privileged.then_some(true);
    host.readonly_rootfs = h.read_only.then_some(true);
    host.pid_mode = ns(&h.pid);
    host.ipc_mode = ns(&h.ipc);
    host.uts_mode = ns(&h.uts);
    host.userns_mode = h.userns_mode.clone();
    host.cgroupns_mode = h.cgroup.as_deref().map(|c| match c {
        "host" => HostConfigCgroupnsModeEnum::HOST,
        _ => HostConfigCgroupnsModeEnum::PRIVATE,
    });
    host.cgroup_parent = h.cgroup_parent.clone();
    host.security_opt = list(&h.security_opt);
    host.group_add = list(&h.group_add);
    host.dns = list(&h.dns);
    host.dns_search = list(&h.dns_search);
    host.dns_options = list(&h.dns_opt);
    host.sysctls = (!h.sysctls.is_empty()).then(|| h.sysctls.clone().into_iter().collect());
    host.ulimits = (!h.ulimits.is_empty()).then(|| {
        h.ulimits
            .iter()
            .map(|(n, u)| ResourcesUlimits {
                name: Some(n.clone()),
                soft: Some(u.soft),
                hard: Some(u.hard),
            })
            .collect()
    });
    host.shm_size = h.shm_size.map(i64_of);
    host.devices = (!h.devices.is_empty()).then(|| {
        h.devices
            .iter()
            .map(|d| DeviceMapping {
                path_on_host: Some(d.host.clone()),
                path_in_container: Some(d.container.clone()),
                cgroup_permissions: Some(d.permissions.clone()),
            })
            .collect()
    });
    host.log_config = h.logging.as_ref().map(|l| HostConfigLogConfig {
        typ: l.driver.clone(),
        config: (!l.options.is_empty()).then(|| l.options.clone().into_iter().collect()),
    });
    let l = &h.limits;
    host.memory = l.memory.map(i64_of);
    host.memory_reservation = l.memory_reservation.map(i64_of);
    host.memory_swap = l.memswap;
    host.nano_cpus = l.nano_cpus;
    host.cpu_shares = l.cpu_shares;
    host.cpu_quota = l.cpu_quota;
    host.cpu_period = l.cpu_period;
    host.cpuset_cpus = l.cpuset.clone();
    host.pids_limit = l.pids;
    host.oom_score_adj = l.oom_score_adj;
    host.oom_kill_disable = l.oom_kill_disable;
}

/// A mount's options as the engine's: tmpfs size and mode, bind propagation, volume
/// `nocopy`.
pub(super) fn mount_options(
    kind: MountKind,
    o: &MountOptions,
) -> (
    Option<MountTmpfsOptions>,
    Option<MountBindOptions>,
    Option<MountVolumeOptions>,
) {
    let tmpfs = (kind == MountKind::Tmpfs && (o.tmpfs_size.is_some() || o.tmpfs_mode.is_some()))
        .then(|| MountTmpfsOptions {
            size_bytes: o.tmpfs_size.map(i64_of),
            mode: o.tmpfs_mode.map(i64::from),
            ..Default::default()
        });
    let bind = o
        .propagation
        .as_deref()
        .filter(|_| kind == MountKind::Bind)
        .map(|p| MountBindOptions {
            propagation: Some(match p {
                "shared" => MountBindOptionsPropagationEnum::SHARED,
                "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                "slave" => MountBindOptionsPropagationEnum::SLAVE,
                "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                "private" => MountBindOptionsPropagationEnum::PRIVATE,
                _ => MountBindOptionsPropagationEnum::RPRIVATE,
            }),
            ..Default::default()
        });
    let volume = (kind == MountKind::Volume && o.nocopy).then(|| MountVolumeOptions {
        no_copy: Some(true),
        ..Default::default()
    });
    (tmpfs, bind, volume)
}

/// A bind mount as the engine's `binds` take it: `source:target:options`, with `ro`, the
/// SELinux relabeling and the propagation.
pub(super) fn bind_spec(m: &Mount) -> String {
    let source = m.source.as_deref().unwrap_or_default();
    let options: Vec<&str> = [
        m.read_only.then_some("ro"),
        m.options.selinux.as_deref(),
        m.options.propagation.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if options.is_empty() {
        format!("{source}:{}", m.target)
    } else {
        format!("{source}:{}:{}", m.target, options.join(","))
    }
}

/// The networks the engine lists for a container of `service` once it runs, by name.
pub(super) fn joined_networks(service: &Service, project_networks: Vec<String>) -> Vec<String> {
    match &service.network_mode {
        None => project_networks,
        Some(NetworkMode::Host) => vec!["host".into()],
        Some(NetworkMode::None) => vec!["none".into()],
        Some(NetworkMode::Bridge) => vec!["bridge".into()],
        Some(NetworkMode::Service(_) | NetworkMode::Container(_)) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn project(text: &str) -> Project {
        goodgo_compose::load_str(
            text,
            std::path::Path::new("/p"),
            std::path::Path::new("c.yaml"),
            &|_| None,
        )
        .unwrap()
    }

    #[test]
    fn host_settings_become_the_engines() {
        let p = project(
            "services:\n  db: {image: x, container_name: the-db}\n  app:\n    image: x\n    network_mode: service:db\n    ipc: service:db\n    privileged: true\n    ulimits: {nofile: {soft: 1, hard: 2}}\n    mem_limit: 1g\n    cpus: 1.5\n    logging: {driver: none}\n",
        );
        let app = &p.services["app"];
        assert_eq!(
            network_mode(&p, "proj", app).as_deref(),
            Some("container:the-db")
        );
        let mut host = HostConfig::default();
        apply(&p, "proj", &app.host, &mut host);
        assert_eq!(host.privileged, Some(true));
        assert_eq!(host.ipc_mode.as_deref(), Some("container:the-db"));
        assert_eq!(host.memory, Some(1 << 30));
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(host.ulimits.unwrap()[0].hard, Some(2));
        assert_eq!(host.log_config.unwrap().typ.as_deref(), Some("none"));
        assert_eq!(joined_networks(app, vec!["x".into()]), Vec::<String>::new());
        let mut plain = HostConfig::default();
        apply(&p, "proj", &p.services["db"].host, &mut plain);
        assert_eq!(plain, HostConfig::default(), "nothing set, nothing sent");
    }

    #[test]
    fn relabeled_binds_carry_their_options() {
        let p = project(
            "services:\n  a:\n    image: x\n    volumes:\n      - ./src:/app:ro,z\n      - type: bind\n        source: /data\n        target: /data\n        bind: {selinux: Z, propagation: rshared}\n      - ./plain:/plain:Z\n",
        );
        let specs: Vec<String> = p.services["a"].volumes.iter().map(bind_spec).collect();
        assert_eq!(
            specs,
            [
                "/p/src:/app:ro,z",
                "/data:/data:Z,rshared",
                "/p/plain:/plain:Z"
            ]
        );
    }
}
