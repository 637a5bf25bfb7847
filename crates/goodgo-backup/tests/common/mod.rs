//! What the backup crate's tests share: a database holding rows worth backing up, the
//! PostgreSQL tools, an async runtime like the CLI's, and a restore checked against a
//! digest of every table computed independently of goodgo's own table hash.

#![allow(dead_code)] // each test file uses its own part of this

use std::path::PathBuf;

use goodgo_backup::crypt::Identity;
use goodgo_backup::store::Store;
use goodgo_backup::{Event, Tools, check};
use goodgo_db::admin::Target;
use goodgo_testkit::{TestDb, table_digests};

/// Where the PostgreSQL binaries the test server runs live.
pub fn tools() -> Tools {
    let dir = std::env::var_os("GOODGO_TEST_PG_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    Tools {
        pg_dump: dir.join("pg_dump"),
        pg_restore: dir.join("pg_restore"),
    }
}

/// Runs `work` on a current-thread runtime, as `goodgo backup` does.
pub fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// Progress is not looked at.
pub fn quiet(_: Event) {}

/// A database with a few tables: text with quotes and NULLs, numerics, arrays, a foreign
/// key, and (with `big_rows` > 0) one table of hex text that compresses to about half of
/// its 100 bytes a row.
pub fn database(test: &str, big_rows: u32) -> Option<TestDb> {
    let db = TestDb::create(test)?;
    db.sql(
        "CREATE TABLE author(id int PRIMARY KEY, name text NOT NULL, born date);
         CREATE TABLE book(id bigserial PRIMARY KEY, author_id int REFERENCES author(id),
                           title text, price numeric(8,2), tags text[]);
         INSERT INTO author SELECT g, 'Author ' || g || E' \\u00e9''s', CASE WHEN g % 7 = 0 THEN NULL ELSE date '1950-01-01' + g END
           FROM generate_series(1, 500) g;
         INSERT INTO book(author_id, title, price, tags)
           SELECT 1 + g % 500, CASE WHEN g % 11 = 0 THEN NULL ELSE 'Title ' || md5(g::text) END,
                  (g % 1000) / 7.0, ARRAY['t' || g % 5, 't' || g % 3]
           FROM generate_series(1, 20000) g;
         CREATE TABLE blob_rows(id int PRIMARY KEY, body text NOT NULL);",
    );
    if big_rows > 0 {
        db.sql(&format!(
            "INSERT INTO blob_rows SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
             FROM generate_series(1, {big_rows}) g"
        ));
    }
    Some(db)
}

/// The database `name` on `db`'s server, created empty (dropped first if it exists).
pub fn empty_database(db: &TestDb, name: &str) -> Target {
    let server = Target::parse(db.server_url()).unwrap();
    let name = name.to_string();
    let s = server.clone();
    block_on(async move {
        goodgo_db::admin::drop_database(&s, &name).await?;
        goodgo_db::admin::create_database(&s, &name, None).await?;
        Ok::<_, goodgo_db::DbError>(s.with_dbname(&name))
    })
    .unwrap()
}

/// Drops database `target`.
pub fn drop_database(target: &Target) {
    let name = target.dbname();
    let server = target.maintenance(&name);
    block_on(async move { goodgo_db::admin::drop_database(&server, &name).await }).unwrap();
}

/// Checks backup `id` and writes its dump (opened with `identity`) into `into`, on two
/// threads.
pub fn materialize(
    store: &Store,
    id: &str,
    identity: Option<&Identity>,
    into: &std::path::Path,
) -> Result<goodgo_backup::Manifest, goodgo_backup::BackupError> {
    block_on(check::materialize(store, id, identity, into, 2, &quiet))
}

/// Restores backup `id` (opened with `identity`) into a new database beside `db`'s and
/// checks that it holds the same rows as `db`, by a digest goodgo does not compute; the
/// restored database is dropped again.
pub fn restore_matches(store: &Store, id: &str, identity: Option<&Identity>, db: &TestDb) {
    let target = empty_database(db, &format!("{}_restored", db.name));
    let scratch = tempfile::tempdir().unwrap();
    let m = materialize(store, id, identity, scratch.path()).unwrap();
    assert!(scratch.path().join("toc.dat").is_file());
    block_on(check::restore_checked(
        scratch.path(),
        &m,
        &target,
        &tools(),
        2,
        false,
        &quiet,
    ))
    .unwrap();
    assert_eq!(table_digests(&target.url), table_digests(&db.url));
    drop_database(&target);
}

/// The largest file of a backup (its biggest table's data).
pub fn largest(m: &goodgo_backup::Manifest) -> &goodgo_backup::manifest::FileEntry {
    m.files.iter().max_by_key(|f| f.size).unwrap()
}
