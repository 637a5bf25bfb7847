//! The start-up benchmark: `goodgo --version` and `goodgo doctor`, beside the peer commands
//! a user would otherwise run (`docker-compose version`, `docker info` plus each tool's
//! version).

use std::path::{Path, PathBuf};

use anyhow::Result;
use xshell::cmd;

use super::stats::{table, time_command, write_section};
use super::{machine, shell_in};
use crate::provision::{on_path, python_scripts_dir};

pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench startup: goodgo --version, goodgo doctor vs their peers");
    let sh = shell_in(&std::env::temp_dir())?;
    let n = 30;
    let mut samples = vec![time_command(
        "`goodgo --version`",
        n,
        &|| cmd!(sh, "{goodgo} --version"),
        false,
    )?];
    if on_path("docker-compose") {
        samples.push(time_command(
            "`docker-compose version` (peer)",
            n,
            &|| cmd!(sh, "docker-compose version"),
            false,
        )?);
    }
    samples.push(time_command(
        "`goodgo doctor` (10 checks, in parallel)",
        n,
        &|| cmd!(sh, "{goodgo} doctor"),
        true,
    )?);
    let manual = "docker info >/dev/null; for t in initdb postgres pg_dump pg_restore psql redis-server git; do \"$t\" --version; done; k6 version";
    let path = pg_path();
    samples.push(time_command(
        "`docker info` + each tool's `--version`, one after another (peer)",
        n,
        &|| cmd!(sh, "sh -c {manual}").env("PATH", &path),
        true,
    )?);
    let body = format!(
        "## Start-up\n\nMeasured {}; release build; {n} runs each after one warm-up.\nRepeat with `cargo xtask bench startup`.\n\n{}",
        machine(),
        table(&samples)
    );
    write_section("startup", &body)
}

/// PATH with PostgreSQL's binaries folder and pip's scripts folder, as `cargo xtask test`
/// has it.
fn pg_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = vec![PathBuf::from("/usr/lib/postgresql/15/bin")];
    // goodgo finds the same binaries there first; give both sides the same PATH.
    dirs.extend(python_scripts_dir().ok());
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}
