//! Exit statuses and the one place that renders a failure for a human.
//!
//! Library code returns typed errors; commands add context with `anyhow`. [`render`] walks
//! the cause chain once, prints it, adds the first `hint:` it finds and picks the exit
//! status: 0 success, 1 the check or job failed, 2 bad input, usage or configuration (130
//! when a command stops on SIGINT/SIGTERM before its job is done).

use std::io::Write;
use std::process::ExitCode;

use crate::printer::Printer;

/// How a goodgo run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything asked for was done.
    Success,
    /// The check or job ran and failed (a missing tool, a failing test, a drift found).
    Failure,
    /// goodgo was asked something it cannot do: bad input, usage or configuration.
    Error,
    /// Stopped by SIGINT or SIGTERM before the job was done (130, as shells report it).
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Error => 2,
            ExitStatus::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

/// An error with a known exit status and, where one helps, a hint for what to do next.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
    pub status: ExitStatus,
}

impl UserError {
    /// Bad input, usage or configuration: exit 2.
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            status: ExitStatus::Error,
        }
    }

    /// The job itself failed: exit 1.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            status: ExitStatus::Failure,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The exit status an error stands for: the first [`UserError`] in the chain decides, a
/// file that could not be parsed is bad input, anything else is a failed job.
pub fn status_of(err: &anyhow::Error) -> ExitStatus {
    for cause in err.chain() {
        if let Some(user) = cause.downcast_ref::<UserError>() {
            return user.status;
        }
        if cause.is::<goodgo_yaml::YamlError>() {
            return ExitStatus::Error;
        }
        if let Some(goodgo_yaml::LoadError::Invalid(_)) =
            cause.downcast_ref::<goodgo_yaml::LoadError>()
        {
            return ExitStatus::Error;
        }
    }
    ExitStatus::Failure
}

fn hint_of(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<UserError>())
        .find_map(|user| user.hint.as_deref())
}

/// Prints `error: …` (`path:line:col: error: …` for a problem in a file goodgo read), each
/// `caused by: …` and a `hint: …` to stderr (and, with `--json`,
/// an `{"error": …}` object to stdout) and returns the exit status.
pub fn render(err: &anyhow::Error, printer: &Printer) -> ExitStatus {
    let status = status_of(err);
    let hint = hint_of(err);
    let mut messages: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        // `transparent` wrappers repeat their inner message: say each thing once.
        if messages.last() != Some(&text) && !messages.iter().any(|m| m.ends_with(&text)) {
            messages.push(text);
        }
    }
    let mut text = String::new();
    let red = printer.err_style(anstyle::AnsiColor::Red.on_default().bold());
    let cyan = printer.err_style(anstyle::AnsiColor::Cyan.on_default().bold());
    // A problem in a file reads like a `plan check` finding: `path:line:col: error: …`.
    let located = err
        .chain()
        .find_map(
            |cause| match cause.downcast_ref::<goodgo_yaml::LoadError>() {
                Some(goodgo_yaml::LoadError::Invalid(e)) => Some(e),
                _ => cause.downcast_ref::<goodgo_yaml::YamlError>(),
            },
        )
        .filter(|e| messages.first() == Some(&e.to_string()));
    if let Some(e) = located {
        text.push_str(&format!(
            "{}:{}: {red}error{red:#}: {}\n",
            e.path.display(),
            e.pos,
            e.message
        ));
        for cause in &messages[1..] {
            text.push_str(&format!("  caused by: {cause}\n"));
        }
    } else if let Some((first, rest)) = messages.split_first() {
        text.push_str(&format!("{red}error{red:#}: {first}\n"));
        for cause in rest {
            text.push_str(&format!("  caused by: {cause}\n"));
        }
    }
    if let Some(hint) = hint {
        text.push_str(&format!("{cyan}hint{cyan:#}: {hint}\n"));
    }
    printer.stderr(&text);
    if printer.json() {
        let value = serde_json::json!({
            "error": { "messages": messages, "hint": hint, "exit_code": status.code() }
        });
        printer.json_value(&value);
    }
    status
}

/// Prints a command-line parsing problem (or `--help`/`--version`) the way clap does.
pub fn render_clap(err: &clap::Error) -> ExitStatus {
    use clap::error::ErrorKind;
    let _ = err.print();
    let _ = std::io::stdout().flush();
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitStatus::Success,
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitStatus::Error,
        _ => ExitStatus::Error,
    }
}
