//! The one HTTP client of xtask: reqwest's blocking client (rustls with the ring provider,
//! never OpenSSL), one keep-alive client per thread, so a load generator's worker threads
//! each hold their own connection and the API check reuses one across its requests.

use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::blocking::Client;

/// reqwest is built without a TLS provider of its own; xtask only speaks plain HTTP to
/// loopback, but a client cannot be built before a provider is chosen.
fn install_ring() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn build() -> Result<Client> {
    install_ring();
    Client::builder()
        // Loopback only: a proxy from the environment must not come between.
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(1)
        .build()
        .context("cannot build the HTTP client")
}

thread_local! {
    static CLIENT: std::cell::OnceCell<Client> = const { std::cell::OnceCell::new() };
}

/// This thread's client (built on first use; clones share its connection pool).
pub fn client() -> Result<Client> {
    CLIENT.with(|cell| {
        if let Some(client) = cell.get() {
            return Ok(client.clone());
        }
        let client = build()?;
        Ok(cell.get_or_init(|| client).clone())
    })
}

/// `http://127.0.0.1:PORT/PATH`.
pub fn local(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

/// Waits until `GET http://127.0.0.1:PORT/PATH` answers 200.
pub fn wait_for_ok(port: u16, path: &str, limit: Duration) -> Result<()> {
    let client = client()?;
    let url = local(port, path);
    let start = Instant::now();
    while !client
        .get(&url)
        .send()
        .is_ok_and(|r| r.status() == reqwest::StatusCode::OK)
    {
        if start.elapsed() > limit {
            bail!("nothing answered {url} with 200 in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
