//! `goodgo k6`: load tests with the real k6 on the scenarios in `ci/k6/`.
//!
//! - `run`: each scenario against an API ([`target`]: `--base-url`, or one started here on a
//!   seeded database and stopped afterwards), a table per endpoint, exit 1 when a threshold
//!   of the script was crossed. Every run is kept under `.goodgo/k6/runs/<scenario>/`.
//! - `baseline save`: N runs, the median and spread of each metric, stored with the commit,
//!   machine and date in `docs/perf/baselines/<scenario>.json` ([`baseline`]).
//! - `compare`: one more run judged against the baseline; exit 1 when p95 or the error
//!   rate is worse than the larger of the tolerance and the baseline's noise.
//! - `report`: one self-contained HTML page of trends and the latest histogram ([`report`]).

mod baseline;
mod report;
mod results;
mod runner;
mod target;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde_json::json;

use self::baseline::{Baseline, Machine};
use self::results::RunResult;
use super::Context;
use crate::args::{K6Args, K6BaselineCommand, K6Command, K6Load};
use crate::error::{ExitStatus, UserError};
use crate::printer::Printer;

/// Where the scenarios live, relative to the workspace.
const SCENARIOS_DIR: &str = "ci/k6";
/// Where baselines are stored, relative to the workspace.
const BASELINES_DIR: &str = "docs/perf/baselines";
/// The scenario `baseline save` and `compare` use when none is named.
const DEFAULT_SCENARIO: &str = "search";

pub fn run(ctx: &Context, args: &K6Args, printer: &Printer) -> Result<ExitStatus> {
    match &args.command {
        K6Command::Run { scenarios, load } => run_scenarios(ctx, scenarios, load, printer),
        K6Command::Baseline {
            command:
                K6BaselineCommand::Save {
                    scenario,
                    runs,
                    load,
                },
        } => save(ctx, scenario.as_deref(), *runs, load, printer),
        K6Command::Compare {
            scenario,
            tolerance,
            force,
            load,
        } => compare(ctx, scenario.as_deref(), *tolerance, *force, load, printer),
        K6Command::Report { output } => report::write(ctx, output.as_deref(), printer),
    }
}

/// Now, RFC 3339 in UTC to the second.
pub(crate) fn now() -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_default()
}

/// The script of scenario `name`; an unknown name is bad input naming what there is.
fn script(ctx: &Context, name: &str) -> Result<PathBuf> {
    let dir = ctx.workspace.root.join(SCENARIOS_DIR);
    let path = dir.join(format!("{name}.js"));
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid && path.is_file() {
        return Ok(path);
    }
    let known = scenarios(&dir);
    Err(UserError::input(format!("unknown scenario `{name}`"))
        .with_hint(if known.is_empty() {
            format!("there are no scenarios: add k6 scripts to {SCENARIOS_DIR}/")
        } else {
            format!("scenarios in {SCENARIOS_DIR}/: {}", known.join(", "))
        })
        .into())
}

/// The scenario names in `dir` (its `*.js` files except the shared `lib.js`), sorted.
fn scenarios(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".js")?;
            (stem != "lib").then(|| stem.to_string())
        })
        .collect();
    names.sort();
    names
}

/// Where runs are kept.
fn runs_dir(ctx: &Context) -> PathBuf {
    ctx.workspace.root.join(".goodgo/k6/runs")
}

/// Runs one scenario and keeps its result.
fn measure(
    ctx: &Context,
    k6: &Path,
    name: &str,
    script: &Path,
    base_url: &str,
    load: &K6Load,
    printer: &Printer,
) -> Result<runner::Outcome> {
    let work = ctx.workspace.root.join(".goodgo/k6/work").join(name);
    let outcome = runner::run(k6, script, name, base_url, load, &work, printer)?;
    let dir = runs_dir(ctx).join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp: String = outcome
        .result
        .date
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let mut file = dir.join(format!("{stamp}.json"));
    let mut n = 1;
    while file.exists() {
        n += 1;
        file = dir.join(format!("{stamp}-{n}.json"));
    }
    std::fs::write(&file, serde_json::to_string_pretty(&outcome.result)?)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(outcome)
}

fn run_scenarios(
    ctx: &Context,
    names: &[String],
    load: &K6Load,
    printer: &Printer,
) -> Result<ExitStatus> {
    let names: Vec<String> = if names.is_empty() {
        vec!["smoke".into()]
    } else {
        names.to_vec()
    };
    let scripts = names
        .iter()
        .map(|n| script(ctx, n))
        .collect::<Result<Vec<_>>>()?;
    let k6 = runner::find()?;
    let failed = target::with_api(ctx, load, printer, |base_url| {
        let mut failed = Vec::new();
        for (name, script) in names.iter().zip(&scripts) {
            let outcome = measure(ctx, &k6, name, script, base_url, load, printer)?;
            show_run(&outcome, printer);
            if outcome.crossed {
                failed.push(name.clone());
            }
        }
        Ok(failed)
    })?;
    if failed.is_empty() {
        Ok(ExitStatus::Success)
    } else {
        Err(
            UserError::failed(format!("thresholds crossed in {}", failed.join(", ")))
                .with_hint("see the ✗ lines above; the thresholds are in each script's options")
                .into(),
        )
    }
}

/// A run's table (or JSON line) and its crossed thresholds.
fn show_run(outcome: &runner::Outcome, printer: &Printer) {
    let r = &outcome.result;
    if printer.json() {
        let mut value = serde_json::to_value(r).unwrap_or_default();
        value["passed"] = json!(!outcome.crossed);
        printer.json_line(&value);
        return;
    }
    let mut text = format!(
        "{}: {} requests, checks {}/{}\n",
        r.scenario,
        r.overall.requests,
        r.checks_passed,
        r.checks_passed + r.checks_failed
    );
    text.push_str(&results::table(r));
    for t in r.crossed() {
        text.push_str(&format!(
            "✗ threshold {} {} crossed\n",
            t.metric, t.expression
        ));
    }
    text.push('\n');
    printer.out(&text);
}

fn commit(root: &Path) -> String {
    git2::Repository::discover(root)
        .ok()
        .and_then(|repo| {
            let id = repo.head().ok()?.peel_to_commit().ok()?.id().to_string();
            Some(id[..12.min(id.len())].to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn baseline_path(ctx: &Context, scenario: &str) -> PathBuf {
    ctx.workspace
        .root
        .join(BASELINES_DIR)
        .join(format!("{scenario}.json"))
}

/// The scenario `baseline save` and `compare` use: the one named, else [`DEFAULT_SCENARIO`],
/// and its script.
fn named_or_default<'a>(ctx: &Context, scenario: Option<&'a str>) -> Result<(&'a str, PathBuf)> {
    let name = scenario.unwrap_or(DEFAULT_SCENARIO);
    Ok((name, script(ctx, name)?))
}

fn save(
    ctx: &Context,
    scenario: Option<&str>,
    runs: u32,
    load: &K6Load,
    printer: &Printer,
) -> Result<ExitStatus> {
    let (name, script) = named_or_default(ctx, scenario)?;
    let k6 = runner::find()?;
    let results: Vec<RunResult> = target::with_api(ctx, load, printer, |base_url| {
        (1..=runs)
            .map(|i| {
                printer.status(&format!("{name}: run {i} of {runs}"));
                let o = measure(ctx, &k6, name, &script, base_url, load, printer)?;
                if o.crossed {
                    printer.warn(&format!(
                        "run {i} crossed a threshold of {name}; it still counts"
                    ));
                }
                Ok(o.result)
            })
            .collect()
    })?;
    let base = Baseline::from_runs(
        name,
        &commit(&ctx.workspace.root),
        &now(),
        Machine::here(),
        load.knobs.clone(),
        &results,
    );
    let path = baseline_path(ctx, name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&base)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    let shown = ctx.workspace.display_path(&path);
    let m = &base.metrics;
    printer.report(
        &format!(
            "saved {} ({} runs on {} cores, {}): p50 {} · p95 {} ({}–{}) · errors {:.2}%\n",
            shown.display(),
            base.runs,
            base.machine.cores,
            base.machine.cpu,
            results::ms(m.p50_ms.median),
            results::ms(m.p95_ms.median),
            results::ms(m.p95_ms.min),
            results::ms(m.p95_ms.max),
            m.error_rate.median * 100.0
        ),
        &json!({"saved": shown, "baseline": base}),
    );
    Ok(ExitStatus::Success)
}

fn compare(
    ctx: &Context,
    scenario: Option<&str>,
    tolerance_pct: f64,
    force: bool,
    load: &K6Load,
    printer: &Printer,
) -> Result<ExitStatus> {
    let (name, script) = named_or_default(ctx, scenario)?;
    if !(0.0..=1000.0).contains(&tolerance_pct) {
        return Err(UserError::input("--tolerance must be between 0 and 1000 (percent)").into());
    }
    let path = baseline_path(ctx, name);
    let shown = ctx.workspace.display_path(&path);
    if !path.is_file() {
        return Err(
            UserError::input(format!("no baseline for `{name}` ({})", shown.display()))
                .with_hint(format!("save one first: goodgo k6 baseline save {name}"))
                .into(),
        );
    }
    let base = Baseline::load(&path, &shown)?;
    let here = Machine::here();
    if base.machine != here && !force {
        return Err(UserError::input(format!(
            "{} was measured on another machine ({} cores, {}); this one has {} cores, {}: latencies are not comparable",
            shown.display(),
            base.machine.cores,
            base.machine.cpu,
            here.cores,
            here.cpu
        ))
        .with_hint(format!(
            "save a baseline here (goodgo k6 baseline save {name}) or pass --force"
        ))
        .into());
    }
    // The baseline's load, unless a flag says otherwise.
    let load = K6Load {
        knobs: load.knobs.or(&base.load),
        ..load.clone()
    };
    let k6 = runner::find()?;
    let outcome = target::with_api(ctx, &load, printer, |base_url| {
        measure(ctx, &k6, name, &script, base_url, &load, printer)
    })?;
    let rows = baseline::compare(&base, &outcome.result, tolerance_pct / 100.0);
    let worse: Vec<&str> = rows.iter().filter(|r| r.worse).map(|r| r.metric).collect();
    let verdict = if worse.is_empty() {
        format!(
            "{name}: no regression against {} ({})",
            base.commit, base.date
        )
    } else {
        format!(
            "{name}: {} worse than the baseline of {} ({})",
            worse.join(" and "),
            base.commit,
            base.date
        )
    };
    printer.report(
        &format!("{}{verdict}\n", baseline::table(&rows)),
        &json!({
            "scenario": name,
            "baseline": {"commit": base.commit, "date": base.date},
            "rows": rows,
            "regressed": !worse.is_empty(),
            "verdict": verdict,
        }),
    );
    Ok(if worse.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
