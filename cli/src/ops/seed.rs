//! Development data, one way for `goodgo db seed`, `db reset` and `goodgo dev`: the
//! workspace's own `seeds/*.sql` when it ships them (its schema is its own), else GoodGo's
//! accounts and listings, which need GoodGo's tables. With `if_empty`, a database that
//! already has data is left as it is.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use goodgo_db::{DbError, seed};

use crate::commands::Context;
use crate::printer::Printer;

/// What seeding did.
pub enum Seeded {
    /// The workspace's seed files ran (as shown in messages).
    Files(Vec<String>),
    /// GoodGo's own data was loaded.
    Builtin(seed::Seeded),
    /// `if_empty` and the database has data: nothing was done.
    NotEmpty,
    /// No seed files, and not GoodGo's schema: there is nothing to seed with.
    NothingToSeed,
}

/// The workspace's own seed files: `seeds/*.sql` in name order, as (path, shown path).
fn seed_files(ctx: &Context) -> Result<Vec<(PathBuf, PathBuf)>> {
    let dir = ctx.workspace.root.join("seeds");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("reading {}", dir.display())));
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "sql") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|p| {
            let shown = ctx.workspace.display_path(&p);
            (p, shown)
        })
        .collect())
}

/// Seeds the development data into `client`'s database, `shown` in messages (see the
/// module's doc).
pub async fn development(
    ctx: &Context,
    client: &mut tokio_postgres::Client,
    shown: &str,
    listings: u64,
    if_empty: bool,
    printer: &Printer,
) -> Result<Seeded> {
    let files = seed_files(ctx)?;
    if !files.is_empty() {
        if if_empty && seed::has_rows(client).await? {
            return Ok(Seeded::NotEmpty);
        }
        let mut shown_files = Vec::new();
        for (path, shown) in &files {
            let sql = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", shown.display()))?;
            printer.status(&format!("running {}…", shown.display()));
            seed::run_sql(client, shown, &sql).await?;
            shown_files.push(shown.display().to_string());
        }
        return Ok(Seeded::Files(shown_files));
    }
    if !seed::has_builtin_schema(client).await? {
        return Ok(Seeded::NothingToSeed);
    }
    printer.status(&format!("seeding {shown} with {listings} listings…"));
    match seed::seed(client, listings).await {
        Ok(done) => Ok(Seeded::Builtin(done)),
        Err(DbError::NotEmpty { .. }) if if_empty => Ok(Seeded::NotEmpty),
        Err(e) => Err(e.into()),
    }
}
