//! Migrations outside a transaction against a real PostgreSQL (`GOODGO_TEST_DATABASE_URL`,
//! started by `cargo xtask test`): `CREATE INDEX CONCURRENTLY` applied between ordinary
//! migrations and recorded so `status` and a rerun agree; a failed concurrent build leaves
//! the migration unrecorded, names the invalid index and how to remove it, and applies once
//! fixed.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

use std::path::Path;

use goodgo_db::admin::TestDatabase;
use goodgo_db::runner::{self, State};
use goodgo_db::{DbError, migrations};
use goodgo_diag::Diagnostic;

mod common;
use common::server;

fn write(dir: &Path, name: &str, sql: &str) -> Vec<migrations::MigrationFile> {
    std::fs::write(dir.join(name), sql).unwrap();
    migrations::load(dir, Path::new("migrations")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_index_builds_apply_between_transactional_migrations() {
    let Some(server) = server("concurrent_index_builds") else {
        return;
    };
    let db = TestDatabase::create(&server.url, "gg_outside").unwrap();
    let mut client = db.target.connect().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "V1__people.sql",
        "CREATE TABLE people (id int PRIMARY KEY, email text);\n\
         INSERT INTO people SELECT g, 'p' || g || '@x.test' FROM generate_series(1, 500) g;\n",
    );
    // Detected: no directive, yet PostgreSQL would refuse it in a transaction.
    write(
        dir.path(),
        "V2__people_email.sql",
        "-- an index built without locking out writes; squawk asks for it\n\
         CREATE INDEX CONCURRENTLY IF NOT EXISTS people_email ON people (email);\n",
    );
    // Declared, with two statements ('…;…' in a string does not split).
    write(
        dir.path(),
        "V3__more.sql",
        "-- no-transaction\n\
         CREATE INDEX CONCURRENTLY people_id_email ON people (id, email);\n\
         COMMENT ON INDEX people_id_email IS 'kept; for lookups';\n",
    );
    let files = write(
        dir.path(),
        "V4__after.sql",
        "ALTER TABLE people ADD COLUMN name text;\n",
    );
    let report = runner::migrate(&mut client, &files, None, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        report.applied,
        ["V1__people", "V2__people_email", "V3__more", "V4__after"]
    );
    assert_eq!(
        db.sql("SELECT string_agg(indexrelid::regclass::text || ':' || indisvalid, ',' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = 'people'::regclass")
            .unwrap(),
        "people_email:true,people_id_email:true,people_pkey:true"
    );
    assert_eq!(
        db.sql("SELECT obj_description('people_id_email'::regclass)")
            .unwrap(),
        "kept; for lookups"
    );
    // Recorded as refinery records: status agrees and a rerun applies nothing.
    let history = runner::applied(&client).await.unwrap();
    assert!(
        runner::status(&files, &history)
            .iter()
            .all(|r| r.state == State::Applied)
    );
    let again = runner::migrate(&mut client, &files, None, &|_| {})
        .await
        .unwrap();
    assert!(again.applied.is_empty(), "{:?}", again.applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_concurrent_build_is_not_recorded_and_names_the_invalid_index() {
    let Some(server) = server("a_failed_concurrent_build") else {
        return;
    };
    let db = TestDatabase::create(&server.url, "gg_outside_fail").unwrap();
    let mut client = db.target.connect().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "V1__t.sql",
        "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1), (1);\n",
    );
    let bad = "-- no-transaction\n\
               CREATE INDEX CONCURRENTLY t_plain ON t (x);\n\
               CREATE UNIQUE INDEX CONCURRENTLY t_x ON t (x);\n";
    let files = write(dir.path(), "V2__unique.sql", bad);
    let err = runner::migrate(&mut client, &files, None, &|_| {})
        .await
        .unwrap_err();
    let DbError::OutsideTransaction(failure) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        (failure.line, failure.ran, failure.total),
        (3, 1, 2),
        "{err}"
    );
    assert_eq!(failure.invalid, ["t_x".to_string()]);
    assert!(
        err.to_string()
            .starts_with("migrations/V2__unique.sql:3:1: "),
        "{err}"
    );
    let hint = err.hint().unwrap();
    assert!(
        hint.contains("DROP INDEX CONCURRENTLY t_x;")
            && hint.contains("first 1 of 2 statements ran"),
        "{hint}"
    );
    let history = runner::applied(&client).await.unwrap();
    assert_eq!(
        history.iter().map(|a| a.version).collect::<Vec<_>>(),
        [1],
        "V2 is not recorded"
    );

    // Fixed (data and file, idempotent now): applied and recorded.
    db.sql("DROP INDEX CONCURRENTLY t_x").unwrap();
    db.sql("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)")
        .unwrap();
    let files = write(
        dir.path(),
        "V2__unique.sql",
        "-- no-transaction\n\
         CREATE INDEX CONCURRENTLY IF NOT EXISTS t_plain ON t (x);\n\
         CREATE UNIQUE INDEX CONCURRENTLY t_x ON t (x);\n",
    );
    let report = runner::migrate(&mut client, &files, None, &|_| {})
        .await
        .unwrap();
    assert_eq!(report.applied, ["V2__unique"]);
    assert_eq!(
        db.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x'::regclass")
            .unwrap(),
        "t"
    );
}
