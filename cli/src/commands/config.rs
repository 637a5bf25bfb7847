//! `goodgo config`: the settings in force and where each comes from.

use anyhow::Result;

use super::Context;
use crate::error::ExitStatus;
use crate::printer::Printer;

pub fn run(ctx: &Context, printer: &Printer) -> Result<ExitStatus> {
    let ws = &ctx.workspace;
    let rows = ws.settings.rows();
    let mut text = String::new();
    let root = ws.root.display().to_string();
    let file = ws
        .config_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "none (all defaults)".to_string());
    text.push_str(&format!("workspace  {root}\nconfig     {file}\n\n"));
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let vwidth = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(1);
    let dim = printer.style(anstyle::Style::new().dimmed());
    for (key, value, source) in &rows {
        let shown = if value.is_empty() {
            "-"
        } else {
            value.as_str()
        };
        text.push_str(&format!(
            "{key:width$}  {shown:vwidth$}  {dim}({source}){dim:#}\n"
        ));
    }
    let settings: serde_json::Map<String, serde_json::Value> = rows
        .iter()
        .map(|(key, value, source)| {
            let v = if value.is_empty() {
                serde_json::Value::Null
            } else {
                value.clone().into()
            };
            (
                key.to_string(),
                serde_json::json!({ "value": v, "source": source.to_string() }),
            )
        })
        .collect();
    let json = serde_json::json!({
        "workspace": root,
        "config_file": ws.config_file,
        "settings": settings,
    });
    printer.report(&text, &json);
    Ok(ExitStatus::Success)
}
