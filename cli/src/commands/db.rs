//! `goodgo db …`: the GoodGo database. The work is in `goodgo-db`; this module resolves
//! the database, the migrations folder and the seed to use, guards destructive commands,
//! and prints.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use goodgo_db::admin::{self, Target};
use goodgo_db::migrations::{self, MigrationFile};
use goodgo_db::runner::{self, Event, State};
use goodgo_db::{DbError, schema, seed};
use serde_json::json;

use super::Context;
use crate::args::{DbArgs, DbCommand};
use crate::config::Environment;
use crate::error::{ExitStatus, UserError};
use crate::ops::guard::{self, Ask, Destructive};
use crate::ops::seed::Seeded;
use crate::printer::Printer;
use crate::tools;

pub fn run(ctx: &Context, args: &DbArgs, printer: &Printer) -> Result<ExitStatus> {
    block_on(run_async(ctx, args, printer))?
}

/// Runs `future` to its end on a current-thread runtime: the `db` commands' async work, and
/// `backup`'s.
pub(super) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(future))
}

/// The database URL and where it came from (see [`crate::ops::database::resolve`]).
fn database(ctx: &Context, args: &DbArgs) -> Result<(Target, String)> {
    crate::ops::database::resolve(ctx, args.database_url.as_deref())
}

pub(crate) fn migration_files(ctx: &Context) -> Result<(PathBuf, Vec<MigrationFile>)> {
    let ws = &ctx.workspace;
    let dir = ws.resolve(&ws.settings.migrations_dir.value);
    let shown = ws.display_path(&dir);
    let files = migrations::load(&dir, &shown).map_err(db_error)?;
    Ok((dir, files))
}

/// A database error, with the exit status its kind stands for.
fn db_error(err: DbError) -> anyhow::Error {
    err.into()
}

async fn run_async(ctx: &Context, args: &DbArgs, printer: &Printer) -> Result<ExitStatus> {
    match &args.command {
        DbCommand::New { name } => new(ctx, name, printer),
        DbCommand::Lint { all } => lint(ctx, args, *all, printer).await,
        DbCommand::Url => {
            let (target, source) = database(ctx, args)?;
            printer.report(
                &format!("{}\n", target.url),
                &json!({"url": target.url, "source": source.to_string()}),
            );
            Ok(ExitStatus::Success)
        }
        DbCommand::Psql => psql(ctx, args),
        DbCommand::Migrate { dry_run, target } => {
            migrate(ctx, args, *dry_run, *target, printer).await
        }
        DbCommand::Status => status(ctx, args, printer).await,
        DbCommand::Verify => verify(ctx, args, printer).await,
        DbCommand::Seed { listings, if_empty } => {
            let (target, _) = database(ctx, args)?;
            let mut client = target.connect().await.map_err(db_error)?;
            seed_database(ctx, &target, &mut client, *listings, *if_empty, printer).await
        }
        DbCommand::Redo => redo(ctx, args, printer).await,
        DbCommand::Reset {
            yes,
            listings,
            no_seed,
        } => reset(ctx, args, *yes, *listings, *no_seed, printer).await,
    }
}

/// `--if-empty` found data: nothing to do, which is a success.
fn report_skipped(target: &Target, printer: &Printer) -> Result<ExitStatus> {
    printer.report(
        &format!("{} already has rows: nothing seeded\n", target.dbname()),
        &json!({"seeded": null, "skipped": "not empty"}),
    );
    Ok(ExitStatus::Success)
}

/// Seeds with the workspace's `seeds/*.sql` when it ships them, else with GoodGo's
/// accounts and listings (see [`crate::ops::seed`]), and says what it did.
async fn seed_database(
    ctx: &Context,
    target: &Target,
    client: &mut tokio_postgres::Client,
    listings: u64,
    if_empty: bool,
    printer: &Printer,
) -> Result<ExitStatus> {
    let seeded =
        crate::ops::seed::development(ctx, client, &target.redacted(), listings, if_empty, printer)
            .await?;
    match seeded {
        Seeded::Files(shown_files) => printer.report(
            &format!(
                "seeded {} from {}\n",
                target.dbname(),
                shown_files.join(", ")
            ),
            &json!({"seeded": {"files": shown_files}}),
        ),
        Seeded::Builtin(done) => report_seed(&done, printer),
        Seeded::NotEmpty => return report_skipped(target, printer),
        Seeded::NothingToSeed => {
            return Err(UserError::failed(format!(
                "{} has no users and listings tables for GoodGo's seed, and this workspace has no seeds/*.sql",
                target.dbname()
            ))
            .with_hint("run `goodgo db migrate` first, or write your development data to seeds/dev.sql")
            .into());
        }
    }
    Ok(ExitStatus::Success)
}

/// `db redo`: the last applied migration re-applied with the user's undo SQL, in
/// development only (see [`runner::redo`]).
async fn redo(ctx: &Context, args: &DbArgs, printer: &Printer) -> Result<ExitStatus> {
    let env = &ctx.workspace.settings.env;
    if env.value != Environment::Development {
        return Err(UserError::input(format!(
            "`db redo` rewrites applied history, so it runs only in development (env is {} here)",
            if env.value == Environment::Production {
                "production"
            } else {
                "staging"
            }
        ))
        .with_hint("add a new migration instead: `goodgo db new NAME`")
        .into());
    }
    let (db, _) = database(ctx, args)?;
    let (dir, files) = migration_files(ctx)?;
    let mut client = db.connect().await.map_err(db_error)?;
    let history = runner::applied(&client).await.map_err(db_error)?;
    let Some(last) = history.iter().max_by_key(|a| a.version) else {
        return Err(
            UserError::input(format!("{} has no applied migration to redo", db.dbname()))
                .with_hint("`goodgo db migrate` applies them")
                .into(),
        );
    };
    let Some(file) = files.iter().find(|f| f.version == last.version) else {
        return Err(db_error(DbError::MissingFile {
            migration: format!("V{}__{}", last.version, last.name),
        }));
    };
    let undo_name = format!("{}.sql", file.label());
    let undo_path = dir.join("undo").join(&undo_name);
    let undo_shown = ctx.workspace.display_path(&undo_path);
    let undo = match std::fs::read_to_string(&undo_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UserError::input(format!(
                "{} is missing: `db redo` reverts {} only with the SQL you write there",
                undo_shown.display(),
                file.label()
            ))
            .with_hint(format!(
                "write the statements that undo {} as it was applied (e.g. DROP TABLE for a CREATE TABLE), then run `goodgo db redo` again",
                file.path.display()
            ))
            .into());
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("reading {}", undo_shown.display())));
        }
    };
    let report = runner::redo(&mut client, file, &undo_shown, &undo)
        .await
        .map_err(db_error)?;
    let was = if last.checksum == file.checksum().to_string() {
        "unchanged"
    } else {
        "changed"
    };
    printer.report(
        &format!(
            "redid {} ({was} since applied): ran {}, then the migration, in {} ms\n",
            file.label(),
            undo_shown.display(),
            report.took_ms
        ),
        &json!({"redone": file.label(), "file": was, "undo": undo_shown, "took_ms": report.took_ms}),
    );
    Ok(ExitStatus::Success)
}

fn report_seed(done: &seed::Seeded, printer: &Printer) {
    let text = format!(
        "seeded {} users ({} agents) and {} listings in {} ms; every account's password is `{}`\n",
        done.users,
        done.agents,
        done.listings,
        done.took_ms,
        seed::DEV_PASSWORD
    );
    printer.report(&text, &json!({"seeded": done}));
}

fn new(ctx: &Context, name: &str, printer: &Printer) -> Result<ExitStatus> {
    let (dir, files) = migration_files(ctx)?;
    let file_name = migrations::next_file_name(&files, name).map_err(UserError::input)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(&file_name);
    let version = file_name
        .trim_start_matches('V')
        .split("__")
        .next()
        .unwrap_or("?");
    let header = format!(
        "-- V{version}: {name}\n--\n-- Applied by `goodgo db migrate` in one transaction. Once applied anywhere, never edit\n-- this file: add a new migration instead (`goodgo db status` reports changed files).\n\nSET LOCAL lock_timeout = '5s';\nSET LOCAL statement_timeout = '5min';\n\n",
        name = name.trim()
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(header.as_bytes())?;
    let shown = ctx.workspace.display_path(&path);
    printer.report(
        &format!("created {}\n", shown.display()),
        &json!({"file": shown}),
    );
    Ok(ExitStatus::Success)
}

async fn migrate(
    ctx: &Context,
    args: &DbArgs,
    dry_run: bool,
    target: Option<i32>,
    printer: &Printer,
) -> Result<ExitStatus> {
    let (db, _) = database(ctx, args)?;
    let (_, files) = migration_files(ctx)?;
    if let Some(v) = target
        && !files.iter().any(|f| f.version == v)
    {
        return Err(UserError::input(format!(
            "--target {v}: there is no migration with that version"
        ))
        .into());
    }
    let mut client = db.connect().await.map_err(db_error)?;
    if dry_run {
        let history = runner::applied(&client).await.map_err(db_error)?;
        let rows = runner::status(&files, &history);
        let pending: Vec<&runner::Row> = rows
            .iter()
            .filter(|r| r.state == State::Pending && target.is_none_or(|t| r.version <= t))
            .collect();
        let mut text = String::new();
        for r in &pending {
            let _ = writeln!(
                text,
                "would apply V{}__{}  ({})",
                r.version,
                r.name,
                r.file.as_deref().unwrap_or("")
            );
        }
        if pending.is_empty() {
            text.push_str("nothing to apply\n");
        }
        let names: Vec<String> = pending
            .iter()
            .map(|r| format!("V{}__{}", r.version, r.name))
            .collect();
        printer.report(&text, &json!({"dry_run": true, "pending": names}));
        return Ok(ExitStatus::Success);
    }
    let on_event = |event: Event| match event {
        Event::Waiting => {
            printer.status("another migration run holds the lock; waiting for it to finish…")
        }
        Event::Locked(waited) if waited.as_millis() > 100 => {
            printer.debug(&format!("lock acquired after {} ms", waited.as_millis()))
        }
        Event::Locked(_) => {}
    };
    let report = runner::migrate(&mut client, &files, target, &on_event)
        .await
        .map_err(db_error)?;
    let text = if report.applied.is_empty() {
        let head = files
            .iter()
            .map(|f| f.version)
            .max()
            .map_or("no migrations".into(), |v| format!("V{v}"));
        format!("nothing to apply: {} is at {head}\n", db.dbname())
    } else {
        let mut t = String::new();
        for name in &report.applied {
            let _ = writeln!(t, "applied {name}");
        }
        let _ = writeln!(
            t,
            "{} migration(s) in {} ms",
            report.applied.len(),
            report.took_ms
        );
        t
    };
    printer.report(&text, &json!({"applied": report.applied, "waited_ms": report.waited_ms, "took_ms": report.took_ms}));
    Ok(ExitStatus::Success)
}

async fn status(ctx: &Context, args: &DbArgs, printer: &Printer) -> Result<ExitStatus> {
    let (db, _) = database(ctx, args)?;
    let (_, files) = migration_files(ctx)?;
    let client = db.connect().await.map_err(db_error)?;
    let history = runner::applied(&client).await.map_err(db_error)?;
    let rows = runner::status(&files, &history);
    let bad = rows
        .iter()
        .any(|r| matches!(r.state, State::Divergent | State::Missing));
    let mut text = String::new();
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4) + 6;
    for r in &rows {
        let label = format!("V{}__{}", r.version, r.name);
        let state = match r.state {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Divergent => "DIVERGENT",
            State::Missing => "MISSING",
        };
        let when = r.applied_on.as_deref().unwrap_or("");
        let _ = writeln!(text, "{label:<width$} {state:<9} {when}");
        match r.state {
            State::Divergent => {
                let _ = writeln!(
                    text,
                    "    {} changed since it was applied: checksum now {}, applied {}",
                    r.file.as_deref().unwrap_or(""),
                    r.checksum.as_deref().unwrap_or("?"),
                    r.applied_checksum.as_deref().unwrap_or("?")
                );
            }
            State::Missing => {
                let _ = writeln!(text, "    applied on {when} but its file is gone");
            }
            _ => {}
        }
    }
    let count = |s: State| rows.iter().filter(|r| r.state == s).count();
    let _ = writeln!(
        text,
        "{} applied, {} pending, {} divergent, {} missing",
        count(State::Applied),
        count(State::Pending),
        count(State::Divergent),
        count(State::Missing)
    );
    printer.report(
        &text,
        &json!({"database": db.redacted(), "ok": !bad, "migrations": rows}),
    );
    Ok(if bad {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

async fn verify(ctx: &Context, args: &DbArgs, printer: &Printer) -> Result<ExitStatus> {
    let (db, _) = database(ctx, args)?;
    let (_, files) = migration_files(ctx)?;
    let pg_dump = tools::find_pg_binary(
        "pg_dump",
        ctx.workspace.settings.pg_bin_dir.value.as_deref(),
    )
    .ok_or_else(|| {
        UserError::failed("pg_dump is not installed")
            .with_hint("`goodgo doctor` says how to install it")
    })?;
    // Reach the server first, so a wrong URL is reported as such.
    drop(db.connect().await.map_err(db_error)?);
    let verified = schema::verify(&pg_dump, &db, &files)
        .await
        .map_err(db_error)?;
    match verified.drift(&db.dbname()) {
        None => {
            printer.report(
                &format!("{} matches its {} migration(s)\n", db.dbname(), files.len()),
                &json!({"ok": true, "drift": null}),
            );
            Ok(ExitStatus::Success)
        }
        Some(drift) => {
            printer.report(
                &format!("{} has drifted from its migrations:\n{drift}", db.dbname()),
                &json!({"ok": false, "drift": drift}),
            );
            Ok(ExitStatus::Failure)
        }
    }
}

async fn reset(
    ctx: &Context,
    args: &DbArgs,
    yes: u8,
    listings: u64,
    no_seed: bool,
    printer: &Printer,
) -> Result<ExitStatus> {
    let (db, _) = database(ctx, args)?;
    let name = db.dbname();
    if name == "postgres" || name == "template0" || name == "template1" {
        return Err(UserError::input(format!(
            "refusing to drop the maintenance database `{name}`"
        ))
        .with_hint("point --database-url or GOODGO_DATABASE_URL at the application's own database")
        .into());
    }
    let destructive = Destructive {
        action: format!(
            "reset database `{name}` at {} (every table and row is dropped)",
            db.redacted()
        ),
        name: &name,
        yes,
        ask: Ask::Confirm,
    };
    if !guard::allow(&ctx.workspace.settings, &destructive, printer)? {
        return Ok(ExitStatus::Failure);
    }
    let (_, files) = migration_files(ctx)?;
    let maintenance = db.with_dbname("postgres");
    admin::drop_database(&maintenance, &name)
        .await
        .map_err(db_error)?;
    admin::create_database(&maintenance, &name, None)
        .await
        .map_err(db_error)?;
    let mut client = db.connect().await.map_err(db_error)?;
    let report = runner::migrate(&mut client, &files, None, &|_| {})
        .await
        .map_err(db_error)?;
    printer.status(&format!(
        "recreated {name} and applied {} migration(s)",
        report.applied.len()
    ));
    if no_seed {
        printer.report(
            &format!("reset {name}\n"),
            &json!({"reset": name, "applied": report.applied}),
        );
        return Ok(ExitStatus::Success);
    }
    seed_database(ctx, &db, &mut client, listings, false, printer).await
}

/// squawk's own exit status decides: any finding fails the lint.
async fn lint(ctx: &Context, args: &DbArgs, all: bool, printer: &Printer) -> Result<ExitStatus> {
    let (dir, files) = migration_files(ctx)?;
    let targets: Vec<&MigrationFile> = if all {
        files.iter().collect()
    } else {
        let (db, _) = database(ctx, args).map_err(|e| {
            e.context(
                "`db lint` lints pending migrations, so it needs the database (or pass --all)",
            )
        })?;
        let client = db.connect().await.map_err(db_error)?;
        let history = runner::applied(&client).await.map_err(db_error)?;
        let rows = runner::status(&files, &history);
        files
            .iter()
            .filter(|f| {
                rows.iter()
                    .any(|r| r.version == f.version && r.state == State::Pending)
            })
            .collect()
    };
    if targets.is_empty() {
        printer.report(
            "no pending migrations to lint\n",
            &json!({"files": [], "findings": []}),
        );
        return Ok(ExitStatus::Success);
    }
    let paths: Vec<PathBuf> = targets
        .iter()
        .map(|f| dir.join(f.path.file_name().unwrap_or_default()))
        .collect();
    let (findings, squawk_ok) = crate::ops::squawk::lint(&ctx.workspace.root, &paths, &|p| {
        ctx.workspace.display_path(p)
    })?;
    let mut text = String::new();
    let mut shown_findings = Vec::new();
    for f in &findings {
        let _ = writeln!(text, "{}", f.line());
        if let Some(help) = &f.help {
            let _ = writeln!(text, "    help: {help}");
        }
        shown_findings.push(json!({"file": f.file, "line": f.line, "col": f.col, "level": f.level, "rule": f.rule, "message": f.message, "help": f.help}));
    }
    // squawk reports a rule's violation as a warning and SQL it cannot parse as an error,
    // and fails on either; so does `db lint`: a rule that fires is a migration to fix (or
    // a rule to switch off in .squawk.toml, where the team decides it does not apply).
    let errors = shown_findings
        .iter()
        .filter(|f| f["level"] == "error")
        .count();
    let _ = writeln!(
        text,
        "{} finding(s), {errors} error(s), in {} migration(s)",
        findings.len(),
        targets.len()
    );
    let linted: Vec<String> = targets
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    printer.report(
        &text,
        &json!({"files": linted, "findings": shown_findings, "errors": errors}),
    );
    Ok(if findings.is_empty() && squawk_ok {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn psql(ctx: &Context, args: &DbArgs) -> Result<ExitStatus> {
    let (db, _) = database(ctx, args)?;
    let psql = tools::find_pg_binary("psql", ctx.workspace.settings.pg_bin_dir.value.as_deref())
        .ok_or_else(|| {
            UserError::failed("psql is not installed")
                .with_hint("`goodgo doctor` says how to install it")
        })?;
    let (libpq, password) = db.libpq_args();
    let mut cmd = std::process::Command::new(psql);
    cmd.args(libpq);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let status = cmd.status().context("running psql")?;
    Ok(if status.success() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
