//! What wraps every request: a request id (taken from `X-Request-Id` when it is sane,
//! else generated, and echoed back) with a log span that puts it on every line logged
//! while the request is served, the client's address (the connection's peer, or what a
//! trusted proxy says in `X-Forwarded-For`), one structured log line with latency and
//! status, security headers, the 500 problem for a handler that panics, and the
//! per-address rate limit of the auth endpoints.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;

use crate::AppState;
use crate::error::ApiError;

pub const REQUEST_ID: &str = "x-request-id";

/// What the audit log records of the request being served.
#[derive(Clone)]
struct RequestInfo {
    id: String,
    client: Option<IpAddr>,
}

tokio::task_local! {
    static CURRENT_REQUEST: RequestInfo;
}

/// The id of the request being served (for the audit log), if any.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST.try_with(|r| r.id.clone()).ok()
}

/// The address of the client of the request being served, when it is known.
pub fn current_client_ip() -> Option<IpAddr> {
    CURRENT_REQUEST.try_with(|r| r.client).ok().flatten()
}

/// An address or a network (`10.0.0.0/8`, `fd00::/8`; a bare address is a network of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Net {
    type Err = ();

    fn from_str(s: &str) -> Result<Net, ()> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| ())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or(())?,
        };
        Ok(Net {
            addr: addr.to_canonical(),
            prefix,
        })
    }
}

impl Net {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip.to_canonical() {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
            IpAddr::V6(v6) => (u128::from(v6), 128u32),
        };
        let ((net, width), (ip, ip_width)) = (bits(self.addr), bits(ip));
        if width != ip_width {
            return false;
        }
        let host_bits = width - u32::from(self.prefix);
        host_bits >= width || (net >> host_bits) == (ip >> host_bits)
    }
}

/// The client's address: the connection's peer, unless the peer is a trusted proxy; then
/// `X-Forwarded-For` is read from its right end (the entry the nearest proxy appended)
/// leftwards, past every trusted proxy, to the first address that is not one. A header
/// that cannot be read leaves the last trusted hop as the answer: never an address the
/// client could have written itself unchecked.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &axum::http::HeaderMap,
    trusted: &[Net],
) -> Option<IpAddr> {
    let peer = peer.map(|p| p.to_canonical())?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut client = peer;
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    Some(client)
}

/// A process-unique id without a system call per request: a random prefix chosen once,
/// then a counter.
fn next_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix =
        PREFIX.get_or_init(|| crate::auth::random_token(6).unwrap_or_else(|_| "goodgo".into()));
    format!("{prefix}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn sane_id(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

pub async fn request_context(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_id(v))
        .map(str::to_string)
        .unwrap_or_else(next_request_id);
    let method = req.method().clone();
    // The matched route (`/v1/listings/{id}`), not the raw path: no ids or query strings
    // (which could carry e-mails or tokens) end up in the logs.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    // Every line logged while the request is served carries its id (the JSON logs include
    // the current span's fields).
    let span = tracing::info_span!("request", request_id = %id);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let info = RequestInfo {
        id: id.clone(),
        client: client_ip(peer, req.headers(), &state.config.trusted_proxies),
    };
    // The language of problems and other texts: Accept-Language, else English.
    let locale = crate::i18n::negotiate(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let mut res = crate::i18n::scope(locale, async {
        let res = CURRENT_REQUEST
            .scope(info, next.run(req))
            .instrument(span)
            .await;
        as_problem(res).await
    })
    .await;
    let status = res.status().as_u16();
    if status >= 500
        && let Some(reporter) = &state.sentry
    {
        reporter.report(&id, method.as_str(), &route, status, res.extensions().get());
    }
    state.metrics.response(status);
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(request_id = %id, method = %method, route = %route, status, latency_ms = format!("{latency_ms:.2}"), "request");
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), v);
    }
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    res
}

/// The answer to a request whose handler panicked: a 500 problem that says nothing about
/// the cause; the cause is logged (inside the request's span, so with its id).
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(cause = %message, "a handler panicked");
    let mut res = crate::error::problem_response(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Something went wrong on our side",
        None,
        None,
    );
    res.extensions_mut().insert(crate::error::ProblemCause {
        kind: "panic".into(),
        text: message.to_string(),
    });
    res
}

/// Errors from the framework's own layers (a malformed JSON body, a body over the limit,
/// a timeout, a wrong method) become problem documents like every other error; their short
/// plain-text explanation is kept as the `detail`. JSON answers (problems, `/readyz`) pass.
async fn as_problem(res: Response) -> Response {
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/problem+json") || v.starts_with("application/json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (slug, title) = match status.as_u16() {
        400 => ("bad-request", "The request is malformed"),
        404 => ("not-found", "No such resource"),
        405 => ("method-not-allowed", "This method is not allowed here"),
        408 => ("timeout", "The request took too long"),
        413 => ("payload-too-large", "The request body is too large"),
        415 => (
            "unsupported-media-type",
            "Send JSON with Content-Type: application/json",
        ),
        422 => ("validation-failed", "The request has invalid fields"),
        s if s >= 500 => ("internal", "Something went wrong on our side"),
        _ => ("error", "The request failed"),
    };
    // Server errors never carry their text out; client errors keep a short explanation.
    let detail = (status.is_client_error() && !text.is_empty() && text.len() < 300).then_some(text);
    let mut out = crate::error::problem_response(status, slug, title, detail, None);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// A token bucket per client address: `per_minute` requests a minute, bursts up to a
/// quarter of that.
pub struct RateLimiter {
    per_minute: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        let per_minute = f64::from(per_minute.max(1));
        RateLimiter {
            per_minute,
            burst: (per_minute / 4.0).max(3.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip`; `Err(seconds)` to wait when there is none.
    pub fn take(&self, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, last)| now.duration_since(*last).as_secs() < 600);
        }
        let (tokens, last) = buckets.entry(ip).or_insert((self.burst, now));
        let refill = now.duration_since(*last).as_secs_f64() * self.per_minute / 60.0;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) * 60.0 / self.per_minute).ceil() as u64)
        }
    }
}

/// The auth endpoints' limit: shared by every replica through Redis when it is set and
/// answers, else this process's [`RateLimiter`].
pub async fn auth_rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ip = current_client_ip().unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let shared = match &state.redis {
        Some(redis) => {
            let limiter = &state.auth_limiter;
            crate::cache::take_auth(redis, ip, limiter.per_minute as u32, limiter.burst).await
        }
        None => None,
    };
    match shared.unwrap_or_else(|| state.auth_limiter.take(ip)) {
        Ok(()) => next.run(req).await,
        Err(retry_after_s) => ApiError::RateLimited { retry_after_s }.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_run_dry_and_are_per_address() {
        let limiter = RateLimiter::new(12);
        let a = IpAddr::from([10, 0, 0, 1]);
        let allowed = (0..10).filter(|_| limiter.take(a).is_ok()).count();
        assert_eq!(allowed, 3, "burst of max(12/4, 3)");
        assert!(limiter.take(IpAddr::from([10, 0, 0, 2])).is_ok());
        assert!(matches!(limiter.take(a), Err(s) if s >= 1));
    }

    fn net(s: &str) -> Net {
        s.parse().unwrap_or_else(|()| panic!("{s}"))
    }

    #[test]
    fn networks_contain_their_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!net("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
        assert!(net("fd00::/8").contains(ip("fd12::1")));
        // An IPv4 peer seen through an IPv6 socket is the IPv4 address.
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        for bad in ["10.0.0.0/33", "::/129", "proxy", "10.0.0.0/", "/8"] {
            assert!(bad.parse::<Net>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        use axum::http::HeaderMap;
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7"),
        );
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        let proxies = [net("10.0.0.0/8")];
        // Not from a proxy: the header is the client's own words, ignored.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &proxies),
            ip("198.51.100.1")
        );
        // From a proxy: rightmost first, past the trusted hops, the first other address.
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &proxies), ip("203.0.113.7"));
        // No proxies configured: the peer, whatever the header says.
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &[]), ip("10.0.0.1"));
        // An unreadable entry stops the walk at the last trusted hop.
        let mut bad = HeaderMap::new();
        bad.append(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.7, garbage"),
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &bad, &proxies), ip("10.0.0.1"));
        assert_eq!(client_ip(None, &h, &proxies), None);
    }
}
