//! Typed readers over the positioned tree: a string, a list, a mapping, a duration, a
//! `KEY=value` list…, each failing with `path:line:col: <key path>: expected …, found …`.
//!
//! Why its own module: every section parser reads its values through these, so that
//! every message names the key by its full path in the same words, and an unknown key
//! is handled in one place (`other_key`: extension, warned, refused or a typo).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use goodgo_yaml::did_you_mean;

use super::{Loader, Result};
use crate::error::ComposeError;
use crate::syntax;
use crate::yaml::{At, Entry, Node, Value};

/// The key path of `key` under `path`: `services.db` + `ports` → `services.db.ports`.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Checks that `name` is declared under the top-level `section` (`volumes`, `networks` or
/// `secrets`), whose names are `declared`; the message says what is wrong, with a
/// did-you-mean.
pub(super) fn check_declared(
    name: &str,
    section: &str,
    declared: &BTreeSet<String>,
) -> std::result::Result<(), String> {
    if declared.contains(name) {
        return Ok(());
    }
    let kind = section.strip_suffix('s').unwrap_or(section);
    let hint = did_you_mean(name, declared.iter().map(String::as_str))
        .map(|b| format!(" (did you mean `{b}`?)"))
        .unwrap_or_default();
    Err(format!(
        "the {kind} `{name}` is not declared under the top-level `{section}`{hint}"
    ))
}

/// Whether ignoring this value would change nothing: empty, `null`, `false`, `no`.
fn is_noop(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Str(s) => matches!(s.as_str(), "false" | "False" | "FALSE" | "no" | ""),
        Value::Seq(items) => items.is_empty(),
        Value::Map(entries) => entries.is_empty(),
    }
}

/// A value as JSON, as written (scalars as strings), for keys kept for other tools.
pub(super) fn json_of(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Seq(items) => items.iter().map(json_of).collect(),
        Value::Map(entries) => entries
            .iter()
            .map(|e| (e.key.clone(), json_of(&e.value)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system.
pub(super) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A service name Compose accepts: letters, digits, `_`, `.` and `-`, starting with a
/// letter or digit.
pub(super) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Loader<'_> {
    pub(super) fn expected(&self, node: &Node, path: &str, what: &str) -> ComposeError {
        self.fail(
            node.pos,
            format!("{path}: expected {what}, found {}", node.value.kind()),
        )
    }

    pub(super) fn entries<'n>(&self, node: &'n Node, path: &str) -> Result<&'n [Entry]> {
        match &node.value {
            Value::Map(entries) => Ok(entries),
            Value::Null => Ok(&[]),
            _ => Err(self.expected(node, path, "a mapping")),
        }
    }

    /// The entries of a mapping, each with its key path, but for a key of `known` written
    /// without a value (`key:`), which sets nothing.
    pub(super) fn set_entries<'n>(
        &self,
        node: &'n Node,
        path: &str,
        known: &[&str],
    ) -> Result<Vec<(&'n Entry, String)>> {
        Ok(self
            .entries(node, path)?
            .iter()
            .filter(|e| !(matches!(e.value.value, Value::Null) && known.contains(&e.key.as_str())))
            .map(|e| (e, join(path, &e.key)))
            .collect())
    }

    pub(super) fn items<'n>(&self, node: &'n Node, path: &str) -> Result<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Ok(items),
            Value::Null => Ok(&[]),
            _ => Err(self.expected(node, path, "a list")),
        }
    }

    pub(super) fn string(&self, node: &Node, path: &str) -> Result<String> {
        match &node.value {
            Value::Str(s) => Ok(s.clone()),
            _ => Err(self.expected(node, path, "a string")),
        }
    }

    /// A string, or `None` for an empty one.
    pub(super) fn opt_string(&self, node: &Node, path: &str) -> Result<Option<String>> {
        match &node.value {
            Value::Null => Ok(None),
            _ => Ok(Some(self.string(node, path)?).filter(|s| !s.is_empty())),
        }
    }

    pub(super) fn boolean(&self, node: &Node, path: &str) -> Result<bool> {
        match &node.value {
            Value::Str(s) => match s.as_str() {
                "true" | "True" | "TRUE" => Ok(true),
                "false" | "False" | "FALSE" => Ok(false),
                _ => Err(self.fail(
                    node.pos,
                    format!("{path}: expected `true` or `false`, found `{s}`"),
                )),
            },
            _ => Err(self.expected(node, path, "`true` or `false`")),
        }
    }

    pub(super) fn uint(&self, node: &Node, path: &str) -> Result<u32> {
        let s = self.string(node, path)?;
        s.parse().map_err(|_| {
            self.bad_value(
                node,
                format!("{path}: expected a non-negative whole number, found `{s}`"),
            )
        })
    }

    /// A whole number (negative allowed).
    pub(super) fn int(&self, node: &Node, path: &str) -> Result<i64> {
        let s = self.string(node, path)?;
        s.parse().map_err(|_| {
            self.bad_value(
                node,
                format!("{path}: expected a whole number, found `{s}`"),
            )
        })
    }

    pub(super) fn duration(&self, node: &Node, path: &str) -> Result<Duration> {
        let s = self.string(node, path)?;
        syntax::parse_duration(&s).map_err(|m| self.bad_value(node, format!("{path}: {m}")))
    }

    /// A byte size: `512m`, `1gb`, `1024`.
    pub(super) fn bytes(&self, node: &Node, path: &str) -> Result<u64> {
        let s = self.string(node, path)?;
        crate::values::parse_bytes(&s).map_err(|m| self.bad_value(node, format!("{path}: {m}")))
    }

    /// A list of strings; with `single`, one string stands for a list of one.
    pub(super) fn strings(
        &self,
        node: &Node,
        path: &str,
        single: bool,
    ) -> Result<Vec<(String, At)>> {
        match &node.value {
            Value::Str(s) if single => Ok(vec![(s.clone(), node.pos)]),
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = format!("{path}[{i}]");
                    Ok((self.string(item, &p)?, item.pos))
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            _ => Err(self.expected(
                node,
                path,
                if single {
                    "a string or a list of strings"
                } else {
                    "a list of strings"
                },
            )),
        }
    }

    /// A list of strings, without their positions.
    pub(super) fn string_list(&self, node: &Node, path: &str) -> Result<Vec<String>> {
        Ok(self
            .strings(node, path, false)?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    /// `- KEY=value` / `- KEY` items, or a `KEY: value` mapping. A missing value is `None`.
    pub(super) fn key_values(
        &self,
        node: &Node,
        path: &str,
    ) -> Result<Vec<(String, Option<String>, At)>> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = format!("{path}[{i}]");
                    let text = self.string(item, &p)?;
                    let (k, v) = match text.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (text.clone(), None),
                    };
                    if k.is_empty() {
                        return Err(self.fail(
                            item.pos,
                            format!("{p}: expected `NAME=value`, found `{text}`"),
                        ));
                    }
                    Ok((k, v, item.pos))
                })
                .collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| {
                    let p = join(path, &e.key);
                    let v = match &e.value.value {
                        Value::Null => None,
                        Value::Str(s) => Some(s.clone()),
                        _ => return Err(self.expected(&e.value, &p, "a string or number")),
                    };
                    Ok((e.key.clone(), v, e.key_pos))
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            Value::Str(_) => Err(self.expected(node, path, "a list of `NAME=value` or a mapping")),
        }
    }

    /// A `KEY: value` mapping of strings.
    pub(super) fn string_map(&self, node: &Node, path: &str) -> Result<BTreeMap<String, String>> {
        Ok(self
            .key_values(node, path)?
            .into_iter()
            .map(|(k, v, _)| (k, v.unwrap_or_default()))
            .collect())
    }

    /// Handles a key the caller does not read: extension, ignored with a warning,
    /// refused, or unknown.
    pub(super) fn other_key(
        &mut self,
        entry: &Entry,
        path: &str,
        known: &[&str],
        warn: &[(&str, &str)],
        refuse: &[(&str, &str)],
    ) -> Result<()> {
        let key = entry.key.as_str();
        let full = join(path, key);
        if key.starts_with("x-") {
            return Ok(());
        }
        if let Some((_, why)) = refuse.iter().find(|(k, _)| *k == key) {
            if is_noop(&entry.value.value) {
                return Ok(());
            }
            return Err(self.fail(
                entry.key_pos,
                format!(
                    "`{full}` is not supported by goodgo: ignoring it would change what runs ({why}); remove it, or run this file with `docker compose`"
                ),
            ));
        }
        if let Some((_, why)) = warn.iter().find(|(k, _)| *k == key) {
            if !is_noop(&entry.value.value) {
                self.warn(
                    entry.key_pos,
                    format!("`{full}` is not supported by goodgo and is ignored: {why}"),
                );
            }
            return Ok(());
        }
        let candidates = known
            .iter()
            .copied()
            .chain(warn.iter().map(|(k, _)| *k))
            .chain(refuse.iter().map(|(k, _)| *k));
        let hint = did_you_mean(key, candidates)
            .map(|best| format!(" (did you mean `{best}`?)"))
            .unwrap_or_default();
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        Err(self.fail(entry.key_pos, format!("{prefix}unknown key `{key}`{hint}")))
    }

    /// A host path: `~` from `HOME`, relative paths against the Compose file's folder.
    pub(super) fn host_path(&self, source: &str, pos: At, path: &str) -> Result<String> {
        let full = if source == "~" || source.starts_with("~/") {
            let Some(home) = self.lookup("HOME") else {
                return Err(self.fail(
                    pos,
                    format!("{path}: `{source}` starts with `~`, but `HOME` is not set"),
                ));
            };
            PathBuf::from(home).join(source.trim_start_matches('~').trim_start_matches('/'))
        } else if source.starts_with('~') {
            return Err(self.fail(
                pos,
                format!("{path}: `{source}`: `~user` paths are not supported; write the full path"),
            ));
        } else {
            self.dirs(pos).0.join(source)
        };
        normalize(&full)
            .into_os_string()
            .into_string()
            .map_err(|p| {
                self.fail(
                    pos,
                    format!(
                        "{path}: the host path {} is not valid UTF-8",
                        p.to_string_lossy()
                    ),
                )
            })
    }
}
