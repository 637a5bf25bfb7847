//! The local stack's shared operations: the async runtime, the Compose project and its
//! name, the runtime chosen (with the reason), the stack brought up with progress, stopped,
//! and the running stack's database URL.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use goodgo_compose::Project;
use goodgo_stack::docker::DockerRuntime;
use goodgo_stack::native::NativeRuntime;
use goodgo_stack::{Event, Runtime as StackRuntime, StackError, UpRequest};
use indicatif::ProgressBar;

use crate::commands::Context;
use crate::config::{Runtime, Source};
use crate::error::UserError;
use crate::printer::Printer;
use crate::tools;

/// The async runtime the stack's operations run on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
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

/// Loads the Compose file (`--file`, else `compose_file` from the settings) and names the
/// project: `-p`, else a name given to goodgo, else the file's own `name`.
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

/// The native runtime for project `name`, with the tools goodgo found.
pub fn native(ctx: &Context, name: &str) -> NativeRuntime {
    let pg = tools::find_pg_binary(
        "postgres",
        ctx.workspace.settings.pg_bin_dir.value.as_deref(),
    )
    .and_then(|p| p.parent().map(PathBuf::from));
    NativeRuntime::new(&ctx.workspace.root, name, pg, tools::which("redis-server"))
}

/// Shows a failed service's last log lines, then hands the error on unchanged: its class
/// and hint are its own, and `error::render` decides the status.
pub fn stack_error(err: StackError, printer: &Printer) -> anyhow::Error {
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
pub fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Picks the runtime: the flag, else goodgo.yaml/GOODGO_RUNTIME, else auto — Docker when
/// the engine answers and has the images or can pull them (only when `may_pull`: a dry run
/// touches nothing), otherwise native. Says why.
pub async fn choose(
    ctx: &Context,
    loaded: &Loaded,
    req: &UpRequest,
    flag: Option<Runtime>,
    may_pull: bool,
    printer: &Printer,
) -> Result<(Box<dyn StackRuntime>, String), StackError> {
    let wanted = flag.unwrap_or(ctx.workspace.settings.runtime.value);
    match wanted {
        Runtime::Docker => Ok((
            Box::new(DockerRuntime::connect().await?),
            "asked for docker".into(),
        )),
        Runtime::Native => Ok((
            Box::new(native(ctx, &loaded.name)),
            "asked for native".into(),
        )),
        Runtime::Auto => {
            let docker = match DockerRuntime::connect().await {
                Ok(d) => d,
                Err(e) => {
                    return Ok((
                        Box::new(native(ctx, &loaded.name)),
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
                    return Ok((Box::new(native(ctx, &loaded.name)), reason));
                }
                let pulls = std::sync::Mutex::new(PullView::default());
                let pulled = docker
                    .pull(&service.name, image, &|e| show_event(printer, &pulls, e))
                    .await;
                clear(&pulls);
                if let Err(e) = pulled {
                    printer.debug(&causes(&e));
                    let reason = format!(
                        "image {image} is not present locally and cannot be pulled (`cargo xtask images` builds it)"
                    );
                    return Ok((Box::new(native(ctx, &loaded.name)), reason));
                }
            }
            Ok((
                Box::new(docker),
                "the Docker engine answers and has (or can build or pull) every image".into(),
            ))
        }
    }
}

/// An image pull as the user sees it: one bar (indicatif) on a terminal, else a line per
/// layer step (`Downloading`, `Pull complete`, …), never a line per chunk.
#[derive(Default)]
struct PullView {
    /// Layer → (bytes so far, bytes in all) of its download.
    layers: BTreeMap<String, (u64, u64)>,
    /// Layer → the last step shown as a plain line.
    shown: BTreeMap<String, String>,
    /// The bar, while a pull is drawn live; it clears itself when dropped.
    bar: Option<ProgressBar>,
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
            self.clear();
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
            let bar = self.bar.get_or_insert_with(|| printer.bytes_bar(image));
            bar.set_prefix(image.to_string());
            bar.set_length(all);
            bar.set_position(done.min(all));
        } else {
            let step = status.split_whitespace().next().unwrap_or(status);
            if self.shown.get(&layer).map(String::as_str) != Some(step) {
                self.shown.insert(layer.clone(), step.to_string());
                printer.status(&format!("  {image} {layer}: {status}"));
            }
        }
    }

    /// Takes the bar off the screen.
    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Takes a pull's bar off the screen.
fn clear(pulls: &std::sync::Mutex<PullView>) {
    if let Ok(mut view) = pulls.lock() {
        view.clear();
    }
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
pub async fn run_up(
    loaded: &Loaded,
    req: &UpRequest,
    runtime: &dyn StackRuntime,
    printer: &Printer,
) -> Result<Vec<goodgo_stack::ServiceReport>> {
    let pulls = std::sync::Mutex::new(PullView::default());
    let on_event = |event: Event| show_event(printer, &pulls, event);
    let result = goodgo_stack::up(runtime, &loaded.project, req, &on_event).await;
    clear(&pulls);
    result.map_err(|e| stack_error(e, printer))
}

/// The runtimes that may hold the project's services: Docker when an engine answers, and
/// always native (status, down and logs cover both).
pub async fn present_runtimes(ctx: &Context, name: &str) -> Vec<Box<dyn StackRuntime>> {
    let mut all: Vec<Box<dyn StackRuntime>> = Vec::new();
    if let Ok(d) = DockerRuntime::connect().await {
        all.push(Box::new(d));
    }
    all.push(Box::new(native(ctx, name)));
    all
}

/// Stops the project's services on both runtimes.
pub async fn stop_all(ctx: &Context, name: &str, printer: &Printer) -> Result<()> {
    for rt in present_runtimes(ctx, name).await {
        rt.down(name, false)
            .await
            .map_err(|e| stack_error(e, printer))?;
    }
    Ok(())
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
    let goodgo_stack::native::Credentials { user, password, db } =
        goodgo_stack::native::credentials(service);
    let password = password
        .map(|p| format!(":{}", percent_encode(&p)))
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
