//! Changing a task's status in the plan's text, keeping every comment and the layout.
//!
//! The model records where each task's `status:` value is written (line, column, length),
//! so the edit replaces exactly that text, whatever the task's style (block or flow) or key
//! order. [`set_status_checked`] then re-reads the result and refuses it unless it is the
//! same plan with exactly that one status changed.

use std::path::Path;

use goodgo_yaml::Pos;

use crate::model::{Plan, Status, Task};

/// Why a status could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no task number {0} in the plan")]
    NoTask(usize),
    #[error("cannot change the status of {id} safely: {why}")]
    Unsafe { id: String, why: &'static str },
    /// The edited text does not parse. The parse error is kept but is not a cause in the
    /// chain: it points into text that was never written, not into the user's file.
    #[error(
        "cannot change the status of {id} safely: the edited file would not read back ({reread})"
    )]
    Unreadable {
        id: String,
        reread: goodgo_yaml::YamlError,
    },
}

impl goodgo_diag::Diagnostic for EditError {
    fn class(&self) -> Option<goodgo_diag::Class> {
        Some(match self {
            EditError::NoTask(_) => goodgo_diag::Class::Input,
            EditError::Unsafe { .. } | EditError::Unreadable { .. } => goodgo_diag::Class::Failed,
        })
    }
}

/// The byte offset of a 1-based line and character column in `text`.
fn offset_of(text: &str, pos: Pos) -> Option<usize> {
    let mut start = 0;
    for (k, line) in text.split_inclusive('\n').enumerate() {
        if k + 1 == pos.line as usize {
            let col = (pos.col as usize).checked_sub(1)?;
            return match line.char_indices().nth(col) {
                Some((b, _)) => Some(start + b),
                None if line.chars().count() == col => Some(start + line.len()),
                None => None,
            };
        }
        start += line.len();
    }
    None
}

/// Returns `text` with `task`'s status set to `status`, or `None` when the text is not what
/// the task's recorded positions say it is.
///
/// With a recorded `status:` value, exactly that value (quotes included) is replaced; a
/// trailing comment, the key order and the style stay. Without one, a `status:` key is
/// added: `, status: X` before the closing brace of a flow mapping (`- {id: A}`), or a
/// line after the `id:` line, at the indentation of `id`, in a block mapping.
pub fn set_status(text: &str, task: &Task, status: Status) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    match task.status_at {
        Some(at) => {
            let start = offset_of(text, at)?;
            let len = text[start..]
                .char_indices()
                .nth(task.status_len as usize)
                .map_or(text.len() - start, |(b, _)| b);
            let written = &text[start..start + len];
            let bare = written.trim_matches(|c| c == '"' || c == '\'');
            if Status::parse(bare) != Some(task.status) {
                return None;
            }
            out.push_str(&text[..start]);
            out.push_str(status.as_str());
            out.push_str(&text[start + len..]);
        }
        None => {
            let value = offset_of(text, task.pos)?;
            let line_start = text[..value].rfind('\n').map_or(0, |i| i + 1);
            let key = line_start + text[line_start..value].rfind("id")?;
            let before = text[..key].trim_end_matches([' ', '\t']);
            if before.ends_with('{') || before.ends_with(',') {
                let close = closing_brace(text, value)?;
                let end = text[..close].trim_end_matches([' ', '\t']).len();
                out.push_str(&text[..end]);
                out.push_str(", status: ");
                out.push_str(status.as_str());
                out.push_str(&text[end..]);
            } else {
                let indent = text[line_start..key].chars().count();
                let line_end = text[value..].find('\n').map(|i| value + i + 1);
                let at = line_end.unwrap_or(text.len());
                out.push_str(&text[..at]);
                if line_end.is_none() {
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent));
                out.push_str("status: ");
                out.push_str(status.as_str());
                out.push('\n');
                out.push_str(&text[at..]);
            }
        }
    }
    Some(out)
}

/// The byte offset of the `}` closing the flow mapping that `from` is inside, skipping
/// quoted strings and nested collections.
fn closing_brace(text: &str, from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in text[from..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, ']') => depth = depth.checked_sub(1)?,
            (None, '}') if depth == 0 => return Some(from + i),
            (None, '}') => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Everything a plan says except positions, for comparing two readings of a file.
fn essence(plan: &Plan) -> (Vec<String>, Vec<String>) {
    let milestones = plan
        .milestones
        .iter()
        .map(|m| format!("{:?}", (&m.id, &m.name, m.phase, &m.goal)))
        .collect();
    let tasks = plan
        .tasks
        .iter()
        .map(|t| {
            let deps: Vec<&str> = t.deps.iter().map(|d| d.name.as_str()).collect();
            format!(
                "{:?}",
                (
                    &t.id,
                    &t.code,
                    &t.title,
                    &t.milestone,
                    deps,
                    t.priority,
                    t.sprint,
                    t.estimate.to_bits(),
                    t.status
                )
            )
        })
        .collect();
    (milestones, tasks)
}

/// [`set_status`] on task `index` of `plan` (read from `text`), then the invariant: the
/// edited text re-reads (as `path`) to the same plan with exactly that status changed.
/// Anything else is refused and nothing should be written.
pub fn set_status_checked(
    path: &Path,
    text: &str,
    plan: &Plan,
    index: usize,
    status: Status,
) -> Result<String, EditError> {
    let task = plan.tasks.get(index).ok_or(EditError::NoTask(index))?;
    let unsafe_edit = |why: &'static str| EditError::Unsafe {
        id: task.id.clone(),
        why,
    };
    let edited = set_status(text, task, status)
        .ok_or_else(|| unsafe_edit("its `status:` is not where the file was read"))?;
    let reread = Plan::parse(path, &edited).map_err(|reread| EditError::Unreadable {
        id: task.id.clone(),
        reread,
    })?;
    let mut expected = plan.clone();
    expected.tasks[index].status = status;
    if essence(&reread) != essence(&expected) {
        return Err(unsafe_edit(
            "the edited file would read back as a different plan",
        ));
    }
    Ok(edited)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `text` with task `id` set to `status` (the edit must succeed).
    #[track_caller]
    fn set(text: &str, id: &str, status: Status) -> String {
        let path = Path::new("plan.yaml");
        let plan = Plan::parse(path, text).unwrap();
        let i = plan.tasks.iter().position(|t| t.id == id).unwrap();
        set_status_checked(path, text, &plan, i, status).unwrap()
    }

    #[track_caller]
    fn assert_contains(text: &str, part: &str) {
        assert!(text.contains(part), "{text}");
    }

    const HEAD: &str = "milestones:\n  - id: M\n    name: Main\ntasks:\n";

    /// A plan file: one milestone, then `tasks`.
    fn plan(tasks: &str) -> String {
        format!("{HEAD}{tasks}")
    }

    #[test]
    fn block_style_changes_only_the_value() {
        let text = plan(
            "  - id: A\n    title: a\n    milestone: M\n    status: todo\n  - id: B\n    title: b\n    milestone: M\n    status: todo\n",
        );
        let out = set(&text, "B", Status::Done);
        let at = text.rfind("status: todo").unwrap();
        let expected = format!("{}status: done{}", &text[..at], &text[at + 12..]);
        assert_eq!(out, expected);
        assert_eq!(out.matches("status: todo").count(), 1);
    }

    #[test]
    fn flow_style_tasks() {
        let text = plan(
            "  - {id: A, title: a, milestone: M, status: todo}\n  - { id: B, title: b, milestone: M, status: \"todo\" }\n",
        );
        let out = set(&text, "B", Status::Doing);
        assert_eq!(
            out,
            plan(
                "  - {id: A, title: a, milestone: M, status: todo}\n  - { id: B, title: b, milestone: M, status: doing }\n"
            )
        );
        let out = set(&text, "A", Status::Blocked);
        assert_contains(&out, "{id: A, title: a, milestone: M, status: blocked}");
    }

    #[test]
    fn status_before_id_and_other_key_orders() {
        let text = plan(
            "  - status: todo\n    id: A\n    title: a\n    milestone: M\n  - title: b\n    status: todo\n    milestone: M\n    id: B\n",
        );
        let out = set(&text, "A", Status::Done);
        assert_contains(&out, "  - status: done\n    id: A\n");
        assert_contains(&out, "    status: todo\n    milestone: M\n    id: B");
        let out = set(&text, "B", Status::Done);
        assert_contains(&out, "  - status: todo\n    id: A\n");
        assert_contains(&out, "    status: done\n    milestone: M\n    id: B");
    }

    #[test]
    fn trailing_comments_and_other_text_stay() {
        let text = format!(
            "# the plan\n{HEAD}  - id: A   # first\n    title: \"status: todo\" # not this one\n    milestone: M\n    status:   todo   # since May\n"
        );
        let out = set(&text, "A", Status::Done);
        assert_eq!(
            out,
            text.replace(
                "status:   todo   # since May",
                "status:   done   # since May"
            )
        );
    }

    #[test]
    fn a_task_without_status_gets_one() {
        let block = "tasks:\n  - id: A\n    title: a\n";
        let mut task = Plan::parse(
            Path::new("p.yaml"),
            "tasks:\n  - id: A\n    title: a\n    milestone: M\n    status: todo\n",
        )
        .unwrap()
        .tasks
        .remove(0);
        task.status_at = None;
        assert_eq!(
            set_status(block, &task, Status::Done).unwrap(),
            "tasks:\n  - id: A\n    status: done\n    title: a\n"
        );
        assert_eq!(
            set_status("tasks:\n  - id: A", &task, Status::Done).unwrap(),
            "tasks:\n  - id: A\n    status: done\n"
        );
        let flow = "tasks:\n  - {id: A, title: \"a, {b}\" }\n";
        assert_eq!(
            set_status(flow, &task, Status::Doing).unwrap(),
            "tasks:\n  - {id: A, title: \"a, {b}\", status: doing }\n"
        );
    }

    #[test]
    fn a_stale_position_is_refused() {
        let text = plan("  - id: A\n    title: a\n    milestone: M\n    status: todo\n");
        let path = Path::new("plan.yaml");
        let plan = Plan::parse(path, &text).unwrap();
        let moved = text.replace("tasks:\n", "tasks:\n\n");
        let err = set_status_checked(path, &moved, &plan, 0, Status::Done).unwrap_err();
        assert!(
            err.to_string().contains("cannot change the status of A"),
            "{err}"
        );
    }
}
