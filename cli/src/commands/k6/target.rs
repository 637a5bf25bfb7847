//! The API a k6 run targets: `--base-url` as given, or one started here — the stack up
//! (unless a database is configured), the database migrated and seeded when empty, the API
//! built in release and started on a free port with the auth rate limit raised (a load
//! test is many requests from one address) — and everything it started stopped afterwards,
//! whatever the run's outcome.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, Result};
use goodgo_stack::UpRequest;

use super::super::Context;
use super::super::dev::api::Api;
use super::super::dev::build::{api_package, target_dir};
use crate::args::K6Load;
use crate::error::UserError;
use crate::printer::Printer;

/// Runs `f` with the API's base URL.
pub fn with_api<T>(
    ctx: &Context,
    load: &K6Load,
    printer: &Printer,
    f: impl FnOnce(&str) -> Result<T>,
) -> Result<T> {
    if let Some(url) = &load.base_url {
        let url = url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(UserError::input(format!(
                "--base-url {url}: expected an http:// or https:// URL"
            ))
            .into());
        }
        return f(url);
    }
    let rt = crate::ops::stack::runtime()?;
    super::runner::watch_interrupts(&rt)?;
    // The project whose services this run started (and so stops), set as soon as it has.
    let mut stack = None;
    let started = rt.block_on(start(ctx, printer, &mut stack));
    let result = match started {
        Ok((mut api, _)) if super::runner::INTERRUPTED.load(Ordering::SeqCst) => {
            api.stop();
            Err(super::runner::interrupted())
        }
        Ok((mut api, addr)) => {
            let result = f(&format!("http://{addr}"));
            api.stop();
            result
        }
        Err(e) => Err(e),
    };
    if let Some(project) = stack {
        printer.status("stopping the services this run started…");
        rt.block_on(crate::ops::stack::stop_all(ctx, &project, printer))?;
    }
    result
}

async fn start(
    ctx: &Context,
    printer: &Printer,
    stack: &mut Option<String>,
) -> Result<(Api, String)> {
    let root = ctx.workspace.root.clone();
    let (dotenv, _) = crate::ops::secrets::ensure_env(
        &root,
        &ctx.workspace.display_path(&root),
        &ctx.workspace.settings.name.value,
    )?;
    // The stack, unless a database is configured or the stack already runs.
    let found = crate::ops::database::configured_or_running(ctx, None)?;
    let target = if let Some((target, _)) = found {
        target
    } else {
        let loaded = crate::ops::stack::load(ctx, &[], None, printer)?;
        let req = UpRequest {
            project: loaded.name.clone(),
            waves: goodgo_compose::waves(&loaded.project, &[], &[])?,
            timeout: Duration::from_secs(120),
        };
        let (chosen, why) = crate::ops::stack::choose(ctx, &loaded, &req, None, true, printer)
            .await
            .map_err(|e| crate::ops::stack::stack_error(e, printer))?;
        printer.status(&format!("starting the stack ({}: {why})…", chosen.name()));
        *stack = Some(loaded.name.clone());
        crate::ops::stack::run_up(&loaded, &req, &*chosen, printer).await?;
        crate::ops::database::resolve(ctx, None)?.0
    };
    // The database: migrated, and seeded when it has no accounts.
    let ws = &ctx.workspace;
    let dir = ws.resolve(&ws.settings.migrations_dir.value);
    let files = goodgo_db::migrations::load(&dir, &ws.display_path(&dir))?;
    let mut client = target.connect().await?;
    let report = goodgo_db::runner::migrate(&mut client, &files, None, &|_| {}).await?;
    for m in &report.applied {
        printer.status(&format!("applied {m}"));
    }
    let empty: bool = client
        .query_one("SELECT NOT EXISTS (SELECT 1 FROM users)", &[])
        .await
        .map(|r| r.get(0))
        .context("reading the users table")?;
    if empty {
        printer.status("seeding the database…");
        goodgo_db::seed::seed(&mut client, 1000)
            .await
            .context("seeding the database")?;
    }
    drop(client);
    // The API, built in release: a load test of a debug build measures the debug build.
    let package = api_package(&root, &ws.display_path(&root))?;
    printer.status(&format!("building {package} (release)…"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = std::process::Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", &package])
        .current_dir(&root)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running cargo")?;
    if !built.status.success() {
        printer.stderr(&String::from_utf8_lossy(&built.stderr));
        return Err(UserError::failed(format!("{package} does not build in release")).into());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut env = dotenv;
    env.retain(|(k, _)| {
        !matches!(
            k.as_str(),
            "GOODGO_DATABASE_URL" | "GOODGO_API_ADDR" | "GOODGO_AUTH_RATE_LIMIT" | "GOODGO_LOG"
        )
    });
    env.extend([
        ("GOODGO_DATABASE_URL".to_string(), target.url.clone()),
        ("GOODGO_API_ADDR".to_string(), addr.clone()),
        // The API's upper bound: a load test is many requests from one address.
        ("GOODGO_AUTH_RATE_LIMIT".to_string(), "100000".to_string()),
        ("GOODGO_LOG".to_string(), "warn".to_string()),
    ]);
    printer.debug(&format!(
        "starting {}",
        target_dir(&root).join("release").join(&package).display()
    ));
    let mut api = Api::start_profile(&root, &package, "release", &env, printer)?;
    api.wait_ready(&addr, Duration::from_secs(60)).await?;
    printer.status(&format!("the API is ready on http://{addr}"));
    Ok((api, addr))
}
