//! `deploy status`, `deploy history` and `deploy down`: what serves (asked of the proxy and
//! the engine, never re-derived from files), what was released, and removing the target.

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
