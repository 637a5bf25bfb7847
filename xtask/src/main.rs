//! `cargo xtask`: the project's chores, in Rust so they run the same everywhere.
//!
//! - `cargo xtask test`: THE test command. Installs what the tests need, starts the
//!   throwaway services, runs fmt, clippy and every test, and stops what it started.
//! - `cargo xtask bench`: the benchmarks, written into docs/BENCHMARKS.md.
//! - `cargo xtask codegen [--check]`: man pages, CLI reference, goodgo.yaml schema, OpenAPI.
//! - `cargo xtask images [--force]`: the local Docker images, built without a registry.
//!
//! Arguments are parsed by clap; programs are run through xshell's `cmd!`, which quotes
//! each argument and echoes the command it runs.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod api_check;
mod bench;
mod images;
mod provision;
mod services;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use xshell::{Shell, cmd};

/// The project's chores: provision and run the tests, benchmarks, generated files, images.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Chore,
}

#[derive(Subcommand)]
enum Chore {
    /// Provision the tools, lint, start throwaway services and run every test.
    Test {
        /// Skip `cargo fmt --check` and clippy.
        #[arg(long)]
        no_lint: bool,
        /// Passed to the test binaries (e.g. a name filter).
        #[arg(last = true, value_name = "LIBTEST ARGS")]
        args: Vec<String>,
    },
    /// Run the benchmarks and update docs/BENCHMARKS.md (all of them without a NAME).
    Bench {
        #[arg(value_enum, value_name = "NAME")]
        names: Vec<bench::Name>,
    },
    /// Write (or check) the generated docs: man pages, CLI reference, schema, OpenAPI.
    Codegen {
        /// Only check that the generated files are current; fail when one is stale.
        #[arg(long)]
        check: bool,
    },
    /// Build the local Docker images (docs/images.md); images whose recipe is unchanged
    /// are skipped.
    Images {
        /// Rebuild every image.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Chore::Test { no_lint, args } => test(!no_lint, &args),
        Chore::Bench { names } => bench::run(&names),
        Chore::Codegen { check } => codegen(check),
        Chore::Images { force } => images::run(force),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root (the folder above xtask/).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A shell in the repository root.
pub fn shell() -> Result<Shell> {
    let sh = Shell::new().context("cannot set up a shell")?;
    sh.change_dir(root());
    Ok(sh)
}

/// The cargo that runs xtask (`$CARGO`), else the one on PATH.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn step(title: &str) {
    eprintln!("\n==> {title}");
}

/// `cargo xtask test [--no-lint] [-- ARGS]`: the tools provisioned and PostgreSQL started,
/// then the project's own pipeline through `goodgo ci` (ci/pipeline.yaml: fmt, clippy, plan,
/// migration lint, generated files, every test), so the project runs its CI command on
/// itself. With ARGS (which go to the test binaries) or `--no-lint`: `goodgo lint` unless
/// `--no-lint`, then `goodgo test -- ARGS`.
fn test(lint: bool, passthrough: &[String]) -> Result<ExitCode> {
    let sh = shell()?;
    let cargo = cargo();
    step("provisioning the tools the tests use");
    let tools = provision::ensure_tools()?;

    step("local Docker images (cargo xtask images)");
    images::ensure()?;

    step("starting throwaway services");
    let postgres = services::Postgres::start(&tools)?;
    eprintln!("postgres {} ready at {}", tools.pg_version, postgres.url());

    cmd!(sh, "{cargo} build --quiet -p goodgo").run()?;
    let goodgo = root().join("target/debug/goodgo");
    let junit = root().join("target/junit.xml");
    let goodgo_cmd =
        |args: Vec<String>| pipeline_env(cmd!(sh, "{goodgo} -v {args...}"), &tools, &postgres);
    let mut runs: Vec<(&str, Vec<String>)> = Vec::new();
    if passthrough.is_empty() && lint {
        step("goodgo ci (ci/pipeline.yaml: lint steps, then every test)");
        runs.push((
            "goodgo ci",
            vec!["ci".into(), "--junit".into(), junit.display().to_string()],
        ));
    } else {
        if lint {
            runs.push(("goodgo lint", vec!["lint".into()]));
        }
        let mut args: Vec<String> = vec!["test".into(), "--no-db".into(), "--junit".into()];
        args.push(junit.display().to_string());
        if !passthrough.is_empty() {
            args.extend(["--".into(), "--".into()]);
            args.extend(passthrough.iter().cloned());
        }
        runs.push(("goodgo test", args));
    }
    let mut failed = None;
    for (name, args) in runs {
        step(name);
        // The status decides the exit code; the run goes on (teardown) either way.
        let status = std::process::Command::from(goodgo_cmd(args))
            .status()
            .with_context(|| format!("cannot start {name}"))?;
        if !status.success() {
            failed = Some(format!(
                "{name} failed ({status}); its steps' logs are above, JUnit in {}",
                junit.display()
            ));
            break;
        }
    }
    let api = if failed.is_none() {
        step("schemathesis against the running API");
        api_check::run(&postgres.url(), &tools.path_env())
    } else {
        Ok(())
    };
    // `postgres` stops when dropped here, also when the tests failed.
    drop(postgres);
    api?;
    match failed {
        None => {
            eprintln!("\nxtask test: every step passed");
            Ok(ExitCode::SUCCESS)
        }
        Some(why) => {
            eprintln!("\nxtask test: {why}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `cmd` (a `goodgo ci`/`lint`/`test` run) with the environment the pipeline's tests get:
/// the provisioned tools on PATH, the throwaway server for tests and for the steps'
/// `services: [postgres]`, strict mode (a missing component fails a test, never skips it).
pub fn pipeline_env<'a>(
    cmd: xshell::Cmd<'a>,
    tools: &provision::Tools,
    postgres: &services::Postgres,
) -> xshell::Cmd<'a> {
    cmd.env("PATH", tools.path_env())
        .env("GOODGO_TEST_STRICT", "1")
        .env("GOODGO_TEST_DATABASE_URL", postgres.url())
        .env("GOODGO_TEST_PG_BIN_DIR", &tools.pg_bin_dir)
        .env("INSTA_UPDATE", "no")
        // The server the pipeline's `services: [postgres]` steps get their databases on.
        .env("GOODGO_DATABASE_URL", postgres.url())
}

fn codegen(check: bool) -> Result<ExitCode> {
    let root = root();
    let mut stale = Vec::new();
    let mut files = goodgo::codegen::all();
    let mut openapi = serde_json::to_string_pretty(&goodgo_api::openapi_json())?;
    openapi.push('\n');
    files.push(goodgo::codegen::Generated {
        path: "docs/openapi.json".into(),
        content: openapi,
    });
    for file in files {
        let path = root.join(&file.path);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == file.content {
            continue;
        }
        stale.push(file.path.display().to_string());
        if !check {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, &file.content)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", file.path.display());
        }
    }
    if check && !stale.is_empty() {
        eprintln!("stale (run `cargo xtask codegen`): {}", stale.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    if stale.is_empty() {
        eprintln!("generated files are current");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn test_passes_what_follows_the_separator() {
        let cli = Cli::try_parse_from(["xtask", "test", "--no-lint", "--", "plan_", "--nocapture"])
            .expect("parses");
        let Chore::Test { no_lint, args } = cli.command else {
            panic!("not the test chore");
        };
        assert!(no_lint);
        assert_eq!(args, ["plan_", "--nocapture"]);
    }

    #[test]
    fn unknown_benchmarks_are_refused() {
        assert!(Cli::try_parse_from(["xtask", "bench", "nonesuch"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "bench", "plan", "db"]).is_ok());
    }
}
