//! `goodgo backup` against a real PostgreSQL server with the real pg_dump and pg_restore:
//! the Pagila schema (shared fixtures) plus generated rows, round trips, corruption,
//! interruption, concurrency, retention and the production guard.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{Expect, TestContext, TestDb, context, query, run, wait_until};

/// Where the PostgreSQL binaries the test server runs live.
fn pg_bin_dir() -> PathBuf {
    std::env::var_os("GOODGO_TEST_PG_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// `goodgo backup …` in `ws` on database `db`.
pub(super) fn backup(ws: &TestContext, db: &TestDb) -> Command {
    let mut cmd = ws.command();
    cmd.env("GOODGO_DATABASE_URL", &db.url)
        .env("GOODGO_PG_BIN_DIR", pg_bin_dir())
        .arg("backup");
    cmd
}

/// The Pagila schema, made loadable by PostgreSQL 15 without pgvector: `uuidv7()` becomes
/// `gen_random_uuid()`, virtual generated columns stored ones, the embedding a `real[]`.
fn pagila_for_pg15() -> String {
    let path = crate::repo().join("../shared/fixtures/pagila/pagila-schema.sql");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared Pagila fixture)", path.display()));
    text.lines()
        .filter(|l| {
            !l.contains("EXTENSION IF NOT EXISTS vector")
                && !l.contains("COMMENT ON EXTENSION vector")
                && !l.contains("USING hnsw")
        })
        .map(|l| {
            l.replace("uuidv7()", "gen_random_uuid()")
                .replace(" VIRTUAL", " STORED")
                .replace("public.vector(20)", "real[]")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rows in a dozen Pagila tables: text, numerics, arrays, tsvectors (by trigger),
/// generated columns, NULLs, foreign keys.
const ROWS: &str = "
INSERT INTO language(name) SELECT 'lang' || g FROM generate_series(1, 5) g;
INSERT INTO actor(first_name, last_name) SELECT 'First' || g, 'Last' || (g % 97) FROM generate_series(1, 2000) g;
INSERT INTO category(name) SELECT 'cat' || g FROM generate_series(1, 16) g;
INSERT INTO country(country) SELECT 'Country ' || g || E' \\u00e9\\t''q' FROM generate_series(1, 50) g;
INSERT INTO city(city, country_id) SELECT 'City ' || g, 1 + g % 50 FROM generate_series(1, 300) g;
INSERT INTO film(title, description, release_year, language_id, original_language_id, rental_duration, rental_rate, length, replacement_cost, rating)
  SELECT 'Film ' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'A film about ' || md5(g::text) END,
         2000 + g % 25, 1 + g % 5, NULLIF(g % 3, 0), 3, 0.99 + (g % 4), 60 + g % 120, 9.99 + g % 20, 'PG'
  FROM generate_series(1, 3000) g;
INSERT INTO film_actor(actor_id, film_id) SELECT 1 + g % 2000, 1 + (g * 7) % 3000 FROM generate_series(1, 9000) g ON CONFLICT DO NOTHING;
INSERT INTO film_category(film_id, category_id) SELECT g, 1 + g % 16 FROM generate_series(1, 3000) g;
INSERT INTO film_embedding(film_id, embedding) SELECT g, ARRAY(SELECT (g * i % 101) / 100.0 FROM generate_series(1, 20) i)::real[] FROM generate_series(1, 3000) g;
";

/// A database holding Pagila and its rows.
pub(super) fn pagila_db(test: &str) -> Option<TestDb> {
    let db = TestDb::create(test)?;
    db.sql(&pagila_for_pg15());
    db.sql(ROWS);
    Some(db)
}

/// Every user table's row count and an md5 of its rows sorted as text: computed
/// independently of goodgo's own table hash.
pub(super) fn table_digests(db: &TestDb) -> String {
    goodgo_testkit::table_digests(&db.url)
}

/// `pg_dump --schema-only` of `url`, without comments, blank lines and the random
/// `\restrict` key newer pg_dumps write.
fn schema_of(url: &str) -> String {
    let out = Command::new(pg_bin_dir().join("pg_dump"))
        .args(["--schema-only", "--no-owner", "-d", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("--") && !l.trim().is_empty() && !l.starts_with("\\"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The ids `backup list --json` shows, newest first.
pub(super) fn ids(ws: &TestContext, db: &TestDb) -> Vec<String> {
    let out = run(backup(ws, db).args(["list", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    crate::json_fields(&out.json(), "backups", "id")
}

pub(super) fn create(ws: &TestContext, db: &TestDb) -> String {
    let out = run(backup(ws, db).args(["create", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()["id"].as_str().unwrap().to_string()
}

pub(super) fn database_exists(db: &TestDb, name: &str) -> bool {
    query(
        db.server_url(),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    ) == "1"
}

fn backups_dir(ws: &TestContext) -> PathBuf {
    ws.join(".goodgo/backups")
}

/// A Pagila database, a workspace, and the id of one backup of the database made there;
/// `None` (the test skips) without a server.
fn pagila_backup(test: &str) -> Option<(TestDb, TestContext, String)> {
    let db = pagila_db(test)?;
    let ws = context();
    let id = create(&ws, &db);
    Some((db, ws, id))
}

/// The manifest.json of the backup in `dir`.
fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn pagila_round_trip_restores_the_same_schema_and_rows() {
    let Some((db, ws, id)) = pagila_backup("bk_pagila") else {
        return;
    };
    let dir = backups_dir(&ws).join(&id);
    let manifest = manifest(&dir);
    assert_eq!(manifest["format_version"], 5);
    assert_eq!(manifest["database"], db.name.as_str());
    let film = crate::json_find(&manifest, "tables", "name", "public.film");
    assert_eq!(film["rows"], 3000);
    assert!(dir.join("dump/toc.dat").is_file());
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"].as_str().unwrap().ends_with(".dat.zst")),
        "data files are stored compressed"
    );

    let out = run(backup(&ws, &db).args(["verify", &id]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The scratch database is gone after the verification.
    let out = run_leaving_no_database(
        backup(&ws, &db).args(["verify", "--restore", "--json"]),
        db.server_url(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["restored"], true);
    assert!(dir.join("verified.json").is_file());
    let list = run(backup(&ws, &db).args(["list", "--json"])).json();
    assert!(
        list["backups"][0]["verified"]["restored"]
            .as_bool()
            .unwrap()
    );

    let target = TestDb::create("bk_target").unwrap();
    let out = run(backup(&ws, &db).args(["restore", &id, "--to-database", &target.name]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(schema_of(&db.url), schema_of(&target.url));
    assert_eq!(table_digests(&db), table_digests(&target));
    assert!(table_digests(&target).contains("public.film 3000|"));

    // Now the target holds tables: replacing it needs --yes.
    run(backup(&ws, &db).args(["restore", &id, "--to-database", &target.name]))
        .assert_stderr(2, &["pass --yes"]);
    target.sql("DELETE FROM film_embedding");
    let out = run(backup(&ws, &db).args(["restore", &id, "--to-database", &target.name, "--yes"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(table_digests(&db), table_digests(&target));
}

/// A table whose data file is over 32 MiB is loaded by goodgo on `--jobs` connections,
/// beside pg_restore: every row, escaped values (a `\.` among them), NULLs, a generated
/// column and a table that once had a dropped column come back as they were.
#[test]
fn a_big_table_is_loaded_on_several_connections_with_every_row_intact() {
    let Some(db) = TestDb::create("bk_big") else {
        return;
    };
    db.sql(
        r"CREATE TABLE big (junk int, id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            note text, payload text, flag bool, twice bigint GENERATED ALWAYS AS (id * 2) STORED);
          INSERT INTO big (junk, note, payload, flag)
            SELECT g,
                   CASE WHEN g % 1000 = 0 THEN E'\\.'
                        WHEN g % 777 = 0 THEN E'line\nbreak\ttab\\'
                        WHEN g % 5 = 0 THEN NULL
                        ELSE 'nốte ' || g END,
                   md5(g::text) || md5((g * 3)::text), g % 2 = 0
              FROM generate_series(1, 450000) g;
          ALTER TABLE big DROP COLUMN junk;
          CREATE TABLE small AS SELECT g AS n FROM generate_series(1, 10) g;",
    );
    let ws = context();
    let id = create(&ws, &db);
    let target = TestDb::create("bk_big_target").unwrap();
    let out =
        run(backup(&ws, &db).args(["restore", &id, "--to-database", &target.name, "--jobs", "2"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("loading public.big on 2 connections"),
        "{}",
        out.stderr
    );
    assert_eq!(schema_of(&db.url), schema_of(&target.url));
    assert_eq!(table_digests(&db), table_digests(&target));
    assert!(table_digests(&target).contains("public.big 450000|"));
    assert_eq!(
        query(&target.url, r"SELECT count(*) FROM big WHERE note = E'\\.'"),
        "450"
    );
    // The identity goes on from where the database's did.
    target.sql("INSERT INTO big (note) VALUES ('next')");
    assert_eq!(
        query(&target.url, "SELECT id FROM big WHERE note = 'next'"),
        "450001"
    );

    // The loaded table is checked too: its count is the server's, its hash that of the
    // lines it was given; a manifest that says otherwise is a mismatch, named.
    let path = backups_dir(&ws).join(&id).join("manifest.json");
    let original = std::fs::read_to_string(&path).unwrap();
    // `verify --restore` of the backup whose manifest records `value` as public.big's `field`.
    let verify_with = |field: &str, value: serde_json::Value| {
        let mut m: serde_json::Value = serde_json::from_str(&original).unwrap();
        let big = m["tables"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|t| t["name"] == "public.big")
            .unwrap();
        assert_eq!(big["rows"], 450000);
        big[field] = value;
        std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        run(backup(&ws, &db).args(["verify", "--restore", &id, "--jobs", "2"]))
    };
    let out = verify_with("rows", 449999.into());
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("loading public.big on 2 connections"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("public.big") && out.stderr.contains("450000 rows restored"),
        "{}",
        out.stderr
    );
    let out = verify_with("hash", "0".repeat(32).into());
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("public.big") && out.stderr.contains("content hash"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_latin1_database_is_restored_into_a_latin1_database_with_equal_hashes() {
    let Some(db) = TestDb::create("bk_latin1") else {
        return;
    };
    // The same database, recreated with another encoding than the server's default.
    query(db.server_url(), &format!("DROP DATABASE \"{}\"", db.name));
    query(
        db.server_url(),
        &format!(
            "CREATE DATABASE \"{}\" TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C'",
            db.name
        ),
    );
    db.sql(
        "CREATE TABLE caf\u{e9}(id int PRIMARY KEY, name text, tags text[], code char(5));
         INSERT INTO caf\u{e9} SELECT g, 'cr\u{e8}me br\u{fb}l\u{e9}e ' || g, ARRAY['\u{e9}t\u{e9}', NULL], '\u{e0}' || g % 10
           FROM generate_series(1, 300) g;",
    );
    let ws = context();
    let id = create(&ws, &db);
    let m = manifest(&backups_dir(&ws).join(&id));
    assert_eq!(m["format_version"], 5);
    assert_eq!(m["locale"]["encoding"], "LATIN1");
    assert_eq!(m["locale"]["lc_collate"], "C");

    // Its scratch database has its encoding: the text hashes as it was dumped.
    let out = run(backup(&ws, &db).args(["verify", "--restore", &id]));
    assert_eq!(out.code, 0, "{}", out.stderr);

    // The database a restore creates too, whatever the server's default.
    let target = TestDb::create("bk_latin1_to").unwrap();
    let out = run(backup(&ws, &db).args(["restore", &id, "--to-database", &target.name]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert_eq!(
        query(
            target.server_url(),
            &format!(
                "SELECT pg_encoding_to_char(encoding) || ' ' || datcollate FROM pg_database WHERE datname = '{}'",
                target.name
            )
        ),
        "LATIN1 C"
    );
    assert_eq!(table_digests(&db), table_digests(&target));
    assert!(
        table_digests(&target).contains("300|"),
        "{}",
        table_digests(&target)
    );
}

#[test]
fn an_icu_database_with_large_objects_is_restored_with_both() {
    let Some(db) = TestDb::create("bk_icu") else {
        return;
    };
    let icu_here = "SELECT current_setting('server_version_num')::int >= 150000
                      AND EXISTS (SELECT FROM pg_collation WHERE collprovider = 'i')";
    if query(db.server_url(), icu_here) != "t" {
        eprintln!("SKIPPED: this server has no ICU");
        return;
    }
    query(db.server_url(), &format!("DROP DATABASE \"{}\"", db.name));
    query(
        db.server_url(),
        &format!(
            "CREATE DATABASE \"{}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'de-DE'",
            db.name
        ),
    );
    db.sql(
        "CREATE TABLE word(w text PRIMARY KEY);
         INSERT INTO word VALUES ('z'), ('B'), ('\u{e4}'), ('Z'), ('a');
         SELECT lo_from_bytea(0, 'large object bytes');",
    );
    let ws = context();
    let id = create(&ws, &db);
    let m = manifest(&backups_dir(&ws).join(&id));
    assert_eq!(m["locale"]["provider"], "icu");
    assert_eq!(m["locale"]["provider_locale"], "de-DE");
    let objects = crate::json_find(&m, "tables", "name", "pg_catalog.pg_largeobject");
    assert_eq!(objects["rows"], 1);

    let target = TestDb::create("bk_icu_to").unwrap();
    let out = run(backup(&ws, &db).args(["restore", &id, "--to-database", &target.name]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    // The large objects are counted as such, not as a table.
    assert!(
        out.stdout
            .contains(": 1 table, 5 rows, 1 large object, every count and hash equal"),
        "{}",
        out.stdout
    );
    assert_eq!(
        query(
            target.server_url(),
            &format!(
                // `daticulocale` is `datlocale` from PostgreSQL 17.
                "SELECT j->>'datlocprovider' || ' ' || coalesce(j->>'datlocale', j->>'daticulocale') FROM pg_database d, to_jsonb(d) j WHERE datname = '{}'",
                target.name
            )
        ),
        "i de-DE"
    );
    // Text sorts as ICU's German sorts it (bytewise, `C`, would give B,Z,a,z,\u{e4}).
    assert_eq!(
        target.sql("SELECT string_agg(w, ',' ORDER BY w) FROM word"),
        "a,\u{e4},B,z,Z"
    );
    assert_eq!(table_digests(&db), table_digests(&target));
    assert_eq!(
        target.sql("SELECT convert_from(lo_get(oid), 'UTF8') FROM pg_largeobject_metadata"),
        "large object bytes"
    );
}

#[test]
fn restoring_over_a_database_keeps_its_owner_settings_and_privileges() {
    let Some(db) = TestDb::create("bk_props") else {
        return;
    };
    db.sql("CREATE TABLE t(id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);");
    let ws = context();
    let id = create(&ws, &db);
    let target = TestDb::create("bk_props_to").unwrap();
    let role = format!("{}_owner", target.name);
    target.sql(&format!(
        "CREATE ROLE \"{role}\"; CREATE TABLE old(x int);
         ALTER DATABASE \"{t}\" OWNER TO \"{role}\";
         ALTER DATABASE \"{t}\" SET search_path = \"$user\", public, \"Odd Schema\";
         ALTER DATABASE \"{t}\" SET statement_timeout = '5s';
         ALTER ROLE \"{role}\" IN DATABASE \"{t}\" SET work_mem = '8MB';
         REVOKE ALL ON DATABASE \"{t}\" FROM PUBLIC;
         GRANT CONNECT ON DATABASE \"{t}\" TO \"{role}\" WITH GRANT OPTION;
         ALTER DATABASE \"{t}\" CONNECTION LIMIT 7;
         COMMENT ON DATABASE \"{t}\" IS 'the kept one''s';",
        t = target.name
    ));
    // The owner, privileges, connection limit, comment, then each role's settings (`*`:
    // every role's).
    let properties = || {
        query(
            db.server_url(),
            &format!(
                "SELECT concat_ws(' ', pg_get_userbyid(d.datdba), d.datacl::text, d.datconnlimit, shobj_description(d.oid, 'pg_database'),
                   (SELECT string_agg(coalesce(pg_get_userbyid(nullif(s.setrole, 0))::text, '*') || ':' || array_to_string(s.setconfig, ';'), ' ' ORDER BY s.setrole)
                      FROM pg_db_role_setting s WHERE s.setdatabase = d.oid))
                 FROM pg_database d WHERE d.datname = '{}'",
                target.name
            ),
        )
    };
    let before = properties();
    for part in [
        r#"search_path="$user", public, "Odd Schema""#,
        // The owner may grant CONNECT; PUBLIC has nothing (no `=…` entry).
        "c*/",
        " 7 the kept one's ",
    ] {
        assert!(before.contains(part), "{part}: {before}");
    }
    assert!(!before.contains("{=") && !before.contains(",="), "{before}");
    let out = run(backup(&ws, &db).args(["restore", &id, "--to-database", &target.name, "--yes"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert_eq!(properties(), before);
    assert_eq!(target.sql("SELECT count(*) FROM t"), "2");
    drop(target);
    query(db.server_url(), &format!("DROP ROLE \"{role}\""));
}

#[test]
fn a_failed_restore_leaves_the_target_as_it_was_and_no_owner_restores_without_the_roles() {
    let Some(db) = TestDb::create("bk_owner") else {
        return;
    };
    let role = format!("{}_role", db.name);
    db.sql(&format!(
        "CREATE ROLE \"{role}\"; CREATE TABLE owned(id int PRIMARY KEY, note text);
         INSERT INTO owned VALUES (1, 'one'), (2, 'two'); ALTER TABLE owned OWNER TO \"{role}\";
         GRANT SELECT ON owned TO \"{role}\";"
    ));
    let ws = context();
    let id = create(&ws, &db);
    // The role is gone when the backup is restored (another server, say).
    db.sql(&format!(
        "REASSIGN OWNED BY \"{role}\" TO CURRENT_USER; DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\";"
    ));

    let target = TestDb::create("bk_owner_to").unwrap();
    target.sql("CREATE TABLE precious(x int); INSERT INTO precious VALUES (42)");
    let out = run(backup(&ws, &db).args(["restore", &id, "--to-database", &target.name, "--yes"]));
    out.assert_stderr(1, &["pg_restore failed", "does not exist", "--no-owner"]);
    // The restore failed in a database of its own: the target still holds what it held.
    assert_eq!(target.sql("SELECT x FROM precious"), "42");

    let out = run(backup(&ws, &db).args([
        "restore",
        &id,
        "--to-database",
        &target.name,
        "--yes",
        "--no-owner",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(table_digests(&db), table_digests(&target));
    assert_eq!(
        target.sql("SELECT tableowner = current_user FROM pg_tables WHERE tablename = 'owned'"),
        "t"
    );
    assert_eq!(target.sql("SELECT to_regclass('precious') IS NULL"), "t");
}

/// Copies backup `id` to a new folder named like a backup, returning its path.
fn copy_backup(ws: &TestContext, id: &str, new_id: &str) -> PathBuf {
    let from = backups_dir(ws).join(id);
    let to = backups_dir(ws).join(new_id);
    copy_dir(&from, &to);
    let manifest = to.join("manifest.json");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace(id, new_id);
    std::fs::write(&manifest, text).unwrap();
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// SQL counting the databases goodgo process `pid` made and holds: its scratch
/// (`goodgo_verify_{pid}_…`) and restore (`goodgo_restore_{pid}_…`) databases.
fn databases_made_by(pid: u32) -> String {
    format!("SELECT count(*) FROM pg_database WHERE datname ~ '^goodgo_(verify|restore)_{pid}_'")
}

/// `cmd` (a goodgo command) started with its output captured, and the query counting the
/// databases it makes (its scratch and restore databases are named after its process id).
fn spawn_watched(cmd: &mut Command) -> (std::process::Child, String) {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let made = databases_made_by(child.id());
    (child, made)
}

/// Runs `cmd` (a goodgo command) to its end, then asserts that no database it made is left
/// on `server`.
pub(crate) fn run_leaving_no_database(cmd: &mut Command, server: &str) -> crate::Run {
    let (child, made) = spawn_watched(cmd);
    let run = crate::Run::from(child.wait_with_output().unwrap());
    assert_eq!(
        query(server, &made),
        "0",
        "a database was left: {}",
        run.stderr
    );
    run
}

/// Runs `cmd` (a goodgo command) to its end while watching `server` for a database it
/// makes (its scratch and restore databases are named after its process id): what it
/// produced, and whether such a database was seen, during the run or after it.
fn run_watching(cmd: &mut Command, server: &str) -> (crate::Run, bool) {
    let (child, made) = spawn_watched(cmd);
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let mut seen = false;
    while !waiter.is_finished() {
        seen |= query(server, &made) != "0";
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = waiter.join().unwrap();
    seen |= query(server, &made) != "0";
    (crate::Run::from(out), seen)
}

/// The largest data file of a backup, relative to its folder.
fn largest_data_file(dir: &Path) -> String {
    manifest(dir)["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().unwrap().ends_with(".zst"))
        .max_by_key(|f| f["size"].as_u64().unwrap())
        .map(|f| f["path"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn a_bad_file_is_named_and_no_database_is_touched() {
    let Some((db, ws, id)) = pagila_backup("bk_corrupt") else {
        return;
    };

    // One flipped byte.
    let flipped = copy_backup(&ws, &id, "20000101T000000Z-f11bed");
    let file = largest_data_file(&flipped);
    let path = flipped.join(&file);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    // A missing file.
    let missing = copy_backup(&ws, &id, "20000101T000000Z-0000ff");
    std::fs::remove_file(missing.join(&file)).unwrap();
    // A truncated manifest.
    let truncated = copy_backup(&ws, &id, "20000101T000000Z-7a7a7a");
    let manifest = truncated.join("manifest.json");
    let text = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &text[..text.len() / 2]).unwrap();

    for (bad, names) in [
        ("20000101T000000Z-f11bed", file.as_str()),
        ("20000101T000000Z-0000ff", file.as_str()),
        ("20000101T000000Z-7a7a7a", "manifest.json"),
    ] {
        let out = run(backup(&ws, &db).args(["verify", bad]));
        assert_eq!(out.code, 1, "verify {bad}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("{bad}/{names}")),
            "verify {bad} names the file: {}",
            out.stderr
        );
        let (out, made) = run_watching(
            backup(&ws, &db).args(["verify", bad, "--restore"]),
            db.server_url(),
        );
        out.assert_stderr(1, &[&format!("{bad}/{names}")]);
        assert!(!made, "verify --restore of {bad} made a scratch database");
        let target = format!("{}_r", db.name);
        let (out, made) = run_watching(
            backup(&ws, &db).args(["restore", bad, "--to-database", &target]),
            db.server_url(),
        );
        out.assert_stderr(1, &[&format!("{bad}/{names}")]);
        assert!(!made, "restore of {bad} made a database to restore into");
        assert!(
            !database_exists(&db, &target),
            "restore of {bad} created {target}"
        );
    }
    // The truncated manifest's backup is not listed; the others are (their files are only
    // read by verify).
    let listed = ids(&ws, &db);
    assert!(
        !listed.contains(&"20000101T000000Z-7a7a7a".to_string()),
        "{listed:?}"
    );
    assert!(listed.contains(&id));
    // The original is untouched by all this.
    let out = run(backup(&ws, &db).args(["verify", &id]));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn killed_mid_backup_nothing_is_listed_and_the_next_run_cleans_up() {
    let Some(db) = TestDb::create("bk_kill") else {
        return;
    };
    // Enough rows that compressing and checksumming takes a moment.
    db.sql(
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS a, random() AS b FROM generate_series(1, 300000) g",
    );
    let ws = context();
    let mut child = backup(&ws, &db)
        .arg("create")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dest = backups_dir(&ws);
    // pg_dump has finished once a compressed data file appears; kill goodgo -9 then.
    wait_until(
        "a compressed file in the partial backup",
        Duration::from_secs(60),
        || {
            std::fs::read_dir(&dest)
                .ok()
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    e.file_name().to_string_lossy().starts_with(".partial-")
                        && std::fs::read_dir(e.path().join("dump"))
                            .ok()
                            .into_iter()
                            .flatten()
                            .flatten()
                            .any(|f| f.file_name().to_string_lossy().ends_with(".zst"))
                })
        },
    );
    child.kill().unwrap();
    let _ = child.wait();
    let partials = || {
        std::fs::read_dir(&dest)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".partial-"))
            .count()
    };
    assert_eq!(partials(), 1, "the killed run left its partial folder");
    assert!(ids(&ws, &db).is_empty(), "a partial backup is never listed");
    run(backup(&ws, &db).args(["create"])).assert_stderr(0, &["left by an interrupted backup"]);
    assert_eq!(partials(), 0);
    assert_eq!(ids(&ws, &db).len(), 1);
}

/// A restore under way: a database with enough rows (and indexes to build) that its
/// restore takes a moment, backed up; a target holding a table of its own; goodgo
/// restoring the backup over it, its stderr as `stderr` says, once the restore's own
/// database exists (`staging` counts it; it is named after goodgo's process id).
struct RestoreUnderWay {
    db: TestDb,
    ws: TestContext,
    id: String,
    target: TestDb,
    child: std::process::Child,
    staging: String,
}

fn restore_under_way(prefix: &str, stderr: std::process::Stdio) -> Option<RestoreUnderWay> {
    let db = TestDb::create(prefix)?;
    db.sql(
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS a FROM generate_series(1, 400000) g;
         ALTER TABLE big ADD PRIMARY KEY (id); CREATE INDEX big_a ON big (a);",
    );
    let ws = context();
    let id = create(&ws, &db);
    let target = TestDb::create(&format!("{prefix}_to")).unwrap();
    target.sql("CREATE TABLE precious(x int); INSERT INTO precious VALUES (42)");
    let child = backup(&ws, &db)
        .args(["restore", &id, "--to-database", &target.name, "--yes"])
        .stderr(stderr)
        .spawn()
        .unwrap();
    let staging = databases_made_by(child.id());
    wait_until("the restore's database", Duration::from_secs(60), || {
        query(db.server_url(), &staging) == "1"
    });
    Some(RestoreUnderWay {
        db,
        ws,
        id,
        target,
        child,
        staging,
    })
}

#[test]
fn ctrl_c_mid_restore_drops_the_restores_database_and_leaves_the_target() {
    let Some(RestoreUnderWay {
        db,
        target,
        child,
        staging,
        ..
    }) = restore_under_way("bk_int", std::process::Stdio::piped())
    else {
        return;
    };
    assert!(goodgo_testkit::signal(
        child.id(),
        goodgo_testkit::Signal::INT
    ));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(query(db.server_url(), &staging), "0", "{stderr}");
    assert_eq!(target.sql("SELECT x FROM precious"), "42");
}

#[test]
fn a_restore_killed_with_sigkill_leaves_a_database_the_next_restore_drops() {
    let Some(RestoreUnderWay {
        db,
        ws,
        id,
        target,
        mut child,
        staging,
    }) = restore_under_way("bk_kill", std::process::Stdio::null())
    else {
        return;
    };
    let name = query(
        db.server_url(),
        &staging.replace("SELECT count(*)", "SELECT datname"),
    );
    // Killed once the database is marked as goodgo's and pg_restore writes into it.
    wait_until(
        "pg_restore in the marked database",
        Duration::from_secs(60),
        || {
            query(
            db.server_url(),
            &format!(
                "SELECT count(*) FROM pg_database d WHERE d.datname = '{name}'
                   AND shobj_description(d.oid, 'pg_database') LIKE 'goodgo scratch database of pid %'
                   AND EXISTS (SELECT FROM pg_stat_activity a WHERE a.datid = d.oid AND a.application_name = 'pg_restore')"
            ),
        ) == "1"
        },
    );
    assert!(goodgo_testkit::signal(
        child.id(),
        goodgo_testkit::Signal::KILL
    ));
    child.wait().unwrap();
    // Nothing could clean up: the database is left, and the target is as it was.
    assert_eq!(target.sql("SELECT x FROM precious"), "42");
    assert!(database_exists(&db, &name));
    // pg_restore, which goodgo started, may still be writing into it.
    wait_until("pg_restore's end", Duration::from_secs(120), || {
        query(
            db.server_url(),
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"),
        ) == "0"
    });

    // Not touched: a leftover of a gone process that someone is connected to, and one that
    // another machine's process made.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let in_use = TestDb::create("goodgo_restore").unwrap();
    let other = TestDb::create("goodgo_restore").unwrap();
    // The session first: marked before it, the decoy could be swept by a parallel test.
    let _session = goodgo_testkit::ChildGuard::new(
        Command::new(pg_bin_dir().join("psql"))
            .arg(&in_use.url)
            .args(["-c", "SELECT pg_sleep(600)"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the session", Duration::from_secs(30), || {
        query(
            db.server_url(),
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'",
                in_use.name
            ),
        ) == "1"
    });
    for (decoy, host) in [
        (&in_use, goodgo_db::scratch::this_host().unwrap()),
        (&other, "another machine".to_string()),
    ] {
        decoy.sql(&format!(
            "COMMENT ON DATABASE \"{}\" IS 'goodgo scratch database of pid {} on {host}'",
            decoy.name,
            gone.id()
        ));
    }

    let out = run(backup(&ws, &db).args(["restore", &id, "--to-database", &target.name, "--yes"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The leftover is dropped (by this restore, which says so, or by another test's on this
    // server), the decoys are not.
    assert!(!database_exists(&db, &name), "{}", out.stderr);
    assert!(database_exists(&db, &in_use.name));
    assert!(database_exists(&db, &other.name));
    assert_eq!(table_digests(&db), table_digests(&target));
    // The restored database is no longer marked as a scratch one.
    assert_eq!(
        target.sql(&format!(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), 'none') FROM pg_database WHERE datname = '{}'",
            target.name
        )),
        "none"
    );
}

#[test]
fn a_role_without_the_rights_a_backup_needs_is_told_which() {
    let Some(db) = TestDb::create("bk_rls") else {
        return;
    };
    let role = format!("{}_app", db.name);
    db.sql(&format!(
        "CREATE ROLE \"{role}\" LOGIN;
         CREATE TABLE private_t(x int); INSERT INTO private_t VALUES (1);
         CREATE TABLE secret(id int, owner text); INSERT INTO secret VALUES (1, 'a'), (2, 'b');
         ALTER TABLE secret OWNER TO \"{role}\";
         ALTER TABLE secret ENABLE ROW LEVEL SECURITY; ALTER TABLE secret FORCE ROW LEVEL SECURITY;
         CREATE POLICY only_a ON secret USING (owner = 'a');"
    ));
    let ws = context();
    let as_role = db.url.replacen("postgres@", &format!("{role}@"), 1);
    assert_ne!(as_role, db.url);
    let create_as_role = || {
        run(backup(&ws, &db)
            .env("GOODGO_DATABASE_URL", &as_role)
            .arg("create"))
    };
    // A table the role may not read, then a policy that would hide rows from it: pg_dump
    // refuses, and the hint says why (not a tools version mismatch).
    let out = create_as_role();
    assert_eq!(out.code, 1, "{}", out.stderr);
    for said in ["permission denied for table private_t", "pg_read_all_data"] {
        assert!(out.stderr.contains(said), "{said}: {}", out.stderr);
    }
    assert!(!out.stderr.contains("major version"), "{}", out.stderr);
    db.sql(&format!("GRANT SELECT ON private_t TO \"{role}\""));
    let out = create_as_role();
    assert_eq!(out.code, 1, "{}", out.stderr);
    for said in ["row-level security", "BYPASSRLS"] {
        assert!(out.stderr.contains(said), "{said}: {}", out.stderr);
    }
    assert!(ids(&ws, &db).is_empty());
    // Without the policy's force, the owner dumps every row.
    db.sql("ALTER TABLE secret NO FORCE ROW LEVEL SECURITY");
    let out = create_as_role();
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A role that may not create databases cannot restore (into a database of its own).
    let out = run(backup(&ws, &db)
        .env("GOODGO_DATABASE_URL", &as_role)
        .args(["verify", "--restore"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    for said in ["permission denied to create database", "CREATEDB"] {
        assert!(out.stderr.contains(said), "{said}: {}", out.stderr);
    }
    db.sql(&format!(
        "DROP TABLE secret; REVOKE ALL ON private_t FROM \"{role}\"; DROP ROLE \"{role}\";"
    ));
}

#[test]
fn concurrent_creates_both_succeed_with_distinct_ids() {
    let Some(db) = pagila_db("bk_concurrent") else {
        return;
    };
    let ws = context();
    let creates = (0..2).map(|_| {
        let mut cmd = backup(&ws, &db);
        cmd.args(["create", "--json"]);
        cmd
    });
    for out in crate::run_at_once(creates) {
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let listed = ids(&ws, &db);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_ne!(listed[0], listed[1]);
    for id in &listed {
        let out = run(backup(&ws, &db).args(["verify", id]));
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
}

#[test]
fn prune_keeps_the_policy_and_the_newest_verified_backup() {
    let Some(db) = TestDb::create("bk_prune") else {
        return;
    };
    db.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g");
    let ws = context().with_file(
        "goodgo.yaml",
        "backup:\n  keep: {last: 1, daily: 0, weekly: 0, monthly: 0}\n",
    );
    let oldest = create(&ws, &db);
    let out = run(backup(&ws, &db).args(["verify", "--restore", &oldest]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let middle = create(&ws, &db);
    let newest = create(&ws, &db);

    run(backup(&ws, &db).args(["prune", "--dry-run"]))
        .assert_stdout(0, &[&format!("would delete {middle}")]);
    assert_eq!(ids(&ws, &db).len(), 3, "a dry run deletes nothing");

    let out = run(backup(&ws, &db).args(["prune", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(ids(&ws, &db), [newest.clone(), oldest.clone()]);
    assert!(!backups_dir(&ws).join(&middle).exists());

    // Production: prune and restore refuse unless told twice.
    let target = TestDb::create("bk_prod_target").unwrap();
    let prod = |cmd: &mut Command| {
        cmd.env("GOODGO_ENV", "production");
        run(cmd)
    };
    prod(backup(&ws, &db).args(["restore", &newest, "--to-database", &target.name, "--yes"]))
        .assert_stderr(2, &["production"]);
    assert_eq!(
        target.sql("SELECT count(*) FROM pg_class WHERE relname = 't'"),
        "0"
    );
    let out =
        prod(backup(&ws, &db).args(["restore", &newest, "--to-database", &target.name, "-yy"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(target.sql("SELECT count(*) FROM t"), "100");
}

/// `verify --restore` runs `goodgo db status` against the restored database: the head it
/// restored, what the workspace has beyond it, and migrations that differ from their files.
#[test]
fn verify_by_restore_reports_the_restored_migration_status() {
    let Some(db) = TestDb::create("bk_migrations") else {
        return;
    };
    let ws = crate::workspace_with_migrations("");
    let mut migrate = ws.command();
    migrate
        .env("GOODGO_DATABASE_URL", &db.url)
        .args(["db", "migrate"]);
    let out = run(&mut migrate);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let id = create(&ws, &db);
    let manifest = manifest(&backups_dir(&ws).join(&id));
    let head = manifest["migration_head"].as_str().unwrap().to_string();
    assert!(head.starts_with("V4__"), "{head}");

    let out = run(backup(&ws, &db).args(["verify", "--restore", &id]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "migrations: head {head}, 4 applied, 0 pending in the workspace, none divergent or missing"
        )),
        "{}",
        out.stdout
    );

    // The workspace moves on: one migration more, one applied file edited.
    ws.write("migrations/V5__later.sql", "CREATE TABLE later (id int);\n");
    let edited = ws.join("migrations/V2__listings.sql");
    let mut text = std::fs::read_to_string(&edited).unwrap();
    text.push_str("\n-- edited after the backup\n");
    std::fs::write(&edited, text).unwrap();
    let out = run(backup(&ws, &db).args(["verify", "--restore", &id, "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let status = &out.json()["verified"]["migrations"];
    assert_eq!(status["head"], head.as_str());
    assert_eq!(status["applied"], 3);
    assert_eq!(status["pending"], 1);
    assert_eq!(status["divergent"], serde_json::json!(["V2__listings"]));
    assert_eq!(status["missing"], serde_json::json!([]));
    // Recorded with the verification.
    let verified: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(backups_dir(&ws).join(&id).join("verified.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(verified["migrations"]["pending"], 1);
    let out = run(backup(&ws, &db).args(["verify", "--restore", &id]));
    assert!(
        out.stdout.contains(
            "warning: V2__listings was applied from a file that has changed since the backup"
        ),
        "{}",
        out.stdout
    );
}
