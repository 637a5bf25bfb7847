//! From the positioned tree to the resolved [`Project`].
//!
//! Why its own module: this is where Compose's many shapes meet goodgo's one model, and
//! where goodgo decides, key by key, what it does with a file written for `docker compose`:
//! read it (the model has a field for it), warn that it is ignored (the service still runs
//! as meant without it), or refuse the file (ignoring the key would change what runs).
//! The three lists are in `keys`, each entry with its reason, and every message names the
//! key with its full path (`services.db.deploy.resources`) at its `line:col`. A key in no
//! list is a typo and an error with a did-you-mean. `x-*` extension keys are ignored, as
//! the Compose specification says. A key whose value is empty, `null` or `false` changes
//! nothing, so it is accepted silently even where it is otherwise unsupported.
//!
//! This module holds the entry points, the `.env` and interpolation pass, and the top
//! level; one submodule per part of the file does the rest: `keys` (the lists), `read`
//! (typed readers), `service`, `net` (ports, networks, extra hosts), `mounts`, and
//! `resources` (top-level volumes, networks and secrets).
//!
//! File reads here: the Compose file, `.env` beside it, and each service's `env_file`.

mod keys;
mod mounts;
mod net;
mod read;
mod resources;
mod service;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use goodgo_yaml::{Pos, did_you_mean};

use self::keys::{TOP_KEYS, TOP_REFUSE, TOP_WARN};
use self::read::valid_name;
use crate::error::ComposeError;
use crate::model::*;
use crate::yaml::{Node, Value};
use crate::{dotenv, interp, order, yaml};

type Result<T> = std::result::Result<T, ComposeError>;

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
        let Some(text) = dotenv::read_text(&path, &shown)? else {
            return Ok(());
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
}
