//! Running one step's command: `sh -c LINE` or the argv list, in the workspace root, with
//! stdout and stderr captured into one log (interleaved as written), in a process group of
//! its own so a timeout stops the whole tree.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::{Run, Step};

/// The process groups of the steps running now, for [`stop_all`].
static RUNNING: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Kills every running step's process group: steps run in groups of their own (so a
/// timeout stops a whole tree), which the terminal's Ctrl-C does not reach, so goodgo
/// calls this when it is interrupted.
pub fn stop_all() {
    let groups: Vec<u32> = RUNNING
        .lock()
        .map(|g| g.iter().copied().collect())
        .unwrap_or_default();
    for pid in groups {
        kill_group(pid);
    }
}

/// How a step's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
    TimedOut(Duration),
    /// The program could not be started.
    NotStarted(String),
}

impl Exit {
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }

    pub fn describe(&self) -> String {
        match self {
            Exit::Code(c) => format!("exit status {c}"),
            Exit::Signal(s) => format!("killed by signal {s}"),
            Exit::TimedOut(d) => format!("timed out after {}", humantime::format_duration(*d)),
            Exit::NotStarted(e) => format!("could not start: {e}"),
        }
    }
}

#[derive(Debug)]
pub struct Finished {
    pub exit: Exit,
    pub log: Vec<u8>,
    pub duration: Duration,
}

/// Runs `step` in `root` with `env` added to goodgo's environment.
pub fn run_step(step: &Step, root: &Path, env: &[(String, String)]) -> Finished {
    let start = Instant::now();
    let mut cmd = match &step.run {
        Run::Line(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
        Run::Argv(argv) => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    cmd.current_dir(root)
        .stdin(Stdio::null())
        .envs(env.iter().cloned());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let failed = |e: std::io::Error, start: Instant| Finished {
        exit: Exit::NotStarted(e.to_string()),
        log: Vec::new(),
        duration: start.elapsed(),
    };
    let (mut reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return failed(e, start),
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return failed(e, start),
    };
    cmd.stdout(writer).stderr(writer2);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(e, start),
    };
    // The pipe's write ends now live only in the child (the Command holds the last copies).
    drop(cmd);
    if let Ok(mut g) = RUNNING.lock() {
        g.insert(child.id());
    }
    let pump = std::thread::spawn(move || {
        let mut log = Vec::new();
        let _ = reader.read_to_end(&mut log);
        log
    });
    let mut timed_out = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if let Some(limit) = step.timeout
            && start.elapsed() >= limit
            && timed_out.is_none()
        {
            timed_out = Some(limit);
            kill_group(child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Children the step left behind keep the pipe open: stop them so the log ends.
    kill_group(child.id());
    if let Ok(mut g) = RUNNING.lock() {
        g.remove(&child.id());
    }
    let log = pump.join().unwrap_or_default();
    let exit = match (timed_out, status) {
        (Some(limit), _) => Exit::TimedOut(limit),
        (None, Some(status)) => match status.code() {
            Some(c) => Exit::Code(c),
            None => Exit::Signal(signal_of(&status)),
        },
        (None, None) => Exit::NotStarted("lost track of the process".to_string()),
    };
    Finished {
        exit,
        log,
        duration: start.elapsed(),
    }
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> i32 {
    std::os::unix::process::ExitStatusExt::signal(status).unwrap_or(0)
}

#[cfg(not(unix))]
fn signal_of(_status: &std::process::ExitStatus) -> i32 {
    0
}

fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}
