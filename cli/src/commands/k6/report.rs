//! `goodgo k6 report`: one self-contained HTML page (inline SVG and CSS, nothing fetched)
//! with, per scenario, the trend of p50, p95 and the error rate over the kept runs (the
//! baseline's medians as dashed lines) and the latest run's latency histogram.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::json;

use super::baseline::Baseline;
use super::results::{BUCKETS_MS, RunResult};
use crate::commands::Context;
use crate::error::ExitStatus;
use crate::printer::Printer;

const W: f64 = 560.0;
const H: f64 = 180.0;
const PAD: f64 = 40.0;

pub fn write(ctx: &Context, output: Option<&Path>, printer: &Printer) -> Result<ExitStatus> {
    let root = &ctx.workspace.root;
    let mut runs: BTreeMap<String, Vec<RunResult>> = BTreeMap::new();
    let runs_dir = super::runs_dir(ctx);
    for scenario in std::fs::read_dir(&runs_dir).into_iter().flatten().flatten() {
        let mut files: Vec<_> = std::fs::read_dir(scenario.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for f in files {
            // A run file that cannot be read is skipped with a warning, not fatal.
            match std::fs::read_to_string(&f)
                .ok()
                .and_then(|t| serde_json::from_str::<RunResult>(&t).ok())
            {
                Some(r) => runs.entry(r.scenario.clone()).or_default().push(r),
                None => printer.warn(&format!("skipping {}: not a k6 run", f.display())),
            }
        }
    }
    let mut baselines = BTreeMap::new();
    let dir = root.join(super::BASELINES_DIR);
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            let b = Baseline::load(&p, &ctx.workspace.display_path(&p))?;
            baselines.insert(b.scenario.clone(), b);
        }
    }
    for list in runs.values_mut() {
        list.sort_by(|a, b| a.date.cmp(&b.date));
    }
    let html = page(&runs, &baselines);
    let out = output.map_or_else(|| root.join(".goodgo/k6/report.html"), Path::to_path_buf);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(&out, html).with_context(|| format!("writing {}", out.display()))?;
    let shown = ctx.workspace.display_path(&out);
    let count: usize = runs.values().map(Vec::len).sum();
    printer.report(
        &format!(
            "wrote {} ({} scenarios, {count} runs, {} baselines)\n",
            shown.display(),
            runs.len(),
            baselines.len()
        ),
        &json!({"report": shown, "scenarios": runs.keys().collect::<Vec<_>>(), "runs": count, "baselines": baselines.len()}),
    );
    Ok(ExitStatus::Success)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole page.
pub fn page(
    runs: &BTreeMap<String, Vec<RunResult>>,
    baselines: &BTreeMap<String, Baseline>,
) -> String {
    let mut body = String::new();
    if runs.is_empty() {
        body.push_str(
            "<p>No runs yet: <code>goodgo k6 run</code> keeps each run for this page.</p>",
        );
    }
    for (scenario, list) in runs {
        let base = baselines.get(scenario);
        let _ = write!(body, "<section id=\"{0}\"><h2>{0}</h2>", esc(scenario));
        let _ = write!(
            body,
            "<p>{} runs, {} → {}{}</p>",
            list.len(),
            esc(&list[0].date),
            esc(&list[list.len() - 1].date),
            base.map_or(String::new(), |b| format!(
                "; baseline {} ({}, {} runs)",
                esc(&b.commit),
                esc(&b.date),
                b.runs
            ))
        );
        let latency = [
            (
                "p50",
                "#2b6cb0",
                list.iter().map(|r| r.overall.p50_ms).collect::<Vec<_>>(),
                base.map(|b| b.metrics.p50_ms.median),
            ),
            (
                "p95",
                "#c05621",
                list.iter().map(|r| r.overall.p95_ms).collect(),
                base.map(|b| b.metrics.p95_ms.median),
            ),
        ];
        body.push_str(&chart(&format!("{scenario}: latency (ms)"), &latency));
        let errors = [(
            "error rate",
            "#c53030",
            list.iter().map(|r| r.overall.error_rate * 100.0).collect(),
            base.map(|b| b.metrics.error_rate.median * 100.0),
        )];
        body.push_str(&chart(&format!("{scenario}: error rate (%)"), &errors));
        body.push_str(&histogram(&list[list.len() - 1]));
        body.push_str("</section>");
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>goodgo k6 report</title>\
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#1a202c}}svg{{background:#fafafa;border:1px solid #ddd;margin:.5em 1em .5em 0}}\
text{{font-size:11px;fill:#4a5568}}.legend text{{font-size:12px}}section{{margin-bottom:2em}}</style></head>\
<body><h1>goodgo k6 report</h1>{body}</body></html>\n"
    )
}

type Series<'a> = (&'a str, &'a str, Vec<f64>, Option<f64>);

/// A line chart: one polyline and one `circle.pt` per value of each series; the baseline
/// of a series as a dashed line.
#[allow(clippy::cast_precision_loss)]
fn chart(title: &str, series: &[Series]) -> String {
    let max = series
        .iter()
        .flat_map(|(_, _, v, b)| v.iter().copied().chain(*b))
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.1;
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0);
    let x = |i: usize| {
        if n <= 1 {
            PAD + (W - 2.0 * PAD) / 2.0
        } else {
            PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| H - PAD / 2.0 - (H - PAD) * v / max;
    let mut svg = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\"><title>{}</title>\
<text x=\"{PAD}\" y=\"14\">{}</text><text x=\"4\" y=\"{:.1}\">{}</text><text x=\"4\" y=\"{:.1}\">0</text>",
        esc(title),
        esc(title),
        y(max / 1.1) + 4.0,
        fmt_axis(max / 1.1),
        y(0.0)
    );
    for (k, (name, color, values, base)) in series.iter().enumerate() {
        if let Some(b) = base {
            let _ = write!(
                svg,
                "<line class=\"baseline\" x1=\"{PAD}\" x2=\"{:.1}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"{color}\" stroke-dasharray=\"4 3\" opacity=\".6\"/>",
                W - PAD,
                y(*b)
            );
        }
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            esc(name),
            points.join(" ")
        );
        for (i, v) in values.iter().enumerate() {
            let _ = write!(
                svg,
                "<circle class=\"pt\" data-series=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{} {}</title></circle>",
                esc(name),
                x(i),
                y(*v),
                esc(name),
                fmt_axis(*v)
            );
        }
        let _ = write!(
            svg,
            "<g class=\"legend\"><rect x=\"{:.1}\" y=\"6\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"15\">{}</text></g>",
            W - 170.0 + 80.0 * k as f64,
            W - 156.0 + 80.0 * k as f64,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn fmt_axis(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The latest run's latency histogram: one `rect.bar` per bucket.
#[allow(clippy::cast_precision_loss)]
fn histogram(run: &RunResult) -> String {
    let max = run.histogram.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = run.histogram.len().max(1) as f64;
    let bw = (W - 2.0 * PAD) / n;
    let mut svg = format!(
        "<svg class=\"histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\"><title>latest run ({}): latency histogram</title><text x=\"{PAD}\" y=\"14\">latest run ({}): requests per latency bucket (ms)</text>",
        esc(&run.date),
        esc(&run.date)
    );
    for (i, count) in run.histogram.iter().enumerate() {
        let h = (H - PAD - 10.0) * *count as f64 / max;
        let x = PAD + bw * i as f64;
        let bound = |b: f64| {
            if b >= 1000.0 {
                format!("{}s", b / 1000.0)
            } else {
                format!("{b}")
            }
        };
        let label = BUCKETS_MS.get(i).map_or_else(
            || format!(">{}", bound(BUCKETS_MS[BUCKETS_MS.len() - 1])),
            |b| format!("≤{}", bound(*b)),
        );
        let _ = write!(
            svg,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#4a5568\"><title>{label}: {count}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            x + 1.0,
            H - PAD / 2.0 - 6.0 - h,
            bw - 2.0,
            x + 1.0,
            H - 4.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_point_per_run_and_series_and_one_bar_per_bucket() {
        let run = |p: f64| RunResult {
            scenario: "search<x>".into(),
            date: format!("2026-01-0{p}"),
            overall: super::super::results::Stats {
                p50_ms: p,
                p95_ms: p * 2.0,
                ..Default::default()
            },
            endpoints: BTreeMap::new(),
            checks_passed: 0,
            checks_failed: 0,
            thresholds: vec![],
            histogram: vec![1; BUCKETS_MS.len() + 1],
        };
        let mut runs = BTreeMap::new();
        runs.insert("search<x>".to_string(), vec![run(1.0), run(2.0), run(3.0)]);
        let html = page(&runs, &BTreeMap::new());
        // p50 + p95 + error rate, three runs each.
        assert_eq!(html.matches("<circle class=\"pt\"").count(), 9);
        assert_eq!(
            html.matches("<rect class=\"bar\"").count(),
            BUCKETS_MS.len() + 1
        );
        assert!(html.contains("search&lt;x&gt;") && !html.contains("search<x>"));
        assert!(
            !html.contains("http://") || !html.contains("src=\"http"),
            "nothing is fetched"
        );
    }
}
