//! What a new user meets first: `goodgo init` makes a workspace that every goodgo command
//! works with (`dev`, `db seed`, `db reset`, `db migrate` run twice), whose API survives a
//! client that resets its connection; `db redo` as the way out for a migration edited after
//! it was applied in development; and help text that says what it means.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// `GET path` on `addr` (host:port): the status and the body, `None` when nothing answers.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    goodgo_testkit::http::Http::new(addr, Duration::from_secs(5))
        .get(path)
        .map(|a| (a.status, a.body))
}

/// Opens a connection to `addr`, sends half a request and closes it with a TCP reset
/// (SO_LINGER 0), as a client that crashes or a load balancer that gives up does.
#[allow(deprecated)] // set_linger: the blocking close it warns about is what a reset avoids
fn reset_connection(addr: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_linger(Some(Duration::ZERO)).unwrap();
        let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
        stream.writable().await.unwrap();
        let _ = stream.try_write(b"GET /healthz");
        drop(stream);
    });
}

/// The ports and build folder of one test's stack, passed to every goodgo it runs; the
/// template's dependencies build once and are reused by later runs.
type Stack = DevPorts;

impl DevPorts {
    fn db(&self, args: &[&str]) -> Run {
        run(self.command().arg("db").args(args))
    }
}

impl Drop for Stack {
    /// Whatever happens in the test, the services do not outlive it.
    fn drop(&mut self) {
        let _ = self
            .command()
            .args(["-q", "down", "--volumes", "--yes"])
            .output();
    }
}

/// `goodgo dev` running, its output going to files.
struct Dev {
    child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Dev {
    fn start(stack: &Stack, logs: &Path) -> Dev {
        let (stdout, stderr) = (logs.join("dev.out"), logs.join("dev.err"));
        let child = stack
            .command()
            .args(["dev", "--runtime", "native"])
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Dev {
            child,
            stdout,
            stderr,
        }
    }

    fn output(&self) -> String {
        output(&self.stdout, &self.stderr)
    }

    fn panel(&mut self, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let out = fs::read_to_string(&self.stdout).unwrap_or_default();
            if out.contains("watching service/") {
                return out;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("dev ended ({status}) before its panel:\n{}", self.output());
            }
            assert!(start.elapsed() < limit, "no panel:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = rustix::process::kill_process(pid.unwrap(), signal);
    }

    fn interrupt(&mut self, limit: Duration) -> std::process::ExitStatus {
        let (stdout, stderr) = (&self.stdout, &self.stderr);
        interrupt(&mut self.child, limit, || output(stdout, stderr))
    }
}

/// What `dev` wrote to the files `stdout` and `stderr`.
fn output(stdout: &Path, stderr: &Path) -> String {
    format!(
        "{}\n--- stderr\n{}",
        fs::read_to_string(stdout).unwrap_or_default(),
        fs::read_to_string(stderr).unwrap_or_default()
    )
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(rustix::process::Signal::TERM);
            std::thread::sleep(Duration::from_millis(500));
            let _ = self.child.wait();
        }
    }
}

fn native_tools_present(test: &str) -> bool {
    let present = Path::new("/usr/lib/postgresql").exists()
        && Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok();
    if !present {
        assert!(!strict(), "cargo xtask test installs PostgreSQL and Redis");
        skip(test, "PostgreSQL or Redis is not installed");
    }
    present
}

#[test]
fn an_initialised_workspace_works_with_dev_seed_reset_migrate_and_redo() {
    let test = "an_initialised_workspace_works_with_dev_seed_reset_migrate_and_redo";
    if !native_tools_present(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let here = tmp.path().join("p");
    fs::create_dir(&here).unwrap();
    let name = format!("newuser{}", std::process::id());

    // `init ../NAME` prints where it wrote, as a plain absolute path.
    let out = run(goodgo(&here).args(["init", &format!("../{name}")]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ws = tmp.path().canonicalize().unwrap().join(&name);
    assert!(
        out.stdout
            .contains(&format!("created workspace `{name}` in {}\n", ws.display()))
            && out
                .stdout
                .contains(&format!("next: cd {} && goodgo dev\n", ws.display())),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("/../"), "{}", out.stdout);
    for committed in ["Cargo.lock", "seeds/dev.sql"] {
        let repo = git2::Repository::open(&ws).unwrap();
        let tree = repo.head().unwrap().peel_to_tree().unwrap();
        assert!(
            tree.get_path(Path::new(committed)).is_ok(),
            "{committed} is committed"
        );
    }

    let stack = DevPorts::new(ws.clone(), repo().join("target/newuser-template"));
    let addr = stack.addr.clone();
    let mut dev = Dev::start(&stack, tmp.path());
    let panel = dev.panel(Duration::from_secs(900));
    assert!(
        panel.contains(&format!("Docs      http://{addr}/docs\n")),
        "{panel}"
    );

    // What the panel advertises answers.
    assert_eq!(get(&addr, "/readyz").map(|r| r.0), Some(200));
    let (status, docs) = get(&addr, "/docs").unwrap();
    assert_eq!(status, 200, "{docs}");
    assert!(docs.contains("/notes"), "{docs}");

    // Clients that reset their connection end only their own connection.
    for _ in 0..5 {
        reset_connection(&addr);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(&addr, "/healthz").map(|r| r.0),
        Some(200),
        "{}",
        dev.output()
    );
    assert!(
        dev.child.try_wait().unwrap().is_none(),
        "dev still runs:\n{}",
        dev.output()
    );

    // `dev` seeded the empty database from the workspace's own seeds/dev.sql.
    assert!(
        dev.output().contains("seeded from seeds/dev.sql"),
        "{}",
        dev.output()
    );
    let (_, notes) = get(&addr, "/notes").unwrap();
    assert_eq!(notes.matches("\"id\"").count(), 3, "{notes}");

    // The template's seed fits the template's schema, and runs twice without harm.
    for _ in 0..2 {
        stack
            .db(&["seed"])
            .assert_stdout(0, &[&format!("seeded {name} from seeds/dev.sql")]);
    }
    let (status, notes) = get(&addr, "/notes").unwrap();
    assert_eq!(status, 200, "{notes}");
    assert_eq!(notes.matches("\"id\"").count(), 3, "{notes}");
    stack
        .db(&["seed", "--if-empty"])
        .assert_stdout(0, &["already has rows: nothing seeded"]);

    // Reset: recreated, migrated, seeded; the API reconnects on its own.
    stack.db(&["reset", "--yes"]).assert_stdout(0, &["seeded"]);
    wait_until("the API ready again", Duration::from_secs(30), || {
        get(&addr, "/readyz").is_some_and(|r| r.0 == 200)
    });

    // The README's line, twice.
    for _ in 0..2 {
        stack
            .db(&["migrate"])
            .assert_stdout(0, &["nothing to apply"]);
        let seeded = stack.db(&["seed", "--if-empty"]);
        assert_eq!(seeded.code, 0, "{}", seeded.stderr);
    }

    // The session ends cleanly; the first build left the committed files as they were.
    let status = dev.interrupt(Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", dev.output());
    let repo = git2::Repository::open(&ws).unwrap();
    let changed: Vec<String> = repo
        .statuses(None)
        .unwrap()
        .iter()
        .filter(|s| !s.status().is_ignored())
        .map(|s| format!("{:?} {}", s.status(), s.path().unwrap_or("")))
        .collect();
    assert!(changed.is_empty(), "{changed:?}");

    // A migration edited after it was applied: `db redo` with the user's undo SQL.
    let v1 = ws.join("migrations/V1__init.sql");
    let text = fs::read_to_string(&v1).unwrap();
    fs::write(
        &v1,
        format!("{text}\nALTER TABLE notes ADD COLUMN title text;\n"),
    )
    .unwrap();
    assert_eq!(stack.db(&["status"]).code, 1, "divergent");
    stack
        .db(&["redo"])
        .assert_stderr(2, &["migrations/undo/V1__init.sql is missing"]);
    fs::create_dir_all(ws.join("migrations/undo")).unwrap();
    // An undo that fails changes nothing.
    fs::write(
        ws.join("migrations/undo/V1__init.sql"),
        "DROP TABLE nope;\n",
    )
    .unwrap();
    stack
        .db(&["redo"])
        .assert_stderr(1, &["(nothing was changed)"]);
    assert_eq!(stack.db(&["status"]).code, 1, "still divergent");
    fs::write(
        ws.join("migrations/undo/V1__init.sql"),
        "DROP TABLE notes;\n",
    )
    .unwrap();
    let redone = stack.db(&["redo"]);
    assert_eq!(redone.code, 0, "{}", redone.stderr);
    assert!(
        redone
            .stdout
            .starts_with("redid V1__init (changed since applied)"),
        "{}",
        redone.stdout
    );
    stack
        .db(&["status"])
        .assert_stdout(0, &["1 applied, 0 pending, 0 divergent"]);
    let migrated = stack.db(&["migrate"]);
    assert_eq!(migrated.code, 0, "{}", migrated.stderr);

    // The workspace's CI commands: lint (fmt, clippy, squawk), the tests with a database
    // copied from the migrated template, and the whole pipeline, whose lint steps are
    // replayed from the cache `goodgo lint` filled.
    // The pipeline calls `goodgo` by name, as a user's PATH has it.
    let path = format!(
        "{}:{}",
        crate::bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pipeline = |args: &[&str]| run(stack.command().env("PATH", &path).args(args));
    let lint = pipeline(&["lint"]);
    assert_eq!(lint.code, 0, "{}", lint.report());
    let test = pipeline(&["test"]);
    assert_eq!(test.code, 0, "{}", test.report());
    let ci = pipeline(&["--json", "ci"]);
    assert_eq!(ci.code, 0, "{}", ci.report());
    let steps: Vec<(String, String)> = ci
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("step").is_some())
        .map(|v| {
            (
                v["step"].as_str().unwrap_or_default().to_string(),
                v["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for lint_step in ["clippy", "fmt", "migrations-lint"] {
        assert!(
            steps.contains(&(lint_step.to_string(), "cached".to_string())),
            "{lint_step} replayed from the cache: {steps:?}"
        );
    }
    assert!(
        steps
            .iter()
            .any(|(s, status)| s == "test" && status == "passed"),
        "{steps:?}"
    );
}

#[test]
fn redo_refuses_outside_development() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("goodgo.yaml"), "name: shop\nenv: staging\n").unwrap();
    run(goodgo(tmp.path()).args(["db", "redo"]))
        .assert_stderr(2, &["runs only in development (env is staging here)"]);
}

#[test]
fn help_names_the_migration_file_and_the_seed_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let new = run(goodgo(tmp.path()).args(["db", "new", "--help"]));
    assert_eq!(new.code, 0, "{}", new.stderr);
    assert!(
        new.stdout
            .starts_with("Create the next migration, V<N>__NAME.sql, with a header comment\n"),
        "{}",
        new.stdout
    );
    let seed = run(goodgo(tmp.path()).args(["db", "seed", "--help"]));
    goodgo_testkit::assert_has(&seed.stdout, &["--if-empty", "seeds/*.sql"]);
    let reference = fs::read_to_string(repo().join("docs/reference/cli.md")).unwrap();
    assert!(
        reference.contains("V<N>__NAME.sql") && !reference.contains("Create the next V\n"),
        "docs/reference/cli.md is regenerated (`cargo xtask codegen`)"
    );
}

/// The README's `goodgo db migrate && goodgo db seed --if-empty`, twice, on GoodGo's own
/// schema; and the admin account docs/db.md names is there.
#[test]
fn migrate_and_seed_if_empty_rerun_on_the_goodgo_schema() {
    let Some(test_db) = TestDb::create("newuser_seed") else {
        return;
    };
    let ws = workspace_with_migrations("");
    let db = |args: &[&str]| {
        run(goodgo(ws.path())
            .env("GOODGO_DATABASE_URL", &test_db.url)
            .arg("db")
            .args(args))
    };
    for round in 0..2 {
        let migrated = db(&["migrate"]);
        assert_eq!(migrated.code, 0, "{}", migrated.stderr);
        let seeded = db(&["seed", "--if-empty", "--listings", "20"]);
        assert_eq!(seeded.code, 0, "{}", seeded.stderr);
        assert_eq!(
            seeded.stdout.contains("already has rows: nothing seeded"),
            round == 1,
            "{}",
            seeded.stdout
        );
    }
    assert_eq!(test_db.sql("SELECT count(*) FROM listings"), "20");
    assert_eq!(
        test_db.sql("SELECT email FROM users WHERE role = 'admin'"),
        "admin@goodgo.test"
    );
    // Without --if-empty a second seed still refuses (exit 1), as before.
    assert_eq!(db(&["seed", "--listings", "20"]).code, 1);
}
