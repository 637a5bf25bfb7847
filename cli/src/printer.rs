//! The one place that writes to the terminal.
//!
//! It knows `--json` (stdout carries only JSON), `--quiet`, `--verbose`, `--color` and
//! `NO_COLOR`, and whether each stream is a terminal. Commands never print directly.

use std::io::{IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

use crate::args::{ColorChoice, GlobalArgs};

#[derive(Clone)]
pub struct Printer {
    json: bool,
    quiet: bool,
    verbose: u8,
    color_out: bool,
    color_err: bool,
    /// stderr is a terminal: progress may redraw one line in place.
    err_tty: bool,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let decide = |is_tty: bool| match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_tty && !no_color,
        };
        Self {
            json: global.json,
            quiet: global.quiet,
            verbose: global.verbose,
            color_out: decide(std::io::stdout().is_terminal()),
            color_err: decide(std::io::stderr().is_terminal()),
            err_tty: std::io::stderr().is_terminal(),
        }
    }

    /// A printer for tests and tools: no colour, human output.
    pub fn plain() -> Self {
        Self {
            json: false,
            quiet: false,
            verbose: 0,
            color_out: false,
            color_err: false,
            err_tty: false,
        }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    pub fn verbose(&self) -> u8 {
        self.verbose
    }

    /// A style for stdout text, or the plain style when colour is off.
    pub fn style(&self, style: anstyle::Style) -> anstyle::Style {
        if self.color_out {
            style
        } else {
            anstyle::Style::new()
        }
    }

    /// A style for stderr text, or the plain style when colour is off.
    pub fn err_style(&self, style: anstyle::Style) -> anstyle::Style {
        if self.color_err {
            style
        } else {
            anstyle::Style::new()
        }
    }

    /// The command's main human output (a table, a report). Nothing with `--json`.
    pub fn out(&self, text: &str) {
        if !self.json {
            write_all(&mut std::io::stdout().lock(), text);
        }
    }

    /// Content the user asked for on stdout (a graph, a script), with or without `--json`.
    pub fn stdout_raw(&self, text: &str) {
        write_all(&mut std::io::stdout().lock(), text);
    }

    /// The command's JSON output: one pretty document on stdout.
    pub fn json_value(&self, value: &serde_json::Value) {
        let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
        text.push('\n');
        write_all(&mut std::io::stdout().lock(), &text);
    }

    /// One event of a stream as a single JSON line on stdout (`--json` streams: one object
    /// per line, so a reader can act on each as it comes).
    pub fn json_line(&self, value: &serde_json::Value) {
        let mut text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
        text.push('\n');
        write_all(&mut std::io::stdout().lock(), &text);
    }

    /// Emits `value` with `--json`, else the human `text`.
    pub fn report(&self, text: &str, value: &serde_json::Value) {
        if self.json {
            self.json_value(value)
        } else {
            self.out(text)
        }
    }

    /// Progress and status lines on stderr; silenced by `--quiet`.
    pub fn status(&self, text: &str) {
        if !self.quiet {
            self.stderr(&format!("{text}\n"));
        }
    }

    /// Whether progress is drawn live (stderr is a terminal, not `--quiet`); otherwise
    /// callers show progress as plain [`status`](Self::status) lines.
    pub fn live_progress(&self) -> bool {
        self.err_tty && !self.quiet
    }

    /// A bar of bytes on stderr (`  {prefix} [####---]  50% 1.20 MiB/2.40 MiB`); hidden
    /// unless progress is live and stdout is not `--json`. It clears itself when dropped.
    pub fn bytes_bar(&self, prefix: &str) -> ProgressBar {
        self.live(
            ProgressBar::new(0),
            "  {prefix} [{bar:30}] {percent:>3}% {bytes}/{total_bytes}",
        )
        .with_prefix(prefix.to_string())
    }

    /// A spinner on stderr with `message`; hidden as [`bytes_bar`](Self::bytes_bar) is.
    pub fn spinner(&self, message: &str) -> ProgressBar {
        let spinner = self.live(ProgressBar::new_spinner(), "{spinner} {msg}");
        spinner.set_message(message.to_string());
        spinner.enable_steady_tick(std::time::Duration::from_millis(100));
        spinner
    }

    /// A group of progress lines drawn together on stderr (one per running job), hidden as
    /// [`bytes_bar`](Self::bytes_bar) is; lines are added with [`Self::job_line`].
    pub fn lines(&self) -> MultiProgress {
        if !self.live_progress() || self.json {
            return MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        }
        MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
    }

    /// One job's line in `lines`: a spinner, its name, the time it has run, and `message`.
    pub fn job_line(&self, lines: &MultiProgress, name: &str, message: &str) -> ProgressBar {
        let bar = self.live(
            ProgressBar::new_spinner(),
            "{spinner} {prefix:<18} {elapsed:>4} {wide_msg}",
        );
        let bar = lines.add(bar);
        bar.set_prefix(name.to_string());
        bar.set_message(message.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        bar
    }

    fn live(&self, bar: ProgressBar, template: &str) -> ProgressBar {
        if !self.live_progress() || self.json {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template(template)
            .map(|s| s.progress_chars("#-"))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.with_style(style).with_finish(ProgressFinish::AndClear)
    }

    /// Detail shown with `-v`.
    pub fn debug(&self, text: &str) {
        if self.verbose > 0 && !self.quiet {
            self.stderr(&format!("{text}\n"));
        }
    }

    /// A warning on stderr; shown even with `--quiet`.
    pub fn warn(&self, text: &str) {
        let yellow = self.err_style(anstyle::AnsiColor::Yellow.on_default().bold());
        self.stderr(&format!("{yellow}warning{yellow:#}: {text}\n"));
    }

    /// Raw text on stderr.
    pub fn stderr(&self, text: &str) {
        write_all(&mut std::io::stderr().lock(), text);
    }
}

fn write_all(w: &mut dyn Write, text: &str) {
    // A closed pipe (`goodgo … | head`) is not an error worth a panic.
    let _ = w.write_all(text.as_bytes());
    let _ = w.flush();
}
