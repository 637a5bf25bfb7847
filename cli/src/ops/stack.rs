//! The local stack's shared operations: the async runtime, the Compose project and its
//! name, the runtime chosen (with the reason), the stack brought up with progress, stopped,
//! and the running stack's database URL.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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

/// The Compose files and their parsed project.
pub struct Loaded {
    pub project: Project,
    pub name: String,
    /// The Compose files, each as read and as messages show it; the first is the
    /// project's.
    pub files: Vec<(PathBuf, PathBuf)>,
}

/// The project's Compose files, each as read and as messages show it: the `--file`s as
/// given; else those `COMPOSE_FILE` lists (separated by `COMPOSE_PATH_SEPARATOR`, else
/// `:`); else `compose_file` from the settings, with the `.override` file beside it
/// (`compose.override.yaml`) when there is one — as `docker compose` finds them.
pub fn compose_files(ctx: &Context, files: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>> {
    let ws = &ctx.workspace;
    let listed = std::env::var("COMPOSE_FILE")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (paths, named): (Vec<PathBuf>, bool) = if !files.is_empty() {
        (files.iter().map(|f| ws.cwd.join(f)).collect(), true)
    } else if let Some(list) = listed {
        let separator = std::env::var("COMPOSE_PATH_SEPARATOR").ok();
        let list = goodgo_compose::compose_file_list(&list, separator.as_deref());
        (list.iter().map(|f| ws.cwd.join(f)).collect(), true)
    } else {
        let main = ws.resolve(&ws.settings.compose_file.value);
        let over = goodgo_compose::override_file(&main);
        (std::iter::once(main).chain(over).collect(), false)
    };
    for path in &paths {
        if path.is_file() {
            continue;
        }
        if !named && ws.config_file.is_none() {
            return Err(UserError::input(format!(
                "not in a goodgo workspace: no {} in {} or any folder above it",
                crate::config::FILE_NAME,
                ws.cwd.display()
            ))
            .with_hint("`goodgo init <folder>` creates one; or run goodgo inside a workspace, or pass --file")
            .into());
        }
        return Err(UserError::input(format!(
            "no Compose file at {}",
            ws.display_path(path).display()
        ))
        .with_hint("pass --file, or set `compose_file` in goodgo.yaml (COMPOSE_FILE, when set, names the files instead)")
        .into());
    }
    Ok(paths
        .into_iter()
        .map(|p| {
            let shown = ws.display_path(&p);
            (p, shown)
        })
        .collect())
}

/// The project of `files` (as [`compose_files`] gives them), merged in order.
pub fn load_project(
    files: &[(PathBuf, PathBuf)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Project, goodgo_compose::ComposeError> {
    let refs: Vec<(&Path, &Path)> = files
        .iter()
        .map(|(p, s)| (p.as_path(), s.as_path()))
        .collect();
    goodgo_compose::load_files(&refs, env)
}

/// Loads the Compose files (see [`compose_files`]) and names the project: `-p`, else a
/// name given to goodgo, else the files' own `name`.
pub fn load(
    ctx: &Context,
    files: &[PathBuf],
    project_flag: Option<&String>,
    printer: &Printer,
) -> Result<Loaded> {
    let files = compose_files(ctx, files)?;
    let project = load_project(&files, &|k| std::env::var(k).ok())?;
    for d in &project.diagnostics {
        printer.warn(&d.to_string());
    }
    let name = project_name(ctx, project_flag, project.name.as_ref());
    Ok(Loaded {
        project,
        name,
        files,
    })
}

/// The project's name: `-p`, then a name given to goodgo (environment or goodgo.yaml),
/// then the Compose file's own, then the default.
pub fn project_name(ctx: &Context, flag: Option<&String>, in_file: Option<&String>) -> String {
    let settings = &ctx.workspace.settings;
    let name = match (flag, &settings.name.source, in_file) {
        (Some(p), _, _) => p.clone(),
        (None, Source::Env(_) | Source::File(_), _) => settings.name.value.clone(),
        (None, _, Some(n)) => n.clone(),
        (None, _, None) => settings.name.value.clone(),
    };
    crate::config::sanitize_name(&name)
}

/// The native runtime for project `name`, with the tools goodgo found.
pub fn native(ctx: &Context, name: &str) -> NativeRuntime {
    let pg = tools::find_pg_binary(
        "postgres",
        ctx.workspace.settings.pg_bin_dir.value.as_deref(),
    )
    .and_then(|p| p.parent().map(PathBuf::from));
    NativeRuntime::new(&ctx.workspace.root, name, pg, tools::which("redis-server"))
        .with_s3s_fs(tools::which("s3s-fs"))
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

/// Picks the runtime: the flag, else goodgo.yaml/GOODGO_RUNTIME, else auto — native while
/// any of the project's services runs natively, else Docker when the engine answers and
/// has the images or can pull them (only when `may_pull`: a dry run touches nothing),
/// otherwise native. Says why.
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
            // Services of this project that already run natively keep it native: the
            // others started on Docker would fight them for their ports.
            let native_now = native(ctx, &loaded.name);
            if native_now.status(None).iter().any(|s| s.state == "running") {
                return Ok((
                    Box::new(native_now),
                    "the project's services already run natively".into(),
                ));
            }
            let docker = match DockerRuntime::connect().await {
                Ok(d) => d,
                Err(e) => {
                    return Ok((
                        Box::new(native(ctx, &loaded.name)),
                        format!("no Docker engine ({})", causes(&e)),
                    ));
                }
            };
            // Each image asked about once, however many services run it.
            let mut present = std::collections::HashSet::new();
            for service in goodgo_stack::services(&loaded.project, &req.waves) {
                // A service with a `build` section is built by the engine when its image
                // is missing; any other missing image must come from its registry.
                let Some(image) = &service.image else {
                    continue;
                };
                if service.build.is_some() || present.contains(image) {
                    continue;
                }
                if docker.has_image(image).await? {
                    present.insert(image.clone());
                    continue;
                }
                // Running natively is a way out only for what the native runtime runs;
                // otherwise the engine's own error (with what to do) is the answer.
                let runs_natively = goodgo_stack::native::image_kind(image).is_some();
                let builds = if goodgo_stack::LOCAL_IMAGES.contains(&image.as_str()) {
                    "; `cargo xtask images` builds it"
                } else {
                    ""
                };
                if service.pull_policy == Some(goodgo_compose::PullPolicy::Never) {
                    if runs_natively {
                        let reason = format!(
                            "image {image} is not present locally and `pull_policy: never` forbids pulling it"
                        );
                        return Ok((Box::new(native(ctx, &loaded.name)), reason));
                    }
                    // Docker's `up` names the image and the policy.
                    continue;
                }
                if !may_pull {
                    let then = if runs_natively {
                        "and run natively if it cannot"
                    } else {
                        "and fail if it cannot: the native runtime does not run it"
                    };
                    let reason = format!(
                        "image {image} is not present locally (`up` would try to pull it, {then}{builds})"
                    );
                    return Ok((Box::new(native(ctx, &loaded.name)), reason));
                }
                let pulls = std::sync::Mutex::new(PullView::default());
                let pulled = docker
                    .pull(&service.name, image, &|e| show_event(printer, &pulls, e))
                    .await;
                clear(&pulls);
                if let Err(e) = pulled {
                    if !runs_natively {
                        return Err(e);
                    }
                    printer.debug(&causes(&e));
                    let reason = format!(
                        "image {image} is not present locally and cannot be pulled{builds}"
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
    result.map_err(|e| stack_error(port_variables(e, loaded), printer))
}

/// Names, for each taken port, the variable the Compose file takes it from, so the hint
/// says `REDIS_PORT=6380 goodgo up` rather than guess. The file is read again with one of
/// the variables it uses changed at a time: the one that moves the service's published
/// port is it. (Only on this error path; a Compose file is small.)
fn port_variables(mut err: StackError, loaded: &Loaded) -> StackError {
    let StackError::PortTaken { clashes } = &mut err else {
        return err;
    };
    let used = std::sync::Mutex::new(Vec::<String>::new());
    let record = |k: &str| {
        if let Ok(mut used) = used.lock()
            && !used.iter().any(|u| u == k)
        {
            used.push(k.to_string());
        }
        std::env::var(k).ok()
    };
    if load_project(&loaded.files, &record).is_err() {
        return err;
    }
    let used = used.into_inner().unwrap_or_default();
    // A port no service publishes, to see where a changed variable lands.
    const PROBE: u16 = 1;
    for var in &used {
        let moved = |k: &str| {
            if k == var {
                Some(PROBE.to_string())
            } else {
                std::env::var(k).ok()
            }
        };
        let Ok(project) = load_project(&loaded.files, &moved) else {
            continue;
        };
        for clash in clashes.iter_mut().filter(|c| c.variable.is_none()) {
            let publishes = project
                .services
                .get(&clash.service)
                .is_some_and(|s| s.ports.iter().any(|p| p.published == Some(PROBE)));
            if publishes {
                clash.variable = Some(var.clone());
            }
        }
    }
    err
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

/// The running stack's PostgreSQL, as the runtimes that run it report it (the engine from
/// the project's labels, the native runtime from its records) — never re-derived from the
/// Compose file with today's environment, which may name another port or another
/// project's server. Its URL and where it came from; `None` when the project runs none.
///
/// A Compose file that does not load still lets a running stack be found (the project is
/// then named by goodgo.yaml); when nothing runs, its error is the answer, not a
/// consequence of it ("no database").
pub fn running_database(ctx: &Context) -> Result<Option<(String, String)>> {
    let files = compose_files(ctx, &[]).ok();
    let shown = files
        .as_ref()
        .and_then(|f| f.first())
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    let (name, broken) = match &files {
        Some(files) => match load_project(files, &|k| std::env::var(k).ok()) {
            Ok(project) => (project_name(ctx, None, project.name.as_ref()), None),
            Err(e) => (project_name(ctx, None, None), Some(e)),
        },
        None => (project_name(ctx, None, None), None),
    };
    let found = std::thread::scope(|scope| {
        // Its own thread and runtime: callers may be inside an async runtime or not.
        scope
            .spawn(|| -> Result<Option<goodgo_stack::RunningDatabase>> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting the async runtime")?;
                rt.block_on(async {
                    for runtime in present_runtimes(ctx, &name).await {
                        if let Some(db) = runtime.database(&name).await? {
                            return Ok(Some(db));
                        }
                    }
                    Ok(None)
                })
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("looking for the running stack failed")))
    })?;
    match (found, broken) {
        (Some(db), broken) => {
            let note = if broken.is_some() {
                format!("; {} does not load", shown.display())
            } else {
                String::new()
            };
            let source = format!(
                "the running stack (project {name}, service `{}` on {}{note})",
                db.service, db.runtime
            );
            Ok(Some((db.url(), source)))
        }
        (None, Some(e)) => Err(e.into()),
        (None, None) => Ok(None),
    }
}
