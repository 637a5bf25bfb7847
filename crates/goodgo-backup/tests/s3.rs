//! Backups on S3, against a real S3 API server (moto) and a real PostgreSQL with the real
//! pg_dump and pg_restore: create, list, verify by restoring, restore, delete; a large
//! file goes up in parts; the bucket's objects are not readable without credentials.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod common;

use std::time::Instant;

use common::{block_on, database, quiet, restore_matches, tools};
use goodgo_backup::store::{Location, Store};
use goodgo_backup::{check, create};
use goodgo_db::admin::Target;
use goodgo_testkit::s3::{Bucket, S3Server};

fn options(jobs: usize) -> create::Options {
    create::Options {
        jobs,
        git_commit: None,
        recipients: None,
    }
}

/// What a test here runs on: a database (with `big_rows` rows of hex text), moto with
/// bucket `bucket`, a signed client of it and a store at `url` in it.
struct Fixture {
    db: goodgo_testkit::TestDb,
    source: Target,
    s3: S3Server,
    bucket: Bucket,
    store: Store,
}

/// `None` (skipped) where PostgreSQL or moto is missing outside `cargo xtask test`.
fn fixture(test: &str, big_rows: u32, bucket: &str, url: &str) -> Option<Fixture> {
    let db = database(&format!("bk_{bucket}"), big_rows)?;
    let s3 = S3Server::start(test)?;
    s3.create_bucket(bucket);
    let location = Location::parse(url, |p| p.to_path_buf()).unwrap();
    let store = Store::open_with(location, s3.env()).unwrap();
    Some(Fixture {
        source: Target::parse(&db.url).unwrap(),
        db,
        bucket: s3.bucket(bucket),
        s3,
        store,
    })
}

#[test]
fn s3_round_trip_create_list_verify_restore_delete() {
    // 350,000 rows of hex text: a data file of ~36 MB that zstd makes ~19 MB, more than
    // one 8 MiB part.
    let Some(Fixture {
        db,
        source,
        s3,
        bucket,
        store,
    }) = fixture(
        "s3_round_trip_create_list_verify_restore_delete",
        350_000,
        "backups",
        "s3://backups/team/app",
    )
    else {
        return;
    };
    let tools = tools();

    let created = block_on(create::create(&source, &tools, &store, &options(2), &quiet)).unwrap();
    let id = created.manifest.id.clone();
    assert_eq!(created.place, format!("s3://backups/team/app/{id}"));
    assert_eq!(created.manifest.format_version, 5);
    assert!(created.manifest.encryption.is_none());

    // What is in the bucket: the dump's files, compressed, and the manifest; no marker.
    let keys = bucket.keys("team/app/");
    let prefix = format!("team/app/{id}/");
    assert!(keys.contains(&format!("{prefix}manifest.json")), "{keys:?}");
    assert!(keys.contains(&format!("{prefix}dump/toc.dat")), "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.ends_with(".partial.json")),
        "{keys:?}"
    );
    for file in &created.manifest.files {
        assert!(keys.contains(&format!("{prefix}{}", file.path)), "{file:?}");
    }
    assert_eq!(keys.len(), created.manifest.files.len() + 1, "{keys:?}");
    // The big table's file went up in parts: S3 gives a multipart object an ETag `…-N`.
    let big = common::largest(&created.manifest);
    assert!(big.size > 8 << 20, "{big:?}");
    let objects = bucket.objects(&prefix);
    let e_tag = |path: &str| {
        let key = format!("{prefix}{path}");
        let object = objects.iter().find(|o| o.key == key).unwrap();
        object.e_tag.clone()
    };
    let multipart = e_tag(&big.path);
    assert!(
        multipart.contains('-'),
        "a multipart upload's ETag, not {multipart}"
    );
    let small = created
        .manifest
        .files
        .iter()
        .min_by_key(|f| f.size)
        .unwrap();
    let single = e_tag(&small.path);
    assert!(!single.contains('-'), "a small file is one PUT: {single}");

    // The bucket is private: without a signature, no object goodgo put there is served.
    // (moto 5 serves an object completed from a multipart upload to anyone: it keeps no
    // ACL for it, where S3 gives every new object the owner-only default. goodgo sends no
    // ACL either way, so the multipart object is left out here; see docs/backup.md.)
    let single_puts: Vec<&goodgo_testkit::s3::Object> =
        objects.iter().filter(|o| !o.e_tag.contains('-')).collect();
    assert!(single_puts.len() >= 3, "{objects:?}");
    for object in single_puts {
        assert_eq!(s3.anonymous_get("backups", &object.key), 403, "{object:?}");
    }
    // Listed, verified by restoring into a scratch database, and the verification recorded.
    let listed = block_on(store.list()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].manifest, created.manifest);
    assert!(listed[0].verified.is_none());
    let m = block_on(check::verify_files(&store, &id, None, 2, &quiet)).unwrap();
    assert_eq!(m.id, id);
    let (_, verified) = block_on(check::verify_by_restore(
        &store, &id, None, &source, &tools, 2, None, &quiet,
    ))
    .unwrap();
    assert!(verified.restored);
    let listed = block_on(store.list()).unwrap();
    assert_eq!(listed[0].verified.as_ref(), Some(&verified));
    assert!(
        bucket
            .keys(&prefix)
            .contains(&format!("{prefix}verified.json"))
    );

    // Restored into another database: the same rows.
    restore_matches(&store, &id, None, &db);

    // A second backup; deleting the first leaves only the second, and none of its objects.
    let second = block_on(create::create(&source, &tools, &store, &options(1), &quiet)).unwrap();
    assert_ne!(second.manifest.id, id);
    let ids: Vec<String> = block_on(store.list())
        .unwrap()
        .into_iter()
        .map(|l| l.manifest.id)
        .collect();
    assert_eq!(
        ids,
        [second.manifest.id.clone(), id.clone()],
        "newest first"
    );
    block_on(store.delete(&id)).unwrap();
    assert!(bucket.keys(&prefix).is_empty());
    let listed = block_on(store.list()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].manifest.id, second.manifest.id);
    let err = block_on(store.locate(Some(&id))).unwrap_err();
    assert!(err.to_string().contains(&id), "{err}");
}

#[test]
fn a_corrupt_or_missing_object_is_named_and_nothing_is_restored() {
    let Some(Fixture {
        db,
        source,
        bucket,
        store,
        s3: _server,
    }) = fixture(
        "a_corrupt_or_missing_object_is_named_and_nothing_is_restored",
        0,
        "corrupt",
        "s3://corrupt",
    )
    else {
        return;
    };
    let created = block_on(create::create(
        &source,
        &tools(),
        &store,
        &options(2),
        &quiet,
    ))
    .unwrap();
    let id = created.manifest.id.clone();
    let book = common::largest(&created.manifest).path.clone();
    // The same bytes but one flipped, as a faulty disk or a tampering hand would leave it.
    let key = format!("{id}/{book}");
    let mut bytes = bucket.get(&key);
    bytes[10] ^= 0x01;
    bucket.put(&key, bytes);
    let started = Instant::now();
    let err = block_on(check::verify_files(&store, &id, None, 2, &quiet)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("s3://corrupt/{id}/{book}: SHA-256 ")),
        "{text}"
    );
    let target = Target::parse(db.server_url())
        .unwrap()
        .with_dbname(&format!("{}_never", db.name));
    let scratch = tempfile::tempdir().unwrap();
    let err = common::materialize(&store, &id, None, scratch.path()).unwrap_err();
    assert!(err.to_string().contains(&book), "{err}");
    assert!(started.elapsed().as_secs() < 120);
    assert_eq!(
        goodgo_testkit::query(
            db.server_url(),
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{}'",
                target.dbname()
            )
        ),
        "0"
    );
    // A missing object is named too.
    bucket.delete(&key);
    let err = block_on(check::verify_files(&store, &id, None, 2, &quiet)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("s3://corrupt/{id}/{book}: missing: the manifest lists it")
    );
}
