//! The cache benchmark: the search endpoint under k6 at a constant arrival rate, the API
//! with a warm Redis cache beside the same API without one, on the same database, taking
//! turns; the ratio of their p95 latencies.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::machine;
use super::stats::{percentile, write_section};
use crate::provision;
use crate::services::{ChildGuard, free_port};

/// The searches k6 draws from: every seeded city with a bedroom filter, a price-sorted
/// range, and a word sorted by relevance (full-text search). Words over all cities are
/// left out: each takes hundreds of ms here, and the server without a cache could not keep
/// up with the load (the comparison would be of a queue, not of the cache).
fn searches() -> Vec<String> {
    let cities = [
        "Ho%20Chi%20Minh%20City",
        "Hanoi",
        "Da%20Nang",
        "Hai%20Phong",
        "Nha%20Trang",
        "Can%20Tho",
        "Vung%20Tau",
        "Hue",
    ];
    let mut out = Vec::new();
    for city in cities {
        out.push(format!(
            "/v1/listings/search?city={city}&bedrooms=2&limit=20"
        ));
        out.push(format!(
            "/v1/listings/search?city={city}&min_price=100000&max_price=400000&sort=price_asc&limit=20"
        ));
        out.push(format!(
            "/v1/listings/search?city={city}&q=garden&sort=relevance&limit=20"
        ));
    }
    out
}

/// k6 at `rate` requests/s for `seconds` against the API on `port`, cycling through
/// `paths`: each request's latency in ms, and the requests that failed or could not start.
fn load(
    tools: &provision::Tools,
    dir: &Path,
    port: u16,
    paths: &[String],
    rate: u32,
    seconds: u64,
) -> Result<(Vec<f64>, u64)> {
    let script = dir.join(format!("search-{port}.js"));
    let urls: Vec<String> = paths
        .iter()
        .map(|p| format!("http://127.0.0.1:{port}{p}"))
        .collect();
    std::fs::write(
        &script,
        format!(
            "import http from 'k6/http';\nconst urls = {};\nexport const options = {{ discardResponseBodies: true, scenarios: {{ search: {{ executor: 'constant-arrival-rate', rate: {rate}, timeUnit: '1s', duration: '{seconds}s', preAllocatedVUs: 8, maxVUs: 8 }} }} }};\nexport default function () {{\n  http.get(urls[Math.floor(Math.random() * urls.length)]);\n}}\n",
            serde_json::to_string(&urls)?
        ),
    )?;
    let csv = dir.join(format!("k6-{port}.csv"));
    let samples = super::k6_samples(tools, &script, &csv, &[])?;
    let mut latencies: Vec<f64> = samples
        .iter()
        .filter(|(m, _)| m == "http_req_duration")
        .map(|(_, v)| *v)
        .collect();
    // Requests that failed, and iterations k6 could not start in time (no free VU).
    let failed = samples
        .iter()
        .filter(|(m, v)| (m == "http_req_failed" && *v > 0.0) || m == "dropped_iterations")
        .map(|(m, v)| {
            if m == "dropped_iterations" {
                *v as u64
            } else {
                1
            }
        })
        .sum();
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, failed))
}

/// A `redis-server` on a free loopback port without persistence, stopped when dropped.
fn redis() -> Result<(ChildGuard, u16)> {
    let port = free_port()?;
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting redis-server (apt-get install redis-server)")?;
    let guard = ChildGuard {
        child,
        signal: rustix::process::Signal::TERM,
    };
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server did not listen in 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((guard, port))
}

pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench cache: search latency with a warm Redis cache and without, 100,000 listings");
    let tools = provision::ensure_tools()?;
    // The API without a cache (it owns the database server), then one with, on the same data.
    let seeded = super::seeded_api(goodgo, &tools, "bench_cache", 100_000, &[])?;
    let (_redis, redis_port) = redis()?;
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let bin = crate::root().join("target/release/goodgo-api");
    let (cached_api, cached) = crate::services::start_api(
        &bin,
        &seeded.url,
        &[
            ("GOODGO_API_WORKERS", "1"),
            ("GOODGO_REDIS_URL", &redis_url),
        ],
    )?;
    let plain = seeded.port;
    let dir = std::env::temp_dir().join(format!("goodgo-bench-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let paths = searches();
    // Warm both: the pools and statement caches of both, every page into the cache.
    let http = goodgo_testkit::http::Http::keep_alive(
        &format!("127.0.0.1:{cached}"),
        Duration::from_secs(30),
    );
    for p in &paths {
        let a = http.get(p).context("warming the cache")?;
        anyhow::ensure!(a.status == 200, "{p}: {} {}", a.status, a.body);
    }
    load(&tools, &dir, plain, &paths, 200, 2)?;
    load(&tools, &dir, cached, &paths, 200, 2)?;
    let (rate, round, rounds) = (50u32, 5u64, 3u64);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let mut failed = 0;
    for _ in 0..rounds {
        let (l, f) = load(&tools, &dir, plain, &paths, rate, round)?;
        without.extend(l);
        failed += f;
        let (l, f) = load(&tools, &dir, cached, &paths, rate, round)?;
        with.extend(l);
        failed += f;
    }
    let metrics = http.get("/metrics").map(|a| a.body).unwrap_or_default();
    let counter = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (hits, misses) = (
        counter("goodgo_cache_hits_total{cache=\"search\"}"),
        counter("goodgo_cache_misses_total{cache=\"search\"}"),
    );
    drop(cached_api);
    drop(seeded);
    let _ = std::fs::remove_dir_all(&dir);
    with.sort_by(f64::total_cmp);
    without.sort_by(f64::total_cmp);
    let seconds = (round * rounds) as f64;
    let row = |label: &str, l: &[f64]| {
        format!(
            "| {label} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms |\n",
            l.len() as f64 / seconds,
            percentile(l, 0.5),
            percentile(l, 0.95),
            percentile(l, 0.99),
        )
    };
    let ratio = percentile(&with, 0.95) / percentile(&without, 0.95).max(0.001);
    let body = format!(
        "## API search cache\n\nMeasured {}; release build; PostgreSQL {} (fsync off) and redis-server {} on loopback, 100,000 seeded listings. Repeat with `cargo xtask bench cache`.\n\nThe same load on two servers of the same build on the same database, `GOODGO_API_WORKERS=1` each: one with `GOODGO_REDIS_URL` (the cache warmed first with every page of the load), one without. k6 sends {rate} requests/s (`constant-arrival-rate`, at most 8 VUs), each a search drawn at random from {} searches: every seeded city with a bedroom filter, a price range sorted by price and a word sorted by relevance. The two servers take turns in rounds of {round} s ({} s each in all). Latencies are k6's `http_req_duration` per request.\n\n| server | requests/s | median | p95 | p99 |\n|---|---|---|---|---|\n{}{}\nCached p95 over uncached p95: **{ratio:.2}x**. The cached server's counters: {hits:.0} search hits, {misses:.0} misses. Failed requests and iterations k6 could not start in time: {failed}.\n",
        machine(),
        tools.pg_version,
        super::command_version("redis-server", &["--version"])
            .split_whitespace()
            .nth(2)
            .unwrap_or("")
            .trim_start_matches("v="),
        paths.len(),
        round * rounds,
        row("without cache (PostgreSQL every time)", &without),
        row("with a warm Redis cache", &with),
    );
    write_section("cache", &body)
}
