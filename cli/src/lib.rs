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
    let cli = match args::Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(err) => return error::render_clap(&err),
    };
    let printer = printer::Printer::new(&cli.global);
    match commands::dispatch(&cli, &printer) {
        Ok(status) => status,
        Err(err) => error::render(&err, &printer),
    }
}
