//! The files of a project: each read into a positioned tree, interpolated, its `include`s
//! added and each of its services' `extends` replaced by what it inherits.
//!
//! Why its own module: these are the steps that read more files than the ones given, and
//! each new file gets its own entry in the loader's table, so a message about a value in
//! it names that file's line, and its relative paths resolve where Compose resolves them:
//! - an included file's against its `project_directory` (its own folder by default), with
//!   variables from its `env_file` (the `.env` there by default);
//! - an extended file's against its own folder, with the project's variables.
//!
//! Both refuse a cycle, naming the chain, at the key that closes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use goodgo_yaml::Pos;

use super::read::{join, normalize};
use super::{Loader, Result, Source};
use crate::error::ComposeError;
use crate::merge::{merge, merge_service};
use crate::yaml::{self, At, Entry, Node, Value};

/// The top-level sections an included file adds to the project.
const IMPORTED: [&str; 5] = ["services", "volumes", "networks", "secrets", "configs"];

/// A service being resolved: `None` for the project's services, else the index of
/// another file read for `extends`.
type Scope = Option<u32>;

/// An `include` entry: its files, its project folder and its variable files, each with
/// where it is written.
struct IncludeSpec {
    paths: Vec<(String, At)>,
    project_directory: Option<String>,
    env_files: Vec<(String, At)>,
}

/// Other files read for `extends`, by absolute path: their index and `services`.
#[derive(Default)]
struct Extended {
    files: BTreeMap<PathBuf, (u32, Node)>,
}

fn find<'n>(node: &'n Node, key: &str) -> Option<&'n Entry> {
    match &node.value {
        Value::Map(entries) => entries.iter().find(|e| e.key == key),
        _ => None,
    }
}

fn find_mut<'n>(node: &'n mut Node, key: &str) -> Option<&'n mut Entry> {
    match &mut node.value {
        Value::Map(entries) => entries.iter_mut().find(|e| e.key == key),
        _ => None,
    }
}

impl Loader<'_> {
    /// Adds a file to the table; its index.
    fn add_source(
        &mut self,
        shown: PathBuf,
        dir: PathBuf,
        shown_dir: PathBuf,
        text: String,
    ) -> u32 {
        self.files.push(Source {
            shown,
            dir,
            shown_dir,
            text,
        });
        u32::try_from(self.files.len() - 1).unwrap_or(u32::MAX)
    }

    /// The tree of file `idx` (an empty mapping for an empty file).
    fn parse_source(&self, idx: u32) -> Result<Node> {
        let source = &self.files[idx as usize];
        let root = yaml::parse(&source.text, idx)
            .map_err(|e| ComposeError::at(&source.shown, e.pos, e.message))?;
        let mut root = root.unwrap_or(Node::new(At::new(idx, Pos::new(1, 1)), Value::Null));
        if matches!(root.value, Value::Null) {
            root.value = Value::Map(Vec::new());
        }
        Ok(root)
    }

    /// A file given for the project (`text`, read from `path`): parsed, interpolated with
    /// the project's variables, its `include`s added. Its relative paths resolve against
    /// the project's folder.
    pub(super) fn project_file(&mut self, text: String, path: &Path, shown: &Path) -> Result<Node> {
        let (dir, shown_dir) = (self.dir.clone(), self.shown_dir.clone());
        let idx = self.add_source(shown.to_path_buf(), dir, shown_dir, text);
        let mut tree = self.parse_source(idx)?;
        let vars = self.dotenv.clone();
        self.interpolate_tree(&mut tree, &vars)?;
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        self.include(&mut tree, &mut vec![normalize(&absolute)])?;
        self.apply_extends(&mut tree)?;
        Ok(tree)
    }

    /// Reads a file a value names (`name`, written at `at`, relative to that file's
    /// folder): its absolute path, how messages show it, and its text.
    fn read_named(&self, name: &str, at: At, path: &str) -> Result<(PathBuf, PathBuf, String)> {
        let (dir, shown_dir) = self.dirs(at);
        let real = normalize(&dir.join(name));
        let shown = normalize(&shown_dir.join(name));
        match std::fs::read_to_string(&real) {
            Ok(text) => Ok((real, shown, text)),
            Err(source) => {
                let at = self.fail(
                    at,
                    format!("{path}: cannot read `{}`: {source}", shown.display()),
                );
                Err(ComposeError::unreadable(at, source))
            }
        }
    }

    fn include_spec(&self, item: &Node, path: &str) -> Result<IncludeSpec> {
        let mut spec = IncludeSpec {
            paths: Vec::new(),
            project_directory: None,
            env_files: Vec::new(),
        };
        match &item.value {
            Value::Str(p) => spec.paths.push((p.clone(), item.pos)),
            Value::Map(entries) => {
                for e in entries {
                    let p = join(path, &e.key);
                    match e.key.as_str() {
                        "path" => spec.paths = self.strings(&e.value, &p, true)?,
                        "project_directory" => {
                            spec.project_directory = self.opt_string(&e.value, &p)?
                        }
                        "env_file" => spec.env_files = self.strings(&e.value, &p, true)?,
                        _ => {
                            return Err(self.fail(
                                e.key_pos,
                                format!("{path}: unknown key `{}`; expected `path`, `project_directory` or `env_file`", e.key),
                            ));
                        }
                    }
                }
            }
            _ => return Err(self.expected(item, path, "a path or a mapping")),
        }
        if spec.paths.is_empty() {
            return Err(self.fail(item.pos, format!("{path}: missing key `path`")));
        }
        Ok(spec)
    }

    /// Resolves the top-level `include` of `tree`, written in the last file of `chain`
    /// (the files including each other down to it): every included project's services and
    /// resources are added to `tree`.
    fn include(&mut self, tree: &mut Node, chain: &mut Vec<PathBuf>) -> Result<()> {
        let entry = match &mut tree.value {
            Value::Map(entries) => match entries.iter().position(|e| e.key == "include") {
                Some(i) => entries.remove(i),
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        for (k, item) in self.items(&entry.value, "include")?.iter().enumerate() {
            let p = format!("include[{k}]");
            let spec = self.include_spec(item, &p)?;
            let (dir, shown_dir) = {
                let (d, s) = self.dirs(item.pos);
                (d.to_path_buf(), s.to_path_buf())
            };
            let first = &spec.paths[0].0;
            let (project_dir, project_shown) = match &spec.project_directory {
                Some(d) => (normalize(&dir.join(d)), normalize(&shown_dir.join(d))),
                None => {
                    let parent = |p: PathBuf| p.parent().map(Path::to_path_buf).unwrap_or_default();
                    (
                        parent(normalize(&dir.join(first))),
                        parent(normalize(&shown_dir.join(first))),
                    )
                }
            };
            let vars = if spec.env_files.is_empty() {
                self.read_dotenv(&project_dir, &project_shown)?
            } else {
                let mut vars = BTreeMap::new();
                for (file, at) in &spec.env_files {
                    let (real, shown, _) = self.read_named(file, *at, &format!("{p}.env_file"))?;
                    vars.extend(self.read_env_vars(&real, &shown, true)?);
                }
                vars
            };
            let mut included: Option<Node> = None;
            for (file, at) in &spec.paths {
                let (real, shown, text) = self.read_named(file, *at, &format!("{p}.path"))?;
                if let Some(start) = chain.iter().position(|c| *c == real) {
                    let names: Vec<String> = chain[start..]
                        .iter()
                        .chain([&real])
                        .map(|c| {
                            c.file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        })
                        .collect();
                    return Err(
                        self.fail(*at, format!("{p}: include cycle: {}", names.join(" -> ")))
                    );
                }
                let idx = self.add_source(shown, project_dir.clone(), project_shown.clone(), text);
                let mut sub = self.parse_source(idx)?;
                self.interpolate_tree(&mut sub, &vars)?;
                chain.push(real);
                self.include(&mut sub, chain)?;
                chain.pop();
                self.apply_extends(&mut sub)?;
                included = Some(match included {
                    None => sub,
                    Some(base) => merge(base, sub),
                });
            }
            if let Some(sub) = included {
                self.import(tree, sub)?;
            }
        }
        Ok(())
    }

    /// Adds the services and resources of an included project to `tree`; a name both
    /// define is an error at the including file's definition.
    fn import(&self, tree: &mut Node, sub: Node) -> Result<()> {
        let Value::Map(sections) = sub.value else {
            return Ok(());
        };
        for section in sections {
            if !IMPORTED.contains(&section.key.as_str()) {
                continue;
            }
            let Value::Map(defs) = section.value.value else {
                continue;
            };
            if find(tree, &section.key).is_none()
                && let Value::Map(top) = &mut tree.value
            {
                top.push(Entry {
                    key: section.key.clone(),
                    key_pos: section.key_pos,
                    value: Node::new(section.value.pos, Value::Map(Vec::new())),
                });
            }
            let Some(target) = find_mut(tree, &section.key) else {
                continue;
            };
            if matches!(target.value.value, Value::Null) {
                target.value.value = Value::Map(Vec::new());
            }
            let Value::Map(existing) = &mut target.value.value else {
                continue;
            };
            for def in defs {
                if let Some(mine) = existing.iter().find(|e| e.key == def.key) {
                    return Err(self.fail(
                        mine.key_pos,
                        format!(
                            "{}.{}: also defined by the included {} (line {}): rename one of them",
                            section.key,
                            def.key,
                            self.shown(def.key_pos).display(),
                            def.key_pos.pos.line
                        ),
                    ));
                }
                existing.push(def);
            }
        }
        Ok(())
    }

    /// Replaces each service's `extends` by the keys it inherits, merged under its own —
    /// in each file on its own, before the files are merged, as Compose does: a service
    /// extends one of its own file (or of the file it names).
    fn apply_extends(&mut self, root: &mut Node) -> Result<()> {
        let Some(services) = find(root, "services").map(|e| e.value.clone()) else {
            return Ok(());
        };
        let Value::Map(entries) = &services.value else {
            return Ok(());
        };
        let mut resolved = Vec::new();
        for e in entries {
            if find(&e.value, "extends").is_some() {
                let node = self.extended(
                    &services,
                    None,
                    &e.key,
                    &mut Vec::new(),
                    &mut Extended::default(),
                    e.key_pos,
                )?;
                resolved.push((e.key.clone(), node));
            }
        }
        if let Some(target) = find_mut(root, "services")
            && let Value::Map(entries) = &mut target.value.value
        {
            for (name, node) in resolved {
                if let Some(e) = entries.iter_mut().find(|e| e.key == name) {
                    e.value = node;
                }
            }
        }
        Ok(())
    }

    /// The service `name` of `services` (in `scope`) with its `extends` resolved;
    /// `chain` holds the services being resolved, `from` is where `name` is asked for.
    fn extended(
        &mut self,
        services: &Node,
        scope: Scope,
        name: &str,
        chain: &mut Vec<(Scope, String)>,
        read: &mut Extended,
        from: At,
    ) -> Result<Node> {
        let Some(entry) = find(services, name) else {
            let file = self.shown(services.pos).display().to_string();
            return Err(self.fail(from, format!("no service `{name}` in {file}")));
        };
        let mut node = entry.value.clone();
        let Some(ext) = find(&node, "extends").cloned() else {
            return Ok(node);
        };
        let path = format!("services.{name}.extends");
        let (target, file, at) = match &ext.value.value {
            Value::Str(s) => (s.clone(), None, ext.value.pos),
            Value::Map(entries) => {
                let mut target = None;
                let mut file = None;
                for e in entries {
                    let p = join(&path, &e.key);
                    match e.key.as_str() {
                        "service" => target = Some((self.string(&e.value, &p)?, e.value.pos)),
                        "file" => file = Some((self.string(&e.value, &p)?, e.value.pos)),
                        _ => {
                            return Err(self.fail(
                                e.key_pos,
                                format!(
                                    "{path}: unknown key `{}`; expected `service` or `file`",
                                    e.key
                                ),
                            ));
                        }
                    }
                }
                let Some((target, at)) = target else {
                    return Err(self.fail(ext.value.pos, format!("{path}: missing key `service`")));
                };
                (target, file, at)
            }
            _ => return Err(self.expected(&ext.value, &path, "a service name or a mapping")),
        };
        let in_file = file
            .as_ref()
            .map(|(f, _)| format!(" in {f}"))
            .unwrap_or_default();
        let (target_scope, target_services) = match file {
            None => (scope, services.clone()),
            Some((file, file_at)) => self.extended_file(&file, file_at, &path, read)?,
        };
        chain.push((scope, name.to_string()));
        if let Some(start) = chain
            .iter()
            .position(|(s, n)| *s == target_scope && *n == target)
        {
            let mut names: Vec<&str> = chain[start..].iter().map(|(_, n)| n.as_str()).collect();
            names.push(&target);
            return Err(self.fail(
                at,
                format!("{path}: circular extends: {}", names.join(" -> ")),
            ));
        }
        if find(&target_services, &target).is_none() {
            let names: Vec<&str> = match &target_services.value {
                Value::Map(entries) => entries.iter().map(|e| e.key.as_str()).collect(),
                _ => Vec::new(),
            };
            let hint = goodgo_yaml::did_you_mean(&target, names)
                .map(|b| format!(" (did you mean `{b}`?)"))
                .unwrap_or_default();
            return Err(self.fail(
                at,
                format!("{path}: no service `{target}` to extend{in_file}{hint}"),
            ));
        }
        let base = self.extended(&target_services, target_scope, &target, chain, read, at)?;
        chain.pop();
        if let Value::Map(entries) = &mut node.value {
            entries.retain(|e| e.key != "extends");
        }
        Ok(merge_service(base, node))
    }

    /// Another file named by `extends`: read once, interpolated with the project's
    /// variables; its index and its `services`.
    fn extended_file(
        &mut self,
        file: &str,
        at: At,
        path: &str,
        read: &mut Extended,
    ) -> Result<(Scope, Node)> {
        let (real, shown, text) = self.read_named(file, at, &join(path, "file"))?;
        if let Some((idx, services)) = read.files.get(&real) {
            return Ok((Some(*idx), services.clone()));
        }
        let dir = real.parent().map(Path::to_path_buf).unwrap_or_default();
        let shown_dir = shown.parent().map(Path::to_path_buf).unwrap_or_default();
        let idx = self.add_source(shown, dir, shown_dir, text);
        let mut tree = self.parse_source(idx)?;
        let vars = self.dotenv.clone();
        self.interpolate_tree(&mut tree, &vars)?;
        yaml::strip_resets(&mut tree);
        let services = find(&tree, "services").map_or_else(
            || Node::new(tree.pos, Value::Map(Vec::new())),
            |e| e.value.clone(),
        );
        read.files.insert(real, (idx, services.clone()));
        Ok((Some(idx), services))
    }
}
