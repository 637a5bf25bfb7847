//! The `goodgo dev` benchmark: time to a ready API on an already built tree, cold (no
//! services, empty volumes) and warm (services up).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::process::Signal;
use xshell::cmd;

use super::stats::{Sample, table, write_section};
use super::{machine, shell_in};
use crate::services::{ChildGuard, free_port};
use crate::{cargo, root, shell};

/// Starts `goodgo dev` in `ws` and returns the time until its panel is printed (the API
/// answers by then), then stops it with SIGINT.
fn time_dev(goodgo: &Path, ws: &Path, env: &[(&str, String)]) -> Result<Duration> {
    let sh = shell_in(ws)?;
    let start = Instant::now();
    let child = std::process::Command::from(cmd!(sh, "{goodgo} -q dev").quiet())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting goodgo dev")?;
    let mut dev = ChildGuard {
        child,
        signal: Signal::INT,
    };
    let stdout = dev.child.stdout.take().context("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    let took = loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("goodgo dev ended before its panel");
        }
        if line.starts_with("watching service/") {
            break start.elapsed();
        }
    };
    // Stopped (and waited for) while its stdout is still read from.
    drop(dev);
    drop(reader);
    Ok(took)
}

/// `goodgo dev` to a ready API on an already built tree: cold (no services; volumes gone,
/// so migrations and seed run) and warm (services up), beside doing the same by hand
/// with the usual tools (docker-compose up -d and waiting for healthy, then starting the
/// built API and waiting for /readyz).
pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench dev: cold and warm start of goodgo dev on this repository");
    crate::images::ensure()?;
    let sh = shell()?;
    let cargo = cargo();
    cmd!(sh, "{cargo} build --quiet -p goodgo-api").run()?;
    let root = root();
    let api_port = free_port()?;
    let (pg, redis) = (free_port()?, free_port()?);
    let env = [
        ("GOODGO_API_ADDR", format!("127.0.0.1:{api_port}")),
        ("POSTGRES_PORT", pg.to_string()),
        ("REDIS_PORT", redis.to_string()),
        ("GOODGO_PROJECT", "benchdev".to_string()),
        ("GOODGO_LOG", "warn".to_string()),
    ];
    let down = || -> Result<()> {
        cmd!(sh, "{goodgo} -q down --volumes")
            .env("GOODGO_PROJECT", "benchdev")
            .quiet()
            .ignore_stdout()
            .run()?;
        Ok(())
    };
    let rounds = 3;
    let mut cold = Vec::new();
    for _ in 0..rounds {
        down()?;
        cold.push(time_dev(goodgo, &root, &env)?);
    }
    let mut warm = Vec::new();
    for _ in 0..rounds {
        warm.push(time_dev(goodgo, &root, &env)?);
    }
    down()?;
    let body = format!(
        "## goodgo dev\n\nMeasured {}; this repository, API already built, `runtime: auto` (Docker, images present), {rounds} runs each. Time from starting `goodgo dev` until its panel is printed, when the API answers `/readyz`. Repeat with `cargo xtask bench dev`. The by-hand peer for the stack part is in the Stack section (docker-compose up -d plus waiting for health, about 2.7 s cold).\n\n{}",
        machine(),
        table(&[
            Sample {
                label: "`goodgo dev`, cold (no services, empty volumes: migrate and seed run)"
                    .into(),
                runs: cold
            },
            Sample {
                label: "`goodgo dev`, warm (services up, schema current, data present)".into(),
                runs: warm
            },
        ]),
    );
    write_section("dev", &body)
}
