//! squawk, the migration linter: run on migration files, its JSON findings read back with
//! 1-based positions.
//!
//! Why here: `db lint` fails on any finding, and `deploy` refuses the findings that would
//! break the release still serving (drops, renames, type changes, new NOT NULL columns
//! without a default) before it applies migrations; both read squawk's report the same way.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::error::UserError;
use crate::tools;

/// squawk's rules whose migrations break the code still running against the schema: the old
/// release reads a column or table that is gone or changed, or inserts without a value the
/// column now requires.
pub const BREAKING_RULES: &[&str] = &[
    "ban-drop-column",
    "ban-drop-table",
    "ban-drop-database",
    "renaming-column",
    "renaming-table",
    "changing-column-type",
    "adding-required-field",
    "adding-not-nullable-field",
    "ban-drop-not-null",
];

/// One finding, its position counted from 1.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The file as the user should see it (relative to where goodgo runs).
    pub file: PathBuf,
    pub line: u64,
    pub col: u64,
    /// `warning` (a rule) or `error` (SQL squawk cannot parse).
    pub level: String,
    pub rule: String,
    pub message: String,
    pub help: Option<String>,
}

impl Finding {
    /// Whether the rule that fired breaks the release still serving.
    pub fn breaking(&self) -> bool {
        BREAKING_RULES.contains(&self.rule.as_str())
    }

    /// `path:line:col: level: message [rule]`.
    pub fn line(&self) -> String {
        format!(
            "{}:{}:{}: {}: {} [{}]",
            self.file.display(),
            self.line,
            self.col,
            self.level,
            self.message,
            self.rule
        )
    }
}

/// Runs squawk on `paths` in `root` (where `.squawk.toml` is); its findings (files shown
/// through `shown`), and whether squawk itself exited 0.
pub fn lint(
    root: &Path,
    paths: &[PathBuf],
    shown: &dyn Fn(&Path) -> PathBuf,
) -> Result<(Vec<Finding>, bool)> {
    let squawk = tools::which("squawk").ok_or_else(|| {
        UserError::failed("squawk is not installed")
            .with_hint("install the migration linter: `pip install squawk-cli`")
    })?;
    let out = std::process::Command::new(&squawk)
        .args(["--reporter", "json"])
        .args(paths)
        .current_dir(root)
        .output()
        .with_context(|| format!("running {}", squawk.display()))?;
    let raw: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).map_err(|_| {
        UserError::failed(format!(
            "squawk did not report JSON: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })?;
    let findings = raw
        .iter()
        .map(|f| Finding {
            file: shown(&root.join(f["file"].as_str().unwrap_or(""))),
            // squawk counts lines and columns from 0.
            line: f["line"].as_u64().unwrap_or(0) + 1,
            col: f["column"].as_u64().unwrap_or(0) + 1,
            level: f["level"].as_str().unwrap_or("warning").to_lowercase(),
            rule: f["rule_name"].as_str().unwrap_or("").to_string(),
            message: f["message"].as_str().unwrap_or("").to_string(),
            help: f["help"].as_str().map(str::to_string),
        })
        .collect();
    Ok((findings, out.status.success()))
}
