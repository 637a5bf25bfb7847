//! goodgo: one command for the GoodGo platform's engineers, CI and operators.
//!
//! `main.rs` only calls [`main`]; everything else lives here so that tests, `cargo xtask`
//! and the binary share one definition of the command line, the settings and the output.
//!
//! Flow of a run: [`args`] parses the command line (pure), [`config`] finds the workspace
//! and layers the settings, a module under [`commands`] does the work and reports through
//! the one [`printer::Printer`], and [`error::render`] turns any failure into a message,
//! a `hint:` and the exit status.

pub mod args;
pub mod codegen;
pub mod commands;
pub mod config;
pub mod error;
pub mod http;
pub mod ops;
pub mod printer;
pub mod tools;

use std::process::ExitCode;

use clap::Parser;

pub use error::ExitStatus;

/// Runs goodgo with the process's own arguments and returns its exit code.
pub fn main() -> ExitCode {
    run(std::env::args_os()).into()
}

/// Runs goodgo with the given arguments (the first is the program name).
pub fn run<I, T>(argv: I) -> ExitStatus
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let argv: Vec<std::ffi::OsString> = argv.into_iter().map(Into::into).collect();
    // A bare `--version` is answered before clap builds the whole command tree (every
    // subcommand and flag), which is most of such a start's time; the text is clap's.
    if let [_, flag] = argv.as_slice()
        && (flag == "--version" || flag == "-V")
    {
        printer::Printer::plain().out(&format!("goodgo {}\n", env!("CARGO_PKG_VERSION")));
        return ExitStatus::Success;
    }
    let cli = match args::Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(err) => return error::render_clap(&err, wants_json(&argv)),
    };
    let printer = printer::Printer::new(&cli.global);
    match commands::dispatch(&cli, &printer) {
        Ok(status) => status,
        Err(err) => error::render(&err, &printer),
    }
}

/// Whether `--json` was among the options, for a command line clap could not parse: its
/// error must still reach a JSON reader as JSON. Arguments after `--` do not count.
fn wants_json(argv: &[std::ffi::OsString]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}
