//! `goodgo up | down | status | logs`: the local stack. The Compose model comes from
//! `goodgo-compose`, the runtimes from `goodgo-stack`; this module picks the file, the
//! project name and the runtime, and shows progress.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use goodgo_compose::{Condition, Project};
use goodgo_stack::docker::DockerRuntime;
use goodgo_stack::native::NativeRuntime;
use goodgo_stack::{Event, StackError, UpRequest};
use serde_json::json;

use super::Context;
use crate::args::{DownArgs, LogsArgs, RuntimeChoice, StackFileArgs, UpArgs};
use crate::config::{Runtime, Source};
use crate::error::{ExitStatus, UserError};
use crate::printer::Printer;
use crate::tools;

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The Compose file and its parsed project.
pub struct Loaded {
    pub project: Project,
    pub name: String,
}

pub fn load(
    ctx: &Context,
    file: Option<&PathBuf>,
    project_flag: Option<&String>,
    printer: &Printer,
) -> Result<Loaded> {
    let ws = &ctx.workspace;
    let path = match file {
        Some(f) => ws.cwd.join(f),
        None => ws.resolve(&ws.settings.compose_file.value),
    };
    let shown = ws.display_path(&path);
    if !path.is_file() {
        return Err(
            UserError::input(format!("no Compose file at {}", shown.display()))
                .with_hint("pass --file, or set `compose_file` in goodgo.yaml")
                .into(),
        );
    }
    let project = goodgo_compose::load(&path, &shown, &|k| std::env::var(k).ok())?;
    for d in &project.diagnostics {
        printer.warn(&d.to_string());
    }
    // -p, then a name given to goodgo (environment or goodgo.yaml), then the file's own.
    let name = match (project_flag, &ws.settings.name.source, &project.name) {
        (Some(p), _, _) => p.clone(),
        (None, Source::Env(_) | Source::File(_), _) => ws.settings.name.value.clone(),
        (None, _, Some(n)) => n.clone(),
        (None, _, None) => ws.settings.name.value.clone(),
    };
    let name = crate::config::sanitize_name(&name);
    Ok(Loaded { project, name })
}

fn native(ctx: &Context, name: &str) -> NativeRuntime {
    let pg = tools::find_pg_binary(
        "postgres",
        ctx.workspace.settings.pg_bin_dir.value.as_deref(),
    )
    .and_then(|p| p.parent().map(PathBuf::from));
    NativeRuntime::new(&ctx.workspace.root, name, pg, tools::which("redis-server"))
}

/// Shows a failed service's last log lines, then hands the error on unchanged: its class
/// and hint are its own, and `error::render` decides the status.
fn stack_error(err: StackError, printer: &Printer) -> anyhow::Error {
    let logs = err.logs();
    if !logs.is_empty() {
        let mut text = String::from("last log lines:\n");
        for l in logs {
            let _ = writeln!(text, "  | {l}");
        }
        printer.stderr(&text);
    }
    err.into()
}

/// An error and its causes on one line (`cannot reach the Docker engine: …`), for a
/// reason shown in passing rather than an error rendered.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

pub(crate) enum Chosen {
    Docker(DockerRuntime),
    Native(NativeRuntime),
}

/// Picks the runtime: the flag, else goodgo.yaml/GOODGO_RUNTIME, else auto — Docker when
/// the engine answers and has the images or can pull them (only when `may_pull`: a dry run
/// touches nothing), otherwise native. Says why.
pub(crate) async fn choose(
    ctx: &Context,
    loaded: &Loaded,
    req: &UpRequest,
    flag: Option<RuntimeChoice>,
    may_pull: bool,
    printer: &Printer,
) -> Result<(Chosen, String), StackError> {
    let wanted = match flag {
        Some(RuntimeChoice::Docker) => Runtime::Docker,
        Some(RuntimeChoice::Native) => Runtime::Native,
        Some(RuntimeChoice::Auto) => Runtime::Auto,
        None => ctx.workspace.settings.runtime.value,
    };
    match wanted {
        Runtime::Docker => Ok((
            Chosen::Docker(DockerRuntime::connect().await?),
            "asked for docker".into(),
        )),
        Runtime::Native => Ok((
            Chosen::Native(native(ctx, &loaded.name)),
            "asked for native".into(),
        )),
        Runtime::Auto => {
            let docker = match DockerRuntime::connect().await {
                Ok(d) => d,
                Err(e) => {
                    return Ok((
                        Chosen::Native(native(ctx, &loaded.name)),
                        format!("no Docker engine ({})", causes(&e)),
                    ));
                }
            };
            for service in goodgo_stack::services(&loaded.project, &req.waves) {
                // A service with a `build` section is built by the engine when its image
                // is missing; any other missing image must come from its registry.
                let Some(image) = &service.image else {
                    continue;
                };
                if service.build.is_some() || docker.has_image(image).await? {
                    continue;
                }
                if !may_pull {
                    let reason = format!(
                        "image {image} is not present locally (`up` would try to pull it, and run natively if it cannot; `cargo xtask images` builds it)"
                    );
                    return Ok((Chosen::Native(native(ctx, &loaded.name)), reason));
                }
                let pulls = std::sync::Mutex::new(PullView::default());
                let pulled = docker
                    .pull(&service.name, image, &|e| show_event(printer, &pulls, e))
                    .await;
                printer.progress(None);
                if let Err(e) = pulled {
                    printer.debug(&e.to_string());
                    let reason = format!(
                        "image {image} is not present locally and cannot be pulled (`cargo xtask images` builds it)"
                    );
                    return Ok((Chosen::Native(native(ctx, &loaded.name)), reason));
                }
            }
            Ok((
                Chosen::Docker(docker),
                "the Docker engine answers and has (or can build or pull) every image".into(),
            ))
        }
    }
}

pub fn up(ctx: &Context, args: &UpArgs, printer: &Printer) -> Result<ExitStatus> {
    let loaded = load(
        ctx,
        args.stack.file.as_ref(),
        args.stack.project.as_ref(),
        printer,
    )?;
    let selected: Vec<&str> = args.services.iter().map(String::as_str).collect();
    let profiles: Vec<&str> = args.profiles.iter().map(String::as_str).collect();
    let waves = goodgo_compose::waves(&loaded.project, &selected, &profiles)?;
    let req = UpRequest {
        project: loaded.name.clone(),
        waves,
        timeout: Duration::from_secs(args.timeout),
    };
    let rt = runtime()?;
    rt.block_on(async {
        // Registered first: Ctrl-C anywhere in `up` stops waiting and leaves what the next
        // `up` repairs (see docs/stack.md).
        let interrupted = interrupt()?;
        let (chosen, why) = choose(ctx, &loaded, &req, args.runtime, !args.dry_run, printer).await.map_err(|e| stack_error(e, printer))?;
        let runtime_name = match chosen {
            Chosen::Docker(_) => "docker",
            Chosen::Native(_) => "native",
        };
        if args.dry_run {
            return dry_run(&loaded, &req, runtime_name, &why, printer);
        }
        printer.status(&format!("runtime {runtime_name}: {why}"));
        let start = Instant::now();
        let reports = tokio::select! {
            r = run_up(&loaded, &req, &chosen, printer) => r?,
            () = interrupted => {
                printer.progress(None);
                printer.warn("interrupted: services may be half started; `goodgo up` again completes them, `goodgo down` stops them");
                return Ok(ExitStatus::Interrupted);
            }
        };
        let mut text = String::new();
        for r in &reports {
            let _ = writeln!(text, "{:<16} {:<10} ready at {} ms", r.service, format!("{:?}", r.action).to_lowercase(), r.ready_ms);
        }
        let _ = writeln!(text, "{} service(s) up on {runtime_name} in {} ms", reports.len(), start.elapsed().as_millis());
        printer.report(
            &text,
            &json!({"runtime": runtime_name, "reason": why, "services": reports, "took_ms": goodgo_stack::millis(start.elapsed())}),
        );
        Ok(ExitStatus::Success)
    })
}

/// Registers for SIGINT and SIGTERM now; the returned future completes on either.
fn interrupt() -> Result<impl std::future::Future<Output = ()>> {
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

/// An image pull as the user sees it: one bar redrawn in place on a terminal, else a line
/// per layer step (`Downloading`, `Pull complete`, …), never a line per chunk.
#[derive(Default)]
struct PullView {
    /// Layer → (bytes so far, bytes in all) of its download.
    layers: BTreeMap<String, (u64, u64)>,
    /// Layer → the last step shown as a plain line.
    shown: BTreeMap<String, String>,
}

impl PullView {
    fn update(
        &mut self,
        printer: &Printer,
        image: &str,
        layer: Option<String>,
        status: &str,
        progress: (Option<u64>, Option<u64>),
    ) {
        let Some(layer) = layer else {
            printer.progress(None);
            printer.status(&format!("  {image}: {status}"));
            return;
        };
        if let (Some(current), Some(total)) = progress
            && status.starts_with("Downloading")
        {
            self.layers.insert(layer.clone(), (current, total));
        } else if (status.contains("complete") || status.starts_with("Already exists"))
            && let Some(entry) = self.layers.get_mut(&layer)
        {
            entry.0 = entry.1;
        }
        if printer.live_progress() {
            let (done, all) = self
                .layers
                .values()
                .fold((0u64, 0u64), |(d, a), (c, t)| (d + c.min(t), a + t));
            printer.progress(Some(&format!("  {image} {}", progress_bar(done, all))));
        } else {
            let step = status.split_whitespace().next().unwrap_or(status);
            if self.shown.get(&layer).map(String::as_str) != Some(step) {
                self.shown.insert(layer.clone(), step.to_string());
                printer.status(&format!("  {image} {layer}: {status}"));
            }
        }
    }
}

/// `[#####-----]  50% 1.2/2.4 MB`: bytes `done` of `all`.
fn progress_bar(done: u64, all: u64) -> String {
    const WIDTH: u64 = 30;
    let filled = (done.min(all) * WIDTH).checked_div(all).unwrap_or(0);
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '-' })
        .collect();
    let percent = (done.min(all) * 100).checked_div(all).unwrap_or(0);
    let mb = |b: u64| b as f64 / 1_000_000.0;
    format!("[{bar}] {percent:>3}% {:.1}/{:.1} MB", mb(done), mb(all))
}

/// Shows one of the runtime's progress events; pull progress goes through `pulls`.
fn show_event(printer: &Printer, pulls: &std::sync::Mutex<PullView>, event: Event) {
    match event {
        Event::Pulling { service, image } => {
            printer.status(&format!("{service}: pulling {image}…"))
        }
        Event::PullProgress {
            image,
            layer,
            status,
            current,
            total,
        } => {
            if let Ok(mut view) = pulls.lock() {
                view.update(printer, &image, layer, &status, (current, total));
            }
        }
        Event::Warning { service, message } => printer.warn(&format!("{service}: {message}")),
        Event::Building { service } => printer.status(&format!("{service}: building…")),
        Event::Acting { service, action } => printer.debug(&format!("{service}: {action:?}")),
        Event::Waiting { service, condition } => {
            printer.debug(&format!("waiting for {service} to be {condition}"))
        }
        Event::Ready { service, after } => {
            printer.status(&format!("{service}: ready after {} ms", after.as_millis()))
        }
    }
}

/// Starts the request's services on the chosen runtime, showing progress.
pub(crate) async fn run_up(
    loaded: &Loaded,
    req: &UpRequest,
    chosen: &Chosen,
    printer: &Printer,
) -> Result<Vec<goodgo_stack::ServiceReport>> {
    let pulls = std::sync::Mutex::new(PullView::default());
    let on_event = |event: Event| show_event(printer, &pulls, event);
    let result = match chosen {
        Chosen::Docker(d) => d.up(&loaded.project, req, &on_event).await,
        Chosen::Native(n) => n.up(&loaded.project, req, &on_event).await,
    };
    printer.progress(None);
    result.map_err(|e| stack_error(e, printer))
}

/// Stops the project's services on both runtimes.
pub(crate) async fn stop_all(ctx: &Context, name: &str, printer: &Printer) -> Result<()> {
    if let Some(d) = docker_if_any().await {
        d.down(name, false)
            .await
            .map_err(|e| stack_error(e, printer))?;
    }
    native(ctx, name)
        .down(false)
        .await
        .map_err(|e| stack_error(e, printer))?;
    Ok(())
}

fn condition_name(c: Condition) -> &'static str {
    match c {
        Condition::Started => "service_started",
        Condition::Healthy => "service_healthy",
        Condition::CompletedSuccessfully => "service_completed_successfully",
    }
}

fn dry_run(
    loaded: &Loaded,
    req: &UpRequest,
    runtime: &str,
    why: &str,
    printer: &Printer,
) -> Result<ExitStatus> {
    let mut services = serde_json::Map::new();
    let mut text = format!("runtime {runtime}: {why}\nproject {}\n", loaded.name);
    for (k, wave) in req.waves.iter().enumerate() {
        let _ = writeln!(text, "wave {}: {}", k + 1, wave.join(", "));
    }
    for service in goodgo_stack::services(&loaded.project, &req.waves) {
        let ports: Vec<String> = service
            .ports
            .iter()
            .map(|p| match (p.published, &p.host_ip) {
                (Some(h), Some(ip)) => format!("{ip}:{h}:{}/{}", p.target, p.protocol),
                (Some(h), None) => format!("{h}:{}/{}", p.target, p.protocol),
                (None, _) => format!("{}/{}", p.target, p.protocol),
            })
            .collect();
        let deps: BTreeMap<&String, &str> = service
            .depends_on
            .iter()
            .map(|(d, c)| (d, condition_name(*c)))
            .collect();
        let image = service.image.clone().unwrap_or_else(|| "(build)".into());
        let _ = writeln!(
            text,
            "  {:<14} {image}  ports [{}]",
            service.name,
            ports.join(", ")
        );
        services.insert(
            service.name.clone(),
            json!({"image": service.image, "ports": ports, "depends_on": deps}),
        );
    }
    printer.report(&text, &json!({"runtime": runtime, "reason": why, "project": loaded.name, "waves": req.waves, "services": services}));
    Ok(ExitStatus::Success)
}

/// The Docker runtime when an engine answers (status, down and logs cover both runtimes).
async fn docker_if_any() -> Option<DockerRuntime> {
    DockerRuntime::connect().await.ok()
}

pub fn down(ctx: &Context, args: &DownArgs, printer: &Printer) -> Result<ExitStatus> {
    let loaded = load(
        ctx,
        args.stack.file.as_ref(),
        args.stack.project.as_ref(),
        printer,
    )?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut removed = Vec::new();
        if let Some(d) = docker_if_any().await {
            removed.extend(
                d.down(&loaded.name, args.volumes)
                    .await
                    .map_err(|e| stack_error(e, printer))?
                    .into_iter()
                    .map(|s| (s, "docker")),
            );
        }
        let n = native(ctx, &loaded.name);
        removed.extend(
            n.down(args.volumes)
                .await
                .map_err(|e| stack_error(e, printer))?
                .into_iter()
                .map(|s| (s, "native")),
        );
        let mut text = String::new();
        for (s, r) in &removed {
            let _ = writeln!(text, "stopped {s} ({r})");
        }
        if removed.is_empty() {
            let _ = writeln!(text, "nothing was running for project {}", loaded.name);
        }
        if args.volumes {
            text.push_str("volumes and data removed\n");
        }
        let names: Vec<_> = removed
            .iter()
            .map(|(s, r)| json!({"service": s, "runtime": r}))
            .collect();
        printer.report(
            &text,
            &json!({"project": loaded.name, "stopped": names, "volumes_removed": args.volumes}),
        );
        Ok(ExitStatus::Success)
    })
}

pub fn status(ctx: &Context, args: &StackFileArgs, printer: &Printer) -> Result<ExitStatus> {
    let loaded = load(ctx, args.file.as_ref(), args.project.as_ref(), printer)?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut rows = Vec::new();
        if let Some(d) = docker_if_any().await {
            rows.extend(
                d.status(&loaded.name)
                    .await
                    .map_err(|e| stack_error(e, printer))?,
            );
        }
        rows.extend(native(ctx, &loaded.name).status(Some(&loaded.project)));
        let mut text = String::new();
        if rows.is_empty() {
            let _ = writeln!(
                text,
                "no services of project {} exist; `goodgo up` starts them",
                loaded.name
            );
        } else {
            let _ = writeln!(
                text,
                "{:<14} {:<8} {:<10} {:<10} {:<8} PORTS",
                "SERVICE", "RUNTIME", "STATE", "HEALTH", "UPTIME"
            );
        }
        for r in &rows {
            let uptime = r.uptime_s.map(human_duration).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                text,
                "{:<14} {:<8} {:<10} {:<10} {:<8} {}",
                r.service,
                r.runtime,
                r.state,
                r.health,
                uptime,
                r.ports.join(", ")
            );
        }
        printer.report(&text, &json!({"project": loaded.name, "services": rows}));
        Ok(ExitStatus::Success)
    })
}

fn human_duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, s % 3600 / 60),
    }
}

pub fn logs(ctx: &Context, args: &LogsArgs, printer: &Printer) -> Result<ExitStatus> {
    let loaded = load(ctx, args.file.as_ref(), args.project.as_ref(), printer)?;
    for s in &args.services {
        if !loaded.project.services.contains_key(s) {
            return Err(UserError::input(format!("no service `{s}` in the Compose file")).into());
        }
    }
    let width = loaded
        .project
        .services
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(8);
    let palette = [
        anstyle::AnsiColor::Cyan,
        anstyle::AnsiColor::Yellow,
        anstyle::AnsiColor::Green,
        anstyle::AnsiColor::Magenta,
        anstyle::AnsiColor::Blue,
        anstyle::AnsiColor::Red,
    ];
    let names: Vec<String> = loaded.project.services.keys().cloned().collect();
    let on_line = |service: &str, line: &str| {
        let i = names.iter().position(|n| n == service).unwrap_or(0);
        let style = printer.style(palette[i % palette.len()].on_default());
        printer.stdout_raw(&format!("{style}{service:<width$} |{style:#} {line}\n"));
    };
    let rt = runtime()?;
    rt.block_on(async {
        // Both runtimes at once: with -f, each keeps following its own services.
        let docker = docker_if_any().await;
        let from_docker = async {
            match &docker {
                Some(d) => {
                    d.logs(
                        &loaded.name,
                        &args.services,
                        args.follow,
                        args.tail,
                        &on_line,
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        let native = native(ctx, &loaded.name);
        let from_native = native.logs(&args.services, args.follow, args.tail, &on_line);
        let (d, n) = tokio::join!(from_docker, from_native);
        d.and(n).map_err(|e| stack_error(e, printer))?;
        Ok(ExitStatus::Success)
    })
}

/// The URL of the stack's PostgreSQL when it is running: the first service with a postgres
/// image, its `POSTGRES_*` environment and its published port. `None` when there is no
/// stack file, no such service, or nothing answers on its port.
pub fn running_database_url(ctx: &Context) -> Option<(String, String)> {
    let ws = &ctx.workspace;
    let path = ws.resolve(&ws.settings.compose_file.value);
    let shown = ws.display_path(&path);
    let project = goodgo_compose::load(&path, &shown, &|k| std::env::var(k).ok()).ok()?;
    let service = project.services.values().find(|s| {
        goodgo_stack::native::kind(s).ok() == Some(goodgo_stack::native::Kind::Postgres)
    })?;
    let port = service
        .ports
        .iter()
        .find(|p| p.target == 5432)
        .or_else(|| service.ports.first())?;
    let published = port.published?;
    let ip = port
        .host_ip
        .clone()
        .filter(|ip| !ip.is_empty() && ip != "0.0.0.0")
        .unwrap_or_else(|| "127.0.0.1".into());
    if !goodgo_stack::probe::tcp_open(&ip, published) {
        return None;
    }
    let env = &service.environment;
    let user = env
        .get("POSTGRES_USER")
        .cloned()
        .unwrap_or_else(|| "postgres".into());
    let db = env
        .get("POSTGRES_DB")
        .cloned()
        .unwrap_or_else(|| user.clone());
    let password = env
        .get("POSTGRES_PASSWORD")
        .map(|p| format!(":{}", percent_encode(p)))
        .unwrap_or_default();
    let url = format!(
        "postgres://{}{password}@{ip}:{published}/{}",
        percent_encode(&user),
        percent_encode(&db)
    );
    Some((
        url,
        format!(
            "the running stack ({} service `{}`)",
            shown.display(),
            service.name
        ),
    ))
}

/// Percent-encodes what may not appear raw in a URL's user, password or path.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pull_bar_fills_with_the_bytes() {
        assert_eq!(
            progress_bar(0, 0),
            format!("[{}]   0% 0.0/0.0 MB", "-".repeat(30))
        );
        assert_eq!(
            progress_bar(1_500_000, 3_000_000),
            format!("[{}{}]  50% 1.5/3.0 MB", "#".repeat(15), "-".repeat(15))
        );
        assert!(progress_bar(9, 3).starts_with(&format!("[{}] 100%", "#".repeat(30))));
    }
}
