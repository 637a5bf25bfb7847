//! Throwaway services for the tests and benchmarks, each on a free loopback port, stopped
//! when dropped (also when the tests fail or xtask errors out).
//!
//! PostgreSQL is started by `goodgo-stack`'s native runtime, the very code `goodgo up
//! --runtime native` runs, so there is one way to start a throwaway server. Databases on it
//! are made and dropped through `goodgo_db::admin` (quoted names, no `psql` binary).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use goodgo_stack::native::NativeRuntime;
use goodgo_stack::{StackError, UpRequest};
use xshell::cmd;

use crate::provision::Tools;

/// A port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The project name the native runtime files the server under.
const PROJECT: &str = "xtask";

/// A single-threaded runtime for the async libraries (goodgo-stack, goodgo-db).
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start an async runtime")?;
    Ok(rt.block_on(future))
}

/// The Compose service the native runtime starts: trust authentication as the `postgres`
/// user, fsync off, room for the parallel tests' connections.
fn compose_text(port: u16) -> String {
    format!(
        r#"services:
  postgres:
    image: postgres:15
    environment:
      POSTGRES_USER: postgres
      POSTGRES_HOST_AUTH_METHOD: trust
    command: ["postgres", "-c", "fsync=off", "-c", "max_connections=200"]
    ports: ["127.0.0.1:{port}:5432"]
"#
    )
}

/// goodgo-stack's native runtime for a throwaway server in `workspace`; with
/// [`start_native`] and [`stop_native`], everything this module needs of goodgo-stack.
fn native_runtime(workspace: &Path, pg_bin_dir: &Path) -> NativeRuntime {
    NativeRuntime::new(workspace, PROJECT, Some(pg_bin_dir.to_path_buf()), None)
}

/// Starts PostgreSQL on `port`.
fn start_native(runtime: &NativeRuntime, workspace: &Path, port: u16) -> Result<()> {
    let file = workspace.join("compose.yaml");
    let project = goodgo_compose::load_str(&compose_text(port), workspace, &file, &|_| None)
        .context("the throwaway PostgreSQL's Compose text")?;
    let request = UpRequest {
        project: PROJECT.into(),
        waves: vec![vec!["postgres".into()]],
        timeout: Duration::from_secs(30),
    };
    match block_on(goodgo_stack::up(runtime, &project, &request, &|_| {}))? {
        Ok(_) => Ok(()),
        Err(StackError::Failed { message, logs, .. }) => {
            anyhow::bail!("{message}:\n{}", logs.join("\n"))
        }
        Err(err) => Err(err).context("starting PostgreSQL"),
    }
}

/// Stops what [`start_native`] started and deletes its data.
async fn stop_native(runtime: &NativeRuntime) -> Result<()> {
    runtime.down(true).await?;
    Ok(())
}

/// The throwaway servers running now (their folder and PostgreSQL's binaries folder), for
/// the Ctrl-C handler. The native runtime starts PostgreSQL in a process group of its own,
/// so the terminal's SIGINT does not reach it: xtask stops it.
static RUNNING: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

fn running() -> std::sync::MutexGuard<'static, Vec<(PathBuf, PathBuf)>> {
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// On the first Ctrl-C, stops the servers in [`RUNNING`] and exits with 130, the status
/// of a shell's interrupted command. Installed once, with the first server.
fn stop_on_ctrl_c() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::thread::spawn(|| {
            // Without a runtime or a handler, Ctrl-C keeps its default action.
            let _ = block_on(async {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                let servers: Vec<_> = running().drain(..).collect();
                for (dir, bin) in servers {
                    eprintln!("interrupted: stopping the throwaway postgres");
                    let _ = stop_native(&native_runtime(&dir, &bin)).await;
                    let _ = std::fs::remove_dir_all(&dir);
                }
                std::process::exit(130);
            });
        });
    });
}

/// A throwaway PostgreSQL server.
pub struct Postgres {
    runtime: NativeRuntime,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    pub fn start(tools: &Tools) -> Result<Self> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("goodgo-xtask-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = free_port()?;
        let runtime = native_runtime(&dir, &tools.pg_bin_dir);
        stop_on_ctrl_c();
        running().push((dir.clone(), tools.pg_bin_dir.clone()));
        // Dropped on failure too: a server that started but never got ready is stopped.
        let pg = Postgres { runtime, dir, port };
        start_native(&pg.runtime, &pg.dir, port)?;
        Ok(pg)
    }

    /// The server's own `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        running().retain(|(dir, _)| *dir != self.dir);
        match block_on(stop_native(&self.runtime)) {
            Ok(Ok(())) => eprintln!("stopped postgres (port {})", self.port),
            Ok(Err(err)) | Err(err) => eprintln!("stopping postgres: {err:#}"),
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `server_url` with another database name.
pub fn database_url(server_url: &str, name: &str) -> Result<String> {
    Ok(goodgo_db::admin::Target::parse(server_url)?
        .with_dbname(name)
        .url)
}

/// Creates database `name` on the server of `server_url`, dropping an older one first.
pub fn fresh_database(server_url: &str, name: &str) -> Result<String> {
    let server = goodgo_db::admin::Target::parse(server_url)?;
    block_on(async {
        goodgo_db::admin::drop_database(&server, name).await?;
        goodgo_db::admin::create_database(&server, name, None).await
    })?
    .with_context(|| format!("creating the database {name}"))?;
    Ok(server.with_dbname(name).url)
}

/// Drops database `name` (ending its sessions); nothing when it does not exist.
pub fn drop_database(server_url: &str, name: &str) -> Result<()> {
    let server = goodgo_db::admin::Target::parse(server_url)?;
    block_on(goodgo_db::admin::drop_database(&server, name))?
        .with_context(|| format!("dropping the database {name}"))
}

/// A fresh database `name` on the server of `server_url`, migrated and seeded with
/// `listings` listings by the `goodgo` binary; returns its URL.
pub fn seeded_database(
    goodgo: &Path,
    server_url: &str,
    name: &str,
    listings: u64,
) -> Result<String> {
    let url = fresh_database(server_url, name)?;
    let sh = crate::shell()?;
    let listings = listings.to_string();
    for args in [
        &["-q", "db", "migrate"][..],
        &["-q", "db", "seed", "--listings", listings.as_str()],
    ] {
        cmd!(sh, "{goodgo} {args...}")
            .env("GOODGO_DATABASE_URL", &url)
            .ignore_stdout()
            .run()?;
    }
    Ok(url)
}

/// The API binary `bin` serving the database at `database_url` on a free loopback port
/// (`env` adds to or overrides its environment), once it answers `/healthz`: the API,
/// stopped when dropped, and its port.
pub fn start_api(
    bin: &Path,
    database_url: &str,
    env: &[(&str, &str)],
) -> Result<(ChildGuard, u16)> {
    let port = free_port()?;
    let child = std::process::Command::new(bin)
        .current_dir(crate::root())
        .env("GOODGO_DATABASE_URL", database_url)
        .env(
            "GOODGO_JWT_SECRET",
            "xtask-run-Qx7Lm2vB8wR4tY6uP0aS5dF1gHjKzz",
        )
        .env("GOODGO_API_ADDR", format!("127.0.0.1:{port}"))
        .env("GOODGO_LOG", "warn")
        .envs(env.iter().copied())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let api = ChildGuard {
        child,
        signal: rustix::process::Signal::TERM,
    };
    goodgo_testkit::http::Http::local(port)
        .wait_for_ok("/healthz", Duration::from_secs(30))
        .map_err(anyhow::Error::msg)
        .context("goodgo-api did not answer /healthz in 30 s")?;
    Ok((api, port))
}

/// A child process stopped with `signal` when dropped, killed if it has not gone in 10 s.
pub struct ChildGuard {
    pub child: Child,
    pub signal: rustix::process::Signal,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, self.signal);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway server starts, takes a database through `goodgo_db::admin`, and is gone
    /// after the drop. Needs PostgreSQL's server binaries (`GOODGO_TEST_PG_BIN_DIR`, which
    /// `cargo xtask test` sets); skipped without them.
    #[test]
    fn a_throwaway_postgres_starts_and_stops() {
        let Some(bin) = std::env::var_os("GOODGO_TEST_PG_BIN_DIR") else {
            eprintln!("SKIPPED: GOODGO_TEST_PG_BIN_DIR is not set");
            return;
        };
        let tools = Tools {
            pg_bin_dir: PathBuf::from(bin),
            pg_version: String::new(),
            extra_path: Vec::new(),
        };
        let pg = Postgres::start(&tools).expect("postgres starts");
        let url = fresh_database(&pg.url(), "xtask \"odd\" name").expect("created");
        // The name is percent-encoded in the URL, as a URL needs it.
        assert!(url.ends_with("/xtask%20%22odd%22%20name"), "{url}");
        drop_database(&pg.url(), "xtask \"odd\" name").expect("dropped");
        let port = pg.port;
        let dir = pg.dir.clone();
        drop(pg);
        assert!(!dir.exists(), "{} is left", dir.display());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
