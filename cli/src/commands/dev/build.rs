//! Building the API: which package, where its binary lands, and `cargo build` run so that an
//! interrupt stops cargo and every compiler it started.

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use goodgo_yaml::{Pos, YamlError};

use super::signals::{Interrupt, stop_group};
use crate::error::UserError;

#[derive(serde::Deserialize)]
struct Manifest {
    package: Option<Package>,
}

#[derive(serde::Deserialize)]
struct Package {
    name: String,
}

/// The API package: the `[package] name` of `service/Cargo.toml` (its binary has the same
/// name). A manifest that is not valid TOML is reported at its position.
pub(crate) fn api_package(root: &Path, shown_root: &Path) -> Result<String> {
    let manifest = root.join("service/Cargo.toml");
    let shown = shown_root.join("service/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|_| {
        UserError::input(format!(
            "{} is missing: `goodgo dev` runs the API crate in service/",
            shown.display()
        ))
    })?;
    let parsed: Manifest = toml::from_str(&text).map_err(|e| YamlError {
        path: shown.clone(),
        pos: e
            .span()
            .map_or(Pos::new(1, 1), |span| pos_at(&text, span.start)),
        message: e.message().to_string(),
    })?;
    match parsed.package {
        Some(p) => Ok(p.name),
        None => Err(YamlError {
            path: shown,
            pos: Pos::new(1, 1),
            message: "no [package] section: `goodgo dev` needs the API's package name".into(),
        }
        .into()),
    }
}

/// The 1-based line and character column of byte `offset` in `text`.
fn pos_at(text: &str, offset: usize) -> Pos {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Pos::new(
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// Where cargo puts binaries: `CARGO_TARGET_DIR` (relative to the workspace) or `target/`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// How a build ended.
pub(super) enum Build {
    Built,
    /// The compiler's output.
    Failed(String),
    Interrupted,
}

/// `cargo build -p PACKAGE` in a process group of its own, so an interrupt stops cargo and
/// every compiler it started.
pub(super) async fn build(root: &Path, package: &str, interrupt: &mut Interrupt) -> Build {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--color", "never", "-p", package])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Build::Failed(format!("cannot run cargo: {e}\n")),
    };
    let output = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        })
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        if interrupt
            .race(tokio::time::sleep(Duration::from_millis(50)))
            .await
            .is_none()
        {
            stop_group(&mut child, Duration::from_secs(2)).await;
            return Build::Interrupted;
        }
    };
    let text = output.and_then(|t| t.join().ok()).unwrap_or_default();
    match status {
        Ok(s) if s.success() => Build::Built,
        Ok(_) => Build::Failed(text),
        Err(e) => Build::Failed(format!("waiting for cargo: {e}\n{text}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn manifest(text: &str) -> (tempfile::TempDir, Result<String>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("service")).unwrap();
        std::fs::write(dir.path().join("service/Cargo.toml"), text).unwrap();
        let name = api_package(dir.path(), Path::new("ws"));
        (dir, name)
    }

    #[test]
    fn the_package_name_comes_from_the_manifest_whatever_its_layout() {
        let (_d, name) = manifest(
            "[dependencies]\nname = \"not-this\"\n\n[package]\nedition = \"2024\"\nname   =   'goodgo-api' # the API\n",
        );
        assert_eq!(name.unwrap(), "goodgo-api");
    }

    #[test]
    fn a_broken_manifest_is_reported_at_its_position() {
        let (_d, name) = manifest("[package]\nname = \"x\"\nversion = \n");
        let err = name.unwrap_err();
        let located = err.downcast_ref::<YamlError>().unwrap();
        assert_eq!(located.path, Path::new("ws/service/Cargo.toml"));
        assert_eq!(located.pos.line, 3, "{located}");

        let (_d, name) = manifest("[dependencies]\n");
        let err = name.unwrap_err().to_string();
        assert!(err.contains("no [package] section"), "{err}");
    }
}
