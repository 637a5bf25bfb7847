//! Following a swarm rollout: the service's update state (`updating` → `completed`, or
//! `rollback_started` → `rollback_completed`) and the newest task of every replica, drawn
//! as one progress line per replica (plain lines when stderr is not a terminal), with the
//! tasks' errors when it fails.
//!
//! Why apart from [`super::swarm`]: that module decides what runs; this one only reads what
//! the manager reports, so the rules of "done" and "failed" sit in one place.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use goodgo_stack::docker::{DockerRuntime, TaskState};

use crate::printer::Printer;

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every replica runs the new release (after the monitor window).
    Completed,
    /// Swarm rolled the update back by itself; why, with the tasks' errors.
    RolledBack(String),
    /// Neither within the deadline, or paused; why.
    Stuck(String),
}

/// `: task errors: …` for the failed tasks (of release `serves` only, when given), or "".
pub fn task_errors(tasks: &[TaskState], serves: Option<&str>) -> String {
    let mut errors: Vec<String> = Vec::new();
    for t in tasks {
        if serves.is_some_and(|s| t.env_value("GOODGO_RELEASE") != Some(s)) {
            continue;
        }
        // A task that failed says why in its error; one stopped by the rollback only in its
        // message, as does one still starting (never healthy).
        let why = match (&t.error, t.state.as_str()) {
            (Some(e), _) => Some(e.clone()),
            (
                None,
                "running" | "new" | "pending" | "assigned" | "accepted" | "preparing" | "ready",
            ) => None,
            (None, _) if !t.message.is_empty() => Some(t.message.clone()),
            _ => None,
        };
        if let Some(e) = why {
            let line = format!("{e} ({})", t.state);
            if !errors.contains(&line) {
                errors.push(line);
            }
        }
    }
    if errors.is_empty() {
        String::new()
    } else {
        format!("; task errors: {}", errors.join("; "))
    }
}

/// The newest task of each replica slot.
fn by_slot(tasks: &[TaskState]) -> BTreeMap<i64, &TaskState> {
    let mut slots = BTreeMap::new();
    // Newest first: the first task seen in a slot is its newest.
    for t in tasks {
        if let Some(slot) = t.slot {
            slots.entry(slot).or_insert(t);
        }
    }
    slots
}

fn describe(t: &TaskState) -> String {
    let release = t.env_value("GOODGO_RELEASE").unwrap_or("?");
    let error = t
        .error
        .as_ref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    let state = if t.state == "starting" {
        "starting (waiting for /readyz)"
    } else {
        &t.state
    };
    format!("{release} {state}{error}")
}

/// Follows service `name` rolling out release `serves` until it completes, swarm rolls
/// it back, or `deadline` passes. `before` is the update start the service reported before
/// this rollout (`None` for a service just created: then done means `replicas` running
/// tasks of the release).
pub async fn follow(
    docker: &DockerRuntime,
    name: &str,
    serves: &str,
    before: Option<Option<String>>,
    replicas: u64,
    deadline: Instant,
    printer: &Printer,
) -> Result<Outcome> {
    let lines = printer.lines();
    let mut bars = BTreeMap::new();
    let mut shown: BTreeMap<i64, String> = BTreeMap::new();
    let live = printer.live_progress() && !printer.json();
    // Why swarm started rolling back (the task that failed), said while it rolls back.
    let mut reason: Option<String> = None;
    loop {
        let service = docker
            .service(name)
            .await?
            .with_context(|| format!("the service {name} vanished"))?;
        let tasks = docker.tasks(name).await?;
        for (slot, task) in by_slot(&tasks) {
            let text = describe(task);
            if shown.get(&slot) == Some(&text) {
                continue;
            }
            if live {
                bars.entry(slot)
                    .or_insert_with(|| printer.job_line(&lines, &format!("replica {slot}"), ""))
                    .set_message(text.clone());
            } else {
                printer.status(&format!("  replica {slot}: {text}"));
            }
            shown.insert(slot, text);
        }
        let errors = || task_errors(&tasks, Some(serves));
        match &before {
            None => {
                let running = tasks
                    .iter()
                    .filter(|t| {
                        t.state == "running"
                            && t.desired == "running"
                            && t.env_value("GOODGO_RELEASE") == Some(serves)
                    })
                    .count();
                if running as u64 >= replicas {
                    return Ok(Outcome::Completed);
                }
            }
            Some(started) if service.update_started != *started => {
                let message = service.update_message.clone().unwrap_or_default();
                if service.update_state.as_deref() == Some("rollback_started") && reason.is_none() {
                    reason = Some(message.clone());
                }
                match service.update_state.as_deref() {
                    Some("completed") => return Ok(Outcome::Completed),
                    Some("rollback_completed") => {
                        let why = reason.clone().unwrap_or(message);
                        return Ok(Outcome::RolledBack(format!("{why}{}", errors())));
                    }
                    Some(state @ ("paused" | "rollback_paused")) => {
                        return Ok(Outcome::Stuck(format!(
                            "the update is {state}: {message}{}",
                            errors()
                        )));
                    }
                    _ => {}
                }
            }
            Some(_) => {}
        }
        if Instant::now() >= deadline {
            return Ok(Outcome::Stuck(format!(
                "release {serves} was not running on every replica in time{}",
                errors()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits for a rollback of service `name` to finish (up to `limit`): one of an update
/// started after `before` (the update start reported before this run's).
pub async fn wait_rolled_back(
    docker: &DockerRuntime,
    name: &str,
    before: &Option<String>,
    limit: Duration,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let service = docker.service(name).await?.unwrap_or_default();
        let state = if service.update_started == *before {
            String::new()
        } else {
            service.update_state.unwrap_or_default()
        };
        match state.as_str() {
            "rollback_completed" => return Ok(()),
            "rollback_paused" => anyhow::bail!("swarm paused the rollback of service {name}"),
            _ if Instant::now() >= deadline => {
                anyhow::bail!(
                    "the rollback of service {name} did not finish within {} s (state `{state}`)",
                    limit.as_secs()
                )
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(
        slot: i64,
        release: &str,
        state: &str,
        error: Option<&str>,
        created: &str,
    ) -> TaskState {
        TaskState {
            id: format!("t{slot}{created}"),
            slot: Some(slot),
            state: state.into(),
            desired: "running".into(),
            error: error.map(str::to_string),
            message: String::new(),
            image: "x".into(),
            env: vec![format!("GOODGO_RELEASE={release}")],
            created: created.into(),
        }
    }

    #[test]
    fn the_newest_task_of_each_slot_and_the_release_errors() {
        let tasks = vec![
            task(1, "r3", "failed", Some("task: non-zero exit (1)"), "3"),
            task(2, "r2", "running", None, "2"),
            task(1, "r2", "running", None, "1"),
            task(1, "r3", "failed", Some("task: non-zero exit (1)"), "0"),
        ];
        let slots = by_slot(&tasks);
        assert_eq!(slots.len(), 2);
        assert_eq!(describe(slots[&1]), "r3 failed: task: non-zero exit (1)");
        assert_eq!(describe(slots[&2]), "r2 running");
        assert_eq!(
            task_errors(&tasks, Some("r3")),
            "; task errors: task: non-zero exit (1) (failed)"
        );
        assert_eq!(task_errors(&tasks, Some("r2")), "");
    }
}
