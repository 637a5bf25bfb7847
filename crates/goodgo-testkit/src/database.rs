//! A database of its own for one test, on the PostgreSQL server `cargo xtask test` started
//! (`GOODGO_TEST_DATABASE_URL`): created and dropped through `goodgo_db::admin`, with a
//! name no other test (or test run) uses.

use std::sync::atomic::{AtomicUsize, Ordering};

use goodgo_db::admin::{self, Target};

/// A database created for one test and dropped (sessions ended) when this drops.
pub struct TestDb {
    /// The database's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    server: Target,
}

impl TestDb {
    /// A new, empty database named after `test`. `None` (with a visible skip line) only
    /// outside `cargo xtask test`, where no server is provided.
    pub fn create(test: &str) -> Option<TestDb> {
        let Ok(server) = std::env::var("GOODGO_TEST_DATABASE_URL") else {
            assert!(
                !crate::strict(),
                "cargo xtask test provides GOODGO_TEST_DATABASE_URL"
            );
            crate::skip(test, "no GOODGO_TEST_DATABASE_URL (run `cargo xtask test`)");
            return None;
        };
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "gg_{}_{}_{}",
            test.to_lowercase(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let server = Target::parse(&server).unwrap();
        let url = server.with_dbname(&name).url;
        let db = TestDb { name, url, server };
        let (server, name) = (db.server.clone(), db.name.clone());
        block_on(async move {
            admin::drop_database(&server, &name).await?;
            admin::create_database(&server, &name, None).await
        })
        .unwrap();
        Some(db)
    }

    /// The server's own URL (its maintenance database).
    pub fn server_url(&self) -> &str {
        &self.server.url
    }

    /// Runs `sql` (one or more statements) in this database and returns the rows of the
    /// last one as psql's unaligned, tuples-only output would: columns joined by `|`,
    /// rows by newlines, NULL as nothing.
    pub fn sql(&self, sql: &str) -> String {
        query(&self.url, sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = block_on(async move { admin::drop_database(&server, &name).await });
    }
}

/// Every user table of the database at `url`, with its row count and an md5 of its rows
/// sorted as text, one line each: what a restore must give back, computed without any of
/// goodgo's own code.
pub fn table_digests(url: &str) -> String {
    let tables = query(
        url,
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    );
    tables
        .lines()
        .map(|t| {
            let row = query(
                url,
                &format!(
                    "SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM {t} AS x"
                ),
            );
            format!("{t} {row}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `sql` on the database at `url`; the rows as [`TestDb::sql`] gives them.
pub fn query(url: &str, sql: &str) -> String {
    let target = Target::parse(url).unwrap();
    let sql = sql.to_string();
    let messages = block_on(async move {
        let client = target.connect().await?;
        Ok::<_, goodgo_db::DbError>(client.simple_query(&sql).await)
    })
    .unwrap()
    .unwrap_or_else(|e| panic!("{e}"));
    let mut rows: Vec<String> = Vec::new();
    for message in messages {
        match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => rows.push(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            // A new statement's rows replace the last one's, as psql prints only the last.
            tokio_postgres::SimpleQueryMessage::RowDescription(_) => rows.clear(),
            _ => {}
        }
    }
    rows.join("\n")
}

/// Runs `future` to its end on a runtime of its own, on a thread of its own: callable from
/// plain tests and from inside an async test alike.
pub fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(future)
        })
        .join()
        .unwrap()
    })
}
