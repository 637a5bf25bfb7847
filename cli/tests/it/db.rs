//! `goodgo db` against a real PostgreSQL server (started by `cargo xtask test`).

use std::fs;

use goodgo_testkit::{TestContext, assert_cmd_snapshot, assert_has};

use crate::{Expect, TestDb, goodgo, run, workspace_with_migrations};

fn db(ws: &TestContext, db: &TestDb) -> std::process::Command {
    let mut cmd = ws.command();
    cmd.env("GOODGO_DATABASE_URL", &db.url).arg("db");
    cmd
}

/// The workspace as `[TMP]`, the database's URL as `[DB_URL]` and its name as `[DB]`.
fn filters(ws: &TestContext, db: &TestDb) -> goodgo_testkit::Filters {
    ws.filters()
        .literal(&db.url, "[DB_URL]")
        .literal(&db.name, "[DB]")
}

/// A test database and a workspace with the repository's migrations; `None` (the test
/// skips) without a server.
fn migrated_workspace(test: &str) -> Option<(TestDb, TestContext)> {
    let test_db = TestDb::create(test)?;
    Some((test_db, workspace_with_migrations("")))
}

/// The state of each migration in `db status --json`, in order.
fn states(status: &crate::Run) -> Vec<String> {
    crate::json_fields(&status.json(), "migrations", "state")
}

#[test]
fn fresh_database_to_head_then_every_status_kind() {
    let Some((test_db, ws)) = migrated_workspace("status_kinds") else {
        return;
    };
    let status = run(db(&ws, &test_db).args(["status", "--json"]));
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(states(&status), ["pending"; 4]);

    let dry = run(db(&ws, &test_db).args(["migrate", "--dry-run", "--target", "2"]));
    assert_eq!(dry.stdout.lines().count(), 2, "{}", dry.stdout);
    assert_eq!(
        test_db.sql("SELECT to_regclass('refinery_schema_history') IS NULL"),
        "t",
        "dry run changes nothing"
    );

    let out = run(db(&ws, &test_db).arg("migrate"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("applied V1__users_and_tokens\n"),
        "{}",
        out.stdout
    );
    assert_eq!(
        test_db.sql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM refinery_schema_history"
        ),
        "1,2,3,4"
    );
    let again = run(db(&ws, &test_db).arg("migrate"));
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (
            0,
            format!("nothing to apply: {} is at V4\n", test_db.name).as_str()
        )
    );

    // Divergent: an applied file changed.
    let v2 = ws.path().join("migrations/V2__listings.sql");
    let original = fs::read_to_string(&v2).unwrap();
    fs::write(&v2, format!("{original}\n-- an edit after the fact\n")).unwrap();
    let out = assert_cmd_snapshot!(
        "status_divergent",
        filters(&ws, &test_db),
        db(&ws, &test_db).arg("status")
    );
    assert_eq!(out.code, 1);
    assert_has(
        &out.stdout,
        &[
            "V2__listings",
            "DIVERGENT",
            "migrations/V2__listings.sql changed since it was applied: checksum now",
        ],
    );
    let refused = assert_cmd_snapshot!(
        "migrate_refuses_a_changed_history",
        filters(&ws, &test_db),
        db(&ws, &test_db).arg("migrate")
    );
    // migrate refuses a changed history.
    refused.assert_stderr(1, &["applied migrations must not change"]);
    fs::write(&v2, original).unwrap();

    // Missing: an applied file deleted.
    fs::remove_file(ws.path().join("migrations/V4__audit_log.sql")).unwrap();
    let json = run(db(&ws, &test_db).args(["status", "--json"]));
    assert_eq!(json.code, 1);
    let last = json.json()["migrations"][3].clone();
    assert_eq!(
        (last["version"].as_i64(), last["state"].as_str()),
        (Some(4), Some("missing"))
    );
}

#[test]
fn eight_concurrent_migrators_apply_each_migration_once() {
    let Some((test_db, ws)) = migrated_workspace("concurrent") else {
        return;
    };
    let migrators = (0..8).map(|_| {
        let mut cmd = db(&ws, &test_db);
        cmd.arg("migrate");
        cmd
    });
    let mut applied_lines = 0;
    for out in crate::run_at_once(migrators) {
        assert_eq!(out.code, 0, "{}", out.stderr);
        applied_lines += out
            .stdout
            .lines()
            .filter(|l| l.starts_with("applied V"))
            .count();
    }
    assert_eq!(
        applied_lines, 4,
        "each migration reported applied by exactly one runner"
    );
    assert_eq!(
        test_db.sql("SELECT count(*), count(DISTINCT version) FROM refinery_schema_history"),
        "4|4"
    );
    assert_eq!(
        test_db.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "8"
    );
}

#[test]
fn a_broken_migration_in_the_middle() {
    let Some((test_db, ws)) = migrated_workspace("broken") else {
        return;
    };
    let dir = ws.path().join("migrations");
    fs::rename(
        dir.join("V3__subscriptions_and_payments.sql"),
        dir.join("V5__subscriptions_and_payments.sql"),
    )
    .unwrap();
    fs::write(dir.join("V3__broken.sql"), "-- V3: half good, half bad\nCREATE TABLE first_half (id int);\n\nCREATE TABEL second_half (id int);\n").unwrap();
    let out = assert_cmd_snapshot!(
        "migrate_broken_migration",
        filters(&ws, &test_db),
        db(&ws, &test_db).arg("migrate")
    );
    assert_eq!(
        out.code, 2,
        "a migration the server rejects is bad input: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .starts_with("migrations/V3__broken.sql:4:8: error: syntax error at or near \"TABEL\""),
        "{}",
        out.stderr
    );
    assert_eq!(
        test_db.sql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM refinery_schema_history"
        ),
        "1,2"
    );
    assert_eq!(
        test_db.sql("SELECT to_regclass('first_half') IS NULL"),
        "t",
        "the failing migration left nothing behind"
    );
    assert_eq!(
        test_db.sql("SELECT to_regclass('listings') IS NOT NULL"),
        "t",
        "the ones before it stay"
    );
}

#[test]
fn verify_finds_a_column_added_by_hand() {
    let Some((test_db, ws)) = migrated_workspace("verify") else {
        return;
    };
    assert_eq!(run(db(&ws, &test_db).arg("migrate")).code, 0);
    let clean = run(db(&ws, &test_db).arg("verify"));
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    test_db.sql("ALTER TABLE listings ADD COLUMN handmade text");
    let drift = assert_cmd_snapshot!(
        "verify_drift",
        filters(&ws, &test_db),
        db(&ws, &test_db).arg("verify")
    );
    drift.assert_stdout(1, &["+    handmade text"]);
    let scratch =
        test_db.sql("SELECT count(*) FROM pg_database WHERE datname LIKE 'goodgo_verify_%'");
    assert_eq!(scratch, "0", "the throwaway database is dropped");
}

#[test]
fn reset_refuses_in_production_and_without_confirmation() {
    let Some((test_db, ws)) = migrated_workspace("reset") else {
        return;
    };
    assert_eq!(run(db(&ws, &test_db).arg("migrate")).code, 0);
    test_db
        .sql("INSERT INTO users (email, password_hash) VALUES ('keep@x.test', '$argon2id$v=19$x')");

    let out = assert_cmd_snapshot!(
        "reset_refused_by_environment",
        filters(&ws, &test_db),
        db(&ws, &test_db)
            .env("GOODGO_ENV", "production")
            .args(["reset", "--yes"])
    );
    out.assert_stderr(2, &["refusing to reset", "GOODGO_ENV = production"]);
    let prod = workspace_with_migrations("env: production\n");
    let out = assert_cmd_snapshot!(
        "reset_refused_by_goodgo_yaml",
        filters(&prod, &test_db),
        db(&prod, &test_db).args(["reset", "--yes"])
    );
    out.assert_stderr(2, &["`env` in goodgo.yaml"]);
    let out = assert_cmd_snapshot!(
        "reset_without_confirmation",
        filters(&ws, &test_db),
        db(&ws, &test_db)
            .arg("reset")
            .stdin(std::process::Stdio::null())
    );
    assert_eq!(out.code, 2, "no terminal, no --yes: {}", out.stderr);
    assert_eq!(
        test_db.sql("SELECT count(*) FROM users WHERE email = 'keep@x.test'"),
        "1",
        "nothing lost"
    );

    let out = run(db(&ws, &test_db).args(["reset", "--yes", "--listings", "200"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        test_db.sql("SELECT count(*) FROM users WHERE email = 'keep@x.test'"),
        "0"
    );
    assert_eq!(test_db.sql("SELECT count(*) FROM listings"), "200");
}

#[test]
fn seed_is_deterministic_and_refuses_a_full_database() {
    let Some(a) = TestDb::create("seed_a") else {
        return;
    };
    let Some(b) = TestDb::create("seed_b") else {
        return;
    };
    let ws = workspace_with_migrations("");
    for d in [&a, &b] {
        assert_eq!(run(db(&ws, d).arg("migrate")).code, 0);
        let out = run(db(&ws, d).args(["seed", "--listings", "3000"]));
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let fingerprint = "SELECT md5(string_agg(concat_ws('|', id, owner_id, title, price, city, district, bedrooms, status, published_at), ',' ORDER BY id)) FROM listings";
    assert_eq!(a.sql(fingerprint), b.sql(fingerprint));
    assert_eq!(a.sql("SELECT count(DISTINCT city) >= 6, count(DISTINCT property_type) = 7, count(*) FILTER (WHERE status = 'active') > 2000 FROM listings"), "t|t|t");
    let again = assert_cmd_snapshot!(
        "seed_refuses_a_full_database",
        filters(&ws, &a),
        db(&ws, &a).args(["seed", "--listings", "10"])
    );
    again.assert_stderr(1, &["already has"]);
}

#[test]
fn new_and_lint() {
    let Some((test_db, ws)) = migrated_workspace("lint") else {
        return;
    };
    let out = run(goodgo(ws.path()).args(["db", "lint", "--all"]));
    if out.code != 0 && out.stderr.contains("squawk is not installed") {
        assert!(!crate::strict(), "cargo xtask test installs squawk");
        crate::skip("new_and_lint", "squawk is not installed");
        return;
    }
    assert_eq!(
        (
            out.code,
            out.stdout.starts_with("0 finding(s), 0 error(s), in ")
        ),
        (0, true),
        "the project's migrations lint clean: {}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(run(db(&ws, &test_db).arg("migrate")).code, 0);

    let created = run(goodgo(ws.path()).args(["db", "new", "Add listing views!"]));
    assert_eq!(
        (created.code, created.stdout.as_str()),
        (0, "created migrations/V5__add_listing_views.sql\n")
    );
    let path = ws.path().join("migrations/V5__add_listing_views.sql");
    let mut sql = fs::read_to_string(&path).unwrap();
    assert!(sql.starts_with("-- V5: Add listing views!\n"));
    sql.push_str("ALTER TABLE listings ADD COLUMN views integer NOT NULL;\n");
    fs::write(&path, &sql).unwrap();
    let lines = sql.lines().count();

    let out = assert_cmd_snapshot!(
        "lint_warning",
        filters(&ws, &test_db),
        db(&ws, &test_db).arg("lint")
    );
    assert_eq!(out.code, 1, "a rule fired: {}{}", out.stdout, out.stderr);
    assert_has(
        &out.stdout,
        &[
            ": warning: ",
            &format!("migrations/V5__add_listing_views.sql:{lines}:"),
            "[adding-required-field]",
        ],
    );
    assert!(
        !out.stdout.contains("V2__listings"),
        "only pending migrations are linted"
    );
    assert!(
        out.stdout.ends_with(", 0 error(s), in 1 migration(s)\n"),
        "{}",
        out.stdout
    );
    // SQL squawk cannot parse is an error: exit 1.
    fs::write(&path, format!("{sql}CREATE TABEL oops (id bigint);\n")).unwrap();
    let out = assert_cmd_snapshot!(
        "lint_parse_error",
        filters(&ws, &test_db),
        db(&ws, &test_db).arg("lint")
    );
    out.assert_stdout(1, &[": error: "]);
}

#[test]
fn url_and_psql() {
    let Some((test_db, ws)) = migrated_workspace("url") else {
        return;
    };
    let out = run(db(&ws, &test_db).arg("url"));
    assert_eq!(out.stdout.trim(), test_db.url);
    let out = run(goodgo(ws.path()).args(["db", "--database-url", &test_db.url, "url", "--json"]));
    assert_eq!(out.json()["source"], "--database-url");
    let mut child = db(&ws, &test_db)
        .arg("psql")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT 6 * 7 AS answer;\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("42"));

    let none = assert_cmd_snapshot!(
        "url_without_a_database",
        filters(&ws, &test_db),
        ws.command().args(["db", "url"])
    );
    none.assert_stderr(
        2,
        &["hint: start the stack with `goodgo up`, or pass --database-url"],
    );
}

/// On seeded data, the search queries the API runs are served by the schema's indexes.
#[test]
fn search_queries_use_the_indexes() {
    let Some((test_db, ws)) = migrated_workspace("explain") else {
        return;
    };
    assert_eq!(run(db(&ws, &test_db).arg("migrate")).code, 0);
    assert_eq!(
        run(db(&ws, &test_db).args(["seed", "--listings", "30000"])).code,
        0
    );
    use goodgo_db::search::{Filters, Param, Sort};
    let cases: Vec<(Filters, &str)> = vec![
        (
            Filters {
                limit: 20,
                ..Filters::default()
            },
            "listings_active_recent_idx",
        ),
        (
            Filters {
                city: Some("Da Nang".into()),
                min_bedrooms: Some(2),
                limit: 20,
                ..Filters::default()
            },
            "listings_active_city_recent_idx",
        ),
        (
            Filters {
                q: Some("charming villa".into()),
                sort: Sort::Relevance,
                limit: 20,
                ..Filters::default()
            },
            "listings_active_search_idx",
        ),
        (
            Filters {
                sort: Sort::PriceAsc,
                limit: 20,
                ..Filters::default()
            },
            "listings_active_price_idx",
        ),
        (
            Filters {
                min_price: Some("100000".into()),
                max_price: Some("120000".into()),
                sort: Sort::PriceAsc,
                limit: 20,
                ..Filters::default()
            },
            "listings_active_price_idx",
        ),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = goodgo_db::admin::Target::parse(&test_db.url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        for (filters, index) in cases {
            let q = filters.to_query();
            let params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync>> = q
                .params
                .iter()
                .map(|p| -> Box<dyn tokio_postgres::types::ToSql + Sync> {
                    match p {
                        Param::Text(t) => Box::new(t.clone()),
                        Param::Int(i) => Box::new(*i),
                    }
                })
                .collect();
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                params.iter().map(|b| b.as_ref()).collect();
            let rows = client
                .query(&format!("EXPLAIN {}", q.sql), &refs)
                .await
                .unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
            let plan = plan.join("\n");
            assert!(
                plan.contains(&format!("Index Scan using {index}"))
                    || plan.contains(&format!("Bitmap Index Scan on {index}")),
                "{filters:?} should use {index}:\n{plan}"
            );
            assert!(!plan.contains("Seq Scan"), "{filters:?}:\n{plan}");
            // And the query runs and answers.
            let found = client.query(&q.sql, &refs).await.unwrap();
            assert!(!found.is_empty(), "{filters:?} finds seeded listings");
        }
    });
}

/// The database URL comes from `--database-url`, else `GOODGO_DATABASE_URL`, else
/// goodgo.yaml, and `migrate --target` stops at that version.
#[test]
fn url_sources_in_order_and_migrate_to_a_target() {
    let Some(test_db) = TestDb::create("url_order") else {
        return;
    };
    let ws = workspace_with_migrations(&format!("database_url: {}\n", test_db.url));
    let other = "postgres://nobody@127.0.0.1:1/elsewhere";
    let url = |cmd: &mut std::process::Command, flags: &[&str]| {
        let out = run(cmd.args(["--json", "db"]).args(flags).arg("url"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let json = out.json();
        (
            json["url"].as_str().unwrap_or_default().to_string(),
            json["source"].as_str().unwrap_or_default().to_string(),
        )
    };
    let (from_file, source) = url(&mut goodgo(ws.path()), &[]);
    assert_eq!(from_file, test_db.url);
    assert!(source.contains("goodgo.yaml"), "{source}");
    let (from_env, source) = url(goodgo(ws.path()).env("GOODGO_DATABASE_URL", other), &[]);
    assert_eq!(
        (from_env.as_str(), source.as_str()),
        (other, "GOODGO_DATABASE_URL")
    );
    let (from_flag, source) = url(
        goodgo(ws.path()).env("GOODGO_DATABASE_URL", other),
        &["--database-url", &test_db.url],
    );
    assert_eq!(
        (from_flag.as_str(), source.as_str()),
        (test_db.url.as_str(), "--database-url")
    );

    // goodgo.yaml's URL is the one migrated.
    let out = run(goodgo(ws.path()).args(["db", "migrate", "--target", "2"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        test_db.sql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM refinery_schema_history"
        ),
        "1,2"
    );
    let status = run(goodgo(ws.path()).args(["db", "status", "--json"]));
    assert_eq!(
        states(&status),
        ["applied", "applied", "pending", "pending"]
    );
}
