//! `cargo xtask`: the project's chores, in Rust so they run the same everywhere.
//!
//! - `cargo xtask test`: THE test command. Installs what the tests need, starts the
//!   throwaway services, runs fmt, clippy and every test, and stops what it started.
//! - `cargo xtask bench`: the benchmarks, written into docs/BENCHMARKS.md.
//! - `cargo xtask codegen [--check]`: man pages, CLI reference, goodgo.yaml schema, OpenAPI.
//! - `cargo xtask images [--force]`: the local Docker images, built without a registry.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod api_check;
mod bench;
mod images;
mod provision;
mod services;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("codegen") => codegen(&args[1..]),
        Some("images") => images::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  test [--no-lint] [-- LIBTEST ARGS]    provision, lint and run every test\n  bench [NAME…]                          run the benchmarks, update docs/BENCHMARKS.md\n  codegen [--check]                      write (or check) the generated docs\n  images [--force]                       build the local Docker images (docs/images.md)"
            );
            return ExitCode::from(2);
        }
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

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, failing with its name when it does not succeed.
pub fn run_checked(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn step(title: &str) {
    eprintln!("\n==> {title}");
}

fn test(args: &[String]) -> Result<ExitCode> {
    // `cargo xtask test [--no-lint] [-- ARGS]`: ARGS go to the test binaries.
    let (own, passthrough) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], args[i + 1..].to_vec()),
        None => (args, Vec::new()),
    };
    let lint = !own.iter().any(|a| a == "--no-lint");

    step("provisioning the tools the tests use");
    let tools = provision::ensure_tools()?;

    if lint {
        step("cargo fmt --check");
        run_checked(cargo().args(["fmt", "--all", "--check"]))?;
        step("cargo clippy --all-targets -D warnings");
        run_checked(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ]))?;
    }

    step("local Docker images (cargo xtask images)");
    images::ensure()?;

    step("starting throwaway services");
    let postgres = services::Postgres::start(&tools)?;
    eprintln!("postgres {} ready at {}", tools.pg_version, postgres.url());

    step("cargo test --workspace");
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"]);
    if !passthrough.is_empty() {
        cmd.arg("--").args(&passthrough);
    }
    cmd.env("PATH", tools.path_env())
        .env("GOODGO_TEST_STRICT", "1")
        .env("GOODGO_TEST_DATABASE_URL", postgres.url())
        .env("GOODGO_TEST_PG_BIN_DIR", &tools.pg_bin_dir)
        .env("INSTA_UPDATE", "no");
    let status = cmd.status().context("cannot start cargo test")?;
    let api = if status.success() {
        step("schemathesis against the running API");
        api_check::run(&postgres.url(), &tools.path_env())
    } else {
        Ok(())
    };
    // `postgres` stops (by pid) when dropped here, also when the tests failed.
    drop(postgres);
    api?;
    if status.success() {
        eprintln!("\nxtask test: every step passed");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("\nxtask test: cargo test failed ({status})");
        Ok(ExitCode::FAILURE)
    }
}

fn codegen(args: &[String]) -> Result<ExitCode> {
    let check = args.iter().any(|a| a == "--check");
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
