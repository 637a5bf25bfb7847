//! `deploy status`, `deploy history` and `deploy down`: what serves (asked of the proxy, the
//! engine or the swarm manager, never re-derived from files), what was released, and
//! removing the target.

use std::fmt::Write as _;

use anyhow::Result;
use goodgo_stack::docker::DockerRuntime;
use serde_json::json;

use super::history::History;
use super::local::{self, LABEL_COMMIT, LABEL_IMAGE, LABEL_RELEASE, Target};
use crate::error::ExitStatus;
use crate::printer::Printer;

pub async fn status(
    docker: &DockerRuntime,
    target: &Target,
    printer: &Printer,
) -> Result<ExitStatus> {
    let history = History::read(&target.dir)?;
    let proxy = local::proxy_container(docker, target).await?;
    let (serving, slots) = match &proxy {
        Some(p) if p.container.running() => {
            let slots = p.runtime.stats().await.unwrap_or_default();
            (local::serving(docker, target, p).await?, slots)
        }
        _ => (None, Vec::new()),
    };
    let releases = local::releases(docker, target).await?;
    let mut text = format!("target local, {}\n", target.url());
    let serving_json = match &serving {
        Some(s) => {
            let c = &s.container;
            let _ = writeln!(
                text,
                "serving: release {} ({}), slot {}, port {}",
                s.release(),
                c.label(LABEL_IMAGE).unwrap_or(&c.image),
                s.slot,
                s.port
            );
            json!({
                "release": s.release(),
                "image": c.label(LABEL_IMAGE).unwrap_or(&c.image),
                "commit": c.label(LABEL_COMMIT),
                "slot": s.slot,
                "port": s.port,
                "container": c.name,
            })
        }
        None => {
            text.push_str("serving: nothing\n");
            serde_json::Value::Null
        }
    };
    let proxy_json = match &proxy {
        Some(p) => {
            let _ = writeln!(
                text,
                "proxy: {} ({}), runtime API 127.0.0.1:{}",
                p.container.name, p.container.state, p.runtime.admin_port
            );
            for s in &slots {
                let _ = writeln!(
                    text,
                    "  slot {:<5} {:<8} port {:<5} in flight {}, answers {} ({} 5xx)",
                    s.slot,
                    s.status,
                    s.port.map_or("-".into(), |p| p.to_string()),
                    s.current,
                    s.total(),
                    s.errors()
                );
            }
            json!({
                "container": p.container.name,
                "state": p.container.state,
                "admin_port": p.runtime.admin_port,
                "slots": slots.iter().map(|s| json!({
                    "slot": s.slot, "status": s.status, "port": s.port,
                    "in_flight": s.current, "answers": s.total(), "errors": s.errors(),
                })).collect::<Vec<_>>(),
            })
        }
        None => {
            text.push_str("proxy: not running\n");
            serde_json::Value::Null
        }
    };
    let kept: Vec<serde_json::Value> = releases
        .iter()
        .map(|c| {
            json!({
                "release": c.label(LABEL_RELEASE),
                "image": c.label(LABEL_IMAGE).unwrap_or(&c.image),
                "state": c.state,
                "container": c.name,
            })
        })
        .collect();
    if !releases.is_empty() {
        let list: Vec<String> = releases
            .iter()
            .map(|c| format!("{} ({})", c.label(LABEL_RELEASE).unwrap_or("?"), c.state))
            .collect();
        let _ = writeln!(text, "releases kept: {}", list.join(", "));
    }
    let recent: Vec<_> = history.releases.iter().rev().take(5).collect();
    if !recent.is_empty() {
        text.push_str("recent releases:\n");
        for r in &recent {
            let _ = writeln!(text, "  {}", history_line(r));
        }
    }
    printer.report(
        &text,
        &json!({
            "target": "local",
            "url": target.url(),
            "serving": serving_json,
            "proxy": proxy_json,
            "releases": kept,
            "history": recent,
        }),
    );
    Ok(ExitStatus::Success)
}

fn history_line(r: &super::history::Release) -> String {
    let serves = r
        .serves
        .as_ref()
        .map(|s| format!(" → {s}"))
        .unwrap_or_default();
    let reason = r
        .reason
        .as_ref()
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!(
        "{:<5} {:<8}{serves} {} {} by {} {:.1} s  {}{reason}",
        r.id,
        r.kind,
        r.image,
        r.at,
        r.who,
        r.duration_ms as f64 / 1000.0,
        r.result
    )
}

pub fn history(target: &Target, printer: &Printer) -> Result<ExitStatus> {
    let history = History::read(&target.dir)?;
    let mut text = String::new();
    if history.releases.is_empty() {
        text.push_str("no releases yet\n");
    }
    for r in history.releases.iter().rev() {
        let _ = writeln!(text, "{}", history_line(r));
    }
    printer.report(&text, &json!({"releases": history.releases}));
    Ok(ExitStatus::Success)
}

pub async fn down(
    docker: &DockerRuntime,
    target: &Target,
    printer: &Printer,
) -> Result<ExitStatus> {
    let removed = docker.down(&target.project, false).await?;
    let mut names = Vec::new();
    for dir in ["proxy", "run"] {
        let _ = std::fs::remove_dir_all(target.dir.join(dir));
    }
    names.extend(removed);
    printer.report(
        &format!(
            "removed {} container(s) of the local target; the history stays in {}\n",
            names.len(),
            target.dir.join("history.json").display()
        ),
        &json!({"removed": names}),
    );
    Ok(ExitStatus::Success)
}

/// `deploy status --target swarm`: the API service (release, image, replicas, the last
/// update's state), each replica's newest task, the proxy service, recent releases.
pub async fn swarm_status(
    docker: &DockerRuntime,
    target: &Target,
    printer: &Printer,
) -> Result<ExitStatus> {
    use super::swarm::{api_service, check_manager, proxy_service};
    check_manager(docker).await?;
    let history = History::read(&target.dir)?;
    let mut text = format!("target swarm, {}\n", target.url());
    let api = docker.service(&api_service(target)).await?;
    let tasks = match &api {
        Some(s) => docker.tasks(&s.name).await?,
        None => Vec::new(),
    };
    let live: Vec<_> = tasks.iter().filter(|t| t.desired == "running").collect();
    let running = live.iter().filter(|t| t.state == "running").count();
    let serving_json = match &api {
        Some(s) => {
            let label = |k: &str| s.labels.get(k).cloned();
            let release = label(LABEL_RELEASE).unwrap_or_else(|| "?".into());
            let _ = writeln!(
                text,
                "serving: release {release} ({}), {running}/{} replicas running, last update {}",
                s.image,
                s.replicas.unwrap_or(0),
                s.update_state.as_deref().unwrap_or("none")
            );
            for t in &live {
                let _ = writeln!(
                    text,
                    "  replica {} {} {}",
                    t.slot.unwrap_or(0),
                    t.env_value("GOODGO_RELEASE").unwrap_or("?"),
                    t.state
                );
            }
            json!({
                "release": release,
                "image": s.image,
                "commit": label(LABEL_COMMIT),
                "service": s.name,
                "replicas": s.replicas,
                "running": running,
                "update": {"state": s.update_state, "message": s.update_message},
                "tasks": live.iter().map(|t| json!({
                    "slot": t.slot, "release": t.env_value("GOODGO_RELEASE"),
                    "state": t.state, "error": t.error,
                })).collect::<Vec<_>>(),
            })
        }
        None => {
            text.push_str("serving: nothing\n");
            serde_json::Value::Null
        }
    };
    let proxy = docker.service(&proxy_service(target)).await?;
    let proxy_json = match &proxy {
        Some(p) => {
            let up = docker
                .tasks(&p.name)
                .await?
                .iter()
                .filter(|t| t.state == "running" && t.desired == "running")
                .count();
            let _ = writeln!(text, "proxy: service {} ({up} task(s) running)", p.name);
            json!({"service": p.name, "running": up, "image": p.image})
        }
        None => {
            text.push_str("proxy: not running\n");
            serde_json::Value::Null
        }
    };
    let recent: Vec<_> = history.releases.iter().rev().take(5).collect();
    if !recent.is_empty() {
        text.push_str("recent releases:\n");
        for r in &recent {
            let _ = writeln!(text, "  {}", history_line(r));
        }
    }
    printer.report(
        &text,
        &json!({
            "target": "swarm",
            "url": target.url(),
            "serving": serving_json,
            "proxy": proxy_json,
            "history": recent,
        }),
    );
    Ok(ExitStatus::Success)
}
