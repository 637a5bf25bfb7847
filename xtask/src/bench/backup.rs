//! The backup benchmark: `goodgo backup create` against `pg_dump -Fc` (what users reach
//! for) and the floor (`COPY … TO '/dev/null'` of every table), and `goodgo backup restore`
//! against a single-job `pg_restore` of the `pg_dump -Fc` file, on a pgbench database.

use std::path::Path;

use anyhow::Result;
use xshell::cmd;

use super::stats::{table, time_rounds, write_section};
use super::{machine, shell_in};
use crate::provision;
use crate::services::{Postgres, database_url, fresh_database};

/// pgbench's scale: 10 is ~160 MB of tables (the 500 MB is scale 30+; set
/// GOODGO_BENCH_BACKUP_SCALE to run it).
fn scale() -> u32 {
    std::env::var("GOODGO_BENCH_BACKUP_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub fn run(goodgo: &Path) -> Result<()> {
    let scale = scale();
    eprintln!("bench backup: pgbench scale {scale}");
    let tools = provision::ensure_tools()?;
    let pg = Postgres::start(&tools)?;
    let server = pg.url();
    let work = std::env::temp_dir().join(format!("goodgo-bench-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let sh = shell_in(&work)?;
    let bin = &tools.pg_bin_dir;
    let (pgbench, pg_dump, pg_restore, psql) = (
        bin.join("pgbench"),
        bin.join("pg_dump"),
        bin.join("pg_restore"),
        bin.join("psql"),
    );
    let source = fresh_database(&server, "bench_source")?;
    let scale_arg = scale.to_string();
    cmd!(sh, "{pgbench} -i -q -s {scale_arg} {source}")
        .quiet()
        .ignore_stderr()
        .run()?;
    let db_bytes: String = cmd!(
        sh,
        "{psql} -X -A -t -d {source} -c 'SELECT pg_database_size(current_database())'"
    )
    .read()?;
    let rounds = 3;
    let dest = work.join("backups");
    let goodgo_create = time_rounds(
        "`goodgo backup create` (pg_dump -Fd -j2, zstd, checksums, table hashes)",
        rounds,
        &mut |_| {
            let _ = std::fs::remove_dir_all(&dest);
            Ok(())
        },
        &|_| {
            cmd!(sh, "{goodgo} -q backup --to {dest} create")
                .env("GOODGO_DATABASE_URL", &source)
                .env("GOODGO_PG_BIN_DIR", bin)
        },
    )?;
    let backup_bytes = dir_size(&dest);
    let dump = work.join("bench.dump");
    let pg_dump_fc = time_rounds("`pg_dump -Fc` (peer)", rounds, &mut |_| Ok(()), &|_| {
        cmd!(sh, "{pg_dump} -Fc -f {dump} {source}")
    })?;
    let dump_bytes = std::fs::metadata(&dump).map(|m| m.len()).unwrap_or(0);
    let copy_all = "COPY pgbench_accounts TO '/dev/null'; COPY pgbench_branches TO '/dev/null'; COPY pgbench_tellers TO '/dev/null'; COPY pgbench_history TO '/dev/null'";
    let floor = time_rounds(
        "`COPY … TO '/dev/null'` of every table (floor)",
        rounds,
        &mut |_| Ok(()),
        &|_| cmd!(sh, "{psql} -X -q -d {source} -c {copy_all}"),
    )?;

    let id: String = cmd!(sh, "{goodgo} backup --to {dest} list --json")
        .env("GOODGO_PG_BIN_DIR", bin)
        .read()
        .map(|out| {
            serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|v| v["backups"][0]["id"].as_str().map(str::to_string))
                .unwrap_or_default()
        })?;
    let verify = time_rounds(
        "`goodgo backup verify` (every file's SHA-256)",
        rounds,
        &mut |_| Ok(()),
        &|_| cmd!(sh, "{goodgo} -q backup --to {dest} verify {id}"),
    )?;
    let restore_urls: Vec<String> = (0..rounds)
        .map(|r| database_url(&server, &format!("bench_restore_{r}")))
        .collect::<Result<_>>()?;
    let goodgo_restore = time_rounds(
        "`goodgo backup restore` (checks, zstd, pg_restore -j2, table hashes)",
        rounds,
        &mut |r| {
            crate::services::drop_database(&server, &format!("bench_restore_{r}"))?;
            Ok(())
        },
        &|r| {
            let db = &restore_urls[r];
            cmd!(
                sh,
                "{goodgo} -q backup --to {dest} restore {id} --to-database {db}"
            )
            .env("GOODGO_PG_BIN_DIR", bin)
        },
    )?;
    let pr_urls: Vec<String> = (0..rounds)
        .map(|r| database_url(&server, &format!("bench_pg_restore_{r}")))
        .collect::<Result<_>>()?;
    let single = time_rounds(
        "`pg_restore` of the -Fc file, one job (peer)",
        rounds,
        &mut |r| fresh_database(&server, &format!("bench_pg_restore_{r}")).map(drop),
        &|r| {
            let db = &pr_urls[r];
            cmd!(sh, "{pg_restore} -d {db} {dump}")
        },
    )?;
    drop(pg);
    let _ = std::fs::remove_dir_all(&work);

    let db_mb = db_bytes.trim().parse::<f64>().unwrap_or(0.0) / 1e6;
    let ratio = |a: &super::stats::Sample, b: &super::stats::Sample| {
        a.median().as_secs_f64() / b.median().as_secs_f64()
    };
    let gb = backup_bytes as f64 / 1e9;
    let body = format!(
        "## Backup\n\nMeasured {}; release build; PostgreSQL {} on loopback with fsync off. Repeat with `cargo xtask bench backup` (`GOODGO_BENCH_BACKUP_SCALE=30` for the issue's 500 MB; this run: pgbench scale {scale}, a {db_mb:.0} MB database). {rounds} runs each.\n\nCreate: goodgo / `pg_dump -Fc` **{:.2}x**, goodgo / floor **{:.2}x**. Size: goodgo's backup {:.1} MB, `pg_dump -Fc` {:.1} MB.\n\n{}\nRestore: goodgo / single-job `pg_restore` **{:.2}x**. Verify (checksums only): {:.1} s per GB stored.\n\n{}",
        machine(),
        tools.pg_version,
        ratio(&goodgo_create, &pg_dump_fc),
        ratio(&goodgo_create, &floor),
        backup_bytes as f64 / 1e6,
        dump_bytes as f64 / 1e6,
        table(&[goodgo_create, pg_dump_fc, floor]),
        ratio(&goodgo_restore, &single),
        if gb > 0.0 {
            verify.median().as_secs_f64() / gb
        } else {
            0.0
        },
        table(&[goodgo_restore, single, verify]),
    );
    write_section("backup", &body)
}
