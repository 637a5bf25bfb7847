//! One service: its keys read into a [`Service`], with `image`, `build`, `command`,
//! `env_file`, `healthcheck`, `depends_on`, `restart` and `deploy` each read by its own
//! parser.
//!
//! Why its own module: the `services.<name>` mapping is most of a Compose file; ports and
//! networks (`net`), mounts (`mounts`), uses of secrets and configs (`objects`) and what the
//! container gets from the host (`host`) have modules of their own.

use std::collections::BTreeMap;
use std::path::PathBuf;

use goodgo_yaml::did_you_mean;

use super::keys::*;
use super::objects::Kind;
use super::read::{join, json_of, normalize};
use super::{Defined, Loader, Result};
use crate::error::ComposeError;
use crate::model::*;
use crate::yaml::{At, Entry, Node, Value};
use crate::{dotenv, syntax, values};

impl Loader<'_> {
    pub(super) fn service(&mut self, entry: &Entry, defined: &Defined) -> Result<Service> {
        let name = entry.key.clone();
        let path = format!("services.{name}");
        let node = &entry.value;
        if !matches!(node.value, Value::Map(_)) {
            return Err(self.expected(node, &path, "a mapping"));
        }
        let mut s = Service {
            name: name.clone(),
            pos: entry.key_pos.pos,
            file: self.shown(entry.key_pos).to_path_buf(),
            ..Service::default()
        };
        let mut image_node = None;
        let mut written: BTreeMap<&'static str, At> = BTreeMap::new();
        let mut networks_at = None;
        let mut env_files: Vec<(String, Option<String>)> = Vec::new();
        let mut environment = Vec::new();
        let mut tmpfs = Vec::new();
        let mut networks_given = false;
        for (e, p) in self.set_entries(node, &path, SERVICE_KEYS)? {
            let v = &e.value;
            match e.key.as_str() {
                "image" => {
                    s.image = self.opt_string(v, &p)?;
                    image_node = Some(v);
                }
                "build" => s.build = Some(self.build(v, &p)?),
                "command" => s.command = Some(self.command_line(v, &p)?),
                "entrypoint" => s.entrypoint = Some(self.command_line(v, &p)?),
                "environment" => environment = self.key_values(v, &p)?,
                "env_file" => env_files = self.env_files(v, &p)?,
                "ports" => {
                    written.insert("ports", e.key_pos);
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
                    let items = match &v.value {
                        Value::Seq(items) => items.as_slice(),
                        _ => std::slice::from_ref(v),
                    };
                    for item in items {
                        let spec = self.string(item, &p)?;
                        tmpfs.push(self.tmpfs_entry(item, &spec, &p)?);
                    }
                }
                "networks" => {
                    networks_given = true;
                    networks_at = Some(e.key_pos);
                    self.service_networks(v, &p, defined, &mut s)?;
                }
                "healthcheck" => s.healthcheck = Some(self.healthcheck(v, &p)?),
                "depends_on" => self.depends_on(v, &p, &mut s)?,
                "restart" => s.restart = Some(self.restart(v, &p)?),
                "profiles" => s.profiles = self.string_list(v, &p)?,
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
                            .map_err(|m| self.bad_value(item, format!("{ip}: {m}")))?;
                        s.expose.push(norm);
                    }
                }
                "user" => s.user = self.opt_string(v, &p)?,
                "hostname" => {
                    s.hostname = self.opt_string(v, &p)?;
                    written.insert("hostname", v.pos);
                }
                "stop_signal" => s.stop_signal = self.opt_string(v, &p)?,
                "stop_grace_period" => s.stop_grace_period = Some(self.duration(v, &p)?),
                "secrets" | "configs" => {
                    let kind = if e.key == "secrets" {
                        Kind::Secret
                    } else {
                        Kind::Config
                    };
                    for (i, item) in self.items(v, &p)?.iter().enumerate() {
                        let r = self.file_ref(kind, item, &format!("{p}[{i}]"), defined)?;
                        match kind {
                            Kind::Secret => s.secrets.push(r),
                            Kind::Config => s.configs.push(r),
                        }
                    }
                }
                "cap_add" => s.cap_add = self.string_list(v, &p)?,
                "cap_drop" => s.cap_drop = self.string_list(v, &p)?,
                "platform" => s.platform = self.opt_string(v, &p)?,
                "working_dir" => s.working_dir = self.opt_string(v, &p)?,
                "init" => s.init = Some(self.boolean(v, &p)?),
                "tty" => s.tty = self.boolean(v, &p)?,
                "stdin_open" => s.stdin_open = self.boolean(v, &p)?,
                "extra_hosts" => s.extra_hosts = self.extra_hosts(v, &p)?,
                "deploy" => self.deploy(v, &p, &mut s)?,
                "scale" => {
                    let n = self.uint(v, &p)?;
                    if n != 1 {
                        return Err(self.fail(
                            v.pos,
                            format!("`{p}: {n}` is not supported by goodgo: it runs one instance of each service"),
                        ));
                    }
                }
                key => {
                    if let Some(k) = ["network_mode", "pid", "ipc", "uts", "cgroup", "pull_policy"]
                        .into_iter()
                        .find(|k| *k == key)
                    {
                        written.insert(k, v.pos);
                    }
                    if !self.host_key(e, &p, &mut s, defined)? {
                        self.other_key(e, &path, SERVICE_KEYS, SERVICE_WARN, SERVICE_REFUSE)?;
                    }
                }
            }
        }
        match (&s.image, image_node) {
            (Some(image), Some(node)) => values::check_image(image)
                .map_err(|m| self.bad_value(node, format!("{path}.image: {m}")))?,
            // Written, but empty once interpolated: the variable that emptied it is named.
            (None, Some(node)) if s.build.is_none() && self.unset.contains_key(&node.pos) => {
                return Err(
                    self.bad_value(node, format!("{path}.image: the image reference is empty"))
                );
            }
            _ => {}
        }
        if s.image.is_none() && s.build.is_none() {
            return Err(self.fail(
                entry.key_pos,
                format!("{path}: a service needs `image` or `build`"),
            ));
        }
        s.volumes.extend(tmpfs);
        match (&s.network_mode, networks_at) {
            (Some(mode), Some(at)) => {
                return Err(self.fail(
                    at,
                    format!("{path}: `networks` cannot be set with `network_mode: {}`: the container shares another network stack", mode.as_compose()),
                ));
            }
            (Some(_), None) => {}
            (None, _) if !networks_given => s.networks.push("default".into()),
            (None, _) => {}
        }
        self.check_network_mode(&mut s, &written, &path)?;
        if s.pull_policy == Some(PullPolicy::Build) && s.build.is_none() {
            return Err(self.fail(
                written.get("pull_policy").copied().unwrap_or(entry.key_pos),
                format!("{path}: `pull_policy: build` needs a `build` section"),
            ));
        }
        // Sharing another service's namespace means starting after it.
        for (dep, at) in self.namespace_services(&s, &written) {
            if dep == s.name {
                return Err(self.fail(
                    at,
                    format!("{path}: a service cannot share its own namespace"),
                ));
            }
            if !s.depends_on.contains_key(&dep) {
                s.depends_on.insert(dep.clone(), Condition::Started);
                s.depends_on_pos.insert(dep, self.place(at));
            }
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

    pub(super) fn command_line(&self, node: &Node, path: &str) -> Result<CommandLine> {
        match &node.value {
            Value::Str(text) => {
                syntax::shlex_split(text)
                    .map_err(|m| self.fail(node.pos, format!("{path}: {m}")))?;
                Ok(CommandLine::Shell(text.clone()))
            }
            Value::Seq(_) => Ok(CommandLine::Exec(self.string_list(node, path)?)),
            _ => Err(self.expected(node, path, "a string or a list of strings")),
        }
    }

    pub(super) fn build(&mut self, node: &Node, path: &str) -> Result<Build> {
        let mut context = ".".to_string();
        let mut context_pos = node.pos;
        let mut b = Build {
            context: PathBuf::new(),
            dockerfile: None,
            target: None,
            args: BTreeMap::new(),
            dockerfile_inline: None,
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
                        "dockerfile_inline" => b.dockerfile_inline = self.opt_string(v, &p)?,
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
        if b.dockerfile.is_some() && b.dockerfile_inline.is_some() {
            return Err(self.fail(
                node.pos,
                format!("{path}: `dockerfile` and `dockerfile_inline` cannot both be set"),
            ));
        }
        b.context = normalize(&self.dirs(context_pos).0.join(&context));
        Ok(b)
    }

    pub(super) fn env_files(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Result<Vec<(String, Option<String>)>> {
        let mut files: Vec<(String, bool, At)> = Vec::new();
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
            let (dir, shown_dir) = self.dirs(pos);
            let real = dir.join(&file);
            let shown = shown_dir.join(&file);
            let text = match std::fs::read_to_string(&real) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(source) => {
                    let at = self.fail(
                        pos,
                        format!("{path}: cannot read `{}`: {source}", shown.display()),
                    );
                    return Err(ComposeError::unreadable(at, source));
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
                        Some(self.expand(&raw.text, &lookup, &shown, raw.pos)?.0)
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

    pub(super) fn healthcheck(&mut self, node: &Node, path: &str) -> Result<Healthcheck> {
        let mut h = Healthcheck::default();
        for (e, p) in self.set_entries(node, path, HEALTH_KEYS)? {
            let v = &e.value;
            let duration = || self.duration(v, &p).map(Some);
            match e.key.as_str() {
                "test" => h.test = self.health_test(v, &p)?,
                "interval" => h.interval = duration()?,
                "timeout" => h.timeout = duration()?,
                "retries" => h.retries = Some(self.uint(v, &p)?),
                "start_period" => h.start_period = duration()?,
                "start_interval" => {
                    h.start_interval = duration()?;
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

    pub(super) fn health_test(&self, node: &Node, path: &str) -> Result<Vec<String>> {
        match &node.value {
            Value::Str(s) if s.trim().is_empty() => {
                Err(self.fail(node.pos, format!("{path}: the test command is empty")))
            }
            Value::Str(s) => Ok(vec!["CMD-SHELL".into(), s.clone()]),
            Value::Seq(_) => {
                let test = self.string_list(node, path)?;
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

    pub(super) fn depends_on(&mut self, node: &Node, path: &str, s: &mut Service) -> Result<()> {
        let add =
            |me: &Self, s: &mut Service, name: String, pos: At, cond: Condition| -> Result<()> {
                if name == s.name {
                    return Err(me.fail(
                        pos,
                        format!("{path}: the service `{name}` cannot depend on itself"),
                    ));
                }
                if s.depends_on.insert(name.clone(), cond).is_some() {
                    return Err(me.fail(pos, format!("{path}: `{name}` is listed twice")));
                }
                s.depends_on_pos.insert(name, me.place(pos));
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

    pub(super) fn restart(&self, node: &Node, path: &str) -> Result<String> {
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
                .filter(|_| !r.is_empty())
                .map(|b| format!(" (did you mean `{b}`?)"))
                .unwrap_or_default();
            return Err(self.bad_value(
                node,
                format!("{path}: unknown restart policy `{r}`{hint}; expected `no`, `always`, `on-failure[:N]` or `unless-stopped`"),
            ));
        }
        Ok(r)
    }

    pub(super) fn deploy(&mut self, node: &Node, path: &str, s: &mut Service) -> Result<()> {
        for e in self.entries(node, path)? {
            let p = join(path, &e.key);
            if SWARM_KEYS.contains(&e.key.as_str()) {
                s.swarm.insert(e.key.clone(), json_of(&e.value));
                continue;
            }
            match e.key.as_str() {
                "resources" => self.resources(&e.value, &p, &mut s.host.limits)?,
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
}
