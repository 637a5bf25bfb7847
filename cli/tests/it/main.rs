//! The goodgo command line's integration tests, in one test binary (one link instead of
//! one per file): each module spawns the real `goodgo` binary, with the test kit's
//! workspace, database, process and snapshot helpers.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

mod backup;
mod backup_keys;
mod backup_s3;
mod ci;
mod cli;
mod codegen;
mod compose;
mod compose_engine;
mod db;
mod deploy;
mod deploy_swarm;
mod dev;
mod doctor;
mod guard;
mod json;
mod k6;
mod newuser;
mod plan;
mod running;
mod stack;
mod stack_s3;
mod testcmd;
mod webhook;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use goodgo_testkit::{
    ChildGuard, Filters, Run, Runtime, TestContext, TestDb, free_port, query, run, skip, stdout_of,
    strict, wait_until,
};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_goodgo"))
}

/// A `goodgo` command started in `cwd`, with no GOODGO_* or colour settings inherited.
pub fn goodgo(cwd: &Path) -> Command {
    goodgo_testkit::clean_command(&bin(), cwd)
}

/// A fresh, empty workspace folder where `goodgo` runs.
pub fn context() -> TestContext {
    TestContext::new(bin())
}

/// This repository's root.
pub fn repo() -> PathBuf {
    goodgo_testkit::repo_root()
}

/// The API binary, built (debug) when missing.
pub fn api_binary() -> PathBuf {
    let target = repo().join("target");
    let bin = target.join("debug/goodgo-api");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "--quiet", "-p", "goodgo-api"])
            .current_dir(repo())
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .unwrap();
        assert!(ok.success(), "building goodgo-api");
    }
    bin
}

/// The API binary serving the migrated database at `db_url` on a free loopback port, once
/// it is ready: the process (stopped when dropped) and its port. `env` adds to and
/// overrides its environment (a JWT secret, no real rate limit and quiet logs by default).
pub fn serve_api(db_url: &str, env: &[(&str, &str)]) -> (ChildGuard, u16) {
    let port = free_port();
    let mut cmd = Command::new(api_binary());
    cmd.env("GOODGO_DATABASE_URL", db_url)
        .env(
            "GOODGO_JWT_SECRET",
            "it-test-Zq8vR2mW9xL4pT7nB3cY6hJ1sD5fG0kA",
        )
        .env("GOODGO_API_ADDR", format!("127.0.0.1:{port}"))
        .env("GOODGO_AUTH_RATE_LIMIT", "100000")
        .env("GOODGO_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let api = ChildGuard::new(cmd.spawn().unwrap());
    let http = goodgo_testkit::http::Http::local(port);
    wait_until("the API is ready", Duration::from_secs(30), || {
        http.get("/readyz").is_some_and(|a| a.status == 200)
    });
    (api, port)
}

/// A workspace with a copy of the repository's first four migrations (and squawk's
/// settings) and `goodgo_yaml` as its goodgo.yaml. The `goodgo db` tests count and name
/// these four; the API's later migrations are not theirs to follow.
pub fn workspace_with_migrations(goodgo_yaml: &str) -> TestContext {
    let ctx = context().with_file("goodgo.yaml", goodgo_yaml);
    ctx.copy_from_repo("migrations")
        .copy_from_repo(".squawk.toml");
    for entry in std::fs::read_dir(ctx.join("migrations")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let version = name
            .strip_prefix('V')
            .and_then(|r| r.split("__").next())
            .and_then(|v| v.parse::<u32>().ok());
        if version.is_some_and(|v| v > 4) {
            std::fs::remove_file(&path).unwrap();
        }
    }
    ctx
}

/// One file of a corpus of broken files, and the position of its error that its first
/// line names (`# expect: LINE:COL`).
pub struct Broken {
    pub name: String,
    pub text: String,
    pub expect: String,
}

/// Every file of the corpus in `dir`, sorted by name.
pub fn broken_corpus(dir: &Path) -> Vec<Broken> {
    let mut paths: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            let expect = text
                .lines()
                .next()
                .unwrap()
                .strip_prefix("# expect: ")
                .unwrap()
                .trim()
                .to_string();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            Broken { name, text, expect }
        })
        .collect()
}

/// A workspace whose `goodgo dev` gets its own ports and build folder: every goodgo it runs
/// is started through [`DevPorts::command`].
pub struct DevPorts {
    pub ws: PathBuf,
    pub pg: u16,
    pub redis: u16,
    /// The S3 service's port (`--profile s3`).
    pub minio: u16,
    pub addr: String,
    /// CARGO_TARGET_DIR for the API builds of this workspace.
    pub target: PathBuf,
}

impl DevPorts {
    /// Free ports for PostgreSQL, Redis and the API.
    pub fn new(ws: PathBuf, target: PathBuf) -> DevPorts {
        DevPorts {
            ws,
            pg: free_port(),
            redis: free_port(),
            minio: free_port(),
            addr: format!("127.0.0.1:{}", free_port()),
            target,
        }
    }

    /// `goodgo` in the workspace, with its ports, build folder and a quiet API log.
    pub fn command(&self) -> Command {
        let mut cmd = goodgo(&self.ws);
        cmd.env("POSTGRES_PORT", self.pg.to_string())
            .env("REDIS_PORT", self.redis.to_string())
            .env("MINIO_PORT", self.minio.to_string())
            .env("GOODGO_API_ADDR", &self.addr)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("GOODGO_LOG", "warn");
        cmd
    }
}

/// What the tests check of a finished run, beside the kit's [`Run::assert_stderr`].
pub trait Expect {
    /// Fails the test (showing the whole run) unless it exited with `code` and its stdout
    /// holds every one of `texts`.
    fn assert_stdout(&self, code: i32, texts: &[&str]) -> &Run;
}

impl Expect for Run {
    #[track_caller]
    fn assert_stdout(&self, code: i32, texts: &[&str]) -> &Run {
        assert_eq!(self.code, code, "{}", self.report());
        goodgo_testkit::assert_has(&self.stdout, texts);
        self
    }
}

/// Starts every one of `commands` at once, then waits for them all: what each run produced,
/// in order.
pub fn run_at_once(commands: impl IntoIterator<Item = Command>) -> Vec<Run> {
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut cmd| {
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| Run::from(child.wait_with_output().unwrap()))
        .collect()
}

/// Sends SIGINT to `child` and waits for it to exit: its status. Fails the test, with what
/// `output` says the child wrote, when it takes longer than `limit`.
pub fn interrupt(child: &mut Child, limit: Duration, output: impl Fn() -> String) -> ExitStatus {
    goodgo_testkit::signal(child.id(), goodgo_testkit::Signal::INT);
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the child did not exit within {limit:?} of SIGINT:\n{}",
            output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The object of the array `list` of a JSON document whose `field` is `value`.
pub fn json_find<'a>(
    json: &'a serde_json::Value,
    list: &str,
    field: &str,
    value: &str,
) -> &'a serde_json::Value {
    json[list]
        .as_array()
        .unwrap_or_else(|| panic!("no array `{list}` in {json}"))
        .iter()
        .find(|item| item[field] == value)
        .unwrap_or_else(|| panic!("no `{field}: {value}` in `{list}` of {json}"))
}

/// The string `field` of every object in the array `list` of a JSON document, in order
/// (`db status --json` states, `backup list --json` ids, …).
pub fn json_fields(json: &serde_json::Value, list: &str, field: &str) -> Vec<String> {
    json[list]
        .as_array()
        .unwrap_or_else(|| panic!("no array `{list}` in {json}"))
        .iter()
        .map(|item| item[field].as_str().unwrap().to_string())
        .collect()
}
