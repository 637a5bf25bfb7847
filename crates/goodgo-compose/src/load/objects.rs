//! Secrets and configs: the top-level definitions (`file`, `content`, `environment`,
//! `external`) and a service's uses of them, each resolved to the file the container gets.
//!
//! Why its own module: both sections are one idea — a named file whose content comes from
//! the host, the file itself or a variable — read by one set of rules, and a use is where
//! a definition goodgo cannot provide becomes an error: an `external` one (it lives in a
//! Swarm cluster) or one whose variable is unset (reported at the variable's name).

use super::keys::*;
use super::read::{check_declared, join, normalize};
use super::{Defined, Loader, Result};
use crate::model::*;
use crate::yaml::{At, Entry, Node, Value};

/// Which of the two sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Secret,
    Config,
}

impl Kind {
    /// The top-level key.
    pub(super) fn section(self) -> &'static str {
        match self {
            Kind::Secret => "secrets",
            Kind::Config => "configs",
        }
    }

    fn one(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }
}

/// A top-level definition as a service's use resolves it.
pub(super) enum Resolved {
    Ready(FileSource),
    /// `environment:` names a variable that is not set: an error where a service uses it.
    Unset {
        variable: String,
        at: At,
    },
    /// `external: true`: it lives in a Swarm cluster; an error where a service uses it.
    External {
        at: At,
    },
}

/// One definition, resolved, and whether a service uses it.
pub(super) struct Object {
    pub(super) resolved: Resolved,
    pub(super) used: bool,
}

impl Loader<'_> {
    pub(super) fn secret_defs(
        &mut self,
        node: &Node,
    ) -> Result<std::collections::BTreeMap<String, SecretDef>> {
        self.definitions(node, "secrets", Self::secret_key, |me, e, path, d| {
            me.check_object(Kind::Secret, e, path, d)
        })
    }

    pub(super) fn config_defs(
        &mut self,
        node: &Node,
    ) -> Result<std::collections::BTreeMap<String, ConfigDef>> {
        self.definitions(node, "configs", Self::config_key, |me, e, path, d| {
            me.check_object(Kind::Config, e, path, d)
        })
    }

    fn secret_key(&mut self, d: &mut SecretDef, e: &Entry, path: &str, p: &str) -> Result<()> {
        if !self.source_key(d, e, p, false)? {
            self.other_key(e, path, SECRET_DEF_KEYS, SECRET_DEF_WARN, NO_PAIRS)?;
        }
        Ok(())
    }

    fn config_key(&mut self, d: &mut ConfigDef, e: &Entry, path: &str, p: &str) -> Result<()> {
        if !self.source_key(d, e, p, true)? {
            self.other_key(e, path, CONFIG_DEF_KEYS, CONFIG_DEF_WARN, NO_PAIRS)?;
        }
        Ok(())
    }

    /// `file`, `environment` and (with `content`) `content`; `false` for another key.
    fn source_key(
        &mut self,
        d: &mut FileObjectDef,
        e: &Entry,
        p: &str,
        content: bool,
    ) -> Result<bool> {
        match e.key.as_str() {
            "file" => {
                d.file = self
                    .opt_string(&e.value, p)?
                    .map(|f| normalize(&self.dirs(e.value.pos).0.join(f)));
            }
            "environment" => d.environment = self.opt_string(&e.value, p)?,
            "content" if content => d.content = Some(self.string(&e.value, p)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A definition has exactly one source; it is resolved (its variable looked up) and
    /// remembered for the services' uses.
    fn check_object(
        &mut self,
        kind: Kind,
        def: &Entry,
        path: &str,
        d: &FileObjectDef,
    ) -> Result<()> {
        let entries = self.entries(&def.value, path)?;
        let key_at = |key: &str| entries.iter().find(|e| e.key == key);
        let given: Vec<&Entry> = ["file", "content", "environment", "external"]
            .into_iter()
            .filter(|k| match *k {
                "file" => d.file.is_some(),
                "content" => d.content.is_some(),
                "environment" => d.environment.is_some(),
                _ => d.external,
            })
            .filter_map(key_at)
            .collect();
        let choices = match kind {
            Kind::Secret => "`file`, `environment` or `external: true`",
            Kind::Config => "`file`, `content`, `environment` or `external: true`",
        };
        let first = match given.as_slice() {
            [] => {
                return Err(self.fail(
                    def.key_pos,
                    format!("{path}: a {} needs {choices}", kind.one()),
                ));
            }
            [one] => *one,
            [first, second, ..] => {
                return Err(self.fail(
                    second.key_pos,
                    format!(
                        "{path}: `{}` and `{}` cannot both be set: a {} has one source",
                        first.key,
                        second.key,
                        kind.one()
                    ),
                ));
            }
        };
        let resolved = if let Some(file) = &d.file {
            Resolved::Ready(FileSource::File(file.clone()))
        } else if let Some(text) = &d.content {
            Resolved::Ready(FileSource::Text(text.clone()))
        } else if let Some(variable) = &d.environment {
            match self.lookup(variable) {
                Some(value) => Resolved::Ready(FileSource::Text(value)),
                None => Resolved::Unset {
                    variable: variable.clone(),
                    at: first.value.pos,
                },
            }
        } else {
            Resolved::External { at: first.key_pos }
        };
        self.objects.insert(
            (kind, def.key.clone()),
            Object {
                resolved,
                used: false,
            },
        );
        Ok(())
    }

    /// A service's use of a secret or config: its name, or a mapping with `source`,
    /// `target`, `uid`, `gid` and `mode`.
    pub(super) fn file_ref(
        &mut self,
        kind: Kind,
        node: &Node,
        path: &str,
        defined: &Defined,
    ) -> Result<FileRef> {
        let mut r = FileRef {
            source: String::new(),
            target: None,
            uid: None,
            gid: None,
            mode: None,
            from: FileSource::Text(String::new()),
        };
        let pos = match &node.value {
            Value::Str(name) => {
                r.source = name.clone();
                node.pos
            }
            Value::Map(entries) => {
                let mut source = None;
                for e in entries {
                    let p = join(path, &e.key);
                    let v = &e.value;
                    match e.key.as_str() {
                        "source" => source = Some((self.string(v, &p)?, v.pos)),
                        "target" => r.target = self.opt_string(v, &p)?,
                        "uid" => r.uid = self.numeric_id(v, &p)?,
                        "gid" => r.gid = self.numeric_id(v, &p)?,
                        "mode" => r.mode = self.object_mode(v, &p)?,
                        _ => self.other_key(e, path, FILE_REF_KEYS, NO_PAIRS, NO_PAIRS)?,
                    }
                }
                let Some((source, pos)) = source else {
                    return Err(self.fail(node.pos, format!("{path}: missing key `source`")));
                };
                r.source = source;
                pos
            }
            _ => {
                return Err(self.expected(
                    node,
                    path,
                    &format!("a {} name or a mapping", kind.one()),
                ));
            }
        };
        let declared = match kind {
            Kind::Secret => &defined.secrets,
            Kind::Config => &defined.configs,
        };
        check_declared(&r.source, kind.section(), declared)
            .map_err(|m| self.fail(pos, format!("{path}: {m}")))?;
        let lacking = match kind {
            Kind::Secret => r.secret_path(),
            Kind::Config => r.config_path(),
        };
        let Some(object) = self.objects.get_mut(&(kind, r.source.clone())) else {
            return Ok(r);
        };
        object.used = true;
        let def = format!("{}.{}", kind.section(), r.source);
        match &object.resolved {
            Resolved::Ready(from) => r.from = from.clone(),
            Resolved::Unset { variable, at } => {
                let at = *at;
                let message = format!(
                    "{def}.environment: the variable `{variable}` is not set, and {path} uses this {} (the service would lack {lacking}); set it, or give the {} another source",
                    kind.one(),
                    kind.one()
                );
                return Err(self.fail(at, message));
            }
            Resolved::External { .. } => {
                return Err(self.fail(
                    pos,
                    format!(
                        "{path}: the {} `{}` uses `{def}.external`, which goodgo does not support (it lives in a Swarm cluster): ignoring it would change what runs (the service would lack {lacking}); give it a `file`, `environment`{} source, or run this file with `docker compose`",
                        kind.one(),
                        r.source,
                        if kind == Kind::Config { ", `content`" } else { "" }
                    ),
                ));
            }
        }
        Ok(r)
    }

    /// Warnings for the external definitions no service uses.
    pub(super) fn unused_externals(&mut self) {
        let unused: Vec<(String, At)> = self
            .objects
            .iter()
            .filter_map(|((kind, name), o)| match o.resolved {
                Resolved::External { at } if !o.used => {
                    Some((format!("{}.{name}", kind.section()), at))
                }
                _ => None,
            })
            .collect();
        for (def, at) in unused {
            self.warn(
                at,
                format!("`{def}.external` is not supported by goodgo and is ignored: no service uses it (it lives in a Swarm cluster)"),
            );
        }
    }

    /// `uid` or `gid`: a numeric id, kept as written.
    fn numeric_id(&self, node: &Node, path: &str) -> Result<Option<String>> {
        let Some(id) = self.opt_string(node, path)? else {
            return Ok(None);
        };
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) || id.parse::<u32>().is_err() {
            return Err(self.bad_value(
                node,
                format!("{path}: expected a numeric id like `1000`, found `{id}`"),
            ));
        }
        Ok(Some(id))
    }

    /// `mode` as YAML reads a number: octal with a leading `0` or `0o` (`0440`), else
    /// decimal (`288`), as Compose does.
    fn object_mode(&self, node: &Node, path: &str) -> Result<Option<u32>> {
        let Some(text) = self.opt_string(node, path)? else {
            return Ok(None);
        };
        let parsed = if let Some(octal) = text.strip_prefix("0o") {
            u32::from_str_radix(octal, 8).ok()
        } else if text.len() > 1 && text.starts_with('0') {
            u32::from_str_radix(&text[1..], 8).ok()
        } else {
            text.parse::<u32>().ok()
        };
        match parsed.filter(|m| *m <= 0o7777) {
            Some(mode) => Ok(Some(mode)),
            None => Err(self.bad_value(
                node,
                format!(
                    "{path}: expected a file mode like `0440` (octal) or `288`, found `{text}`"
                ),
            )),
        }
    }
}
