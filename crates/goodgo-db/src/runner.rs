//! Applying migrations with refinery, serialised by a PostgreSQL advisory lock, and
//! comparing a database's history with the files; and, for development only, re-applying
//! the last migration with the user's own undo SQL ([`redo`]).

use std::path::Path;
use std::time::{Duration, Instant};

use refinery_core::{Runner, Target as RefineryTarget};
use tokio_postgres::Client;

use crate::migrations::{MigrationFile, line_col};
use crate::{DbError, PgError};

/// The advisory lock every goodgo migrator takes ("goodgomi" as bytes).
pub const LOCK_KEY: i64 = 0x676f_6f64_676f_6d69;

/// refinery's history table.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// One row of the history table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    pub version: i32,
    pub name: String,
    pub applied_on: String,
    pub checksum: String,
}

/// The history, oldest first; empty when nothing was ever applied.
pub async fn applied(client: &Client) -> Result<Vec<Applied>, DbError> {
    let exists: bool = client
        .query_one(
            &format!("SELECT to_regclass('{HISTORY_TABLE}') IS NOT NULL"),
            &[],
        )
        .await
        .map_err(|e| DbError::pg("reading the migration history", e))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT version, name, applied_on, checksum FROM {HISTORY_TABLE} ORDER BY version"
            ),
            &[],
        )
        .await
        .map_err(|e| DbError::pg("reading the migration history", e))?;
    Ok(rows
        .iter()
        .map(|r| Applied {
            version: r.get(0),
            name: r.get(1),
            applied_on: r.get(2),
            checksum: r.get(3),
        })
        .collect())
}

/// Where each migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the file changed since.
    Divergent,
    /// Applied, but the file is gone.
    Missing,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub version: i32,
    pub name: String,
    pub state: State,
    /// The file's path, when there is a file.
    pub file: Option<String>,
    /// The checksum of the file now.
    pub checksum: Option<String>,
    /// The checksum recorded when it was applied.
    pub applied_checksum: Option<String>,
    pub applied_on: Option<String>,
}

/// Files against history, by version. Pure.
pub fn status(files: &[MigrationFile], history: &[Applied]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for f in files {
        let applied = history.iter().find(|a| a.version == f.version);
        let checksum = f.checksum().to_string();
        let state = match applied {
            None => State::Pending,
            Some(a) if a.checksum == checksum && a.name == f.name => State::Applied,
            Some(_) => State::Divergent,
        };
        rows.push(Row {
            version: f.version,
            name: f.name.clone(),
            state,
            file: Some(f.path.display().to_string()),
            checksum: Some(checksum),
            applied_checksum: applied.map(|a| a.checksum.clone()),
            applied_on: applied.map(|a| a.applied_on.clone()),
        });
    }
    for a in history {
        if !files.iter().any(|f| f.version == a.version) {
            rows.push(Row {
                version: a.version,
                name: a.name.clone(),
                state: State::Missing,
                file: None,
                checksum: None,
                applied_checksum: Some(a.checksum.clone()),
                applied_on: Some(a.applied_on.clone()),
            });
        }
    }
    rows.sort_by_key(|r| r.version);
    rows
}

/// What happened during [`migrate`], for progress output.
pub enum Event {
    /// Another runner holds the lock; this one waits.
    Waiting,
    /// The lock is ours after this long.
    Locked(Duration),
}

/// The outcome of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// What this run applied, in order (`V{n}__{name}`).
    pub applied: Vec<String>,
    pub waited_ms: u64,
    pub took_ms: u64,
}

/// Applies the pending migrations up to `target` (all when `None`), each in its own
/// transaction, while holding the advisory lock [`LOCK_KEY`] on this session: concurrent
/// runners queue behind it and then find nothing left to do. A migration the server
/// rejects is reported at its line in the file; the ones before it stay applied.
pub async fn migrate(
    client: &mut Client,
    files: &[MigrationFile],
    target: Option<i32>,
    on_event: &dyn Fn(Event),
) -> Result<Report, DbError> {
    let start = Instant::now();
    let got: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(|e| DbError::pg("taking the migration lock", e))?
        .get(0);
    if !got {
        on_event(Event::Waiting);
        client
            .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(|e| DbError::pg("waiting for the migration lock", e))?;
    }
    let waited = start.elapsed();
    on_event(Event::Locked(waited));
    let result = run_locked(client, files, target).await;
    // Ending the session would release it too; say so explicitly for the next user of it.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    let applied = result?;
    Ok(Report {
        applied,
        waited_ms: millis(waited),
        took_ms: millis(start.elapsed()),
    })
}

/// Re-applies `file`, the last applied migration, after its text changed: in one
/// transaction, under the migration lock, runs `undo` (the user's SQL that reverts the
/// migration as it was applied; `undo_path` names it in messages), forgets the migration's
/// history row, runs the file as it is now and records it with its new checksum. Any failure
/// rolls all of it back, so the database is either redone or as it was. What to drop is
/// decided by the undo SQL alone: nothing is reverted automatically.
pub async fn redo(
    client: &mut Client,
    file: &MigrationFile,
    undo_path: &Path,
    undo: &str,
) -> Result<Report, DbError> {
    let start = Instant::now();
    let tx = client
        .transaction()
        .await
        .map_err(|e| DbError::pg("starting the redo transaction", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(|e| DbError::pg("taking the migration lock", e))?;
    let waited = start.elapsed();
    tx.batch_execute(undo).await.map_err(|e| {
        DbError::pg(
            format!("running {} (nothing was changed)", undo_path.display()),
            e,
        )
    })?;
    tx.execute(
        &format!("DELETE FROM {HISTORY_TABLE} WHERE version = $1"),
        &[&file.version],
    )
    .await
    .map_err(|e| DbError::pg("forgetting the migration's history row", e))?;
    tx.batch_execute(&file.sql).await.map_err(|e| {
        DbError::pg(
            format!("re-applying {} (nothing was changed)", file.path.display()),
            e,
        )
    })?;
    record(&tx, file).await?;
    tx.commit()
        .await
        .map_err(|e| DbError::pg("committing the redo", e))?;
    Ok(Report {
        applied: vec![file.label()],
        waited_ms: millis(waited),
        took_ms: millis(start.elapsed()),
    })
}

/// Records `file` as applied, as refinery does: the applied time in RFC 3339, the checksum
/// as a decimal.
pub(crate) async fn record(
    client: &impl tokio_postgres::GenericClient,
    file: &MigrationFile,
) -> Result<(), DbError> {
    client
        .execute(
            &format!(
                "INSERT INTO {HISTORY_TABLE} (version, name, applied_on, checksum) VALUES \
                 ($1, $2, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), $3)"
            ),
            &[&file.version, &file.name, &file.checksum().to_string()],
        )
        .await
        .map_err(|e| DbError::pg(format!("recording {} in the history", file.label()), e))?;
    Ok(())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn run_locked(
    client: &mut Client,
    files: &[MigrationFile],
    target: Option<i32>,
) -> Result<Vec<String>, DbError> {
    // refinery refuses divergent or missing history itself; checking first gives a clearer
    // message naming the file and both checksums.
    let history = applied(client).await?;
    let rows = status(files, &history);
    if let Some(bad) = rows.iter().find(|r| r.state == State::Divergent) {
        return Err(DbError::Divergent {
            file: bad.file.clone().unwrap_or_default(),
            applied: bad.applied_checksum.clone().unwrap_or_else(|| "?".into()),
            now: bad.checksum.clone().unwrap_or_else(|| "?".into()),
        });
    }
    if let Some(gone) = rows.iter().find(|r| r.state == State::Missing) {
        return Err(DbError::MissingFile {
            migration: format!("V{}__{}", gone.version, gone.name),
        });
    }
    let pending: Vec<&MigrationFile> = files
        .iter()
        .filter(|f| {
            rows.iter()
                .any(|r| r.version == f.version && r.state == State::Pending)
        })
        .collect();
    // refinery applies each migration in its own transaction; one that must run outside a
    // transaction is applied by hand, in version order, between refinery's runs.
    let migrations: Vec<_> = files.iter().map(|f| f.migration.clone()).collect();
    let mut applied = Vec::new();
    for file in pending.iter().copied() {
        if target.is_some_and(|t| file.version > t) || !crate::outside::needed(&file.sql) {
            continue;
        }
        applied.extend(run_refinery(client, &migrations, &pending, Some(file.version - 1)).await?);
        crate::outside::apply(client, file).await?;
        applied.push(file.label());
    }
    applied.extend(run_refinery(client, &migrations, &pending, target).await?);
    Ok(applied)
}

/// refinery's run up to `target` (all with `None`): the names it applied.
async fn run_refinery(
    client: &mut Client,
    migrations: &[refinery_core::Migration],
    pending: &[&MigrationFile],
    target: Option<i32>,
) -> Result<Vec<String>, DbError> {
    let runner = Runner::new(migrations)
        .set_grouped(false)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .set_target(match target {
            Some(v) => RefineryTarget::Version(v),
            None => RefineryTarget::Latest,
        });
    match runner.run_async(client).await {
        Ok(report) => Ok(report
            .applied_migrations()
            .iter()
            .map(|m| m.to_string())
            .collect()),
        Err(err) => {
            let done: Vec<String> = err
                .report()
                .map(|r| {
                    r.applied_migrations()
                        .iter()
                        .map(|m| m.to_string())
                        .collect()
                })
                .unwrap_or_default();
            let applied_before = applied(client).await.unwrap_or_default();
            let failed = pending.iter().find(|f| {
                !done.contains(&f.label()) && !applied_before.iter().any(|a| a.version == f.version)
            });
            Err(explain_failure(err, failed.copied()))
        }
    }
}

/// Turns refinery's error into `file:line:col: what the server said` when a migration's
/// SQL was rejected, or else a failure of the run, keeping refinery's error as the cause.
fn explain_failure(err: refinery_core::Error, failed: Option<&MigrationFile>) -> DbError {
    let pg = crate::error::postgres_in(&err);
    let position = pg
        .and_then(tokio_postgres::Error::as_db_error)
        .map(|db| match db.position() {
            Some(tokio_postgres::error::ErrorPosition::Original(pos)) => *pos as usize,
            _ => 1,
        });
    let source = PgError::from(err);
    match (failed, position) {
        (Some(file), Some(pos)) => {
            let (line, col) = line_col(&file.sql, pos);
            DbError::Rejected {
                path: file.path.clone(),
                line,
                col,
                migration: file.label(),
                message: source.to_string(),
                source,
            }
        }
        (Some(file), None) => DbError::Postgres {
            doing: format!("applying {}", file.path.display()),
            source,
        },
        (None, _) => DbError::Postgres {
            doing: "applying migrations".into(),
            source,
        },
    }
}
