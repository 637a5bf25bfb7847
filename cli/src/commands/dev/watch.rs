//! The watch: which files changed below `service/` and `migrations/`, once they are quiet.
//!
//! The kernel tells us (inotify, through notify and its full debouncer, which merges the
//! bursts an editor or a checkout makes and follows renames) instead of re-walking the tree.
//! On top of that sits the session's policy: a change is acted on once the files have been
//! quiet for [`QUIET`], or [`SETTLE_MAX`] after it was first seen when writes go on.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A change is acted on once the files have been quiet this long…
pub(super) const QUIET: Duration = Duration::from_millis(300);
/// …or this long after it was first seen, whichever comes first.
pub(super) const SETTLE_MAX: Duration = Duration::from_secs(2);
/// How long the debouncer holds an event to merge it with its neighbours.
const MERGE: Duration = Duration::from_millis(50);

/// What changed, by the tree it changed in.
#[derive(Debug, Default)]
pub(super) struct Changes {
    pub service: bool,
    pub migrations: bool,
}

pub(super) struct Watch {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    events: mpsc::UnboundedReceiver<Vec<PathBuf>>,
    service: Vec<PathBuf>,
    migrations: Vec<PathBuf>,
}

impl Watch {
    /// Watches `service` and `migrations` folders (recursively; folders that do not exist
    /// are skipped).
    pub(super) fn new(service: &[PathBuf], migrations: &[PathBuf]) -> Result<Watch> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut debouncer = new_debouncer(MERGE, None, move |result: DebounceEventResult| {
            if let Ok(batch) = result {
                let paths: Vec<PathBuf> = batch
                    .into_iter()
                    .filter(|e| !e.event.kind.is_access())
                    .flat_map(|e| e.event.paths)
                    .collect();
                if !paths.is_empty() {
                    let _ = tx.send(paths);
                }
            }
        })
        .context("starting the file watcher")?;
        for dir in service.iter().chain(migrations) {
            if dir.is_dir() {
                debouncer
                    .watch(dir, RecursiveMode::Recursive)
                    .with_context(|| format!("watching {}", dir.display()))?;
            }
        }
        Ok(Watch {
            _debouncer: debouncer,
            events,
            service: service.to_vec(),
            migrations: migrations.to_vec(),
        })
    }

    /// Sorts changed paths into the trees they belong to; hidden entries and `target/`
    /// (below a watched folder) do not count.
    fn classify(&self, paths: &[PathBuf], into: &mut Changes) {
        for path in paths {
            let within = |roots: &[PathBuf]| {
                roots.iter().any(|root| {
                    path.strip_prefix(root).is_ok_and(|rel| {
                        !rel.components().any(|c| {
                            let c = c.as_os_str().to_string_lossy();
                            c.starts_with('.') || c == "target"
                        })
                    })
                })
            };
            into.service |= within(&self.service);
            into.migrations |= within(&self.migrations);
        }
    }

    /// Waits for the next change that counts, then until the files have been quiet for
    /// [`QUIET`] (at most [`SETTLE_MAX`] after the change was first seen). `None` when the
    /// watcher has stopped.
    pub(super) async fn next(&mut self) -> Option<Changes> {
        let mut changes = Changes::default();
        while !(changes.service || changes.migrations) {
            let paths = self.events.recv().await?;
            self.classify(&paths, &mut changes);
        }
        let cap = Instant::now() + SETTLE_MAX;
        loop {
            let quiet = (Instant::now() + QUIET).min(cap);
            match tokio::time::timeout_at(quiet, self.events.recv()).await {
                Ok(Some(paths)) => self.classify(&paths, &mut changes),
                Ok(None) | Err(_) => return Some(changes),
            }
            if Instant::now() >= cap {
                return Some(changes);
            }
        }
    }
}

/// Whether a migration's SQL has nothing to apply yet: empty, or only blank lines and `--`
/// comments (an editor's first save of a file `goodgo db new` just made).
pub(super) fn is_blank_sql(sql: &str) -> bool {
    sql.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with("--"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use super::*;

    /// Rewrites a file in `dir` every 50 ms (well within `QUIET`) for `how_long`.
    fn keep_writing(dir: &Path, how_long: Duration) -> std::thread::JoinHandle<()> {
        let file = dir.join("edited.rs");
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let mut n = 0;
            while start.elapsed() < how_long {
                std::fs::write(&file, "x".repeat(n)).unwrap();
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    }

    #[test]
    fn a_change_is_acted_on_once_quiet_or_after_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut watch = rt.block_on(async { Watch::new(&dirs, &[]) }).unwrap();

        // Writes for 1 s: settled only after the last one.
        let writer = keep_writing(dir.path(), Duration::from_secs(1));
        let start = std::time::Instant::now();
        let changes = rt.block_on(watch.next()).unwrap();
        writer.join().unwrap();
        assert!(changes.service && !changes.migrations, "{changes:?}");
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "{:?}",
            start.elapsed()
        );
        // The last write is in: nothing more arrives once the writer has stopped.
        let more = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(400), watch.events.recv()).await
        });
        assert!(
            more.is_err(),
            "a write came after the settled change: {more:?}"
        );

        // Writes that go on: acted on anyway once the cap is reached, before they stop
        // (waiting for quiet would take the writer's 4 s and more).
        let writing = Duration::from_secs(4);
        let writer = keep_writing(dir.path(), writing);
        let start = std::time::Instant::now();
        let _ = rt.block_on(watch.next()).unwrap();
        let waited = start.elapsed();
        writer.join().unwrap();
        assert!(waited >= SETTLE_MAX, "{waited:?}");
        assert!(waited < writing, "{waited:?}");
    }

    #[test]
    fn hidden_files_and_target_do_not_count_and_trees_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (service, migrations) = (dir.path().join("service"), dir.path().join("migrations"));
        std::fs::create_dir_all(service.join("target")).unwrap();
        std::fs::create_dir_all(&migrations).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut watch = rt
            .block_on(async {
                Watch::new(
                    std::slice::from_ref(&service),
                    std::slice::from_ref(&migrations),
                )
            })
            .unwrap();
        std::fs::write(service.join(".swp"), "x").unwrap();
        std::fs::write(service.join("target/out"), "x").unwrap();
        std::fs::write(migrations.join("V9__x.sql"), "-- new\n").unwrap();
        let changes = rt.block_on(watch.next()).unwrap();
        assert!(changes.migrations && !changes.service, "{changes:?}");
        assert!(is_blank_sql("-- new\n\n  -- more\n"));
        assert!(!is_blank_sql("-- new\nCREATE TABLE t ();\n"));
    }
}
