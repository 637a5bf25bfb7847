//! `goodgo compose config`: the resolved Compose project, in the canonical form
//! `docker compose config` prints, so the two can be diffed.
//!
//! Why its own module: it is the one command that shows the project as Compose sees it
//! rather than running it; loading is the stack's ([`crate::ops::stack::load`]), the
//! canonical form is `goodgo_compose::canonical`'s.

use anyhow::Result;

use super::Context;
use crate::args::{ComposeCommand, ComposeConfigArgs, ConfigFormat};
use crate::error::ExitStatus;
use crate::ops::stack::load;
use crate::printer::Printer;

pub fn run(ctx: &Context, command: &ComposeCommand, printer: &Printer) -> Result<ExitStatus> {
    match command {
        ComposeCommand::Config(args) => config(ctx, args, printer),
    }
}

/// The project on stdout, YAML or JSON (`--json` too); its warnings on stderr.
fn config(ctx: &Context, args: &ComposeConfigArgs, printer: &Printer) -> Result<ExitStatus> {
    let loaded = load(ctx, &args.stack.file, args.stack.project.as_ref(), printer)?;
    let canon = goodgo_compose::canonical::config(&loaded.project, &loaded.name);
    let text = if printer.json() || args.format == ConfigFormat::Json {
        canon.to_json()
    } else {
        canon.to_yaml()
    };
    printer.stdout_raw(&text);
    Ok(ExitStatus::Success)
}
