//! One module per subcommand. Each takes its parsed arguments, the [`Context`] and the
//! printer, and returns the exit status or an error for [`crate::error::render`].

mod api;
mod backup;
mod ci;
mod completions;
mod compose;
mod config;
mod db;
mod deploy;
mod dev;
pub mod doctor;
pub mod init;
mod k6;
mod lint;
mod plan;
pub mod stack;
mod test;

use anyhow::Result;

use crate::args::{Cli, Command, SecretsCommand};
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
        Command::Backup(args) => backup::run(&ctx, args, printer),
        Command::Up(args) => stack::up(&ctx, args, printer),
        Command::Dev(args) => dev::run(&ctx, args, printer),
        Command::Deploy(args) => deploy::run(&ctx, args, printer),
        Command::K6(args) => k6::run(&ctx, args, printer),
        Command::Api(args) => api::run(&ctx, args, printer),
        // --check compares the workspace holding goodgo.yaml (found from DIR, or from
        // where goodgo runs) against the templates, for the name goodgo.yaml records.
        Command::Init {
            dir,
            name,
            check: true,
            ..
        } => {
            let found;
            let ws = match dir {
                Some(d) => {
                    found = Workspace::discover(
                        &ctx.workspace.cwd.join(d),
                        &crate::config::process_env,
                    )?;
                    &found
                }
                None => &ctx.workspace,
            };
            let name = name.as_deref().unwrap_or(&ws.settings.name.value);
            init::check(&ws.root, name, printer)
        }
        Command::Init {
            dir, name, force, ..
        } => init::init(
            &ctx.workspace.cwd,
            dir.as_deref(),
            name.as_deref(),
            *force,
            printer,
        ),
        Command::Secrets {
            command: SecretsCommand::Rotate,
        } => init::rotate(
            &ctx.workspace.root,
            &ctx.workspace.settings.name.value,
            printer,
        ),
        Command::Down(args) => stack::down(&ctx, args, printer),
        Command::Status(args) => stack::status(&ctx, args, printer),
        Command::Logs(args) => stack::logs(&ctx, args, printer),
        Command::Compose { command } => compose::run(&ctx, command, printer),
        Command::Ci(args) => ci::run(&ctx, args, printer),
        Command::Lint(args) => lint::run(&ctx, args, printer),
        Command::Test(args) => test::run(&ctx, args, printer),
        Command::Completions { shell } => completions::run(*shell, printer),
    }
}

/// True when nothing listens on `addr` (host:port).
pub(crate) fn stack_port_free(addr: &str) -> bool {
    std::net::TcpListener::bind(addr).is_ok()
}
