//! Commands that work on what runs, not on what the Compose file says today: the `db`
//! commands follow a stack started on another port, `down`/`status`/`logs` work while the
//! Compose file is broken (and say its error), and `logs --json` is JSON only. Each body
//! runs on the Docker engine and natively.

use std::path::Path;

use goodgo_testkit::stack_test;

use crate::{context, free_port, goodgo, run};

/// A stack of one PostgreSQL whose published port comes from `APP_PG_PORT`, defaulting to
/// `decoy` (a port the test never starts anything on); `up` returns once it answers.
fn compose(decoy: u16) -> String {
    let postgres = crate::stack::postgres_service(&format!("${{APP_PG_PORT:-{decoy}}}"), "");
    format!("services:\n{postgres}")
}

/// Stops the project when the test ends, also when it fails (the file may be broken by
/// then: `down -p` needs nothing from it).
struct DownOnDrop<'a>(&'a Path, String);
impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        let _ = goodgo(self.0)
            .args(["-q", "down", "--volumes", "-p", &self.1])
            .output();
    }
}

stack_test!(
    /// Started with `APP_PG_PORT=<port>`, then asked without it: `db url` and `db status`
    /// use the port the service really publishes (the file alone names the decoy);
    /// `logs --json` prints one JSON object per line; with the Compose file broken, `db url`
    /// still finds the running database, `status` and `down` work from what runs and say
    /// the file's `path:line:col` error; once nothing runs, that error is the answer.
    db_and_down_follow_what_runs,
    |rt| {
        let project = format!("ggrun{rt}{}", std::process::id());
        let (port, decoy) = (free_port(), free_port());
        let ws = context()
            .with_file("goodgo.yaml", &format!("name: {project}\n"))
            .with_file("compose/compose.yaml", &compose(decoy));
        let _down = DownOnDrop(ws.path(), project.clone());
        let up = run(goodgo(ws.path())
            .args(["up", "--runtime", rt.name()])
            .env("APP_PG_PORT", port.to_string()));
        assert_eq!(up.code, 0, "{}", up.stderr);

        let expected = format!("postgres://app:app-secret@127.0.0.1:{port}/appdb");
        let url = run(goodgo(ws.path()).args(["--json", "db", "url"]));
        assert_eq!(url.code, 0, "{}", url.stderr);
        let url = url.json();
        assert_eq!(url["url"], expected.as_str(), "{url}");
        let source = url["source"].as_str().unwrap();
        assert!(
            source.contains(&format!("project {project}")) && source.contains(rt.name()),
            "{source}"
        );
        let status = run(goodgo(ws.path()).args(["db", "status"]));
        assert_eq!(status.code, 0, "{}", status.stderr);

        let logs = run(goodgo(ws.path()).args(["--json", "logs", "--tail", "5"]));
        assert_eq!(logs.code, 0, "{}", logs.stderr);
        assert!(!logs.stdout.trim().is_empty(), "no log lines");
        for line in logs.stdout.lines() {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert_eq!(value["service"], "postgres", "{line}");
            assert!(value["line"].is_string(), "{line}");
        }

        // The file breaks while the stack runs (an unclosed flow sequence on line 2).
        ws.write("compose/compose.yaml", "services:\n  postgres: [\n");
        let url = run(goodgo(ws.path()).args(["--json", "db", "url"]));
        assert_eq!(url.code, 0, "{}", url.stderr);
        let url = url.json();
        assert_eq!(url["url"], expected.as_str(), "{url}");
        assert!(
            url["source"].as_str().unwrap().contains("does not load"),
            "{url}"
        );
        let status = run(goodgo(ws.path()).args(["--json", "status"]));
        assert_eq!(status.code, 0, "{}", status.stderr);
        assert!(status.stderr.contains("compose/compose.yaml:"), "{}", status.stderr);
        assert_eq!(status.json()["services"][0]["service"], "postgres");

        let down = run(goodgo(ws.path()).arg("down"));
        assert_eq!(down.code, 0, "{}", down.stderr);
        assert!(
            down.stderr.contains("compose/compose.yaml:") && down.stderr.contains("error"),
            "the file's error is said: {}",
            down.stderr
        );
        assert!(down.stdout.contains("stopped postgres"), "{}", down.stdout);
        assert!(
            !goodgo_stack::probe::tcp_open("127.0.0.1", port),
            "nothing answers on {port} after down"
        );

        // Nothing runs now: the file's error is the answer, not "no database".
        let url = run(goodgo(ws.path()).args(["db", "url"]));
        assert_eq!(url.code, 2, "{}", url.stderr);
        let first = url.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("compose/compose.yaml:") && first.contains(": error: "),
            "{}",
            url.stderr
        );
    }
);

/// Outside any workspace, the stack commands say that there is no goodgo.yaml (not that
/// a Compose file is missing), with the step that makes one.
#[test]
fn outside_a_workspace_status_names_the_missing_goodgo_yaml() {
    let dir = context();
    for args in [&["status"][..], &["up", "--dry-run"], &["logs"]] {
        let out = run(goodgo(dir.path()).args(args));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("not in a goodgo workspace")
                && out.stderr.contains("goodgo.yaml")
                && out.stderr.contains("goodgo init"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

stack_test!(
    /// Every taken port is named at once, and the hint names the variable that moves each
    /// (found in the file, not guessed from the service's name).
    taken_ports_are_all_named_with_their_variables,
    |rt| {
        let pg = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let cache = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (pg_port, cache_port) = (
            pg.local_addr().unwrap().port(),
            cache.local_addr().unwrap().port(),
        );
        let project = format!("ggclash{rt}{}", std::process::id());
        let ws = context()
            .with_file("goodgo.yaml", &format!("name: {project}\n"))
            .with_file(
                "compose/compose.yaml",
                &format!(
                    r#"services:
  db:
    image: goodgo/postgres:15
    environment: {{POSTGRES_PASSWORD: x}}
    ports: ["127.0.0.1:${{MY_DB_PORT:-{pg_port}}}:5432"]
  cache:
    image: goodgo/redis:7
    ports: ["127.0.0.1:${{CACHE_ON:-{cache_port}}}:6379"]
"#
                ),
            );
        let _down = DownOnDrop(ws.path(), project.clone());
        let out = run(goodgo(ws.path()).args(["up", "--runtime", rt.name()]));
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("{pg_port} on 127.0.0.1 for `db`"))
                && out.stderr.contains(&format!("{cache_port} on 127.0.0.1 for `cache`")),
            "both clashes named: {}",
            out.stderr
        );
        let hint = out
            .stderr
            .lines()
            .find(|l| l.starts_with("hint:"))
            .unwrap_or_default();
        assert!(
            hint.contains("CACHE_ON=") && hint.contains("MY_DB_PORT=") && !hint.contains("POSTGRES_PORT"),
            "{}",
            out.stderr
        );
    }
);

/// A service only Docker can run (a search engine), whose image is missing and cannot be pulled:
/// `auto` does not fall back to the native runtime (which would send the user back to
/// `--runtime docker`); the error names the image as one goodgo cannot build, and steps
/// that work.
#[test]
fn a_missing_image_only_docker_runs_is_the_error_not_a_loop() {
    if !crate::Runtime::Docker
        .available_or_skip("a_missing_image_only_docker_runs_is_the_error_not_a_loop")
    {
        return;
    }
    let project = format!("ggsearch{}", std::process::id());
    let ws = context()
        .with_file("goodgo.yaml", &format!("name: {project}\n"))
        .with_file(
            "compose/compose.yaml",
            "services:\n  search:\n    image: goodgo-test/search-absent:latest\n    profiles: [search]\n",
        );
    let _down = DownOnDrop(ws.path(), project.clone());
    let out = run(goodgo(ws.path()).args(["up", "--profile", "search"]));
    out.assert_stderr(
        1,
        &[
            "error: image goodgo-test/search-absent:latest for service `search` is not present locally and could not be pulled",
            "hint: goodgo cannot build goodgo-test/search-absent:latest",
            "leave `search` out",
        ],
    );
    assert!(
        !out.stderr.contains("--runtime") && !out.stderr.contains("xtask"),
        "no hint that leads back here: {}",
        out.stderr
    );
    let dry = run(goodgo(ws.path()).args(["up", "--profile", "search", "--dry-run"]));
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("the native runtime does not run it") && !dry.stdout.contains("xtask"),
        "{}",
        dry.stdout
    );
}
