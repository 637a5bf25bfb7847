//! The CI benchmark: `goodgo ci` on a synthetic pipeline of 200 steps over 20,000 input
//! files, uncached and fully cached, beside the same steps run one after another by `sh`
//! (no cache: what a plain script does); and steps of the project's own pipeline, uncached
//! (`--no-cache`) and cached, `--dry-run` of the whole pipeline (every input hashed), and
//! the whole pipeline uncached and fully cached.

use std::path::Path;

use anyhow::Result;
use xshell::cmd;

use super::stats::{Timed, table, time_command, time_commands, time_rounds, write_section};
use super::{machine, shell_in};
use crate::root;

/// 200 steps, each over its own folder of 100 files and the lock file; every tenth step
/// starts a chain of ten.
fn synthetic(dir: &Path) -> Result<String> {
    let mut yaml = String::from("steps:\n");
    let mut script = String::new();
    for i in 0..200 {
        let folder = dir.join(format!("pkg{i:03}/src"));
        std::fs::create_dir_all(&folder)?;
        for j in 0..100 {
            std::fs::write(
                folder.join(format!("f{j}.rs")),
                format!("// {i} {j}\npub fn f{j}() {{}}\n"),
            )?;
        }
        let deps = if i % 10 == 0 {
            String::new()
        } else {
            format!(", deps: [s{:03}]", i - 1)
        };
        yaml.push_str(&format!(
            "  s{i:03}: {{ run: \"cat pkg{i:03}/src/f0.rs > /dev/null\", inputs: [\"pkg{i:03}/**/*.rs\", \"Cargo.lock\"]{deps} }}\n"
        ));
        script.push_str(&format!("cat pkg{i:03}/src/f0.rs > /dev/null\n"));
    }
    std::fs::create_dir_all(dir.join("ci"))?;
    std::fs::write(dir.join("ci/pipeline.yaml"), yaml)?;
    std::fs::write(dir.join("Cargo.lock"), "# synthetic\n")?;
    std::fs::write(dir.join("goodgo.yaml"), "name: bench\n")?;
    std::fs::write(dir.join("steps.sh"), &script)?;
    Ok(script)
}

pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench ci: 200 steps over 20,000 files; the project's own pipeline");
    let dir = std::env::temp_dir().join(format!("goodgo-bench-ci-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    synthetic(&dir)?;
    let sh = shell_in(&dir)?;
    let n = 10;
    let mut samples = vec![time_rounds(
        "`goodgo ci` (200 steps, 20,000 files, empty cache)",
        3,
        &mut |_| {
            let _ = std::fs::remove_dir_all(dir.join(".goodgo"));
            Ok(())
        },
        &|_| cmd!(sh, "{goodgo} ci -q"),
    )?];
    let synthetic_runs: [Timed<'_>; 2] = [
        ("`goodgo ci` (200 steps, 20,000 files, all cached)", &|| {
            cmd!(sh, "{goodgo} ci -q")
        }),
        (
            "`sh steps.sh` (peer: the same 200 commands, no cache)",
            &|| cmd!(sh, "sh steps.sh"),
        ),
    ];
    samples.extend(time_commands(n, &synthetic_runs)?);
    let _ = std::fs::remove_dir_all(&dir);

    // The project's own pipeline, with a cache of its own so the workspace's is untouched.
    let repo = root();
    let cache = std::env::temp_dir().join(format!("goodgo-bench-ci-cache-{}", std::process::id()));
    let sh = shell_in(&repo)?;
    for (label, runs, args) in [
        (
            "`goodgo ci --no-cache fmt` (this repository)",
            3,
            &["--no-cache", "fmt"][..],
        ),
        ("`goodgo ci fmt` (this repository, cached)", n, &["fmt"]),
        (
            "`goodgo ci --dry-run` (this repository: every step's inputs hashed)",
            n,
            &["--dry-run"],
        ),
    ] {
        let make = || cmd!(sh, "{goodgo} ci -q {args...} --cache-dir {cache}");
        samples.push(time_command(label, runs, &make, false)?);
    }
    let _ = std::fs::remove_dir_all(&cache);

    // The whole pipeline as `cargo xtask test` runs it (same tools, server and environment):
    // once with an empty cache (every step runs; cargo's own build cache is warm, as on a
    // developer's machine), then fully cached.
    let tools = crate::provision::ensure_tools()?;
    let postgres = crate::services::Postgres::start(&tools)?;
    let whole = || {
        crate::pipeline_env(
            cmd!(sh, "{goodgo} ci -q --cache-dir {cache}"),
            &tools,
            &postgres,
        )
    };
    eprintln!("bench ci: the whole pipeline, uncached (minutes: every test runs)");
    samples.push(time_rounds(
        "`goodgo ci` (this repository's whole pipeline, empty cache)",
        1,
        &mut |_| {
            let _ = std::fs::remove_dir_all(&cache);
            Ok(())
        },
        &|_| whole(),
    )?);
    samples.push(time_command(
        "`goodgo ci` (this repository's whole pipeline, all cached)",
        n,
        &whole,
        false,
    )?);
    drop(postgres);
    let _ = std::fs::remove_dir_all(&cache);
    let body = format!(
        "## CI pipeline cache\n\nA synthetic pipeline of 200 steps (chains of ten), each over its own 100 `.rs` files and `Cargo.lock`: 20,000 input files. *Empty cache* runs every step and stores it; *all cached* hashes the inputs (through the size+mtime+inode file index), finds every key stored and replays the logs: no step process starts. The peer is the same 200 commands in one `sh` script, which caches nothing. Then this repository's `ci/pipeline.yaml`: its `fmt` step uncached and cached, `--dry-run` of the whole pipeline (the work of a fully cached run minus the replay), and the whole pipeline (fmt, clippy, plan, migration lint, generated files, every test, the k6 smoke run) as `cargo xtask test` runs it, once with an empty cache (cargo's own build cache warm) and then fully cached.\nMeasured {}; release build; runs after one warm-up. Repeat with `cargo xtask bench ci`.\n\n{}",
        machine(),
        table(&samples)
    );
    write_section("ci", &body)
}
