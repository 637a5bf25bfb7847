//! The release history of a target: `.goodgo/deploy/<target>/history.json`, one record per
//! deploy or rollback (id, image, commit, who, when, result, duration), written atomically
//! under the deploy lock.
//!
//! Why a file and not the engine's labels: a release that never got ready leaves no
//! container behind, yet its failure is part of the history; `deploy down` removes the
//! containers and keeps this file. Nothing secret is ever recorded here.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// One deploy or rollback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    /// `r1`, `r2`, …: the value of the `GoodGo-Release` header its API sends.
    pub id: String,
    /// `deploy` or `rollback`.
    pub kind: String,
    pub image: String,
    pub commit: Option<String>,
    /// `user@host`.
    pub who: String,
    /// When it started (RFC 3339, UTC).
    pub at: String,
    /// `serving` until the next release, then `replaced`; `failed` (never switched),
    /// `rolled-back` (switched back by the watch), `interrupted`.
    pub result: String,
    /// Why it failed or was rolled back.
    pub reason: Option<String>,
    pub duration_ms: u64,
    /// For a rollback: the release it serves again.
    pub serves: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    releases: Vec<Release>,
}

/// The history at `dir/history.json`.
pub struct History {
    path: PathBuf,
    pub releases: Vec<Release>,
}

impl History {
    /// Reads the history (empty when there is none yet).
    pub fn read(dir: &Path) -> Result<History> {
        let path = dir.join("history.json");
        let releases = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str::<File>(&text)
                    .with_context(|| format!("reading {}", path.display()))?
                    .releases
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())));
            }
        };
        Ok(History { path, releases })
    }

    /// The id the next release gets: one more than the highest so far.
    pub fn next_id(&self) -> String {
        let n = self
            .releases
            .iter()
            .filter_map(|r| r.id.strip_prefix('r')?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        format!("r{}", n + 1)
    }

    /// Adds or replaces (by id) a record and writes the file.
    pub fn record(&mut self, release: Release) -> Result<()> {
        if release.result == "serving" {
            for r in self.releases.iter_mut().filter(|r| r.result == "serving") {
                r.result = "replaced".into();
            }
        }
        match self.releases.iter_mut().find(|r| r.id == release.id) {
            Some(r) => *r = release,
            None => self.releases.push(release),
        }
        self.write()
    }

    fn write(&self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&File {
            releases: self.releases.clone(),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n").with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))
    }
}

/// The user running goodgo.
pub fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid {}", rustix::process::getuid().as_raw()))
}

/// This machine's host name.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Now, RFC 3339 in UTC to the second.
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn release(id: &str, result: &str) -> Release {
        Release {
            id: id.into(),
            kind: "deploy".into(),
            image: "x:1".into(),
            commit: None,
            who: "a@b".into(),
            at: now(),
            result: result.into(),
            reason: None,
            duration_ms: 1,
            serves: None,
        }
    }

    #[test]
    fn ids_grow_and_one_release_serves() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::read(dir.path()).unwrap();
        assert_eq!(h.next_id(), "r1");
        h.record(release("r1", "serving")).unwrap();
        h.record(release("r2", "failed")).unwrap();
        h.record(release("r3", "serving")).unwrap();
        let h = History::read(dir.path()).unwrap();
        assert_eq!(h.next_id(), "r4");
        let results: Vec<&str> = h.releases.iter().map(|r| r.result.as_str()).collect();
        assert_eq!(results, ["replaced", "failed", "serving"]);
        assert!(now().ends_with('Z'), "{}", now());
    }
}
