//! Redis (`GOODGO_REDIS_URL`): search pages and listings cached, and the auth rate limit
//! shared by every replica. Optional: without it the API reads PostgreSQL every time and
//! limits per process, as before.
//!
//! ## Keys
//!
//! An answer is stored under a key that carries the *version* of what it depends on:
//! `goodgo:cache:{release}:search:{epoch}.{gen}:{digest}` and
//! `goodgo:cache:{release}:listing:{id}:{epoch}.{gen}`. `gen` is a generation counter: the
//! search's city (`goodgo:cache:gen:city:{city}`), all cities for a search without one
//! (`goodgo:cache:gen:all`), or the listing (`goodgo:cache:gen:listing:{id}`); `epoch`
//! (`goodgo:cache:epoch`) covers everything. One Lua script reads the counters and the
//! entry in one round trip. Nothing is ever deleted: a change bumps the counters, and the
//! old entries are never read again (they expire after `GOODGO_CACHE_TTL`).
//!
//! ## No stale answer after a write
//!
//! A request that changes a listing records which counters it affects ([`listing_changed`],
//! called before its transaction commits); once the handler has answered, and before the
//! answer leaves, [`invalidate_after`] bumps them: the listing's own, and for an active
//! listing (before or after the change) its city's and the all-cities one. A reader reads
//! the counters *before* it queries PostgreSQL, so a page it computed from data older than
//! a commit is stored under the old version, which no request after the bump reads.
//!
//! When a bump fails (Redis unreachable), this process stops reading the cache and, as soon
//! as Redis answers again, bumps the epoch (which invalidates every entry) before it reads
//! from it again; any Redis error is treated so, since it may be a restart that lost bumps.
//! Another replica that still reaches Redis cannot know of the lost bump: there, entries
//! live at most `GOODGO_CACHE_TTL`. Changes made outside the API (SQL, `goodgo db seed`)
//! show after the TTL too.
//!
//! ## Redis down
//!
//! Every command has a 250 ms limit. After a failure, Redis is left alone for a second
//! (requests go straight to PostgreSQL, counted as bypassed), then tried again; the outage
//! is logged once per 30 s with the number of failures, and its end once. Readiness does
//! not depend on Redis.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::AppState;
use crate::metrics::{CacheKind, Metrics};

/// The limit of one Redis command (a connection attempt included).
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// How long Redis is left alone after a failure.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// At most one log line about an outage per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(30);

const EPOCH: &str = "goodgo:cache:epoch";
const GEN_ALL: &str = "goodgo:cache:gen:all";

/// Reads the epoch and a generation counter (KEYS[1], KEYS[2]; 0 when absent), and the
/// entry `ARGV[1] .. "{epoch}.{gen}" .. ARGV[2]`: `{version, entry or nil}`.
const LOOKUP: &str = r"
local v = (redis.call('GET', KEYS[1]) or '0') .. '.' .. (redis.call('GET', KEYS[2]) or '0')
return {v, redis.call('GET', ARGV[1] .. v .. ARGV[2])}
";

/// The generic cell rate algorithm on Redis's clock: KEYS[1] holds the theoretical arrival
/// time in ms; ARGV[1] is the interval between requests in ms, ARGV[2] the burst. Returns
/// 0 when the request may pass, else the ms to wait.
const RATE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return math.ceil(allow_at - now)
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return 0
";

/// The generation counter of the searches of `city`.
fn city_gen(city: &str) -> Vec<u8> {
    [b"goodgo:cache:gen:city:".as_slice(), city.as_bytes()].concat()
}

fn listing_gen(id: i64) -> Vec<u8> {
    format!("goodgo:cache:gen:listing:{id}").into_bytes()
}

/// What a cache lookup found.
pub enum Lookup {
    /// The stored answer.
    Hit(Vec<u8>),
    /// Nothing: store the answer under this key.
    Miss(Vec<u8>),
    /// Redis is not available: serve from PostgreSQL, store nothing.
    Unavailable,
}

/// Outage logging: the first failure at once, then at most one line per interval with the
/// count of failures since the last line; the first success after a failure once.
#[derive(Debug, Default)]
struct Outage {
    last_logged: Option<Instant>,
    unlogged: u64,
    down: bool,
}

impl Outage {
    /// A failure at `now`: `Some(failures)` when a line is due, with the failures it reports.
    fn failed(&mut self, now: Instant, interval: Duration) -> Option<u64> {
        self.down = true;
        self.unlogged += 1;
        let due = self
            .last_logged
            .is_none_or(|t| now.duration_since(t) >= interval);
        if due {
            self.last_logged = Some(now);
            Some(std::mem::take(&mut self.unlogged))
        } else {
            None
        }
    }

    /// A success: true when it ends an outage.
    fn succeeded(&mut self) -> bool {
        std::mem::take(&mut self.down)
    }
}

/// The API's Redis: one reconnecting connection, shared by every request.
pub struct Redis {
    conn: ConnectionManager,
    metrics: Arc<Metrics>,
    ttl_ms: u64,
    gen_ttl_ms: u64,
    /// `goodgo:cache:{release}:`: each release keeps its own entries (their shape may
    /// differ), while all share the counters.
    prefix: String,
    started: Instant,
    /// Until when (ms since `started`) Redis is left alone.
    down_until_ms: AtomicU64,
    /// A bump may have been lost: bump the epoch before the next read.
    stale: AtomicBool,
    outage: Mutex<Outage>,
    lookup: redis::Script,
    rate: redis::Script,
}

impl Redis {
    /// A client of `url`; it connects on first use, so the API starts without Redis.
    pub fn new(
        url: &str,
        ttl: Duration,
        request_timeout: Duration,
        release: Option<&str>,
        metrics: Arc<Metrics>,
    ) -> Result<Redis, String> {
        let client = redis::Client::open(url).map_err(|e| format!("GOODGO_REDIS_URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("GOODGO_REDIS_URL: {e}"))?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX / 4);
        // A counter outlives every entry that could have been stored under one of its
        // values, also by a request that read it just before it expired: once it expires
        // (and so reads 0 again), no entry of an old 0 is left.
        let gen_ttl_ms =
            (2 * ttl_ms + u64::try_from(request_timeout.as_millis()).unwrap_or(0)).max(86_400_000);
        Ok(Redis {
            conn,
            metrics,
            ttl_ms,
            gen_ttl_ms,
            prefix: format!("goodgo:cache:{}:", release.unwrap_or("dev")),
            started: Instant::now(),
            down_until_ms: AtomicU64::new(0),
            stale: AtomicBool::new(false),
            outage: Mutex::new(Outage::default()),
            lookup: redis::Script::new(LOOKUP),
            rate: redis::Script::new(RATE),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// False while Redis is left alone after a failure.
    fn available(&self) -> bool {
        self.now_ms() >= self.down_until_ms.load(Ordering::Relaxed)
    }

    /// Runs one command within [`COMMAND_TIMEOUT`]; a failure is counted under `what`,
    /// logged (once per interval) and keeps Redis alone for [`RETRY_AFTER`].
    async fn call<T>(
        &self,
        what: &'static str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        let cause = match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
            Ok(Ok(v)) => {
                self.metrics.redis_ok();
                let ended = self.outage.lock().map(|mut o| o.succeeded());
                if ended.unwrap_or(false) {
                    tracing::info!("redis answers again; the cache is back in use");
                }
                return Some(v);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", COMMAND_TIMEOUT.as_millis()),
        };
        self.metrics.redis_error(what);
        self.stale.store(true, Ordering::Relaxed);
        self.down_until_ms.store(
            self.now_ms() + u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(1000),
            Ordering::Relaxed,
        );
        let due = self
            .outage
            .lock()
            .ok()
            .and_then(|mut o| o.failed(Instant::now(), LOG_INTERVAL));
        if let Some(failures) = due {
            tracing::warn!(
                cause = %cause,
                failures,
                "redis is unavailable: serving from PostgreSQL and limiting rates per process (logged at most every {} s)",
                LOG_INTERVAL.as_secs()
            );
        }
        None
    }

    /// Looks up an answer that depends on the counter `gen`; `key` is the entry's key
    /// around the version: `key.0 {epoch}.{gen} key.1`.
    async fn lookup(&self, kind: CacheKind, counter: &[u8], key: (&str, &str)) -> Lookup {
        if !self.available() {
            self.metrics.bypassed(kind);
            return Lookup::Unavailable;
        }
        if self.stale.load(Ordering::Relaxed) {
            // Some bump may be lost: a new epoch makes every entry unreachable.
            let mut conn = self.conn.clone();
            let mut incr = redis::cmd("INCR");
            incr.arg(EPOCH);
            let bumped = self.call("cache", incr.query_async::<i64>(&mut conn)).await;
            if bumped.is_none() {
                self.metrics.bypassed(kind);
                return Lookup::Unavailable;
            }
            self.stale.store(false, Ordering::Relaxed);
        }
        let mut conn = self.conn.clone();
        let mut invocation = self.lookup.key(EPOCH);
        invocation.key(counter).arg(key.0).arg(key.1);
        let found = self
            .call(
                "cache",
                invocation.invoke_async::<(String, Option<Vec<u8>>)>(&mut conn),
            )
            .await;
        match found {
            None => {
                self.metrics.bypassed(kind);
                Lookup::Unavailable
            }
            Some((_, Some(entry))) => {
                self.metrics.hit(kind);
                Lookup::Hit(entry)
            }
            Some((version, None)) => {
                self.metrics.miss(kind);
                Lookup::Miss(format!("{}{version}{}", key.0, key.1).into_bytes())
            }
        }
    }

    /// The search page of `digest` (a digest of the query and its parameters); `city` is
    /// the search's city filter, if any.
    pub async fn search(&self, city: Option<&str>, digest: &str) -> Lookup {
        let counter = city
            .map(city_gen)
            .unwrap_or_else(|| GEN_ALL.as_bytes().to_vec());
        let prefix = format!("{}search:", self.prefix);
        let suffix = format!(":{digest}");
        self.lookup(CacheKind::Search, &counter, (&prefix, &suffix))
            .await
    }

    /// Listing `id` as the API answers it to its owner.
    pub async fn listing(&self, id: i64) -> Lookup {
        let prefix = format!("{}listing:{id}:", self.prefix);
        self.lookup(CacheKind::Listing, &listing_gen(id), (&prefix, ""))
            .await
    }

    /// Stores `value` under the key a [`Lookup::Miss`] gave, for the TTL.
    pub async fn store(&self, key: &[u8], value: &[u8]) {
        let mut conn = self.conn.clone();
        let mut set = redis::cmd("SET");
        set.arg(key).arg(value).arg("PX").arg(self.ttl_ms);
        self.call("cache", set.exec_async(&mut conn)).await;
    }

    /// Bumps `counters`, tried twice; when both fail, the cache is not read again until the
    /// epoch is bumped (see the module's doc).
    async fn bump(&self, counters: &BTreeSet<Vec<u8>>) {
        let mut pipe = redis::pipe();
        for key in counters {
            pipe.cmd("INCR").arg(key).ignore();
            pipe.cmd("PEXPIRE").arg(key).arg(self.gen_ttl_ms).ignore();
        }
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut conn = self.conn.clone();
            if self
                .call("cache", pipe.exec_async(&mut conn))
                .await
                .is_some()
            {
                self.metrics.invalidated(counters.len() as u64);
                return;
            }
        }
        self.stale.store(true, Ordering::Relaxed);
    }

    /// Takes a token of the shared rate limit `bucket` (`per_minute`, bursts of `burst`):
    /// `Some(Err(seconds))` to wait, `None` when Redis is not available.
    pub async fn take(&self, bucket: &str, per_minute: u32, burst: f64) -> Option<Result<(), u64>> {
        if !self.available() {
            return None;
        }
        let interval_ms = 60_000.0 / f64::from(per_minute.max(1));
        let mut conn = self.conn.clone();
        let mut invocation = self.rate.key(format!("goodgo:ratelimit:{bucket}"));
        invocation.arg(interval_ms).arg(burst);
        let wait_ms: i64 = self
            .call("rate_limit", invocation.invoke_async(&mut conn))
            .await?;
        Some(if wait_ms <= 0 {
            Ok(())
        } else {
            Err(u64::try_from(wait_ms).unwrap_or(1).div_ceil(1000))
        })
    }
}

/// The counters a request's changes affect.
#[derive(Debug, Default)]
struct Changes(BTreeSet<Vec<u8>>);

tokio::task_local! {
    static CHANGES: RefCell<Changes>;
}

/// Records, in the request being served, that listing `id` changed; `seen` is its (status,
/// city) before and after the change: an active one is (or was) in its city's searches
/// and in those of all cities. Call it before the change commits: the counters are bumped
/// after the handler answers, also when it answers with an error or a timeout.
pub fn listing_changed(id: i64, seen: &[(&str, &str)]) {
    let _ = CHANGES.try_with(|c| {
        let mut c = c.borrow_mut();
        c.0.insert(listing_gen(id));
        for (status, city) in seen {
            if *status == "active" {
                c.0.insert(city_gen(city));
                c.0.insert(GEN_ALL.as_bytes().to_vec());
            }
        }
    });
}

/// The layer that bumps the counters a request's changes affect once the handler has
/// answered, before the answer leaves (writes only; nothing without Redis).
pub async fn invalidate_after(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(redis) = state.redis.clone() else {
        return next.run(req).await;
    };
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let (res, changes) = CHANGES
        .scope(RefCell::new(Changes::default()), async move {
            let res = next.run(req).await;
            let changes = CHANGES.with(|c| std::mem::take(&mut c.borrow_mut().0));
            (res, changes)
        })
        .await;
    if !changes.is_empty() {
        redis.bump(&changes).await;
    }
    res
}

/// The shared auth rate limit of `ip`, when Redis answers; `None` otherwise.
pub async fn take_auth(
    redis: &Redis,
    ip: IpAddr,
    per_minute: u32,
    burst: f64,
) -> Option<Result<(), u64>> {
    redis.take(&format!("auth:{ip}"), per_minute, burst).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_logged_once_per_interval_and_its_end_once() {
        let mut o = Outage::default();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(
            o.failed(t0, LOG_INTERVAL),
            Some(1),
            "the first failure at once"
        );
        for i in 1..10 {
            assert_eq!(o.failed(t0 + s * i, LOG_INTERVAL), None);
        }
        assert_eq!(
            o.failed(t0 + LOG_INTERVAL, LOG_INTERVAL),
            Some(10),
            "then the failures since"
        );
        assert!(o.succeeded());
        assert!(!o.succeeded(), "the end of an outage once");
    }

    #[test]
    fn changes_of_active_listings_reach_their_cities_and_all() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let changed = rt.block_on(CHANGES.scope(RefCell::new(Changes::default()), async {
            listing_changed(7, &[("draft", "Hue"), ("active", "Da Nang")]);
            listing_changed(8, &[("draft", "Hue"), ("archived", "Hue")]);
            CHANGES.with(|c| std::mem::take(&mut c.borrow_mut().0))
        }));
        let names: Vec<String> = changed
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "goodgo:cache:gen:all",
                "goodgo:cache:gen:city:Da Nang",
                "goodgo:cache:gen:listing:7",
                "goodgo:cache:gen:listing:8",
            ]
        );
        // Outside a request nothing is recorded, and nothing fails.
        listing_changed(9, &[("active", "Hue")]);
    }
}
