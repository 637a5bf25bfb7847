//! `goodgo deploy build`: the API's release image, built by the engine from
//! `compose/images/api/` and the release binary, tagged with the git commit.
//!
//! Why the binary is built on the host: no registry is reachable, so no Rust toolchain image
//! can be pulled; the host builds on the same Debian release as `goodgo/base:bookworm`, so
//! the binary's glibc is the image's. The tag is `{project}-api:{commit}`; a working tree
//! with uncommitted changes gets `-dirty-{hash}` of those changes' contents, so two dirty
//! builds of different code never share a tag.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use goodgo_stack::docker::DockerRuntime;
use sha2::{Digest as _, Sha256};

use crate::commands::Context;
use crate::error::UserError;
use crate::printer::Printer;

/// Labels the release image carries.
pub const LABEL_COMMIT: &str = "org.goodgo.release.commit";
pub const LABEL_BUILT: &str = "org.goodgo.release.built";
pub const LABEL_MIGRATIONS: &str = "org.goodgo.release.migrations-head";

/// The folder of the API image's Dockerfile, in the workspace.
const IMAGE_DIR: &str = "compose/images/api";

/// A built release image.
#[derive(Debug, Clone)]
pub struct Built {
    pub tag: String,
    pub commit: String,
}

/// The commit of the workspace's repository: HEAD's id (12 hex digits), with
/// `-dirty-{hash}` when tracked files changed or untracked ones exist.
pub fn commit_tag(root: &Path) -> Result<String> {
    let repo = git2::Repository::discover(root).map_err(|e| {
        UserError::input(format!(
            "{} is not in a git repository ({}): a release image is tagged with its commit",
            root.display(),
            e.message()
        ))
        .with_hint("run `git init` and commit, or deploy an image built elsewhere with --image")
    })?;
    let head = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .ok_or_else(|| {
            UserError::input(
                "the repository has no commit yet: a release image is tagged with its commit",
            )
            .with_hint("commit first, or deploy an image built elsewhere with --image")
        })?;
    let id = head.id().to_string();
    let short = &id[..12.min(id.len())];
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false);
    let statuses = repo
        .statuses(Some(&mut opts))
        .context("reading the working tree's status")?;
    let workdir = repo.workdir().unwrap_or(root).to_path_buf();
    let mut changed: Vec<String> = statuses
        .iter()
        .filter(|s| s.status() != git2::Status::CURRENT)
        .filter_map(|s| s.path().ok().map(str::to_string))
        .collect();
    if changed.is_empty() {
        return Ok(short.to_string());
    }
    changed.sort();
    let mut hash = Sha256::new();
    for path in &changed {
        hash.update((path.len() as u64).to_le_bytes());
        hash.update(path.as_bytes());
        let bytes = std::fs::read(workdir.join(path)).unwrap_or_default();
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    let hex: String = hash
        .finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!("{short}-dirty-{hex}"))
}

/// The newest migration version in `dir` (0 without any).
fn migrations_head(dir: &Path) -> i32 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    goodgo_db::migrations::parse_name(name.strip_suffix(".sql")?)
                        .ok()
                        .map(|(v, _)| v)
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The release binary: `binary` when given, else built with `cargo build --release`.
fn release_binary(ctx: &Context, binary: Option<&Path>, printer: &Printer) -> Result<PathBuf> {
    let ws = &ctx.workspace;
    if let Some(path) = binary {
        let path = ws.cwd.join(path);
        if !path.is_file() {
            return Err(UserError::input(format!(
                "--binary {}: no such file",
                ws.display_path(&path).display()
            ))
            .into());
        }
        return Ok(path);
    }
    printer.status("building the API (cargo build --release -p goodgo-api)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(&cargo)
        .args(["build", "--release", "--quiet", "-p", "goodgo-api"])
        .current_dir(&ws.root)
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        return Err(UserError::failed("`cargo build --release -p goodgo-api` failed").into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.root.join("target"));
    let target = ws.root.join(target);
    Ok(target.join("release/goodgo-api"))
}

/// Builds the release image and returns its tag.
pub async fn build(
    ctx: &Context,
    docker: &DockerRuntime,
    binary: Option<&Path>,
    printer: &Printer,
) -> Result<Built> {
    let ws = &ctx.workspace;
    let dir = ws.root.join(IMAGE_DIR);
    if !dir.join("Dockerfile").is_file() {
        return Err(UserError::input(format!(
            "{} is missing: the release image is built from it",
            ws.display_path(&dir.join("Dockerfile")).display()
        ))
        .into());
    }
    let commit = commit_tag(&ws.root)?;
    let tag = format!("{}-api:{commit}", ws.settings.name.value);
    let binary = release_binary(ctx, binary, printer)?;
    let context = tempfile::tempdir().context("creating a folder for the build context")?;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            let to = context.path().join(path.file_name().unwrap_or_default());
            std::fs::copy(&path, &to).with_context(|| format!("copying {}", path.display()))?;
        }
    }
    let to = context.path().join("goodgo-api");
    std::fs::copy(&binary, &to).with_context(|| format!("copying {}", binary.display()))?;
    let tar = goodgo_stack::tarball::pack(context.path())
        .with_context(|| format!("packing the build context of {tag}"))?;
    let head = migrations_head(&ws.resolve(&ws.settings.migrations_dir.value));
    let built = super::history::now();
    let labels = HashMap::from([
        (LABEL_COMMIT.to_string(), commit.clone()),
        (LABEL_BUILT.to_string(), built.clone()),
        (LABEL_MIGRATIONS.to_string(), head.to_string()),
        (
            "org.opencontainers.image.revision".to_string(),
            commit.clone(),
        ),
        ("org.opencontainers.image.created".to_string(), built),
    ]);
    printer.status(&format!("building image {tag}"));
    docker
        .build_context(tar, &tag, labels, &|line| printer.debug(line))
        .await?;
    Ok(Built { tag, commit })
}
