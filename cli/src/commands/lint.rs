//! `goodgo lint [--fix]`: the pipeline's lint steps (`lint: true` in ci/pipeline.yaml), run
//! and cached as `goodgo ci` runs them, with one summary table. `--fix` first runs each lint
//! step's `fix` command (`cargo fmt --all`, `cargo clippy --fix …`), never cached.

use anyhow::Result;

use super::Context;
use crate::args::{CacheArgs, CiArgs, LintArgs};
use crate::error::{ExitStatus, UserError};
use crate::printer::Printer;

pub fn run(ctx: &Context, args: &LintArgs, printer: &Printer) -> Result<ExitStatus> {
    let (pipeline, shown) = super::ci::load_pipeline(ctx, &args.pipeline, printer)?;
    let steps: Vec<goodgo_ci::Step> = pipeline.steps.into_iter().filter(|s| s.lint).collect();
    if steps.is_empty() {
        return Err(
            UserError::input(format!("{} has no lint steps", shown.display()))
                .with_hint("mark the checking steps with `lint: true`")
                .into(),
        );
    }
    if args.fix {
        for step in steps.iter().filter(|s| s.fix.is_some()) {
            let mut fixer = step.clone();
            fixer.run = step.fix.clone().unwrap_or(fixer.run);
            printer.status(&format!("fixing: {}", fixer.command_line()));
            let done = goodgo_ci::run::run_step(&fixer, &ctx.workspace.root, &[]);
            if !done.exit.success() {
                printer.stderr(&String::from_utf8_lossy(&done.log));
                printer.warn(&format!(
                    "the fixer of `{}` ended with {}",
                    step.id,
                    done.exit.describe()
                ));
            }
        }
    }
    super::ci::run(
        ctx,
        &CiArgs {
            steps: steps.iter().map(|s| s.id.clone()).collect(),
            pipeline: args.pipeline.clone(),
            dry_run: false,
            explain: None,
            junit: args.junit.clone(),
            affected: Default::default(),
            cache: CacheArgs::default(),
        },
        printer,
    )
}
