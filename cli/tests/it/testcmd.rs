//! `goodgo test`: the pipeline's test steps alone (not their dependencies), each run with a
//! fresh copy of the workspace's migrated template database (dropped afterwards), extra
//! arguments after `--` passed to the test command, and a failing test's exit status.

use crate::{TestDb, goodgo, run, workspace_with_migrations};

/// A test step that records its database URL, the migrations applied there, and its
/// arguments, and proves its database is fresh (the table it creates must not exist yet).
const PIPELINE: &str = r#"steps:
  lint:
    run: "echo linted >> ran.log"
  unit:
    run: "set -e; echo \"$DATABASE_URL\" >> urls.txt; psql \"$DATABASE_URL\" -Atc 'SELECT count(*) FROM refinery_schema_history' >> counts.txt; psql -q \"$DATABASE_URL\" -c 'CREATE TABLE marker (x int)'; printf '%s\n' > args.txt"
    deps: [lint]
    test: true
"#;

#[test]
fn test_steps_run_alone_each_with_a_fresh_migrated_database() {
    let Some(server) = TestDb::create("goodgo_test_cmd") else {
        return;
    };
    let ws = workspace_with_migrations("name: testcmd\n");
    ws.write("ci/pipeline.yaml", PIPELINE);
    let test = |args: &[&str]| {
        run(goodgo(ws.path())
            .env("GOODGO_DATABASE_URL", server.server_url())
            .env_remove("GITHUB_ACTIONS")
            .arg("test")
            .args(args))
    };
    let first = test(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = test(&["--", "one", "two words"]);
    assert_eq!(second.code, 0, "{}", second.stderr);

    assert!(
        !ws.join("ran.log").exists(),
        "the lint dependency did not run"
    );
    assert_eq!(ws.read("counts.txt"), "4\n4\n", "migrated, every time");
    assert_eq!(ws.read("args.txt"), "one\ntwo words\n");
    let urls = ws.read("urls.txt");
    let names: Vec<&str> = urls
        .lines()
        .map(|u| u.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert_ne!(names[0], names[1], "a database of its own each run");
    for name in &names {
        assert_eq!(
            server.sql(&format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
            )),
            "0",
            "{name} is dropped after the run"
        );
    }
    assert_eq!(
        server.sql(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'goodgo\\_tmpl\\_testcmd\\_%'"
        ),
        "1",
        "one template, reused"
    );

    // Without a database, and a failing test.
    ws.write(
        "ci/pipeline.yaml",
        "steps:\n  test:\n    run: \"test -z \\\"$DATABASE_URL\\\" && exit 3\"\n",
    );
    let failed = test(&["--no-db"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let report = format!("{}{}", failed.stdout, failed.stderr);
    assert!(
        report.contains("exit status 3") || report.contains("exit 3") || report.contains("code 3"),
        "{report}"
    );

    // A pipeline without test steps is bad input.
    ws.write("ci/pipeline.yaml", "steps:\n  fmt:\n    run: \"true\"\n");
    let none = test(&[]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("has no test steps"), "{}", none.stderr);
}
