//! `goodgo backup` with an S3 destination, against a real S3 API server (moto) and a real
//! PostgreSQL: create, list, verify --restore, restore and prune through `--to s3://…`
//! and `backup.to`; a run killed with `kill -9` mid-upload leaves nothing listed and the
//! next run removes what it uploaded.

use std::process::Command;
use std::time::Duration;

use goodgo_testkit::s3::S3Server;

use super::backup::{backup, database_exists, pagila_db, table_digests};
use crate::{Expect, TestContext, TestDb, context, run, wait_until};

/// `goodgo backup …` in `ws` on `db`, with moto's settings in the environment.
fn backup_on(ws: &TestContext, db: &TestDb, s3: &S3Server) -> Command {
    let mut cmd = backup(ws, db);
    cmd.envs(s3.env());
    cmd
}

/// The ids `backup list --json` shows, newest first.
fn listed(ws: &TestContext, db: &TestDb, s3: &S3Server) -> Vec<String> {
    let out = run(backup_on(ws, db, s3).args(["list", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    crate::json_fields(&out.json(), "backups", "id")
}

#[test]
fn s3_create_list_verify_restore_prune() {
    let Some(db) = pagila_db("bk_s3_cli") else {
        return;
    };
    let Some(s3) = S3Server::start("s3_create_list_verify_restore_prune") else {
        return;
    };
    s3.create_bucket("goodgo-backups");
    let bucket = s3.bucket("goodgo-backups");
    // The destination from goodgo.yaml; the policy keeps one.
    let ws = context().with_file(
        "goodgo.yaml",
        "backup:\n  to: s3://goodgo-backups/prod/app\n  keep: {last: 1, daily: 0, weekly: 0, monthly: 0}\n",
    );
    let create = || {
        let out = run(backup_on(&ws, &db, &s3).args(["create", "--json"]));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let json = out.json();
        let id = json["id"].as_str().unwrap().to_string();
        assert_eq!(
            json["dir"],
            format!("s3://goodgo-backups/prod/app/{id}").as_str()
        );
        id
    };
    let oldest = create();
    let keys = bucket.keys(&format!("prod/app/{oldest}/"));
    assert!(
        keys.contains(&format!("prod/app/{oldest}/manifest.json")),
        "{keys:?}"
    );
    assert!(keys.iter().any(|k| k.ends_with(".dat.zst")), "{keys:?}");

    let out = run(backup_on(&ws, &db, &s3).args(["verify", &oldest]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(backup_on(&ws, &db, &s3).args(["verify", "--restore", "--json", &oldest]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["restored"], true);
    assert!(
        bucket
            .keys("prod/app/")
            .contains(&format!("prod/app/{oldest}/verified.json"))
    );

    let target = TestDb::create("bk_s3_cli_target").unwrap();
    let out =
        run(backup_on(&ws, &db, &s3).args(["restore", &oldest, "--to-database", &target.name]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(table_digests(&db), table_digests(&target));

    let middle = create();
    // `--to` names the same place from the command line.
    let out = run(backup_on(&ws, &db, &s3).args([
        "--to",
        "s3://goodgo-backups/prod/app",
        "create",
        "--json",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let newest = out.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        listed(&ws, &db, &s3),
        [newest.clone(), middle.clone(), oldest.clone()]
    );
    let list = run(backup_on(&ws, &db, &s3).args(["list", "--json"])).json();
    assert_eq!(list["dest"], "s3://goodgo-backups/prod/app");
    assert_eq!(
        list["backups"][0]["dir"],
        format!("s3://goodgo-backups/prod/app/{newest}").as_str()
    );

    run(backup_on(&ws, &db, &s3).args(["prune", "--dry-run"]))
        .assert_stdout(0, &[&format!("would delete {middle}")]);
    assert_eq!(listed(&ws, &db, &s3).len(), 3, "a dry run deletes nothing");
    let out = run(backup_on(&ws, &db, &s3).args(["prune"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        listed(&ws, &db, &s3),
        [newest, oldest],
        "the newest and the newest verified stay"
    );
    assert!(bucket.keys(&format!("prod/app/{middle}/")).is_empty());

    // A bucket that does not exist is a clear failure, not a panic.
    let out = run(backup_on(&ws, &db, &s3).args(["--to", "s3://no-such-bucket/x", "list"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("s3://no-such-bucket/x"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("AWS_ENDPOINT_URL"), "{}", out.stderr);
}

#[test]
fn s3_killed_mid_upload_nothing_is_listed_and_the_next_run_cleans_up() {
    let Some(db) = TestDb::create("bk_s3_kill") else {
        return;
    };
    let Some(s3) =
        S3Server::start("s3_killed_mid_upload_nothing_is_listed_and_the_next_run_cleans_up")
    else {
        return;
    };
    s3.create_bucket("killed");
    let bucket = s3.bucket("killed");
    // One big table (its file takes a while to compress and upload) and a few small ones
    // (uploaded meanwhile by the other packing thread).
    db.sql(
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS a, random() AS b FROM generate_series(1, 400000) g;
         CREATE TABLE s1 AS SELECT g FROM generate_series(1, 100) g;
         CREATE TABLE s2 AS SELECT g FROM generate_series(1, 100) g;
         CREATE TABLE s3 AS SELECT g FROM generate_series(1, 100) g;",
    );
    let ws = context();
    // pg_dump's staging folder, under TMPDIR: this test's own.
    let tmp = ws.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let staged = || {
        std::fs::read_dir(tmp.join("goodgo-backup-staging"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let mut child = backup_on(&ws, &db, &s3)
        .env("TMPDIR", &tmp)
        .args(["--to", "s3://killed/db", "create", "--jobs", "2"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Objects of the backup are uploaded, its manifest is not: kill goodgo -9 then.
    wait_until("an uploaded data file", Duration::from_secs(120), || {
        let keys = bucket.keys("db/");
        keys.iter().any(|k| k.ends_with(".dat.zst"))
            && !keys.iter().any(|k| k.ends_with("manifest.json"))
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(staged(), 1, "the killed run left its staging folder");
    let left = bucket.keys("db/");
    assert!(
        left.iter().any(|k| k.ends_with("/.partial.json")),
        "{left:?}"
    );
    assert!(
        !left.iter().any(|k| k.ends_with("manifest.json")),
        "{left:?}"
    );
    let list = run(backup_on(&ws, &db, &s3).args(["--to", "s3://killed/db", "list", "--json"]));
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(
        list.json()["backups"],
        serde_json::json!([]),
        "a partial backup is never listed"
    );

    let killed_id = left[0].split('/').nth(1).unwrap().to_string();
    let next = run(backup_on(&ws, &db, &s3).env("TMPDIR", &tmp).args([
        "--to",
        "s3://killed/db",
        "create",
    ]));
    next.assert_stderr(
        0,
        &[
            &format!("removed {killed_id}, left by an interrupted backup"),
            &format!("removed .partial-{killed_id}, left by an interrupted backup"),
        ],
    );
    assert_eq!(staged(), 0, "the staging folder went too");
    let keys = bucket.keys("db/");
    assert!(
        !keys.iter().any(|k| k.contains(&killed_id)),
        "the killed run's objects are gone: {keys:?}"
    );
    assert!(!database_exists(&db, "goodgo_verify"));
    let list = run(backup_on(&ws, &db, &s3).args(["--to", "s3://killed/db", "list", "--json"]));
    assert_eq!(list.json()["backups"].as_array().unwrap().len(), 1);
}
