//! `goodgo deploy`: releases of the API with no dropped request, and `build`, `rollback`,
//! `status`, `history`, `down`.
//!
//! A deploy is a sequence of steps in rooms of their own: [`lock`] (one deploy per target),
//! [`build`] (the release image), the migrations (squawk's breaking rules first, then the
//! runner under the migration lock), [`local`] (the release beside the old one, readiness,
//! the switch through the [`proxy`]'s runtime API, the watch, the old one stopped and kept)
//! and [`history`] (every release recorded). The `swarm` target replaces `local`'s part with
//! [`swarm`] (the API a replicated service rolled out by swarm, followed by [`swarm_follow`]).
//! Ctrl-C (or SIGTERM) at any step undoes what the deploy changed so far: the old release
//! keeps serving, and the lock goes with the process.

mod build;
mod history;
mod local;
mod lock;
mod proxy;
mod report;
mod swarm;
mod swarm_follow;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use goodgo_db::runner::{self, State};
use goodgo_stack::docker::DockerRuntime;

use super::Context;
use crate::args::{self, DeployArgs, DeployCommand, DeployRunArgs};
use crate::error::{ExitStatus, UserError};
use crate::printer::Printer;
use history::{History, Release};
use local::{Progress, Target};

/// How long a deploy waits for another one by default.
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

pub fn run(ctx: &Context, args: &DeployArgs, printer: &Printer) -> Result<ExitStatus> {
    let target = resolve(ctx, &args.run)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match &args.command {
            None => deploy(ctx, &target, &args.run, printer).await,
            Some(DeployCommand::Build { binary }) => {
                let docker = connect().await?;
                let built = build::build(ctx, &docker, binary.as_deref(), printer).await?;
                printer.report(
                    &format!("built {}\n", built.tag),
                    &serde_json::json!({"image": built.tag, "commit": built.commit}),
                );
                Ok(ExitStatus::Success)
            }
            Some(DeployCommand::Rollback {
                release,
                ready_timeout,
            }) => {
                let mut target = target.clone();
                if let Some(s) = ready_timeout {
                    target.ready_timeout = Duration::from_secs(*s);
                }
                if target.kind == args::Target::Swarm {
                    return swarm::rollback(ctx, &target, release.as_deref(), &args.run, printer)
                        .await;
                }
                rollback(&target, release.as_deref(), &args.run, printer).await
            }
            Some(DeployCommand::Status) if target.kind == args::Target::Swarm => {
                report::swarm_status(&connect().await?, &target, printer).await
            }
            Some(DeployCommand::Status) => {
                report::status(&connect().await?, &target, printer).await
            }
            Some(DeployCommand::History) => report::history(&target, printer),
            Some(DeployCommand::Down) => {
                let docker = connect().await?;
                let _lock = take_lock(&target, &args.run, "goodgo deploy down", printer)?;
                match target.kind {
                    args::Target::Swarm => swarm::down(&docker, &target, printer).await,
                    args::Target::Local => report::down(&docker, &target, printer).await,
                }
            }
        }
    })
}

async fn connect() -> Result<DockerRuntime> {
    DockerRuntime::connect().await.map_err(local::engine_error)
}

/// The target's settings: goodgo.yaml's `deploy:` section, then the flags.
fn resolve(ctx: &Context, args: &DeployRunArgs) -> Result<Target> {
    let ws = &ctx.workspace;
    let cfg = &ws.settings.deploy.value;
    let secs = |flag: Option<u64>, file: Option<u64>, default: u64| {
        Duration::from_secs(flag.or(file).unwrap_or(default))
    };
    let name = ws.settings.name.value.clone();
    Ok(Target {
        project: match args.target {
            args::Target::Local => format!("{name}-deploy"),
            args::Target::Swarm => format!("{name}-swarm"),
        },
        name,
        dir: ws.root.join(".goodgo/deploy").join(args.target.name()),
        port: cfg.port.map_or(8080, |p| p.0),
        bind: cfg.bind.clone().unwrap_or_else(|| "0.0.0.0".into()),
        ready_timeout: secs(args.ready_timeout, cfg.ready_timeout, 60),
        drain_timeout: secs(None, cfg.drain_timeout, 30),
        watch: secs(args.watch, cfg.watch, 30),
        max_error_rate: cfg.max_error_rate.map_or(0.05, |s| s.0),
        keep: usize::try_from(cfg.keep.unwrap_or(3)).unwrap_or(3),
        replicas: cfg.replicas.map_or(2, |r| r.0),
        kind: args.target,
    })
}

fn take_lock(
    target: &Target,
    args: &DeployRunArgs,
    command: &str,
    printer: &Printer,
) -> Result<lock::Lock> {
    let timeout = args.lock_timeout.map_or(LOCK_TIMEOUT, Duration::from_secs);
    lock::Lock::take(&target.dir, &lock::Holder::me(command), timeout, printer)
}

/// The API's environment (`deploy.env_file`, `.env` by default) with the database URL
/// the deploy migrates: the file's `GOODGO_DATABASE_URL`, else the workspace's database.
fn api_env(ctx: &Context) -> Result<(Vec<(String, String)>, String)> {
    let ws = &ctx.workspace;
    let file = ws
        .settings
        .deploy
        .value
        .env_file
        .clone()
        .unwrap_or_else(|| ".env".into());
    let path = ws.resolve(&file);
    let shown = ws.display_path(&path);
    if !path.is_file() {
        return Err(UserError::input(format!(
            "{}: no such file: the API's secrets (GOODGO_JWT_SECRET, …) come from it",
            shown.display()
        ))
        .with_hint("`goodgo init` writes one, or set `deploy.env_file` in goodgo.yaml")
        .into());
    }
    let mut env = crate::ops::secrets::read_env(&path, &shown)?;
    if !env.iter().any(|(k, _)| k == "GOODGO_JWT_SECRET") {
        return Err(UserError::input(format!(
            "{}: GOODGO_JWT_SECRET is not set: the API refuses to start without it",
            shown.display()
        ))
        .with_hint("`goodgo secrets rotate` writes a fresh one")
        .into());
    }
    let url = match env.iter().find(|(k, _)| k == "GOODGO_DATABASE_URL") {
        Some((_, url)) => url.clone(),
        None => {
            let (target, _) = crate::ops::database::resolve(ctx, None)?;
            env.push(("GOODGO_DATABASE_URL".into(), target.url.clone()));
            target.url
        }
    };
    Ok((env, url))
}

/// Applies the pending migrations under the migration lock, after refusing those squawk
/// says break the release still serving (unless `allow_breaking`).
async fn migrate(ctx: &Context, url: &str, allow_breaking: bool, printer: &Printer) -> Result<()> {
    let ws = &ctx.workspace;
    let dir = ws.resolve(&ws.settings.migrations_dir.value);
    let files = goodgo_db::migrations::load(&dir, &ws.display_path(&dir))?;
    let db = goodgo_db::admin::Target::parse(url)?;
    let mut client = db.connect().await?;
    let applied = runner::applied(&client).await?;
    let rows = runner::status(&files, &applied);
    let pending: Vec<_> = files
        .iter()
        .filter(|f| {
            rows.iter()
                .any(|r| r.version == f.version && r.state == State::Pending)
        })
        .collect();
    if pending.is_empty() {
        printer.status("migrations: none pending");
        return Ok(());
    }
    if !allow_breaking {
        let paths: Vec<_> = pending
            .iter()
            .map(|f| dir.join(f.path.file_name().unwrap_or_default()))
            .collect();
        let (findings, _) = crate::ops::squawk::lint(&ws.root, &paths, &|p| ws.display_path(p))?;
        let breaking: Vec<String> = findings
            .iter()
            .filter(|f| f.breaking())
            .map(|f| f.line())
            .collect();
        if !breaking.is_empty() {
            return Err(UserError::failed(format!(
                "{} pending migration change(s) would break the release still serving:\n{}",
                breaking.len(),
                breaking.join("\n")
            ))
            .with_hint("split the change (add now, drop after the release that stops using it), or pass --allow-breaking")
            .into());
        }
    }
    let report = runner::migrate(&mut client, &files, None, &|event| {
        if matches!(event, runner::Event::Waiting) {
            printer.status("migrations: waiting for the migration lock");
        }
    })
    .await?;
    printer.status(&format!(
        "migrations: applied {}",
        report.applied.join(", ")
    ));
    Ok(())
}

/// A release record for `id`, started at `at`.
fn record(
    id: &str,
    kind: &str,
    image: &str,
    commit: Option<String>,
    at: &str,
    started: Instant,
) -> Release {
    Release {
        id: id.to_string(),
        kind: kind.to_string(),
        image: image.to_string(),
        commit,
        who: format!("{}@{}", history::user(), history::host()),
        at: at.to_string(),
        result: "serving".into(),
        reason: None,
        duration_ms: goodgo_stack::millis(started.elapsed()),
        serves: None,
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn deploy(
    ctx: &Context,
    target: &Target,
    args: &DeployRunArgs,
    printer: &Printer,
) -> Result<ExitStatus> {
    let started = Instant::now();
    let at = history::now();
    let docker = connect().await?;
    let (image, commit) = match &args.image {
        Some(image) => {
            let labels = docker.image_labels(image).await?.ok_or_else(|| {
                UserError::input(format!("--image {image}: no such image on the engine")).with_hint(
                    "`goodgo deploy build` builds one; `docker image ls` lists what is here",
                )
            })?;
            (image.clone(), labels.get(build::LABEL_COMMIT).cloned())
        }
        None => {
            let built = build::build(ctx, &docker, args.binary.as_deref(), printer).await?;
            (built.tag, Some(built.commit))
        }
    };
    let (env, url) = api_env(ctx)?;
    if target.kind == args::Target::Swarm {
        swarm::check_manager(&docker).await?;
    }
    let _lock = take_lock(target, args, "goodgo deploy", printer)?;
    let mut history = History::read(&target.dir)?;
    let id = history.next_id();
    let mut release = record(&id, "deploy", &image, commit.clone(), &at, started);
    if target.kind == args::Target::Swarm {
        let outcome = swarm::deploy(
            ctx,
            &docker,
            target,
            args,
            &swarm::Release {
                id: &id,
                serves: &id,
                image: &image,
                commit: commit.as_deref(),
                env: &env,
            },
            Some(&url),
            printer,
        )
        .await;
        return finish(
            &mut history,
            &mut release,
            outcome,
            target,
            started,
            printer,
        );
    }
    let progress = Mutex::new(Progress::default());
    let body = release_body(
        ctx,
        &docker,
        target,
        args,
        &id,
        &image,
        commit.as_deref(),
        &env,
        &url,
        &progress,
        printer,
    );
    let outcome = tokio::select! {
        outcome = body => outcome,
        _ = interrupted() => {
            printer.warn("interrupted: switching back to the release that served before");
            local::undo(&docker, target, &progress).await?;
            Err(Stop::Interrupted.into())
        }
    };
    finish(
        &mut history,
        &mut release,
        outcome,
        target,
        started,
        printer,
    )
}

/// Why a deploy ended without its release serving.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    RolledBack(String),
}

/// Records the outcome and reports it.
fn finish(
    history: &mut History,
    release: &mut Release,
    outcome: Result<()>,
    target: &Target,
    started: Instant,
    printer: &Printer,
) -> Result<ExitStatus> {
    release.duration_ms = goodgo_stack::millis(started.elapsed());
    let (status, result) = match &outcome {
        Ok(()) => (ExitStatus::Success, "serving"),
        Err(e) => match e.downcast_ref::<Stop>() {
            Some(Stop::Interrupted) => (ExitStatus::Interrupted, "interrupted"),
            Some(Stop::RolledBack(_)) => (ExitStatus::Failure, "rolled-back"),
            _ => (ExitStatus::Failure, "failed"),
        },
    };
    release.result = result.into();
    release.reason = outcome.as_ref().err().map(crate::error::one_line);
    history.record(release.clone())?;
    let value = serde_json::json!({"release": release, "url": target.url()});
    match outcome {
        Ok(()) => {
            printer.report(
                &format!(
                    "release {} ({}) serves {} ({:.1} s)\n",
                    release.id,
                    release.image,
                    target.url(),
                    release.duration_ms as f64 / 1000.0
                ),
                &value,
            );
            Ok(status)
        }
        Err(e) if e.downcast_ref::<Stop>().is_some() => {
            if printer.json() {
                printer.json_value(&value);
            }
            let what = match result {
                "interrupted" => "interrupted; the release before it serves".to_string(),
                "rolled-back" => format!("switched back: {e}"),
                _ => format!("failed: {e}"),
            };
            printer.stderr(&format!("error: release {} {what}\n", release.id));
            Ok(status)
        }
        Err(e) => Err(e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn release_body(
    ctx: &Context,
    docker: &DockerRuntime,
    target: &Target,
    args: &DeployRunArgs,
    id: &str,
    image: &str,
    commit: Option<&str>,
    env: &[(String, String)],
    url: &str,
    progress: &Mutex<Progress>,
    printer: &Printer,
) -> Result<()> {
    migrate(ctx, url, args.allow_breaking, printer).await?;
    let proxy = local::ensure_proxy(docker, target, printer).await?;
    let old = local::serving(docker, target, &proxy).await?;
    // A release left running by a deploy that crashed before its switch serves nothing.
    for c in local::releases(docker, target).await? {
        if c.running() && old.as_ref().is_none_or(|o| o.container.id != c.id) {
            docker.remove(&c.id).await?;
        }
    }
    {
        let mut p = progress.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        p.old = old.clone();
        p.proxy = Some(proxy.runtime);
    }
    printer.status(&format!("starting release {id} ({image})"));
    let (container, port) = local::start_release(docker, target, id, image, commit, env).await?;
    progress
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .new = Some((container.clone(), true));
    let deadline = Instant::now() + target.ready_timeout;
    if let Err(why) = local::wait_ready(docker, target, &container, port, deadline).await {
        let lines = docker.last_lines(&container, 20).await;
        docker.remove(&container).await?;
        printer.stderr(&format!(
            "release {id} did not turn ready within {} s ({why:#}); its last lines:\n{}\n",
            target.ready_timeout.as_secs(),
            lines
                .iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
        let serving = old
            .as_ref()
            .map(|o| format!(", release {} still serves", o.release()))
            .unwrap_or_default();
        return Err(Stop::Failed(format!(
            "it never turned ready ({why:#}); nothing was switched{serving}"
        ))
        .into());
    }
    switch_and_watch(
        docker,
        target,
        &proxy,
        old.as_ref(),
        &container,
        port,
        id,
        progress,
        printer,
    )
    .await
}

/// The switch, the watch, and the old release stopped (or the switch back).
#[allow(clippy::too_many_arguments)]
async fn switch_and_watch(
    docker: &DockerRuntime,
    target: &Target,
    proxy: &local::ProxyInfo,
    old: Option<&local::Serving>,
    container: &str,
    port: u16,
    id: &str,
    progress: &Mutex<Progress>,
    printer: &Printer,
) -> Result<()> {
    let slot = local::free_slot(old);
    printer.status(&format!(
        "release {id} is ready: switching the proxy to it (slot {slot})"
    ));
    progress
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .switched = Some(slot.to_string());
    local::switch(proxy, target, slot, port, old).await?;
    if !target.watch.is_zero() {
        printer.status(&format!(
            "watching release {id} for {} s",
            target.watch.as_secs()
        ));
        if let Some(reason) =
            local::watch(&proxy.runtime, slot, target.watch, target.max_error_rate).await?
        {
            let Some(old) = old else {
                return Err(Stop::Failed(format!(
                    "{reason}; there is no earlier release to switch back to, so it keeps serving"
                ))
                .into());
            };
            printer.warn(&format!(
                "release {id}: {reason}; switching back to {}",
                old.release()
            ));
            local::switch(
                proxy,
                target,
                &old.slot,
                old.port,
                Some(&local::Serving {
                    slot: slot.to_string(),
                    port,
                    container: old.container.clone(),
                }),
            )
            .await?;
            docker.stop(container, 10).await?;
            return Err(Stop::RolledBack(format!(
                "{reason}; release {} serves again",
                old.release()
            ))
            .into());
        }
    }
    if let Some(old) = old {
        let secs = i32::try_from(target.drain_timeout.as_secs()).unwrap_or(30);
        docker.stop(&old.container.id, secs).await?;
    }
    let pruned = local::prune(docker, target).await?;
    if !pruned.is_empty() {
        printer.debug(&format!("removed old releases {}", pruned.join(", ")));
    }
    Ok(())
}

async fn rollback(
    target: &Target,
    release: Option<&str>,
    args: &DeployRunArgs,
    printer: &Printer,
) -> Result<ExitStatus> {
    let started = Instant::now();
    let at = history::now();
    let docker = connect().await?;
    let _lock = take_lock(target, args, "goodgo deploy rollback", printer)?;
    let mut history = History::read(&target.dir)?;
    let proxy = local::proxy_container(&docker, target)
        .await?
        .filter(|p| p.container.running())
        .ok_or_else(|| UserError::failed("nothing is deployed on this target: no proxy runs"))?;
    let old = local::serving(&docker, target, &proxy).await?;
    let kept: Vec<_> = local::releases(&docker, target)
        .await?
        .into_iter()
        .filter(|c| !c.running())
        .collect();
    let chosen = match release {
        Some(r) => kept
            .iter()
            .find(|c| c.label(local::LABEL_RELEASE) == Some(r)),
        None => kept.first(),
    };
    let Some(chosen) = chosen.cloned() else {
        let names: Vec<&str> = kept
            .iter()
            .filter_map(|c| c.label(local::LABEL_RELEASE))
            .collect();
        let what = release.map_or("an earlier release".to_string(), |r| format!("release {r}"));
        return Err(UserError::input(format!(
            "{what} is not kept (kept: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
        .with_hint("`goodgo deploy history` lists every release; deploy an older one with --image")
        .into());
    };
    let serves = chosen
        .label(local::LABEL_RELEASE)
        .unwrap_or("?")
        .to_string();
    let port: u16 = chosen
        .label(local::LABEL_PORT)
        .and_then(|p| p.parse().ok())
        .context("the kept release has no port label")?;
    let id = history.next_id();
    let mut record = record(
        &id,
        "rollback",
        &chosen.image,
        chosen.label(local::LABEL_COMMIT).map(str::to_string),
        &at,
        started,
    );
    record.serves = Some(serves.clone());
    let progress = Mutex::new(Progress {
        new: Some((chosen.id.clone(), false)),
        old: old.clone(),
        proxy: Some(proxy.runtime),
        switched: None,
    });
    let body = async {
        printer.status(&format!(
            "starting release {serves} again ({})",
            chosen.image
        ));
        docker.start(&chosen.id).await?;
        let deadline = Instant::now() + target.ready_timeout;
        if let Err(why) = local::wait_ready(&docker, target, &chosen.id, port, deadline).await {
            docker.stop(&chosen.id, 10).await?;
            return Err(
                Stop::Failed(format!("release {serves} never turned ready ({why:#})")).into(),
            );
        }
        let slot = local::free_slot(old.as_ref());
        progress
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .switched = Some(slot.to_string());
        local::switch(&proxy, target, slot, port, old.as_ref()).await?;
        if let Some(old) = &old {
            let secs = i32::try_from(target.drain_timeout.as_secs()).unwrap_or(30);
            docker.stop(&old.container.id, secs).await?;
        }
        Ok::<(), anyhow::Error>(())
    };
    let outcome = tokio::select! {
        outcome = body => outcome,
        _ = interrupted() => {
            local::undo(&docker, target, &progress).await?;
            Err(Stop::Interrupted.into())
        }
    };
    finish(&mut history, &mut record, outcome, target, started, printer)
}
