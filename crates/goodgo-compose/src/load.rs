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
//! Several files make one project: each is parsed and interpolated on its own, its
//! `include`s added and its `extends` resolved (`files`), then the files are merged in
//! order (`crate::merge`). Every value keeps the file it is written in ([`At`]), so a message
//! names that file's line, and its relative paths resolve where Compose resolves them.
//!
//! This module holds the entry points, the table of files, the `.env` and interpolation
//! pass, and the top level; one submodule per part of the file does the rest: `files`
//! (reading, `include`, `extends`), `keys` (the lists), `read` (typed readers), `service`,
//! `host` (privileges, namespaces and limits), `net` (ports, networks, extra hosts),
//! `mounts`, `resources` (top-level volumes and networks) and `objects` (secrets and
//! configs: definitions and uses).
//!
//! File reads here: the Compose files (and those they include or extend), the `.env`
//! beside the first, and each service's `env_file`.

mod files;
mod host;
mod keys;
mod mounts;
mod net;
mod objects;
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
use crate::yaml::{At, Node, Value};
use crate::{dotenv, interp, order};

type Result<T> = std::result::Result<T, ComposeError>;

/// Reads and resolves the Compose file at `path`; `shown` is how messages name it.
///
/// Variables come from `env`, then from a `.env` file beside the Compose file (so the
/// process environment wins, as with `docker compose`).
pub fn load(path: &Path, shown: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Project> {
    load_files(&[(path, shown)], env)
}

/// Reads the Compose files `files` (each as `(path, shown)`: where it is read, and how
/// messages name it) and resolves them into one project, later files merged over earlier
/// ones by the Compose specification's rules.
///
/// The first file is the project's: its folder is the project's folder, against which
/// relative paths in every file are resolved (as `docker compose -f a -f b` does), and the
/// `.env` beside it gives variables after `env`.
pub fn load_files(
    files: &[(&Path, &Path)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Project> {
    let Some(((first, first_shown), _)) = files.split_first() else {
        return Ok(Project::default());
    };
    let dir = folder_of(first, first_shown)?;
    let mut loader = Loader::new(env, dir, first_shown);
    loader.dotenv = loader.read_dotenv(&loader.dir.clone(), &loader.shown_dir.clone())?;
    let mut root = None;
    for (path, shown) in files {
        let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
            path: shown.to_path_buf(),
            source,
        })?;
        let tree = loader.project_file(text, path, shown)?;
        root = Some(match root {
            None => tree,
            Some(base) => crate::merge::merge(base, tree),
        });
    }
    loader.finish(root)
}

/// The override file `docker compose` reads after `file` when no file is named: beside
/// it, `.override` before its extension (`compose.yaml` → `compose.override.yaml`), when
/// it exists.
pub fn override_file(file: &Path) -> Option<PathBuf> {
    let stem = file.file_stem()?.to_str()?;
    let name = match file.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!("{stem}.override.{ext}"),
        None => format!("{stem}.override"),
    };
    let candidate = file.with_file_name(name);
    candidate.is_file().then_some(candidate)
}

/// The files a `COMPOSE_FILE` value lists: separated by `separator`
/// (`COMPOSE_PATH_SEPARATOR`), else by the system's path separator (`:`); empty parts
/// are skipped.
pub fn compose_file_list(value: &str, separator: Option<&str>) -> Vec<PathBuf> {
    let separator = separator.filter(|s| !s.is_empty()).unwrap_or(":");
    value
        .split(separator)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
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
    let mut loader = Loader::new(env, dir.to_path_buf(), shown);
    loader.dotenv = loader.read_dotenv(&loader.dir.clone(), &loader.shown_dir.clone())?;
    let tree = loader.project_file(text.to_string(), &dir.join("compose.yaml"), shown)?;
    loader.finish(Some(tree))
}

/// The absolute folder of the file at `path`.
fn folder_of(path: &Path, shown: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(path).map_err(|source| ComposeError::Read {
        path: shown.to_path_buf(),
        source,
    })?;
    Ok(absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf))
}

/// One file read for the project: how messages name it, where its relative paths lead,
/// and its text (to place a variable inside a value).
struct Source {
    shown: PathBuf,
    /// The folder its relative paths are resolved against, absolute.
    dir: PathBuf,
    /// That folder as shown in messages.
    shown_dir: PathBuf,
    text: String,
}

struct Loader<'a> {
    /// Every file read, indexed by [`At::file`]; the first is the project's.
    files: Vec<Source>,
    /// The project's folder, absolute, and as shown.
    dir: PathBuf,
    shown_dir: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
    dotenv: BTreeMap<String, String>,
    diags: Vec<Diagnostic>,
    warned_vars: BTreeSet<String>,
    /// For a value whose interpolation used unset variables: each of them and where it is
    /// written, so a value they left broken is reported at the variable.
    unset: BTreeMap<At, Vec<(String, At)>>,
    /// The top-level secrets and configs, each resolved to what a service's use gets, and
    /// whether one uses it.
    objects: BTreeMap<(objects::Kind, String), objects::Object>,
}

/// Names defined at the top level, which services may refer to.
struct Defined {
    volumes: BTreeSet<String>,
    networks: BTreeSet<String>,
    secrets: BTreeSet<String>,
    configs: BTreeSet<String>,
    services: BTreeSet<String>,
}

impl<'a> Loader<'a> {
    fn new(env: &'a dyn Fn(&str) -> Option<String>, dir: PathBuf, shown: &Path) -> Self {
        Loader {
            files: Vec::new(),
            dir,
            shown_dir: shown.parent().map(Path::to_path_buf).unwrap_or_default(),
            env,
            dotenv: BTreeMap::new(),
            diags: Vec::new(),
            warned_vars: BTreeSet::new(),
            unset: BTreeMap::new(),
            objects: BTreeMap::new(),
        }
    }

    /// The file a value is written in, as shown.
    fn shown(&self, at: At) -> &Path {
        self.files
            .get(at.file as usize)
            .map_or(Path::new(""), |f| f.shown.as_path())
    }

    /// The folder, absolute and as shown, that a value's relative paths are resolved
    /// against.
    fn dirs(&self, at: At) -> (&Path, &Path) {
        match self.files.get(at.file as usize) {
            Some(f) => (&f.dir, &f.shown_dir),
            None => (&self.dir, &self.shown_dir),
        }
    }

    /// Where a value is written, for the model.
    fn place(&self, at: At) -> Place {
        Place {
            file: self.shown(at).to_path_buf(),
            pos: at.pos,
        }
    }

    fn fail(&self, at: At, message: impl Into<String>) -> ComposeError {
        ComposeError::at(self.shown(at), at.pos, message)
    }

    /// A bad value: at the first unset variable it uses, when it uses one (an unset
    /// variable is the likely cause of a broken value), else at the value.
    fn bad_value(&self, node: &Node, message: impl Into<String>) -> ComposeError {
        let message = message.into();
        match self.unset.get(&node.pos).and_then(|vars| vars.first()) {
            Some((name, at)) => self.fail(
                *at,
                format!("{message} (the variable `{name}` is not set, so it expanded to nothing)"),
            ),
            None => self.fail(node.pos, message),
        }
    }

    fn warn(&mut self, at: At, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Warning,
            path: self.shown(at).to_path_buf(),
            pos: at.pos,
            message: message.into(),
        });
    }

    /// A variable from the environment, then from `.env`.
    fn lookup(&self, name: &str) -> Option<String> {
        (self.env)(name).or_else(|| self.dotenv.get(name).cloned())
    }

    /// Interpolates one value, warning once per unset variable; returns the value and the
    /// unset variables it used.
    fn expand(
        &mut self,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
        path: &Path,
        pos: Pos,
    ) -> Result<(String, Vec<String>)> {
        let mut unset = Vec::new();
        let out = interp::interpolate(text, lookup, &mut |n| unset.push(n.to_string()))
            .map_err(|m| ComposeError::at(path, pos, m))?;
        for name in &unset {
            if self.warned_vars.insert(name.clone()) {
                self.diags.push(Diagnostic {
                    severity: Severity::Warning,
                    path: path.to_path_buf(),
                    pos,
                    message: format!("variable `{name}` is not set; using an empty string"),
                });
            }
        }
        Ok((out, unset))
    }

    /// The variables of the `.env` file in `dir` (shown as `shown_dir`), each resolved with
    /// the environment and the lines above it.
    fn read_dotenv(&mut self, dir: &Path, shown_dir: &Path) -> Result<BTreeMap<String, String>> {
        self.read_env_vars(&dir.join(".env"), &shown_dir.join(".env"), false)
    }

    /// The variables of an `.env`-format file (an error when `required` and missing).
    fn read_env_vars(
        &mut self,
        path: &Path,
        shown: &Path,
        required: bool,
    ) -> Result<BTreeMap<String, String>> {
        let mut vars = BTreeMap::new();
        let Some(text) = dotenv::read_text(path, shown)? else {
            if required {
                return Err(ComposeError::Read {
                    path: shown.to_path_buf(),
                    source: std::io::ErrorKind::NotFound.into(),
                });
            }
            return Ok(vars);
        };
        let lines = dotenv::parse(&text).map_err(|(pos, m)| ComposeError::at(shown, pos, m))?;
        for line in lines {
            let value = match line.value {
                None => (self.env)(&line.key),
                Some(raw) if raw.literal => Some(raw.text),
                Some(raw) => {
                    let so_far = vars.clone();
                    let env = self.env;
                    let lookup = move |n: &str| env(n).or_else(|| so_far.get(n).cloned());
                    Some(self.expand(&raw.text, &lookup, shown, raw.pos)?.0)
                }
            };
            if let Some(value) = value {
                vars.insert(line.key, value);
            }
        }
        Ok(vars)
    }

    /// Interpolates every scalar value of the tree (keys stay as written) with `vars`
    /// after the environment, remembering where unset variables were used.
    fn interpolate_tree(&mut self, node: &mut Node, vars: &BTreeMap<String, String>) -> Result<()> {
        match &mut node.value {
            Value::Str(text) => {
                if text.contains('$') {
                    let env = self.env;
                    let lookup = |n: &str| env(n).or_else(|| vars.get(n).cloned());
                    let file = self.shown(node.pos).to_path_buf();
                    let (out, unset) = self.expand(text, &lookup, &file, node.pos.pos)?;
                    *text = out;
                    if !unset.is_empty() {
                        let places = unset
                            .into_iter()
                            .map(|name| {
                                let at = self.variable_at(node.pos, &name);
                                (name, at)
                            })
                            .collect();
                        self.unset.insert(node.pos, places);
                    }
                }
                Ok(())
            }
            Value::Null => Ok(()),
            Value::Seq(items) => items
                .iter_mut()
                .try_for_each(|n| self.interpolate_tree(n, vars)),
            Value::Map(entries) => entries
                .iter_mut()
                .try_for_each(|e| self.interpolate_tree(&mut e.value, vars)),
        }
    }

    /// Where `$name` or `${name…` is written in the value starting at `at` (the value's
    /// own position when it cannot be found, as in an alias).
    fn variable_at(&self, at: At, name: &str) -> At {
        let Some(source) = self.files.get(at.file as usize) else {
            return at;
        };
        let first = at.pos.line as usize;
        for (k, line) in source.text.lines().enumerate().skip(first - 1).take(50) {
            let chars: Vec<char> = line.chars().collect();
            let from = if k + 1 == first {
                at.pos.col as usize - 1
            } else {
                0
            };
            for i in from..chars.len() {
                if chars[i] != '$' || (i > 0 && chars[i - 1] == '$') {
                    continue;
                }
                let start = if chars.get(i + 1) == Some(&'{') {
                    i + 2
                } else {
                    i + 1
                };
                let end = start + name.chars().count();
                let same: String = chars.iter().skip(start).take(end - start).collect();
                let next = chars.get(end).copied();
                if same == name && !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    let line = u32::try_from(k + 1).unwrap_or(u32::MAX);
                    let col = u32::try_from(i + 1).unwrap_or(u32::MAX);
                    return At::new(at.file, Pos::new(line, col));
                }
            }
        }
        at
    }

    /// The merged tree to the project: `!reset`s applied, read.
    fn finish(self, root: Option<Node>) -> Result<Project> {
        let mut root = root.unwrap_or(Node::new(At::default(), Value::Map(Vec::new())));
        crate::yaml::strip_resets(&mut root);
        if matches!(root.value, Value::Null) {
            root.value = Value::Map(Vec::new());
        }
        self.project(&root)
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
            file: self.shown(At::default()).to_path_buf(),
            files: self.files.iter().map(|f| f.shown.clone()).collect(),
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
                            return Err(self.bad_value(
                                &e.value,
                                format!("name: invalid project name `{name}`: use lowercase letters, digits, `_` and `-`, starting with a letter or digit"),
                            ));
                        }
                    }
                }
                "services" => services_node = Some(e),
                "volumes" => project.volumes = self.volume_defs(&e.value)?,
                "networks" => project.networks = self.network_defs(&e.value)?,
                "secrets" => project.secrets = self.secret_defs(&e.value)?,
                "configs" => project.configs = self.config_defs(&e.value)?,
                _ => self.other_key(e, "", TOP_KEYS, TOP_WARN, TOP_REFUSE)?,
            }
        }
        let mut defined = Defined {
            volumes: project.volumes.keys().cloned().collect(),
            networks: project.networks.keys().cloned().collect(),
            secrets: project.secrets.keys().cloned().collect(),
            configs: project.configs.keys().cloned().collect(),
            services: BTreeSet::new(),
        };
        if let Some(e) = services_node {
            let entries = self.entries(&e.value, "services")?;
            defined.services = entries.iter().map(|s| s.key.clone()).collect();
            for s in entries {
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
        order::check_cycles(&project.services, &project.file)?;
        self.unused_externals();
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
                let place = service.dependency_place(&dep);
                let hint = did_you_mean(&dep, names.iter().map(String::as_str))
                    .map(|b| format!(" (did you mean `{b}`?)"))
                    .unwrap_or_default();
                let path = format!("services.{}.depends_on", service.name);
                if service.optional_deps.contains(&dep) {
                    self.diags.push(Diagnostic {
                        severity: Severity::Warning,
                        path: place.file,
                        pos: place.pos,
                        message: format!("{path}: no service `{dep}`{hint}; skipped because it has `required: false`"),
                    });
                    service.depends_on.remove(&dep);
                    service.optional_deps.remove(&dep);
                } else {
                    return Err(ComposeError::at(
                        &place.file,
                        place.pos,
                        format!("{path}: no service `{dep}`{hint}"),
                    ));
                }
            }
        }
        Ok(())
    }
}
