//! `goodgo dev`: the stack up, the database migrated (and seeded when empty), the API
//! built and running with its environment wired, one panel saying where everything is —
//! then watching `service/` and `migrations/`: a source change rebuilds and restarts the
//! API (the old one keeps serving until the new one has built), a new migration is
//! applied, a build error is shown and the session goes on. Ctrl-C stops the API; the
//! services keep running for the next `dev` (`--down` stops them too).

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use goodgo_db::admin::Target;
use goodgo_stack::UpRequest;

use super::Context;
use super::init::{new_env, read_env, write_private};
use crate::args::DevArgs;
use crate::error::{ExitStatus, UserError};
use crate::printer::Printer;

/// `.goodgo/dev.lock` with our pid, so a second `dev` in the same workspace says so.
struct Lock(PathBuf);

impl Lock {
    fn take(root: &Path) -> Result<Lock> {
        let path = root.join(".goodgo/dev.lock");
        if let Ok(pid) = std::fs::read_to_string(&path)
            && let Ok(pid) = pid.trim().parse::<u32>()
            && pid != std::process::id()
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            return Err(UserError::failed(format!(
                "`goodgo dev` is already running in this workspace (pid {pid})"
            ))
            .with_hint("use that session, or stop it with Ctrl-C in its terminal")
            .into());
        }
        std::fs::create_dir_all(root.join(".goodgo"))?;
        std::fs::write(&path, std::process::id().to_string())?;
        Ok(Lock(path))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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

/// `cargo build -p PACKAGE`; the compiler's output (errors) when it fails.
fn build(root: &Path, package: &str) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--color", "never", "-p", package])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

struct Api {
    child: Child,
}

impl Api {
    fn start(root: &Path, package: &str, env: &[(String, String)]) -> Result<Api> {
        let bin = target_dir(root).join("debug").join(package);
        let mut cmd = Command::new(&bin);
        cmd.current_dir(root)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Api { child })
    }

    /// SIGTERM, so in-flight requests finish; SIGKILL after 10 s.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
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
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// GET `path` on 127.0.0.1:port; the status code.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: dev\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits until the API answers `/readyz` (or `/healthz` where there is no `/readyz`).
async fn wait_ready(api: &mut Api, addr: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = api.child.try_wait() {
            return Err(
                UserError::failed(format!("the API exited ({status}) while starting")).into(),
            );
        }
        match http_status(addr, "/readyz") {
            Some(200) => return Ok(()),
            Some(404) if http_status(addr, "/healthz") == Some(200) => return Ok(()),
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

pub fn run(ctx: &Context, args: &DevArgs, printer: &Printer) -> Result<ExitStatus> {
    let root = ctx.workspace.root.clone();
    let _lock = Lock::take(&root)?;
    let rt = super::stack::runtime()?;
    rt.block_on(session(ctx, args, &root, printer))
}

async fn session(
    ctx: &Context,
    args: &DevArgs,
    root: &Path,
    printer: &Printer,
) -> Result<ExitStatus> {
    // Catch SIGINT/SIGTERM from the very start: one that arrives while the stack starts or
    // the API builds is acted on at the first chance, and never leaves an API running.
    let mut interrupt = Box::pin(shutdown()?);
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
    let loaded = super::stack::load(ctx, None, None, printer)?;
    let waves = goodgo_compose::waves(&loaded.project, &[], &[])
        .map_err(|e| UserError::input(e.to_string()))?;
    let req = UpRequest {
        project: loaded.name.clone(),
        waves,
        timeout: Duration::from_secs(120),
    };
    let (chosen, why) = super::stack::choose(ctx, &loaded, &req, args.runtime)
        .await
        .map_err(|e| UserError::failed(e.to_string()))?;
    let runtime_name = match chosen {
        super::stack::Chosen::Docker(_) => "docker",
        super::stack::Chosen::Native(_) => "native",
    };
    super::stack::run_up(&loaded, &req, &chosen, printer).await?;
    steps.push(("stack", t.elapsed()));

    // 2. The database: migrated, seeded when empty.
    let t = Instant::now();
    let url = match &ctx.workspace.settings.database_url.value {
        Some(u) => u.clone(),
        None => super::stack::running_database_url(ctx)
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
    let mut client = migrate(&target, &migrations_dir, &shown_migrations, printer).await?;
    steps.push(("migrate", t.elapsed()));
    if !args.no_seed {
        let t = Instant::now();
        let empty = client
            .query_one(
                "SELECT to_regclass('listings') IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users)",
                &[],
            )
            .await
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false);
        if empty {
            let done = goodgo_db::seed::seed(&mut client, 1000)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
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
    build(root, &package).map_err(|errors| {
        printer.stderr(&errors);
        UserError::failed(format!("{package} does not build"))
            .with_hint("fix the errors above and run `goodgo dev` again")
    })?;
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
    let mut api = Api::start(root, &package, &env)?;
    wait_ready(&mut api, &addr, Duration::from_secs(60)).await?;
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

    // 5. Watch.
    let service_dirs = vec![root.join("service")];
    let migration_dirs = vec![migrations_dir.clone()];
    let mut seen_service = fingerprint(&service_dirs);
    let mut seen_migrations = fingerprint(&migration_dirs);
    loop {
        tokio::select! {
            _ = &mut interrupt => break,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let now_migrations = fingerprint(&migration_dirs);
        if now_migrations != seen_migrations {
            tokio::time::sleep(Duration::from_millis(300)).await; // let the editor finish writing
            seen_migrations = fingerprint(&migration_dirs);
            match migrate(&target, &migrations_dir, &shown_migrations, printer).await {
                Ok(_) => printer.status("migrations up to date"),
                Err(e) => printer.warn(&format!("migration failed: {e}")),
            }
        }
        let now_service = fingerprint(&service_dirs);
        if now_service != seen_service {
            tokio::time::sleep(Duration::from_millis(300)).await;
            seen_service = fingerprint(&service_dirs);
            let t = Instant::now();
            printer.status(&format!("service/ changed: rebuilding {package}…"));
            match build(root, &package) {
                Ok(()) => {
                    api.stop();
                    api = Api::start(root, &package, &env)?;
                    match wait_ready(&mut api, &addr, Duration::from_secs(60)).await {
                        Ok(()) => {
                            printer.status(&format!("reloaded the API in {}", secs(t.elapsed())))
                        }
                        Err(e) => printer.warn(&format!("the new build does not come up: {e}")),
                    }
                }
                Err(errors) => {
                    printer.stderr(&errors);
                    printer.warn("the build failed; still serving the previous build");
                }
            }
        }
    }
    printer.status("stopping the API…");
    api.stop();
    if args.down {
        super::stack::stop_all(ctx, &loaded.name, printer).await?;
        printer.status("stopped the services");
    }
    Ok(ExitStatus::Success)
}

/// Applies pending migrations, saying which; returns the connection.
async fn migrate(
    target: &Target,
    dir: &Path,
    shown: &Path,
    printer: &Printer,
) -> Result<tokio_postgres::Client> {
    let files = goodgo_db::migrations::load(dir, shown).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut client = target.connect().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = goodgo_db::runner::migrate(&mut client, &files, None, &|_| {})
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for m in &report.applied {
        printer.status(&format!("applied {m}"));
    }
    Ok(client)
}

/// Registers for SIGINT and SIGTERM now; the returned future completes on either.
fn shutdown() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
