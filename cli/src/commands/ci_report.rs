//! What a person (or GitHub) sees of a `goodgo ci` run: each finished step as a line (its
//! log when it failed, with `-v`, or on GitHub inside `::group::`, with `::error` annotations
//! for the places it names), the summary table, the JUnit file and GitHub's step summary.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use goodgo_ci::Pipeline;
use goodgo_ci::report::{self, Outcome, StepResult};
use serde_json::json;

use crate::args::CiArgs;
use crate::error::ExitStatus;
use crate::printer::Printer;

pub(super) fn github() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Prints one finished step: a line, its log when it failed (or with `-v`, or grouped under
/// GitHub Actions), annotations for its located errors.
pub(super) fn show(r: &StepResult, key: &str, printer: &Printer, args: &CiArgs) {
    let _ = args;
    if printer.json() {
        let mut value = json!({
            "step": r.id,
            "status": r.outcome.label(),
            "duration_ms": r.duration.as_millis() as u64,
            "key": key,
        });
        if let Outcome::Failed(d) | Outcome::AllowedFailure(d) | Outcome::Skipped(d) = &r.outcome {
            value["detail"] = json!(d);
        }
        printer.json_line(&value);
        return;
    }
    let (mark, style) = match r.outcome {
        Outcome::Passed => ("✓", anstyle::AnsiColor::Green),
        Outcome::Cached => ("↺", anstyle::AnsiColor::Cyan),
        Outcome::Failed(_) => ("✗", anstyle::AnsiColor::Red),
        Outcome::AllowedFailure(_) => ("!", anstyle::AnsiColor::Yellow),
        Outcome::Skipped(_) => ("-", anstyle::AnsiColor::Yellow),
    };
    let s = printer.err_style(style.on_default().bold());
    let detail = match &r.outcome {
        Outcome::Passed => format!("{:.2}s", r.duration.as_secs_f64()),
        Outcome::Cached => "cached".to_string(),
        Outcome::Failed(d) | Outcome::AllowedFailure(d) | Outcome::Skipped(d) => d.clone(),
    };
    let gh = github();
    let show_log = !r.log.is_empty()
        && (gh
            || printer.verbose() > 0
            || matches!(r.outcome, Outcome::Failed(_) | Outcome::AllowedFailure(_)));
    if gh {
        // Workflow commands are read from stdout.
        printer.out(&format!("::group::{} ({})\n", r.id, r.outcome.label()));
        if show_log {
            printer.out(&with_newline(&r.log));
        }
        printer.out("::endgroup::\n");
        if matches!(r.outcome, Outcome::Failed(_)) {
            for a in report::annotations(&r.log) {
                printer.out(&format!("{}\n", a.github()));
            }
        }
    } else if show_log {
        let cached = if r.outcome == Outcome::Cached {
            " (cached log)"
        } else {
            ""
        };
        printer.stderr(&format!("── {}{cached} ──\n{}", r.id, with_newline(&r.log)));
    }
    printer.status(&format!("{s}{mark}{s:#} {} {detail}", r.id));
}

fn with_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

pub(super) fn finish(
    p: &Pipeline,
    include: &[bool],
    results: &[(usize, StepResult)],
    wall: Duration,
    args: &CiArgs,
    printer: &Printer,
) -> Result<ExitStatus> {
    let mut weight = vec![0.0; p.steps.len()];
    for (i, r) in results {
        weight[*i] = r.duration.as_secs_f64();
    }
    let critical: Vec<String> = goodgo_ci::graph::critical_path(&p.deps, include, &weight, &p.ids)
        .map(|(path, _)| path.iter().map(|&i| p.ids[i].clone()).collect())
        .unwrap_or_default();
    let mut sorted: Vec<StepResult> = results.iter().map(|(_, r)| r.clone()).collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let count = |f: fn(&Outcome) -> bool| sorted.iter().filter(|r| f(&r.outcome)).count();
    let passed = count(|o| *o == Outcome::Passed);
    let cached = count(|o| *o == Outcome::Cached);
    let failed = count(|o| matches!(o, Outcome::Failed(_)));
    let skipped = count(|o| matches!(o, Outcome::Skipped(_)));
    if let Some(path) = &args.junit {
        let xml = report::junit("goodgo ci", &sorted);
        if let Some(parent) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, xml)
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        use std::io::Write as _;
        let md = report::markdown(&sorted, wall, &critical);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary)
            .and_then(|mut f| f.write_all(md.as_bytes()))
            .with_context(|| format!("cannot append to {}", PathBuf::from(&summary).display()))?;
    }
    if !printer.json() && sorted.len() > 1 {
        let mut table = String::new();
        for r in &sorted {
            let time = match r.outcome {
                Outcome::Passed | Outcome::Failed(_) | Outcome::AllowedFailure(_) => {
                    format!("{:.2}s", r.duration.as_secs_f64())
                }
                _ => String::new(),
            };
            table.push_str(&format!(
                "  {:<24} {:<17} {time}\n",
                r.id,
                r.outcome.label()
            ));
        }
        printer.status(table.trim_end());
    }
    if printer.json() {
        printer.json_line(&json!({"summary": {
            "steps": sorted.len(), "passed": passed, "cached": cached, "failed": failed,
            "skipped": skipped, "wall_ms": wall.as_millis() as u64, "critical_path": critical,
        }}));
    } else {
        printer.status(&format!(
            "{} step(s): {passed} ran, {cached} cached, {failed} failed, {skipped} skipped in {:.2}s",
            sorted.len(),
            wall.as_secs_f64()
        ));
    }
    if failed > 0 {
        let names: Vec<&str> = sorted
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .map(|r| r.id.as_str())
            .collect();
        if !printer.json() {
            printer.stderr(&format!("failed: {}\n", names.join(", ")));
        }
        return Ok(ExitStatus::Failure);
    }
    Ok(ExitStatus::Success)
}
