//! goodgo-db against a real PostgreSQL server (`GOODGO_TEST_DATABASE_URL`, started by
//! `cargo xtask test`): databases created and dropped under any name, errors that say what
//! the server said and keep their cause, and `verify` that finds real drift only.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

use std::error::Error as _;
use std::path::{Path, PathBuf};

use goodgo_db::admin::{self, Scratch, Target, TestDatabase};
use goodgo_db::{DbError, migrations, runner, schema};
use goodgo_diag::{Class, Diagnostic};

mod common;
use common::server;

fn pg_dump() -> PathBuf {
    std::env::var_os("GOODGO_TEST_PG_BIN_DIR")
        .map(|dir| Path::new(&dir).join("pg_dump"))
        .unwrap_or_else(|| "pg_dump".into())
}

/// A migrations folder with these files.
fn migrations_dir(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<migrations::MigrationFile>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in files {
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    let loaded = migrations::load(dir.path(), Path::new("migrations")).unwrap();
    (dir, loaded)
}

/// The one value `sql` selects.
async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    client: &tokio_postgres::Client,
    sql: &str,
) -> T {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// Every message of an error's chain, outermost first.
fn chain(err: &DbError) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(c) = cause {
        out.push(c.to_string());
        cause = c.source();
    }
    out
}

#[tokio::test]
async fn databases_with_any_name_are_created_copied_and_dropped() {
    let Some(server) = server("databases_with_any_name") else {
        return;
    };
    let suffix = admin::unique_name("x");
    for base in [
        "CamelCase",
        "with space",
        "with-hyphen",
        "quo\"te",
        "semi;colon'--",
        "eq=uals",
    ] {
        let name = format!("gg {base} {suffix}");
        let copy = format!("{name} copy");
        admin::create_database(&server, &name, None).await.unwrap();
        assert!(
            admin::database_exists(&server, &name).await.unwrap(),
            "{name}"
        );
        let db = server.with_dbname(&name);
        let client = db.connect().await.unwrap();
        client
            .batch_execute("CREATE TABLE from_template (id int)")
            .await
            .unwrap();
        drop(client);
        // libpq's tools reach it too, and so does a client given its URL.
        let dump = schema::dump_schema(&pg_dump(), &db).unwrap();
        assert!(dump.contains("CREATE TABLE public.from_template"), "{dump}");
        Target::parse(&db.url).unwrap().connect().await.unwrap();

        admin::create_database(&server, &copy, Some(&name))
            .await
            .unwrap();
        let copied = server.with_dbname(&copy).connect().await.unwrap();
        let has_table: bool = one(&copied, "SELECT to_regclass('from_template') IS NOT NULL").await;
        assert!(has_table, "{copy} is a copy of its template {name}");

        // A session still connected does not stop the drop (WITH (FORCE)).
        admin::drop_database(&server, &copy).await.unwrap();
        assert!(copied.is_closed() || copied.simple_query("SELECT 1").await.is_err());
        admin::drop_database(&server, &name).await.unwrap();
        // IF EXISTS: dropping again is nothing.
        admin::drop_database(&server, &name).await.unwrap();
        for n in [&name, &copy] {
            assert!(!admin::database_exists(&server, n).await.unwrap(), "{n}");
        }
    }

    // A throwaway database, from the maintenance target of the database it replaces.
    let scratch = Scratch::create(&server, "gg_scratch", None).await.unwrap();
    let name = scratch.name();
    assert!(name.starts_with("gg_scratch_"), "{name}");
    assert_eq!(scratch.target.maintenance(&name).dbname(), "postgres");
    scratch.target.connect().await.unwrap();
    scratch.remove().await.unwrap();
    assert!(!admin::database_exists(&server, &name).await.unwrap());
}

#[tokio::test]
async fn a_scratch_database_left_by_a_killed_process_is_dropped_by_the_next() {
    let Some(server) = server("a_scratch_database_left_by_a_killed_process") else {
        return;
    };
    let client = server.connect().await.unwrap();
    let comment = |name: String| {
        let client = &client;
        async move {
            let comment: Option<String> = client
                .query_one(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
                    &[&name],
                )
                .await
                .unwrap()
                .get(0);
            comment
        }
    };
    let in_use = Scratch::create(&server, "gg_sweep", None).await.unwrap();
    // In use from before it is marked as a gone process's.
    let session = in_use.target.connect().await.unwrap();
    let elsewhere = Scratch::create(&server, "gg_sweep", None).await.unwrap();
    let left = Scratch::create(&server, "gg_sweep", None).await.unwrap();
    assert!(left.swept.is_empty());
    // Marked as this process's while it runs.
    let mark = comment(left.name()).await.unwrap();
    assert!(
        mark.starts_with(&format!(
            "goodgo scratch database of pid {} on ",
            std::process::id()
        )),
        "{mark}"
    );
    // Now as a process of this machine that is gone, or of another machine.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let host = goodgo_db::scratch::this_host().unwrap();
    for (scratch, host) in [
        (&left, host.as_str()),
        (&in_use, host.as_str()),
        (&elsewhere, "elsewhere"),
    ] {
        admin::set_comment(
            &server,
            &scratch.name(),
            Some(&format!(
                "goodgo scratch database of pid {} on {host}",
                gone.id()
            )),
        )
        .await
        .unwrap();
    }

    // The next one with that prefix drops the leftover nobody uses, and not the others
    // (a leftover of an earlier, aborted run of this test may go too).
    let next = Scratch::create(&server, "gg_sweep", None).await.unwrap();
    assert!(next.swept.contains(&left.name()), "{:?}", next.swept);
    for kept in [&in_use, &elsewhere] {
        assert!(!next.swept.contains(&kept.name()), "{:?}", next.swept);
    }
    assert!(!admin::database_exists(&server, &left.name()).await.unwrap());
    for kept in [&in_use, &elsewhere] {
        assert!(admin::database_exists(&server, &kept.name()).await.unwrap());
    }

    // Unmarked to be kept, it is no longer a scratch database.
    next.unmark().await.unwrap();
    assert_eq!(comment(next.name()).await, None);
    let name = next.name();
    drop(session);
    admin::drop_database(&server, &name).await.unwrap();
    in_use.remove().await.unwrap();
    elsewhere.remove().await.unwrap();
}

/// Fails the test unless database `name` on `server` has `want`'s encoding and locale;
/// then drops it.
async fn assert_settings_then_drop(server: &Target, name: &str, want: &admin::TextSettings) {
    let client = server.with_dbname(name).connect().await.unwrap();
    assert_eq!(
        &admin::text_settings(&client).await.unwrap(),
        want,
        "{name}"
    );
    drop(client);
    admin::drop_database(server, name).await.unwrap();
}

#[tokio::test]
async fn a_database_is_created_like_another_and_without_its_locale_with_c() {
    let Some(server) = server("created_like") else {
        return;
    };
    let like = admin::TextSettings {
        encoding: "LATIN1".into(),
        lc_collate: "C".into(),
        lc_ctype: "C".into(),
        provider: None,
        provider_locale: None,
    };
    let name = admin::unique_name("gg_like");
    let instead = admin::create_database_like(&server, &name, &like)
        .await
        .unwrap();
    assert_eq!(instead, None);
    assert_settings_then_drop(&server, &name, &like).await;

    // A locale this server does not have: the encoding is kept, the locale is C.
    let elsewhere = admin::TextSettings {
        encoding: "LATIN1".into(),
        lc_collate: "xx_NOWHERE.ISO-8859-1".into(),
        lc_ctype: "xx_NOWHERE.ISO-8859-1".into(),
        provider: None,
        provider_locale: None,
    };
    let instead = admin::create_database_like(&server, &name, &elsewhere)
        .await
        .unwrap();
    assert_eq!(instead.as_deref(), Some("the C locale"));
    assert_settings_then_drop(&server, &name, &like).await;

    // The ICU provider (PostgreSQL 15 and later, built with ICU) and its locale are read
    // and given too.
    let client = server.connect().await.unwrap();
    let icu_here: bool = one(
        &client,
        "SELECT current_setting('server_version_num')::int >= 150000
            AND EXISTS (SELECT FROM pg_collation WHERE collprovider = 'i')",
    )
    .await;
    drop(client);
    if !icu_here {
        return;
    }
    let icu = admin::TextSettings {
        encoding: "UTF8".into(),
        lc_collate: "C".into(),
        lc_ctype: "C".into(),
        provider: Some("icu".into()),
        provider_locale: Some("de-DE".into()),
    };
    assert_eq!(icu.describe_locale(), "ICU locale de-DE");
    let instead = admin::create_database_like(&server, &name, &icu)
        .await
        .unwrap();
    assert_eq!(instead, None);
    assert_settings_then_drop(&server, &name, &icu).await;
    // A provider this server does not have: the libc locale.
    let unknown_provider = admin::TextSettings {
        provider: Some("nosuch".into()),
        ..icu.clone()
    };
    let instead = admin::create_database_like(&server, &name, &unknown_provider)
        .await
        .unwrap();
    assert_eq!(instead.as_deref(), Some("the libc locale C"));
    let libc = admin::TextSettings {
        provider: None,
        provider_locale: None,
        ..icu
    };
    assert_settings_then_drop(&server, &name, &libc).await;

    // An encoding the server does not know is the server's error, naming the database.
    let unknown = admin::TextSettings {
        encoding: "NO_SUCH_ENCODING".into(),
        ..like
    };
    let err = admin::create_database_like(&server, &name, &unknown)
        .await
        .unwrap_err();
    let text = chain(&err).join(": ");
    assert!(
        text.contains(&format!("creating database {name}")),
        "{text}"
    );
    assert!(text.contains("NO_SUCH_ENCODING"), "{text}");
    assert!(!admin::database_exists(&server, &name).await.unwrap());
}

#[tokio::test]
async fn errors_say_what_the_server_said_and_keep_their_cause() {
    let Some(server) = server("errors_keep_their_cause") else {
        return;
    };

    // A URL that does not parse is bad input, shown without its password.
    let err = Target::parse("postgres://me:secret@localhost:notaport/db").unwrap_err();
    assert!(matches!(err, DbError::BadUrl { .. }), "{err:?}");
    assert_eq!(err.class(), Some(Class::Input));
    assert!(err.hint().is_some());
    let text = chain(&err).join(" | ");
    assert!(
        !text.contains("secret") && text.contains("me:***@"),
        "{text}"
    );

    // No server there: a failed job, the I/O error kept below the client's.
    let nobody = Target::parse("postgres://nobody@127.0.0.1:1/db").unwrap();
    let err = nobody.connect().await.unwrap_err();
    assert!(matches!(err, DbError::Connect { .. }), "{err:?}");
    assert_eq!(err.class(), Some(Class::Failed));
    let messages = chain(&err);
    assert!(
        messages[0].starts_with(
            "cannot connect to postgres://nobody@127.0.0.1:1/db: error connecting to server"
        ),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .skip(1)
            .any(|m| messages[0].ends_with(m.as_str())),
        "each cause ends the message above it, so the renderer says it once: {messages:?}"
    );
    let DbError::Connect { source, .. } = &err else {
        unreachable!()
    };
    assert!(source.postgres().is_some());

    // A statement the server refuses: its message, not tokio-postgres's "db error".
    let scratch = Scratch::create(&server, "gg_errors", None).await.unwrap();
    let name = scratch.name();
    let err = admin::create_database(&server, &name, None)
        .await
        .unwrap_err();
    let messages = chain(&err);
    assert_eq!(
        messages,
        [
            format!("creating database {name}: database \"{name}\" already exists"),
            format!("database \"{name}\" already exists"),
        ]
    );
    assert_eq!(
        err.server_report().map(|r| r.code().code()),
        Some("42P04"),
        "the server's report is kept"
    );
    assert_eq!(err.class(), Some(Class::Failed));

    // A migration the server rejects: at its place in the file, bad input, the ones
    // before it applied.
    let (_dir, files) = migrations_dir(&[
        ("V1__good.sql", "CREATE TABLE good (id int);\n"),
        (
            "V2__bad.sql",
            "-- V2\nCREATE TABLE fine (id int);\nSELECT nope FROM good;\n",
        ),
    ]);
    let mut client = scratch.target.connect().await.unwrap();
    let err = runner::migrate(&mut client, &files, None, &|_| {})
        .await
        .unwrap_err();
    let DbError::Rejected {
        path,
        line,
        col,
        migration,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (path.as_path(), *line, *col, migration.as_str()),
        (Path::new("migrations/V2__bad.sql"), 3, 8, "V2__bad")
    );
    let location = err.location().unwrap();
    assert_eq!(location.message, "column \"nope\" does not exist");
    assert_eq!(
        chain(&err),
        [
            "migrations/V2__bad.sql:3:8: column \"nope\" does not exist",
            "column \"nope\" does not exist"
        ]
    );
    assert_eq!(err.class(), Some(Class::Input));
    assert!(err.hint().unwrap().contains("V2__bad was not applied"));
    let history = runner::applied(&client).await.unwrap();
    assert_eq!(history.len(), 1);
    drop(client);
    scratch.remove().await.unwrap();
}

/// `verify` compares with a scratch database on the same server: what a server build sets
/// on every column by itself is not drift, a column added by hand is.
#[tokio::test]
async fn verify_reports_real_drift_only() {
    let Some(server) = server("verify_reports_real_drift_only") else {
        return;
    };
    let (_dir, files) = migrations_dir(&[
        (
            "V1__listings.sql",
            "CREATE TABLE listings (id bigint PRIMARY KEY, title text NOT NULL, \"Odd Name\" text);\n",
        ),
        (
            "V2__tuned.sql",
            "ALTER TABLE listings ALTER COLUMN title SET STATISTICS 500;\n",
        ),
    ]);
    let target = Scratch::create(&server, "gg_verify_target", None)
        .await
        .unwrap();
    let mut client = target.target.connect().await.unwrap();
    runner::migrate(&mut client, &files, None, &|_| {})
        .await
        .unwrap();
    let verified = schema::verify(&pg_dump(), &target.target, &files)
        .await
        .unwrap();
    assert_eq!(verified.drift(&target.name()), None);
    assert!(
        verified.expected.contains("SET STATISTICS 500"),
        "{}",
        verified.expected
    );

    // What another build of the server writes for every column: options and compression.
    client
        .batch_execute(
            "ALTER TABLE listings ALTER COLUMN id SET (n_distinct = -1), \
             ALTER COLUMN title SET (n_distinct = 100), ALTER COLUMN title SET COMPRESSION pglz, \
             ALTER COLUMN \"Odd Name\" SET (n_distinct = 5)",
        )
        .await
        .unwrap();
    let verified = schema::verify(&pg_dump(), &target.target, &files)
        .await
        .unwrap();
    assert_eq!(verified.drift(&target.name()), None, "{}", verified.actual);

    // Real drift: a column, and a changed statistics target.
    client
        .batch_execute(
            "ALTER TABLE listings ADD COLUMN handmade text, ALTER COLUMN title SET STATISTICS 50",
        )
        .await
        .unwrap();
    let verified = schema::verify(&pg_dump(), &target.target, &files)
        .await
        .unwrap();
    let drift = verified.drift(&target.name()).unwrap();
    assert!(drift.contains("+    handmade text"), "{drift}");
    assert!(
        drift.contains("+ALTER TABLE ONLY public.listings ALTER COLUMN title SET STATISTICS 50;"),
        "{drift}"
    );
    drop(client);
    target.remove().await.unwrap();

    let client = server.connect().await.unwrap();
    let left: i64 = one(
        &client,
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'goodgo_verify_{}_%'",
            std::process::id()
        ),
    )
    .await;
    assert_eq!(left, 0, "the scratch databases are dropped");
}

/// A test's own database without psql or an async runtime: created, queried as text,
/// dropped at the end of scope, also from inside an async test.
#[test]
fn a_test_database_drops_itself() {
    let Some(server) = server("a_test_database_drops_itself") else {
        return;
    };
    let db = TestDatabase::create(&server.url, "gg Test-DB").unwrap();
    assert!(db.name.starts_with("gg Test-DB_"), "{}", db.name);
    assert_eq!(Target::parse(&db.url).unwrap().dbname(), db.name);
    assert_eq!(
        db.sql("CREATE TABLE t (a int, b text, c bool); INSERT INTO t VALUES (1, NULL, true), (2, 'x|y', false); SELECT * FROM t ORDER BY a")
            .unwrap(),
        "1||t\n2|x|y|f"
    );
    assert_eq!(db.sql("SELECT count(*) FROM t").unwrap(), "2");
    let err = db.sql("SELECT nope").unwrap_err();
    assert!(
        err.to_string().ends_with("column \"nope\" does not exist"),
        "{err}"
    );
    let name = db.name.clone();
    let exists = |name: &str| {
        let server = server.clone();
        let name = name.to_string();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move { admin::database_exists(&server, &name).await.unwrap() })
    };
    assert!(exists(&name));
    drop(db);
    assert!(!exists(&name), "dropped at the end of scope");

    // Inside an async test (a runtime of its own is started on another thread).
    let name = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let db = TestDatabase::create(&server.url, "gg_async").unwrap();
            db.target.connect().await.unwrap();
            db.name.clone()
        });
    assert!(!exists(&name));
}
