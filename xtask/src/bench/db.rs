//! The database benchmark: `goodgo db migrate` on 500 small migrations against refinery's
//! own CLI, `db status`, and `db seed --listings 100000` against psql loading the same rows
//! from a data dump.

use std::path::Path;

use anyhow::{Result, bail};
use xshell::cmd;

use super::stats::{table, time_command, time_rounds, write_section};
use super::{machine, shell_in};
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
    let migrate_real = |name: &str| -> Result<()> {
        fresh(name)?;
        cmd!(in_root, "{goodgo} -q db migrate")
            .env("GOODGO_DATABASE_URL", url(name)?)
            .quiet()
            .ignore_stdout()
            .run()?;
        Ok(())
    };

    let rounds = 5;
    let urls = |prefix: &str, n: usize| -> Result<Vec<String>> {
        (0..n).map(|r| url(&format!("{prefix}_{r}"))).collect()
    };
    let goodgo_urls = urls("bench_goodgo", rounds)?;
    let goodgo_migrate = time_rounds(
        "`goodgo db migrate` (500 migrations, lock + checks)",
        rounds,
        &mut |r| fresh(&format!("bench_goodgo_{r}")),
        &|r| cmd!(in_ws, "{goodgo} db migrate").env("GOODGO_DATABASE_URL", &goodgo_urls[r]),
    )?;
    let refinery_urls = urls("bench_refinery", rounds)?;
    let refinery_migrate = time_rounds(
        "`refinery migrate -d -m` (peer, same 500 migrations)",
        rounds,
        &mut |r| fresh(&format!("bench_refinery_{r}")),
        &|r| {
            cmd!(
                in_ws,
                "{refinery} migrate -e BENCH_DB_URL -p migrations -d -m"
            )
            .env("BENCH_DB_URL", &refinery_urls[r])
        },
    )?;

    // status: on the 500-migration database, and on the real schema.
    migrate_real("bench_real")?;
    let n = 20;
    let (u500, real) = (url("bench_goodgo_0")?, url("bench_real")?);
    let status_500 = time_command(
        "`goodgo db status` (500 applied, up to date)",
        n,
        &|| cmd!(in_ws, "{goodgo} db status").env("GOODGO_DATABASE_URL", &u500),
        false,
    )?;
    let status_real = time_command(
        "`goodgo db status` (the GoodGo schema, up to date)",
        n,
        &|| cmd!(in_root, "{goodgo} db status").env("GOODGO_DATABASE_URL", &real),
        false,
    )?;
    let history = "SELECT version, name, checksum FROM refinery_schema_history ORDER BY version";
    let status_psql = time_command(
        "`psql -c 'SELECT … FROM refinery_schema_history'` (peer: reading the history)",
        n,
        &|| cmd!(in_root, "psql -X -q -d {real} -c {history}"),
        false,
    )?;

    // seed: goodgo's COPY vs psql loading the same rows from a pg_dump data dump.
    let seed_rounds = 3;
    let seed_urls = urls("bench_seed", seed_rounds)?;
    let goodgo_seed = time_rounds(
        "`goodgo db seed --listings 100000`",
        seed_rounds,
        &mut |r| migrate_real(&format!("bench_seed_{r}")),
        &|r| {
            cmd!(in_root, "{goodgo} db seed --listings 100000")
                .env("GOODGO_DATABASE_URL", &seed_urls[r])
        },
    )?;
    let dump = ws.join("seed-data.sql");
    let pg_dump = tools.pg_bin_dir.join("pg_dump");
    let seeded = &seed_urls[0];
    let out = cmd!(
        in_root,
        "{pg_dump} --data-only -t users -t listings -d {seeded} -f {dump}"
    )
    .quiet()
    .ignore_status()
    .output()?;
    if !out.status.success() {
        bail!("pg_dump failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let load_urls = urls("bench_load", seed_rounds)?;
    let psql_load = time_rounds(
        "`psql -f` of a pg_dump data dump of the same rows (peer)",
        seed_rounds,
        &mut |r| migrate_real(&format!("bench_load_{r}")),
        &|r| {
            let target = &load_urls[r];
            cmd!(
                in_root,
                "psql -X -q -v ON_ERROR_STOP=1 -d {target} -f {dump}"
            )
        },
    )?;
    drop(pg);
    let _ = std::fs::remove_dir_all(&ws);
    let ratio = goodgo_migrate.median().as_secs_f64() / refinery_migrate.median().as_secs_f64();
    let body = format!(
        "## Database\n\nMeasured {}; release build; PostgreSQL {} on loopback with fsync off (as `cargo xtask test` runs it). Repeat with `cargo xtask bench db`.\n\nMigrations: 500 generated migrations (a table and an index each) into a fresh database per run, {rounds} runs each. goodgo holds an advisory lock and checks history and checksums before handing the run to refinery; median ratio goodgo / refinery CLI: **{ratio:.2}x**.\n\n{}\nStatus, {n} runs each after one warm-up:\n\n{}\nSeed: 100,000 listings and 6,001 users into a freshly migrated database, {seed_rounds} runs each. The peer loads exactly the rows goodgo generated, from `pg_dump --data-only` (COPY statements).\n\n{}",
        machine(),
        tools.pg_version,
        table(&[goodgo_migrate, refinery_migrate]),
        table(&[status_real, status_500, status_psql]),
        table(&[goodgo_seed, psql_load]),
    );
    write_section("db", &body)
}
