//! Throwaway databases: a unique name, an async [`Scratch`] for jobs such as `db verify`,
//! and a [`TestDatabase`] for tests, which drops itself and reads query results as text
//! (as `psql -A -t` prints them), so tests need neither `psql` nor an async runtime.

use crate::DbError;
use crate::admin::{
    Target, TextSettings, create_database, create_database_like, drop_database, set_comment,
};

/// A database name no other process or call uses: `{prefix}_{pid}_{nanos}_{n}`, for
/// throwaway databases (tests, `db verify`'s scratch database). `prefix` should be short:
/// PostgreSQL cuts names at 63 bytes.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

/// This machine and PID namespace (host name, boot id, `/proc/self/ns/pid`), as a string
/// two processes share only when a PID means the same process to both; `None` where that
/// cannot be told (no Linux `/proc`).
pub fn this_host() -> Option<String> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let pid_ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    Some(format!(
        "{} {} {}",
        hostname.trim(),
        boot_id.trim(),
        pid_ns.to_string_lossy()
    ))
}

/// Whether process `pid` of `host` (a [`this_host`]) is known to be gone: it ran here and
/// no such process runs now. A process of another machine, or of any machine where this
/// cannot be told, is never known to be gone.
pub fn process_gone(host: &str, pid: u32) -> bool {
    this_host().is_some_and(|here| here == host)
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The comment a scratch database carries while it exists: who made it, so that another
/// run can tell a leftover of a killed process from a database in use.
const MADE_BY: &str = "goodgo scratch database of pid ";

fn made_by_comment() -> Option<String> {
    Some(format!(
        "{MADE_BY}{} on {}",
        std::process::id(),
        this_host()?
    ))
}

/// The process and host a [`made_by_comment`] names.
fn parse_made_by(comment: &str) -> Option<(u32, &str)> {
    let (pid, host) = comment.strip_prefix(MADE_BY)?.split_once(" on ")?;
    Some((pid.parse().ok()?, host))
}

/// A throwaway database: created under a [`unique_name`] on a server, dropped by
/// [`Scratch::remove`] (async, so it is not a `Drop`). It carries a comment naming the
/// process that made it; the next one made with the same prefix drops those a killed
/// process (kill -9, a lost machine's power) left behind.
#[derive(Debug)]
pub struct Scratch {
    server: Target,
    /// The database's own target (same server, user and password).
    pub target: Target,
    /// The leftovers dropped before this one was made: databases with the same prefix that
    /// a process of this machine made and no longer runs, and nobody is connected to.
    pub swept: Vec<String>,
}

/// Drops the `{prefix}_…` databases on `server`'s server that a gone process of this
/// machine made (see [`process_gone`]) and no session uses; their names. A failure to list
/// or drop is not an error: the leftovers stay for a later run.
pub async fn sweep(server: &Target, prefix: &str) -> Vec<String> {
    let Ok(client) = server.connect().await else {
        return Vec::new();
    };
    let rows = client
        .query(
            "SELECT d.datname::text, pg_catalog.shobj_description(d.oid, 'pg_database')
               FROM pg_catalog.pg_database d
              WHERE left(d.datname, length($1)) = $1
                AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a WHERE a.datid = d.oid)",
            &[&format!("{prefix}_")],
        )
        .await
        .unwrap_or_default();
    drop(client);
    let mut swept = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        let comment: Option<String> = row.get(1);
        let gone = comment
            .as_deref()
            .and_then(parse_made_by)
            .is_some_and(|(pid, host)| process_gone(host, pid));
        if gone && drop_database(server, &name).await.is_ok() {
            swept.push(name);
        }
    }
    swept
}

/// Marks database `name` as made by this process (see [`made_by_comment`]); nothing where
/// the process cannot be told apart from another machine's (it is then never swept).
async fn mark(server: &Target, name: &str) -> Result<(), DbError> {
    match made_by_comment() {
        Some(comment) => set_comment(server, name, Some(&comment)).await,
        None => Ok(()),
    }
}

impl Scratch {
    /// Creates `{prefix}_…` on `server`'s server, from `template` (see [`create_database`]).
    pub async fn create(
        server: &Target,
        prefix: &str,
        template: Option<&str>,
    ) -> Result<Scratch, DbError> {
        let name = unique_name(prefix);
        let server = server.maintenance(&name);
        let swept = sweep(&server, prefix).await;
        create_database(&server, &name, template).await?;
        Scratch::made(server, name, swept).await
    }

    /// Creates `{prefix}_…` on `server`'s server with `like`'s encoding and locale (see
    /// [`create_database_like`]); with what it got instead of the locale, if not it.
    pub async fn create_like(
        server: &Target,
        prefix: &str,
        like: &TextSettings,
    ) -> Result<(Scratch, Option<String>), DbError> {
        let name = unique_name(prefix);
        let server = server.maintenance(&name);
        let swept = sweep(&server, prefix).await;
        let instead = create_database_like(&server, &name, like).await?;
        Ok((Scratch::made(server, name, swept).await?, instead))
    }

    /// The scratch database `name`, just created on `server`'s server: marked as this
    /// process's (dropped again if that fails).
    async fn made(server: Target, name: String, swept: Vec<String>) -> Result<Scratch, DbError> {
        if let Err(e) = mark(&server, &name).await {
            let _ = drop_database(&server, &name).await;
            return Err(e);
        }
        let target = server.with_dbname(&name);
        Ok(Scratch {
            server,
            target,
            swept,
        })
    }

    /// Unmarks the database, which is to be kept (renamed, say): from then on no other run
    /// drops it as a leftover. Do this before anything that makes it the only copy of the
    /// data (dropping the database it replaces).
    pub async fn unmark(&self) -> Result<(), DbError> {
        set_comment(&self.server, &self.name(), None).await
    }

    /// The database's name.
    pub fn name(&self) -> String {
        self.target.dbname()
    }

    /// Drops the database, ending its sessions.
    pub async fn remove(self) -> Result<(), DbError> {
        drop_database(&self.server, &self.name()).await
    }
}

/// A database for one test, made and dropped without the caller's async runtime: created
/// by [`TestDatabase::create`], dropped (with its sessions) when it goes out of scope. Its
/// work runs on a thread of its own, so it is usable from plain and from async tests.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its name, `{prefix}_{pid}_{nanos}_{n}` (see [`unique_name`]).
    pub name: String,
    /// Its URL, to hand to a program under test.
    pub url: String,
    /// Its target, to connect to.
    pub target: Target,
    server: Target,
}

impl TestDatabase {
    /// Creates a database named after `prefix` on the server `server_url` points at.
    pub fn create(server_url: &str, prefix: &str) -> Result<TestDatabase, DbError> {
        let server = Target::parse(server_url)?;
        let name = unique_name(prefix);
        let server = server.maintenance(&name);
        blocking(async {
            drop_database(&server, &name).await?;
            create_database(&server, &name, None).await
        })?;
        let target = server.with_dbname(&name);
        Ok(TestDatabase {
            url: target.url.clone(),
            name,
            target,
            server,
        })
    }

    /// Runs `sql` (one or more statements) and returns the rows it answers as `psql -A -t`
    /// prints them: one line per row, columns separated by `|`, NULL as nothing, booleans
    /// as `t`/`f`; no trailing newline.
    pub fn sql(&self, sql: &str) -> Result<String, DbError> {
        let target = self.target.clone();
        let sql = sql.to_string();
        blocking(async move {
            let client = target.connect().await?;
            let messages = client
                .simple_query(&sql)
                .await
                .map_err(|e| DbError::pg(format!("running {sql}"), e))?;
            let mut lines: Vec<String> = Vec::new();
            for message in &messages {
                if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                    let cells: Vec<&str> =
                        (0..row.len()).map(|i| row.get(i).unwrap_or("")).collect();
                    lines.push(cells.join("|"));
                }
            }
            Ok(lines.join("\n"))
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = blocking(async move { drop_database(&server, &name).await });
    }
}

/// Runs `work` to completion on a thread with its own runtime (a runtime cannot be
/// blocked on from inside another).
fn blocking<T: Send>(
    work: impl std::future::Future<Output = Result<T, DbError>> + Send,
) -> Result<T, DbError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| DbError::Runtime { source })?;
                runtime.block_on(work)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
