//! `goodgo backup …`: backups of the GoodGo database. The work is in `goodgo-backup`; this
//! module resolves the database, the destination (a folder or S3), the keys and the
//! PostgreSQL tools, guards what deletes or replaces, draws progress and prints.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use goodgo_backup::crypt::{Identity, Recipients};
use goodgo_backup::policy::{self, Dated, Policy};
use goodgo_backup::store::{Listed, Location, Store};
use goodgo_backup::{Event, Tools, check, create};
use indicatif::{HumanBytes, ProgressBar};
use serde_json::json;

use super::Context;
use crate::args::{BackupArgs, BackupCommand};
use crate::error::{ExitStatus, UserError};
use crate::ops::guard::{self, Ask, Destructive};
use crate::printer::Printer;
use crate::tools;

mod restore;
use restore::{Restore, restore};

pub fn run(ctx: &Context, args: &BackupArgs, printer: &Printer) -> Result<ExitStatus> {
    super::db::block_on(run_async(ctx, args, printer))?
}

async fn run_async(ctx: &Context, args: &BackupArgs, printer: &Printer) -> Result<ExitStatus> {
    let dest = Store::open(destination(ctx, args.to.as_deref())?)?;
    match &args.command {
        BackupCommand::Create { jobs, encrypt_to } => {
            create(ctx, args, &dest, *jobs, encrypt_to, printer).await
        }
        BackupCommand::List => list(ctx, &dest, printer).await,
        BackupCommand::Verify {
            id,
            restore,
            jobs,
            identity,
        } => {
            let how = reading(ctx, *jobs, identity.as_deref())?;
            verify(ctx, args, &dest, id.as_deref(), *restore, &how, printer).await
        }
        BackupCommand::Restore {
            id,
            to_database,
            yes,
            jobs,
            identity,
            no_owner,
        } => {
            let how = reading(ctx, *jobs, identity.as_deref())?;
            let to = Restore {
                id,
                to: to_database,
                yes: *yes,
                no_owner: *no_owner,
            };
            restore(ctx, args, &dest, &to, &how, printer).await
        }
        BackupCommand::Prune { dry_run, yes } => prune(ctx, &dest, *dry_run, *yes, printer).await,
    }
}

/// `--to` (a folder from where goodgo runs, or s3://…), `backup.to` (from the workspace),
/// or .goodgo/backups.
fn destination(ctx: &Context, to: Option<&str>) -> Result<Location> {
    let ws = &ctx.workspace;
    let location = match (to, &ws.settings.backup.value.to) {
        (Some(to), _) => Location::parse(to, |p| ws.cwd.join(p))?,
        (None, Some(to)) => Location::parse(&to.to_string_lossy(), |p| ws.resolve(p))?,
        (None, None) => Location::Local(ws.resolve(&PathBuf::from(".goodgo/backups"))),
    };
    Ok(location)
}

/// How a backup's files are read: on how many threads, with which identity.
struct Reading {
    jobs: usize,
    identity: Option<Identity>,
}

/// `--jobs` (or its default), and the age identity of `--identity FILE`, else of
/// GOODGO_BACKUP_IDENTITY (a file's path), if either is given: read (and a bad file
/// refused) before any work starts.
fn reading(
    ctx: &Context,
    jobs: Option<usize>,
    identity: Option<&std::path::Path>,
) -> Result<Reading> {
    let path = match identity {
        Some(path) => Some(path.to_path_buf()),
        None => std::env::var_os("GOODGO_BACKUP_IDENTITY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    };
    Ok(Reading {
        jobs: jobs_for(ctx, jobs),
        identity: path.map(|p| Identity::read(&p)).transpose()?,
    })
}

/// The recipients of `--encrypt-to`, else of `backup.recipients`.
fn recipients(ctx: &Context, flags: &[String]) -> Result<Option<Recipients>> {
    let configured = ctx.workspace.settings.backup.value.recipients.as_deref();
    let keys = if flags.is_empty() {
        configured.unwrap_or_default()
    } else {
        flags
    };
    Ok(Recipients::parse(keys)?)
}

fn jobs_for(ctx: &Context, flag: Option<usize>) -> usize {
    flag.or(ctx.workspace.settings.backup.value.jobs)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1)
}

fn pg_tools(ctx: &Context) -> Result<Tools> {
    let dir = ctx.workspace.settings.pg_bin_dir.value.as_deref();
    let find = |name: &str| {
        tools::find_pg_binary(name, dir).ok_or_else(|| {
            UserError::input(format!("{name} not found"))
                .with_hint("install PostgreSQL's client tools (`apt-get install postgresql-client-15`), or set pg_bin_dir in goodgo.yaml")
        })
    };
    Ok(Tools {
        pg_dump: find("pg_dump")?,
        pg_restore: find("pg_restore")?,
    })
}

/// Progress for a job: a status line for each phase, a bar of bytes for the files.
fn progress<'a>(
    printer: &'a Printer,
    verb: &'a str,
    bar: &'a ProgressBar,
) -> impl Fn(Event) + Sync + 'a {
    move |event| match event {
        Event::Dumping { tables } => {
            printer.status(&format!(
                "dumping {tables} table(s), hashing and compressing their rows as pg_dump writes them…"
            ));
        }
        Event::Bytes { total } => {
            printer.status(&format!("{verb} {}…", HumanBytes(total)));
            bar.set_length(total);
            bar.set_position(0);
        }
        Event::Advance(n) => bar.inc(n),
        Event::Total(total) => bar.set_length(total),
        Event::Restoring => {
            bar.finish_and_clear();
            printer.status("restoring with pg_restore…");
        }
        Event::Loading { table, connections } => printer.status(&format!(
            "loading {table} on {connections} connections, beside pg_restore…"
        )),
        Event::Hashing => {
            printer.status("counting and hashing every table while pg_restore builds the indexes…")
        }
    }
}

fn git_commit(ctx: &Context) -> Option<String> {
    let repo = git2::Repository::discover(&ctx.workspace.root).ok()?;
    let commit = repo.head().ok()?.peel_to_commit().ok()?;
    Some(commit.id().to_string())
}

/// Where `dest` is, for people: a folder relative to the workspace, or its URL.
fn shown(ctx: &Context, place: &str) -> String {
    if place.contains("://") {
        return place.to_string();
    }
    ctx.workspace
        .display_path(std::path::Path::new(place))
        .display()
        .to_string()
}

async fn create(
    ctx: &Context,
    args: &BackupArgs,
    dest: &Store,
    jobs_flag: Option<usize>,
    encrypt_to: &[String],
    printer: &Printer,
) -> Result<ExitStatus> {
    let recipients = recipients(ctx, encrypt_to)?;
    let (db, _) = crate::ops::database::resolve(ctx, args.database_url.as_deref())?;
    let tools = pg_tools(ctx)?;
    let jobs = jobs_for(ctx, jobs_flag);
    let sealed = match &recipients {
        Some(r) => format!(
            ", encrypted to {} recipient(s)",
            r.describe().recipients.len()
        ),
        None => String::new(),
    };
    printer.status(&format!(
        "backing up {} to {} (pg_dump --jobs {jobs}{sealed})…",
        db.redacted(),
        shown(ctx, &dest.location().to_string())
    ));
    let started = Instant::now();
    let bar = printer.bytes_bar("compressing");
    let options = create::Options {
        jobs,
        git_commit: git_commit(ctx),
        recipients,
    };
    let done = create::create(
        &db,
        &tools,
        dest,
        &options,
        &progress(printer, "compressing", &bar),
    )
    .await?;
    bar.finish_and_clear();
    for name in &done.cleaned {
        printer.status(&format!("removed {name}, left by an interrupted backup"));
    }
    let m = &done.manifest;
    let c = m.contents();
    let text = format!(
        "created backup {} of {}: {c}, {} in {:.1} s\n  {}\n",
        m.id,
        m.database,
        HumanBytes(m.size()),
        started.elapsed().as_secs_f64(),
        shown(ctx, &done.place)
    );
    printer.report(
        &text,
        &json!({
            "id": m.id,
            "database": m.database,
            "dir": done.place,
            "encrypted": m.encryption.is_some(),
            "tables": c.tables,
            "rows": c.rows,
            "large_objects": c.large_objects,
            "bytes": m.size(),
            "took_ms": started.elapsed().as_millis() as u64,
            "cleaned": done.cleaned,
        }),
    );
    Ok(ExitStatus::Success)
}

/// `3m`, `5h`, `2d` ago.
fn age(started: Option<time::OffsetDateTime>) -> (String, Option<i64>) {
    let Some(at) = started else {
        return ("?".into(), None);
    };
    let secs = (time::OffsetDateTime::now_utc() - at)
        .whole_seconds()
        .max(0);
    let text = match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    };
    (text, Some(secs))
}

async fn list(ctx: &Context, dest: &Store, printer: &Printer) -> Result<ExitStatus> {
    let backups = dest.list().await?;
    let where_ = dest.location().to_string();
    let mut text = String::new();
    if backups.is_empty() {
        let _ = writeln!(text, "no backups in {}", shown(ctx, &where_));
    } else {
        let _ = writeln!(
            text,
            "{:<24} {:<16} {:>6} {:>10} {:>6}  VERIFIED",
            "ID", "DATABASE", "AGE", "SIZE", "TABLES"
        );
    }
    let mut items = Vec::new();
    for b in &backups {
        let m = &b.manifest;
        let (age_text, age_secs) = age(m.started());
        let mut verified = b
            .verified
            .as_ref()
            .map_or("no".to_string(), |v| format!("restored {}", v.verified_at));
        if m.encryption.is_some() {
            verified.push_str(" (encrypted)");
        }
        let _ = writeln!(
            text,
            "{:<24} {:<16} {:>6} {:>10} {:>6}  {verified}",
            m.id,
            m.database,
            age_text,
            HumanBytes(m.size()).to_string(),
            m.contents().tables
        );
        items.push(json!({
            "id": m.id,
            "database": m.database,
            "started_at": m.started_at,
            "age_seconds": age_secs,
            "bytes": m.size(),
            "tables": m.contents().tables,
            "large_objects": m.contents().large_objects,
            "verified": b.verified,
            "encrypted": m.encryption.is_some(),
            "dir": b.place,
        }));
    }
    let fresh = freshness(ctx, &backups);
    if let Some(line) = &fresh.0 {
        text.push_str(line);
    }
    printer.report(
        &text,
        &json!({"dest": where_, "backups": items, "newest_verified_age_seconds": fresh.1}),
    );
    if let Some(warning) = fresh.2 {
        printer.warn(&warning);
    }
    Ok(ExitStatus::Success)
}

/// For `goodgo status`: the backups' freshness at the configured destination, as a line of
/// text, a JSON value and a warning past the RPO; `None` where there are no backups.
pub async fn status_summary(ctx: &Context) -> Option<(String, serde_json::Value, Option<String>)> {
    let ws = &ctx.workspace;
    let dest = Store::open(destination(ctx, None).ok()?).ok()?;
    // A status line is not worth waiting for: an S3 destination that does not answer
    // soon is left out.
    let listed = tokio::time::timeout(std::time::Duration::from_secs(10), dest.list());
    let backups = listed.await.ok()?.ok()?;
    if backups.is_empty() && ws.settings.backup.value.rpo_hours.is_none() {
        return None;
    }
    let (line, secs, warning) = freshness(ctx, &backups);
    let line = line.unwrap_or_else(|| format!("backups: {} (none verified)\n", backups.len()));
    let value = json!({"backups": backups.len(), "newest_verified_age_seconds": secs});
    Some((line, value, warning))
}

/// The newest verified backup's age as a line, in seconds, and a warning past the RPO.
fn freshness(ctx: &Context, backups: &[Listed]) -> (Option<String>, Option<i64>, Option<String>) {
    let rpo = ctx.workspace.settings.backup.value.rpo_hours;
    let newest = backups.iter().find(|b| b.verified.is_some());
    let Some(b) = newest else {
        let warning = (!backups.is_empty() || rpo.is_some()).then(|| {
            "no verified backup: prove one with `goodgo backup verify --restore`".to_string()
        });
        return (None, None, warning);
    };
    let (text, secs) = age(b.manifest.started());
    let line = format!("newest verified backup: {} ({text} old)\n", b.manifest.id);
    let warning = match (rpo, secs) {
        (Some(hours), Some(s)) if s > i64::from(hours) * 3600 => Some(format!(
            "the newest verified backup is {text} old, past backup.rpo_hours ({hours}h)"
        )),
        _ => None,
    };
    (Some(line), secs, warning)
}

async fn verify(
    ctx: &Context,
    args: &BackupArgs,
    dest: &Store,
    id: Option<&str>,
    restore: bool,
    how: &Reading,
    printer: &Printer,
) -> Result<ExitStatus> {
    let id = dest.locate(id).await?;
    let (jobs, identity) = (how.jobs, how.identity.as_ref());
    let started = Instant::now();
    let bar = printer.bytes_bar("checking");
    let on_event = progress(printer, "checking", &bar);
    if !restore {
        let m = check::verify_files(dest, &id, identity, jobs, &on_event).await?;
        bar.finish_and_clear();
        let opened = match (&m.encryption, identity) {
            (None, _) => "",
            (Some(_), Some(_)) => ", every file decrypted and decompressed",
            (Some(_), None) => " (encrypted: give --identity to open them too)",
        };
        let text = format!(
            "backup {}: {} files, {} match the manifest{opened} ({:.1} s)\n",
            m.id,
            m.files.len(),
            HumanBytes(m.size()),
            started.elapsed().as_secs_f64()
        );
        printer.report(
            &text,
            &json!({"id": m.id, "files": m.files.len(), "bytes": m.size(), "restored": false}),
        );
        return Ok(ExitStatus::Success);
    }
    let (db, _) = crate::ops::database::resolve(ctx, args.database_url.as_deref())?;
    let tools = pg_tools(ctx)?;
    // `goodgo db status` against the restored database, when the workspace has migrations.
    let (_, files) = super::db::migration_files(ctx)?;
    let files = (!files.is_empty()).then_some(files.as_slice());
    let (m, verified) =
        check::verify_by_restore(dest, &id, identity, &db, &tools, jobs, files, &on_event).await?;
    bar.finish_and_clear();
    let c = m.contents();
    let mut text = format!(
        "backup {}: every file matches, restored into a scratch database: {c}, every count and hash equal ({:.1} s)\n",
        m.id,
        started.elapsed().as_secs_f64()
    );
    if let Some(status) = &verified.migrations {
        text.push_str(&migration_lines(status));
    }
    printer.report(
        &text,
        &json!({"id": m.id, "files": m.files.len(), "bytes": m.size(), "tables": c.tables, "rows": c.rows, "large_objects": c.large_objects, "restored": true, "verified": verified}),
    );
    Ok(ExitStatus::Success)
}

/// What `goodgo db status` found in the restored database, as lines for `verify --restore`.
fn migration_lines(status: &goodgo_backup::MigrationCheck) -> String {
    let mut text = format!(
        "migrations: head {}, {} applied, {} pending in the workspace",
        status.head.as_deref().unwrap_or("none"),
        status.applied,
        status.pending
    );
    if status.consistent() {
        text.push_str(", none divergent or missing\n");
        return text;
    }
    text.push('\n');
    for name in &status.divergent {
        let _ = writeln!(
            text,
            "warning: {name} was applied from a file that has changed since the backup"
        );
    }
    for name in &status.missing {
        let _ = writeln!(
            text,
            "warning: {name} is applied in the backup but has no file in this workspace"
        );
    }
    text
}

fn policy(ctx: &Context) -> Policy {
    let d = Policy::default();
    let keep = ctx.workspace.settings.backup.value.keep.unwrap_or_default();
    Policy {
        last: keep.last.unwrap_or(d.last),
        daily: keep.daily.unwrap_or(d.daily),
        weekly: keep.weekly.unwrap_or(d.weekly),
        monthly: keep.monthly.unwrap_or(d.monthly),
    }
}

async fn prune(
    ctx: &Context,
    dest: &Store,
    dry_run: bool,
    yes: u8,
    printer: &Printer,
) -> Result<ExitStatus> {
    let backups = dest.list().await?;
    let policy = policy(ctx);
    let dated: Vec<Dated> = backups
        .iter()
        .filter_map(|b| {
            Some(Dated {
                id: b.manifest.id.clone(),
                at: b.manifest.started()?,
                verified: b.verified.is_some(),
            })
        })
        .collect();
    let decisions = policy::decide(&policy, &dated);
    let doomed: Vec<&Dated> = decisions
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(d, _)| d)
        .collect();
    if !dry_run && !doomed.is_empty() {
        let allowed = guard::allow(
            &ctx.workspace.settings,
            &Destructive {
                action: format!("delete {} backup(s) from {}", doomed.len(), dest.location()),
                name: "prune",
                yes,
                ask: Ask::Never,
            },
            printer,
        )?;
        if !allowed {
            return Ok(ExitStatus::Failure);
        }
    }
    let mut text = String::new();
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut items = Vec::new();
    for (d, reason) in &decisions {
        match reason {
            Some(r) => {
                let r = serde_json::to_value(r).unwrap_or_default();
                let _ = writeln!(text, "keep   {}  ({})", d.id, r.as_str().unwrap_or(""));
                items.push(json!({"id": d.id, "keep": true, "reason": r}));
            }
            None => {
                if !dry_run {
                    dest.delete(&d.id).await?;
                }
                let _ = writeln!(text, "{verb} {}", d.id);
                items.push(json!({"id": d.id, "keep": false}));
            }
        }
    }
    let _ = writeln!(
        text,
        "{} kept, {} {verb} (keep last {}, daily {}, weekly {}, monthly {})",
        decisions.len() - doomed.len(),
        doomed.len(),
        policy.last,
        policy.daily,
        policy.weekly,
        policy.monthly
    );
    printer.report(
        &text,
        &json!({"dry_run": dry_run, "policy": policy, "backups": items}),
    );
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        let now = time::OffsetDateTime::now_utc();
        assert_eq!(age(Some(now - time::Duration::seconds(5))).0, "5s");
        assert_eq!(age(Some(now - time::Duration::minutes(30))).0, "30m");
        assert_eq!(age(Some(now - time::Duration::hours(5))).0, "5h");
        assert_eq!(age(Some(now - time::Duration::days(3))).0, "3d");
        assert_eq!(age(None).0, "?");
    }
}
