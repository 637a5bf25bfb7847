//! Ctrl-C (SIGINT) and SIGTERM as a future, for commands that undo their work when stopped.

use anyhow::{Context as _, Result};

/// Registers for SIGINT and SIGTERM now (from then on neither ends the process by itself);
/// the returned future completes on either.
pub fn interrupt() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
