//! `goodgo ci --affected`: the files changed since the merge base with `--base` (plus the
//! working tree and untracked files), read with git2, and the steps they touch.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context as _, Result};
use goodgo_ci::Pipeline;
use goodgo_ci::key::Workspace;

use crate::error::UserError;

/// Changed files, relative to `root` and `/`-separated.
pub fn changed_files(root: &Path, base: Option<&str>) -> Result<BTreeSet<String>> {
    let repo = git2::Repository::discover(root).map_err(|e| {
        UserError::input(format!(
            "--affected needs a git repository: {}",
            e.message()
        ))
    })?;
    let base = match base {
        Some(b) => b.to_string(),
        None => match std::env::var("GITHUB_BASE_REF") {
            Ok(b) if !b.is_empty() => format!("origin/{b}"),
            _ => "main".to_string(),
        },
    };
    let base_commit = repo
        .revparse_single(&base)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| {
            UserError::input(format!("cannot find the base `{base}`: {}", e.message()))
                .with_hint("pass --base REF (a branch, tag or commit)")
        })?;
    let head = repo.head().and_then(|h| h.peel_to_commit()).ok();
    let merge_base = match &head {
        Some(h) => repo
            .merge_base(h.id(), base_commit.id())
            .and_then(|id| repo.find_commit(id))
            .context("cannot find the merge base")?,
        None => base_commit,
    };
    let tree = merge_base.tree()?;
    let mut opts = git2::DiffOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    let diff = repo.diff_tree_to_workdir_with_index(Some(&tree), Some(&mut opts))?;
    let workdir = repo
        .workdir()
        .context("--affected needs a repository with a working tree")?;
    let workdir = workdir
        .canonicalize()
        .unwrap_or_else(|_| workdir.to_path_buf());
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut out = BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file().path(), delta.new_file().path()]
            .into_iter()
            .flatten()
        {
            if let Ok(rel) = workdir.join(file).strip_prefix(&root) {
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    Ok(out)
}

/// The included steps whose inputs match a changed file, and every step depending on one.
pub fn select(
    p: &Pipeline,
    include: &[bool],
    changed: &BTreeSet<String>,
    _ws: &Workspace,
) -> Vec<bool> {
    let mut picked = vec![false; p.steps.len()];
    let mut stack = Vec::new();
    for (i, step) in p.steps.iter().enumerate() {
        if include[i] && changed.iter().any(|f| step.inputs_set.is_match(f.as_str())) {
            picked[i] = true;
            stack.push(i);
        }
    }
    while let Some(i) = stack.pop() {
        for &d in &p.dependents[i] {
            if include[d] && !picked[d] {
                picked[d] = true;
                stack.push(d);
            }
        }
    }
    picked
}
