//! `--json` keeps stdout JSON for every command: one value, or one object per line for a
//! stream, and `{"error": …}` when a command fails — whatever the command and however it
//! ends. Progress, warnings and human text go to stderr.

use crate::{TestDb, goodgo, repo, workspace_with_migrations};

/// Every line of `stdout` that holds anything parses as JSON; a failing command's last
/// value is an `{"error": …}` object.
fn assert_json_only(args: &[&str], code: i32, stdout: &str) {
    let values: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{args:?}: a stdout line is not JSON ({e}): {l}"))
        })
        .collect();
    // A pretty-printed value spans lines: parse the whole when the lines alone do not.
    let values = if values.is_empty() && !stdout.trim().is_empty() {
        vec![serde_json::from_str(stdout).unwrap()]
    } else {
        values
    };
    // A stream (`logs`) of nothing is no lines; every other command says something.
    assert!(
        !values.is_empty() || (args[0] == "logs" && code == 0),
        "{args:?}: nothing on stdout (exit {code})"
    );
    if code != 0 {
        assert!(
            values.last().is_some_and(|v| v.get("error").is_some()),
            "{args:?} exited {code} without an error object: {stdout}"
        );
    }
}

/// Runs `goodgo --json ARGS` in `dir` and checks its stdout; returns the exit code.
fn json_run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> i32 {
    let mut cmd = goodgo(dir);
    cmd.arg("--json").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Pretty-printed values are one document: accept that form as well as JSON lines.
    if serde_json::from_str::<serde_json::Value>(&stdout).is_ok() {
        let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        if code != 0 {
            assert!(
                value.get("error").is_some(),
                "{args:?} exited {code} without an error object: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    } else {
        assert_json_only(args, code, &stdout);
    }
    code
}

#[test]
fn every_command_keeps_stdout_json() {
    let ws = workspace_with_migrations("name: jsonws\n");
    ws.copy_from_repo("docs/plan.yaml")
        .copy_from_repo("compose")
        .copy_from_repo("ci/pipeline.yaml");
    let dir = ws.path();
    let backups = tempfile::tempdir().unwrap();
    let backups_dir = backups.path().to_str().unwrap();

    // Commands that need no database, successes and failures alike.
    for (args, code) in [
        (&["config"][..], 0),
        (&["doctor"], -1),
        (&["plan", "check"], 0),
        (&["plan", "waves"], 0),
        (&["plan", "next"], 0),
        (&["plan", "critical-path"], 0),
        (&["plan", "status"], 0),
        (&["plan", "show", "TEC-1415"], 0),
        (&["plan", "show", "TEC-0"], 2),
        (&["up", "--dry-run", "--runtime", "native"], 0),
        (&["status"], 0),
        (&["logs", "--tail", "1"], 0),
        (&["ci", "--dry-run"], 0),
        (&["backup", "list", "--to", backups_dir], 0),
        (&["db", "new", "add_things"], 0),
        (&["no-such-command"], 2),
        (&["db", "migrate", "--target"], 2),
    ] {
        let got = json_run(dir, &[], args);
        if code >= 0 {
            assert_eq!(got, code, "{args:?}");
        }
    }
    let none = tempfile::tempdir().unwrap();
    assert_eq!(json_run(none.path(), &[], &["init", "fresh"]), 0);
    assert_eq!(json_run(none.path(), &[], &["status"]), 2);
    assert_eq!(json_run(&repo(), &[], &["plan", "render", "--check"]), 0);

    // And with a database.
    let Some(db) = TestDb::create("json_everywhere") else {
        return;
    };
    let env = [("GOODGO_DATABASE_URL", db.url.as_str())];
    for (args, code) in [
        (&["db", "url"][..], 0),
        (&["db", "migrate"], 0),
        (&["db", "status"], 0),
        (&["db", "seed", "--if-empty", "--listings", "5"], 0),
        (&["db", "verify"], 0),
        (&["backup", "create", "--to", backups_dir], 0),
        (&["backup", "list", "--to", backups_dir], 0),
    ] {
        let got = json_run(dir, &env, args);
        if code >= 0 {
            assert_eq!(got, code, "{args:?}");
        }
    }
}
