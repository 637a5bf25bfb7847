//! What goodgo's tests share, in one place instead of a copy per test file: a workspace in a
//! temp dir ([`TestContext`]), a database of its own ([`TestDb`], through
//! `goodgo_db::admin`), a child process that cannot outlive its test ([`ChildGuard`]),
//! [`free_port`], filters that make output stable ([`Filters`]), snapshots of what a user
//! sees ([`assert_cmd_snapshot!`]), one stack body run on both runtimes ([`stack_test!`]),
//! one HTTP client for loopback servers ([`http::Http`]), a real S3 API server
//! ([`s3::S3Server`]) and a real Redis ([`redis::RedisServer`]).
//!
//! A dev-only crate: products never depend on it.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

mod command;
mod context;
mod database;
mod filters;
pub mod http;
mod macros;
mod process;
pub mod redis;
mod runtime;
pub mod s3;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use command::{Run, assert_has, clean_command, run};
pub use context::TestContext;
pub use database::{TestDb, block_on, query, table_digests};
pub use filters::Filters;
pub use process::{ChildGuard, Signal, signal};
pub use runtime::Runtime;

#[doc(hidden)]
pub use insta;

/// The repository's root folder (where the workspace's Cargo.toml is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// A TCP port on 127.0.0.1 nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True when `cargo xtask test` runs the suite: then every external part it provisions
/// must be there, and a missing one is a failure instead of a skip.
pub fn strict() -> bool {
    std::env::var_os("GOODGO_TEST_STRICT").is_some()
}

/// Prints `SKIPPED test: why` straight to the process's stderr: libtest captures
/// `eprintln!`, so a skip written that way would be invisible in a passing run.
pub fn skip(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("SKIPPED {test}: {why}\n").as_bytes());
}

/// Polls `done` every 200 ms until it holds; fails the test after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `cmd`, fails the test (with the command and its stderr) unless it succeeds, and
/// returns its stdout.
pub fn stdout_of(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
