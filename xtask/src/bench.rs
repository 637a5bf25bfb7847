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

/// A plan of `tasks` tasks and about `4 * tasks` dependencies, each on an earlier task, from
/// a fixed seed (a small xorshift, so the file is the same on every machine). Also returns
/// the same edges as `tsort` input.
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
    let mut edges = String::new();
    let mut count = 0;
    for i in 0..tasks {
        let mut deps: Vec<usize> = Vec::new();
        if i > 0 {
            for _ in 0..4 {
                // Mostly near neighbours, sometimes far back: long chains and wide waves.
                let back = if rand(4) == 0 {
                    rand(i) + 1
                } else {
                    rand(i.min(50)) + 1
                };
                deps.push(i - back);
            }
        }
        deps.sort();
        deps.dedup();
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
        "## Plan graph\n\nA generated plan: 10,000 tasks, {deps} dependencies, {} KiB of YAML; end to end (process start, read, parse with positions, check incl. cycle search, schedule, print).\n*Cold* parses the YAML on every run (about 80% of its time is the YAML scanner); *warm* reads the content-addressed parse cache in `.goodgo/cache/` that the first run on those exact bytes wrote (plans of 256 KiB and more only).\nMeasured {}; release build; {n} runs each after one warm-up. Repeat with `cargo xtask bench plan`.\n\n{}",
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
