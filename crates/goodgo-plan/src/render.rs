//! Views of a resolved plan: Mermaid, Graphviz DOT, normalised JSON, a self-contained HTML
//! page with an SVG drawing, and the Markdown plan document.

use std::fmt::Write as _;

use serde_json::json;

use crate::check::Resolved;
use crate::model::{Milestone, Status, Task};
use goodgo_graph as graph;

fn esc_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The normalised graph: groups expanded, defaults filled in.
pub fn json(r: &Resolved) -> serde_json::Value {
    let tasks: Vec<serde_json::Value> = r
        .plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({
                "id": t.id,
                "code": t.code,
                "title": t.title,
                "milestone": t.milestone,
                "status": t.status,
                "priority": t.priority,
                "sprint": t.sprint,
                "estimate": t.estimate,
                "deps": r.deps[i].iter().map(|&d| r.ids[d].clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let milestones: Vec<serde_json::Value> = r
        .plan
        .milestones
        .iter()
        .map(|m| json!({"id": m.id, "name": m.name, "phase": m.phase, "goal": m.goal}))
        .collect();
    json!({ "milestones": milestones, "tasks": tasks })
}

fn node_name(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// How one text graph language writes a plan's drawing; [`draw`] walks the plan once for
/// every language.
struct Syntax<'a> {
    head: &'a str,
    /// Opens the cluster of the `k`-th milestone.
    cluster: &'a dyn Fn(usize, &Milestone) -> String,
    node: &'a dyn Fn(&Task) -> String,
    end_cluster: &'a str,
    /// The edge from a dependency to the task that waits for it.
    edge: &'a dyn Fn(&str, &str) -> String,
    tail: &'a str,
}

/// Each milestone as a cluster of its tasks, then every dependency as an edge.
fn draw(r: &Resolved, syntax: &Syntax) -> String {
    let mut out = String::from(syntax.head);
    for (k, m) in r.plan.milestones.iter().enumerate() {
        out.push_str(&(syntax.cluster)(k, m));
        for t in r.plan.tasks.iter().filter(|t| t.milestone == m.id) {
            out.push_str(&(syntax.node)(t));
        }
        out.push_str(syntax.end_cluster);
    }
    for (i, ds) in r.deps.iter().enumerate() {
        for &d in ds {
            out.push_str(&(syntax.edge)(&r.ids[d], &r.ids[i]));
        }
    }
    out.push_str(syntax.tail);
    out
}

pub fn mermaid(r: &Resolved) -> String {
    draw(
        r,
        &Syntax {
            head: "flowchart LR\n",
            cluster: &|_, m| {
                format!(
                    "  subgraph {}[\"{}: {}\"]\n",
                    node_name(&m.id),
                    m.id,
                    m.name.replace('"', "'")
                )
            },
            node: &|t| {
                format!(
                    "    {}[\"{} {}\"]:::{}\n",
                    node_name(&t.id),
                    t.id,
                    t.title.replace('"', "'"),
                    t.status.as_str()
                )
            },
            end_cluster: "  end\n",
            edge: &|from, to| format!("  {} --> {}\n", node_name(from), node_name(to)),
            tail: "  classDef done fill:#c8e6c9,stroke:#2e7d32\n  classDef doing fill:#fff3c4,stroke:#f9a825\n  classDef todo fill:#eceff1,stroke:#546e7a\n  classDef blocked fill:#ffcdd2,stroke:#c62828\n",
        },
    )
}

pub fn dot(r: &Resolved) -> String {
    draw(
        r,
        &Syntax {
            head: "digraph plan {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n",
            cluster: &|k, m| {
                format!(
                    "  subgraph cluster_{k} {{\n    label=\"{}: {}\";\n",
                    m.id,
                    m.name.replace('"', "'")
                )
            },
            node: &|t| {
                format!(
                    "    \"{}\" [label=\"{}\\n{}\", fillcolor=\"{}\"];\n",
                    t.id,
                    t.id,
                    t.title.replace('"', "'"),
                    color(t.status)
                )
            },
            end_cluster: "  }\n",
            edge: &|from, to| format!("  \"{from}\" -> \"{to}\";\n"),
            tail: "}\n",
        },
    )
}

fn color(s: Status) -> &'static str {
    match s {
        Status::Done => "#c8e6c9",
        Status::Doing => "#fff3c4",
        Status::Todo => "#eceff1",
        Status::Blocked => "#ffcdd2",
    }
}

/// One self-contained page (no network): the graph drawn as SVG, one column per wave,
/// coloured by status, the critical path of unfinished work highlighted.
pub fn html(r: &Resolved, title: &str) -> String {
    let n = r.ids.len();
    let waves = graph::waves(&r.deps, &vec![true; n], &r.ids).unwrap_or_default();
    let crit: Vec<usize> = graph::critical_path(&r.deps, &r.unfinished(), &r.weights(), &r.ids)
        .map(|(p, _)| p)
        .unwrap_or_default();
    let on_crit = |i: usize| crit.contains(&i);
    let crit_edge = |a: usize, b: usize| crit.windows(2).any(|w| w[0] == a && w[1] == b);
    let (col_w, row_h, box_w, box_h, margin) = (230.0, 56.0, 190.0, 40.0, 30.0);
    let mut xy = vec![(0.0f64, 0.0f64); n];
    let tallest = waves.iter().map(Vec::len).max().unwrap_or(0);
    for (k, wave) in waves.iter().enumerate() {
        for (row, &i) in wave.iter().enumerate() {
            xy[i] = (
                margin + k as f64 * col_w,
                margin + 24.0 + row as f64 * row_h,
            );
        }
    }
    let width = margin * 2.0 + waves.len() as f64 * col_w;
    let height = margin * 2.0 + 24.0 + tallest as f64 * row_h;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    for k in 0..waves.len() {
        let _ = writeln!(
            svg,
            "<text x=\"{:.0}\" y=\"{:.0}\" fill=\"#607d8b\">wave {}</text>",
            margin + k as f64 * col_w,
            margin + 8.0,
            k + 1
        );
    }
    for (i, ds) in r.deps.iter().enumerate() {
        for &d in ds {
            let (x1, y1) = (xy[d].0 + box_w, xy[d].1 + box_h / 2.0);
            let (x2, y2) = (xy[i].0, xy[i].1 + box_h / 2.0);
            let mid = (x1 + x2) / 2.0;
            let (stroke, w) = if crit_edge(d, i) {
                ("#d32f2f", 3)
            } else {
                ("#90a4ae", 1)
            };
            let _ = writeln!(
                svg,
                "<path d=\"M{x1:.0},{y1:.0} C{mid:.0},{y1:.0} {mid:.0},{y2:.0} {x2:.0},{y2:.0}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{w}\"><title>{} depends on {}</title></path>",
                esc_html(&r.ids[i]),
                esc_html(&r.ids[d])
            );
        }
    }
    for (i, t) in r.plan.tasks.iter().enumerate() {
        let (x, y) = xy[i];
        let (stroke, w) = if on_crit(i) {
            ("#d32f2f", 3)
        } else {
            ("#546e7a", 1)
        };
        let mut label = t.title.clone();
        if label.chars().count() > 26 {
            label = label.chars().take(25).collect::<String>() + "…";
        }
        let _ = writeln!(
            svg,
            "<g><title>{} {} ({}, {})</title><rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"{box_w}\" height=\"{box_h}\" rx=\"6\" fill=\"{}\" stroke=\"{stroke}\" stroke-width=\"{w}\"/><text x=\"{:.0}\" y=\"{:.0}\" font-weight=\"bold\">{}</text><text x=\"{:.0}\" y=\"{:.0}\">{}</text></g>",
            esc_html(&t.id),
            esc_html(&t.title),
            t.milestone,
            t.status.as_str(),
            color(t.status),
            x + 8.0,
            y + 16.0,
            esc_html(&t.id),
            x + 8.0,
            y + 32.0,
            esc_html(&label)
        );
    }
    svg.push_str("</svg>\n");
    let legend = [Status::Done, Status::Doing, Status::Todo, Status::Blocked]
        .iter()
        .map(|s| format!("<span style=\"background:{};border:1px solid #546e7a;padding:2px 8px;margin-right:6px\">{}</span>", color(*s), s.as_str()))
        .collect::<String>();
    let crit_ids: Vec<&str> = crit.iter().map(|&i| r.ids[i].as_str()).collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>body{{font-family:sans-serif;margin:1.5em}} .wrap{{overflow:auto;border:1px solid #cfd8dc}}</style></head>\n<body><h1>{t}</h1>\n<p>{legend}<span style=\"color:#d32f2f;font-weight:bold\">critical path</span>: {}</p>\n<div class=\"wrap\">\n{svg}</div>\n</body></html>\n",
        esc_html(&crit_ids.join(" → ")),
        t = esc_html(title)
    )
}

/// `IMPLEMENTATION_PLAN.md` in the seed's structure: per milestone the goal, the execution
/// order by waves (within the milestone; earlier milestones count as satisfied), and the
/// dependency map table.
pub fn markdown(r: &Resolved, source: &str) -> String {
    let mut out = format!(
        "# Implementation Plan\n\n<!-- Generated from {source} by `goodgo plan render`; edit the YAML, not this file. -->\n\n"
    );
    let total = r.plan.tasks.len();
    let done = r.plan.tasks.iter().filter(|t| t.status.is_done()).count();
    let _ = writeln!(out, "Progress: {done}/{total} tasks done.\n");
    let label = |i: usize| {
        let t = r.task(i);
        match &t.code {
            Some(code) => format!("[{}] {} ({code})", t.id, t.title),
            None => format!("[{}] {}", t.id, t.title),
        }
    };
    let short = |i: usize| r.task(i).code.clone().unwrap_or_else(|| r.ids[i].clone());
    for m in &r.plan.milestones {
        let phase = m.phase.map(|p| format!(" (Phase {p})")).unwrap_or_default();
        let _ = writeln!(out, "## {}: {}{phase}\n", m.id, m.name);
        if let Some(goal) = &m.goal {
            let _ = writeln!(out, "Goal: {goal}\n");
        }
        let include: Vec<bool> = r.plan.tasks.iter().map(|t| t.milestone == m.id).collect();
        let members = include.iter().filter(|&&b| b).count();
        let done_here = r
            .plan
            .tasks
            .iter()
            .filter(|t| t.milestone == m.id && t.status.is_done())
            .count();
        let _ = writeln!(out, "Status: {done_here}/{members} done.\n");
        if members == 0 {
            continue;
        }
        out.push_str("Execution order:\n\n");
        let waves = graph::waves(&r.deps, &include, &r.ids).unwrap_or_default();
        for (k, wave) in waves.iter().enumerate() {
            // Tasks of one wave run in parallel, but each waits only on its own
            // dependencies: group the wave by identical dependency lists, one line each.
            let mut groups: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
            for &i in wave {
                let mut after: Vec<String> = r.deps[i].iter().map(|&d| short(d)).collect();
                after.sort();
                after.dedup();
                match groups.iter_mut().find(|(a, _)| *a == after) {
                    Some((_, members)) => members.push(i),
                    None => groups.push((after, vec![i])),
                }
            }
            let line = |after: &[String], members: &[usize]| {
                let names: Vec<String> = members.iter().map(|&i| label(i)).collect();
                let when = if after.is_empty() {
                    "no deps".to_string()
                } else {
                    format!("after {}", after.join(", "))
                };
                format!("{} ({when})", names.join(" + "))
            };
            match groups.as_slice() {
                [(after, members)] if members.len() == 1 => {
                    let _ = writeln!(out, "{}. {}", k + 1, line(after, members));
                }
                [(after, members)] => {
                    let _ = writeln!(out, "{}. In parallel: {}", k + 1, line(after, members));
                }
                _ => {
                    let _ = writeln!(out, "{}. In parallel:", k + 1);
                    for (after, members) in &groups {
                        let _ = writeln!(out, "   - {}", line(after, members));
                    }
                }
            }
        }
        out.push_str("\nDependency map:\n\n| Task | Depends On | Status |\n|---|---|---|\n");
        for (i, t) in r
            .plan
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.milestone == m.id)
        {
            let task = match &t.code {
                Some(code) => format!("{} ({code})", t.id),
                None => t.id.clone(),
            };
            let written: Vec<&str> = t.deps.iter().map(|d| d.name.as_str()).collect();
            let deps = if written.is_empty() {
                "None".to_string()
            } else {
                written.join(", ")
            };
            let _ = writeln!(out, "| {task} | {deps} | {} |", r.task(i).status.as_str());
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::check;
    use crate::model::Plan;

    /// Every task line of the execution order, as (task ids on the line, the "after" list).
    fn execution_lines(md: &str) -> Vec<(Vec<String>, Vec<String>)> {
        let mut lines = Vec::new();
        let mut in_order = false;
        for line in md.lines() {
            if line == "Execution order:" {
                in_order = true;
                continue;
            }
            if line.starts_with("Dependency map:") {
                in_order = false;
            }
            if !in_order || !line.contains('[') {
                continue;
            }
            let ids: Vec<String> = line
                .split('[')
                .skip(1)
                .map(|s| s.split(']').next().unwrap().to_string())
                .collect();
            let (_, when) = line.rsplit_once(" (").unwrap();
            let when = when.strip_suffix(')').unwrap();
            let when = when.strip_prefix("parallel, ").unwrap_or(when);
            let after = match when.strip_prefix("after ") {
                Some(list) => list.split(", ").map(str::to_string).collect(),
                None => {
                    assert_eq!(when, "no deps", "{line}");
                    Vec::new()
                }
            };
            lines.push((ids, after));
        }
        lines
    }

    #[test]
    fn each_execution_line_lists_exactly_its_own_tasks_dependencies() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/plan.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let r = check::check(Plan::parse(Path::new("docs/plan.yaml"), &text).unwrap())
            .resolved
            .unwrap();
        let md = markdown(&r, "docs/plan.yaml");
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (ids, after) in execution_lines(&md) {
            for id in ids {
                let i = r.find(&id).unwrap();
                let mut own: Vec<String> = r.deps[i]
                    .iter()
                    .map(|&d| r.task(d).code.clone().unwrap_or_else(|| r.ids[d].clone()))
                    .collect();
                own.sort();
                own.dedup();
                assert_eq!(own, after, "{id} is listed after {after:?}");
                *seen.entry(id).or_default() += 1;
            }
        }
        assert_eq!(seen.len(), r.ids.len(), "every task has a line");
        assert!(seen.values().all(|&n| n == 1), "no task twice: {seen:?}");
    }
}
