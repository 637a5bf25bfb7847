//! The plan file format and its in-memory form.

use std::path::{Path, PathBuf};

use goodgo_yaml::{Pos, Spanned, YamlError};
use serde::{Deserialize, Serialize};

/// What a task's `status:` may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Todo,
    Doing,
    Done,
    Blocked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Todo => "todo",
            Status::Doing => "doing",
            Status::Done => "done",
            Status::Blocked => "blocked",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        ["todo", "doing", "done", "blocked"]
            .iter()
            .zip([Status::Todo, Status::Doing, Status::Done, Status::Blocked])
            .find(|(name, _)| **name == text)
            .map(|(_, s)| s)
    }

    pub fn is_done(self) -> bool {
        self == Status::Done
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
pub enum Priority {
    P0,
    P1,
    P2,
    P3,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    #[serde(default)]
    milestones: Vec<RawMilestone>,
    #[serde(default)]
    tasks: Vec<RawTask>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMilestone {
    id: Spanned<String>,
    name: String,
    phase: Option<u32>,
    goal: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    id: Spanned<String>,
    code: Option<Spanned<String>>,
    title: String,
    milestone: Spanned<String>,
    #[serde(default)]
    deps: Vec<Spanned<String>>,
    priority: Option<Priority>,
    sprint: Option<u32>,
    estimate: Option<Spanned<f64>>,
    status: Status,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Milestone {
    pub id: String,
    pub name: String,
    pub phase: Option<u32>,
    pub goal: Option<String>,
    pub pos: Pos,
}

/// A dependency as written: a task id, a task code or a milestone id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepRef {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub code: Option<String>,
    pub title: String,
    pub milestone: String,
    pub deps: Vec<DepRef>,
    pub priority: Option<Priority>,
    pub sprint: Option<u32>,
    /// Days, > 0; 1 when the file gives none.
    pub estimate: f64,
    pub status: Status,
    pub pos: Pos,
    pub code_pos: Option<Pos>,
    pub milestone_pos: Pos,
    pub estimate_pos: Option<Pos>,
}

/// A plan as read from its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub path: PathBuf,
    pub milestones: Vec<Milestone>,
    pub tasks: Vec<Task>,
}

impl Plan {
    /// Parses plan text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Plan, YamlError> {
        let raw: RawPlan = goodgo_yaml::from_str(path, text)?;
        let milestones = raw
            .milestones
            .into_iter()
            .map(|m| Milestone {
                pos: Pos::of(&m.id),
                id: m.id.value,
                name: m.name,
                phase: m.phase,
                goal: m.goal,
            })
            .collect();
        let tasks = raw
            .tasks
            .into_iter()
            .map(|t| Task {
                pos: Pos::of(&t.id),
                id: t.id.value,
                code_pos: t.code.as_ref().map(Pos::of),
                code: t.code.map(|c| c.value),
                title: t.title,
                milestone_pos: Pos::of(&t.milestone),
                milestone: t.milestone.value,
                deps: t
                    .deps
                    .into_iter()
                    .map(|d| DepRef {
                        pos: Pos::of(&d),
                        name: d.value,
                    })
                    .collect(),
                priority: t.priority,
                sprint: t.sprint,
                estimate_pos: t.estimate.as_ref().map(Pos::of),
                estimate: t.estimate.map(|e| e.value).unwrap_or(1.0),
                status: t.status,
            })
            .collect();
        Ok(Plan {
            path: path.to_path_buf(),
            milestones,
            tasks,
        })
    }

    /// Reads and parses a plan file.
    pub fn load(path: &Path, shown: &Path) -> Result<Plan, goodgo_yaml::LoadError> {
        Self::load_cached(path, shown, None)
    }

    /// Reads a plan file; large files are parsed once per content and the result kept in
    /// `cache_dir` (see [`CACHE_MIN_BYTES`]). A cache entry is used only when it was made
    /// from exactly the same bytes, shown path and goodgo version; any problem with the
    /// cache (missing, unreadable, stale, not writable) falls back to parsing.
    pub fn load_cached(
        path: &Path,
        shown: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<Plan, goodgo_yaml::LoadError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| goodgo_yaml::LoadError::Read {
                path: shown.to_path_buf(),
                source,
            })?;
        let Some(dir) = cache_dir.filter(|_| text.len() >= CACHE_MIN_BYTES) else {
            return Ok(Plan::parse(shown, &text)?);
        };
        let key = cache_key(shown, &text);
        let entry = dir.join(format!("plan-{}.json", cache_key(shown, "")));
        if let Some(plan) = read_cache(&entry, &key) {
            return Ok(plan);
        }
        let plan = Plan::parse(shown, &text)?;
        write_cache(dir, &entry, &key, &plan);
        Ok(plan)
    }
}

/// Plans smaller than this parse in a few milliseconds: not worth a cache file.
pub const CACHE_MIN_BYTES: usize = 256 * 1024;

fn cache_key(shown: &Path, text: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut h);
    shown.hash(&mut h);
    text.hash(&mut h);
    format!("{:016x}-{}", h.finish(), text.len())
}

#[derive(Deserialize)]
struct CacheEntry {
    key: String,
    plan: Plan,
}

#[derive(Serialize)]
struct CacheEntryRef<'a> {
    key: &'a str,
    plan: &'a Plan,
}

fn read_cache(entry: &Path, key: &str) -> Option<Plan> {
    let bytes = std::fs::read(entry).ok()?;
    let cached: CacheEntry = serde_json::from_slice(&bytes).ok()?;
    (cached.key == key).then_some(cached.plan)
}

fn write_cache(dir: &Path, entry: &Path, key: &str, plan: &Plan) {
    // No folder, no cache: do not pay for serialising what cannot be kept.
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let Ok(bytes) = serde_json::to_vec(&CacheEntryRef { key, plan }) else {
        return;
    };
    // Write aside, then rename: a reader never sees half an entry.
    let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, entry).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
