//! A step's cache key: SHA-256 over a [`KeyParts`] record of everything that decides what
//! the step does, and [`explain`], the diff between two records.
//!
//! Input files are found with one gitignore-aware walk of the workspace ([`Workspace`]) and
//! hashed through a [`FileIndex`]: like git's index, a file whose size, mtime and inode are
//! those recorded is not read again, unless its mtime is not older than the index itself
//! (a "racy" file, changed in the same instant the index was written), which is hashed anew.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::Step;

/// The key format; bumping it invalidates every stored entry.
const FORMAT: u32 = 1;

/// Everything a step's key is computed from, kept in the cache to explain the next miss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KeyParts {
    pub format: u32,
    /// The definition: command, env names, outputs, services (not deps, description).
    pub definition: String,
    /// Input file (relative, `/`-separated) → SHA-256 of its contents.
    pub files: BTreeMap<String, String>,
    /// Named environment variable → SHA-256 of its value (values may be secrets).
    pub env: BTreeMap<String, String>,
    /// Tool → its `--version` line.
    pub tools: BTreeMap<String, String>,
    /// Dependency id → its key.
    pub deps: BTreeMap<String, String>,
}

impl KeyParts {
    /// The hex SHA-256 key.
    pub fn key(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        hex(&Sha256::digest(text.as_bytes()))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The step's definition as it enters the key.
fn definition(step: &Step) -> String {
    serde_json::json!({
        "run": step.run,
        "env": step.env,
        "inputs": step.inputs,
        "outputs": step.outputs,
        "tools": step.tools,
        "services": step.services,
        "timeout": step.timeout.map(|t| t.as_millis() as u64),
    })
    .to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexEntry {
    size: u64,
    mtime_ns: u128,
    ino: u64,
    hash: String,
}

/// Content hashes of files, reused while size, mtime and inode are unchanged.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FileIndex {
    /// When the index was written (ns since the epoch): files modified at or after it are
    /// hashed again even when their stat matches.
    written_ns: u128,
    files: BTreeMap<String, IndexEntry>,
    #[serde(skip)]
    dirty: bool,
}

impl FileIndex {
    /// Reads the index at `path`; a missing or unreadable one is empty.
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the index atomically (temp file + rename) when it changed.
    pub fn save(&mut self, path: &Path) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.written_ns = now_ns();
        let body = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::cache::write_atomic(path, &body)?;
        self.dirty = false;
        Ok(())
    }

    /// The hex SHA-256 of `abs`'s contents, `rel` naming it in the index.
    pub fn hash(&mut self, rel: &str, abs: &Path) -> std::io::Result<String> {
        let meta = std::fs::metadata(abs)?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let ino = ino(&meta);
        if let Some(e) = self.files.get(rel)
            && e.size == meta.len()
            && e.mtime_ns == mtime_ns
            && e.ino == ino
            && mtime_ns < self.written_ns
        {
            return Ok(e.hash.clone());
        }
        let hash = hex(&Sha256::digest(std::fs::read(abs)?));
        self.files.insert(
            rel.to_string(),
            IndexEntry {
                size: meta.len(),
                mtime_ns,
                ino,
                hash: hash.clone(),
            },
        );
        self.dirty = true;
        Ok(hash)
    }

    /// Forgets files no longer present.
    pub fn retain(&mut self, present: &std::collections::HashSet<&str>) {
        let before = self.files.len();
        self.files.retain(|k, _| present.contains(k.as_str()));
        self.dirty |= self.files.len() != before;
    }
}

#[cfg(unix)]
fn ino(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn ino(_meta: &std::fs::Metadata) -> u64 {
    0
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The workspace's files, walked once: gitignore rules apply, `.git` and `.goodgo` are
/// skipped, hidden files are included. Every step's input globs are matched in the same
/// pass (one combined glob set, one match per file).
pub struct Workspace {
    pub root: PathBuf,
    /// Relative `/`-separated paths, sorted.
    pub files: Vec<String>,
    /// `inputs[i]`: indices into `files` of step `i`'s inputs, sorted.
    inputs: Vec<Vec<usize>>,
}

impl Workspace {
    pub fn walk(root: &Path, steps: &[Step]) -> Self {
        let mut files = Vec::new();
        let walker = ignore::WalkBuilder::new(root)
            .hidden(false)
            .require_git(false)
            .filter_entry(|e| {
                let name = e.file_name();
                !(e.depth() > 0
                    && e.file_type().is_some_and(|t| t.is_dir())
                    && (name == ".git" || name == ".goodgo"))
            })
            .build();
        for entry in walker.flatten() {
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            if let Ok(rel) = entry.path().strip_prefix(root) {
                let rel = rel.to_string_lossy().replace('\\', "/");
                files.push(rel);
            }
        }
        files.sort();
        let mut builder = globset::GlobSetBuilder::new();
        let mut owner = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            for g in &step.input_globs {
                builder.add(g.clone());
                owner.push(i);
            }
        }
        let combined = builder
            .build()
            .unwrap_or_else(|_| globset::GlobSet::empty());
        let mut inputs = vec![Vec::new(); steps.len()];
        let mut hits = Vec::new();
        for (f, file) in files.iter().enumerate() {
            combined.matches_into(file.as_str(), &mut hits);
            for &g in &hits {
                let step = owner[g];
                if inputs[step].last() != Some(&f) {
                    inputs[step].push(f);
                }
            }
        }
        Workspace {
            root: root.to_path_buf(),
            files,
            inputs,
        }
    }

    /// The files step `i`'s inputs match.
    pub fn inputs_of(&self, i: usize) -> impl Iterator<Item = &str> {
        self.inputs
            .get(i)
            .into_iter()
            .flatten()
            .map(|&f| self.files[f].as_str())
    }
}

/// Looks up environment variables; the process environment in production.
pub type EnvSource<'a> = &'a dyn Fn() -> Vec<(String, String)>;

/// Computes `step`'s key parts.
pub fn parts(
    step: &Step,
    i: usize,
    ws: &Workspace,
    index: &mut FileIndex,
    env: &[(String, String)],
    tools: &BTreeMap<String, String>,
    deps: BTreeMap<String, String>,
) -> std::io::Result<KeyParts> {
    let mut files = BTreeMap::new();
    for rel in ws.inputs_of(i) {
        match index.hash(rel, &ws.root.join(rel)) {
            Ok(h) => {
                files.insert(rel.to_string(), h);
            }
            // Removed between the walk and now: absent, like any missing file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let mut env_values = BTreeMap::new();
    if !step.env.is_empty() {
        for (name, value) in env {
            if step.env_set.is_match(name) {
                env_values.insert(
                    name.clone(),
                    hex(&Sha256::digest(value.as_bytes()))[..16].to_string(),
                );
            }
        }
    }
    let tools = step
        .tools
        .iter()
        .map(|t| (t.clone(), tools.get(t).cloned().unwrap_or_default()))
        .collect();
    Ok(KeyParts {
        format: FORMAT,
        definition: definition(step),
        files,
        env: env_values,
        tools,
        deps,
    })
}

/// Why `now` differs from `before`: one line per changed thing, in the order a user checks
/// them (command, dependencies, tools, env, files). Empty when they are equal.
pub fn explain(before: &KeyParts, now: &KeyParts) -> Vec<String> {
    let mut out = Vec::new();
    if before.format != now.format {
        out.push("the cache format changed (a new goodgo version)".to_string());
    }
    if before.definition != now.definition {
        out.push(
            "the step's definition changed (command, inputs, env, outputs, tools or services)"
                .to_string(),
        );
    }
    diff_map(
        &before.deps,
        &now.deps,
        "dependency",
        &mut out,
        |k, _, _| format!("dependency `{k}` changed (its key is new)"),
    );
    diff_map(&before.tools, &now.tools, "tool", &mut out, |k, a, b| {
        format!("tool `{k}` version changed: {a} -> {b}")
    });
    diff_map(&before.env, &now.env, "env", &mut out, |k, _, _| {
        format!("env `{k}` value changed")
    });
    diff_map(
        &before.files,
        &now.files,
        "input file",
        &mut out,
        |k, _, _| format!("input file `{k}` changed"),
    );
    out
}

fn diff_map(
    before: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
    what: &str,
    out: &mut Vec<String>,
    changed: impl Fn(&str, &str, &str) -> String,
) {
    for (k, v) in now {
        match before.get(k) {
            None => out.push(format!("{what} `{k}` is new")),
            Some(old) if old != v => out.push(changed(k, old, v)),
            Some(_) => {}
        }
    }
    for k in before.keys() {
        if !now.contains_key(k) {
            out.push(format!("{what} `{k}` is gone"));
        }
    }
}

/// `tool --version`'s first line, or `not found` when it cannot run.
pub fn tool_version(tool: &str) -> String {
    std::process::Command::new(tool)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "not found".to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn explain_names_each_change() {
        let mut a = KeyParts::default();
        a.files.insert("src/a.rs".into(), "1".into());
        a.files.insert("src/b.rs".into(), "2".into());
        a.env.insert("MODE".into(), "x".into());
        let mut b = a.clone();
        b.files.insert("src/a.rs".into(), "3".into());
        b.files.remove("src/b.rs");
        b.env.insert("MODE".into(), "y".into());
        assert_eq!(
            explain(&a, &b),
            vec![
                "env `MODE` value changed",
                "input file `src/a.rs` changed",
                "input file `src/b.rs` is gone"
            ]
        );
        assert!(explain(&a, &a).is_empty());
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn index_reuses_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "one").unwrap();
        let mut idx = FileIndex::default();
        let h1 = idx.hash("a.txt", &f).unwrap();
        idx.save(&dir.path().join("index.json")).unwrap();
        let mut idx = FileIndex::load(&dir.path().join("index.json"));
        assert_eq!(idx.hash("a.txt", &f).unwrap(), h1);
        std::fs::write(&f, "two").unwrap();
        assert_ne!(idx.hash("a.txt", &f).unwrap(), h1);
    }
}
