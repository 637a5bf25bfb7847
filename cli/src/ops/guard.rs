//! The one guard every destructive command passes: `db reset`, `down --volumes`, and, as
//! they land, `backup restore`/`prune` and `deploy down`.
//!
//! The rules, the same everywhere: in a production workspace (`env: production`, from
//! goodgo.yaml or `GOODGO_ENV`) a destructive command refuses unless `--yes` is given twice;
//! elsewhere, a command that asks (`Ask::Confirm`) needs `--yes`, or the user typing the
//! name of what is destroyed at a terminal. Refusals are bad input (exit 2) and change
//! nothing; a prompt answered wrongly changes nothing either (exit 1).

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::Result;

use crate::config::{Environment, Settings, Source};
use crate::error::UserError;
use crate::printer::Printer;

/// Outside production: whether to ask before destroying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// `--yes`, or the name typed at a terminal.
    Confirm,
    /// Local, reproducible data (a development stack's volumes): go ahead.
    Never,
}

/// A destructive action about to happen.
pub struct Destructive<'a> {
    /// What is destroyed, for messages: "drop database `goodgo` at postgres://…".
    pub action: String,
    /// What the user types to confirm at a terminal (a database's name, a project's).
    pub name: &'a str,
    /// How often `--yes` was given.
    pub yes: u8,
    pub ask: Ask,
}

/// Whether to go ahead: `Ok(true)` yes, `Ok(false)` the prompt was not confirmed (nothing
/// was changed), `Err` a refusal.
pub fn allow(settings: &Settings, d: &Destructive<'_>, printer: &Printer) -> Result<bool> {
    if settings.env.value == Environment::Production {
        if d.yes >= 2 {
            printer.warn(&format!(
                "production: {} (confirmed with --yes twice)",
                d.action
            ));
            return Ok(true);
        }
        let from = match &settings.env.source {
            Source::Env(name) => name.to_string(),
            other => format!("`env` in {other}"),
        };
        return Err(UserError::input(format!(
            "refusing to {}: this workspace is a production environment ({from} = production)",
            d.action
        ))
        .with_hint("destructive commands run in production only when told twice: pass --yes --yes")
        .into());
    }
    if d.ask == Ask::Never || d.yes >= 1 {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(UserError::input(format!(
            "this would {}; pass --yes to confirm when not at a terminal",
            d.action
        ))
        .into());
    }
    printer.stderr(&format!(
        "This will {}.\nType `{}` to confirm: ",
        d.action, d.name
    ));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() == d.name {
        Ok(true)
    } else {
        printer.stderr("not confirmed; nothing was changed\n");
        Ok(false)
    }
}
