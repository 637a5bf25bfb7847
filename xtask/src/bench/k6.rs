//! The k6 benchmark: the overhead of `goodgo k6 run` (k6 plus its `--out json` stream,
//! the parsing, the table) over running the same script with bare `k6 run`, against the
//! same release API on a seeded database, the two taking turns.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use xshell::cmd;

use super::stats::{Sample, table, write_section};
use super::{machine, shell_in};
use crate::provision;
use crate::root;

pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench k6: goodgo k6 run vs bare k6 run, same script and API");
    let tools = provision::ensure_tools()?;
    let seeded = super::seeded_api(goodgo, &tools, "bench_k6", 1000, &[])?;
    let port = seeded.port;
    // A workspace of its own, so the kept runs do not land in this repository.
    let ws = std::env::temp_dir().join(format!("goodgo-bench-k6-{}", std::process::id()));
    std::fs::create_dir_all(ws.join("ci/k6"))?;
    std::fs::write(ws.join("goodgo.yaml"), "name: bench\n")?;
    for f in ["lib.js", "search.js"] {
        std::fs::copy(root().join("ci/k6").join(f), ws.join("ci/k6").join(f))?;
    }
    let wsh = shell_in(&ws)?;
    let base = format!("http://127.0.0.1:{port}");
    let (seconds, rate, rounds) = ("5s", "20", 6);
    let path = tools.path_env();
    let bare = || {
        cmd!(
            wsh,
            "k6 run --quiet --no-usage-report -e BASE_URL={base} -e DURATION={seconds} -e RATE={rate} ci/k6/search.js"
        )
        .env("PATH", &path)
    };
    let ours = || {
        cmd!(
            wsh,
            "{goodgo} k6 run search --base-url {base} --duration {seconds} --rate {rate}"
        )
        .env("PATH", &path)
    };
    let time = |c: xshell::Cmd<'_>, label: &str| -> Result<Duration> {
        let start = Instant::now();
        let out = c.quiet().ignore_stdout().ignore_status().output()?;
        if !out.status.success() {
            bail!("{label} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(start.elapsed())
    };
    time(bare(), "warm-up")?;
    let (mut b, mut o) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        b.push(time(bare(), "k6 run")?);
        o.push(time(ours(), "goodgo k6 run")?);
    }
    drop(seeded);
    let _ = std::fs::remove_dir_all(&ws);
    let samples = [
        Sample {
            label: format!("`k6 run ci/k6/search.js` ({seconds} at {rate}/s, bare)"),
            runs: b,
        },
        Sample {
            label: "`goodgo k6 run search` (same load, --base-url)".to_string(),
            runs: o,
        },
    ];
    let overhead =
        (samples[1].median().as_secs_f64() / samples[0].median().as_secs_f64() - 1.0) * 100.0;
    let body = format!(
        "## k6 runs\n\nMeasured {}; release builds; the API (`GOODGO_API_WORKERS=1`) on PostgreSQL {} (fsync off) with 1,000 seeded listings, loopback. The two commands take turns, {rounds} rounds after one warm-up; wall time of the whole command. Repeat with `cargo xtask bench k6`.\n\n{}\n`goodgo k6 run`'s overhead over bare `k6 run` (its `--out json` stream, reading it, the table), median against median: **{overhead:+.1}%** (target: under 5%).\n",
        machine(),
        tools.pg_version,
        table(&samples)
    );
    write_section("k6", &body)
}
