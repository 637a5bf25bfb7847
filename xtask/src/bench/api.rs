//! The API benchmark: the search endpoint under k6 at constant arrival rates, beside
//! pgbench running the same SQL at the same rate and concurrency against the same database.

use std::path::Path;

use anyhow::Result;

use super::machine;
use super::stats::{percentile, write_section};
use crate::provision::{self, Tools};

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

/// What one k6 run measured: each request's latency in ms (sorted), the requests that
/// failed and the iterations k6 could not start in time (it had no free VU).
struct K6Run {
    latencies: Vec<f64>,
    failed: u64,
    dropped: u64,
}

/// k6 sending `GET url` at a constant arrival rate of `rate` requests/s for `seconds`, with
/// at most `vus` VUs (each a keep-alive connection). The latencies come from its CSV output
/// (`http_req_duration`, one row a request); the failures and dropped iterations from its
/// summary.
fn k6_load(
    tools: &Tools,
    dir: &Path,
    url: &str,
    rate: u32,
    vus: usize,
    seconds: u64,
) -> Result<K6Run> {
    let script = dir.join("search.js");
    std::fs::write(
        &script,
        format!(
            "import http from 'k6/http';\nexport const options = {{ discardResponseBodies: true, scenarios: {{ search: {{ executor: 'constant-arrival-rate', rate: {rate}, timeUnit: '1s', duration: '{seconds}s', preAllocatedVUs: {vus}, maxVUs: {vus} }} }} }};\nexport default function () {{\n  http.get('{url}');\n}}\n"
        ),
    )?;
    let (csv, summary) = (dir.join("k6.csv"), dir.join("k6-summary.json"));
    let args = [
        "--summary-export".to_string(),
        summary.display().to_string(),
    ];
    let mut latencies: Vec<f64> = super::k6_samples(tools, &script, &csv, &args)?
        .into_iter()
        .filter_map(|(metric, value)| (metric == "http_req_duration").then_some(value))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary)?)?;
    let count = |metric: &str, field: &str| {
        summary["metrics"][metric][field]
            .as_f64()
            .unwrap_or(0.0)
            .round() as u64
    };
    Ok(K6Run {
        latencies,
        failed: count("http_req_failed", "passes"),
        dropped: count("dropped_iterations", "count"),
    })
}

/// The search endpoint under k6 at constant arrival rates, beside pgbench running the same
/// SQL at the same rates against the same database.
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
    let endpoint = format!("http://127.0.0.1:{port}{path}");
    // The same arrival rate for both, at most this many connections (k6 VUs, pgbench
    // clients): an open model, as users arrive, so neither load waits on its own answers.
    let connections = 8;
    // Warm the pool and the statement cache.
    k6_load(&tools, &dir, &endpoint, 500, connections, 2)?;
    let mut rows = String::new();
    let (mut failed, mut dropped) = (0, 0);
    let mut ratios = Vec::new();
    // Each rate in rounds of 5 s, the two loads taking turns, so that both see the same
    // machine (a shared virtual machine's speed drifts over a minute).
    let round = 5u64;
    let rounds = 2u64;
    for rate in [200u32, 1000, 2000] {
        let (mut http, mut pg) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let run = k6_load(&tools, &dir, &endpoint, rate, connections, round)?;
            http.extend(run.latencies);
            failed += run.failed;
            dropped += run.dropped;
            pg.extend(super::pgbench(
                &tools,
                &dir.join("search.sql"),
                &url,
                connections,
                round,
                &["-R".to_string(), rate.to_string()],
            )?);
        }
        http.sort_by(f64::total_cmp);
        pg.sort_by(f64::total_cmp);
        let seconds = (round * rounds) as f64;
        let stats = |l: &[f64]| {
            (
                l.len() as f64 / seconds,
                percentile(l, 0.5),
                percentile(l, 0.95),
            )
        };
        let (http_rps, http_med, http_p95) = stats(&http);
        let (pg_rps, pg_med, pg_p95) = stats(&pg);
        let ratio = http_p95 / pg_p95.max(0.001);
        ratios.push((rate, ratio));
        rows.push_str(&format!(
            "| {rate}/s | k6 → goodgo-api → PostgreSQL | {http_rps:.0} | {http_med:.2} ms | {http_p95:.2} ms | **{ratio:.2}x** |\n| {rate}/s | pgbench → PostgreSQL (same SQL, peer) | {pg_rps:.0} | {pg_med:.2} ms | {pg_p95:.2} ms | |\n"
        ));
    }
    drop(seeded);
    let _ = std::fs::remove_dir_all(&dir);
    let summary: Vec<String> = ratios
        .iter()
        .map(|(rate, ratio)| format!("{ratio:.2}x at {rate}/s"))
        .collect();
    let body = format!(
        "## API search\n\nMeasured {}; release build; PostgreSQL {} (fsync off) on loopback with 100,000 seeded listings. Repeat with `cargo xtask bench api`.\n\n`GET {path}` (the keyset page the API serves; the API with `GOODGO_API_WORKERS=1`) under k6 at a constant arrival rate (`constant-arrival-rate`, at most {connections} VUs, each a keep-alive connection), beside pgbench running the very SQL the endpoint runs at the same rate (`-R`) with the same number of connections on the same database. The two take turns in rounds of {round} s ({} s each in all per rate). Latencies are per request: k6's `http_req_duration` from its CSV output, pgbench's per-transaction log. The ratio is the service's p95 over the raw query's. Load generator, server and database share the machine's 2 cores; k6's JavaScript VUs need far more CPU per request than pgbench's C loop, so the higher the rate, the more of the HTTP row's latency is waiting for a core.\n\n| rate | load | requests/s | median | p95 | p95 ratio |\n|---|---|---|---|---|---|\n{rows}\nThe HTTP service's p95 over the raw query's: {}. Failed requests: {failed}; iterations k6 could not start in time: {dropped}.\n",
        machine(),
        tools.pg_version,
        round * rounds,
        summary.join(", "),
    );
    write_section("api", &body)
}
