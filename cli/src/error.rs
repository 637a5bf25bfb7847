//! Exit statuses and the one place that renders a failure for a human.
//!
//! Library code returns typed errors; commands add context with `anyhow`. [`render`] walks
//! the cause chain once, prints it, adds the first `hint:` it finds and picks the exit
//! status: 0 success, 1 the check or job failed, 2 bad input, usage or configuration (130
//! when a command stops on SIGINT/SIGTERM before its job is done).

use std::io::Write;
use std::process::ExitCode;

use goodgo_diag::{Class, Diagnostic, Location};

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

impl goodgo_diag::Diagnostic for UserError {
    fn class(&self) -> Option<Class> {
        match self.status {
            ExitStatus::Error => Some(Class::Input),
            _ => Some(Class::Failed),
        }
    }

    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

/// The [`Diagnostic`] view of one link of a cause chain, for every typed error goodgo's
/// crates return. This list is the only place that knows them all; a new library error type
/// implements [`Diagnostic`] and is added here.
fn diagnostic<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a dyn Diagnostic> {
    macro_rules! first_of {
        ($($ty:ty),* $(,)?) => {
            $(if let Some(d) = cause.downcast_ref::<$ty>() {
                return Some(d);
            })*
        };
    }
    first_of!(
        UserError,
        goodgo_yaml::YamlError,
        goodgo_yaml::LoadError,
        goodgo_compose::ComposeError,
        goodgo_stack::StackError,
        goodgo_db::DbError,
        goodgo_backup::BackupError,
        goodgo_plan::edit::EditError,
        goodgo_plan::PlanError,
        goodgo_ci::PipelineError,
    );
    None
}

/// The exit status an error stands for: the outermost link of the chain that knows its
/// [`Class`] decides; a chain where none does is a failed job.
pub fn status_of(err: &anyhow::Error) -> ExitStatus {
    let class = err
        .chain()
        .filter_map(diagnostic)
        .find_map(|d| d.class())
        .unwrap_or(Class::Failed);
    match class {
        Class::Input => ExitStatus::Error,
        Class::Failed => ExitStatus::Failure,
    }
}

/// Every distinct hint of the chain, outermost first.
fn hints_of(err: &anyhow::Error) -> Vec<String> {
    let mut hints: Vec<String> = Vec::new();
    for hint in err.chain().filter_map(diagnostic).filter_map(|d| d.hint()) {
        if !hints.contains(&hint) {
            hints.push(hint);
        }
    }
    hints
}

/// Prints `error: …` (`path:line:col: error: …` for a problem in a file goodgo read), each
/// `caused by: …` and a `hint: …` to stderr (and, with `--json`,
/// an `{"error": …}` object to stdout) and returns the exit status.
///
/// The chain is walked once: a located link (a problem in a file) becomes the headline, as
/// `plan check` prints its findings, and only the causes below it follow; otherwise the
/// outermost message is the headline and each distinct cause follows it.
pub fn render(err: &anyhow::Error, printer: &Printer) -> ExitStatus {
    let status = status_of(err);
    let hints = hints_of(err);
    let (located, messages) = summary(err);
    let mut text = String::new();
    let red = printer.err_style(anstyle::AnsiColor::Red.on_default().bold());
    let cyan = printer.err_style(anstyle::AnsiColor::Cyan.on_default().bold());
    let headline = match located {
        Some(loc) => format!("{}: {red}error{red:#}: {}", place(&loc), loc.message),
        None => format!(
            "{red}error{red:#}: {}",
            messages.first().map_or("", String::as_str)
        ),
    };
    text.push_str(&headline);
    text.push('\n');
    for cause in messages.iter().skip(1) {
        text.push_str(&format!("  caused by: {cause}\n"));
    }
    for hint in &hints {
        text.push_str(&format!("{cyan}hint{cyan:#}: {hint}\n"));
    }
    printer.stderr(&text);
    if printer.json() {
        let value = serde_json::json!({
            "error": {
                "messages": messages,
                "hint": hints.first(),
                "exit_code": status.code()
            }
        });
        printer.json_value(&value);
    }
    status
}

/// An error on one line (`compose.yaml:3:5: unknown key …`, or the message and its
/// causes), for a problem reported in passing, as a warning, rather than rendered.
pub fn one_line(err: &anyhow::Error) -> String {
    let (located, messages) = summary(err);
    let mut line = match located {
        Some(loc) => format!("{}: {}", place(&loc), loc.message),
        None => messages.first().cloned().unwrap_or_default(),
    };
    for cause in messages.iter().skip(1) {
        line.push_str(": ");
        line.push_str(cause);
    }
    line
}

/// `path:line:col` of a problem in a file.
fn place(loc: &Location<'_>) -> String {
    format!("{}:{}:{}", loc.path.display(), loc.line, loc.col)
}

/// The chain walked once: the located link (a problem in a file), if any, and the distinct
/// messages from it (or from the outermost link) down.
fn summary(err: &anyhow::Error) -> (Option<Location<'_>>, Vec<String>) {
    let chain: Vec<&(dyn std::error::Error + 'static)> = err.chain().collect();
    let located = chain.iter().enumerate().find_map(|(i, cause)| {
        diagnostic(*cause)
            .and_then(|d| d.location())
            .map(|loc| (i, loc))
    });
    let below = located.as_ref().map_or(0, |(i, _)| *i);
    let mut messages: Vec<String> = Vec::new();
    for cause in &chain[below..] {
        let text = cause.to_string();
        // `transparent` wrappers repeat their inner message: say each thing once.
        if messages.last() != Some(&text) && !messages.iter().any(|m| m.ends_with(&text)) {
            messages.push(text);
        }
    }
    (located.map(|(_, loc)| loc), messages)
}

/// Prints a command-line parsing problem (or `--help`/`--version`) the way clap does. With
/// `--json`, a usage error is also an `{"error": …}` object on stdout, so a JSON reader
/// never sees an empty stdout with a failing exit status.
pub fn render_clap(err: &clap::Error, json: bool) -> ExitStatus {
    use clap::error::ErrorKind;
    let status = match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitStatus::Success,
        _ => ExitStatus::Error,
    };
    let _ = err.print();
    if json && status != ExitStatus::Success {
        let text = err.render().to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        let value = serde_json::json!({
            "error": {
                "messages": [first],
                "usage": text.trim_end(),
                "hint": "see --help",
                "exit_code": status.code()
            }
        });
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    }
    let _ = std::io::stdout().flush();
    status
}
