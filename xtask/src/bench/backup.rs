//! The backup benchmark, side by side in one run on one database (pgbench tables at scale
//! 30, about 460 MB, plus the GoodGo schema migrated and seeded): `goodgo backup create`
//! against `pg_dump -Fc` (what users reach for) and the floor (`COPY … TO '/dev/null'` of
//! every table), with the output sizes; `goodgo backup restore` against a single-job
//! `pg_restore` of the `pg_dump -Fc` file (and `pg_restore --jobs` of a plain directory
//! dump); `goodgo backup verify`, with and without `--restore`, per GB. The commands of a
//! group take turns, round after round, so that a slower minute on a shared machine does
//! not fall on one of them only.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use xshell::{Cmd, cmd};

use super::stats::{Sample, table, write_section};
use super::{machine, shell_in};
use crate::provision;
use crate::services::{Postgres, database_url, drop_database, fresh_database, seeded_database};

/// pgbench's scale: 30 (about 460 MB of pgbench tables), or GOODGO_BENCH_BACKUP_SCALE.
fn scale() -> u32 {
    env_number("GOODGO_BENCH_BACKUP_SCALE", 30)
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
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

/// One command of a group: its label, what readies a round (given the round), and the
/// command.
struct Contender<'a, 's> {
    label: &'a str,
    prepare: &'a dyn Fn(usize) -> Result<()>,
    command: &'a dyn Fn(usize) -> Cmd<'s>,
}

/// Runs every contender once per round, in turn, `rounds` times; each run must succeed.
/// Before each run, `settle` waits for the server's background work (autovacuum of what
/// the previous run loaded, a checkpoint), so that no run pays for the one before it.
fn take_turns(
    rounds: usize,
    settle: &dyn Fn() -> Result<()>,
    contenders: &[Contender<'_, '_>],
) -> Result<Vec<Sample>> {
    let mut samples: Vec<Sample> = contenders
        .iter()
        .map(|c| Sample {
            label: c.label.to_string(),
            runs: Vec::new(),
        })
        .collect();
    for round in 0..rounds {
        for (c, sample) in contenders.iter().zip(&mut samples) {
            settle()?;
            (c.prepare)(round)?;
            let cmd = (c.command)(round).quiet().ignore_stdout().ignore_status();
            let start = Instant::now();
            let out = cmd
                .output()
                .with_context(|| format!("running {}", c.label))?;
            let took = start.elapsed();
            if !out.status.success() {
                bail!(
                    "{} failed: {}",
                    c.label,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            sample.runs.push(took);
        }
    }
    Ok(samples)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn nothing(_: usize) -> Result<()> {
    Ok(())
}

pub fn run(goodgo: &Path) -> Result<()> {
    let scale = scale();
    let listings = env_number("GOODGO_BENCH_BACKUP_LISTINGS", 100_000);
    let rounds = env_number("GOODGO_BENCH_BACKUP_ROUNDS", 3) as usize;
    eprintln!("bench backup: pgbench scale {scale} and {listings} seeded listings");
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
    // The GoodGo schema, migrated and seeded, then pgbench's tables beside it.
    let source = seeded_database(goodgo, &server, "bench_source", u64::from(listings))?;
    let scale_arg = scale.to_string();
    cmd!(sh, "{pgbench} -i -q -s {scale_arg} {source}")
        .quiet()
        .ignore_stderr()
        .run()?;
    cmd!(sh, "{psql} -X -q -d {source} -c 'VACUUM ANALYZE'")
        .quiet()
        .run()?;
    let sql = |query: &str| -> Result<String> {
        Ok(cmd!(sh, "{psql} -X -A -t -d {source} -c {query}")
            .quiet()
            .read()?
            .trim()
            .to_string())
    };
    let db_bytes: f64 = sql("SELECT pg_database_size(current_database())")?.parse()?;
    let table_count = sql(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )?;
    // The floor: every table's rows turned into COPY text by the server, written nowhere.
    let copy_all = sql(
        "SELECT string_agg(format('COPY %s TO %L;', c.oid::regclass, '/dev/null'), ' ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )?;
    // Once untimed: every table read into memory.
    cmd!(sh, "{psql} -X -q -d {source} -c {copy_all}")
        .quiet()
        .run()?;

    // Autovacuum visits every freshly loaded table (a restore's 3 million rows are
    // vacuumed and analyzed after it): wait until no worker runs, then checkpoint.
    let settle = || -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")?
            != "0"
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        sql("CHECKPOINT").map(drop)
    };
    let dest = work.join("backups");
    let dump = work.join("bench.dump");
    let plain_dir = work.join("plain");
    let goodgo_cmd = |args: &[&str]| {
        cmd!(sh, "{goodgo} -q backup --to {dest} {args...}")
            .env("GOODGO_DATABASE_URL", &source)
            .env("GOODGO_PG_BIN_DIR", bin)
    };
    let created = take_turns(
        rounds,
        &settle,
        &[
            Contender {
                label: "`goodgo backup create` (pg_dump -Fd -j2; table hashes, zstd and SHA-256 as pg_dump writes)",
                prepare: &|_| {
                    let _ = std::fs::remove_dir_all(&dest);
                    Ok(())
                },
                command: &|_| goodgo_cmd(&["create"]),
            },
            Contender {
                label: "`pg_dump -Fc` (peer)",
                prepare: &nothing,
                command: &|_| cmd!(sh, "{pg_dump} -Fc -f {dump} {source}"),
            },
            Contender {
                label: "`COPY … TO '/dev/null'` of every table (floor)",
                prepare: &nothing,
                command: &|_| cmd!(sh, "{psql} -X -q -d {source} -c {copy_all}"),
            },
            Contender {
                label: "`pg_dump -Fd -j2 --compress=0` alone (goodgo's dump, no hashes, no zstd)",
                prepare: &|_| {
                    let _ = std::fs::remove_dir_all(&plain_dir);
                    Ok(())
                },
                command: &|_| {
                    cmd!(
                        sh,
                        "{pg_dump} -Fd -j2 --compress=0 --no-sync -f {plain_dir} {source}"
                    )
                },
            },
        ],
    )?;
    let backup_bytes = dir_size(&dest);
    let dump_bytes = dir_size(&dump);

    let id: String = goodgo_cmd(&["list", "--json"]).read().map(|out| {
        serde_json::from_str::<serde_json::Value>(&out)
            .ok()
            .and_then(|v| v["backups"][0]["id"].as_str().map(str::to_string))
            .unwrap_or_default()
    })?;
    let verified = take_turns(
        rounds,
        &settle,
        &[
            Contender {
                label: "`goodgo backup verify` (every file's size and SHA-256)",
                prepare: &nothing,
                command: &|_| goodgo_cmd(&["verify", &id]),
            },
            Contender {
                label: "`goodgo backup verify --restore` (into a scratch database, every table's count and hash)",
                prepare: &nothing,
                command: &|_| goodgo_cmd(&["verify", "--restore", &id]),
            },
        ],
    )?;

    let db_name = |prefix: &str, round: usize| format!("{prefix}_{round}");
    let url = |prefix: &str, round: usize| database_url(&server, &db_name(prefix, round));
    let (r_goodgo, r_single, r_jobs) = (
        (0..rounds)
            .map(|r| url("bench_restore", r))
            .collect::<Result<Vec<_>>>()?,
        (0..rounds)
            .map(|r| url("bench_pg_restore", r))
            .collect::<Result<Vec<_>>>()?,
        (0..rounds)
            .map(|r| url("bench_pg_restore_j", r))
            .collect::<Result<Vec<_>>>()?,
    );
    // A restored database is dropped before the next run: it is not looked at again, and
    // autovacuum would otherwise work through its tables during the runs that follow.
    let restore_dbs = ["bench_restore", "bench_pg_restore", "bench_pg_restore_j"];
    let settle_restores = || -> Result<()> {
        for prefix in restore_dbs {
            for r in 0..rounds {
                drop_database(&server, &db_name(prefix, r))?;
            }
        }
        settle()
    };
    let restored = take_turns(
        rounds,
        &settle_restores,
        &[
            Contender {
                label: "`goodgo backup restore` (checks, zstd, pg_restore -j2, every table's count and hash during its post-data section)",
                // goodgo creates the database it restores into (dropped by the settling).
                prepare: &nothing,
                command: &|r| goodgo_cmd(&["restore", &id, "--to-database", &r_goodgo[r]]),
            },
            Contender {
                label: "`pg_restore` of the -Fc file, one job (peer)",
                prepare: &|r| fresh_database(&server, &db_name("bench_pg_restore", r)).map(drop),
                command: &|r| {
                    let db = &r_single[r];
                    cmd!(sh, "{pg_restore} -d {db} {dump}")
                },
            },
            Contender {
                label: "`pg_restore -j2` of the plain directory dump (no checks)",
                prepare: &|r| fresh_database(&server, &db_name("bench_pg_restore_j", r)).map(drop),
                command: &|r| {
                    let db = &r_jobs[r];
                    cmd!(sh, "{pg_restore} -j2 -d {db} {plain_dir}")
                },
            },
        ],
    )?;
    drop(pg);
    let _ = std::fs::remove_dir_all(&work);

    let median = |s: &Sample| secs(s.median());
    let ratio = |a: &Sample, b: &Sample| median(a) / median(b);
    let (create_vs_dump, create_vs_floor) = (
        ratio(&created[0], &created[1]),
        ratio(&created[0], &created[2]),
    );
    let restore_vs = ratio(&restored[0], &restored[1]);
    let goal = |value: f64, limit: f64| {
        if value <= limit {
            format!("met (goal ≤ {limit}x)")
        } else {
            format!("**missed** (goal ≤ {limit}x)")
        }
    };
    let size_goal = if backup_bytes < dump_bytes {
        "met (goal: smaller)"
    } else {
        "**missed** (goal: smaller)"
    };
    let (db_gb, stored_gb) = (db_bytes / 1e9, backup_bytes as f64 / 1e9);
    let body = format!(
        "## Backup\n\n\
Measured {}; release build; PostgreSQL {} on loopback with fsync off. One run of `cargo xtask bench backup` (GOODGO_BENCH_BACKUP_SCALE={scale}, GOODGO_BENCH_BACKUP_LISTINGS={listings}): a {:.0} MB database of {table_count} tables (pgbench scale {scale} beside the GoodGo schema, migrated and seeded with {listings} listings). The commands of each group take turns, {rounds} rounds; ratios are of medians.\n\n\
Create: goodgo / `pg_dump -Fc` **{create_vs_dump:.2}x**, {}; goodgo / floor **{create_vs_floor:.2}x**, {}. Size: goodgo's backup {:.1} MB, `pg_dump -Fc` {:.1} MB, {size_goal}.\n\n{}\n\
Restore: goodgo / single-job `pg_restore` **{restore_vs:.2}x**, {}; `pg_restore -j2` of a plain directory dump / single-job `pg_restore` {:.2}x.\n\n{}\n\
Verify: checksums {:.2} s per GB stored ({:.1} MB stored); by restoring, {:.1} s per GB of database.\n\n{}",
        machine(),
        tools.pg_version,
        db_bytes / 1e6,
        goal(create_vs_dump, 0.9),
        goal(create_vs_floor, 1.15),
        backup_bytes as f64 / 1e6,
        dump_bytes as f64 / 1e6,
        table(&created),
        goal(restore_vs, 0.6),
        ratio(&restored[2], &restored[1]),
        table(&restored),
        median(&verified[0]) / stored_gb.max(1e-9),
        backup_bytes as f64 / 1e6,
        median(&verified[1]) / db_gb.max(1e-9),
        table(&verified),
    );
    write_section("backup", &body)
}
