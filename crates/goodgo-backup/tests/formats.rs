//! The table hash of each format against a real PostgreSQL: format 3's per-column hash
//! notices a changed value of any type, a value moved between rows and a duplicated row,
//! and does not depend on row order or on the session's time zone; format 5's hashes, taken
//! from pg_dump's files, are those of the tables as the server prints them, whatever the
//! database's output settings; a backup of an older format (1, or 4) is still verified by
//! restoring it, with the hash its version names, and a manifest whose hashes are not the
//! ones its version names is a mismatch.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod common;

use common::{block_on, database, quiet, tools};
use goodgo_backup::load::Copy;
use goodgo_backup::manifest::{MANIFEST, Manifest};
use goodgo_backup::stats::{self, TableHash};
use goodgo_backup::store::{Location, Store};
use goodgo_backup::{BackupError, check, create};
use goodgo_db::admin::Target;

/// `table`'s row count and format-3 hash in `db`.
fn hash_of(db: &Target, table: &str) -> (i64, String) {
    let all = block_on(stats::tables(db, 2, TableHash::Columns)).unwrap();
    let t = all.into_iter().find(|t| t.name == table).unwrap();
    (t.rows, t.hash)
}

#[test]
fn the_column_hash_sees_every_change_and_ignores_row_order_and_time_zone() {
    let Some(db) = goodgo_testkit::TestDb::create("bk_hash") else {
        return;
    };
    db.sql(
        "CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE TABLE t(id int, small smallint, big bigint, name text, code char(4), v varchar(9),
                        at timestamptz, day date, local timestamp, ok boolean, price numeric(8,2),
                        ratio float8, doc jsonb, u uuid, tags text[], m mood, raw bytea, span interval);
         INSERT INTO t SELECT g, g % 100, g::bigint * 1000000007, 'name ' || g, 'c' || g % 10, 'v' || g,
                              timestamptz '2026-01-01 12:00+00' + g * interval '1 hour',
                              date '2026-01-01' + g, timestamp '2026-01-01' + g * interval '1 minute',
                              g % 2 = 0, g / 7.0, g / 3.0, jsonb_build_object('g', g),
                              md5(g::text)::uuid, ARRAY['a' || g, NULL], 'ok', decode(md5(g::text), 'hex'),
                              g * interval '1 second'
                       FROM generate_series(1, 500) g;
         INSERT INTO t(id) VALUES (0);",
    );
    let target = Target::parse(&db.url).unwrap();
    let original = hash_of(&target, "public.t");
    assert_eq!(original.0, 501);
    // Same rows in another physical order, and another session time zone: same hash.
    db.sql("CREATE TABLE t2 AS SELECT * FROM t ORDER BY random(); DROP TABLE t; ALTER TABLE t2 RENAME TO t");
    db.sql(&format!(
        "ALTER DATABASE {} SET timezone = 'Asia/Tokyo'",
        db.name
    ));
    assert_eq!(hash_of(&target, "public.t"), original);

    // An unchanged copy has the same hash: what follows compares like with like.
    db.sql("CREATE TABLE changed AS SELECT * FROM t");
    assert_eq!(hash_of(&target, "public.changed"), original);

    // One changed value in any column, a value moved between rows, a NULL for a value, a
    // duplicated row: another hash.
    for change in [
        "UPDATE {t} SET small = small + 1 WHERE id = 7",
        "UPDATE {t} SET big = big + 1 WHERE id = 7",
        "UPDATE {t} SET name = name || ' ' WHERE id = 7",
        "UPDATE {t} SET code = 'zz' WHERE id = 7",
        "UPDATE {t} SET v = 'w7' WHERE id = 7",
        "UPDATE {t} SET at = at + interval '1 microsecond' WHERE id = 7",
        "UPDATE {t} SET day = day + 1 WHERE id = 7",
        "UPDATE {t} SET local = local + interval '1 second' WHERE id = 7",
        "UPDATE {t} SET ok = NOT ok WHERE id = 7",
        "UPDATE {t} SET price = price + 0.01 WHERE id = 7",
        "UPDATE {t} SET ratio = ratio * (1 + 1e-15) WHERE id = 7",
        "UPDATE {t} SET doc = '{\"g\": 7.0}' WHERE id = 7",
        "UPDATE {t} SET u = md5('x')::uuid WHERE id = 7",
        "UPDATE {t} SET tags = ARRAY['a7'] WHERE id = 7",
        "UPDATE {t} SET m = 'sad' WHERE id = 7",
        "UPDATE {t} SET raw = raw || '\\x00' WHERE id = 7",
        "UPDATE {t} SET span = span + interval '1 day' - interval '24 hours' WHERE id = 7",
        "UPDATE {t} SET name = NULL WHERE id = 7",
        "UPDATE {t} SET name = CASE id WHEN 7 THEN 'name 8' ELSE 'name 7' END WHERE id IN (7, 8)",
        "UPDATE {t} SET small = 0 WHERE id = 0",
        "INSERT INTO {t} SELECT * FROM {t} WHERE id = 7",
    ] {
        // A copy of t, changed.
        db.sql(&format!(
            "DROP TABLE IF EXISTS changed; CREATE TABLE changed AS SELECT * FROM t; {}",
            change.replace("{t}", "changed")
        ));
        let changed = hash_of(&target, "public.changed");
        assert_ne!(changed.1, original.1, "{change}: the hash did not change");
    }
}

#[test]
fn backups_of_older_formats_are_verified_with_their_own_hash() {
    let Some(db) = database("bk_formats", 2_000) else {
        return;
    };
    // Values whose text depends on the session's settings, in a database whose defaults
    // are none of pg_dump's or goodgo's.
    db.sql(&format!(
        "CREATE TABLE printed(at timestamptz, raw bytea, ratio float8, span interval, day date);
         INSERT INTO printed SELECT timestamptz '2026-03-29 00:30+00' + g * interval '1 hour',
                                    decode(md5(g::text), 'hex'), g / 3.0, g * interval '1 day 1 second',
                                    date '2026-01-01' + g
           FROM generate_series(1, 300) g;
         ALTER DATABASE {0} SET timezone = 'Asia/Tokyo';
         ALTER DATABASE {0} SET bytea_output = 'escape';
         ALTER DATABASE {0} SET extra_float_digits = 0;
         ALTER DATABASE {0} SET IntervalStyle = 'sql_standard';
         ALTER DATABASE {0} SET DateStyle = 'SQL, DMY';",
        db.name
    ));
    let dest = tempfile::tempdir().unwrap();
    let store = Store::open(Location::Local(dest.path().to_path_buf())).unwrap();
    let source = Target::parse(&db.url).unwrap();
    let tools = tools();
    let options = create::Options {
        jobs: 2,
        git_commit: None,
        recipients: None,
    };
    let created = block_on(create::create(&source, &tools, &store, &options, &quiet)).unwrap();
    let id = created.manifest.id.clone();
    assert_eq!(created.manifest.format_version, 5);
    // Format 5: what pg_dump wrote is what the server prints now, table by table.
    let copies: Vec<Copy> = created
        .manifest
        .tables
        .iter()
        .map(|t| Copy {
            table: t.name.clone(),
            statement: format!("COPY {} TO STDOUT", t.name),
            size: 0,
        })
        .collect();
    let printed = block_on(stats::copy_lines(&source, 2, &copies)).unwrap();
    assert_eq!(created.manifest.tables, printed);
    assert_eq!(
        printed
            .iter()
            .map(|t| (t.name.as_str(), t.rows))
            .collect::<Vec<_>>(),
        [
            ("public.author", 500),
            ("public.blob_rows", 2_000),
            ("public.book", 20_000),
            ("public.printed", 300)
        ]
    );
    // Restores the backup as its manifest now says, and checks it.
    let verify = || {
        block_on(check::verify_by_restore(
            &store, &id, None, &source, &tools, 2, None, &quiet,
        ))
    };
    verify().unwrap();

    // The same backup as format 4 wrote it: per-column hashes computed by the server.
    let path = dest.path().join(&id).join(MANIFEST);
    let write = |m: &Manifest| std::fs::write(&path, m.to_bytes()).unwrap();
    let mut v4 = created.manifest.clone();
    v4.format_version = 4;
    v4.tables = block_on(stats::tables(&source, 2, TableHash::ColumnsAndLargeObjects)).unwrap();
    assert_ne!(v4.tables, created.manifest.tables);
    write(&v4);
    verify().unwrap();

    // The same backup as format 1 wrote it: the hashes of `md5(row::text)`, which take
    // the session's settings as they are (those of the scratch database's sessions).
    db.sql(&format!("ALTER DATABASE {} RESET ALL", db.name));
    let mut v1 = created.manifest.clone();
    v1.format_version = 1;
    v1.locale = None;
    v1.tables = block_on(stats::tables(&source, 2, TableHash::RowText)).unwrap();
    assert_ne!(v1.tables, created.manifest.tables);
    write(&v1);
    verify().unwrap();

    // Format 1 with format 5's hashes (or the reverse, or format 3 with format 1's): a
    // mismatch, named.
    let mut lying = created.manifest.clone();
    lying.format_version = 1;
    lying.locale = None;
    write(&lying);
    let err = verify().unwrap_err();
    assert!(matches!(err, BackupError::Mismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("content hash"), "{err}");
    for version in [3, 5] {
        let mut lying = v1.clone();
        lying.format_version = version;
        if version >= 4 {
            lying.locale = created.manifest.locale.clone();
        }
        write(&lying);
        let err = verify().unwrap_err();
        assert!(matches!(err, BackupError::Mismatch { .. }), "{err:?}");
    }
}

/// With the workspace's migrations, a verification by restore compares the restored
/// migration head with the manifest's: a manifest that names another head is refused.
#[test]
fn a_restored_migration_head_other_than_the_manifests_is_a_mismatch() {
    let Some(db) = database("bk_head", 50) else {
        return;
    };
    let dest = tempfile::tempdir().unwrap();
    let store = Store::open(Location::Local(dest.path().to_path_buf())).unwrap();
    let source = Target::parse(&db.url).unwrap();
    let tools = tools();
    let options = create::Options {
        jobs: 1,
        git_commit: None,
        recipients: None,
    };
    let created = block_on(create::create(&source, &tools, &store, &options, &quiet)).unwrap();
    let id = created.manifest.id.clone();
    assert_eq!(created.manifest.migration_head, None);
    let (_, verified) = block_on(check::verify_by_restore(
        &store,
        &id,
        None,
        &source,
        &tools,
        1,
        Some(&[]),
        &quiet,
    ))
    .unwrap();
    let status = verified.migrations.expect("checked");
    assert_eq!((status.head, status.applied, status.pending), (None, 0, 0));

    let mut lying = created.manifest.clone();
    lying.migration_head = Some("V9__elsewhere".into());
    std::fs::write(dest.path().join(&id).join(MANIFEST), lying.to_bytes()).unwrap();
    let err = block_on(check::verify_by_restore(
        &store,
        &id,
        None,
        &source,
        &tools,
        1,
        Some(&[]),
        &quiet,
    ))
    .unwrap_err();
    assert!(matches!(err, BackupError::Mismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("V9__elsewhere"), "{err}");
}

#[test]
fn format_4_counts_and_hashes_the_large_objects() {
    let Some(db) = goodgo_testkit::TestDb::create("bk_lo") else {
        return;
    };
    db.sql("CREATE TABLE docs(id int, body oid)");
    let target = Target::parse(&db.url).unwrap();
    let all = |hash| block_on(stats::tables(&target, 2, hash)).unwrap();
    // No large objects, no entry: format 4's tables are format 3's.
    assert_eq!(
        all(TableHash::ColumnsAndLargeObjects),
        all(TableHash::Columns)
    );
    db.sql("SELECT lo_from_bytea(424201, 'one'), lo_from_bytea(424202, convert_to(repeat('two', 100000), 'UTF8'))");
    let entry = || {
        all(TableHash::ColumnsAndLargeObjects)
            .into_iter()
            .find(|t| t.name == stats::LARGE_OBJECTS)
            .unwrap()
    };
    assert!(
        all(TableHash::Columns)
            .iter()
            .all(|t| t.name != stats::LARGE_OBJECTS)
    );
    let first = entry();
    assert_eq!(first.rows, 2);
    // One byte changed: another hash; changed back: the same one.
    db.sql("SELECT lo_put(424202, 5, 'X')");
    assert_ne!(entry().hash, first.hash);
    db.sql("SELECT lo_put(424202, 5, 'o')");
    assert_eq!(entry(), first);
    // The same content under another OID: another hash.
    db.sql("SELECT lo_unlink(424201), lo_from_bytea(424203, 'one')");
    let moved = entry();
    assert_eq!(moved.rows, 2);
    assert_ne!(moved.hash, first.hash);
    db.sql("SELECT lo_unlink(424202), lo_unlink(424203)");
}
