//! The workspace's local secrets (`.env`): made fresh, read, rotated, written privately.
//!
//! Why here: `init`, `secrets rotate` and `dev` need them today, and `deploy` and `backup`
//! will read the same file. Reading goes through the one strict `.env` parser in
//! `goodgo-compose`, so a quoting mistake is reported at its line, not silently misread.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use base64::Engine as _;

/// The secrets `.env` holds, each a fresh random value.
pub const SECRETS: &[&str] = &["GOODGO_JWT_SECRET"];

/// 48 random bytes, base64: 64 characters.
pub fn fresh_secret() -> Result<String> {
    let mut buf = [0u8; 48];
    getrandom::fill(&mut buf).context("reading random bytes for a secret")?;
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(buf))
}

/// Writes `text` to `path` readable by its owner only, replacing it atomically.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("goodgo-tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// A new `.env` for `name`.
pub fn new_env(name: &str) -> Result<String> {
    let mut text = format!(
        "# {name}'s local secrets, made by goodgo; never commit this file (mode 0600).\n# `goodgo secrets rotate` renews them.\n"
    );
    for key in SECRETS {
        let _ = writeln!(text, "{key}={}", fresh_secret()?);
    }
    Ok(text)
}

/// The `KEY=value` pairs of the `.env` at `path` (none when there is no file), in file
/// order. `shown` is how the path is named in messages.
pub fn read_env(path: &Path, shown: &Path) -> Result<Vec<(String, String)>> {
    let env = |k: &str| std::env::var(k).ok();
    Ok(goodgo_compose::read_env_file(path, shown, &env)?)
}

/// The workspace's `.env`, created with fresh secrets first when it does not exist; its
/// pairs, and whether it was created now.
pub fn ensure_env(
    root: &Path,
    shown_root: &Path,
    name: &str,
) -> Result<(Vec<(String, String)>, bool)> {
    let path = root.join(".env");
    let created = !path.exists();
    if created {
        write_private(&path, &new_env(name)?)?;
    }
    Ok((read_env(&path, &shown_root.join(".env"))?, created))
}
