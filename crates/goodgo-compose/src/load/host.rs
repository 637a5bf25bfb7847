//! What a container gets from the host: `network_mode`, privileges, namespaces, kernel
//! parameters, process and resource limits, devices, DNS and logging — read into
//! [`HostSettings`] (and [`Service::network_mode`]) for the engine to apply.
//!
//! Why its own module: these keys share one concern (how the container sits on the host),
//! most are a single typed value each, and `deploy.resources` feeds the same limits as
//! the service-level `mem_limit`/`cpus`.

use std::collections::BTreeMap;

use super::keys::*;
use super::read::join;
use super::{Defined, Loader, Result};
use crate::model::*;
use crate::yaml::{At, Entry, Node, Value};

/// A namespace mode that may name another service: `service:NAME` or `container:NAME`.
fn names_service(mode: &str) -> Option<&str> {
    mode.strip_prefix("service:")
}

impl Loader<'_> {
    /// Reads `e` when it is one of this module's keys; `false` for another key.
    pub(super) fn host_key(
        &mut self,
        e: &Entry,
        p: &str,
        s: &mut Service,
        defined: &Defined,
    ) -> Result<bool> {
        let v = &e.value;
        let h = &mut s.host;
        match e.key.as_str() {
            "network_mode" => s.network_mode = Some(self.network_mode(v, p, defined)?),
            "privileged" => h.privileged = self.boolean(v, p)?,
            "read_only" => h.read_only = self.boolean(v, p)?,
            "pid" => h.pid = self.namespace(v, p, &["host"], defined)?,
            "ipc" => {
                let modes = ["host", "private", "shareable", "none"];
                h.ipc = self.namespace(v, p, &modes, defined)?;
            }
            "uts" => h.uts = self.namespace(v, p, &["host"], defined)?,
            "userns_mode" => h.userns_mode = self.opt_string(v, p)?,
            "cgroup" => h.cgroup = self.namespace(v, p, &["host", "private"], defined)?,
            "cgroup_parent" => h.cgroup_parent = self.opt_string(v, p)?,
            "domainname" => h.domainname = self.opt_string(v, p)?,
            "security_opt" => h.security_opt = self.string_list(v, p)?,
            "group_add" => h.group_add = self.string_list(v, p)?,
            "dns" => {
                h.dns = self
                    .strings(v, p, true)?
                    .into_iter()
                    .map(|(d, _)| d)
                    .collect()
            }
            "dns_search" => {
                h.dns_search = self
                    .strings(v, p, true)?
                    .into_iter()
                    .map(|(d, _)| d)
                    .collect()
            }
            "dns_opt" => h.dns_opt = self.string_list(v, p)?,
            "sysctls" => h.sysctls = self.string_map(v, p)?,
            "ulimits" => h.ulimits = self.ulimits(v, p)?,
            "shm_size" => h.shm_size = Some(self.bytes(v, p)?),
            "devices" => h.devices = self.devices(v, p)?,
            "logging" => h.logging = Some(self.logging(v, p)?),
            "mem_limit" => h.limits.memory = Some(self.bytes(v, p)?),
            "mem_reservation" => h.limits.memory_reservation = Some(self.bytes(v, p)?),
            "memswap_limit" => h.limits.memswap = Some(self.memswap(v, p)?),
            "cpus" => h.limits.nano_cpus = Some(self.cpus(v, p)?),
            "cpu_shares" => h.limits.cpu_shares = Some(self.int(v, p)?),
            "cpu_quota" => h.limits.cpu_quota = Some(self.int(v, p)?),
            "cpu_period" => h.limits.cpu_period = Some(self.int(v, p)?),
            "cpuset" => h.limits.cpuset = self.opt_string(v, p)?,
            "pids_limit" => h.limits.pids = Some(self.int(v, p)?),
            "oom_score_adj" => h.limits.oom_score_adj = Some(self.int(v, p)?),
            "oom_kill_disable" => h.limits.oom_kill_disable = Some(self.boolean(v, p)?),
            "pull_policy" => s.pull_policy = Some(self.pull_policy(v, p)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// What `network_mode` rules out: published ports without a network stack of the
    /// container's own (warned about, and left out), and a host name of its own when it
    /// shares another container's (an error).
    pub(super) fn check_network_mode(
        &mut self,
        s: &mut Service,
        written: &BTreeMap<&'static str, At>,
        path: &str,
    ) -> Result<()> {
        let Some(mode) = s.network_mode.clone() else {
            return Ok(());
        };
        let shared = matches!(mode, NetworkMode::Service(_) | NetworkMode::Container(_));
        if let (true, Some(_), Some(at)) = (shared, &s.hostname, written.get("hostname")) {
            return Err(self.fail(
                *at,
                format!("{path}.hostname: cannot be set with `network_mode: {}`: the container has the host name of the one whose network it shares", mode.as_compose()),
            ));
        }
        if !s.ports.is_empty() && mode != NetworkMode::Bridge {
            let at = written.get("ports").copied().unwrap_or_default();
            self.warn(
                at,
                format!("`{path}.ports` is ignored with `network_mode: {}`: the container publishes no ports of its own (its program listens where that network stack is)", mode.as_compose()),
            );
            s.ports.clear();
        }
        Ok(())
    }

    fn network_mode(&self, node: &Node, path: &str, defined: &Defined) -> Result<NetworkMode> {
        let mode = self.string(node, path)?;
        let named = |name: &str| !name.is_empty();
        let m = match mode.split_once(':') {
            None if mode == "host" => NetworkMode::Host,
            None if mode == "none" => NetworkMode::None,
            None if mode == "bridge" || mode == "default" => NetworkMode::Bridge,
            Some(("service", name)) if named(name) => {
                self.known_service(name, node, path, defined)?;
                NetworkMode::Service(name.to_string())
            }
            Some(("container", name)) if named(name) => NetworkMode::Container(name.to_string()),
            _ => {
                return Err(self.bad_value(
                    node,
                    format!("{path}: unknown network mode `{mode}`; expected `host`, `none`, `bridge`, `service:NAME` or `container:NAME`"),
                ));
            }
        };
        Ok(m)
    }

    fn known_service(&self, name: &str, node: &Node, path: &str, defined: &Defined) -> Result<()> {
        if defined.services.contains(name) {
            return Ok(());
        }
        let hint = goodgo_yaml::did_you_mean(name, defined.services.iter().map(String::as_str))
            .map(|b| format!(" (did you mean `{b}`?)"))
            .unwrap_or_default();
        Err(self.bad_value(node, format!("{path}: no service `{name}`{hint}")))
    }

    /// A namespace mode: one of `modes`, `container:NAME` or `service:NAME`.
    fn namespace(
        &self,
        node: &Node,
        path: &str,
        modes: &[&str],
        defined: &Defined,
    ) -> Result<Option<String>> {
        let Some(mode) = self.opt_string(node, path)? else {
            return Ok(None);
        };
        if let Some(name) = names_service(&mode) {
            self.known_service(name, node, path, defined)?;
            return Ok(Some(mode));
        }
        let container = mode
            .strip_prefix("container:")
            .is_some_and(|n| !n.is_empty());
        if container || modes.contains(&mode.as_str()) {
            return Ok(Some(mode));
        }
        let expected: Vec<String> = modes.iter().map(|m| format!("`{m}`")).collect();
        Err(self.bad_value(
            node,
            format!(
                "{path}: unknown mode `{mode}`; expected {}, `container:NAME` or `service:NAME`",
                expected.join(", ")
            ),
        ))
    }

    fn ulimits(&mut self, node: &Node, path: &str) -> Result<BTreeMap<String, Ulimit>> {
        let mut out = BTreeMap::new();
        for e in self.entries(node, path)? {
            let p = join(path, &e.key);
            let limit = match &e.value.value {
                Value::Map(_) => {
                    let (mut soft, mut hard) = (None, None);
                    for l in self.entries(&e.value, &p)? {
                        let lp = join(&p, &l.key);
                        match l.key.as_str() {
                            "soft" => soft = Some(self.int(&l.value, &lp)?),
                            "hard" => hard = Some(self.int(&l.value, &lp)?),
                            _ => self.other_key(l, &p, &["soft", "hard"], NO_PAIRS, NO_PAIRS)?,
                        }
                    }
                    let (Some(soft), Some(hard)) = (soft, hard) else {
                        return Err(
                            self.fail(e.value.pos, format!("{p}: expected both `soft` and `hard`"))
                        );
                    };
                    if soft > hard {
                        return Err(self.fail(
                            e.value.pos,
                            format!("{p}: the soft limit {soft} is above the hard limit {hard}"),
                        ));
                    }
                    Ulimit { soft, hard }
                }
                _ => {
                    let n = self.int(&e.value, &p)?;
                    Ulimit { soft: n, hard: n }
                }
            };
            out.insert(e.key.clone(), limit);
        }
        Ok(out)
    }

    fn devices(&mut self, node: &Node, path: &str) -> Result<Vec<Device>> {
        let mut out = Vec::new();
        for (i, item) in self.items(node, path)?.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let (host, container, permissions) = match &item.value {
                Value::Str(spec) => {
                    let parts: Vec<&str> = spec.split(':').collect();
                    match parts.as_slice() {
                        [h] => (h.to_string(), h.to_string(), "rwm".to_string()),
                        [h, c] if c.starts_with('/') => {
                            (h.to_string(), c.to_string(), "rwm".into())
                        }
                        [h, perm] => (h.to_string(), h.to_string(), perm.to_string()),
                        [h, c, perm] => (h.to_string(), c.to_string(), perm.to_string()),
                        _ => {
                            return Err(self.bad_value(
                                item,
                                format!("{p}: expected `host-path[:container-path[:permissions]]`, found `{spec}`"),
                            ));
                        }
                    }
                }
                Value::Map(entries) => {
                    let (mut source, mut target, mut perm) = (None, None, "rwm".to_string());
                    for e in entries {
                        let ep = join(&p, &e.key);
                        match e.key.as_str() {
                            "source" => source = Some(self.string(&e.value, &ep)?),
                            "target" => target = Some(self.string(&e.value, &ep)?),
                            "permissions" => perm = self.string(&e.value, &ep)?,
                            _ => self.other_key(
                                e,
                                &p,
                                &["source", "target", "permissions"],
                                NO_PAIRS,
                                NO_PAIRS,
                            )?,
                        }
                    }
                    let Some(source) = source else {
                        return Err(self.fail(item.pos, format!("{p}: missing key `source`")));
                    };
                    let target = target.unwrap_or_else(|| source.clone());
                    (source, target, perm)
                }
                _ => return Err(self.expected(item, &p, "a string or a mapping")),
            };
            let perm_ok = !permissions.is_empty() && permissions.chars().all(|c| "rwm".contains(c));
            if !host.starts_with('/') || !container.starts_with('/') || !perm_ok {
                return Err(self.bad_value(
                    item,
                    format!("{p}: expected absolute device paths and permissions made of `r`, `w` and `m`"),
                ));
            }
            out.push(Device {
                host,
                container,
                permissions,
            });
        }
        Ok(out)
    }

    fn logging(&mut self, node: &Node, path: &str) -> Result<Logging> {
        let mut logging = Logging::default();
        for e in self.entries(node, path)? {
            let p = join(path, &e.key);
            match e.key.as_str() {
                "driver" => logging.driver = self.opt_string(&e.value, &p)?,
                "options" => logging.options = self.string_map(&e.value, &p)?,
                _ => self.other_key(e, path, &["driver", "options"], NO_PAIRS, NO_PAIRS)?,
            }
        }
        Ok(logging)
    }

    /// `memswap_limit`: a size, or `-1` for unlimited swap.
    fn memswap(&self, node: &Node, path: &str) -> Result<i64> {
        if matches!(&node.value, Value::Str(s) if s.trim() == "-1") {
            return Ok(-1);
        }
        let bytes = self.bytes(node, path)?;
        Ok(i64::try_from(bytes).unwrap_or(i64::MAX))
    }

    /// `cpus: 1.5` as billionths of a CPU.
    fn cpus(&self, node: &Node, path: &str) -> Result<i64> {
        let s = self.string(node, path)?;
        match s.trim().parse::<f64>() {
            #[allow(clippy::cast_possible_truncation)]
            Ok(n) if (0.0..1e9).contains(&n) => Ok((n * 1e9).round() as i64),
            _ => Err(self.bad_value(
                node,
                format!("{path}: expected a number of CPUs like `0.5` or `2`, found `{s}`"),
            )),
        }
    }

    fn pull_policy(&self, node: &Node, path: &str) -> Result<PullPolicy> {
        let s = self.string(node, path)?;
        match s.as_str() {
            "always" => Ok(PullPolicy::Always),
            "missing" | "if_not_present" => Ok(PullPolicy::Missing),
            "never" => Ok(PullPolicy::Never),
            "build" => Ok(PullPolicy::Build),
            _ => {
                let all = ["always", "missing", "if_not_present", "never", "build"];
                let hint = goodgo_yaml::did_you_mean(&s, all)
                    .map(|b| format!(" (did you mean `{b}`?)"))
                    .unwrap_or_default();
                Err(self.bad_value(
                    node,
                    format!("{path}: unknown pull policy `{s}`{hint}; expected `always`, `missing`, `never` or `build`"),
                ))
            }
        }
    }

    /// `deploy.resources`: limits and reservations into the service's limits.
    pub(super) fn resources(&mut self, node: &Node, path: &str, limits: &mut Limits) -> Result<()> {
        for e in self.entries(node, path)? {
            let p = join(path, &e.key);
            let reservations = match e.key.as_str() {
                "limits" => false,
                "reservations" => true,
                _ => {
                    self.other_key(e, path, &["limits", "reservations"], NO_PAIRS, NO_PAIRS)?;
                    continue;
                }
            };
            for r in self.entries(&e.value, &p)? {
                let rp = join(&p, &r.key);
                let v = &r.value;
                match (reservations, r.key.as_str()) {
                    (false, "cpus") => limits.nano_cpus = Some(self.cpus(v, &rp)?),
                    (false, "memory") => limits.memory = Some(self.bytes(v, &rp)?),
                    (false, "pids") => limits.pids = Some(self.int(v, &rp)?),
                    (true, "memory") => limits.memory_reservation = Some(self.bytes(v, &rp)?),
                    (true, "cpus") => {
                        self.cpus(v, &rp)?;
                        self.warn(
                            r.key_pos,
                            format!("`{rp}` is not supported by goodgo and is ignored: a single engine reserves no CPU"),
                        );
                    }
                    (true, _) => {
                        self.other_key(r, &p, &["cpus", "memory"], NO_PAIRS, RESERVATION_REFUSE)?
                    }
                    (false, _) => {
                        self.other_key(r, &p, &["cpus", "memory", "pids"], NO_PAIRS, NO_PAIRS)?
                    }
                }
            }
        }
        Ok(())
    }

    /// The services a service must start after because it shares their namespaces
    /// (`network_mode`, `pid`, `ipc`, `uts`, `cgroup` of `service:NAME`), with where each is
    /// written.
    pub(super) fn namespace_services(
        &self,
        s: &Service,
        at: &BTreeMap<&'static str, At>,
    ) -> Vec<(String, At)> {
        let mut out = Vec::new();
        if let Some(NetworkMode::Service(name)) = &s.network_mode {
            out.push((
                name.clone(),
                at.get("network_mode").copied().unwrap_or_default(),
            ));
        }
        let h = &s.host;
        for (key, mode) in [
            ("pid", &h.pid),
            ("ipc", &h.ipc),
            ("uts", &h.uts),
            ("cgroup", &h.cgroup),
        ] {
            if let Some(name) = mode.as_deref().and_then(names_service) {
                out.push((name.to_string(), at.get(key).copied().unwrap_or_default()));
            }
        }
        out
    }
}
