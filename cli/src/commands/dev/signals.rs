//! Signals in and out: SIGINT/SIGTERM that stop a session, and the signals `dev` sends to
//! the processes it started.
//!
//! Why its own module: every step of a session races an interrupt, and every child (cargo
//! and its compilers, the API) runs in a process group of its own so that `dev` decides when
//! and how it stops. Signals are sent with rustix, never by spawning `kill`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rustix::process::{Pid, Signal};
use tokio::signal::unix::{SignalKind, signal};

/// SIGINT and SIGTERM, registered once when the session starts: a signal that arrives while
/// nothing waits for it is kept for the next [`Interrupt::wait`].
pub(super) struct Interrupt {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupt {
    pub(super) fn register() -> Result<Interrupt> {
        Ok(Interrupt {
            int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    pub(super) async fn wait(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }

    /// `fut`'s output, or `None` (and `fut` dropped) when a signal comes first.
    pub(super) async fn race<T>(&mut self, fut: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.wait() => None,
            v = fut => Some(v),
        }
    }
}

/// How a child is asked to stop.
#[derive(Clone, Copy)]
pub(super) enum Stop {
    /// SIGTERM: finish what you are doing.
    Term,
    /// SIGKILL: now.
    Kill,
}

impl Stop {
    fn signal(self) -> Signal {
        match self {
            Stop::Term => Signal::TERM,
            Stop::Kill => Signal::KILL,
        }
    }
}

fn pid(id: u32) -> Option<Pid> {
    i32::try_from(id).ok().and_then(Pid::from_raw)
}

/// Signals every process in the group led by `leader` (a child started with
/// `process_group(0)`). A group that is already gone is not an error.
pub(super) fn signal_group(leader: u32, how: Stop) {
    if let Some(pgid) = pid(leader) {
        let _ = rustix::process::kill_process_group(pgid, how.signal());
    }
}

/// Signals one process. A process that is already gone is not an error.
pub(super) fn signal_process(id: u32, how: Stop) {
    if let Some(p) = pid(id) {
        let _ = rustix::process::kill_process(p, how.signal());
    }
}

/// SIGTERM to `child`'s group, SIGKILL after `grace`, then reaped.
pub(super) async fn stop_group(child: &mut std::process::Child, grace: Duration) {
    signal_group(child.id(), Stop::Term);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    signal_group(child.id(), Stop::Kill);
    let _ = child.wait();
}
