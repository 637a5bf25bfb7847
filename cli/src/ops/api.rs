//! The API a workspace runs, as `goodgo dev` runs it: its address and its settings.
//!
//! Why here: `dev` decides where the API listens and with which environment; commands that
//! talk to the running API (`api webhook send`) must find it where `dev` put it and sign
//! with the secrets `dev` gave it, so both read the same places in the same order: the
//! process environment, then the workspace's `.env`.

use std::path::Path;

use anyhow::Result;

/// Where the API listens when nothing says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// The `.env` pairs of the workspace at `root` (none without the file); `shown_root` is how
/// the workspace is named in messages.
pub fn dotenv(root: &Path, shown_root: &Path) -> Result<Vec<(String, String)>> {
    crate::ops::secrets::read_env(&root.join(".env"), &shown_root.join(".env"))
}

/// The setting `name`: from the environment, else from `dotenv`; empty values count as unset.
pub fn setting(name: &str, dotenv: &[(String, String)]) -> Option<String> {
    std::env::var(name)
        .ok()
        .or_else(|| {
            dotenv
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .filter(|v| !v.trim().is_empty())
}

/// The address the API listens on: `GOODGO_API_ADDR`, else [`DEFAULT_ADDR`].
pub fn address(dotenv: &[(String, String)]) -> String {
    setting("GOODGO_API_ADDR", dotenv).unwrap_or_else(|| DEFAULT_ADDR.into())
}

/// The secret payment webhooks are signed with now: the first (newest) of
/// `GOODGO_PAYMENTS_WEBHOOK_SECRETS`.
pub fn webhook_secret(dotenv: &[(String, String)]) -> Option<String> {
    setting("GOODGO_PAYMENTS_WEBHOOK_SECRETS", dotenv)?
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
        .map(str::to_string)
}
