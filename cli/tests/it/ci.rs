//! `goodgo ci` in real git repositories with small `sh -c` steps: the cache (hits, outputs
//! restored, logs replayed, misses on input, env and command changes, corrupted entries,
//! two concurrent runs), failures and their reports (exit 1, skipped dependants, GitHub
//! annotations, JUnit read back by `junitparser`), `--affected`, `--explain`, and a corpus
//! of broken pipelines.

use std::collections::BTreeMap;
use std::process::Command;

use crate::{Expect, TestContext, context, goodgo, run, strict};

const PIPELINE: &str = r#"steps:
  gen:
    run: "cat src/a.txt > gen.txt && echo generated"
    inputs: ["src/a.txt"]
    outputs: ["gen.txt"]
  use:
    run: "cat gen.txt && echo used >> ran.log"
    deps: [gen]
    inputs: ["gen.txt"]
  other:
    run: "echo other $MODE; echo other >> ran.log"
    inputs: ["src/b.txt"]
    env: [MODE]
"#;

fn workspace(pipeline: &str) -> TestContext {
    let ctx = context()
        .with_file("goodgo.yaml", "name: shop\n")
        .with_file(".gitignore", "ran.log\ngen.txt\nreport.xml\n")
        .with_file("ci/pipeline.yaml", pipeline)
        .with_file("src/a.txt", "a1\n")
        .with_file("src/b.txt", "b1\n");
    git(&ctx, &["init", "-q", "-b", "main"]);
    git(&ctx, &["add", "-A"]);
    git(&ctx, &["commit", "-q", "-m", "base"]);
    ctx
}

fn git(ctx: &TestContext, args: &[&str]) -> String {
    let out = run(Command::new("git")
        .current_dir(ctx.path())
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args));
    assert_eq!(out.code, 0, "git {args:?}: {}", out.stderr);
    out.stdout.trim().to_string()
}

fn ci_cmd(ctx: &TestContext, args: &[&str]) -> Command {
    let mut cmd = goodgo(ctx.path());
    cmd.env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_BASE_REF")
        .env("MODE", "one")
        .arg("ci")
        .args(args);
    cmd
}

/// Runs `goodgo ci --json ARGS`: the exit code and each step's status.
fn ci(ctx: &TestContext, args: &[&str]) -> (i32, BTreeMap<String, String>) {
    ci_with(ctx, args, |_| {})
}

fn ci_with(
    ctx: &TestContext,
    args: &[&str],
    adjust: impl FnOnce(&mut Command),
) -> (i32, BTreeMap<String, String>) {
    let mut cmd = ci_cmd(ctx, args);
    cmd.arg("--json");
    adjust(&mut cmd);
    let out = run(&mut cmd);
    let mut steps = BTreeMap::new();
    for line in out.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", out.stderr));
        if let Some(step) = v["step"].as_str() {
            steps.insert(step.to_string(), v["status"].as_str().unwrap().to_string());
        }
    }
    (out.code, steps)
}

fn statuses(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn ran_count(ctx: &TestContext) -> usize {
    std::fs::read_to_string(ctx.join("ran.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn the_cache_runs_only_what_changed() {
    let ctx = workspace(PIPELINE);
    let (code, first) = ci(&ctx, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        first,
        statuses(&[("gen", "passed"), ("other", "passed"), ("use", "passed")])
    );
    assert_eq!(ran_count(&ctx), 2);

    // Nothing changed: every step a hit, no process run, the output restored, logs replayed.
    std::fs::remove_file(ctx.join("gen.txt")).unwrap();
    // The log is replayed ("generated").
    run(&mut ci_cmd(&ctx, &["-v"]))
        .assert_stderr(0, &["↺ gen cached", "generated", "0 ran, 3 cached"]);
    assert_eq!(ran_count(&ctx), 2);
    assert_eq!(ctx.read("gen.txt"), "a1\n", "output restored");

    // One input touched: that step and its dependants rerun, nothing else.
    ctx.write("src/a.txt", "a2\n");
    let (_, third) = ci(&ctx, &[]);
    assert_eq!(
        third,
        statuses(&[("gen", "passed"), ("other", "cached"), ("use", "passed")])
    );

    // --explain names the changed file (and the dependency it changed).
    ctx.write("src/a.txt", "a3\n");
    run(&mut ci_cmd(&ctx, &["--explain", "use"])).assert_stdout(
        0,
        &[
            "will run",
            "dependency `gen` changed",
            "input file `src/a.txt` changed",
        ],
    );
    let out = run(&mut ci_cmd(&ctx, &["--explain", "other"]));
    assert!(out.stdout.contains("other: cache hit"), "{}", out.stdout);

    // A named env value: a miss.
    let (_, env) = ci_with(&ctx, &["other"], |c| {
        c.env("MODE", "two");
    });
    assert_eq!(env, statuses(&[("other", "passed")]));
    let out = run(ci_cmd(&ctx, &["--explain", "other"]).env("MODE", "three"));
    assert!(
        out.stdout.contains("env `MODE` value changed"),
        "{}",
        out.stdout
    );

    // A changed command: a miss.
    ctx.write(
        "ci/pipeline.yaml",
        &PIPELINE.replace("echo other $MODE", "echo another $MODE"),
    );
    let (_, cmd) = ci(&ctx, &["other"]);
    assert_eq!(cmd, statuses(&[("other", "passed")]));

    // --dry-run says what would run and runs nothing.
    let before = ran_count(&ctx);
    run(&mut ci_cmd(&ctx, &["--dry-run"])).assert_stdout(0, &["cached  other", "run     gen"]);
    assert_eq!(ran_count(&ctx), before);
}

#[test]
fn a_corrupted_entry_is_a_miss() {
    let ctx = workspace(PIPELINE);
    assert_eq!(ci(&ctx, &["other"]).0, 0);
    let entries = ctx.join(".goodgo/cache/ci/entries");
    let mut n = 0;
    for entry in std::fs::read_dir(&entries).unwrap() {
        let dir = entry.unwrap().path();
        std::fs::write(dir.join("log"), "tampered").unwrap();
        n += 1;
    }
    assert_eq!(n, 1);
    let (code, steps) = ci(&ctx, &["other"]);
    assert_eq!(code, 0);
    assert_eq!(steps, statuses(&[("other", "passed")]));
    // Stored again, whole: the next run is a hit.
    assert_eq!(ci(&ctx, &["other"]).1, statuses(&[("other", "cached")]));
    // Garbage in meta.json: a miss too, never a crash.
    for entry in std::fs::read_dir(&entries).unwrap() {
        std::fs::write(entry.unwrap().path().join("meta.json"), "{not json").unwrap();
    }
    assert_eq!(ci(&ctx, &["other"]), (0, statuses(&[("other", "passed")])));
}

#[test]
fn two_concurrent_runs_share_the_cache() {
    let ctx = workspace(
        "steps:\n  slow: { run: \"sleep 0.5; echo slow >> ran.log\", inputs: [src/a.txt] }\n",
    );
    let mut a = ci_cmd(&ctx, &[]).spawn().unwrap();
    let mut b = ci_cmd(&ctx, &[]).spawn().unwrap();
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    // The entry's lock made the second wait for the first, then hit.
    assert_eq!(ran_count(&ctx), 1);
}

const FAILING: &str = r#"steps:
  broken:
    run: "echo 'src/lib.rs:3:7: error: no such thing'; exit 3"
  after:
    run: "echo never >> ran.log"
    deps: [broken]
  apart:
    run: "echo apart >> ran.log"
  tests:
    run: "printf 'running 3 tests\ntest a::one ... ok\ntest a::two ... FAILED\ntest b ... ok\n\nfailures:\n\n---- a::two stdout ----\nboom\n\nfailures:\n    a::two\n\ntest result: FAILED. 2 passed; 1 failed\n'; exit 101"
    junit: libtest
"#;

#[test]
fn a_failing_step_skips_its_dependants_only() {
    let ctx = workspace(FAILING);
    let summary = ctx.join("summary.md");
    let out = run(ci_cmd(&ctx, &["-j", "2", "--junit", "report.xml"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary));
    out.assert_stdout(
        1,
        &[
            "::error file=src/lib.rs,line=3,col=7::no such thing",
            "::group::broken (failed)",
        ],
    )
    .assert_stderr(1, &["- after dependency `broken` did not succeed"]);
    assert_eq!(ctx.read("ran.log"), "apart\n");
    let md = ctx.read("summary.md");
    assert!(md.contains("| `broken` | ❌ failed"), "{md}");

    // The JUnit report, read by a real JUnit parser.
    let script = "import sys, junitparser\n\
x = junitparser.JUnitXml.fromfile(sys.argv[1])\n\
cases = [(s.name, c.name, 'fail' if any(isinstance(r, junitparser.Failure) for r in c.result) else 'skip' if any(isinstance(r, junitparser.Skipped) for r in c.result) else 'ok') for s in x for c in s]\n\
print(x.tests, x.failures, x.skipped)\n\
for c in cases: print(*c)\n";
    let parsed = run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(ctx.join("report.xml")));
    if parsed.code != 0 && parsed.stderr.contains("No module named") && !strict() {
        eprintln!("skipped: junitparser is not installed");
        return;
    }
    assert_eq!(parsed.code, 0, "{}", parsed.stderr);
    assert_eq!(
        parsed.stdout,
        "6 2 1\nafter after skip\napart apart ok\nbroken broken fail\ntests a::one ok\ntests a::two fail\ntests b ok\n"
    );
}

#[test]
fn affected_runs_what_the_diff_touches() {
    let ctx = workspace(PIPELINE);
    let base = git(&ctx, &["rev-parse", "HEAD"]);
    git(&ctx, &["checkout", "-q", "-b", "feature"]);
    ctx.write("src/b.txt", "b2\n");
    git(&ctx, &["commit", "-q", "-am", "change b"]);
    let (code, steps) = ci(&ctx, &["--affected", "--base", &base]);
    assert_eq!(code, 0);
    assert_eq!(steps, statuses(&[("other", "passed")]));
    // A working-tree change counts too; `use` depends on `gen`, so both run.
    ctx.write("src/a.txt", "a9\n");
    let (_, steps) = ci(&ctx, &["--affected", "--base", "main"]);
    assert_eq!(
        steps,
        statuses(&[("gen", "passed"), ("other", "cached"), ("use", "passed")])
    );
}

#[test]
fn broken_pipelines_are_located() {
    let corpus = [
        (
            "steps:\n  a: { run: make, deps: [b] }\n  b: { run: make, deps: [a] }\n",
            "ci/pipeline.yaml:2:26: error: dependency cycle: a -> b -> a",
        ),
        (
            "steps:\n  test: { run: make, deps: [tset] }\n",
            "ci/pipeline.yaml:2:29: error: step `test` depends on unknown step `tset` (did you mean `test`?)",
        ),
        (
            "steps:\n  a:\n    run: make\n    inputs: [\"src/[\"]\n",
            "ci/pipeline.yaml:4:14: error: bad input glob `src/[`",
        ),
        (
            "steps:\n  a:\n    run: make\n    allow_failure: sometimes\n",
            "ci/pipeline.yaml:4:20: error:",
        ),
        (
            "steps:\n  a:\n    run: make\n    timeout: soon\n",
            "ci/pipeline.yaml:4:14: error: bad timeout `soon`",
        ),
    ];
    for (text, expected) in corpus {
        let ctx = context()
            .with_file("goodgo.yaml", "name: shop\n")
            .with_file("ci/pipeline.yaml", text);
        let out = run(&mut ci_cmd(&ctx, &[]));
        assert_eq!(out.code, 2, "{text}\n{}", out.report());
        assert!(out.stderr.starts_with(expected), "{text}\n{}", out.stderr);
    }
}

#[test]
fn the_projects_pipeline_and_the_template_check() {
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path().to_str().unwrap();
    let out = run(goodgo(&crate::repo()).env_remove("GITHUB_ACTIONS").args([
        "ci",
        "--dry-run",
        "--json",
        "--cache-dir",
        cache,
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let steps = out.json()["steps"].as_array().unwrap().len();
    assert_eq!(steps, 7);

    let tmp = context();
    let out = run(goodgo(tmp.path()).args(["init", "app"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(goodgo(&tmp.join("app")).env_remove("GITHUB_ACTIONS").args([
        "ci",
        "--dry-run",
        "--json",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids = crate::json_fields(&out.json(), "steps", "step");
    assert_eq!(ids, ["clippy", "fmt", "migrations-lint", "test"]);
}

#[test]
fn a_postgres_step_gets_a_migrated_throwaway_database() {
    let Some(test_db) = crate::TestDb::create("ci_service") else {
        return;
    };
    let ws = crate::workspace_with_migrations("name: shop\n");
    ws.write(
        "ci/pipeline.yaml",
        "steps:\n  db:\n    run: \"echo \\\"$DATABASE_URL\\\" > url.txt; psql \\\"$DATABASE_URL\\\" -Atc 'SELECT count(*) FROM refinery_schema_history' > count.txt\"\n    services: [postgres]\n    inputs: [migrations]\n",
    );
    let out = run(ci_cmd(&ws, &[]).env("GOODGO_DATABASE_URL", test_db.server_url()));
    assert_eq!(out.code, 0, "{}", out.report());
    let migrations = std::fs::read_dir(ws.join("migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .count();
    assert_eq!(ws.read("count.txt").trim(), migrations.to_string());
    let url = ws.read("url.txt");
    let name = url.trim().rsplit('/').next().unwrap().to_string();
    assert!(name.starts_with("goodgo_ci_"), "{url}");
    assert_eq!(
        test_db.sql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        )),
        "0",
        "dropped after the step"
    );
}

#[test]
fn lint_runs_the_lint_steps_and_fix_their_fixers() {
    let ctx = workspace(
        "steps:\n  style:\n    run: grep -q tidy notes.txt\n    lint: true\n    fix: echo tidy > notes.txt\n    inputs: [notes.txt]\n  build:\n    run: echo built >> ran.log\n",
    );
    ctx.write("notes.txt", "messy\n");
    let out = run(goodgo(ctx.path()).arg("lint"));
    assert_eq!(out.code, 1, "{}", out.report());
    assert!(out.stderr.contains("✗ style"), "{}", out.stderr);
    assert_eq!(ran_count(&ctx), 0, "only lint steps run");
    let out = run(goodgo(ctx.path()).args(["lint", "--fix"]));
    assert_eq!(out.code, 0, "{}", out.report());
    assert_eq!(ctx.read("notes.txt"), "tidy\n");
    let none = context()
        .with_file("goodgo.yaml", "name: shop\n")
        .with_file("ci/pipeline.yaml", "steps:\n  a: { run: make }\n");
    let out = run(goodgo(none.path()).arg("lint"));
    assert_eq!(out.code, 2, "{}", out.report());
}

#[test]
fn an_interrupt_stops_the_running_steps() {
    let ctx = workspace(
        "steps:\n  long:\n    run: \"echo $$ > pid.txt; sleep 30; echo late > late.txt\"\n    cache: false\n",
    );
    let mut child = crate::ChildGuard::new(
        ci_cmd(&ctx, &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    crate::wait_until(
        "the step started",
        std::time::Duration::from_secs(10),
        || {
            !std::fs::read_to_string(ctx.join("pid.txt"))
                .unwrap_or_default()
                .trim()
                .is_empty()
        },
    );
    let step_pid = ctx.read("pid.txt").trim().to_string();
    child.signal(goodgo_testkit::Signal::INT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    crate::wait_until(
        "the step's process is gone",
        std::time::Duration::from_secs(5),
        || !std::path::Path::new(&format!("/proc/{step_pid}")).exists(),
    );
    assert!(!ctx.join("late.txt").exists());
}
