//! Changing a task's status in the plan's text, keeping every comment and the layout.

use crate::model::{Status, Task};

/// Returns `text` with `task`'s `status:` set to `status`. The task's block runs from its
/// `id:` line to the line before the next task (or the end of the tasks). Only the value
/// after `status:` changes; a trailing comment stays. A task with no `status:` line (an
/// impossible plan, since status is required, but kept safe) gets one after its `id:` line.
pub fn set_status(text: &str, task: &Task, next_task_line: Option<u32>, status: Status) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = (task.pos.line as usize).saturating_sub(1);
    let end = next_task_line
        .map_or(lines.len(), |l| (l as usize).saturating_sub(1))
        .min(lines.len());
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    // The id line is `  - id: X` (or `id: X` inside the item): the item's keys are indented
    // to the column of `id`.
    let key_col = (task.pos.col as usize).saturating_sub(1);
    let id_line = lines.get(start).copied().unwrap_or("");
    let id_key_col = id_line[..key_col.min(id_line.len())]
        .rfind("id:")
        .unwrap_or(0);
    for (k, line) in lines.iter().enumerate().take(end).skip(start) {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let is_item_key = indent == id_key_col || (k == start && trimmed.starts_with("- "));
        if let Some(rest) = trimmed.strip_prefix("status:")
            && is_item_key
        {
            let (value_part, newline) = match rest.strip_suffix('\n') {
                Some(r) => (r, "\n"),
                None => (rest, ""),
            };
            let comment = value_part
                .find(" #")
                .map(|c| &value_part[c..])
                .unwrap_or("");
            out[k] = format!(
                "{}status: {}{}{}",
                &line[..indent],
                status.as_str(),
                comment,
                newline
            );
            return out.concat();
        }
    }
    let pad = " ".repeat(id_key_col);
    out.insert(start + 1, format!("{pad}status: {}\n", status.as_str()));
    out.concat()
}
