//! What the CLI tests share: running the real `goodgo` binary in a clean environment and
//! reading what a user would see.
#![allow(dead_code, clippy::unwrap_used)]

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

/// Prints `SKIPPED test: why` straight to the process's stderr: libtest captures
/// `eprintln!`, so a skip written that way would be invisible in a passing run.
pub fn skip(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("SKIPPED {test}: {why}\n").as_bytes());
}

/// A database of its own for one test, on the PostgreSQL that `cargo xtask test` started
/// (`GOODGO_TEST_DATABASE_URL`); dropped at the end. `None` (with a visible skip line)
/// only outside `cargo xtask test`.
pub struct TestDb {
    pub name: String,
    pub url: String,
    server: String,
}

impl TestDb {
    pub fn create(test: &str) -> Option<TestDb> {
        let Ok(server) = std::env::var("GOODGO_TEST_DATABASE_URL") else {
            assert!(
                !strict(),
                "cargo xtask test provides GOODGO_TEST_DATABASE_URL"
            );
            skip(test, "no GOODGO_TEST_DATABASE_URL (run `cargo xtask test`)");
            return None;
        };
        let name = format!("gg_{}_{}", test, std::process::id());
        let db = TestDb {
            url: with_dbname(&server, &name),
            name,
            server,
        };
        db.admin(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            db.name
        ));
        db.admin(&format!("CREATE DATABASE \"{}\"", db.name));
        Some(db)
    }

    fn admin(&self, sql: &str) {
        psql(&self.server, sql);
    }

    /// Runs SQL in this database and returns psql's unaligned, tuples-only output.
    pub fn sql(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", "-d", &self.server, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

pub fn with_dbname(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

pub fn psql(url: &str, sql: &str) -> String {
    stdout_of(Command::new("psql").args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        url,
        "-c",
        sql,
    ]))
    .trim()
    .to_string()
}

/// Runs `cmd`, fails the test (with the command and its stderr) unless it succeeds, and
/// returns its stdout.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A workspace with a copy of the repository's migrations and a goodgo.yaml.
pub fn workspace_with_migrations(goodgo_yaml: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::create_dir(tmp.path().join("migrations")).unwrap();
    for entry in std::fs::read_dir(repo.join("migrations")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            tmp.path()
                .join("migrations")
                .join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    std::fs::copy(repo.join(".squawk.toml"), tmp.path().join(".squawk.toml")).unwrap();
    std::fs::write(tmp.path().join("goodgo.yaml"), goodgo_yaml).unwrap();
    tmp
}
