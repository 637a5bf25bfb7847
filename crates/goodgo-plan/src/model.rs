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

#[derive(Debug, Clone, Serialize)]
pub struct Milestone {
    pub id: String,
    pub name: String,
    pub phase: Option<u32>,
    pub goal: Option<String>,
    #[serde(skip)]
    pub pos: Pos,
}

/// A dependency as written: a task id, a task code or a milestone id.
#[derive(Debug, Clone)]
pub struct DepRef {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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
        let text =
            std::fs::read_to_string(path).map_err(|source| goodgo_yaml::LoadError::Read {
                path: shown.to_path_buf(),
                source,
            })?;
        Ok(Plan::parse(shown, &text)?)
    }
}
