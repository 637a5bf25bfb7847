//! One HTTP client for tests that talk to a server on loopback (the API `goodgo dev`
//! runs, the API binary itself): reqwest's blocking client, plain HTTP, no redirects, no
//! connection reuse, so each request is one connection a test can reason about.

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
        install_crypto_provider();
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .no_proxy()
            .build()
            .unwrap();
        Http {
            client,
            base: format!("http://{addr}"),
        }
    }

    /// A client for `127.0.0.1:{port}` with a 30 s limit.
    pub fn local(port: u16) -> Http {
        Http::new(&format!("127.0.0.1:{port}"), Duration::from_secs(30))
    }

    /// `GET path`; `None` when no answer came (refused, reset, timed out).
    pub fn get(&self, path: &str) -> Option<Answer> {
        self.send(Method::GET, path, &[], None)
    }

    /// One request; `None` when no answer came.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        json_body: Option<&str>,
    ) -> Option<Answer> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
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
