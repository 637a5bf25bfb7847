//! The plan file format and its in-memory form.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use goodgo_yaml::{Pos, Spanned, YamlError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::PlanError;

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
    status: Spanned<Status>,
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
    /// Where the `status:` value is written (quotes included) and its length in characters:
    /// what `plan set` replaces. Always set for a plan read from a file.
    pub status_at: Option<Pos>,
    pub status_len: u32,
}

impl From<RawMilestone> for Milestone {
    fn from(m: RawMilestone) -> Self {
        Milestone {
            pos: Pos::of(&m.id),
            id: m.id.value,
            name: m.name,
            phase: m.phase,
            goal: m.goal,
        }
    }
}

impl From<RawTask> for Task {
    fn from(t: RawTask) -> Self {
        Task {
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
            status_at: Some(Pos::of(&t.status)),
            status_len: u32::try_from(t.status.referenced.span().len()).unwrap_or(0),
            status: t.status.value,
        }
    }
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
        let raw = match parse_in_parallel(path, text) {
            Some(raw) => raw,
            None => goodgo_yaml::from_str::<RawPlan>(path, text)?,
        };
        let milestones = raw.milestones.into_iter().map(Milestone::from).collect();
        let tasks = raw.tasks.into_iter().map(Task::from).collect();
        Ok(Plan {
            path: path.to_path_buf(),
            milestones,
            tasks,
        })
    }

    /// Reads and parses a plan file.
    pub fn load(path: &Path, shown: &Path) -> Result<Plan, PlanError> {
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
    ) -> Result<Plan, PlanError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| goodgo_yaml::LoadError::Read {
                path: shown.to_path_buf(),
                source,
            })?;
        let Some(dir) = cache_dir.filter(|_| text.len() >= CACHE_MIN_BYTES) else {
            return Ok(Plan::parse(shown, &text)?);
        };
        let key = cache_key(shown, &text);
        // One entry per plan file (named by its path), holding the key of its last content.
        let entry = dir.join(format!("plan-{}.json", &cache_key(shown, "")[..16]));
        if let Some(plan) = read_cache(&entry, &key) {
            return Ok(plan);
        }
        let plan = Plan::parse(shown, &text)?;
        write_cache(dir, &entry, &key, &plan);
        Ok(plan)
    }
}

/// Plans at least this large are parsed in parallel chunks (see [`parse_in_parallel`]).
pub const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// Where a plan's text splits into independent pieces: the part before the top-level
/// `tasks:` line, and runs of whole task items. `None` when the layout is not the plain
/// block form this relies on (then the whole text is parsed at once).
fn split_plan(text: &str, pieces: usize) -> Option<(&str, Vec<(usize, &str)>)> {
    let mut offset = 0;
    let mut tasks_at: Option<(usize, usize)> = None; // (byte offset after the line, line number)
    let mut items: Vec<(usize, usize)> = Vec::new(); // (byte offset, 1-based line)
    let mut indent: Option<usize> = None;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim_end();
        let content = trimmed.trim_start();
        let spaces = trimmed.len() - content.len();
        if let Some((_, _)) = tasks_at {
            if content.is_empty() || content.starts_with('#') {
                // blank or comment: part of the current item
            } else if spaces == 0 && !content.starts_with('-') {
                return None; // another top-level key after `tasks:`
            } else if content.starts_with("- ") || content == "-" {
                let here = *indent.get_or_insert(spaces);
                if spaces == here {
                    items.push((offset, line_no));
                } else if spaces < here {
                    return None;
                }
            } else if indent.is_none_or(|here| spaces <= here) {
                return None;
            }
        } else if spaces == 0
            && (trimmed == "tasks:"
                || trimmed.starts_with("tasks: #")
                || trimmed.starts_with("tasks:  #"))
        {
            tasks_at = Some((offset + line.len(), line_no));
        }
        offset += line.len();
    }
    let (tasks_end, _) = tasks_at?;
    if items.len() < pieces * 2 {
        return None;
    }
    let head_end = tasks_end
        - text[..tasks_end]
            .split_inclusive('\n')
            .next_back()
            .map_or(0, str::len);
    let per = items.len().div_ceil(pieces);
    let mut chunks = Vec::new();
    for group in items.chunks(per) {
        let start = group[0].0;
        let line = group[0].1;
        let end = items
            .iter()
            .find(|(o, _)| *o > group[group.len() - 1].0)
            .map_or(text.len(), |(o, _)| *o);
        chunks.push((line, &text[start..end]));
    }
    Some((&text[..head_end], chunks))
}

/// Parses a large plan on several threads: the head (milestones) and runs of task items
/// each as a document of its own, padded with newlines so every position is the one in
/// the file. Returns `None` whenever anything is off (small file, unusual layout, any
/// piece failing to parse, a `tasks` key in the head): the caller then parses the whole
/// text, which also produces the canonical error message.
fn parse_in_parallel(path: &Path, text: &str) -> Option<RawPlan> {
    if text.len() < PARALLEL_MIN_BYTES {
        return None;
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    if threads < 2 {
        return None;
    }
    let (head, chunks) = split_plan(text, threads)?;
    std::thread::scope(|scope| {
        let head_job = scope.spawn(|| goodgo_yaml::from_str::<RawPlan>(path, head).ok());
        let jobs: Vec<_> = chunks
            .iter()
            .map(|(line, chunk)| {
                scope.spawn(move || {
                    let mut doc = "\n".repeat(line.saturating_sub(2));
                    doc.push_str("tasks:\n");
                    doc.push_str(chunk);
                    goodgo_yaml::from_str::<RawPlan>(path, &doc).ok()
                })
            })
            .collect();
        let mut plan = head_job.join().ok()??;
        if !plan.tasks.is_empty() {
            return None;
        }
        for job in jobs {
            let part = job.join().ok()??;
            if !part.milestones.is_empty() {
                return None;
            }
            plan.tasks.extend(part.tasks);
        }
        Some(plan)
    })
}

/// Plans smaller than this parse in a few milliseconds: not worth a cache file.
pub const CACHE_MIN_BYTES: usize = 256 * 1024;

/// A SHA-256 over goodgo's version, the shown path and the text, each prefixed with its
/// length (so no two different triples give the same input), in hex.
fn cache_key(shown: &Path, text: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        env!("CARGO_PKG_VERSION").as_bytes(),
        shown.as_os_str().as_encoded_bytes(),
        text.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn big_plan(tasks: usize) -> String {
        let mut yaml = String::from(
            "# a generated plan\nmilestones:\n  - id: M\n    name: Main & more\ntasks:\n",
        );
        for i in 0..tasks {
            let deps = if i == 0 {
                String::new()
            } else {
                format!("T{:05}", i - 1)
            };
            yaml.push_str(&format!("  # task {i}\n  - id: T{i:05}\n    title: \"Task {i}: with a colon\"\n    milestone: M\n    deps: [{deps}]\n    estimate: {}\n    status: todo\n\n", 1 + i % 3));
        }
        yaml
    }

    #[test]
    fn cache_keys_follow_path_and_content() {
        let k = |p: &str, t: &str| cache_key(Path::new(p), t);
        assert_eq!(k("a.yaml", "x"), k("a.yaml", "x"));
        assert_eq!(k("a.yaml", "x").len(), 64);
        assert_ne!(k("a.yaml", "x"), k("a.yaml", "y"));
        assert_ne!(k("a.yaml", "x"), k("b.yaml", "x"));
        // Lengths are part of the input: moving a byte between path and text changes the key.
        assert_ne!(k("a.yamlx", ""), k("a.yaml", "x"));
    }

    #[test]
    fn status_spans_cover_the_value_as_written() {
        let text = "tasks:\n  - id: A\n    title: a\n    milestone: M\n    status: todo # x\n  - {id: B, title: b, milestone: M, status: \"done\"}\n  - status: 'doing'\n    id: C\n    title: c\n    milestone: M\n";
        let plan = Plan::parse(Path::new("p.yaml"), text).unwrap();
        let spans: Vec<(Option<Pos>, u32)> = plan
            .tasks
            .iter()
            .map(|t| (t.status_at, t.status_len))
            .collect();
        let at = |line, col, len| (Some(Pos::new(line, col)), len);
        assert_eq!(spans, vec![at(5, 13, 4), at(6, 45, 6), at(7, 13, 7)]);
    }

    #[test]
    fn parallel_parse_equals_the_whole_parse_positions_included() {
        let text = big_plan(3000);
        assert!(text.len() >= PARALLEL_MIN_BYTES);
        let path = Path::new("plan.yaml");
        let parallel = parse_in_parallel(path, &text).expect("plain layout splits");
        let whole: RawPlan = goodgo_yaml::from_str(path, &text).unwrap();
        assert_eq!(parallel.tasks.len(), whole.tasks.len());
        for (a, b) in parallel.tasks.iter().zip(&whole.tasks) {
            assert_eq!((&a.id.value, Pos::of(&a.id)), (&b.id.value, Pos::of(&b.id)));
            let da: Vec<Pos> = a.deps.iter().map(Pos::of).collect();
            let db: Vec<Pos> = b.deps.iter().map(Pos::of).collect();
            assert_eq!(da, db);
            assert_eq!(Pos::of(&a.status), Pos::of(&b.status));
            assert_eq!(
                a.status.referenced.span().len(),
                b.status.referenced.span().len()
            );
        }
        assert_eq!(parallel.milestones.len(), 1);
    }

    #[test]
    fn unusual_layouts_and_errors_fall_back_to_the_whole_parse() {
        let path = Path::new("plan.yaml");
        let mut text = big_plan(3000);
        text.push_str("extra: 1\n");
        assert!(
            parse_in_parallel(path, &text).is_none(),
            "a key after tasks"
        );
        let err = Plan::parse(path, &text).unwrap_err();
        assert!(
            err.message.contains("unknown key `extra`"),
            "{}",
            err.message
        );
        let mut bad = big_plan(3000);
        bad = bad.replacen("    status: todo\n", "    status: finished\n", 2000);
        let err = Plan::parse(path, &bad).unwrap_err();
        assert_eq!(
            (err.pos.line, err.pos.col),
            (12, 13),
            "the first error, from the whole parse: {err}"
        );
    }
}
