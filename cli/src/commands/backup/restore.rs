//! `goodgo backup restore`: every file checked before any database is touched, the backup
//! restored into a database of its own and checked there, and only then given the target's
//! name, so that a failed or interrupted restore leaves the target as it was.

use std::time::Instant;

use anyhow::{Context as _, Result};
use goodgo_backup::check;
use goodgo_backup::store::Store;
use goodgo_db::admin::{self, Target};
use goodgo_db::properties;
use serde_json::json;

use super::{Reading, pg_tools, progress};
use crate::args::BackupArgs;
use crate::commands::Context;
use crate::error::ExitStatus;
use crate::ops::guard::{self, Ask, Destructive};
use crate::printer::Printer;

/// The target of `--to-database`: a URL, or a name on the resolved database's server.
fn restore_target(ctx: &Context, args: &BackupArgs, to: &str) -> Result<Target> {
    if to.contains("://") {
        return Ok(Target::parse(to)?);
    }
    let (db, _) = crate::ops::database::resolve(ctx, args.database_url.as_deref())?;
    Ok(db.with_dbname(to))
}

/// How many tables (of any kind) database `target` holds, or `None` when it does not exist.
async fn tables_in(target: &Target) -> Result<Option<i64>> {
    let name = target.dbname();
    // The target's own server, through its `postgres` database.
    let client = target.maintenance(&name).connect().await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .context("looking for the target database")?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let client = target.connect().await?;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%'",
            &[],
        )
        .await
        .context("counting the target database's tables")?
        .get(0);
    Ok(Some(n))
}

/// What `backup restore` restores, where, and how.
pub(super) struct Restore<'a> {
    pub id: &'a str,
    pub to: &'a str,
    pub yes: u8,
    pub no_owner: bool,
}

pub(super) async fn restore(
    ctx: &Context,
    args: &BackupArgs,
    dest: &Store,
    what: &Restore<'_>,
    how: &Reading,
    printer: &Printer,
) -> Result<ExitStatus> {
    let &Restore {
        id,
        to,
        yes,
        no_owner,
    } = what;
    let id = &dest.locate(Some(id)).await?;
    let (jobs, identity) = (how.jobs, how.identity.as_ref());
    let target = restore_target(ctx, args, to)?;
    let tools = pg_tools(ctx)?;
    let name = target.dbname();
    let existing = tables_in(&target).await?;
    let nonempty = existing.is_some_and(|n| n > 0);
    let action = match existing {
        Some(n) if n > 0 => format!(
            "replace database `{name}` ({n} tables and relations) at {} with backup {id}",
            target.redacted()
        ),
        _ => format!(
            "restore backup {id} into database `{name}` at {}",
            target.redacted()
        ),
    };
    let allowed = guard::allow(
        &ctx.workspace.settings,
        &Destructive {
            action,
            name: &name,
            yes,
            ask: if nonempty { Ask::Confirm } else { Ask::Never },
        },
        printer,
    )?;
    if !allowed {
        return Ok(ExitStatus::Failure);
    }
    let started = Instant::now();
    // Every file is checked (and decompressed) before any database is touched.
    let folder = tempfile::Builder::new()
        .prefix(".goodgo-restore-")
        .tempdir()
        .context("creating a scratch folder")?;
    let bar = printer.bytes_bar("checking");
    let on_event = progress(printer, "checking and decompressing", &bar);
    let m = check::materialize(dest, id, identity, folder.path(), jobs, &on_event).await?;
    bar.finish_and_clear();
    // The restore goes into a database of its own, created like the dumped one; the target
    // is replaced only once every table of that one is checked, so that a failed restore
    // leaves the target as it was.
    let server = target.maintenance(&name);
    // Registered before the database is created: Ctrl-C from here on drops it again.
    let interrupted = crate::ops::interrupt::interrupt()?;
    let (staging, instead) = check::database_for(&server, "goodgo_restore", &m).await?;
    for leftover in &staging.swept {
        printer.status(&format!(
            "dropped database `{leftover}`, left by a restore that was killed"
        ));
    }
    if let (Some(instead), Some(like)) = (instead, &m.locale) {
        printer.warn(&format!(
            "this server cannot create a database with the backup's {}: database `{name}` is created with encoding {} and {instead}",
            like.describe_locale(),
            like.encoding
        ));
    }
    let restoring = check::restore_checked(
        folder.path(),
        &m,
        &staging.target,
        &tools,
        jobs,
        no_owner,
        &on_event,
    );
    let restored = tokio::select! {
        r = restoring => Some(r),
        () = interrupted => None,
    };
    match restored {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            let _ = staging.remove().await;
            return Err(e.into());
        }
        None => {
            // Dropping it ends pg_restore's sessions too.
            let _ = staging.remove().await;
            printer.warn(&format!(
                "interrupted: the restore's database is dropped; `{name}` is as it was"
            ));
            return Ok(ExitStatus::Interrupted);
        }
    }
    // Everything that may fail before the target goes, while the restored database is still
    // this run's to drop: what pg_dump does not dump of a database (owner, settings,
    // privileges) is read from the one replaced, and the restored one is unmarked, so that
    // no other run takes it for a leftover once it holds the only copy of the data.
    let prepared = async {
        let properties = match existing {
            Some(_) => properties::read(&server, &name).await?,
            None => None,
        };
        staging.unmark().await?;
        if existing.is_some() {
            admin::drop_database(&server, &name).await?;
        }
        Ok::<_, goodgo_db::DbError>(properties)
    }
    .await;
    let properties = match prepared {
        Ok(properties) => properties,
        Err(e) => {
            let _ = staging.remove().await;
            return Err(e.into());
        }
    };
    let staged = staging.name();
    admin::rename_database(&server, &staged, &name)
        .await
        .with_context(|| {
            format!("the backup is restored and checked in database `{staged}`, which could not take the name `{name}` (rename it by hand: ALTER DATABASE … RENAME TO …)")
        })?;
    if let Some(properties) = &properties {
        let failed = match properties::apply(&server, &name, properties).await {
            Ok(failed) => failed,
            Err(e) => vec![e.to_string()],
        };
        for failure in failed {
            printer.warn(&format!(
                "database `{name}` is restored, but did not get this property of the one it replaced: {failure}"
            ));
        }
    }
    let c = m.contents();
    let text = format!(
        "restored backup {} into {}: {c}, every count and hash equal ({:.1} s)\n",
        m.id,
        name,
        started.elapsed().as_secs_f64()
    );
    printer.report(
        &text,
        &json!({"id": m.id, "database": name, "tables": c.tables, "rows": c.rows, "large_objects": c.large_objects, "took_ms": started.elapsed().as_millis() as u64}),
    );
    Ok(ExitStatus::Success)
}
