//! The API process `dev` runs: started from the built binary in a process group of its own,
//! its output passed through with the last lines kept for a crash report, readiness probed
//! over HTTP, and stopped gracefully (SIGTERM, then SIGKILL) however the session ends.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::build::target_dir;
use super::signals::{Stop, signal_process};
use crate::error::UserError;
use crate::printer::Printer;

/// How many of the API's last output lines a crash report shows.
const TAIL: usize = 20;

pub(crate) struct Api {
    child: Child,
    /// The last [`TAIL`] lines the API wrote.
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Api {
    /// Starts the built binary in a process group of its own (so a Ctrl-C in the terminal
    /// reaches `dev`, which stops it), its output passed through and its tail kept.
    pub(crate) fn start(
        root: &Path,
        package: &str,
        env: &[(String, String)],
        printer: &Printer,
    ) -> Result<Api> {
        Api::start_profile(root, package, "debug", env, printer)
    }

    /// [`start`](Self::start) for the binary of a cargo profile (`debug`, `release`).
    pub(crate) fn start_profile(
        root: &Path,
        package: &str,
        profile: &str,
        env: &[(String, String)],
        printer: &Printer,
    ) -> Result<Api> {
        let bin = target_dir(root).join(profile).join(package);
        let mut cmd = Command::new(&bin);
        cmd.current_dir(root)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL)));
        if let Some(out) = child.stdout.take() {
            forward(out, printer.clone(), true, tail.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, printer.clone(), false, tail.clone());
        }
        Ok(Api { child, tail })
    }

    /// The exit status when the process has ended.
    pub(super) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Its last output lines, indented, for a report.
    pub(super) fn last_lines(&self) -> String {
        let tail = self.tail.lock().map(|t| t.clone()).unwrap_or_default();
        if tail.is_empty() {
            return "  (no output)\n".into();
        }
        tail.iter().map(|l| format!("  | {l}\n")).collect()
    }

    /// SIGTERM, so in-flight requests finish; SIGKILL after 10 s.
    pub(crate) fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        signal_process(self.child.id(), Stop::Term);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until the API answers `/readyz` (or `/healthz` where there is no `/readyz`) on
    /// `addr` (host:port), failing with its last lines when it exits first.
    pub(crate) async fn wait_ready(&mut self, addr: &str, limit: Duration) -> Result<()> {
        let client = crate::http::client(Duration::from_secs(2))?;
        let (readyz, healthz) = (
            format!("http://{addr}/readyz"),
            format!("http://{addr}/healthz"),
        );
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                // Let the output threads catch the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(UserError::failed(format!(
                    "the API exited ({status}) while starting; its last lines:\n{}",
                    self.last_lines().trim_end()
                ))
                .into());
            }
            match crate::http::status(&client, &readyz).await {
                Some(200) => return Ok(()),
                Some(404) if crate::http::status(&client, &healthz).await == Some(200) => {
                    return Ok(());
                }
                _ => {}
            }
            if start.elapsed() > limit {
                return Err(UserError::failed(format!(
                    "the API did not become ready on {addr} in {} s",
                    limit.as_secs()
                ))
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Api {
    /// An API that `dev` started never outlives it, whatever ends the session.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Passes the API's output lines on to the terminal, keeping the last [`TAIL`]. With
/// `--json`, stdout carries only the session's JSON events, so the API's lines go to stderr.
fn forward(
    stream: impl Read + Send + 'static,
    printer: Printer,
    stdout: bool,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if stdout && !printer.json() {
                printer.stdout_raw(&format!("{line}\n"));
            } else {
                printer.stderr(&format!("{line}\n"));
            }
            if let Ok(mut t) = tail.lock() {
                if t.len() == TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        }
    });
}
