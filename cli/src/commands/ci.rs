//! `goodgo ci [STEP…]`: runs `ci/pipeline.yaml`'s steps in dependency order, at most `-j`
//! at a time, each replayed from the content-addressed cache when its key is stored.
//!
//! The pipeline model, keys, cache and reports are in `goodgo-ci`; this module selects the
//! steps (named, `--affected`), schedules them on threads, prints and writes the reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use goodgo_ci::cache::{Cache, collect_outputs};
use goodgo_ci::key::{self, FileIndex, KeyParts, Workspace};
use goodgo_ci::report::{Outcome, StepResult};
use goodgo_ci::{Pipeline, PipelineError};
use serde_json::json;

use super::Context;
use crate::args::{CiArgs, PipelineArgs};
use crate::error::{ExitStatus, UserError};
use crate::printer::Printer;

#[path = "ci_affected.rs"]
mod affected;
#[path = "ci_report.rs"]
mod report_view;
#[path = "ci_services.rs"]
mod services;

use report_view::{finish, show};

/// What the key computation needs, gathered once per run.
struct Inputs {
    ws: Workspace,
    index: FileIndex,
    index_path: PathBuf,
    env: Vec<(String, String)>,
    tools: BTreeMap<String, String>,
}

impl Inputs {
    /// Writes the file index back, without the files that are gone. A failure costs only
    /// speed (the next run hashes again), so it is not an error.
    fn save_index(&mut self) {
        let present: std::collections::HashSet<&str> =
            self.ws.files.iter().map(String::as_str).collect();
        self.index.retain(&present);
        let _ = self.index.save(&self.index_path);
    }

    fn parts(&mut self, p: &Pipeline, i: usize, keys: &[Option<String>]) -> Result<KeyParts> {
        let deps = p.deps[i]
            .iter()
            .map(|&d| (p.ids[d].clone(), keys[d].clone().unwrap_or_default()))
            .collect();
        key::parts(
            &p.steps[i],
            i,
            &self.ws,
            &mut self.index,
            &self.env,
            &self.tools,
            deps,
        )
        .with_context(|| format!("cannot hash the inputs of step `{}`", p.ids[i]))
    }
}

/// The pipeline `args` names (relative to where goodgo runs), else the workspace's
/// ci/pipeline.yaml, and its path as shown; an invalid one's located errors are printed
/// after the first, which the error carries.
pub(super) fn load_pipeline(
    ctx: &Context,
    args: &PipelineArgs,
    printer: &Printer,
) -> Result<(Pipeline, PathBuf)> {
    let ws = &ctx.workspace;
    let path = match &args.file {
        Some(f) => ws.cwd.join(f),
        None => ws.root.join("ci/pipeline.yaml"),
    };
    let shown = ws.display_path(&path);
    match Pipeline::load(&path, &shown) {
        Ok(p) => Ok((p, shown)),
        Err(e @ PipelineError::Invalid { .. }) => {
            for line in e.lines().iter().skip(1) {
                printer.stderr(&format!("{line}\n"));
            }
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

pub fn run(ctx: &Context, args: &CiArgs, printer: &Printer) -> Result<ExitStatus> {
    let (pipeline, shown) = load_pipeline(ctx, &args.pipeline, printer)?;
    run_loaded(ctx, pipeline, &shown, args, printer)
}

/// Runs a loaded pipeline (`goodgo test` adjusts its test steps first).
pub(super) fn run_loaded(
    ctx: &Context,
    pipeline: Pipeline,
    shown: &Path,
    args: &CiArgs,
    printer: &Printer,
) -> Result<ExitStatus> {
    let ws = &ctx.workspace;
    let root = ws.root.clone();
    let n = pipeline.steps.len();

    // Which steps: those named (all by default) and what they depend on.
    let mut include = vec![args.steps.is_empty(); n];
    for name in &args.steps {
        let Some(i) = pipeline.ids.iter().position(|id| id == name) else {
            let mut err = UserError::input(format!("no step `{name}` in {}", shown.display()));
            if let Some(best) =
                goodgo_yaml::did_you_mean(name, pipeline.ids.iter().map(String::as_str))
            {
                err = err.with_hint(format!("did you mean `{best}`?"));
            }
            return Err(err.into());
        };
        include[i] = true;
    }
    close_over_deps(&pipeline, &mut include);

    let cache_dir = match &args.cache.cache_dir {
        Some(d) => ws.cwd.join(d),
        None => match std::env::var_os("GOODGO_CI_CACHE").filter(|v| !v.is_empty()) {
            Some(d) => ws.cwd.join(d),
            None => root.join(".goodgo/cache/ci"),
        },
    };
    let cache = Cache::open(&cache_dir)
        .with_context(|| format!("cannot open the cache at {}", cache_dir.display()))?;
    let mut tools = BTreeMap::new();
    for (i, step) in pipeline.steps.iter().enumerate() {
        for t in step.tools.iter().filter(|_| include[i]) {
            if !tools.contains_key(t) {
                tools.insert(t.clone(), key::tool_version(t));
            }
        }
    }
    let index_path = cache_dir.join("index.json");
    let mut inputs = Inputs {
        ws: Workspace::walk(&root, &pipeline.steps),
        index: FileIndex::load(&index_path),
        index_path,
        env: std::env::vars().collect(),
        tools,
    };

    if args.affected.affected {
        let changed = affected::changed_files(&root, args.affected.base.as_deref())?;
        let picked = affected::select(&pipeline, &include, &changed, &inputs.ws);
        printer.debug(&format!("{} changed file(s) since the base", changed.len()));
        include = picked;
        close_over_deps(&pipeline, &mut include);
    }

    if let Some(step) = &args.explain {
        return explain(&pipeline, &mut inputs, &cache, step, printer);
    }
    let order = goodgo_ci::graph::topo_order(&pipeline.deps, &include)
        .map_err(|_| anyhow::anyhow!("the pipeline has a cycle"))?;
    if args.dry_run {
        return dry_run(&pipeline, &mut inputs, &cache, &order, args, printer);
    }
    let postgres = if order.iter().any(|&i| {
        pipeline.steps[i]
            .services
            .contains(&goodgo_ci::model::Service::Postgres)
    }) {
        Some(services::Postgres::prepare(ctx)?)
    } else {
        None
    };
    stop_steps_on_interrupt()?;
    let started = Instant::now();
    let results = schedule(
        &pipeline,
        &mut inputs,
        &cache,
        &order,
        postgres.as_ref(),
        args,
        printer,
    )?;
    inputs.save_index();
    finish(
        &pipeline,
        &include,
        &results,
        started.elapsed(),
        args,
        printer,
    )
}

/// On SIGINT or SIGTERM: kill the running steps' process groups and exit 130. The signals
/// are registered before this returns (a step started after it is covered); the waiting
/// happens on a thread of its own.
fn stop_steps_on_interrupt() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    let (mut int, mut term) = {
        let _entered = runtime.enter();
        (
            signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        )
    };
    std::thread::spawn(move || {
        runtime.block_on(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            goodgo_ci::run::stop_all();
            std::process::exit(i32::from(ExitStatus::Interrupted.code()));
        });
    });
    Ok(())
}

/// Adds every dependency of an included step, transitively.
fn close_over_deps(p: &Pipeline, include: &mut [bool]) {
    let mut stack: Vec<usize> = (0..include.len()).filter(|&i| include[i]).collect();
    while let Some(i) = stack.pop() {
        for &d in &p.deps[i] {
            if !include[d] {
                include[d] = true;
                stack.push(d);
            }
        }
    }
}

fn explain(
    p: &Pipeline,
    inputs: &mut Inputs,
    cache: &Cache,
    step: &str,
    printer: &Printer,
) -> Result<ExitStatus> {
    let Some(target) = p.ids.iter().position(|id| id == step) else {
        return Err(UserError::input(format!("no step `{step}` in the pipeline")).into());
    };
    let mut include = vec![false; p.steps.len()];
    include[target] = true;
    close_over_deps(p, &mut include);
    let order = goodgo_ci::graph::topo_order(&p.deps, &include)
        .map_err(|_| anyhow::anyhow!("the pipeline has a cycle"))?;
    let mut keys: Vec<Option<String>> = vec![None; p.steps.len()];
    let mut all: Vec<Option<KeyParts>> = vec![None; p.steps.len()];
    for &i in &order {
        let parts = inputs.parts(p, i, &keys)?;
        keys[i] = Some(parts.key());
        all[i] = Some(parts);
    }
    let now = all[target].clone().unwrap_or_default();
    inputs.save_index();
    let key = keys[target].clone().unwrap_or_default();
    let (verdict, reasons) = if !p.steps[target].cache {
        ("run", vec!["the step has `cache: false`".to_string()])
    } else if cache.contains(&key) {
        ("hit", Vec::new())
    } else {
        match cache.last(step) {
            None => (
                "run",
                vec!["no entry of this step is stored yet".to_string()],
            ),
            Some(before) => {
                let mut why = key::explain(&before, &now);
                // A changed dependency: say what changed in it, down to the first cause.
                why = why
                    .into_iter()
                    .flat_map(|line| dependency_causes(p, cache, &all, &before, &now, line))
                    .collect();
                if why.is_empty() {
                    why.push("the entry with this key was removed or is corrupted".to_string());
                }
                ("run", why)
            }
        }
    };
    let mut text = match verdict {
        "hit" => format!("{step}: cache hit ({})\n", &key[..12]),
        _ => format!("{step}: will run ({}), because:\n", &key[..12]),
    };
    for r in &reasons {
        text.push_str(&format!("  - {r}\n"));
    }
    printer.report(
        &text,
        &json!({"step": step, "key": key, "verdict": verdict, "reasons": reasons}),
    );
    Ok(ExitStatus::Success)
}

/// `line`, followed (indented) by why a dependency it names changed, recursively.
fn dependency_causes(
    p: &Pipeline,
    cache: &Cache,
    all: &[Option<KeyParts>],
    before: &KeyParts,
    now: &KeyParts,
    line: String,
) -> Vec<String> {
    let mut out = vec![line.clone()];
    for (dep, dep_key) in &now.deps {
        if before.deps.get(dep).is_none_or(|k| k == dep_key)
            || !line.starts_with(&format!("dependency `{dep}` changed"))
        {
            continue;
        }
        let Some(j) = p.ids.iter().position(|id| id == dep) else {
            continue;
        };
        let (Some(old), Some(new)) = (cache.last(dep), all[j].as_ref()) else {
            continue;
        };
        for cause in key::explain(&old, new) {
            for nested in dependency_causes(p, cache, all, &old, new, cause) {
                out.push(format!("  {nested}"));
            }
        }
    }
    out
}

fn dry_run(
    p: &Pipeline,
    inputs: &mut Inputs,
    cache: &Cache,
    order: &[usize],
    _args: &CiArgs,
    printer: &Printer,
) -> Result<ExitStatus> {
    let mut keys: Vec<Option<String>> = vec![None; p.steps.len()];
    let mut text = String::new();
    let mut rows = Vec::new();
    for &i in order {
        let parts = inputs.parts(p, i, &keys)?;
        let key = parts.key();
        let hit = p.steps[i].cache && cache.contains(&key);
        let what = if hit { "cached" } else { "run" };
        text.push_str(&format!(
            "{:<7} {}  {}\n",
            what,
            p.ids[i],
            p.steps[i].command_line()
        ));
        rows.push(json!({"step": p.ids[i], "key": key, "would": what}));
        keys[i] = Some(key);
    }
    inputs.save_index();
    printer.report(&text, &json!({"steps": rows}));
    Ok(ExitStatus::Success)
}

/// A finished step, sent from its worker thread.
struct Done {
    index: usize,
    result: StepResult,
    key: String,
}

fn schedule(
    p: &Pipeline,
    inputs: &mut Inputs,
    cache: &Cache,
    order: &[usize],
    postgres: Option<&services::Postgres>,
    args: &CiArgs,
    printer: &Printer,
) -> Result<Vec<(usize, StepResult)>> {
    let jobs = args
        .pipeline
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let n = p.steps.len();
    let mut keys: Vec<Option<String>> = vec![None; n];
    let mut outcome: Vec<Option<Outcome>> = vec![None; n];
    let mut started = vec![false; n];
    let mut results = Vec::new();
    let mut running = 0usize;
    let (tx, rx) = mpsc::channel::<Done>();
    // One live line per running step (on a terminal); finished steps print above them.
    let lines = printer.lines();
    let mut bars: Vec<Option<indicatif::ProgressBar>> = vec![None; n];
    let root = inputs.ws.root.clone();
    let use_cache = !args.cache.no_cache;
    std::thread::scope(|scope| -> Result<()> {
        loop {
            // Start what is ready, in order, up to the cap; skip what a failure blocks.
            for &i in order {
                if started[i] {
                    continue;
                }
                if p.deps[i].iter().any(|&d| outcome[d].is_none()) {
                    continue;
                }
                if let Some(&bad) = p.deps[i]
                    .iter()
                    .find(|&&d| !outcome[d].as_ref().is_some_and(Outcome::ok))
                {
                    started[i] = true;
                    let why = format!("dependency `{}` did not succeed", p.ids[bad]);
                    let result = StepResult {
                        id: p.ids[i].clone(),
                        outcome: Outcome::Skipped(why),
                        duration: Duration::ZERO,
                        log: String::new(),
                        junit: p.steps[i].junit,
                    };
                    show(&result, "", printer, args);
                    outcome[i] = Some(result.outcome.clone());
                    results.push((i, result));
                    continue;
                }
                if running >= jobs {
                    continue;
                }
                let parts = inputs.parts(p, i, &keys)?;
                keys[i] = Some(parts.key());
                started[i] = true;
                running += 1;
                let step = &p.steps[i];
                bars[i] = Some(printer.job_line(&lines, &p.ids[i], &step.command_line()));
                let tx = tx.clone();
                let root = root.clone();
                scope.spawn(move || {
                    let result = run_one(
                        step,
                        &parts,
                        cache,
                        &root,
                        use_cache && step.cache,
                        postgres,
                    );
                    let _ = tx.send(Done {
                        index: i,
                        result,
                        key: parts.key(),
                    });
                });
            }
            if running == 0 {
                break;
            }
            let Ok(done) = rx.recv() else { break };
            running -= 1;
            if let Some(bar) = bars[done.index].take() {
                bar.finish_and_clear();
            }
            lines.suspend(|| show(&done.result, &done.key, printer, args));
            outcome[done.index] = Some(done.result.outcome.clone());
            results.push((done.index, done.result));
        }
        Ok(())
    })?;
    let _ = lines.clear();
    Ok(results)
}

/// Looks the step up under its entry's lock; replays a hit, or runs it and stores success.
fn run_one(
    step: &goodgo_ci::Step,
    parts: &KeyParts,
    cache: &Cache,
    root: &Path,
    use_cache: bool,
    postgres: Option<&services::Postgres>,
) -> StepResult {
    let key = parts.key();
    let lock = if use_cache {
        cache.lock(&key).ok()
    } else {
        None
    };
    let started = Instant::now();
    if lock.is_some()
        && let Some(hit) = cache.lookup(&key)
        && cache.restore(&hit, root).is_ok()
    {
        return StepResult {
            id: step.id.clone(),
            outcome: Outcome::Cached,
            duration: started.elapsed(),
            log: String::from_utf8_lossy(&hit.log).into_owned(),
            junit: step.junit,
        };
    }
    let mut env = vec![
        ("GOODGO_CI".to_string(), "1".to_string()),
        ("GOODGO_CI_STEP".to_string(), step.id.clone()),
    ];
    let mut database = None;
    if step.services.contains(&goodgo_ci::model::Service::Postgres)
        && let Some(pg) = postgres
    {
        match pg.provision() {
            Ok((db, vars)) => {
                env.extend(vars);
                database = Some(db);
            }
            Err(e) => {
                return StepResult {
                    id: step.id.clone(),
                    outcome: Outcome::Failed(format!("cannot provision its database: {e:#}")),
                    duration: started.elapsed(),
                    log: String::new(),
                    junit: step.junit,
                };
            }
        }
    }
    let finished = goodgo_ci::run::run_step(step, root, &env);
    if let Some(db) = database {
        db.remove();
    }
    let mut log = String::from_utf8_lossy(&finished.log).into_owned();
    let outcome = if finished.exit.success() {
        if lock.is_some() {
            let outputs = collect_outputs(root, &step.outputs, &step.outputs_set);
            let ms = finished.duration.as_millis() as u64;
            if let Err(e) = cache.store(parts, &step.id, &finished.log, &outputs, root, ms) {
                log.push_str(&format!(
                    "\n[goodgo] warning: could not store the result: {e}\n"
                ));
            }
        }
        Outcome::Passed
    } else if step.allow_failure {
        Outcome::AllowedFailure(finished.exit.describe())
    } else {
        Outcome::Failed(finished.exit.describe())
    };
    drop(lock);
    StepResult {
        id: step.id.clone(),
        outcome,
        duration: finished.duration,
        log,
        junit: step.junit,
    }
}
