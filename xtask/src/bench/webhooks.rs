//! The webhook benchmark: `POST /v1/webhooks/payments` under k6 at a fixed arrival rate,
//! each event signed in the script (`k6/crypto`'s HMAC-SHA256 over `t.body`) with an id
//! and a pending checkout of its own, beside pgbench running the statements the handler runs
//! for such an event (the service's own SQL: `routes::webhooks::sql` and `audit::INSERT`,
//! bound as parameters) in one transaction at the same rate, on the same database. The two
//! take turns in rounds so both see the same machine.

use std::path::Path;

use anyhow::{Result, bail};
use goodgo_api::routes::webhooks::sql;

use super::machine;
use super::stats::{percentile, write_section};
use crate::provision::{self, Tools};

const SECRET: &str = "whsec_bench_Qx7Lm2vB8wR4tY6uP0aS5dF1gHjKzzA9";
/// Events a second, seconds a round, rounds.
const RATE: u64 = 200;
const SECONDS: u64 = 5;
const ROUNDS: u64 = 4;
/// Agents the checkouts are spread over (each event locks its agent's subscription).
const AGENTS: u64 = 100;

/// The k6 script: one signed `payment.succeeded` an iteration, for checkout
/// `{PREFIX}{n}`, at `RATE` a second for `DURATION`.
fn k6_script() -> String {
    format!(
        r#"import http from 'k6/http';
import crypto from 'k6/crypto';
import exec from 'k6/execution';
import {{ check }} from 'k6';

export const options = {{
  scenarios: {{
    events: {{ executor: 'constant-arrival-rate', rate: {RATE}, timeUnit: '1s', duration: __ENV.DURATION, preAllocatedVUs: 40, maxVUs: 200 }},
  }},
  summaryTrendStats: ['med', 'p(95)', 'p(99)', 'max'],
}};

export default function () {{
  const n = exec.scenario.iterationInTest;
  const t = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({{
    id: `evt_${{__ENV.PREFIX}}${{n}}`, type: 'payment.succeeded', created: t,
    data: {{ object: {{ reference: `${{__ENV.PREFIX}}${{n}}` }} }},
  }});
  const signature = crypto.hmac('sha256', __ENV.SECRET, `${{t}}.${{body}}`, 'hex');
  const r = http.post(`${{__ENV.BASE_URL}}/v1/webhooks/payments`, body, {{
    headers: {{ 'Content-Type': 'application/json', 'GoodGo-Signature': `t=${{t}},v1=${{signature}}` }},
  }});
  check(r, {{ applied: (x) => x.status === 200 && x.json('status') === 'applied' }});
}}
"#
    )
}

/// `statement` with its `$n` parameters as pgbench variables `vars[n - 1]` (`:name`), or
/// literally (a `NULL`), highest first so `$1` never eats `$10`'s digit.
fn with_variables(statement: &str, vars: &[&str]) -> String {
    let mut text = statement.to_string();
    for (i, var) in vars.iter().enumerate().rev() {
        text = text.replace(&format!("${}", i + 1), var);
    }
    text
}

/// The pgbench script: the handler's statements for a `payment.succeeded` of a pending
/// checkout, in its order, in one transaction. Its first line names the transaction's event
/// and checkout (`sql_N`, from a sequence): the one statement the handler does not run.
fn pgbench_script() -> String {
    let audit = with_variables(
        goodgo_api::audit::INSERT,
        &[
            "NULL",
            ":kind",
            "'payment'",
            ":pay_id",
            ":request_id",
            ":ip",
            ":data",
        ],
    );
    [
        "SELECT n AS event_id, n AS reference FROM (SELECT 'sql_' || nextval('bench_sql_seq') AS n) x \\gset".to_string(),
        "BEGIN;".into(),
        format!("{};", with_variables(sql::RECORD_EVENT, &[":provider", ":event_id", ":kind"])),
        format!("{} \\gset pay_", with_variables(sql::LOCK_PAYMENT, &[":reference", ":provider"])),
        format!(
            "{} \\gset sub_",
            with_variables(sql::PAID_PERIOD, &[":pay_user_id", ":pay_plan", ":provider", ":reference"])
        ),
        format!("{};", with_variables(sql::SETTLE_PAYMENT, &[":pay_id", "'succeeded'", ":sub_id"])),
        format!("{};", with_variables(sql::LINK_EVENT, &[":provider", ":event_id", ":pay_id"])),
        format!("{};", with_variables(sql::SUBSCRIPTION_STATUS, &[":sub_id"])),
        format!("{audit};"),
        "COMMIT;".into(),
    ]
    .join("\n")
        + "\n"
}

/// `count` pending checkouts of the pro plan, `{prefix}1` to `{prefix}{count}`, spread over
/// the benchmark's agents.
fn checkouts(url: &str, prefix: &str, count: u64) {
    goodgo_testkit::query(
        url,
        &format!(
            "WITH agents AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users WHERE email LIKE 'bench\\_agent\\_%') \
             INSERT INTO payments (user_id, provider, provider_event_id, amount, currency, status, plan) \
             SELECT a.id, 'goodgo', '{prefix}' || g, 29, 'USD', 'pending', 'pro' \
             FROM generate_series(0, {count} - 1) g JOIN agents a ON a.n = g % {AGENTS}"
        ),
    );
}

/// One k6 round of `seconds` against the API at `base` on checkouts `{prefix}N`: each
/// request's latency in ms, and how many requests did not answer 200 `applied`.
fn k6_round(
    tools: &Tools,
    dir: &Path,
    base: &str,
    prefix: &str,
    seconds: u64,
) -> Result<(Vec<f64>, usize)> {
    let (script, csv) = (dir.join("webhooks.js"), dir.join(format!("{prefix}.csv")));
    let args: Vec<String> = [
        ("BASE_URL", base.to_string()),
        ("SECRET", SECRET.to_string()),
        ("PREFIX", prefix.to_string()),
        ("DURATION", format!("{seconds}s")),
    ]
    .into_iter()
    .flat_map(|(k, v)| ["-e".to_string(), format!("{k}={v}")])
    .collect();
    let (mut latencies, mut failed) = (Vec::new(), 0);
    for (metric, value) in super::k6_samples(tools, &script, &csv, &args)? {
        match metric.as_str() {
            "http_req_duration" => latencies.push(value),
            "checks" if value == 0.0 => failed += 1,
            _ => {}
        }
    }
    Ok((latencies, failed))
}

pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench webhooks: k6 at {RATE} events/s vs pgbench running the same SQL");
    let tools = provision::ensure_tools()?;
    let seeded = super::seeded_api(
        goodgo,
        &tools,
        "bench_webhooks",
        1000,
        // Two request threads (the other benchmarks' one is for throughput at a fixed
        // concurrency; here events arrive at a fixed rate whatever the API is doing).
        &[
            ("GOODGO_PAYMENTS_WEBHOOK_SECRETS", SECRET),
            ("GOODGO_API_WORKERS", "2"),
        ],
    )?;
    let (url, base) = (
        seeded.url.clone(),
        format!("http://127.0.0.1:{}", seeded.port),
    );
    goodgo_testkit::query(
        &url,
        &format!(
            "INSERT INTO users (email, password_hash, role) \
             SELECT 'bench_agent_' || g || '@goodgo.test', (SELECT password_hash FROM users LIMIT 1), 'agent' \
             FROM generate_series(0, {AGENTS} - 1) g; \
             CREATE SEQUENCE bench_sql_seq;"
        ),
    );
    // Enough checkouts for every event of every round (k6 may start a few more than
    // rate × duration), then the same again for pgbench.
    let per_round = RATE * SECONDS * 11 / 10;
    checkouts(&url, "sql_", per_round * ROUNDS + RATE * 3);
    let dir = std::env::temp_dir().join(format!("goodgo-bench-webhooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("webhooks.js"), k6_script())?;
    std::fs::write(dir.join("webhooks.sql"), pgbench_script())?;
    let rate = RATE.to_string();
    let pg_args: Vec<String> = [
        "-M", "prepared", "-R", &rate, "-D", "provider=goodgo", "-D", "kind=payment.succeeded",
        "-D", "request_id=bench-sql", "-D", "ip=127.0.0.1",
        "-D", r#"data={"event_id": "evt_sql", "before": {"payment": "pending", "subscription": null}, "after": {"payment": "succeeded", "subscription": "active"}, "unpublished": []}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // A warm-up of both (its checkouts and transactions are not counted), then the rounds,
    // taking turns.
    checkouts(&url, "warm_", RATE * 3);
    k6_round(&tools, &dir, &base, "warm_", 2)?;
    let script = dir.join("webhooks.sql");
    let warm = super::pgbench(&tools, &script, &url, 8, 2, &pg_args)?.len();
    let (mut http, mut pg, mut failed) = (Vec::new(), Vec::new(), 0);
    for round in 0..ROUNDS {
        let prefix = format!("http{round}_");
        checkouts(&url, &prefix, per_round);
        let (latencies, bad) = k6_round(&tools, &dir, &base, &prefix, SECONDS)?;
        http.extend(latencies);
        failed += bad;
        pg.extend(super::pgbench(&tools, &script, &url, 8, SECONDS, &pg_args)?);
    }
    let settled: i64 = goodgo_testkit::query(
        &url,
        "SELECT count(*) FROM payments WHERE status = 'succeeded' AND provider_event_id LIKE 'sql\\_%'",
    )
    .parse()
    .unwrap_or(0);
    drop(seeded);
    let _ = std::fs::remove_dir_all(&dir);
    if failed > 0 || http.is_empty() {
        bail!(
            "{failed} of {} webhook deliveries were not applied",
            http.len()
        );
    }
    if usize::try_from(settled).unwrap_or(0) != warm + pg.len() {
        bail!(
            "pgbench ran {} transactions but settled {settled} checkouts",
            warm + pg.len()
        );
    }
    http.sort_by(f64::total_cmp);
    pg.sort_by(f64::total_cmp);
    let seconds = (SECONDS * ROUNDS) as f64;
    let stats = |l: &[f64]| {
        (
            l.len() as f64 / seconds,
            percentile(l, 0.5),
            percentile(l, 0.95),
            percentile(l, 0.99),
        )
    };
    let (h_rps, h_med, h_p95, h_p99) = stats(&http);
    let (p_rps, p_med, p_p95, p_p99) = stats(&pg);
    let ratio = h_p95 / p_p95.max(0.001);
    // Other work on the machine shows in every tail latency: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let body = format!(
        "## Payment webhooks\n\nMeasured {}; release build; PostgreSQL {} (fsync off) on loopback, the API with `GOODGO_API_WORKERS=2` (at a fixed arrival rate a second request thread keeps events moving while the machine deschedules the other; with one, the API's p95 here was 1.8x to 2.4x the SQL's). Repeat with `cargo xtask bench webhooks`.\n\n`POST /v1/webhooks/payments` at a constant arrival rate of {RATE} events/s (k6's `constant-arrival-rate`), each a `payment.succeeded` in the common envelope with an id of its own, signed in the script with `k6/crypto`'s HMAC-SHA256 over `t.body`, settling a pending checkout of its own (spread over {AGENTS} agents); every answer checked to be 200 `applied`. Beside it, pgbench at the same rate (`-R {RATE}`, 8 connections, `-M prepared`: statements prepared once per connection and parameters bound, as the handler's are) running the very statements the handler runs for that event, taken from the service's code (`routes::webhooks::sql`, `audit::INSERT`), in one transaction: record the event id, lock the checkout, add the paid period to the agent's subscription, settle the payment, link the event, read the subscription back, append the audit entry. Its one extra statement is the first, a `nextval` naming the transaction's event and checkout. The two take turns, {ROUNDS} rounds of {SECONDS} s each after a warm-up.\n\n| load | events/s | median | p95 | p99 |\n|---|---|---|---|---|\n| k6 → goodgo-api → PostgreSQL (verify the signature, parse, one transaction) | {h_rps:.0} | {h_med:.2} ms | {h_p95:.2} ms | {h_p99:.2} ms |\n| pgbench → PostgreSQL (the same statements, peer) | {p_rps:.0} | {p_med:.2} ms | {p_p95:.2} ms | {p_p99:.2} ms |\n\nThe webhook's p95 is **{ratio:.2}x** the plain SQL's (target: within 2x). The machine's load average when the run ended: {load} (other work on the same 2 cores lengthens both tails, and the API's more, since k6's JavaScript VUs share the cores with it).\n",
        machine(),
        tools.pg_version,
    );
    write_section("webhooks", &body)
}
