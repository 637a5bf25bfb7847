//! `goodgo plan …`: the milestone task graph. The graph work is in `goodgo-plan`; this
//! module loads the file, runs the check every subcommand relies on, and prints.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use goodgo_plan::check::{self, Resolved, Severity};
use goodgo_plan::model::{Plan, Status};
use goodgo_plan::{graph, render};
use serde_json::json;

use super::Context;
use crate::args::{GraphFormat, PlanArgs, PlanCommand, PlanStatus};
use crate::error::{ExitStatus, UserError};
use crate::printer::Printer;

struct Loaded {
    path: PathBuf,
    shown: PathBuf,
}

fn plan_path(ctx: &Context, args: &PlanArgs) -> Loaded {
    let ws = &ctx.workspace;
    let path = match &args.file {
        // A path typed on the command line is relative to where goodgo was started.
        Some(file) => ws.cwd.join(file),
        None => ws.resolve(&ws.settings.plan_file.value),
    };
    Loaded {
        shown: ws.display_path(&path),
        path,
    }
}

pub fn run(ctx: &Context, args: &PlanArgs, printer: &Printer) -> Result<ExitStatus> {
    let file = plan_path(ctx, args);
    let cache = ctx.workspace.root.join(".goodgo/cache");
    let plan = Plan::load_cached(&file.path, &file.shown, Some(&cache))?;
    let outcome = check::check(plan);
    if let PlanCommand::Check = args.command {
        return check_report(&file, &outcome, printer);
    }
    let Some(resolved) = outcome.resolved else {
        for d in outcome.errors() {
            printer.stderr(&format!("{}\n", d.render(&file.shown)));
        }
        let n = outcome.errors().count();
        return Err(UserError::input(format!(
            "{} has {n} error(s); nothing was computed",
            file.shown.display()
        ))
        .with_hint("fix them, then run `goodgo plan check`")
        .into());
    };
    match &args.command {
        PlanCommand::Check => unreachable_check(),
        PlanCommand::Waves { todo } => waves(&resolved, *todo, printer),
        PlanCommand::Next => next(&resolved, printer),
        PlanCommand::CriticalPath { all } => critical_path(&resolved, *all, printer),
        PlanCommand::Show { id } => show(&resolved, id, printer),
        PlanCommand::Status => status(ctx, &resolved, printer),
        PlanCommand::Set { id, status } => set(&file, &resolved, id, *status, printer),
        PlanCommand::Graph { format, output } => {
            let content = graph_text(ctx, &resolved, *format, printer.json())?;
            write_or_print(ctx, output.as_deref(), &content, printer)
        }
        PlanCommand::Render { check, output } => {
            render_cmd(ctx, &file, &resolved, *check, output.as_deref(), printer)
        }
    }
}

fn unreachable_check() -> Result<ExitStatus> {
    Ok(ExitStatus::Success)
}

fn check_report(file: &Loaded, outcome: &check::Outcome, printer: &Printer) -> Result<ExitStatus> {
    let errors = outcome.errors().count();
    let warnings = outcome.diagnostics.len() - errors;
    let mut text = String::new();
    for d in &outcome.diagnostics {
        let _ = writeln!(text, "{}", d.render(&file.shown));
    }
    let summary = match &outcome.resolved {
        Some(r) => format!(
            "{}: {} milestones, {} tasks, {} dependencies; {errors} errors, {warnings} warnings",
            file.shown.display(),
            r.plan.milestones.len(),
            r.plan.tasks.len(),
            r.deps.iter().map(Vec::len).sum::<usize>()
        ),
        None => format!(
            "{}: {errors} errors, {warnings} warnings",
            file.shown.display()
        ),
    };
    let value = json!({
        "file": file.shown,
        "ok": errors == 0,
        "errors": outcome.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect::<Vec<_>>(),
        "warnings": outcome.diagnostics.iter().filter(|d| d.severity == Severity::Warning).collect::<Vec<_>>(),
    });
    if printer.json() {
        printer.json_value(&value);
    } else {
        // Findings are the result of `check`: stdout, one `path:line:col: …` per line.
        printer.out(&text);
        printer.status(&summary);
    }
    Ok(if errors > 0 {
        ExitStatus::Error
    } else {
        ExitStatus::Success
    })
}

fn ids_of(r: &Resolved, list: &[usize]) -> Vec<String> {
    list.iter().map(|&i| r.ids[i].clone()).collect()
}

fn days(d: f64) -> serde_json::Value {
    if d.fract() == 0.0 && d.abs() < 1e15 {
        json!(d as i64)
    } else {
        json!(d)
    }
}

fn waves(r: &Resolved, todo: bool, printer: &Printer) -> Result<ExitStatus> {
    let include = if todo {
        r.unfinished()
    } else {
        vec![true; r.ids.len()]
    };
    let waves = graph::waves(&r.deps, &include, &r.ids).unwrap_or_default();
    let mut text = String::new();
    for (k, wave) in waves.iter().enumerate() {
        let _ = writeln!(text, "wave {:<3} {}", k + 1, ids_of(r, wave).join(" "));
    }
    if waves.is_empty() {
        text.push_str("nothing to schedule: every task is done\n");
    }
    let value = json!({ "waves": waves.iter().map(|w| ids_of(r, w)).collect::<Vec<_>>() });
    printer.report(&text, &value);
    Ok(ExitStatus::Success)
}

fn next(r: &Resolved, printer: &Printer) -> Result<ExitStatus> {
    let tails = graph::tails(&r.deps, &r.unfinished(), &r.weights()).unwrap_or_default();
    let mut ready: Vec<usize> = (0..r.ids.len()).filter(|&i| r.is_ready(i)).collect();
    ready.sort_by(|&a, &b| {
        let pa = r.task(a).priority.map_or(u8::MAX, |p| p as u8);
        let pb = r.task(b).priority.map_or(u8::MAX, |p| p as u8);
        pa.cmp(&pb)
            .then(tails[b].total_cmp(&tails[a]))
            .then(r.ids[a].cmp(&r.ids[b]))
    });
    let mut text = String::new();
    for &i in &ready {
        let t = r.task(i);
        let prio = t.priority.map_or("--".to_string(), |p| format!("{p:?}"));
        let _ = writeln!(
            text,
            "{:<10} {prio}  {:<34} {} · {} d of work on its longest chain",
            t.id, t.title, t.milestone, tails[i]
        );
    }
    if ready.is_empty() {
        text.push_str("nothing is ready: every unfinished task waits on another\n");
    }
    let items: Vec<_> = ready
        .iter()
        .map(|&i| {
            let t = r.task(i);
            json!({"id": t.id, "title": t.title, "milestone": t.milestone, "priority": t.priority, "chain_days": days(tails[i])})
        })
        .collect();
    printer.report(&text, &json!({ "next": items }));
    Ok(ExitStatus::Success)
}

fn critical_path(r: &Resolved, all: bool, printer: &Printer) -> Result<ExitStatus> {
    let include = if all {
        vec![true; r.ids.len()]
    } else {
        r.unfinished()
    };
    let (path, total) =
        graph::critical_path(&r.deps, &include, &r.weights(), &r.ids).unwrap_or_default();
    let mut text = String::new();
    for &i in &path {
        let t = r.task(i);
        let _ = writeln!(
            text,
            "{:<10} {:<34} {} d  [{}]",
            t.id,
            t.title,
            t.estimate,
            t.status.as_str()
        );
    }
    let _ = writeln!(text, "total: {total} d over {} task(s)", path.len());
    printer.report(
        &text,
        &json!({ "path": ids_of(r, &path), "days": days(total) }),
    );
    Ok(ExitStatus::Success)
}

fn find(r: &Resolved, id: &str) -> Result<usize> {
    r.find(id).ok_or_else(|| {
        let mut msg = format!("no task `{id}` in the plan");
        let names = r
            .ids
            .iter()
            .map(String::as_str)
            .chain(r.plan.tasks.iter().filter_map(|t| t.code.as_deref()));
        if let Some(best) = goodgo_yaml::did_you_mean(id, names) {
            msg.push_str(&format!(" (did you mean `{best}`?)"));
        }
        UserError::input(msg)
            .with_hint("`goodgo plan waves` lists every task id")
            .into()
    })
}

/// From `i`, follow unfinished dependencies (the one with the longest unfinished chain
/// behind it, then the smaller id) down to the first task that waits on nothing unfinished.
fn blocked_chain(r: &Resolved, i: usize) -> Vec<usize> {
    let unfinished = r.unfinished();
    let order = graph::topo_order(&r.deps, &unfinished).unwrap_or_default();
    let mut head = vec![0.0f64; r.ids.len()];
    for &k in &order {
        head[k] = r.task(k).estimate
            + r.deps[k]
                .iter()
                .filter(|&&d| unfinished[d])
                .map(|&d| head[d])
                .fold(0.0, f64::max);
    }
    let mut chain = vec![i];
    loop {
        let cur = chain[chain.len() - 1];
        let next = r.deps[cur]
            .iter()
            .copied()
            .filter(|&d| unfinished[d])
            .reduce(|a, b| {
                if head[b] > head[a] || (head[b] == head[a] && r.ids[b] < r.ids[a]) {
                    b
                } else {
                    a
                }
            });
        match next {
            Some(n) => chain.push(n),
            None => break chain,
        }
    }
}

fn show(r: &Resolved, id: &str, printer: &Printer) -> Result<ExitStatus> {
    let i = find(r, id)?;
    let t = r.task(i);
    let milestone = r.plan.milestones.iter().find(|m| m.id == t.milestone);
    let line = |k: usize| {
        let d = r.task(k);
        format!("{} {} [{}]", d.id, d.title, d.status.as_str())
    };
    let mut text = String::new();
    let code = t
        .code
        .as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let _ = writeln!(text, "{}{code}  {}", t.id, t.title);
    if let Some(m) = milestone {
        let phase = m.phase.map(|p| format!(", phase {p}")).unwrap_or_default();
        let _ = writeln!(text, "  milestone   {} {}{phase}", m.id, m.name);
    }
    let prio = t
        .priority
        .map(|p| format!(", priority {p:?}"))
        .unwrap_or_default();
    let sprint = t
        .sprint
        .map(|s| format!(", sprint {s}"))
        .unwrap_or_default();
    let _ = writeln!(
        text,
        "  status      {}{prio}{sprint}, estimate {} d",
        t.status.as_str(),
        t.estimate
    );
    for (label, list) in [("depends on", &r.deps[i]), ("unblocks", &r.dependents[i])] {
        if list.is_empty() {
            let _ = writeln!(text, "  {label:<11} nothing");
        }
        for (k, &d) in list.iter().enumerate() {
            let _ = writeln!(
                text,
                "  {:<11} {}",
                if k == 0 { label } else { "" },
                line(d)
            );
        }
    }
    let ready = r.is_ready(i);
    let chain = if t.status.is_done() || ready {
        Vec::new()
    } else {
        blocked_chain(r, i)
    };
    if t.status.is_done() {
        text.push_str("  done\n");
    } else if ready {
        text.push_str("  ready: every dependency is done\n");
    } else if chain.len() > 1 {
        let _ = writeln!(text, "  blocked     {}", ids_of(r, &chain).join(" -> "));
        let first = chain[chain.len() - 1];
        let _ = writeln!(
            text,
            "              first unfinished blocker: {}",
            line(first)
        );
    } else {
        let _ = writeln!(
            text,
            "  not ready   its own status is {}",
            t.status.as_str()
        );
    }
    let brief = |list: &[usize]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|&k| json!({"id": r.ids[k], "title": r.task(k).title, "status": r.task(k).status}))
            .collect()
    };
    let value = json!({
        "task": {"id": t.id, "code": t.code, "title": t.title, "milestone": t.milestone, "status": t.status,
                  "priority": t.priority, "sprint": t.sprint, "estimate": t.estimate},
        "deps": brief(&r.deps[i]),
        "unblocks": brief(&r.dependents[i]),
        "ready": ready,
        "blocked_chain": ids_of(r, &chain),
    });
    printer.report(&text, &value);
    Ok(ExitStatus::Success)
}

/// Commits whose message names a task id, newest first, read with libgit2.
fn evidence(root: &Path, r: &Resolved) -> Result<HashMap<String, Vec<(String, String)>>, String> {
    let repo = git2::Repository::discover(root).map_err(|e| e.message().to_string())?;
    let mut walk = repo.revwalk().map_err(|e| e.message().to_string())?;
    if walk.push_head().is_err() {
        return Ok(HashMap::new()); // no commits yet
    }
    let mut found: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for oid in walk.take(20_000).flatten() {
        let Ok(commit) = repo.find_commit(oid) else {
            continue;
        };
        let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
        let summary = message.lines().next().unwrap_or("").to_string();
        let mut named: Vec<&str> = message
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| r.index.contains_key(*w))
            .collect();
        named.sort();
        named.dedup();
        let short = oid.to_string()[..10].to_string();
        for id in named {
            found
                .entry(id.to_string())
                .or_default()
                .push((short.clone(), summary.clone()));
        }
    }
    Ok(found)
}

fn status(ctx: &Context, r: &Resolved, printer: &Printer) -> Result<ExitStatus> {
    let mut text = String::new();
    let mut rows = Vec::new();
    let width = r
        .plan
        .milestones
        .iter()
        .map(|m| m.id.len() + m.name.len() + 1)
        .max()
        .unwrap_or(0);
    let green = printer.style(anstyle::AnsiColor::Green.on_default());
    for m in &r.plan.milestones {
        let tasks: Vec<_> = r
            .plan
            .tasks
            .iter()
            .filter(|t| t.milestone == m.id)
            .collect();
        let done = tasks.iter().filter(|t| t.status.is_done()).count();
        let total = tasks.len();
        let filled = (done * 20).checked_div(total).unwrap_or(0);
        let bar = format!(
            "{green}{}{green:#}{}",
            "#".repeat(filled),
            ".".repeat(20 - filled)
        );
        let name = format!("{} {}", m.id, m.name);
        let _ = writeln!(text, "{name:<width$}  [{bar}] {done:>3}/{total:<3}");
        rows.push(json!({"id": m.id, "name": m.name, "done": done, "total": total}));
    }
    let total = r.ids.len();
    let done = r.plan.tasks.iter().filter(|t| t.status.is_done()).count();
    let _ = writeln!(text, "{:<width$}  {done}/{total} tasks done", "all");
    let evidence = evidence(&ctx.workspace.root, r);
    match &evidence {
        Ok(found) if !found.is_empty() => {
            text.push_str("\nevidence (commits naming a task):\n");
            for id in &r.ids {
                for (sha, summary) in found.get(id).into_iter().flatten() {
                    let _ = writeln!(text, "  {id:<10} {sha} {summary}");
                }
            }
        }
        Ok(_) => text.push_str("\nno commit names a task id yet\n"),
        Err(why) => {
            let _ = writeln!(text, "\nno commit evidence: {why}");
        }
    }
    let evidence_json: serde_json::Map<String, serde_json::Value> = evidence
        .as_ref()
        .map(|found| {
            found
                .iter()
                .map(|(id, list)| {
                    let commits: Vec<_> = list
                        .iter()
                        .map(|(sha, s)| json!({"commit": sha, "summary": s}))
                        .collect();
                    (id.clone(), json!(commits))
                })
                .collect()
        })
        .unwrap_or_default();
    let value =
        json!({"milestones": rows, "done": done, "total": total, "evidence": evidence_json});
    printer.report(&text, &value);
    Ok(ExitStatus::Success)
}

fn set(
    file: &Loaded,
    r: &Resolved,
    id: &str,
    new: PlanStatus,
    printer: &Printer,
) -> Result<ExitStatus> {
    let i = find(r, id)?;
    let status = match new {
        PlanStatus::Todo => Status::Todo,
        PlanStatus::Doing => Status::Doing,
        PlanStatus::Done => Status::Done,
        PlanStatus::Blocked => Status::Blocked,
    };
    let task = r.task(i);
    let old = task.status;
    let text = std::fs::read_to_string(&file.path)
        .with_context(|| format!("reading {}", file.shown.display()))?;
    // Lose nothing: the edited text must re-read to the same plan with only this status
    // changed, or nothing is written.
    let edited = goodgo_plan::edit::set_status_checked(&file.shown, &text, &r.plan, i, status)
        .map_err(|e| {
            UserError::failed(format!("{e}; {} was left as it was", file.shown.display()))
                .with_hint("edit its `status:` by hand")
        })?;
    if edited != text {
        let tmp = file.path.with_extension("yaml.goodgo-tmp");
        std::fs::write(&tmp, &edited).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &file.path)
            .with_context(|| format!("replacing {}", file.shown.display()))?;
    }
    let msg = format!("{}: {} -> {}\n", task.id, old.as_str(), status.as_str());
    printer.report(
        &msg,
        &json!({"id": task.id, "from": old, "to": status, "file": file.shown}),
    );
    Ok(ExitStatus::Success)
}

fn write_or_print(
    ctx: &Context,
    output: Option<&Path>,
    content: &str,
    printer: &Printer,
) -> Result<ExitStatus> {
    match output {
        Some(path) => {
            let path = ctx.workspace.cwd.join(path);
            std::fs::write(&path, content)
                .with_context(|| format!("writing {}", path.display()))?;
            let shown = ctx.workspace.display_path(&path);
            if printer.json() {
                printer.json_value(&json!({ "file": shown }));
            } else {
                printer.status(&format!("wrote {}", shown.display()));
            }
        }
        None => printer.stdout_raw(content),
    }
    Ok(ExitStatus::Success)
}

/// The graph drawn in `format`; `json` (the global `--json`, which promises JSON on stdout)
/// selects the JSON graph whatever `--format` says.
fn graph_text(ctx: &Context, r: &Resolved, format: GraphFormat, json: bool) -> Result<String> {
    let format = if json { GraphFormat::Json } else { format };
    Ok(match format {
        GraphFormat::Mermaid => render::mermaid(r),
        GraphFormat::Dot => render::dot(r),
        GraphFormat::Json => {
            let mut s = serde_json::to_string_pretty(&render::json(r))?;
            s.push('\n');
            s
        }
        GraphFormat::Html => {
            render::html(r, &format!("{} plan", ctx.workspace.settings.name.value))
        }
    })
}

fn render_cmd(
    ctx: &Context,
    file: &Loaded,
    r: &Resolved,
    check: bool,
    output: Option<&Path>,
    printer: &Printer,
) -> Result<ExitStatus> {
    let target = match output {
        Some(p) => ctx.workspace.cwd.join(p),
        None => ctx.workspace.root.join("docs/IMPLEMENTATION_PLAN.md"),
    };
    let shown = ctx.workspace.display_path(&target);
    // The header names the plan relative to the workspace, whatever folder ran the command.
    let source = file
        .path
        .strip_prefix(&ctx.workspace.root)
        .unwrap_or(&file.path)
        .display()
        .to_string();
    let content = render::markdown(r, &source);
    let current = std::fs::read_to_string(&target).ok();
    let fresh = current.as_deref() == Some(content.as_str());
    if check {
        let value = json!({"file": shown, "fresh": fresh});
        if fresh {
            printer.report(&format!("{} is up to date\n", shown.display()), &value);
            return Ok(ExitStatus::Success);
        }
        printer.report(
            &format!("{} is stale: run `goodgo plan render`\n", shown.display()),
            &value,
        );
        return Ok(ExitStatus::Failure);
    }
    if !fresh {
        std::fs::write(&target, &content)
            .with_context(|| format!("writing {}", shown.display()))?;
    }
    let verb = if fresh { "unchanged" } else { "wrote" };
    printer.report(
        &format!("{verb} {}\n", shown.display()),
        &json!({"file": shown, "changed": !fresh}),
    );
    Ok(ExitStatus::Success)
}
