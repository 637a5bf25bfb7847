//! The one HTTP client the CLI uses: readiness probes now, deploy and load tests later.
//!
//! Why its own module: every HTTP call goes through reqwest over rustls with the `ring`
//! provider (never OpenSSL or aws-lc), and rustls needs its provider chosen once per process
//! before the first client is built. Keeping that here means no command builds a client
//! its own way or writes a request by hand.

use std::time::Duration;

use anyhow::{Context as _, Result};

/// A client with `timeout` for each whole request, after the process's TLS provider is set.
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    // Installing twice is refused and harmless: the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("goodgo/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}

/// The status code of `GET url`, or `None` when nothing answers in time.
pub async fn status(client: &reqwest::Client, url: &str) -> Option<u16> {
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}
