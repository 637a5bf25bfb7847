//! `goodgo test [-- ARGS]`: the pipeline's test steps (`test: true` in ci/pipeline.yaml, else
//! the step named `test`), each run with a database of its own.
//!
//! The database is a copy of a template migrated with the workspace's migrations
//! (`ops::testdb`: built once per set of migrations, then `CREATE DATABASE … TEMPLATE`, which
//! takes milliseconds), its URL in `DATABASE_URL` and `GOODGO_DATABASE_URL`; it is dropped
//! when the step ends. The tests run through `goodgo ci`'s runner, so JUnit (`--junit`),
//! `--affected` and GitHub annotations work as they do there. Unlike `goodgo ci`, the test
//! steps run without their dependencies (clippy is `goodgo lint`'s business) and are not
//! cached unless `--cached` asks for it: `goodgo test` means "run the tests now".

use anyhow::Result;
use goodgo_ci::model::{Run, Service};

use super::Context;
use crate::args::{CacheArgs, CiArgs, TestArgs};
use crate::error::{ExitStatus, UserError};
use crate::printer::Printer;

pub fn run(ctx: &Context, args: &TestArgs, printer: &Printer) -> Result<ExitStatus> {
    let (mut pipeline, shown) = super::ci::load_pipeline(ctx, &args.pipeline, printer)?;
    let mut marked: Vec<usize> = (0..pipeline.steps.len())
        .filter(|&i| pipeline.steps[i].test)
        .collect();
    if marked.is_empty() {
        marked = pipeline
            .ids
            .iter()
            .position(|id| id == "test")
            .into_iter()
            .collect();
    }
    if marked.is_empty() {
        return Err(
            UserError::input(format!("{} has no test steps", shown.display()))
                .with_hint("mark the steps that run tests with `test: true` (or name one `test`)")
                .into(),
        );
    }
    let ws = &ctx.workspace;
    let has_migrations = std::fs::read_dir(ws.resolve(&ws.settings.migrations_dir.value))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .any(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .unwrap_or(false);
    for &i in &marked {
        // The tests alone: what they depend on in the pipeline (clippy …) is not run.
        pipeline.deps[i].clear();
        let step = &mut pipeline.steps[i];
        let wants_db = step.services.contains(&Service::Postgres) || has_migrations;
        step.services.retain(|s| *s != Service::Postgres);
        if wants_db && !args.no_db {
            step.services.push(Service::Postgres);
        }
        if !args.args.is_empty() {
            step.run = with_args(&step.run, &args.args);
        }
    }
    let ids: Vec<String> = marked.iter().map(|&i| pipeline.ids[i].clone()).collect();
    printer.debug(&format!("test steps: {}", ids.join(", ")));
    let ci = CiArgs {
        steps: ids,
        pipeline: args.pipeline.clone(),
        dry_run: false,
        explain: None,
        junit: args.junit.clone(),
        affected: args.affected.clone(),
        cache: CacheArgs {
            cache_dir: None,
            no_cache: !args.cached,
        },
    };
    super::ci::run_loaded(ctx, pipeline, &shown, &ci, printer)
}

/// The step's command with `extra` arguments after it: appended to an argv, or passed to a
/// command line as `"$@"` (so they reach its last command unquoted and unsplit).
fn with_args(run: &Run, extra: &[String]) -> Run {
    match run {
        Run::Argv(argv) => Run::Argv(argv.iter().chain(extra).cloned().collect()),
        Run::Line(line) => {
            let mut argv = vec![
                "sh".to_string(),
                "-c".to_string(),
                format!("{line} \"$@\""),
                "sh".to_string(),
            ];
            argv.extend(extra.iter().cloned());
            Run::Argv(argv)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_arguments_reach_the_command_unsplit() {
        let extra = vec!["a filter".to_string(), "--nocapture".to_string()];
        assert_eq!(
            with_args(&Run::Argv(vec!["cargo".into(), "test".into()]), &extra),
            Run::Argv(vec![
                "cargo".into(),
                "test".into(),
                "a filter".into(),
                "--nocapture".into()
            ])
        );
        // Through sh: the arguments arrive as they were given, after the line's last command.
        let Run::Argv(argv) = with_args(&Run::Line("true && printf '%s|'".into()), &extra) else {
            panic!("a line becomes an argv");
        };
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("sh runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "a filter|--nocapture|"
        );
    }
}
