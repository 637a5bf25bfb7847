//! Throwaway databases: a unique name, an async [`Scratch`] for jobs such as `db verify`,
//! and a [`TestDatabase`] for tests, which drops itself and reads query results as text
//! (as `psql -A -t` prints them), so tests need neither `psql` nor an async runtime.

use crate::DbError;
use crate::admin::{Target, TextSettings, create_database, create_database_like, drop_database};

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

/// A throwaway database: created under a [`unique_name`] on a server, dropped by
/// [`Scratch::remove`] (async, so it is not a `Drop`; a leftover is named by its prefix).
#[derive(Debug)]
pub struct Scratch {
    server: Target,
    /// The database's own target (same server, user and password).
    pub target: Target,
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
        create_database(&server, &name, template).await?;
        let target = server.with_dbname(&name);
        Ok(Scratch { server, target })
    }

    /// Creates `{prefix}_…` on `server`'s server with `like`'s encoding and locale (see
    /// [`create_database_like`]); with whether the locale was kept.
    pub async fn create_like(
        server: &Target,
        prefix: &str,
        like: &TextSettings,
    ) -> Result<(Scratch, bool), DbError> {
        let name = unique_name(prefix);
        let server = server.maintenance(&name);
        let kept = create_database_like(&server, &name, like).await?;
        let target = server.with_dbname(&name);
        Ok((Scratch { server, target }, kept))
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
