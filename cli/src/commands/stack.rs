//! `goodgo up | down | status | logs`: the local stack, as the user sees it. Loading the
//! Compose project, choosing the runtime and bringing it up are shared operations in
//! [`crate::ops::stack`]; this module turns arguments into calls and results into output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Result;
use goodgo_compose::Condition;
use goodgo_stack::UpRequest;
use serde_json::json;

use super::Context;
use crate::args::{DownArgs, LogsArgs, StackFileArgs, UpArgs};
use crate::error::{ExitStatus, UserError};
use crate::ops::guard::{self, Ask, Destructive};
use crate::ops::interrupt::interrupt;
use crate::ops::stack::{
    Loaded, choose, load, present_runtimes, project_name, run_up, runtime, stack_error,
};
use crate::printer::Printer;

/// The Compose project of the `-f/--file`s and `-p/--project` name (else the
/// workspace's).
fn load_stack(ctx: &Context, args: &StackFileArgs, printer: &Printer) -> Result<Loaded> {
    load(ctx, &args.file, args.project.as_ref(), printer)
}

/// The project to stop, show or tail: its name and model from the Compose file when it
/// loads. When it does not (a YAML error, a missing file), what runs is still found by
/// the name alone — the engine's labels, the native runtime's records — so the file's
/// error is said as a warning and the command goes on, `doing` what it says.
fn running_project(
    ctx: &Context,
    (files, project): (&[std::path::PathBuf], Option<&String>),
    doing: &str,
    printer: &Printer,
) -> Result<(String, Option<goodgo_compose::Project>)> {
    match load(ctx, files, project, printer) {
        Ok(loaded) => Ok((loaded.name, Some(loaded.project))),
        // Outside a workspace there is no project to speak of: say so.
        Err(e) if ctx.workspace.config_file.is_none() && project.is_none() => Err(e),
        Err(e) => {
            let name = project_name(ctx, project, None);
            printer.warn(&format!(
                "{}\n  {doing} project {name} from what runs",
                crate::error::one_line(&e)
            ));
            Ok((name, None))
        }
    }
}

pub fn up(ctx: &Context, args: &UpArgs, printer: &Printer) -> Result<ExitStatus> {
    let loaded = load_stack(ctx, &args.stack, printer)?;
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
        let runtime_name = chosen.name();
        if args.dry_run {
            return dry_run(&loaded, &req, runtime_name, &why, printer);
        }
        printer.status(&format!("runtime {runtime_name}: {why}"));
        let start = Instant::now();
        let reports = tokio::select! {
            r = run_up(&loaded, &req, &*chosen, printer) => r?,
            () = interrupted => {
                printer.warn("interrupted: services may be half started; `goodgo up` again completes them, `goodgo down` stops them");
                return Ok(ExitStatus::Interrupted);
            }
        };
        let mut text = String::new();
        for r in &reports {
            let _ = writeln!(text, "{:<16} {:<10} ready at {} ms", r.service, format!("{:?}", r.action).to_lowercase(), r.ready_ms);
        }
        let _ = writeln!(text, "{} service(s) up on {runtime_name} in {} ms", reports.len(), start.elapsed().as_millis());
        // The S3 server the API's photos use, as `goodgo dev` passes it on.
        let s3 = reports.iter().find_map(|r| crate::ops::s3::started(&loaded.project, &r.service));
        if let Some(s3) = &s3 {
            let _ = writeln!(text, "S3 for listing photos: {} — `goodgo dev` sets GOODGO_S3_BUCKET and AWS_* for the API", s3.describe());
        }
        printer.report(
            &text,
            &json!({"runtime": runtime_name, "reason": why, "services": reports, "s3": s3.as_ref().map(crate::ops::s3::RunningS3::json), "took_ms": goodgo_stack::millis(start.elapsed())}),
        );
        Ok(ExitStatus::Success)
    })
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

pub fn down(ctx: &Context, args: &DownArgs, printer: &Printer) -> Result<ExitStatus> {
    let (name, _) = running_project(ctx, args.stack.which(), "stopping", printer)?;
    if args.volumes {
        let destructive = Destructive {
            action: format!("delete the volumes and data of project {name}"),
            name: &name,
            yes: args.yes,
            // A development stack's data is local and reproducible (`db seed`), as with
            // `docker compose down --volumes`; production is guarded all the same.
            ask: Ask::Never,
        };
        if !guard::allow(&ctx.workspace.settings, &destructive, printer)? {
            return Ok(ExitStatus::Failure);
        }
    }
    let rt = runtime()?;
    rt.block_on(async {
        let mut removed = Vec::new();
        for rt in present_runtimes(ctx, &name).await {
            removed.extend(
                rt.down(&name, args.volumes)
                    .await
                    .map_err(|e| stack_error(e, printer))?
                    .into_iter()
                    .map(|s| (s, rt.name())),
            );
        }
        let mut text = String::new();
        for (s, r) in &removed {
            let _ = writeln!(text, "stopped {s} ({r})");
        }
        if removed.is_empty() {
            let _ = writeln!(text, "nothing was running for project {}", name);
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
            &json!({"project": name, "stopped": names, "volumes_removed": args.volumes}),
        );
        Ok(ExitStatus::Success)
    })
}

pub fn status(ctx: &Context, args: &StackFileArgs, printer: &Printer) -> Result<ExitStatus> {
    let (name, model) = running_project(ctx, args.which(), "showing", printer)?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut rows = Vec::new();
        for rt in present_runtimes(ctx, &name).await {
            rows.extend(
                rt.status(&name, model.as_ref())
                    .await
                    .map_err(|e| stack_error(e, printer))?,
            );
        }
        let mut text = String::new();
        if rows.is_empty() {
            let _ = writeln!(
                text,
                "no services of project {} exist; `goodgo up` starts them",
                name
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
        let mut value = json!({"project": name, "services": rows});
        if let Some((line, backups, warning)) = super::backup::status_summary(ctx).await {
            text.push_str(&line);
            value["backup"] = backups;
            if let Some(w) = warning {
                printer.warn(&w);
            }
        }
        printer.report(&text, &value);
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
    let (name, model) = running_project(ctx, args.which(), "showing the logs of", printer)?;
    let names: Vec<String> = match &model {
        Some(project) => {
            for s in &args.services {
                if !project.services.contains_key(s) {
                    return Err(
                        UserError::input(format!("no service `{s}` in the Compose file")).into(),
                    );
                }
            }
            project.services.keys().cloned().collect()
        }
        None => args.services.clone(),
    };
    let width = names.iter().map(String::len).max().unwrap_or(8);
    let palette = [
        anstyle::AnsiColor::Cyan,
        anstyle::AnsiColor::Yellow,
        anstyle::AnsiColor::Green,
        anstyle::AnsiColor::Magenta,
        anstyle::AnsiColor::Blue,
        anstyle::AnsiColor::Red,
    ];
    // With --json, one object per line: stdout stays JSON only.
    let on_line = |service: &str, line: &str| {
        if printer.json() {
            printer.json_line(&json!({"service": service, "line": line}));
            return;
        }
        let i = names.iter().position(|n| n == service).unwrap_or(0);
        let style = printer.style(palette[i % palette.len()].on_default());
        printer.stdout_raw(&format!("{style}{service:<width$} |{style:#} {line}\n"));
    };
    let rt = runtime()?;
    rt.block_on(async {
        // Both runtimes at once: with -f, each keeps following its own services.
        let runtimes = present_runtimes(ctx, &name).await;
        let streams = runtimes
            .iter()
            .map(|rt| rt.logs(&name, &args.services, args.follow, args.tail, &on_line));
        for result in futures_util::future::join_all(streams).await {
            result.map_err(|e| stack_error(e, printer))?;
        }
        Ok(ExitStatus::Success)
    })
}
