//! The resolved project in the canonical form `docker compose config` prints: files
//! merged, variables interpolated, `include` and `extends` applied, short syntax expanded,
//! defaults filled (`dockerfile: Dockerfile`, `required: true`, resource names prefixed
//! with the project's), keys in Compose's own order — so a user can diff the two.
//!
//! Why its own module: the model is goodgo's (shaped for the runtimes and the hash); this
//! is the one place that speaks Compose's output format back, as an ordered tree
//! ([`Canon`]) written as YAML or JSON without depending on a map type's key order.
//!
//! Like Compose, every `$` of a value is written `$$` (the output is a Compose file that
//! loads to the same project) and container paths are written without a trailing `/`.
//! Where the model does not keep what was written, the output says it one way: a
//! `tmpfs` entry appears among `volumes` (as `type: tmpfs`), limits from
//! `deploy.resources` and from `mem_limit`/`cpus` alike appear as the service-level keys.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::*;
use crate::syntax::format_duration;

/// A value of the output, with mappings in the order written.
#[derive(Debug, Clone, PartialEq)]
pub enum Canon {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Seq(Vec<Canon>),
    Map(Vec<(String, Canon)>),
}

/// Builds a mapping, leaving out what is not set.
#[derive(Default)]
struct MapOut(Vec<(String, Canon)>);

impl MapOut {
    fn put(&mut self, key: &str, value: Canon) -> &mut Self {
        self.0.push((key.to_string(), value));
        self
    }

    fn opt(&mut self, key: &str, value: Option<Canon>) -> &mut Self {
        if let Some(v) = value {
            self.put(key, v);
        }
        self
    }

    fn text(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        self.opt(key, value.map(s))
    }

    fn flag(&mut self, key: &str, value: bool) -> &mut Self {
        self.opt(key, value.then_some(Canon::Bool(true)))
    }

    fn list(&mut self, key: &str, items: &[String]) -> &mut Self {
        self.opt(key, (!items.is_empty()).then(|| strings(items)))
    }

    fn map(&mut self, key: &str, items: &BTreeMap<String, String>) -> &mut Self {
        self.opt(key, (!items.is_empty()).then(|| string_map(items)))
    }

    fn done(&mut self) -> Canon {
        Canon::Map(std::mem::take(&mut self.0))
    }
}

/// A string value, its `$` written `$$` as Compose does, so the output loads again to
/// the same project.
fn s(text: &str) -> Canon {
    Canon::Str(text.replace('$', "$$"))
}

fn int(n: impl TryInto<i64>) -> Canon {
    Canon::Int(n.try_into().unwrap_or(i64::MAX))
}

fn strings(items: &[String]) -> Canon {
    Canon::Seq(items.iter().map(|i| s(i)).collect())
}

fn string_map(items: &BTreeMap<String, String>) -> Canon {
    Canon::Map(items.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

fn duration(d: Option<std::time::Duration>) -> Option<Canon> {
    d.map(|d| Canon::Str(format_duration(d)))
}

/// The project `name` (as the caller named it) in Compose's canonical form.
pub fn config(project: &Project, name: &str) -> Canon {
    let mut top = MapOut::default();
    top.put("name", s(name));
    let services = project
        .services
        .values()
        .map(|svc| (svc.name.clone(), service(svc)))
        .collect();
    top.put("services", Canon::Map(services));
    let prefixed = |key: &str, own: &Option<String>, external: bool| match own {
        Some(n) => n.clone(),
        None if external => key.to_string(),
        None => format!("{name}_{key}"),
    };
    top.opt(
        "networks",
        section(&project.networks, |k, n, m| {
            m.put("name", s(&prefixed(k, &n.name, n.external)))
                .text("driver", n.driver.as_deref())
                .map("driver_opts", &n.driver_opts)
                .opt("ipam", n.ipam.as_ref().map(ipam))
                .flag("external", n.external)
                .flag("internal", n.internal)
                .flag("attachable", n.attachable)
                .opt("enable_ipv6", n.enable_ipv6.map(Canon::Bool))
                .map("labels", &n.labels);
        }),
    );
    top.opt(
        "volumes",
        section(&project.volumes, |k, v, m| {
            m.put("name", s(&prefixed(k, &v.name, v.external)))
                .text("driver", v.driver.as_deref())
                .map("driver_opts", &v.driver_opts)
                .flag("external", v.external)
                .map("labels", &v.labels);
        }),
    );
    for (key, defs) in [("secrets", &project.secrets), ("configs", &project.configs)] {
        top.opt(
            key,
            section(defs, |k, d, m| {
                m.put("name", s(&prefixed(k, &d.name, d.external)))
                    .text("file", d.file.as_ref().and_then(|f| f.to_str()))
                    .text("environment", d.environment.as_deref())
                    .text("content", d.content.as_deref())
                    .flag("external", d.external);
            }),
        );
    }
    top.done()
}

/// A top-level section (`networks`, `volumes`, `secrets`, `configs`): each definition by its key,
/// written by `fill`; nothing when there is none.
fn section<T>(defs: &BTreeMap<String, T>, fill: impl Fn(&str, &T, &mut MapOut)) -> Option<Canon> {
    let entries = defs.iter().map(|(k, d)| {
        let mut m = MapOut::default();
        fill(k, d, &mut m);
        (k.clone(), m.done())
    });
    (!defs.is_empty()).then(|| Canon::Map(entries.collect()))
}

fn ipam(i: &Ipam) -> Canon {
    let pools = i.config.iter().map(|p| {
        let mut m = MapOut::default();
        m.text("subnet", p.subnet.as_deref())
            .text("gateway", p.gateway.as_deref())
            .text("ip_range", p.ip_range.as_deref())
            .map("aux_addresses", &p.aux_addresses);
        m.done()
    });
    let mut m = MapOut::default();
    m.text("driver", i.driver.as_deref())
        .opt(
            "config",
            (!i.config.is_empty()).then(|| Canon::Seq(pools.collect())),
        )
        .map("options", &i.options);
    m.done()
}

fn service(svc: &Service) -> Canon {
    let h = &svc.host;
    let l = &h.limits;
    let mut m = MapOut::default();
    m.list("profiles", &svc.profiles)
        .opt("build", svc.build.as_ref().map(build))
        .list("cap_add", &svc.cap_add)
        .list("cap_drop", &svc.cap_drop)
        .text("cgroup_parent", h.cgroup_parent.as_deref())
        .text("cgroup", h.cgroup.as_deref())
        .opt("cpu_period", l.cpu_period.map(int))
        .opt("cpu_quota", l.cpu_quota.map(int))
        .opt("cpus", l.nano_cpus.map(cpus))
        .text("cpuset", l.cpuset.as_deref())
        .opt("cpu_shares", l.cpu_shares.map(int))
        .opt(
            "command",
            svc.command.as_ref().map(|c| strings(&c.to_argv())),
        )
        .opt("configs", file_refs(&svc.configs))
        .text("container_name", svc.container_name.as_deref())
        .opt("depends_on", depends_on(svc))
        .opt("deploy", deploy(svc))
        .opt("devices", devices(&h.devices))
        .list("dns", &h.dns)
        .list("dns_opt", &h.dns_opt)
        .list("dns_search", &h.dns_search)
        .text("domainname", h.domainname.as_deref())
        .opt(
            "entrypoint",
            svc.entrypoint.as_ref().map(|c| strings(&c.to_argv())),
        )
        .map("environment", &svc.environment)
        .list("expose", &svc.expose);
    let hosts: Vec<String> = svc
        .extra_hosts
        .iter()
        .map(|e| format!("{}={}", e.host, e.ip))
        .collect();
    m.list("extra_hosts", &hosts)
        .list("group_add", &h.group_add)
        .text("hostname", svc.hostname.as_deref())
        .opt("healthcheck", svc.healthcheck.as_ref().map(healthcheck))
        .text("image", svc.image.as_deref())
        .opt("init", svc.init.map(Canon::Bool))
        .text("ipc", h.ipc.as_deref())
        .map("labels", &svc.labels)
        .opt("logging", h.logging.as_ref().map(logging))
        .opt("mem_limit", l.memory.map(int))
        .opt("mem_reservation", l.memory_reservation.map(int))
        .opt("memswap_limit", l.memswap.map(int))
        .opt(
            "network_mode",
            svc.network_mode.as_ref().map(|n| s(&n.as_compose())),
        )
        .opt("networks", networks(svc))
        .opt("oom_kill_disable", l.oom_kill_disable.map(Canon::Bool))
        .opt("oom_score_adj", l.oom_score_adj.map(int))
        .text("pid", h.pid.as_deref())
        .opt("pids_limit", l.pids.map(int))
        .text("platform", svc.platform.as_deref())
        .opt(
            "ports",
            (!svc.ports.is_empty()).then(|| Canon::Seq(svc.ports.iter().map(port).collect())),
        )
        .flag("privileged", h.privileged)
        .text("pull_policy", svc.pull_policy.map(PullPolicy::as_str))
        .flag("read_only", h.read_only)
        .text("restart", svc.restart.as_deref())
        .opt("secrets", file_refs(&svc.secrets))
        .list("security_opt", &h.security_opt)
        .opt("shm_size", h.shm_size.map(int))
        .flag("stdin_open", svc.stdin_open)
        .opt("stop_grace_period", duration(svc.stop_grace_period))
        .text("stop_signal", svc.stop_signal.as_deref())
        .map("sysctls", &h.sysctls)
        .flag("tty", svc.tty)
        .opt("ulimits", ulimits(&h.ulimits))
        .text("user", svc.user.as_deref())
        .text("userns_mode", h.userns_mode.as_deref())
        .text("uts", h.uts.as_deref())
        .opt(
            "volumes",
            (!svc.volumes.is_empty()).then(|| Canon::Seq(svc.volumes.iter().map(mount).collect())),
        )
        .text("working_dir", svc.working_dir.as_deref());
    m.done()
}

/// `cpus` as Compose writes it: `0.5`, `2`.
fn cpus(nano: i64) -> Canon {
    let whole = nano / 1_000_000_000;
    let frac = nano % 1_000_000_000;
    if frac == 0 {
        return Canon::Int(whole);
    }
    let digits = format!("{frac:09}");
    Canon::Str(format!("{whole}.{}", digits.trim_end_matches('0')))
}

fn build(b: &Build) -> Canon {
    let mut m = MapOut::default();
    m.text("context", b.context.to_str());
    match &b.dockerfile_inline {
        Some(inline) => m.put("dockerfile_inline", s(inline)),
        None => m.put(
            "dockerfile",
            s(b.dockerfile.as_deref().unwrap_or("Dockerfile")),
        ),
    };
    m.map("args", &b.args).text("target", b.target.as_deref());
    m.done()
}

fn depends_on(svc: &Service) -> Option<Canon> {
    let deps = svc.depends_on.iter().map(|(name, cond)| {
        let mut m = MapOut::default();
        m.put("condition", s(cond.as_str()))
            .put("required", Canon::Bool(!svc.optional_deps.contains(name)));
        (name.clone(), m.done())
    });
    (!svc.depends_on.is_empty()).then(|| Canon::Map(deps.collect()))
}

/// Only the Swarm keys remain under `deploy`: limits are the service-level keys.
fn deploy(svc: &Service) -> Option<Canon> {
    fn json(v: &serde_json::Value) -> Canon {
        match v {
            serde_json::Value::Null => Canon::Null,
            serde_json::Value::Bool(b) => Canon::Bool(*b),
            serde_json::Value::Number(n) => {
                n.as_i64().map_or_else(|| s(&n.to_string()), Canon::Int)
            }
            serde_json::Value::String(t) => s(t),
            serde_json::Value::Array(items) => Canon::Seq(items.iter().map(json).collect()),
            serde_json::Value::Object(m) => {
                Canon::Map(m.iter().map(|(k, v)| (k.clone(), json(v))).collect())
            }
        }
    }
    let entries: Vec<(String, Canon)> = svc
        .swarm
        .iter()
        .map(|(k, v)| (k.clone(), json(v)))
        .collect();
    (!entries.is_empty()).then_some(Canon::Map(entries))
}

fn devices(devices: &[Device]) -> Option<Canon> {
    let items = devices.iter().map(|d| {
        let mut m = MapOut::default();
        m.put("source", s(&d.host))
            .put("target", s(&d.container))
            .put("permissions", s(&d.permissions));
        m.done()
    });
    (!devices.is_empty()).then(|| Canon::Seq(items.collect()))
}

fn healthcheck(h: &Healthcheck) -> Canon {
    let mut m = MapOut::default();
    m.opt("test", (!h.test.is_empty()).then(|| strings(&h.test)))
        .opt("timeout", duration(h.timeout))
        .opt("interval", duration(h.interval))
        .opt("retries", h.retries.map(int))
        .opt("start_period", duration(h.start_period))
        .opt("start_interval", duration(h.start_interval))
        .flag("disable", h.disable);
    m.done()
}

fn logging(l: &Logging) -> Canon {
    let mut m = MapOut::default();
    m.text("driver", l.driver.as_deref())
        .map("options", &l.options);
    m.done()
}

fn networks(svc: &Service) -> Option<Canon> {
    let nets = svc.networks.iter().map(|n| {
        let value = match svc.network_settings.get(n) {
            None => Canon::Null,
            Some(a) => {
                let mut m = MapOut::default();
                m.list("aliases", &a.aliases)
                    .text("ipv4_address", a.ipv4_address.as_deref())
                    .text("ipv6_address", a.ipv6_address.as_deref());
                m.done()
            }
        };
        (n.clone(), value)
    });
    (!svc.networks.is_empty()).then(|| Canon::Map(nets.collect()))
}

fn port(p: &Port) -> Canon {
    let mut m = MapOut::default();
    m.put("mode", s("ingress"))
        .text("host_ip", p.host_ip.as_deref())
        .put("target", int(p.target))
        .opt("published", p.published.map(|n| Canon::Str(n.to_string())))
        .put("protocol", s(&p.protocol));
    m.done()
}

/// A service's `secrets` or `configs`; `mode` as a number, as Compose writes it.
fn file_refs(refs: &[FileRef]) -> Option<Canon> {
    let items = refs.iter().map(|r| {
        let mut m = MapOut::default();
        m.put("source", s(&r.source))
            .text("target", r.target.as_deref())
            .text("uid", r.uid.as_deref())
            .text("gid", r.gid.as_deref())
            .opt("mode", r.mode.map(int));
        m.done()
    });
    (!refs.is_empty()).then(|| Canon::Seq(items.collect()))
}

fn ulimits(limits: &BTreeMap<String, Ulimit>) -> Option<Canon> {
    let items = limits.iter().map(|(name, u)| {
        let value = if u.soft == u.hard {
            Canon::Int(u.soft)
        } else {
            let mut m = MapOut::default();
            m.put("soft", Canon::Int(u.soft))
                .put("hard", Canon::Int(u.hard));
            m.done()
        };
        (name.clone(), value)
    });
    (!limits.is_empty()).then(|| Canon::Map(items.collect()))
}

fn mount(v: &Mount) -> Canon {
    let o = &v.options;
    let mut m = MapOut::default();
    let kind = match v.kind {
        MountKind::Volume => "volume",
        MountKind::Bind => "bind",
        MountKind::Tmpfs => "tmpfs",
    };
    let target = match v.target.trim_end_matches('/') {
        "" => "/",
        t => t,
    };
    m.put("type", s(kind))
        .text("source", v.source.as_deref())
        .put("target", s(target))
        .flag("read_only", v.read_only);
    match v.kind {
        MountKind::Bind => {
            let mut b = MapOut::default();
            b.text("propagation", o.propagation.as_deref())
                .put("create_host_path", Canon::Bool(true))
                .text("selinux", o.selinux.as_deref());
            m.put("bind", b.done());
        }
        MountKind::Volume => {
            let mut b = MapOut::default();
            b.flag("nocopy", o.nocopy);
            m.put("volume", b.done());
        }
        MountKind::Tmpfs => {
            let mut b = MapOut::default();
            b.opt("size", o.tmpfs_size.map(int))
                .opt("mode", o.tmpfs_mode.map(|n| Canon::Str(format!("{n:o}"))));
            if !b.0.is_empty() {
                m.put("tmpfs", b.done());
            }
        }
    }
    m.done()
}

impl Canon {
    /// As JSON, indented by two spaces, keys in order.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.json_into(&mut out, 0);
        out.push('\n');
        out
    }

    fn json_into(&self, out: &mut String, depth: usize) {
        let pad = |out: &mut String, d: usize| {
            out.push('\n');
            out.push_str(&"  ".repeat(d));
        };
        match self {
            Canon::Null => out.push_str("null"),
            Canon::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Canon::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Canon::Str(t) => out.push_str(&serde_json::Value::String(t.clone()).to_string()),
            Canon::Seq(items) if items.is_empty() => out.push_str("[]"),
            Canon::Map(entries) if entries.is_empty() => out.push_str("{}"),
            Canon::Seq(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, depth + 1);
                    item.json_into(out, depth + 1);
                }
                pad(out, depth);
                out.push(']');
            }
            Canon::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, depth + 1);
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push_str(": ");
                    v.json_into(out, depth + 1);
                }
                pad(out, depth);
                out.push('}');
            }
        }
    }

    /// As YAML in block style, keys in order; a string is quoted when YAML would read it
    /// as something else.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        match self {
            Canon::Map(entries) if !entries.is_empty() => yaml_map(entries, &mut out, 0),
            Canon::Seq(items) if !items.is_empty() => yaml_seq(items, &mut out, 0),
            scalar => {
                out.push_str(&yaml_scalar(scalar));
                out.push('\n');
            }
        }
        out
    }
}

fn yaml_scalar(v: &Canon) -> String {
    match v {
        Canon::Null => "null".into(),
        Canon::Bool(b) => b.to_string(),
        Canon::Int(n) => n.to_string(),
        Canon::Str(t) if plain(t) => t.clone(),
        Canon::Str(t) => serde_json::Value::String(t.clone()).to_string(),
        Canon::Seq(_) => "[]".into(),
        Canon::Map(_) => "{}".into(),
    }
}

/// Whether `text` reads back as the same string when written without quotes.
fn plain(text: &str) -> bool {
    let special = matches!(
        text.to_ascii_lowercase().as_str(),
        "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    let numeric = text.parse::<f64>().is_ok()
        || text.starts_with("0x")
        || text.starts_with("0o")
        || text
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '_');
    let first_ok = text
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || "/._".contains(c));
    !special
        && !numeric
        && first_ok
        && !text.ends_with([' ', ':'])
        && !text.contains(": ")
        && !text.contains(" #")
        && text
            .chars()
            .all(|c| !c.is_control() && !"{}[],&*!|>'\"%@`".contains(c))
}

fn is_block(v: &Canon) -> bool {
    matches!(v, Canon::Map(e) if !e.is_empty()) || matches!(v, Canon::Seq(i) if !i.is_empty())
}

fn yaml_map(entries: &[(String, Canon)], out: &mut String, depth: usize) {
    for (k, v) in entries {
        out.push_str(&"  ".repeat(depth));
        out.push_str(&yaml_scalar(&Canon::Str(k.clone())));
        out.push(':');
        yaml_value(v, out, depth);
    }
}

fn yaml_seq(items: &[Canon], out: &mut String, depth: usize) {
    for item in items {
        out.push_str(&"  ".repeat(depth));
        out.push('-');
        match item {
            Canon::Map(entries) if !entries.is_empty() => {
                // The first key on the dash's line, the others below it.
                let mut first = String::new();
                yaml_map(entries, &mut first, depth + 1);
                out.push(' ');
                out.push_str(first.trim_start());
            }
            _ => yaml_value(item, out, depth),
        }
    }
}

/// A value after `key:` or `-`: on the same line when scalar, below when a collection.
fn yaml_value(v: &Canon, out: &mut String, depth: usize) {
    match v {
        Canon::Map(entries) if is_block(v) => {
            out.push('\n');
            yaml_map(entries, out, depth + 1);
        }
        Canon::Seq(items) if is_block(v) => {
            out.push('\n');
            yaml_seq(items, out, depth + 1);
        }
        // A literal block, its chomping indicator keeping the trailing newlines as they
        // are (a config's content is a file); text starting with a space would need an
        // indentation indicator and is quoted instead.
        Canon::Str(t) if t.contains('\n') && !t.starts_with([' ', '\n']) => {
            let body = t.trim_end_matches('\n');
            let trailing = t.len() - body.len();
            out.push_str(match trailing {
                0 => " |-\n",
                1 => " |\n",
                _ => " |+\n",
            });
            for line in body.split('\n') {
                out.push_str(&"  ".repeat(depth + 1));
                out.push_str(line);
                out.push('\n');
            }
            for _ in 1..trailing {
                out.push('\n');
            }
        }
        scalar => {
            out.push(' ');
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn yaml_and_json_keep_the_order_and_quote_what_needs_it() {
        let v = Canon::Map(vec![
            ("name".into(), s("p")),
            (
                "list".into(),
                Canon::Seq(vec![s("8080"), s("a b"), s("x: y"), s("yes")]),
            ),
            (
                "ports".into(),
                Canon::Seq(vec![Canon::Map(vec![
                    ("mode".into(), s("ingress")),
                    ("target".into(), Canon::Int(80)),
                ])]),
            ),
            ("empty".into(), Canon::Map(Vec::new())),
            ("none".into(), Canon::Null),
            ("text".into(), s("a\nb\n")),
        ]);
        assert_eq!(
            v.to_yaml(),
            "name: p\nlist:\n  - \"8080\"\n  - a b\n  - \"x: y\"\n  - \"yes\"\nports:\n  - mode: ingress\n    target: 80\nempty: {}\nnone: null\ntext: |\n  a\n  b\n"
        );
        let json = v.to_json();
        assert!(
            json.starts_with("{\n  \"name\": \"p\",\n  \"list\": [\n    \"8080\","),
            "{json}"
        );
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["ports"][0]["target"], 80);
        assert_eq!(back["text"], "a\nb\n");
    }

    #[test]
    fn text_reads_back_with_its_newlines() {
        for text in [
            "a\nb",
            "a\nb\n",
            "a\n\nb\n\n",
            "x\n\n\n",
            " indented\nx\n",
            "\nfirst line empty\n",
            "tab\there: and # not a comment\n",
        ] {
            let doc = Canon::Map(vec![(
                "outer".into(),
                Canon::Map(vec![("text".into(), Canon::Str(text.into()))]),
            )]);
            let yaml = doc.to_yaml();
            let back: serde_json::Value =
                goodgo_yaml::from_str(std::path::Path::new("t.yaml"), &yaml)
                    .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
            assert_eq!(back["outer"]["text"], text, "{yaml}");
        }
    }

    #[test]
    fn cpus_are_written_as_compose_writes_them() {
        assert_eq!(cpus(500_000_000), s("0.5"));
        assert_eq!(cpus(2_000_000_000), Canon::Int(2));
        assert_eq!(cpus(1_250_000_000), s("1.25"));
    }
}
