//! What the CLI tests share: running the real `goodgo` binary in a clean environment and
//! reading what a user would see.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run of goodgo produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit code, stdout and stderr in one block, for snapshots. `tmp` is replaced by `[TMP]`.
    pub fn snapshot(&self, tmp: &Path) -> String {
        let clean = |s: &str| s.replace(&tmp.display().to_string(), "[TMP]");
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code,
            clean(&self.stdout),
            clean(&self.stderr)
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_goodgo"))
}

/// A `goodgo` command started in `cwd`, with no GOODGO_* or colour settings inherited.
pub fn goodgo(cwd: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("GOODGO_") && !key.starts_with("GOODGO_TEST_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "dumb");
    cmd
}

pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// True when `cargo xtask test` runs the suite: then every external part it provisions
/// must be there, and a missing one is a failure instead of a skip.
pub fn strict() -> bool {
    std::env::var_os("GOODGO_TEST_STRICT").is_some()
}

/// True when a Docker engine answers `docker info`. Where none exists (and only there),
/// tests that need one print a visible skip line.
pub fn docker_available() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}
