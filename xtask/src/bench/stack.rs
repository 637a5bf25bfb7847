//! The stack benchmark: cold start of postgres + redis to healthy, goodgo against
//! `docker-compose up -d` plus waiting for health, same file, same images; the warm no-op
//! `up`; native PostgreSQL from an empty folder.

use std::path::Path;

use anyhow::{Result, bail};
use xshell::{Cmd, Shell, cmd};

use super::stats::{table, time_command, time_rounds, write_section};
use super::{command_version, machine, shell_in};
use crate::images::docker_answers;
use crate::services::free_port;

/// The bench stack: the repository's postgres and redis services, on free ports, without
/// the top-level `name:` (docker-compose 1.x rejects it; both tools get `-p` instead).
fn bench_compose(pg: u16, redis: u16) -> String {
    format!(
        r#"services:
  postgres:
    image: goodgo/postgres:15
    environment:
      POSTGRES_USER: goodgo
      POSTGRES_PASSWORD: goodgo-dev-password
      POSTGRES_DB: goodgo
    ports: ["127.0.0.1:{pg}:5432"]
    volumes: [pgdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U goodgo -d goodgo"]
      interval: 2s
      timeout: 3s
      retries: 30
  redis:
    image: goodgo/redis:7
    command: ["redis-server", "--appendonly", "yes"]
    ports: ["127.0.0.1:{redis}:6379"]
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 2s
      timeout: 3s
      retries: 30
volumes:
  pgdata:
"#
    )
}

/// `goodgo down --volumes` in the shell's folder.
fn down(sh: &Shell, goodgo: &Path) -> Result<()> {
    cmd!(sh, "{goodgo} -q down --volumes")
        .quiet()
        .ignore_stdout()
        .run()?;
    Ok(())
}

pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench stack: cold and warm up, docker and native");
    if !docker_answers() {
        bail!("the stack benchmark needs a Docker engine");
    }
    crate::images::ensure()?;
    // A workspace for Docker, and one inside it for native PostgreSQL alone (initdb, start,
    // ready from an empty folder).
    let ws = std::env::temp_dir().join(format!("goodgo-bench-stack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ws);
    let native_ws = ws.join("native");
    for (dir, name) in [(&ws, "benchgoodgo"), (&native_ws, "benchnative")] {
        std::fs::create_dir_all(dir.join("compose"))?;
        std::fs::write(
            dir.join("compose/compose.yaml"),
            bench_compose(free_port()?, free_port()?),
        )?;
        std::fs::write(dir.join("goodgo.yaml"), format!("name: {name}\n"))?;
    }
    let compose_file = ws.join("compose/compose.yaml");
    let rounds = 5;
    let (sh, native) = (shell_in(&ws)?, shell_in(&native_ws)?);
    // goodgo from nothing: `goodgo down --volumes` before every round and after the last.
    let mut timed = Vec::new();
    for (label, sh, args) in [
        (
            "`goodgo up --runtime docker` (cold, to healthy)",
            &sh,
            &["--runtime", "docker"][..],
        ),
        (
            "`goodgo up --runtime native postgres` (empty folder to ready)",
            &native,
            &["--runtime", "native", "postgres"],
        ),
    ] {
        let make = |_| cmd!(sh, "{goodgo} -q up {args...}");
        timed.push(time_rounds(
            label,
            rounds,
            &mut |_| down(sh, goodgo),
            &make,
        )?);
        down(sh, goodgo)?;
    }
    let native_cold = timed.split_off(1);
    // The warm-up run starts the services; the timed runs find nothing to change.
    let goodgo_warm = time_command(
        "`goodgo up` again, nothing changed (warm no-op)",
        10,
        &|| cmd!(sh, "{goodgo} -q up --runtime docker"),
        false,
    )?;
    down(&sh, goodgo)?;

    let project = "benchcompose";
    let compose = |args: &[&str]| -> Cmd<'_> {
        cmd!(
            sh,
            "docker-compose -p {project} -f {compose_file} {args...}"
        )
    };
    let compose_down = || -> Result<()> {
        compose(&["down", "-v"])
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()?;
        Ok(())
    };
    let wait_healthy = format!(
        "docker-compose -p {project} -f {} up -d >/dev/null 2>&1 && for s in postgres redis; do until [ \"$(docker inspect -f '{{{{.State.Health.Status}}}}' {project}_${{s}}_1 2>/dev/null)\" = healthy ]; do sleep 0.05; done; done",
        compose_file.display()
    );
    timed.push(time_rounds(
        "`docker-compose up -d` + waiting for healthy (peer, cold)",
        rounds,
        &mut |_| compose_down(),
        &|_| cmd!(sh, "sh -c {wait_healthy}"),
    )?);
    timed.push(goodgo_warm);
    timed.push(time_command(
        "`docker-compose up -d` again, nothing changed (peer, warm)",
        10,
        &|| compose(&["up", "-d"]),
        false,
    )?);
    compose_down()?;
    let _ = std::fs::remove_dir_all(&ws);
    let ratio = timed[1].median().as_secs_f64() / timed[0].median().as_secs_f64();
    let body = format!(
        "## Stack\n\nMeasured {}; release build; Docker engine {}; images `goodgo/postgres:15` and `goodgo/redis:7` from `cargo xtask images`; healthchecks every 2 s as in compose/compose.yaml. Repeat with `cargo xtask bench stack`.\n\nCold start of postgres + redis until both are healthy, {rounds} runs each from nothing (containers and volumes removed between runs). The peer is docker-compose {} with a 50 ms loop on `docker inspect` until the engine reports both healthy; goodgo runs the healthcheck command itself every ~50 ms instead of waiting for the engine's next interval. Median speed-up: **{ratio:.2}x**.\n\n{}\nNative PostgreSQL, {rounds} runs from an empty folder:\n\n{}",
        machine(),
        command_version("docker", &["version", "--format", "{{.Server.Version}}"]),
        command_version("docker-compose", &["version", "--short"]),
        table(&timed),
        table(&native_cold),
    );
    write_section("stack", &body)
}
