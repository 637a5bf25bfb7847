//! One module per subcommand. Each takes its parsed arguments, the [`Context`] and the
//! printer, and returns the exit status or an error for [`crate::error::render`].

mod completions;
mod config;
mod db;
pub mod doctor;
mod plan;
pub mod stack;

use anyhow::Result;

use crate::args::{Cli, Command};
use crate::config::Workspace;
use crate::error::ExitStatus;
use crate::printer::Printer;

/// What every command gets: the workspace (with its layered settings).
pub struct Context {
    pub workspace: Workspace,
}

pub fn dispatch(cli: &Cli, printer: &Printer) -> Result<ExitStatus> {
    let start = match &cli.global.directory {
        Some(dir) => std::env::current_dir()?.join(dir),
        None => std::env::current_dir()?,
    };
    if !start.is_dir() {
        return Err(crate::error::UserError::input(format!(
            "-C {}: no such directory",
            start.display()
        ))
        .into());
    }
    // Every command inside a workspace reads its goodgo.yaml, so a broken one is reported
    // whatever was asked.
    let workspace = Workspace::discover(&start, &crate::config::process_env)?;
    let ctx = Context { workspace };
    match &cli.command {
        Command::Doctor => doctor::run(&ctx, printer),
        Command::Config => config::run(&ctx, printer),
        Command::Plan(args) => plan::run(&ctx, args, printer),
        Command::Db(args) => db::run(&ctx, args, printer),
        Command::Up(args) => stack::up(&ctx, args, printer),
        Command::Down(args) => stack::down(&ctx, args, printer),
        Command::Status(args) => stack::status(&ctx, args, printer),
        Command::Logs(args) => stack::logs(&ctx, args, printer),
        Command::Completions { shell } => completions::run(*shell, printer),
    }
}
