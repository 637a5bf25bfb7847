//! What one k6 run measured, read from k6's own files: the NDJSON stream of `--out json`
//! (every request's duration, tagged with its endpoint's `name` and whether its status was
//! expected) and `--summary-export` (which thresholds were crossed, the request rate).
//! Percentiles are computed from every sample, interpolated as k6 does.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Histogram bucket upper bounds, in milliseconds (the last bucket is everything above).
pub const BUCKETS_MS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

/// Latency and errors of a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub requests: u64,
    /// Requests per second over the run.
    pub rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Requests whose status the script did not expect.
    pub errors: u64,
    pub error_rate: f64,
}

/// One threshold of the script and whether it was crossed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub metric: String,
    pub expression: String,
    pub crossed: bool,
}

/// One scenario's run, as stored under `.goodgo/k6/runs/` and shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub scenario: String,
    /// RFC 3339, UTC.
    pub date: String,
    pub overall: Stats,
    /// Per endpoint (k6's `name` tag), sorted by name.
    pub endpoints: BTreeMap<String, Stats>,
    pub checks_passed: u64,
    pub checks_failed: u64,
    pub thresholds: Vec<Threshold>,
    /// Counts per [`BUCKETS_MS`] bucket, plus one for everything above the last bound.
    pub histogram: Vec<u64>,
}

impl RunResult {
    pub fn crossed(&self) -> Vec<&Threshold> {
        self.thresholds.iter().filter(|t| t.crossed).collect()
    }
}

#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: String,
    metric: String,
    data: Option<PointData>,
}

#[derive(Deserialize)]
struct PointData {
    value: Option<f64>,
    #[serde(default)]
    tags: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Summary {
    #[serde(default)]
    metrics: BTreeMap<String, SummaryMetric>,
}

#[derive(Deserialize)]
struct SummaryMetric {
    #[serde(default)]
    thresholds: BTreeMap<String, bool>,
    rate: Option<f64>,
    count: Option<f64>,
    passes: Option<f64>,
    fails: Option<f64>,
}

/// Reads a run from the text of k6's `--out json` file and its `--summary-export` file.
/// Lines that are not points of interest (or not JSON: a run cut short) are skipped.
pub fn parse(
    scenario: &str,
    date: &str,
    ndjson: &str,
    summary: &str,
) -> Result<RunResult, serde_json::Error> {
    let summary: Summary = serde_json::from_str(summary)?;
    let mut all: Vec<f64> = Vec::new();
    let mut errors = 0u64;
    let mut per: BTreeMap<String, (Vec<f64>, u64)> = BTreeMap::new();
    for line in ndjson.lines() {
        let Ok(line) = serde_json::from_str::<Line>(line) else {
            continue;
        };
        if line.kind != "Point" || line.metric != "http_req_duration" {
            continue;
        }
        let Some(data) = line.data else { continue };
        let Some(value) = data.value else { continue };
        let name = data
            .tags
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        let failed = data.tags.get("expected_response").and_then(|v| v.as_str()) == Some("false");
        let entry = per.entry(name).or_default();
        entry.0.push(value);
        all.push(value);
        if failed {
            entry.1 += 1;
            errors += 1;
        }
    }
    // The run's length, from k6's own count and rate of requests.
    let reqs = summary.metrics.get("http_reqs");
    let seconds = match reqs.and_then(|m| Some((m.count?, m.rate?))) {
        Some((count, rate)) if rate > 0.0 => count / rate,
        _ => 0.0,
    };
    let mut histogram = vec![0u64; BUCKETS_MS.len() + 1];
    for v in &all {
        let i = BUCKETS_MS
            .iter()
            .position(|b| v <= b)
            .unwrap_or(BUCKETS_MS.len());
        histogram[i] += 1;
    }
    let endpoints = per
        .into_iter()
        .map(|(name, (mut samples, errs))| (name, stats(&mut samples, errs, seconds)))
        .collect();
    let checks = summary.metrics.get("checks");
    let thresholds = summary
        .metrics
        .iter()
        .flat_map(|(metric, m)| {
            m.thresholds.iter().map(|(expr, crossed)| Threshold {
                metric: metric.clone(),
                expression: expr.clone(),
                crossed: *crossed,
            })
        })
        .collect();
    Ok(RunResult {
        scenario: scenario.to_string(),
        date: date.to_string(),
        overall: stats(&mut all, errors, seconds),
        endpoints,
        checks_passed: count(checks.and_then(|c| c.passes)),
        checks_failed: count(checks.and_then(|c| c.fails)),
        thresholds,
        histogram,
    })
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn count(v: Option<f64>) -> u64 {
    v.unwrap_or(0.0).max(0.0).round() as u64
}

#[allow(clippy::cast_precision_loss)]
fn stats(samples: &mut [f64], errors: u64, seconds: f64) -> Stats {
    samples.sort_by(f64::total_cmp);
    let n = samples.len() as u64;
    Stats {
        requests: n,
        rate: if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        },
        p50_ms: percentile(samples, 50.0),
        p95_ms: percentile(samples, 95.0),
        p99_ms: percentile(samples, 99.0),
        errors,
        error_rate: if n == 0 {
            0.0
        } else {
            errors as f64 / n as f64
        },
    }
}

/// The `p`th percentile of sorted samples, linearly interpolated between ranks (as k6).
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let rank = p / 100.0 * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

/// Milliseconds for a table: 3 significant-ish digits.
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// The table of one run: a row per endpoint and the total.
pub fn table(run: &RunResult) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "endpoint".into(),
        "requests".into(),
        "rate".into(),
        "median".into(),
        "p95".into(),
        "p99".into(),
        "errors".into(),
    ]];
    let row = |name: &str, s: &Stats| {
        [
            name.to_string(),
            s.requests.to_string(),
            format!("{:.1}/s", s.rate),
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.p99_ms),
            format!("{} ({:.2}%)", s.errors, s.error_rate * 100.0),
        ]
    };
    for (name, s) in &run.endpoints {
        rows.push(row(name, s));
    }
    rows.push(row("all", &run.overall));
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(line, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(line, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = r#"{"metrics":{"http_reqs":{"count":4,"rate":2},
        "checks":{"passes":7,"fails":1,"thresholds":{"rate>0.99":true},"value":0.875},
        "http_req_duration":{"med":3,"thresholds":{"p(95)<500":false}}}}"#;

    fn point(name: &str, v: f64, expected: bool) -> String {
        format!(
            r#"{{"metric":"http_req_duration","type":"Point","data":{{"time":"t","value":{v},"tags":{{"name":"{name}","expected_response":"{expected}"}}}}}}"#
        )
    }

    #[test]
    fn percentiles_interpolate_like_k6() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&s, 50.0), 3.0);
        assert!((percentile(&s, 95.0) - 4.8).abs() < 1e-9);
        assert_eq!(percentile(&[], 95.0), 0.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn parses_points_per_endpoint_and_thresholds() {
        let nd = [
            r#"{"type":"Metric","data":{"name":"http_req_duration"},"metric":"http_req_duration"}"#
                .to_string(),
            point("GET /a", 1.0, true),
            point("GET /a", 3.0, true),
            point("GET /b", 600.0, false),
            r#"{"metric":"http_reqs","type":"Point","data":{"value":1,"tags":{"name":"GET /a"}}}"#
                .to_string(),
            point("GET /b", 9000.0, true),
            "{truncated".to_string(),
        ]
        .join("\n");
        let run = parse("s", "d", &nd, SUMMARY).unwrap();
        assert_eq!(run.overall.requests, 4);
        assert_eq!(run.overall.errors, 1);
        assert!((run.overall.rate - 2.0).abs() < 1e-9);
        assert_eq!(run.endpoints["GET /a"].requests, 2);
        assert_eq!(run.endpoints["GET /a"].p50_ms, 2.0);
        assert_eq!(run.endpoints["GET /b"].errors, 1);
        assert!((run.endpoints["GET /b"].error_rate - 0.5).abs() < 1e-9);
        assert_eq!((run.checks_passed, run.checks_failed), (7, 1));
        assert_eq!(run.histogram.iter().sum::<u64>(), 4);
        assert_eq!(
            *run.histogram.last().unwrap(),
            1,
            "9 s lands above the last bound"
        );
        let crossed = run.crossed();
        assert_eq!(crossed.len(), 1);
        assert_eq!(crossed[0].metric, "checks");
        let t = table(&run);
        assert!(t.lines().next().unwrap().starts_with("endpoint"));
        assert!(t.contains("GET /b") && t.lines().last().unwrap().starts_with("all"));
    }
}
