//! `goodgo init` into a fresh folder, `goodgo secrets rotate`, and `goodgo dev` end to end
//! on a copy of this workspace: panel, readiness, search, a source change served, a new
//! migration applied, a clean exit on SIGINT.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{goodgo, run};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn env_secret(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("GOODGO_JWT_SECRET="))
        .unwrap()
        .to_string()
}

#[test]
fn init_scaffolds_refuses_to_overwrite_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(goodgo(tmp.path()).args(["init", "shop-app", "--name", "shop"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ws = tmp.path().join("shop-app");
    for f in [
        "Cargo.toml",
        "service/Cargo.toml",
        "service/src/main.rs",
        "compose/compose.yaml",
        "migrations/V1__init.sql",
        "ci/github-actions.yml",
        "docs/plan.yaml",
        "goodgo.yaml",
        ".gitignore",
        ".env",
    ] {
        assert!(ws.join(f).is_file(), "{f}");
    }
    assert_eq!(
        fs::metadata(ws.join(".env")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(env_secret(&ws.join(".env")).len(), 64);
    assert!(
        fs::read_to_string(ws.join("service/Cargo.toml"))
            .unwrap()
            .contains("name = \"shop-api\"")
    );
    let gitignore = fs::read_to_string(ws.join(".gitignore")).unwrap();
    assert!(gitignore.contains(".env") && gitignore.contains(".goodgo/"));

    // A first commit through libgit2, without .env.
    let repo = git2::Repository::open(&ws).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert!(head.message().unwrap().contains("goodgo init"));
    assert!(
        head.tree().unwrap().get_path(Path::new(".env")).is_err(),
        ".env is not committed"
    );
    assert!(
        head.tree()
            .unwrap()
            .get_path(Path::new("compose/compose.yaml"))
            .is_ok()
    );

    // The new workspace works with goodgo itself.
    assert_eq!(run(goodgo(&ws).args(["plan", "check"])).code, 0);
    let dry = run(goodgo(&ws).args(["up", "--dry-run", "--runtime", "native", "--json"]));
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.json()["project"], "shop");
    assert_eq!(
        run(goodgo(&ws).args(["init", "--check", "--name", "shop"])).code,
        0,
        "fresh files match the templates"
    );

    // Again: conflicts listed, nothing changed.
    let before = fs::read_to_string(ws.join("goodgo.yaml")).unwrap();
    fs::write(ws.join("goodgo.yaml"), format!("{before}# my edit\n")).unwrap();
    let again = run(goodgo(tmp.path()).args(["init", "shop-app", "--name", "shop"]));
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("goodgo.yaml")
            && again.stderr.contains(".env")
            && again.stderr.contains("nothing was written"),
        "{}",
        again.stderr
    );
    assert!(
        fs::read_to_string(ws.join("goodgo.yaml"))
            .unwrap()
            .ends_with("# my edit\n"),
        "kept"
    );
    let check = run(goodgo(&ws).args(["init", "--check", "--name", "shop"]));
    assert_eq!(check.code, 1);
    assert!(
        check.stdout.contains("differs  goodgo.yaml"),
        "{}",
        check.stdout
    );

    // Secrets rotate: a new value, the rest of the file kept, still 0600.
    let old = env_secret(&ws.join(".env"));
    fs::write(
        ws.join(".env"),
        format!(
            "{}MY_SETTING=1\n",
            fs::read_to_string(ws.join(".env")).unwrap()
        ),
    )
    .unwrap();
    let rotated = run(goodgo(&ws).args(["secrets", "rotate"]));
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    assert!(!rotated.stdout.contains(&old));
    let new = env_secret(&ws.join(".env"));
    assert_ne!(new, old);
    assert!(
        fs::read_to_string(ws.join(".env"))
            .unwrap()
            .contains("MY_SETTING=1\n")
    );
    assert_eq!(
        fs::metadata(ws.join(".env")).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // And the new service crate compiles (only where the suite provisions a toolchain run).
    if support::strict() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["check", "--quiet"])
            .current_dir(&ws)
            .env("CARGO_TARGET_DIR", tmp.path().join("target"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A copy of this workspace reduced to the API and what it needs, building into the
/// shared target folder (so only the workspace's own crates compile again).
fn api_workspace(tmp: &Path, project: &str) -> PathBuf {
    let ws = tmp.join("ws");
    let src = repo();
    let copy_dir = |rel: &str| {
        let mut stack = vec![src.join(rel)];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                let to = ws.join(p.strip_prefix(&src).unwrap());
                if p.is_dir() {
                    if p.file_name().unwrap() != "target" {
                        fs::create_dir_all(&to).unwrap();
                        stack.push(p);
                    }
                } else {
                    fs::create_dir_all(to.parent().unwrap()).unwrap();
                    fs::copy(&p, &to).unwrap();
                }
            }
        }
    };
    for d in ["service", "crates/goodgo-db", "migrations"] {
        copy_dir(d);
    }
    // Another package name, so its binary does not replace this repository's goodgo-api
    // in the shared target folder (the library keeps its name for the binary's `use`).
    let manifest = fs::read_to_string(ws.join("service/Cargo.toml")).unwrap();
    let renamed = manifest
        .replacen("name = \"goodgo-api\"", "name = \"devtest-api\"", 2)
        .replacen(
            "[[bin]]",
            "[lib]\nname = \"goodgo_api\"\npath = \"src/lib.rs\"\n\n[[bin]]",
            1,
        );
    assert_ne!(renamed, manifest);
    fs::write(ws.join("service/Cargo.toml"), renamed).unwrap();
    fs::create_dir_all(ws.join("compose")).unwrap();
    fs::copy(
        src.join("compose/compose.yaml"),
        ws.join("compose/compose.yaml"),
    )
    .unwrap();
    fs::copy(src.join("Cargo.lock"), ws.join("Cargo.lock")).unwrap();
    let manifest: String = fs::read_to_string(src.join("Cargo.toml"))
        .unwrap()
        .lines()
        .filter(|l| {
            ![
                "goodgo = ",
                "goodgo-yaml = ",
                "goodgo-plan = ",
                "goodgo-compose = ",
                "goodgo-stack = ",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(|l| {
            if l.starts_with("members = ") {
                "members = [\"service\", \"crates/goodgo-db\"]".to_string()
            } else if l.starts_with("default-members = ") {
                "default-members = [\"service\"]".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(ws.join("Cargo.toml"), manifest).unwrap();
    fs::write(
        ws.join("goodgo.yaml"),
        format!("name: {project}\nruntime: native\n"),
    )
    .unwrap();
    ws
}

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        status,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    ))
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn dev_end_to_end() {
    let pg_bin = Path::new("/usr/lib/postgresql");
    if !pg_bin.exists()
        || Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
    {
        assert!(
            !support::strict(),
            "cargo xtask test installs PostgreSQL and Redis"
        );
        support::skip("dev_end_to_end", "PostgreSQL or Redis is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let project = format!("devtest{}", std::process::id());
    let ws = api_workspace(tmp.path(), &project);
    let (pg, redis, api) = (free_port(), free_port(), free_port());
    let addr = format!("127.0.0.1:{api}");
    let mut child = goodgo(&ws)
        .arg("dev")
        .env("POSTGRES_PORT", pg.to_string())
        .env("REDIS_PORT", redis.to_string())
        .env("GOODGO_API_ADDR", &addr)
        .env("CARGO_TARGET_DIR", repo().join("target"))
        .env("GOODGO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Whatever happens below, the session and its services do not outlive the test.
    struct Cleanup(u32, PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.to_string()])
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(500));
            let _ = goodgo(&self.1).args(["-q", "down", "--volumes"]).output();
        }
    }
    let _cleanup = Cleanup(child.id(), ws.clone());
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log2.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let mut panel = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let start = Instant::now();
    while !panel.contains("watching service/") {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!(
                "dev ended before its panel:\n{panel}\n{}",
                log.lock().unwrap()
            );
        }
        panel.push_str(&line);
        assert!(start.elapsed() < Duration::from_secs(900), "no panel");
    }
    assert!(
        panel.contains(&format!("API       http://{addr}")),
        "{panel}"
    );
    assert!(
        panel.contains(&format!("Docs      http://{addr}/docs")),
        "{panel}"
    );
    assert!(
        panel.contains("Runtime   native") && panel.contains("Steps     stack"),
        "{panel}"
    );
    assert_eq!(get(&addr, "/readyz").map(|r| r.0), Some(200));
    let (status, body) = get(&addr, "/v1/listings/search?limit=3").unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("\"items\":[{"),
        "seeded on first start: {body}"
    );

    // A second dev in the same workspace says so instead of fighting it.
    let second = run(goodgo(&ws).arg("dev"));
    assert_eq!(second.code, 1);
    assert!(
        second.stderr.contains("already running in this workspace"),
        "{}",
        second.stderr
    );

    // A handler changes: the new behaviour is served.
    let health = ws.join("service/src/routes/health.rs");
    let text = fs::read_to_string(&health).unwrap();
    let changed = text.replacen("status: \"ok\",", "status: \"ok-reloaded\",", 1);
    assert_ne!(changed, text, "the handler's source has the expected shape");
    fs::write(&health, changed).unwrap();
    wait_until("the rebuilt API", Duration::from_secs(600), || {
        get(&addr, "/healthz").is_some_and(|(_, b)| b.contains("ok-reloaded"))
    });

    // A build error is shown; the previous build keeps serving.
    fs::write(&health, format!("{text}\nthis is not rust\n")).unwrap();
    wait_until("the build error", Duration::from_secs(600), || {
        log.lock()
            .unwrap()
            .contains("still serving the previous build")
    });
    assert!(get(&addr, "/healthz").is_some_and(|(_, b)| b.contains("ok-reloaded")));
    fs::write(&health, &text).unwrap();

    // A new migration is applied.
    fs::write(
        ws.join("migrations/V5__dev_probe.sql"),
        "CREATE TABLE dev_probe (id bigint);\n",
    )
    .unwrap();
    wait_until("the new migration", Duration::from_secs(60), || {
        log.lock().unwrap().contains("applied V5__dev_probe")
    });

    // SIGINT: a clean exit; the API stops, the services keep running.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "dev did not exit on SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}\n{}", log.lock().unwrap());
    assert!(get(&addr, "/healthz").is_none(), "the API stopped");
    let st = run(goodgo(&ws).args(["status", "--json"])).json();
    assert!(
        st["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "running"),
        "{st}"
    );
    assert_eq!(run(goodgo(&ws).args(["down", "--volumes"])).code, 0);
}
