//! Baselines: the median of each metric over N runs with its spread, the commit, machine and
//! date (`docs/perf/baselines/<scenario>.json`), and the verdict of a new run against one.
//! A run is worse when its p95 or error rate exceeds the baseline by more than the larger of
//! the tolerance and the noise the baseline itself measured.

use std::fmt::Write as _;
use std::path::Path;

use goodgo_yaml::{Pos, YamlError};
use serde::{Deserialize, Serialize};

use super::results::{RunResult, ms};

/// The machine a measurement was made on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
}

impl Machine {
    /// This machine: its usable cores and `/proc/cpuinfo`'s model name.
    pub fn here() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            cpu,
        }
    }
}

/// A metric's median over the runs and its spread.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        Spread {
            median: super::results::percentile(&v, 50.0),
            min: v.first().copied().unwrap_or(0.0),
            max: v.last().copied().unwrap_or(0.0),
        }
    }

    /// The spread relative to the median (0 when the median is 0).
    pub fn noise(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

/// The load a baseline was measured under: the knobs as given; `compare` reuses them.
pub use crate::args::K6Knobs as Load;

impl Load {
    /// Each knob as given here, else as `fallback` has it.
    pub fn or(&self, fallback: &Load) -> Load {
        Load {
            vus: self.vus.or(fallback.vus),
            duration: self.duration.clone().or_else(|| fallback.duration.clone()),
            rate: self.rate.or(fallback.rate),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    pub p50_ms: Spread,
    pub p95_ms: Spread,
    pub p99_ms: Spread,
    pub error_rate: Spread,
    pub rate: Spread,
}

/// One stored baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub scenario: String,
    pub commit: String,
    pub date: String,
    pub machine: Machine,
    pub runs: usize,
    pub load: Load,
    pub metrics: Metrics,
}

impl Baseline {
    pub fn from_runs(
        scenario: &str,
        commit: &str,
        date: &str,
        machine: Machine,
        load: Load,
        runs: &[RunResult],
    ) -> Baseline {
        let of = |f: fn(&RunResult) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
        Baseline {
            scenario: scenario.to_string(),
            commit: commit.to_string(),
            date: date.to_string(),
            machine,
            runs: runs.len(),
            load,
            metrics: Metrics {
                p50_ms: of(|r| r.overall.p50_ms),
                p95_ms: of(|r| r.overall.p95_ms),
                p99_ms: of(|r| r.overall.p99_ms),
                error_rate: of(|r| r.overall.error_rate),
                rate: of(|r| r.overall.rate),
            },
        }
    }

    /// Reads a baseline file; a malformed one is reported at its line and column (`shown`
    /// is the path as the user sees it).
    pub fn load(path: &Path, shown: &Path) -> Result<Baseline, YamlError> {
        let text = std::fs::read_to_string(path).map_err(|e| YamlError {
            path: shown.to_path_buf(),
            pos: Pos::new(1, 1),
            message: format!("cannot read it: {e}"),
        })?;
        serde_json::from_str(&text).map_err(|e| {
            let at = |n: usize| u32::try_from(n.max(1)).unwrap_or(u32::MAX);
            YamlError {
                path: shown.to_path_buf(),
                pos: Pos::new(at(e.line()), at(e.column())),
                message: format!("not a k6 baseline: {e}")
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            }
        })
    }
}

/// One row of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: &'static str,
    pub baseline: f64,
    pub current: f64,
    /// What `current` may be at most; `None` for metrics shown but not judged.
    pub limit: Option<f64>,
    pub worse: bool,
}

/// A new run against a baseline: `tolerance` is a fraction (0.15 = 15 %) for latency; the
/// error rate may rise by at most max(1 point, its measured spread).
pub fn compare(base: &Baseline, run: &RunResult, tolerance: f64) -> Vec<Row> {
    let m = &base.metrics;
    let p95_allowed = tolerance.max(m.p95_ms.noise());
    let p95_limit = m.p95_ms.median * (1.0 + p95_allowed);
    let err_limit = m.error_rate.median + 0.01_f64.max(m.error_rate.max - m.error_rate.min);
    let o = &run.overall;
    // A row judged against `limit` (worse above it), or only shown without one.
    let row = |metric, baseline, current, limit: Option<f64>| Row {
        metric,
        baseline,
        current,
        limit,
        worse: limit.is_some_and(|l| current > l),
    };
    vec![
        row("p50", m.p50_ms.median, o.p50_ms, None),
        row("p95", m.p95_ms.median, o.p95_ms, Some(p95_limit)),
        row("p99", m.p99_ms.median, o.p99_ms, None),
        row(
            "error rate",
            m.error_rate.median,
            o.error_rate,
            Some(err_limit),
        ),
        row("rate", m.rate.median, o.rate, None),
    ]
}

/// The side-by-side table.
pub fn table(rows: &[Row]) -> String {
    let fmt = |metric: &str, v: f64| match metric {
        "error rate" => format!("{:.2}%", v * 100.0),
        "rate" => format!("{v:.1}/s"),
        _ => ms(v),
    };
    let mut cells = vec![[
        "metric".to_string(),
        "baseline".into(),
        "now".into(),
        "change".into(),
        "limit".into(),
        String::new(),
    ]];
    for r in rows {
        let change = if r.baseline > 0.0 {
            format!("{:+.1}%", (r.current / r.baseline - 1.0) * 100.0)
        } else {
            "—".into()
        };
        cells.push([
            r.metric.to_string(),
            fmt(r.metric, r.baseline),
            fmt(r.metric, r.current),
            change,
            r.limit.map_or(String::new(), |l| fmt(r.metric, l)),
            match (r.limit, r.worse) {
                (None, _) => String::new(),
                (Some(_), true) => "WORSE".into(),
                (Some(_), false) => "ok".into(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in &cells {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let pad = " ".repeat(widths[c] - cell.chars().count());
            if c == 0 {
                let _ = write!(line, "{cell}{pad}");
            } else {
                let _ = write!(line, "  {pad}{cell}");
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
    use crate::commands::k6::results::Stats;

    fn run(p95: f64, err: f64) -> RunResult {
        RunResult {
            scenario: "search".into(),
            date: "d".into(),
            overall: Stats {
                requests: 100,
                rate: 20.0,
                p50_ms: p95 / 3.0,
                p95_ms: p95,
                p99_ms: p95 * 1.5,
                errors: 0,
                error_rate: err,
            },
            endpoints: Default::default(),
            checks_passed: 0,
            checks_failed: 0,
            thresholds: vec![],
            histogram: vec![],
        }
    }

    fn base(p95s: &[f64]) -> Baseline {
        let runs: Vec<_> = p95s.iter().map(|p| run(*p, 0.0)).collect();
        let machine = Machine {
            cores: 2,
            cpu: "x".into(),
        };
        Baseline::from_runs("search", "abc", "d", machine, Load::default(), &runs)
    }

    #[test]
    fn median_and_spread() {
        let s = Spread::of(&[30.0, 10.0, 20.0]);
        assert_eq!((s.median, s.min, s.max), (20.0, 10.0, 30.0));
        assert!((s.noise() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn tolerance_or_noise_whichever_is_larger() {
        // Quiet baseline: the 15 % tolerance decides.
        let quiet = base(&[100.0, 101.0, 99.0]);
        assert!(!compare(&quiet, &run(114.0, 0.0), 0.15)[1].worse);
        assert!(compare(&quiet, &run(116.0, 0.0), 0.15)[1].worse);
        // Noisy baseline (±40 %): its noise decides.
        let noisy = base(&[80.0, 100.0, 120.0]);
        assert!(!compare(&noisy, &run(130.0, 0.0), 0.15)[1].worse);
        assert!(compare(&noisy, &run(150.0, 0.0), 0.15)[1].worse);
        // Error rate: one point allowed.
        assert!(!compare(&quiet, &run(100.0, 0.009), 0.15)[3].worse);
        assert!(compare(&quiet, &run(100.0, 0.05), 0.15)[3].worse);
        let t = table(&compare(&quiet, &run(116.0, 0.0), 0.15));
        assert!(t.contains("WORSE") && t.starts_with("metric"));
    }

    #[test]
    fn flags_given_win_over_the_baselines_load() {
        let stored = Load {
            vus: Some(4),
            duration: Some("3s".into()),
            rate: Some(10),
        };
        let given = Load {
            rate: Some(50),
            ..Load::default()
        };
        let expected = Load {
            rate: Some(50),
            ..stored.clone()
        };
        assert_eq!(given.or(&stored), expected);
        assert_eq!(Load::default().or(&stored), stored);
    }

    #[test]
    fn malformed_file_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("search.json");
        std::fs::write(&p, "{\n  \"scenario\": \"search\",\n  \"commit\": 42\n}\n").unwrap();
        let e = Baseline::load(&p, Path::new("docs/perf/baselines/search.json")).unwrap_err();
        assert_eq!(e.pos, Pos::new(3, 14), "at the bad value");
        let good = base(&[1.0]);
        std::fs::write(&p, serde_json::to_string_pretty(&good).unwrap()).unwrap();
        assert_eq!(Baseline::load(&p, &p).unwrap(), good);
    }
}
