//! `goodgo dev`: the stack up, the database migrated (and seeded when empty), the API
//! built and running with its environment wired, one panel saying where everything is —
//! then watching `service/` and `migrations/`: a source change rebuilds and restarts the
//! API (the old one keeps serving until the new one has built), a new migration is
//! applied once it has SQL and has been quiet, a build error is shown and the session goes
//! on. Ctrl-C stops the API; the services keep running for the next `dev` (`--down` stops
//! them too). Every step before the panel races SIGINT/SIGTERM: an interrupt kills the
//! build or the API it started and exits 130.
//!
//! With `--json`, stdout carries one JSON object per line for each event of the session
//! (`ready`, `migrated`, `reloaded`, …) and nothing else; the API's own output goes to
//! stderr.
//!
//! The session is a sequence of steps ([`Session`]'s methods), each in its own room:
//! [`lock`] (one session per workspace), [`signals`] (interrupts in, signals out),
//! [`build`] (cargo), [`api`] (the API process and its readiness), [`watch`] (file events).

pub(super) mod api;
pub(super) mod build;
mod lock;
mod signals;
mod watch;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use goodgo_db::admin::Target;
use goodgo_stack::UpRequest;
use serde_json::json;

use self::api::Api;
use self::build::{Build, api_package, build};
use self::signals::Interrupt;
use self::watch::{Watch, is_blank_sql};
use super::Context;
use crate::args::DevArgs;
use crate::error::{ExitStatus, UserError};
use crate::ops::seed::Seeded;
use crate::ops::stack::Loaded;
use crate::printer::Printer;

pub fn run(ctx: &Context, args: &DevArgs, printer: &Printer) -> Result<ExitStatus> {
    let root = ctx.workspace.root.clone();
    let _lock = lock::Lock::take(&root)?;
    let rt = crate::ops::stack::runtime()?;
    rt.block_on(async {
        // SIGINT/SIGTERM from the very start: every step below races them, so an interrupt
        // stops the session at once, kills a build or an API it started, and exits 130.
        let mut session = Session {
            ctx,
            args,
            printer,
            root,
            interrupt: Interrupt::register()?,
            steps: Vec::new(),
        };
        session.run().await
    })
}

/// What one `dev` session carries from step to step.
struct Session<'a> {
    ctx: &'a Context,
    args: &'a DevArgs,
    printer: &'a Printer,
    root: PathBuf,
    interrupt: Interrupt,
    /// Each step's name and how long it took, for the panel.
    steps: Vec<(&'static str, Duration)>,
}

/// The stack as it runs.
struct Stack {
    loaded: Loaded,
    runtime: &'static str,
    why: String,
    /// The stack's S3 service, when one runs (`goodgo up --profile s3`): the API's photos.
    s3: Option<crate::ops::s3::RunningS3>,
}

/// The database as the session uses it.
struct Database {
    target: Target,
    url: String,
    migrations: PathBuf,
    shown_migrations: PathBuf,
}

/// The API as the session runs it.
struct Service {
    package: String,
    addr: String,
    env: Vec<(String, String)>,
}

impl Session<'_> {
    async fn run(&mut self) -> Result<ExitStatus> {
        let (dotenv, created) = crate::ops::secrets::ensure_env(
            &self.root,
            &self.ctx.workspace.display_path(&self.root),
            &self.ctx.workspace.settings.name.value,
        )?;
        if created {
            self.printer
                .status("created .env with fresh secrets (mode 0600)");
        }
        let loaded = crate::ops::stack::load(self.ctx, &[], None, self.printer)?;
        let project = loaded.name.clone();
        let Some(stack) = self.stack(loaded).await? else {
            return self.interrupted(&project, None).await;
        };
        let Some(db) = self.database().await? else {
            return self.interrupted(&project, None).await;
        };
        let service = self.service(&stack, &db, dotenv)?;
        let Some(()) = self.build(&service.package).await? else {
            return self.interrupted(&project, None).await;
        };
        let t = Instant::now();
        if !super::stack_port_free(&service.addr) {
            return Err(UserError::failed(format!(
                "{} is taken: the API cannot listen there",
                service.addr
            ))
            .with_hint("set GOODGO_API_ADDR (environment or .env) to a free address")
            .into());
        }
        let mut api = Api::start(&self.root, &service.package, &service.env, self.printer)?;
        match self
            .interrupt
            .race(api.wait_ready(&service.addr, Duration::from_secs(60)))
            .await
        {
            Some(ready) => ready?,
            None => return self.interrupted(&project, Some(api)).await,
        }
        self.steps.push(("start", t.elapsed()));
        self.panel(&stack, &db, &service);
        self.watch(&db, &service, api).await?;
        self.printer.status("stopping the API…");
        if self.args.down {
            crate::ops::stack::stop_all(self.ctx, &project, self.printer).await?;
            self.printer.status("stopped the services");
        }
        self.event(json!({"event": "stopped"}));
        Ok(ExitStatus::Success)
    }

    /// One JSON event on stdout, with `--json`.
    fn event(&self, value: serde_json::Value) {
        if self.printer.json() {
            self.printer.json_line(&value);
        }
    }

    /// 1. The stack: the runtime chosen and every service up.
    async fn stack(&mut self, loaded: Loaded) -> Result<Option<Stack>> {
        let t = Instant::now();
        let waves = goodgo_compose::waves(&loaded.project, &[], &[])?;
        let req = UpRequest {
            project: loaded.name.clone(),
            waves,
            timeout: Duration::from_secs(120),
        };
        let Some(chosen) = self
            .interrupt
            .race(crate::ops::stack::choose(
                self.ctx,
                &loaded,
                &req,
                self.args.runtime,
                true,
                self.printer,
            ))
            .await
        else {
            return Ok(None);
        };
        let (chosen, why) = chosen?;
        let runtime = chosen.name();
        let Some(up) = self
            .interrupt
            .race(crate::ops::stack::run_up(
                &loaded,
                &req,
                &*chosen,
                self.printer,
            ))
            .await
        else {
            return Ok(None);
        };
        up?;
        let s3 = crate::ops::s3::running(self.ctx, &loaded).await;
        self.steps.push(("stack", t.elapsed()));
        Ok(Some(Stack {
            loaded,
            runtime,
            why,
            s3,
        }))
    }

    /// 2. The database: migrated, and seeded when empty.
    async fn database(&mut self) -> Result<Option<Database>> {
        let t = Instant::now();
        let (target, _) = crate::ops::database::resolve(self.ctx, None)?;
        let url = target.url.clone();
        let ws = &self.ctx.workspace;
        let migrations = ws.resolve(&ws.settings.migrations_dir.value);
        let db = Database {
            target,
            url,
            shown_migrations: ws.display_path(&migrations),
            migrations,
        };
        let Some(client) = self.interrupt.race(migrate(&db, self.printer)).await else {
            return Ok(None);
        };
        let (mut client, applied) = client?;
        self.event(json!({"event": "migrated", "applied": applied}));
        self.steps.push(("migrate", t.elapsed()));
        if self.args.no_seed {
            return Ok(Some(db));
        }
        let t = Instant::now();
        // The workspace's seeds/*.sql (or GoodGo's data) into an empty database, as
        // `goodgo db seed --if-empty` does.
        let shown = db.target.redacted();
        let seeding =
            crate::ops::seed::development(self.ctx, &mut client, &shown, 1000, true, self.printer);
        let Some(seeded) = self.interrupt.race(seeding).await else {
            return Ok(None);
        };
        match seeded? {
            Seeded::Builtin(done) => {
                self.printer.status(&format!(
                    "seeded {} users and {} listings (password `{}`)",
                    done.users,
                    done.listings,
                    goodgo_db::seed::DEV_PASSWORD
                ));
                self.event(
                    json!({"event": "seeded", "users": done.users, "listings": done.listings}),
                );
                self.steps.push(("seed", t.elapsed()));
            }
            Seeded::Files(files) => {
                self.printer
                    .status(&format!("seeded from {}", files.join(", ")));
                self.event(json!({"event": "seeded", "files": files}));
                self.steps.push(("seed", t.elapsed()));
            }
            Seeded::NotEmpty | Seeded::NothingToSeed => {}
        }
        Ok(Some(db))
    }

    /// The API's package, address and environment: `.env`, then what the stack provides.
    fn service(
        &self,
        stack: &Stack,
        db: &Database,
        dotenv: Vec<(String, String)>,
    ) -> Result<Service> {
        let package = api_package(&self.root, &self.ctx.workspace.display_path(&self.root))?;
        let addr = crate::ops::api::address(&dotenv);
        let mut env = dotenv;
        env.retain(|(k, _)| k != "GOODGO_DATABASE_URL" && k != "GOODGO_API_ADDR");
        env.push(("GOODGO_DATABASE_URL".into(), db.url.clone()));
        env.push(("GOODGO_API_ADDR".into(), addr.clone()));
        if let Some(redis) =
            stack.loaded.project.services.values().find(|s| {
                goodgo_stack::native::kind(s).ok() == Some(goodgo_stack::native::Kind::Redis)
            })
            && let Some(p) = redis
                .ports
                .iter()
                .find(|p| p.target == 6379)
                .and_then(|p| p.published)
        {
            env.push(("GOODGO_REDIS_URL".into(), format!("redis://127.0.0.1:{p}")));
        }
        // Photos on the stack's S3 server when it runs; else as .env says (without
        // GOODGO_S3_BUCKET, photo routes answer 503).
        if let Some(s3) = &stack.s3 {
            let set = s3.api_env();
            env.retain(|(k, _)| !set.iter().any(|(s, _)| s == k));
            env.extend(set);
        }
        Ok(Service { package, addr, env })
    }

    /// 3. The API built; `None` when interrupted.
    async fn build(&mut self, package: &str) -> Result<Option<()>> {
        let t = Instant::now();
        self.printer.status(&format!("building {package}…"));
        match build(&self.root, package, &mut self.interrupt).await {
            Build::Built => {}
            Build::Failed(errors) => {
                self.printer.stderr(&errors);
                return Err(UserError::failed(format!("{package} does not build"))
                    .with_hint("fix the errors above and run `goodgo dev` again")
                    .into());
            }
            Build::Interrupted => return Ok(None),
        }
        self.steps.push(("build", t.elapsed()));
        Ok(Some(()))
    }

    /// 4. The panel: where everything is.
    fn panel(&self, stack: &Stack, db: &Database, service: &Service) {
        let name = &self.ctx.workspace.settings.name.value;
        let addr = &service.addr;
        let mut panel = format!("goodgo dev: {name}\n");
        let _ = writeln!(panel, "  API       http://{addr}");
        let _ = writeln!(panel, "  Docs      http://{addr}/docs");
        let _ = writeln!(panel, "  Database  {}", db.target.redacted());
        let _ = writeln!(panel, "  Runtime   {} ({})", stack.runtime, stack.why);
        if let Some(s3) = &stack.s3 {
            let _ = writeln!(panel, "  Photos    {}", s3.describe());
        }
        let times: Vec<String> = self
            .steps
            .iter()
            .map(|(s, d)| format!("{s} {}", secs(*d)))
            .collect();
        let _ = writeln!(panel, "  Steps     {}", times.join(" · "));
        let _ = writeln!(
            panel,
            "watching service/ and migrations/; Ctrl-C stops the API (services keep running{})",
            if self.args.down {
                ", --down stops them too"
            } else {
                ""
            }
        );
        if self.printer.json() {
            let steps: serde_json::Map<String, serde_json::Value> = self
                .steps
                .iter()
                .map(|(s, d)| ((*s).to_string(), json!(goodgo_stack::millis(*d))))
                .collect();
            self.event(json!({
                "event": "ready",
                "project": name,
                "api": format!("http://{addr}"),
                "docs": format!("http://{addr}/docs"),
                "database": db.target.redacted(),
                "runtime": stack.runtime,
                "runtime_reason": stack.why,
                "s3": stack.s3.as_ref().map(crate::ops::s3::RunningS3::json),
                "steps_ms": steps,
            }));
        } else {
            self.printer.stdout_raw(&panel);
        }
    }

    /// 5. Watch. From here on, Ctrl-C is how a session normally ends: exit 0.
    async fn watch(&mut self, db: &Database, service: &Service, api: Api) -> Result<()> {
        let mut watch = Watch::new(
            &[self.root.join("service")],
            std::slice::from_ref(&db.migrations),
        )?;
        let mut api = Some(api);
        loop {
            let next = self.interrupt.race(async {
                tokio::select! {
                    changes = watch.next() => changes,
                    () = exited(&mut api) => None,
                }
            });
            let Some(changes) = next.await else {
                return Ok(());
            };
            let Some(changes) = changes else {
                // The API exited by itself (or the watcher stopped: then nothing more comes).
                if let Some(mut dead) = api.take() {
                    tokio::time::sleep(Duration::from_millis(100)).await; // the last lines
                    let status = dead.exited().map(|s| s.to_string()).unwrap_or_default();
                    self.printer.warn(&format!(
                        "the API exited by itself ({status}); its last lines:\n{}the next change in service/ or migrations/ rebuilds and restarts it",
                        dead.last_lines()
                    ));
                    self.event(json!({"event": "api_exited", "status": status}));
                }
                continue;
            };
            if changes.migrations {
                match self.interrupt.race(migrate(db, self.printer)).await {
                    Some(Ok((_, applied))) => {
                        self.printer.status("migrations up to date");
                        self.event(json!({"event": "migrated", "applied": applied}));
                    }
                    Some(Err(e)) => {
                        self.printer.warn(&format!("migration failed: {e:#}"));
                        self.event(json!({"event": "migration_failed", "error": format!("{e:#}")}));
                    }
                    None => return Ok(()),
                }
            }
            if !changes.service && api.is_some() {
                continue;
            }
            let t = Instant::now();
            self.printer
                .status(&format!("rebuilding {}…", service.package));
            match build(&self.root, &service.package, &mut self.interrupt).await {
                Build::Built => {}
                Build::Failed(errors) => {
                    self.printer.stderr(&errors);
                    self.printer.warn(if api.is_some() {
                        "the build failed; still serving the previous build"
                    } else {
                        "the build failed; no API is running"
                    });
                    self.event(json!({"event": "build_failed"}));
                    continue;
                }
                Build::Interrupted => return Ok(()),
            }
            self.printer.status(&format!(
                "built in {}; restarting the API",
                secs(t.elapsed())
            ));
            if let Some(mut old) = api.take() {
                old.stop();
            }
            let mut new = Api::start(&self.root, &service.package, &service.env, self.printer)?;
            match self
                .interrupt
                .race(new.wait_ready(&service.addr, Duration::from_secs(60)))
                .await
            {
                Some(Ok(())) => {
                    self.printer
                        .status(&format!("reloaded the API in {}", secs(t.elapsed())));
                    self.event(
                        json!({"event": "reloaded", "took_ms": goodgo_stack::millis(t.elapsed())}),
                    );
                    api = Some(new);
                }
                Some(Err(e)) => {
                    self.printer
                        .warn(&format!("the new build does not come up: {e}"));
                    self.event(json!({"event": "reload_failed", "error": e.to_string()}));
                    // Dropping it stops it; the next change tries again.
                }
                None => return Ok(()),
            }
        }
    }

    /// A session interrupted before its panel: the API (if any) stopped, the services kept
    /// unless `--down`; exit 130.
    async fn interrupted(&self, project: &str, api: Option<Api>) -> Result<ExitStatus> {
        self.printer.status("interrupted");
        drop(api);
        if self.args.down {
            crate::ops::stack::stop_all(self.ctx, project, self.printer).await?;
            self.printer.status("stopped the services");
        }
        self.event(json!({"event": "interrupted"}));
        Ok(ExitStatus::Interrupted)
    }
}

/// Completes when the running API has exited; never when there is none.
async fn exited(api: &mut Option<Api>) {
    loop {
        if api.as_mut().and_then(Api::exited).is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Applies pending migrations, saying which; returns the connection and what was applied.
/// A pending migration with no SQL yet (just made by `goodgo db new`, not written) holds the
/// run back, so an empty file is never recorded as applied.
async fn migrate(
    db: &Database,
    printer: &Printer,
) -> Result<(tokio_postgres::Client, Vec<String>)> {
    let files = goodgo_db::migrations::load(&db.migrations, &db.shown_migrations)?;
    let mut client = db.target.connect().await?;
    let history = goodgo_db::runner::applied(&client).await?;
    let blank: Vec<String> = files
        .iter()
        .filter(|f| is_blank_sql(&f.sql))
        .filter(|f| !history.iter().any(|h| h.version == f.version))
        .map(|f| f.path.display().to_string())
        .collect();
    if !blank.is_empty() {
        printer.status(&format!(
            "not migrating yet: {} has no SQL (applied once it has)",
            blank.join(", ")
        ));
        return Ok((client, Vec::new()));
    }
    let report = goodgo_db::runner::migrate(&mut client, &files, None, &|_| {}).await?;
    for m in &report.applied {
        printer.status(&format!("applied {m}"));
    }
    Ok((client, report.applied))
}
