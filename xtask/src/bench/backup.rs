//! The backup benchmark: `goodgo backup create` against `pg_dump -Fc` (what users reach
//! for) and the floor (`COPY … TO '/dev/null'` of every table), and `goodgo backup restore`
//! against a single-job `pg_restore` of the `pg_dump -Fc` file, on a pgbench database.

use std::path::Path;

use anyhow::Result;
use xshell::cmd;

use super::stats::{Timed, table, time_rounds, write_section};
use super::{OnDatabases, machine, shell_in};
use crate::provision;
use crate::services::{Postgres, drop_database, fresh_database};

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
    let copy_all = "COPY pgbench_accounts TO '/dev/null'; COPY pgbench_branches TO '/dev/null'; COPY pgbench_tellers TO '/dev/null'; COPY pgbench_history TO '/dev/null'";
    let peers: [Timed<'_>; 2] = [
        ("`pg_dump -Fc` (peer)", &|| {
            cmd!(sh, "{pg_dump} -Fc -f {dump} {source}")
        }),
        ("`COPY … TO '/dev/null'` of every table (floor)", &|| {
            cmd!(sh, "{psql} -X -q -d {source} -c {copy_all}")
        }),
    ];
    let mut created = vec![goodgo_create];
    for (label, make) in peers {
        created.push(time_rounds(label, rounds, &mut |_| Ok(()), &|_| make())?);
    }
    let dump_bytes = std::fs::metadata(&dump).map(|m| m.len()).unwrap_or(0);

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
    let restores = [
        OnDatabases {
            label: "`goodgo backup restore` (checks, zstd, pg_restore -j2, table hashes)",
            rounds,
            prefix: "bench_restore",
            // goodgo creates the database it restores into.
            prepare: &|name| drop_database(&server, name),
            command: &|db| {
                cmd!(
                    sh,
                    "{goodgo} -q backup --to {dest} restore {id} --to-database {db}"
                )
                .env("GOODGO_PG_BIN_DIR", bin)
            },
        },
        OnDatabases {
            label: "`pg_restore` of the -Fc file, one job (peer)",
            rounds,
            prefix: "bench_pg_restore",
            prepare: &|name| fresh_database(&server, name).map(drop),
            command: &|db| cmd!(sh, "{pg_restore} -d {db} {dump}"),
        },
    ];
    let mut restored = restores
        .iter()
        .map(|t| t.time(&server))
        .collect::<Result<Vec<_>>>()?;
    drop(pg);
    let _ = std::fs::remove_dir_all(&work);

    let db_mb = db_bytes.trim().parse::<f64>().unwrap_or(0.0) / 1e6;
    let ratio = |a: &super::stats::Sample, b: &super::stats::Sample| {
        a.median().as_secs_f64() / b.median().as_secs_f64()
    };
    let gb = backup_bytes as f64 / 1e9;
    let verify_s_per_gb = if gb > 0.0 {
        verify.median().as_secs_f64() / gb
    } else {
        0.0
    };
    restored.push(verify);
    let body = format!(
        "## Backup\n\nMeasured {}; release build; PostgreSQL {} on loopback with fsync off. Repeat with `cargo xtask bench backup` (`GOODGO_BENCH_BACKUP_SCALE=30` for the issue's 500 MB; this run: pgbench scale {scale}, a {db_mb:.0} MB database). {rounds} runs each.\n\nCreate: goodgo / `pg_dump -Fc` **{:.2}x**, goodgo / floor **{:.2}x**. Size: goodgo's backup {:.1} MB, `pg_dump -Fc` {:.1} MB.\n\n{}\nRestore: goodgo / single-job `pg_restore` **{:.2}x**. Verify (checksums only): {:.1} s per GB stored.\n\n{}",
        machine(),
        tools.pg_version,
        ratio(&created[0], &created[1]),
        ratio(&created[0], &created[2]),
        backup_bytes as f64 / 1e6,
        dump_bytes as f64 / 1e6,
        table(&created),
        ratio(&restored[0], &restored[1]),
        verify_s_per_gb,
        table(&restored),
    );
    write_section("backup", &body)
}
