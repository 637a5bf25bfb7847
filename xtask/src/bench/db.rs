//! The database benchmark: `goodgo db migrate` on 500 small migrations against refinery's
//! own CLI, `db status`, and `db seed --listings 100000` against psql loading the same rows
//! from a data dump.

use std::path::Path;

use anyhow::{Result, bail};
use xshell::cmd;

use super::stats::{Timed, table, time_commands, write_section};
use super::{OnDatabases, machine, shell_in};
use crate::services::{Postgres, database_url, fresh_database};
use crate::{cargo, provision, root, shell};

/// refinery's CLI in target/bench-tools, installed on first use.
fn refinery() -> Result<std::path::PathBuf> {
    let refinery = root().join("target/bench-tools/bin/refinery");
    if !refinery.is_file() {
        eprintln!("installing refinery_cli (the peer) into target/bench-tools…");
        let sh = shell()?;
        let cargo = cargo();
        cmd!(
            sh,
            "{cargo} install refinery_cli --locked --quiet --no-default-features
                --features postgresql --root target/bench-tools
                --target-dir target/bench-tools/build"
        )
        .run()?;
    }
    Ok(refinery)
}

/// A workspace of its own with 500 migrations, a table and an index each.
fn migrations_workspace() -> Result<std::path::PathBuf> {
    let ws = std::env::temp_dir().join(format!("goodgo-bench-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ws);
    std::fs::create_dir_all(ws.join("migrations"))?;
    std::fs::write(ws.join("goodgo.yaml"), "name: bench\n")?;
    for n in 1..=500 {
        std::fs::write(
            ws.join(format!("migrations/V{n}__table_{n}.sql")),
            format!(
                "CREATE TABLE bench_{n} (id bigint PRIMARY KEY, note text NOT NULL DEFAULT '');\nCREATE INDEX bench_{n}_note ON bench_{n} (note);\n"
            ),
        )?;
    }
    Ok(ws)
}

pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench db: migrations, status, seed");
    let tools = provision::ensure_tools()?;
    let refinery = refinery()?;
    let pg = Postgres::start(&tools)?;
    let server = pg.url();
    let url = |name: &str| database_url(&server, name);
    let fresh = |name: &str| fresh_database(&server, name).map(drop);

    let ws = migrations_workspace()?;
    let in_ws = shell_in(&ws)?;
    let in_root = shell_in(&root())?;
    // `goodgo -q db ARGS` on database `name`, its output dropped.
    let goodgo_db = |name: &str, args: &[&str]| -> Result<()> {
        cmd!(in_root, "{goodgo} -q db {args...}")
            .env("GOODGO_DATABASE_URL", url(name)?)
            .quiet()
            .ignore_stdout()
            .run()?;
        Ok(())
    };
    let migrate_real = |name: &str| -> Result<()> {
        fresh(name)?;
        goodgo_db(name, &["migrate"])
    };

    // The real schema, seeded once: `db status` runs on it, and its data dump (COPY
    // statements) is what the seed's peer loads: the very rows goodgo's deterministic seed
    // writes.
    migrate_real("bench_real")?;
    goodgo_db("bench_real", &["seed", "--listings", "100000"])?;
    let real = url("bench_real")?;
    let dump = ws.join("seed-data.sql");
    let pg_dump = tools.pg_bin_dir.join("pg_dump");
    let out = cmd!(
        in_root,
        "{pg_dump} --data-only -t users -t listings -d {real} -f {dump}"
    )
    .quiet()
    .ignore_status()
    .output()?;
    if !out.status.success() {
        bail!("pg_dump failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    // Migrations and seed: each run into a database of its own.
    let (rounds, seed_rounds) = (5, 3);
    let on_databases = [
        OnDatabases {
            label: "`goodgo db migrate` (500 migrations, lock + checks)",
            rounds,
            prefix: "bench_goodgo",
            prepare: &fresh,
            command: &|db| cmd!(in_ws, "{goodgo} db migrate").env("GOODGO_DATABASE_URL", db),
        },
        OnDatabases {
            label: "`refinery migrate -d -m` (peer, same 500 migrations)",
            rounds,
            prefix: "bench_refinery",
            prepare: &fresh,
            command: &|db| {
                cmd!(
                    in_ws,
                    "{refinery} migrate -e BENCH_DB_URL -p migrations -d -m"
                )
                .env("BENCH_DB_URL", db)
            },
        },
        OnDatabases {
            label: "`goodgo db seed --listings 100000`",
            rounds: seed_rounds,
            prefix: "bench_seed",
            prepare: &migrate_real,
            command: &|db| {
                cmd!(in_root, "{goodgo} db seed --listings 100000").env("GOODGO_DATABASE_URL", db)
            },
        },
        OnDatabases {
            label: "`psql -f` of a pg_dump data dump of the same rows (peer)",
            rounds: seed_rounds,
            prefix: "bench_load",
            prepare: &migrate_real,
            command: &|db| cmd!(in_root, "psql -X -q -v ON_ERROR_STOP=1 -d {db} -f {dump}"),
        },
    ];
    let timed = on_databases
        .iter()
        .map(|t| t.time(&server))
        .collect::<Result<Vec<_>>>()?;

    // status: on the real schema, and on the 500-migration database.
    let n = 20;
    let u500 = url("bench_goodgo_0")?;
    let history = "SELECT version, name, checksum FROM refinery_schema_history ORDER BY version";
    let status: [Timed<'_>; 3] = [
        (
            "`goodgo db status` (the GoodGo schema, up to date)",
            &|| cmd!(in_root, "{goodgo} db status").env("GOODGO_DATABASE_URL", &real),
        ),
        ("`goodgo db status` (500 applied, up to date)", &|| {
            cmd!(in_ws, "{goodgo} db status").env("GOODGO_DATABASE_URL", &u500)
        }),
        (
            "`psql -c 'SELECT … FROM refinery_schema_history'` (peer: reading the history)",
            &|| cmd!(in_root, "psql -X -q -d {real} -c {history}"),
        ),
    ];
    let status = time_commands(n, &status)?;
    drop(pg);
    let _ = std::fs::remove_dir_all(&ws);
    let ratio = timed[0].median().as_secs_f64() / timed[1].median().as_secs_f64();
    let body = format!(
        "## Database\n\nMeasured {}; release build; PostgreSQL {} on loopback with fsync off (as `cargo xtask test` runs it). Repeat with `cargo xtask bench db`.\n\nMigrations: 500 generated migrations (a table and an index each) into a fresh database per run, {rounds} runs each. goodgo holds an advisory lock and checks history and checksums before handing the run to refinery; median ratio goodgo / refinery CLI: **{ratio:.2}x**.\n\n{}\nStatus, {n} runs each after one warm-up:\n\n{}\nSeed: 100,000 listings and 6,001 users into a freshly migrated database, {seed_rounds} runs each. The peer loads exactly the rows goodgo generated, from `pg_dump --data-only` (COPY statements).\n\n{}",
        machine(),
        tools.pg_version,
        table(&timed[..2]),
        table(&status),
        table(&timed[2..]),
    );
    write_section("db", &body)
}
