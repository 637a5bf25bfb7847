//! `goodgo dev`: the stack up, the database migrated (and seeded when empty), the API
//! built and running with its environment wired, one panel saying where everything is —
//! then watching `service/` and `migrations/`: a source change rebuilds and restarts the
//! API (the old one keeps serving until the new one has built), a new migration is
//! applied, a build error is shown and the session goes on. Ctrl-C stops the API; the
//! services keep running for the next `dev` (`--down` stops them too). Every step before
//! the panel races SIGINT/SIGTERM: an interrupt kills the build or the API it started and
//! exits 130.

use std::collections::VecDeque;
use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io::{BufRead as _, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use goodgo_db::admin::Target;
use goodgo_stack::UpRequest;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::Context;
use super::init::{new_env, read_env, write_private};
use crate::args::DevArgs;
use crate::error::{ExitStatus, UserError};
use crate::printer::Printer;

/// `.goodgo/dev.lock`, held with an exclusive `flock` for the whole session and holding our
/// pid, so a second `dev` in the same workspace says who runs instead of fighting it. The
/// kernel releases the lock when the process ends, however it ends: no stale lock.
struct Lock(std::fs::File);

impl Lock {
    fn take(root: &Path) -> Result<Lock> {
        let dir = root.join(".goodgo");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("dev.lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder writes its pid right after locking: give it a moment.
                let mut pid = String::new();
                for _ in 0..20 {
                    pid = std::fs::read_to_string(&path).unwrap_or_default();
                    if !pid.trim().is_empty() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                let pid = pid.trim();
                let who = if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                };
                return Err(UserError::failed(format!(
                    "`goodgo dev` is already running in this workspace{who}"
                ))
                .with_hint("use that session, or stop it with Ctrl-C in its terminal")
                .into());
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(anyhow::Error::new(e).context(format!("locking {}", path.display())));
            }
        }
        file.set_len(0)?;
        std::io::Write::write_all(&mut file, std::process::id().to_string().as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    /// Empties the file; the lock itself goes with the file handle. The file stays, so
    /// nobody can lock a path that is being removed.
    fn drop(&mut self) {
        let _ = self.0.set_len(0);
    }
}

/// SIGINT and SIGTERM, registered once when the session starts: a signal that arrives while
/// nothing waits for it is kept for the next [`Interrupt::wait`].
struct Interrupt {
    int: Signal,
    term: Signal,
}

impl Interrupt {
    fn register() -> Result<Interrupt> {
        Ok(Interrupt {
            int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }

    /// `fut`'s output, or `None` (and `fut` dropped) when a signal comes first.
    async fn race<T>(&mut self, fut: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.wait() => None,
            v = fut => Some(v),
        }
    }
}

/// Signals every process in the group `pgid` (the leader's pid).
fn kill_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// A fingerprint of every file below `dirs` (paths, sizes, modification times), skipping
/// `target/` and hidden entries.
fn fingerprint(dirs: &[PathBuf]) -> u64 {
    let mut h = DefaultHasher::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    let mut files: Vec<(PathBuf, u64, u128)> = Vec::new();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                files.push((e.path(), meta.len(), mtime));
            }
        }
    }
    files.sort();
    files.hash(&mut h);
    h.finish()
}

/// The API package: the `name` of `service/Cargo.toml` (its binary has the same name).
fn api_package(root: &Path) -> Result<String> {
    let manifest = root.join("service/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|_| {
        UserError::input(format!(
            "{} is missing: `goodgo dev` runs the API crate in service/",
            manifest.display()
        ))
    })?;
    let mut in_package = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_package = t == "[package]";
        } else if in_package
            && let Some(v) = t
                .strip_prefix("name")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('='))
        {
            return Ok(v.trim().trim_matches('"').to_string());
        }
    }
    Err(UserError::input(format!("{}: no package name", manifest.display())).into())
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// How a build ended.
enum Build {
    Built,
    /// The compiler's output.
    Failed(String),
    Interrupted,
}

/// `cargo build -p PACKAGE` in a process group of its own, so an interrupt stops cargo and
/// every compiler it started.
async fn build(root: &Path, package: &str, interrupt: &mut Interrupt) -> Build {
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
            kill_group(child.id(), "-TERM");
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            kill_group(child.id(), "-KILL");
            let _ = child.wait();
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

/// How many of the API's last output lines a crash report shows.
const TAIL: usize = 20;

struct Api {
    child: Child,
    /// The last [`TAIL`] lines the API wrote.
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Api {
    /// Starts the built binary in a process group of its own (so a Ctrl-C in the terminal
    /// reaches `dev`, which stops it), its output passed through and its tail kept.
    fn start(
        root: &Path,
        package: &str,
        env: &[(String, String)],
        printer: &Printer,
    ) -> Result<Api> {
        let bin = target_dir(root).join("debug").join(package);
        let mut cmd = Command::new(&bin);
        cmd.current_dir(root)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL)));
        if let Some(out) = child.stdout.take() {
            forward(out, printer.clone(), true, tail.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, printer.clone(), false, tail.clone());
        }
        Ok(Api { child, tail })
    }

    /// The exit status when the process has ended.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Its last output lines, indented, for a report.
    fn last_lines(&self) -> String {
        let tail = self.tail.lock().map(|t| t.clone()).unwrap_or_default();
        if tail.is_empty() {
            return "  (no output)\n".into();
        }
        tail.iter().map(|l| format!("  | {l}\n")).collect()
    }

    /// SIGTERM, so in-flight requests finish; SIGKILL after 10 s.
    fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Api {
    /// An API that `dev` started never outlives it, whatever ends the session.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Passes the API's output lines on to the terminal, keeping the last [`TAIL`].
fn forward(
    stream: impl Read + Send + 'static,
    printer: Printer,
    stdout: bool,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if stdout {
                printer.stdout_raw(&format!("{line}\n"));
            } else {
                printer.stderr(&format!("{line}\n"));
            }
            if let Ok(mut t) = tail.lock() {
                if t.len() == TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        }
    });
}

/// GET `path` on `addr` (host:port); the status code.
async fn http_status(addr: &str, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: dev\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await.ok()?;
        std::str::from_utf8(&buf[..n])
            .ok()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}

/// Waits until the API answers `/readyz` (or `/healthz` where there is no `/readyz`).
async fn wait_ready(api: &mut Api, addr: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Some(status) = api.exited() {
            // Let the output threads catch the last lines.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(UserError::failed(format!(
                "the API exited ({status}) while starting; its last lines:\n{}",
                api.last_lines().trim_end()
            ))
            .into());
        }
        match http_status(addr, "/readyz").await {
            Some(200) => return Ok(()),
            Some(404) if http_status(addr, "/healthz").await == Some(200) => return Ok(()),
            _ => {}
        }
        if start.elapsed() > limit {
            return Err(UserError::failed(format!(
                "the API did not become ready on {addr} in {} s",
                limit.as_secs()
            ))
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Polling period of the watch.
const POLL: Duration = Duration::from_millis(250);
/// A change is acted on once the files have been quiet this long…
const QUIET: Duration = Duration::from_millis(300);
/// …or this long after it was first seen, whichever comes first.
const SETTLE_MAX: Duration = Duration::from_secs(2);

pub fn run(ctx: &Context, args: &DevArgs, printer: &Printer) -> Result<ExitStatus> {
    let root = ctx.workspace.root.clone();
    let _lock = Lock::take(&root)?;
    let rt = crate::ops::stack::runtime()?;
    rt.block_on(session(ctx, args, &root, printer))
}

async fn session(
    ctx: &Context,
    args: &DevArgs,
    root: &Path,
    printer: &Printer,
) -> Result<ExitStatus> {
    // SIGINT/SIGTERM from the very start: every step below races them, so an interrupt
    // stops the session at once, kills a build or an API it started, and exits 130.
    let mut interrupt = Interrupt::register()?;
    let mut steps: Vec<(&str, Duration)> = Vec::new();
    let name = ctx.workspace.settings.name.value.clone();

    // Secrets.
    let env_path = root.join(".env");
    if !env_path.exists() {
        write_private(&env_path, &new_env(&name)?)?;
        printer.status("created .env with fresh secrets (mode 0600)");
    }
    let dotenv = read_env(&env_path);

    // 1. The stack.
    let t = Instant::now();
    let loaded = crate::ops::stack::load(ctx, None, None, printer)?;
    let waves = goodgo_compose::waves(&loaded.project, &[], &[])?;
    let req = UpRequest {
        project: loaded.name.clone(),
        waves,
        timeout: Duration::from_secs(120),
    };
    let Some(chosen) = interrupt
        .race(crate::ops::stack::choose(
            ctx,
            &loaded,
            &req,
            args.runtime,
            true,
            printer,
        ))
        .await
    else {
        return interrupted(ctx, args, &loaded.name, None, printer).await;
    };
    let (chosen, why) = chosen.map_err(|e| UserError::failed(e.to_string()))?;
    let runtime_name = chosen.name();
    let Some(up) = interrupt
        .race(crate::ops::stack::run_up(&loaded, &req, &*chosen, printer))
        .await
    else {
        return interrupted(ctx, args, &loaded.name, None, printer).await;
    };
    up?;
    steps.push(("stack", t.elapsed()));

    // 2. The database: migrated, seeded when empty.
    let t = Instant::now();
    let url = match &ctx.workspace.settings.database_url.value {
        Some(u) => u.clone(),
        None => crate::ops::stack::running_database_url(ctx)
            .map(|(u, _)| u)
            .ok_or_else(|| {
                UserError::failed("the stack has no reachable PostgreSQL service")
                    .with_hint("set GOODGO_DATABASE_URL or `database_url` in goodgo.yaml")
            })?,
    };
    let target = Target::parse(&url).map_err(|e| UserError::input(e.to_string()))?;
    let migrations_dir = ctx
        .workspace
        .resolve(&ctx.workspace.settings.migrations_dir.value);
    let shown_migrations = ctx.workspace.display_path(&migrations_dir);
    let Some(client) = interrupt
        .race(migrate(
            &target,
            &migrations_dir,
            &shown_migrations,
            printer,
        ))
        .await
    else {
        return interrupted(ctx, args, &loaded.name, None, printer).await;
    };
    let mut client = client?;
    steps.push(("migrate", t.elapsed()));
    if !args.no_seed {
        let t = Instant::now();
        let seeded = interrupt
            .race(async {
                let empty = client
                    .query_one(
                        "SELECT to_regclass('listings') IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users)",
                        &[],
                    )
                    .await
                    .map(|r| r.get::<_, bool>(0))
                    .unwrap_or(false);
                if !empty {
                    return Ok(None);
                }
                goodgo_db::seed::seed(&mut client, 1000)
                    .await
                    .map(Some)
                    .context("seeding the database")
            })
            .await;
        let Some(seeded) = seeded else {
            return interrupted(ctx, args, &loaded.name, None, printer).await;
        };
        if let Some(done) = seeded? {
            printer.status(&format!(
                "seeded {} users and {} listings (password `{}`)",
                done.users,
                done.listings,
                goodgo_db::seed::DEV_PASSWORD
            ));
            steps.push(("seed", t.elapsed()));
        }
    }
    drop(client);

    // 3. The API.
    let package = api_package(root)?;
    let t = Instant::now();
    printer.status(&format!("building {package}…"));
    match build(root, &package, &mut interrupt).await {
        Build::Built => {}
        Build::Failed(errors) => {
            printer.stderr(&errors);
            return Err(UserError::failed(format!("{package} does not build"))
                .with_hint("fix the errors above and run `goodgo dev` again")
                .into());
        }
        Build::Interrupted => return interrupted(ctx, args, &loaded.name, None, printer).await,
    }
    steps.push(("build", t.elapsed()));
    let addr = std::env::var("GOODGO_API_ADDR")
        .ok()
        .or_else(|| {
            dotenv
                .iter()
                .find(|(k, _)| k == "GOODGO_API_ADDR")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let mut env: Vec<(String, String)> = dotenv.clone();
    env.retain(|(k, _)| k != "GOODGO_DATABASE_URL" && k != "GOODGO_API_ADDR");
    env.push(("GOODGO_DATABASE_URL".into(), url.clone()));
    env.push(("GOODGO_API_ADDR".into(), addr.clone()));
    if let Some(redis) = loaded
        .project
        .services
        .values()
        .find(|s| goodgo_stack::native::kind(s).ok() == Some(goodgo_stack::native::Kind::Redis))
        && let Some(p) = redis
            .ports
            .iter()
            .find(|p| p.target == 6379)
            .and_then(|p| p.published)
    {
        env.push(("GOODGO_REDIS_URL".into(), format!("redis://127.0.0.1:{p}")));
    }
    let t = Instant::now();
    if !super::stack_port_free(&addr) {
        return Err(
            UserError::failed(format!("{addr} is taken: the API cannot listen there"))
                .with_hint("set GOODGO_API_ADDR (environment or .env) to a free address")
                .into(),
        );
    }
    let mut api = Api::start(root, &package, &env, printer)?;
    match interrupt
        .race(wait_ready(&mut api, &addr, Duration::from_secs(60)))
        .await
    {
        Some(ready) => ready?,
        None => return interrupted(ctx, args, &loaded.name, Some(api), printer).await,
    }
    steps.push(("start", t.elapsed()));

    // 4. The panel.
    let mut panel = format!("goodgo dev: {name}\n");
    let _ = writeln!(panel, "  API       http://{addr}");
    let _ = writeln!(panel, "  Docs      http://{addr}/docs");
    let _ = writeln!(panel, "  Database  {}", target.redacted());
    let _ = writeln!(panel, "  Runtime   {runtime_name} ({why})");
    let times: Vec<String> = steps
        .iter()
        .map(|(s, d)| format!("{s} {}", secs(*d)))
        .collect();
    let _ = writeln!(panel, "  Steps     {}", times.join(" · "));
    let _ = writeln!(
        panel,
        "watching service/ and migrations/; Ctrl-C stops the API (services keep running{})",
        if args.down {
            ", --down stops them too"
        } else {
            ""
        }
    );
    printer.stdout_raw(&panel);

    // 5. Watch. From here on, Ctrl-C is how a session normally ends: exit 0.
    let service_dirs = vec![root.join("service")];
    let migration_dirs = vec![migrations_dir.clone()];
    let mut seen_service = fingerprint(&service_dirs);
    let mut seen_migrations = fingerprint(&migration_dirs);
    let mut api = Some(api);
    loop {
        if interrupt.race(tokio::time::sleep(POLL)).await.is_none() {
            break;
        }
        if let Some(status) = api.as_mut().and_then(Api::exited) {
            tokio::time::sleep(Duration::from_millis(100)).await; // the last lines
            if let Some(dead) = api.take() {
                printer.warn(&format!(
                    "the API exited by itself ({status}); its last lines:\n{}the next change in service/ or migrations/ rebuilds and restarts it",
                    dead.last_lines()
                ));
            }
        }
        let now = (fingerprint(&service_dirs), fingerprint(&migration_dirs));
        if now == (seen_service, seen_migrations) {
            continue;
        }
        // Let the editor (or a checkout) finish writing.
        let Some((now_service, now_migrations)) = interrupt
            .race(settle(&service_dirs, &migration_dirs, now))
            .await
        else {
            break;
        };
        if now_migrations != seen_migrations {
            seen_migrations = now_migrations;
            match interrupt
                .race(migrate(
                    &target,
                    &migrations_dir,
                    &shown_migrations,
                    printer,
                ))
                .await
            {
                Some(Ok(_)) => printer.status("migrations up to date"),
                Some(Err(e)) => printer.warn(&format!("migration failed: {e:#}")),
                None => break,
            }
        }
        if now_service == seen_service && api.is_some() {
            continue;
        }
        seen_service = now_service;
        let t = Instant::now();
        printer.status(&format!("rebuilding {package}…"));
        match build(root, &package, &mut interrupt).await {
            Build::Built => {}
            Build::Failed(errors) => {
                printer.stderr(&errors);
                printer.warn(if api.is_some() {
                    "the build failed; still serving the previous build"
                } else {
                    "the build failed; no API is running"
                });
                continue;
            }
            Build::Interrupted => break,
        }
        printer.status(&format!(
            "built in {}; restarting the API",
            secs(t.elapsed())
        ));
        if let Some(mut old) = api.take() {
            old.stop();
        }
        let mut new = Api::start(root, &package, &env, printer)?;
        match interrupt
            .race(wait_ready(&mut new, &addr, Duration::from_secs(60)))
            .await
        {
            Some(Ok(())) => {
                printer.status(&format!("reloaded the API in {}", secs(t.elapsed())));
                api = Some(new);
            }
            Some(Err(e)) => {
                printer.warn(&format!("the new build does not come up: {e}"));
                // Dropping it stops it; the next change tries again.
            }
            None => break,
        }
    }
    printer.status("stopping the API…");
    drop(api);
    if args.down {
        crate::ops::stack::stop_all(ctx, &loaded.name, printer).await?;
        printer.status("stopped the services");
    }
    Ok(ExitStatus::Success)
}

/// Waits until neither tree has changed for [`QUIET`] (at most [`SETTLE_MAX`]); their
/// fingerprints then.
async fn settle(service: &[PathBuf], migrations: &[PathBuf], mut last: (u64, u64)) -> (u64, u64) {
    let start = Instant::now();
    loop {
        tokio::time::sleep(QUIET).await;
        let now = (fingerprint(service), fingerprint(migrations));
        if now == last || start.elapsed() >= SETTLE_MAX {
            return now;
        }
        last = now;
    }
}

/// A session interrupted before its panel: the API (if any) stopped, the services kept
/// unless `--down`; exit 130.
async fn interrupted(
    ctx: &Context,
    args: &DevArgs,
    project: &str,
    api: Option<Api>,
    printer: &Printer,
) -> Result<ExitStatus> {
    printer.status("interrupted");
    drop(api);
    if args.down {
        crate::ops::stack::stop_all(ctx, project, printer).await?;
        printer.status("stopped the services");
    }
    Ok(ExitStatus::Interrupted)
}

/// Applies pending migrations, saying which; returns the connection.
async fn migrate(
    target: &Target,
    dir: &Path,
    shown: &Path,
    printer: &Printer,
) -> Result<tokio_postgres::Client> {
    let files = goodgo_db::migrations::load(dir, shown)?;
    let mut client = target.connect().await?;
    let report = goodgo_db::runner::migrate(&mut client, &files, None, &|_| {}).await?;
    for m in &report.applied {
        printer.status(&format!("applied {m}"));
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Rewrites a file in `dir` every 50 ms (well within `QUIET`) for `how_long`.
    fn keep_writing(dir: &Path, how_long: Duration) -> std::thread::JoinHandle<()> {
        let file = dir.join("edited.rs");
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0;
            while start.elapsed() < how_long {
                std::fs::write(&file, "x".repeat(n)).unwrap();
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    }

    #[test]
    fn a_change_is_acted_on_once_quiet_or_after_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let first = (fingerprint(&dirs), fingerprint(&[]));

        // Writes for 1 s: settled only after the last one, on the final state.
        let writer = keep_writing(dir.path(), Duration::from_secs(1));
        let start = Instant::now();
        let (settled, _) = rt.block_on(settle(&dirs, &[], first));
        writer.join().unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(settled, fingerprint(&dirs), "the last write is in");

        // Writes that go on: acted on anyway once the cap is reached, before they stop
        // (waiting for quiet would take the writer's 4 s and more).
        let writing = Duration::from_secs(4);
        let writer = keep_writing(dir.path(), writing);
        let start = Instant::now();
        let _ = rt.block_on(settle(&dirs, &[], (fingerprint(&dirs), fingerprint(&[]))));
        let waited = start.elapsed();
        writer.join().unwrap();
        assert!(waited >= SETTLE_MAX, "{waited:?}");
        assert!(waited < writing, "{waited:?}");
    }
}
