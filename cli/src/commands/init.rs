//! `goodgo init` (a new workspace with this project's shape, from templates embedded in
//! the binary) and `goodgo secrets rotate` (fresh secrets in `.env`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::error::{ExitStatus, UserError};
use crate::ops::secrets::{SECRETS, fresh_secret, new_env, write_private};
use crate::printer::Printer;

/// Every file `init` writes, as (path in the workspace, template text).
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../templates/Cargo.toml.tmpl"),
    ),
    (
        "Cargo.lock",
        include_str!("../../../templates/Cargo.lock.tmpl"),
    ),
    (
        "service/Cargo.toml",
        include_str!("../../../templates/service/Cargo.toml.tmpl"),
    ),
    (
        "service/src/main.rs",
        include_str!("../../../templates/service/src/main.rs"),
    ),
    (
        "compose/compose.yaml",
        include_str!("../../../templates/compose/compose.yaml"),
    ),
    (
        "migrations/V1__init.sql",
        include_str!("../../../templates/migrations/V1__init.sql"),
    ),
    (
        "seeds/dev.sql",
        include_str!("../../../templates/seeds/dev.sql"),
    ),
    (
        "ci/pipeline.yaml",
        include_str!("../../../templates/ci/pipeline.yaml"),
    ),
    (
        "ci/github-actions.yml",
        include_str!("../../../templates/ci/github-actions.yml"),
    ),
    (
        "docs/plan.yaml",
        include_str!("../../../templates/docs/plan.yaml"),
    ),
    (
        "goodgo.yaml",
        include_str!("../../../templates/goodgo.yaml"),
    ),
    (".gitignore", include_str!("../../../templates/gitignore")),
    (
        ".squawk.toml",
        include_str!("../../../templates/squawk.toml"),
    ),
];

/// The text init writes at `path` for the project `name`.
fn render(path: &str, template: &str, name: &str) -> String {
    let text = template.replace("{{name}}", name);
    if path == "Cargo.lock" {
        sort_lock(&text)
    } else {
        text
    }
}

/// A lock file's packages in the order cargo writes them (by name, versions of one name
/// as they were), so that the first build does not rewrite the committed `Cargo.lock`
/// just because the project's package sorts elsewhere than the template's placeholder.
fn sort_lock(text: &str) -> String {
    const PACKAGE: &str = "\n[[package]]\n";
    let mut parts = text.split(PACKAGE);
    let head = parts.next().unwrap_or_default();
    let mut packages: Vec<&str> = parts.collect();
    let name = |p: &str| {
        p.lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("name = ")
            .trim_matches('"')
            .to_string()
    };
    packages.sort_by_key(|p| name(p));
    let mut out = head.to_string();
    for p in packages {
        out.push_str(PACKAGE);
        out.push_str(p.trim_end_matches('\n'));
        out.push('\n');
    }
    out
}

/// `path` made absolute without `.` and `..` parts: the deepest existing ancestor
/// resolved (symlinks too), the rest appended part by part. So `init ../demo` reports
/// `/home/me/demo`, not `/home/me/p/../demo`.
fn normalise(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    let base = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            // A `..` or `.` at the end of a missing path, or the root: keep it lexical.
            _ => match existing.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => {
                    rest.push(
                        existing
                            .components()
                            .next_back()
                            .map(|c| c.as_os_str().to_os_string())
                            .unwrap_or_default(),
                    );
                    existing = parent.to_path_buf();
                }
                _ => break existing,
            },
        }
    };
    let mut out = base;
    for part in rest.iter().rev() {
        match part.to_str() {
            Some("..") => {
                out.pop();
            }
            Some(".") | Some("") => {}
            _ => out.push(part),
        }
    }
    out
}

fn check_name(name: &str) -> Result<()> {
    if valid_name(name) {
        return Ok(());
    }
    Err(UserError::input(format!("`{name}` cannot name a project"))
        .with_hint(
            "pass --name with lower-case letters, digits, `-` or `_`, starting with a letter",
        )
        .into())
}

fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.len() <= 40
}

pub fn init(
    cwd: &Path,
    dir: Option<&Path>,
    name: Option<&str>,
    force: bool,
    printer: &Printer,
) -> Result<ExitStatus> {
    let root = normalise(&match dir {
        Some(d) => cwd.join(d),
        None => cwd.to_path_buf(),
    });
    let name = match name {
        Some(n) => n.to_string(),
        None => crate::config::sanitize_name(
            &root
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        ),
    };
    check_name(&name)?;
    let mut conflicts: Vec<&str> = TEMPLATES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| root.join(p).exists())
        .collect();
    let env_exists = root.join(".env").exists();
    if env_exists && !force {
        conflicts.push(".env");
    }
    if !conflicts.is_empty() && !force {
        let mut text = format!("{} already has files init would write:\n", root.display());
        for c in &conflicts {
            let _ = writeln!(text, "  {c}");
        }
        printer.stderr(&text);
        return Err(UserError::failed(format!("nothing was written: {} file(s) already exist", conflicts.len()))
            .with_hint("`goodgo init --check` shows how they differ; `--force` overwrites them (an existing .env is always kept)")
            .into());
    }
    let mut written = Vec::new();
    for (path, template) in TEMPLATES {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, render(path, template, &name))
            .with_context(|| format!("writing {}", target.display()))?;
        written.push(path.to_string());
    }
    if !env_exists {
        write_private(&root.join(".env"), &new_env(&name)?)?;
        written.push(".env".into());
    }
    let committed = first_commit(&root, &name)?;
    let mut text = format!("created workspace `{name}` in {}\n", root.display());
    for w in &written {
        let _ = writeln!(text, "  {w}");
    }
    match &committed {
        Some(id) => {
            let _ = writeln!(text, "initialised git and committed {id}");
        }
        None => text.push_str("already a git repository: nothing committed\n"),
    }
    let _ = writeln!(text, "next: cd {} && goodgo dev", root.display());
    printer.report(
        &text,
        &json!({"name": name, "root": root, "written": written, "commit": committed}),
    );
    Ok(ExitStatus::Success)
}

/// A new repository with everything in a first commit (through libgit2); `None` when
/// `root` is already a repository's root. A folder inside another repository gets a
/// repository of its own.
fn first_commit(root: &Path, name: &str) -> Result<Option<String>> {
    if git2::Repository::open(root).is_ok() {
        return Ok(None);
    }
    let repo = git2::Repository::init(root).context("git init")?;
    let mut index = repo.index()?;
    index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = repo
        .signature()
        .or_else(|_| git2::Signature::now("goodgo", "goodgo@localhost"))?;
    let id = repo.commit(
        Some("HEAD"),
        &sig,
        &sig,
        &format!("Start {name} with goodgo init"),
        &tree,
        &[],
    )?;
    Ok(Some(id.to_string()[..10].to_string()))
}

/// `goodgo init --check`: which template files in the workspace at `root` differ from what
/// `init` would write for the project `name`.
pub fn check(root: &Path, name: &str, printer: &Printer) -> Result<ExitStatus> {
    check_name(name)?;
    let mut rows = Vec::new();
    let mut text = String::new();
    for (path, template) in TEMPLATES {
        let state = match std::fs::read_to_string(root.join(path)) {
            Ok(current) if current == render(path, template, name) => "same",
            Ok(_) => "differs",
            Err(_) => "missing",
        };
        let _ = writeln!(text, "{state:<8} {path}");
        rows.push(json!({"path": path, "state": state}));
    }
    let env = if root.join(".env").exists() {
        "present"
    } else {
        "missing"
    };
    let _ = writeln!(text, "{env:<8} .env (secrets; not compared)");
    let all_same = rows.iter().all(|r| r["state"] == "same");
    printer.report(&text, &json!({"files": rows, "env": env, "same": all_same}));
    Ok(if all_same {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// `goodgo secrets rotate`: fresh values for every secret in the workspace's `.env`,
/// every other line kept as it was.
pub fn rotate(root: &Path, name: &str, printer: &Printer) -> Result<ExitStatus> {
    let path = root.join(".env");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if text.is_empty() {
        write_private(&path, &new_env(name)?)?;
        printer.report(
            "created .env with fresh secrets\n",
            &json!({"file": path, "rotated": SECRETS}),
        );
        return Ok(ExitStatus::Success);
    }
    let mut out = String::new();
    let mut rotated: Vec<&str> = Vec::new();
    for line in text.lines() {
        let key = line.split_once('=').map(|(k, _)| k.trim()).unwrap_or("");
        match SECRETS
            .iter()
            .find(|s| **s == key && !line.trim_start().starts_with('#'))
        {
            Some(secret) => {
                let _ = writeln!(out, "{secret}={}", fresh_secret()?);
                rotated.push(secret);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let missing: Vec<&str> = SECRETS
        .iter()
        .copied()
        .filter(|s| !rotated.contains(s))
        .collect();
    for secret in missing {
        let _ = writeln!(out, "{secret}={}", fresh_secret()?);
        rotated.push(secret);
    }
    write_private(&path, &out)?;
    let text = format!(
        "rotated {} in .env; restart `goodgo dev` (running sessions end: their tokens no longer verify)\n",
        rotated.join(", ")
    );
    printer.report(&text, &json!({"file": path, "rotated": rotated}));
    Ok(ExitStatus::Success)
}
