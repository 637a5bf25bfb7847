//! Timing and reporting for the benchmarks: repeated runs of a command, their min, median
//! and p95, the Markdown table, and the `<!-- bench:NAME -->` sections of
//! docs/BENCHMARKS.md that each benchmark rewrites.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xshell::Cmd;

use crate::root;

/// Timings of repeated runs of one command.
pub struct Sample {
    pub label: String,
    pub runs: Vec<Duration>,
}

impl Sample {
    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.runs.clone();
        v.sort();
        v
    }
    pub fn median(&self) -> Duration {
        let v = self.sorted();
        v[v.len() / 2]
    }
    pub fn min(&self) -> Duration {
        self.sorted()[0]
    }
    pub fn p95(&self) -> Duration {
        let v = self.sorted();
        v[((v.len() * 95).div_ceil(100))
            .saturating_sub(1)
            .min(v.len() - 1)]
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The value at fraction `p` of `sorted` (nearest rank), 0 for no values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// Runs `make()` `n` times (after one warm-up run) and records each wall time.
/// Every run must succeed unless `allow_failure`.
pub fn time_command<'a>(
    label: &str,
    n: usize,
    make: &dyn Fn() -> Cmd<'a>,
    allow_failure: bool,
) -> Result<Sample> {
    let mut runs = Vec::with_capacity(n);
    for i in 0..=n {
        let cmd = make()
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .ignore_status();
        let start = Instant::now();
        let out = cmd.output().with_context(|| format!("running {label}"))?;
        let took = start.elapsed();
        if !out.status.success() && !allow_failure {
            bail!("{label} failed with {}", out.status);
        }
        if i > 0 {
            runs.push(took);
        }
    }
    Ok(Sample {
        label: label.to_string(),
        runs,
    })
}

/// A command to time and its label; the command is made afresh for every run.
pub type Timed<'a> = (&'a str, &'a dyn Fn() -> Cmd<'a>);

/// [`time_command`] on each of `commands` in turn, `n` runs each; every run must succeed.
pub fn time_commands(n: usize, commands: &[Timed<'_>]) -> Result<Vec<Sample>> {
    commands
        .iter()
        .map(|(label, make)| time_command(label, n, *make, false))
        .collect()
}

/// Runs `make(round)` once per round, each after `prepare(round)`, and records the wall
/// times.
pub fn time_rounds<'a>(
    label: &str,
    rounds: usize,
    prepare: &mut dyn FnMut(usize) -> Result<()>,
    make: &dyn Fn(usize) -> Cmd<'a>,
) -> Result<Sample> {
    let mut runs = Vec::new();
    for round in 0..rounds {
        prepare(round)?;
        let cmd = make(round).quiet().ignore_stdout().ignore_status();
        let start = Instant::now();
        let out = cmd.output().with_context(|| format!("running {label}"))?;
        let took = start.elapsed();
        if !out.status.success() {
            bail!("{label} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        runs.push(took);
    }
    Ok(Sample {
        label: label.to_string(),
        runs,
    })
}

pub fn table(samples: &[Sample]) -> String {
    let mut out = String::from("| command | runs | min | median | p95 |\n|---|---|---|---|---|\n");
    for s in samples {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            s.label,
            s.runs.len(),
            ms(s.min()),
            ms(s.median()),
            ms(s.p95())
        ));
    }
    out
}

/// `text` with the section between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`
/// replaced by `body` (appended when there is no such section yet).
fn replace_section(text: &str, name: &str, body: &str) -> String {
    let open = format!("<!-- bench:{name} -->");
    let close = format!("<!-- /bench:{name} -->");
    let section = format!("{open}\n{}\n{close}", body.trim_end());
    match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}{}", &text[..a], section, &text[b + close.len()..])
        }
        _ => format!("{}\n{section}\n", text.trim_end()),
    }
}

/// Rewrites the section `name` of docs/BENCHMARKS.md.
pub fn write_section(name: &str, body: &str) -> Result<()> {
    let path = root().join("docs/BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, replace_section(&text, name, body))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_a_sample() {
        let sample = Sample {
            label: "x".into(),
            runs: (1..=20).rev().map(Duration::from_millis).collect(),
        };
        assert_eq!(sample.min(), Duration::from_millis(1));
        assert_eq!(sample.median(), Duration::from_millis(11));
        assert_eq!(sample.p95(), Duration::from_millis(19));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert!(table(&[sample]).contains("| x | 20 | 1.0 ms | 11.0 ms | 19.0 ms |"));
    }

    #[test]
    fn commands_are_timed_and_failures_reported() {
        let sh = xshell::Shell::new().expect("a shell");
        let ok = time_command("true", 3, &|| xshell::cmd!(sh, "true"), false).expect("true runs");
        assert_eq!(ok.runs.len(), 3);
        assert!(time_command("false", 1, &|| xshell::cmd!(sh, "false"), false).is_err());
        assert!(time_command("false", 1, &|| xshell::cmd!(sh, "false"), true).is_ok());
        let both: [Timed<'_>; 2] = [
            ("true", &|| xshell::cmd!(sh, "true")),
            ("echo", &|| xshell::cmd!(sh, "echo x")),
        ];
        let samples = time_commands(2, &both).expect("both run");
        let labels: Vec<&str> = samples.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["true", "echo"]);
        assert!(time_commands(1, &[("false", &|| xshell::cmd!(sh, "false"))]).is_err());
        let mut prepared = Vec::new();
        let rounds = time_rounds(
            "echo",
            2,
            &mut |r| {
                prepared.push(r);
                Ok(())
            },
            &|r| {
                let r = r.to_string();
                xshell::cmd!(sh, "echo {r}")
            },
        )
        .expect("echo runs");
        assert_eq!((rounds.runs.len(), prepared), (2, vec![0, 1]));
        let failed = time_rounds("sh", 1, &mut |_| Ok(()), &|_| {
            xshell::cmd!(sh, "sh -c 'echo broken >&2; exit 3'")
        });
        assert!(
            failed.is_err_and(|e| e.to_string().contains("broken")),
            "stderr is in the error"
        );
    }

    #[test]
    fn sections_are_replaced_or_appended() {
        let text = "# B\n<!-- bench:a -->\nold\n<!-- /bench:a -->\ntail\n";
        assert_eq!(
            replace_section(text, "a", "new\n"),
            "# B\n<!-- bench:a -->\nnew\n<!-- /bench:a -->\ntail\n"
        );
        assert_eq!(
            replace_section("# B\n", "b", "body"),
            "# B\n<!-- bench:b -->\nbody\n<!-- /bench:b -->\n"
        );
    }
}
