//! `/metrics`: the process's counters in the Prometheus text format (OpenMetrics 1.0, as
//! `prometheus-client` writes it): answers by status class, cache hits and misses, and
//! Redis errors, for Prometheus and for a deploy's watch.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::AppState;

/// One label: its name and value.
type Label = [(&'static str, &'static str); 1];

/// Every metric the API exposes.
pub struct Metrics {
    registry: Registry,
    responses: Family<Label, Counter>,
    cache_hits: Family<Label, Counter>,
    cache_misses: Family<Label, Counter>,
    cache_bypassed: Family<Label, Counter>,
    invalidations: Counter,
    redis_errors: Family<Label, Counter>,
    redis_up: Gauge,
}

/// What a cached answer is: a search page or one listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    Search,
    Listing,
}

impl CacheKind {
    fn label(self) -> Label {
        [(
            "cache",
            match self {
                CacheKind::Search => "search",
                CacheKind::Listing => "listing",
            },
        )]
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("goodgo");
        let m = Metrics {
            registry: Registry::default(),
            responses: Family::default(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            cache_bypassed: Family::default(),
            invalidations: Counter::default(),
            redis_errors: Family::default(),
            redis_up: Gauge::default(),
        };
        registry.register(
            "http_responses",
            "Answers sent, by status class (2xx, 3xx, 4xx, 5xx)",
            m.responses.clone(),
        );
        registry.register(
            "cache_hits",
            "Answers served from the Redis cache, by cache (search, listing)",
            m.cache_hits.clone(),
        );
        registry.register(
            "cache_misses",
            "Lookups the Redis cache did not have (then served from PostgreSQL and stored)",
            m.cache_misses.clone(),
        );
        registry.register(
            "cache_bypassed",
            "Answers served from PostgreSQL without asking Redis, because it is unavailable",
            m.cache_bypassed.clone(),
        );
        registry.register(
            "cache_invalidations",
            "Generation counters bumped after a listing change committed",
            m.invalidations.clone(),
        );
        registry.register(
            "redis_errors",
            "Redis commands that failed or timed out, by use (cache, rate_limit)",
            m.redis_errors.clone(),
        );
        registry.register(
            "redis_up",
            "1 when the last Redis command succeeded, 0 when it failed (or no Redis is configured)",
            m.redis_up.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts an answer of `status`.
    pub fn response(&self, status: u16) {
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.responses.get_or_create(&[("class", class)]).inc();
    }

    pub fn hit(&self, kind: CacheKind) {
        self.cache_hits.get_or_create(&kind.label()).inc();
    }

    pub fn miss(&self, kind: CacheKind) {
        self.cache_misses.get_or_create(&kind.label()).inc();
    }

    pub fn bypassed(&self, kind: CacheKind) {
        self.cache_bypassed.get_or_create(&kind.label()).inc();
    }

    pub fn invalidated(&self, counters: u64) {
        self.invalidations.inc_by(counters);
    }

    /// A failed Redis command, for `what` (`cache` or `rate_limit`).
    pub fn redis_error(&self, what: &'static str) {
        self.redis_errors.get_or_create(&[("use", what)]).inc();
        self.redis_up.set(0);
    }

    pub fn redis_ok(&self) {
        self.redis_up.set(1);
    }

    /// The text exposition.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(2048);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The counters, as Prometheus scrapes them. Not part of the OpenAPI document: it is for
/// monitoring, not for API clients.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut res = state.metrics.text().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_written_in_the_text_format() {
        let m = Metrics::new();
        m.hit(CacheKind::Search);
        m.hit(CacheKind::Search);
        m.miss(CacheKind::Listing);
        m.redis_error("cache");
        m.response(503);
        let text = m.text();
        for line in [
            "# TYPE goodgo_cache_hits counter",
            "goodgo_cache_hits_total{cache=\"search\"} 2",
            "goodgo_cache_misses_total{cache=\"listing\"} 1",
            "goodgo_redis_errors_total{use=\"cache\"} 1",
            "goodgo_redis_up 0",
            "goodgo_http_responses_total{class=\"5xx\"} 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }
}
