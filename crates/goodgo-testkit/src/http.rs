//! The one HTTP client of the tests and of xtask, for servers on loopback (the API `goodgo
//! dev` runs, the API binary, the benchmarks' API): reqwest's blocking client, plain HTTP, no
//! redirects, no proxy. [`Http::new`] opens a connection per request, so each request is one
//! connection a test can reason about; [`Http::keep_alive`] reuses one, as a load
//! generator's worker or a sequence of checks wants.

use std::time::Duration;

pub use reqwest::Method;
pub use reqwest::header::HeaderMap;

/// A loopback HTTP client with a per-request time limit.
pub struct Http {
    client: reqwest::blocking::Client,
    base: String,
}

/// One answer: status, headers and body as text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body parsed as JSON; fails the test when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// The value of cookie `name` the answer sets (`Set-Cookie: name=value; …`).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.header_all("set-cookie")
            .iter()
            .filter_map(|c| c.split(';').next()?.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }
}

impl Http {
    /// A client for `http://{addr}` (`addr` as `host:port`), giving up on a request after
    /// `timeout`.
    pub fn new(addr: &str, timeout: Duration) -> Http {
        Http::build(addr, timeout, 0)
    }

    /// Like [`Http::new`], but one connection is kept open and reused between requests.
    pub fn keep_alive(addr: &str, timeout: Duration) -> Http {
        Http::build(addr, timeout, 1)
    }

    fn build(addr: &str, timeout: Duration, idle: usize) -> Http {
        install_crypto_provider();
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(idle)
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .unwrap();
        Http {
            client,
            base: format!("http://{addr}"),
        }
    }

    /// `http://{addr}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until `GET path` answers 200, or says what it waited for after `limit`.
    pub fn wait_for_ok(&self, path: &str, limit: Duration) -> Result<(), String> {
        let start = std::time::Instant::now();
        while self.get(path).is_none_or(|a| a.status != 200) {
            if start.elapsed() > limit {
                return Err(format!(
                    "nothing answered {} with 200 in {limit:?}",
                    self.url(path)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// A client for `127.0.0.1:{port}` with a 30 s limit.
    pub fn local(port: u16) -> Http {
        Http::new(&format!("127.0.0.1:{port}"), Duration::from_secs(30))
    }

    /// `GET path`; `None` when no answer came (refused, reset, timed out).
    pub fn get(&self, path: &str) -> Option<Answer> {
        self.send(Method::GET, path, &[], None)
    }

    /// `method path` with `body` as it is (a presigned upload's bytes) and exactly
    /// `headers`; `None` when no answer came.
    pub fn send_bytes(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Option<Answer> {
        let mut req = self.client.request(method, self.url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().ok()?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().ok()?;
        Some(Answer {
            status,
            headers,
            body,
        })
    }

    /// One request; `None` when no answer came.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        json_body: Option<&str>,
    ) -> Option<Answer> {
        let mut req = self.client.request(method, self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = json_body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = req.send().ok()?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().ok()?;
        Some(Answer {
            status,
            headers,
            body,
        })
    }
}

/// reqwest is built with rustls but no provider chosen: the workspace's is ring. Plain
/// HTTP needs no TLS, but the client will not build without a provider.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
