//! Validating a plan and resolving it into a graph of task indices.

use std::collections::HashMap;
use std::fmt;

use goodgo_yaml::Pos;

use crate::model::Plan;
use goodgo_graph as graph;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, located in the plan file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub line: u32,
    pub col: u32,
    pub message: String,
    /// Further lines, e.g. one per edge of a cycle.
    pub notes: Vec<String>,
}

impl Diagnostic {
    fn new(severity: Severity, pos: Pos, message: String) -> Self {
        Self {
            severity,
            line: pos.line,
            col: pos.col,
            message,
            notes: Vec::new(),
        }
    }

    /// `path:line:col: error: message`, then the notes indented.
    pub fn render(&self, path: &std::path::Path) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!(
            "{}:{}:{}: {kind}: {}",
            path.display(),
            self.line,
            self.col,
            self.message
        );
        for note in &self.notes {
            out.push_str(&format!("\n    {note}"));
        }
        out
    }
}

/// A checked plan: the file's content plus its dependency graph.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub plan: Plan,
    /// `deps[i]`: the tasks task `i` depends on (groups expanded), sorted by id, no repeats.
    pub deps: Vec<Vec<usize>>,
    /// `dependents[i]`: the tasks that depend on `i`, sorted by id.
    pub dependents: Vec<Vec<usize>>,
    pub ids: Vec<String>,
    pub index: HashMap<String, usize>,
}

/// What a check found. `resolved` is there when there are no errors.
pub struct Outcome {
    pub diagnostics: Vec<Diagnostic>,
    pub resolved: Option<Resolved>,
}

impl Outcome {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Checks `plan`: duplicates, references, self-dependencies, dependencies on a task's own
/// milestone, bad estimates, cycles (errors); done tasks waiting on unfinished ones
/// (warnings). Diagnostics come sorted by position.
pub fn check(plan: Plan) -> Outcome {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let err = |diags: &mut Vec<Diagnostic>, pos: Pos, msg: String| {
        diags.push(Diagnostic::new(Severity::Error, pos, msg))
    };

    // Names: milestone ids, task ids and task codes share one namespace in `deps`.
    let mut milestones: HashMap<&str, Pos> = HashMap::new();
    for m in &plan.milestones {
        if let Some(first) = milestones.insert(&m.id, m.pos) {
            err(
                &mut diags,
                m.pos,
                format!(
                    "duplicate milestone id `{}` (first at line {})",
                    m.id, first.line
                ),
            );
            milestones.insert(&m.id, first);
        }
    }
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut names: HashMap<&str, (usize, Pos)> = HashMap::new();
    for (i, t) in plan.tasks.iter().enumerate() {
        if let Some(&(_, first)) = names.get(t.id.as_str()) {
            err(
                &mut diags,
                t.pos,
                format!(
                    "duplicate task id `{}` (first at line {})",
                    t.id, first.line
                ),
            );
        } else if milestones.contains_key(t.id.as_str()) {
            err(
                &mut diags,
                t.pos,
                format!("task id `{}` is also a milestone id", t.id),
            );
        } else {
            names.insert(&t.id, (i, t.pos));
            index.insert(t.id.clone(), i);
        }
    }
    for (i, t) in plan.tasks.iter().enumerate() {
        let (Some(code), Some(pos)) = (&t.code, t.code_pos) else {
            continue;
        };
        if let Some(&(_, first)) = names.get(code.as_str()) {
            err(
                &mut diags,
                pos,
                format!(
                    "code `{code}` of {} is already used (line {})",
                    t.id, first.line
                ),
            );
        } else if milestones.contains_key(code.as_str()) {
            err(
                &mut diags,
                pos,
                format!("code `{code}` of {} is also a milestone id", t.id),
            );
        } else {
            names.insert(code, (i, pos));
        }
    }

    let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in plan.tasks.iter().enumerate() {
        if milestones.contains_key(t.milestone.as_str()) {
            members.entry(&t.milestone).or_default().push(i);
        } else {
            let known = plan.milestones.iter().map(|m| m.id.as_str());
            err(
                &mut diags,
                t.milestone_pos,
                unknown("milestone", &t.milestone, known),
            );
        }
        if let Some(pos) = t.estimate_pos
            && !(t.estimate.is_finite() && t.estimate > 0.0)
        {
            err(
                &mut diags,
                pos,
                format!(
                    "estimate of {} must be a number of days > 0, not {}",
                    t.id, t.estimate
                ),
            );
        }
    }

    // Resolve every dependency reference.
    let n = plan.tasks.len();
    let mut deps: Vec<Vec<(usize, Pos)>> = vec![Vec::new(); n];
    for (i, t) in plan.tasks.iter().enumerate() {
        for d in &t.deps {
            if let Some(&(j, _)) = names.get(d.name.as_str()) {
                if j == i {
                    err(&mut diags, d.pos, format!("{} depends on itself", t.id));
                } else {
                    deps[i].push((j, d.pos));
                }
            } else if let Some(group) = members.get(d.name.as_str()) {
                if d.name == t.milestone {
                    err(
                        &mut diags,
                        d.pos,
                        format!("{} depends on its own milestone {}", t.id, d.name),
                    );
                } else {
                    deps[i].extend(group.iter().map(|&j| (j, d.pos)));
                }
            } else if milestones.contains_key(d.name.as_str()) {
                // A milestone with no tasks: nothing to wait for.
            } else {
                let known = names.keys().copied().chain(milestones.keys().copied());
                err(&mut diags, d.pos, unknown("dependency", &d.name, known));
            }
        }
    }
    let ids: Vec<String> = plan.tasks.iter().map(|t| t.id.clone()).collect();
    let mut plain: Vec<Vec<usize>> = Vec::with_capacity(n);
    let mut edge_pos: Vec<HashMap<usize, Pos>> = Vec::with_capacity(n);
    for list in &deps {
        let mut pos_of: HashMap<usize, Pos> = HashMap::new();
        for &(j, pos) in list {
            pos_of.entry(j).or_insert(pos);
        }
        let mut js: Vec<usize> = pos_of.keys().copied().collect();
        js.sort_by(|&a, &b| ids[a].cmp(&ids[b]));
        plain.push(js);
        edge_pos.push(pos_of);
    }

    if let Some(cycle) = graph::shortest_cycle(&plain, &ids) {
        let mut shown: Vec<&str> = cycle.iter().map(|&i| ids[i].as_str()).collect();
        shown.push(&ids[cycle[0]]);
        let first_edge = edge_pos[cycle[0]][&cycle[1 % cycle.len()]];
        let mut d = Diagnostic::new(
            Severity::Error,
            first_edge,
            format!("dependency cycle: {}", shown.join(" -> ")),
        );
        for k in 0..cycle.len() {
            let (a, b) = (cycle[k], cycle[(k + 1) % cycle.len()]);
            let pos = edge_pos[a][&b];
            d.notes.push(format!(
                "{} depends on {} at line {}:{}",
                ids[a], ids[b], pos.line, pos.col
            ));
        }
        diags.push(d);
    }

    // Warnings: a done task that waits on something unfinished.
    for (i, t) in plan.tasks.iter().enumerate() {
        if !t.status.is_done() {
            continue;
        }
        for &j in &plain[i] {
            let dep = &plan.tasks[j];
            if !dep.status.is_done() {
                let pos = edge_pos[i][&j];
                diags.push(Diagnostic::new(
                    Severity::Warning,
                    pos,
                    format!(
                        "{} is done but depends on {} which is {}",
                        t.id,
                        dep.id,
                        dep.status.as_str()
                    ),
                ));
            }
        }
    }

    diags.sort_by_key(|d| (d.line, d.col));
    let has_errors = diags.iter().any(|d| d.severity == Severity::Error);
    let resolved = (!has_errors).then(|| {
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, ds) in plain.iter().enumerate() {
            for &d in ds {
                dependents[d].push(i);
            }
        }
        for list in &mut dependents {
            list.sort_by(|&a, &b| ids[a].cmp(&ids[b]));
        }
        Resolved {
            plan,
            deps: plain,
            dependents,
            ids,
            index,
        }
    });
    Outcome {
        diagnostics: diags,
        resolved,
    }
}

fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let mut msg = format!("unknown {what} `{name}`");
    if let Some(best) = goodgo_yaml::did_you_mean(name, known) {
        msg.push_str(&format!(" (did you mean `{best}`?)"));
    }
    msg
}

impl Resolved {
    pub fn task(&self, i: usize) -> &crate::model::Task {
        &self.plan.tasks[i]
    }

    /// Finds a task by id or code.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied().or_else(|| {
            self.plan
                .tasks
                .iter()
                .position(|t| t.code.as_deref() == Some(name))
        })
    }

    pub fn weights(&self) -> Vec<f64> {
        self.plan.tasks.iter().map(|t| t.estimate).collect()
    }

    /// Unfinished tasks.
    pub fn unfinished(&self) -> Vec<bool> {
        self.plan
            .tasks
            .iter()
            .map(|t| !t.status.is_done())
            .collect()
    }

    /// Tasks that are `todo` with every dependency done.
    pub fn is_ready(&self, i: usize) -> bool {
        self.task(i).status == crate::model::Status::Todo
            && self.deps[i].iter().all(|&d| self.task(d).status.is_done())
    }
}
