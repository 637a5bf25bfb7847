//! `goodgo up | status | down | logs` on the real Docker engine and as native processes.
//! Docker tests run wherever `docker info` answers (and fail there when something is
//! wrong); they skip with a visible line only where no engine exists.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

mod support;

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use support::{goodgo, run};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A workspace whose goodgo.yaml names the project and whose compose file is `compose`.
fn workspace(project: &str, compose: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("compose")).unwrap();
    fs::write(tmp.path().join("compose/compose.yaml"), compose).unwrap();
    fs::write(tmp.path().join("goodgo.yaml"), format!("name: {project}\n")).unwrap();
    tmp
}

fn stack(pg_port: u16, redis_port: u16, redis_extra: &str) -> String {
    format!(
        r#"services:
  postgres:
    image: goodgo/postgres:15
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: app-secret
      POSTGRES_DB: appdb
    ports: ["127.0.0.1:{pg_port}:5432"]
    volumes: [pgdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U app -d appdb"]
      interval: 2s
      retries: 30
  redis:
    image: goodgo/redis:7
    command: ["redis-server", "--appendonly", "yes"{redis_extra}]
    ports: ["127.0.0.1:{redis_port}:6379"]
    depends_on:
      postgres:
        condition: service_healthy
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 2s
volumes:
  pgdata:
"#
    )
}

fn psql_select(port: u16) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "app",
            "-d",
            "appdb",
            "-c",
            "SELECT current_user || '@' || current_database()",
        ])
        .env("PGPASSWORD", "app-secret")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn redis_ping(port: u16) -> bool {
    goodgo_stack::probe::redis_ready("127.0.0.1", port)
}

fn actions(json: &serde_json::Value) -> Vec<(String, String)> {
    json["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn docker_or_skip(test: &str) -> bool {
    if support::docker_available() {
        return true;
    }
    support::skip(
        test,
        "no Docker engine answers `docker info` on this machine",
    );
    false
}

fn labelled(kind: &str, project: &str) -> usize {
    let out = Command::new("docker")
        .args([
            kind,
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ])
        .args(if kind == "container" {
            vec!["-a"]
        } else {
            vec![]
        })
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

struct DownOnDrop<'a>(&'a Path);
impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        let _ = goodgo(self.0).args(["-q", "down", "--volumes"]).output();
    }
}

#[test]
fn docker_up_status_rerun_recreate_down() {
    if !docker_or_skip("docker_up_status_rerun_recreate_down") {
        return;
    }
    let project = format!("ggtest{}", std::process::id());
    let (pg, rd) = (free_port(), free_port());
    let ws = workspace(&project, &stack(pg, rd, ""));
    let _cleanup = DownOnDrop(ws.path());

    let out = run(goodgo(ws.path()).args(["up", "--runtime", "docker", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["runtime"], "docker");
    assert_eq!(
        actions(&json),
        [
            ("postgres".into(), "created".into()),
            ("redis".into(), "created".into())
        ]
    );
    assert_eq!(
        psql_select(pg),
        "app@appdb",
        "the POSTGRES_* contract holds"
    );
    assert!(redis_ping(rd));
    assert_eq!(labelled("container", &project), 2);
    assert_eq!(labelled("volume", &project), 1);
    assert_eq!(labelled("network", &project), 1);

    let status = run(goodgo(ws.path()).args(["status", "--json"])).json();
    let rows = status["services"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(
            (
                row["runtime"].as_str(),
                row["state"].as_str(),
                row["health"].as_str()
            ),
            (Some("docker"), Some("running"), Some("healthy")),
            "{row}"
        );
    }

    // Nothing changed: nothing touched.
    let again = run(goodgo(ws.path()).args(["up", "--runtime", "docker", "--json"]));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        actions(&again.json()),
        [
            ("postgres".into(), "unchanged".into()),
            ("redis".into(), "unchanged".into())
        ]
    );

    // Redis changes: only redis is recreated; postgres keeps running (and its data).
    fs::write(
        ws.path().join("compose/compose.yaml"),
        stack(pg, rd, ", \"--maxmemory\", \"64mb\""),
    )
    .unwrap();
    let changed = run(goodgo(ws.path()).args(["up", "--runtime", "docker", "--json"]));
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    assert_eq!(
        actions(&changed.json()),
        [
            ("postgres".into(), "unchanged".into()),
            ("redis".into(), "recreated".into())
        ]
    );

    let logs = run(goodgo(ws.path()).args(["logs", "postgres", "--tail", "5"]));
    assert_eq!(logs.code, 0);
    assert!(
        logs.stdout.lines().all(|l| l.starts_with("postgres |")),
        "{}",
        logs.stdout
    );

    let down = run(goodgo(ws.path()).args(["down", "--volumes"]));
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(
        (
            labelled("container", &project),
            labelled("volume", &project),
            labelled("network", &project)
        ),
        (0, 0, 0)
    );
}

#[test]
fn docker_service_healthy_ordering_failures_and_taken_ports() {
    if !docker_or_skip("docker_service_healthy_ordering_failures_and_taken_ports") {
        return;
    }
    let project = format!("ggorder{}", std::process::id());
    let pg = free_port();
    // `check` exits at once unless postgres already answers when it starts.
    let compose = format!(
        r#"services:
  postgres:
    image: goodgo/postgres:15
    environment: [POSTGRES_PASSWORD=pw]
    ports: ["127.0.0.1:{pg}:5432"]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1"]
      interval: 5s
  check:
    image: goodgo/postgres:15
    entrypoint: ["sh", "-c", "pg_isready -h postgres -p 5432 && exec sleep 600"]
    depends_on:
      postgres: {{condition: service_healthy}}
"#
    );
    let ws = workspace(&project, &compose);
    let _cleanup = DownOnDrop(ws.path());
    let out = run(goodgo(ws.path()).args(["up", "--runtime", "docker"]));
    assert_eq!(
        out.code, 0,
        "check started only after postgres was healthy: {}",
        out.stderr
    );

    // A failing healthcheck: exit 1, with the service's last log lines.
    let sick = workspace(
        &format!("{project}sick"),
        "services:\n  sick:\n    image: goodgo/redis:7\n    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 1s\n      retries: 2\n",
    );
    let _cleanup_sick = DownOnDrop(sick.path());
    let out = run(goodgo(sick.path()).args(["up", "--runtime", "docker", "--timeout", "30"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("service `sick` is unhealthy"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("last log lines:")
            && out.stderr.contains("Ready to accept connections"),
        "{}",
        out.stderr
    );

    // A taken port: refused before anything is created, naming who holds it.
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let busy_project = format!("{project}busy");
    let busy = workspace(
        &busy_project,
        &format!(
            "services:\n  redis:\n    image: goodgo/redis:7\n    ports: [\"127.0.0.1:{taken}:6379\"]\n"
        ),
    );
    let out = run(goodgo(busy.path()).args(["up", "--runtime", "docker"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "port {taken} on 127.0.0.1 for service `redis` is already taken"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert_eq!(
        labelled("container", &busy_project),
        0,
        "nothing was created"
    );
}

/// `build:` goes through the engine: context packed (minus .dockerignore), Dockerfile
/// and target honoured, image tagged `{project}-{service}`.
#[test]
fn docker_builds_images_from_a_context() {
    if !docker_or_skip("docker_builds_images_from_a_context") {
        return;
    }
    let project = format!("ggbuild{}", std::process::id());
    let ws = workspace(
        &project,
        "services:\n  app:\n    build:\n      context: ./app\n      dockerfile: app.Dockerfile\n      target: final\n      args: {GREETING: hello-from-args}\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/srv/hello.txt\"]\n      interval: 1s\n",
    );
    let _cleanup = DownOnDrop(ws.path());
    let app = ws.path().join("compose/app");
    fs::create_dir_all(app.join("nested")).unwrap();
    fs::write(
        app.join("app.Dockerfile"),
        "FROM goodgo/redis:7 AS base\nARG GREETING\nRUN echo \"$GREETING\" > /srv-greeting || true\nFROM base AS final\nLABEL org.goodgo.test=built\nCOPY hello.txt /srv/hello.txt\nCOPY nested/ /srv/nested/\n",
    )
    .unwrap();
    fs::write(app.join("hello.txt"), "hello\n").unwrap();
    fs::write(app.join("nested/kept.txt"), "kept\n").unwrap();
    fs::write(app.join("nested/secret.log"), "do not ship\n").unwrap();
    fs::write(app.join(".dockerignore"), "*.log\n").unwrap();
    let out = run(goodgo(ws.path()).args(["up", "--runtime", "docker"]));
    let image = format!("{project}-app");
    let _image_cleanup = ImageOnDrop(image.clone());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let label = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{ index .Config.Labels \"org.goodgo.test\" }}",
            &image,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "built");
    let container = format!("{project}-app-1");
    let ls = Command::new("docker")
        .args([
            "exec",
            &container,
            "sh",
            "-c",
            "cat /srv/hello.txt; ls /srv/nested",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout),
        "hello\nkept.txt\n",
        ".dockerignore kept secret.log out"
    );
}

struct ImageOnDrop(String);
impl Drop for ImageOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["image", "rm", "-f", &self.0])
            .output();
    }
}

fn native_tools_or_skip(test: &str) -> bool {
    let ok = Path::new("/usr/lib/postgresql").exists() && goodgo_stack_which("redis-server");
    if !ok {
        assert!(
            !support::strict(),
            "cargo xtask test installs postgresql-15 and redis-server"
        );
        support::skip(test, "postgresql-15 or redis-server is not installed");
    }
    ok
}

fn goodgo_stack_which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

#[test]
fn native_up_status_rerun_recreate_down() {
    if !native_tools_or_skip("native_up_status_rerun_recreate_down") {
        return;
    }
    let (pg, rd) = (free_port(), free_port());
    let ws = workspace("nativetest", &stack(pg, rd, ""));
    let _cleanup = DownOnDrop(ws.path());
    let out = run(goodgo(ws.path()).args(["up", "--runtime", "native", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        actions(&out.json()),
        [
            ("postgres".into(), "created".into()),
            ("redis".into(), "created".into())
        ]
    );
    assert_eq!(
        psql_select(pg),
        "app@appdb",
        "the POSTGRES_* contract holds natively too"
    );
    assert!(redis_ping(rd));

    let status = run(goodgo(ws.path()).args(["status", "--json"])).json();
    let rows: Vec<(String, String, String)> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap().into(),
                r["runtime"].as_str().unwrap().into(),
                r["health"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("postgres".into(), "native".into(), "healthy".into()),
            ("redis".into(), "native".into(), "healthy".into())
        ]
    );

    // With no database configured, `goodgo db` finds the running stack's PostgreSQL.
    let url = run(goodgo(ws.path()).args(["db", "url", "--json"])).json();
    assert_eq!(
        url["url"],
        format!("postgres://app:app-secret@127.0.0.1:{pg}/appdb")
    );
    assert!(
        url["source"]
            .as_str()
            .unwrap()
            .starts_with("the running stack"),
        "{url}"
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    fs::create_dir(ws.path().join("migrations")).unwrap();
    for f in fs::read_dir(repo.join("migrations")).unwrap() {
        let f = f.unwrap().path();
        fs::copy(
            &f,
            ws.path().join("migrations").join(f.file_name().unwrap()),
        )
        .unwrap();
    }
    let migrated = run(goodgo(ws.path()).args(["db", "migrate"]));
    assert_eq!(migrated.code, 0, "{}", migrated.stderr);
    assert!(
        migrated.stdout.contains("applied V4__audit_log"),
        "{}",
        migrated.stdout
    );

    let again = run(goodgo(ws.path()).args(["up", "--runtime", "native", "--json"]));
    assert_eq!(
        actions(&again.json()),
        [
            ("postgres".into(), "unchanged".into()),
            ("redis".into(), "unchanged".into())
        ]
    );

    fs::write(
        ws.path().join("compose/compose.yaml"),
        stack(pg, rd, ", \"--maxmemory\", \"64mb\""),
    )
    .unwrap();
    let changed = run(goodgo(ws.path()).args(["up", "--runtime", "native", "--json"]));
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    assert_eq!(
        actions(&changed.json()),
        [
            ("postgres".into(), "unchanged".into()),
            ("redis".into(), "recreated".into())
        ]
    );
    assert!(redis_ping(rd));

    let logs = run(goodgo(ws.path()).args(["logs", "redis", "--tail", "3"]));
    assert!(
        logs.stdout.lines().count() <= 3
            && logs
                .stdout
                .lines()
                .all(|l| l.starts_with("redis ") && l.contains(" | ")),
        "{}",
        logs.stdout
    );

    // A taken port is named before anything starts.
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let busy = workspace(
        "nativebusy",
        &format!(
            "services:\n  redis:\n    image: redis:7\n    ports: [\"127.0.0.1:{taken}:6379\"]\n"
        ),
    );
    let out = run(goodgo(busy.path()).args(["up", "--runtime", "native"]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("already taken"), "{}", out.stderr);

    let down = run(goodgo(ws.path()).args(["down"]));
    assert_eq!(down.code, 0);
    assert!(!redis_ping(rd));
    assert!(
        ws.path()
            .join(".goodgo/native/nativetest/postgres/data/PG_VERSION")
            .exists(),
        "data kept without --volumes"
    );
    // Up again on the kept data: the database and its user are still there.
    assert_eq!(
        run(goodgo(ws.path()).args(["up", "--runtime", "native", "postgres"])).code,
        0
    );
    assert_eq!(psql_select(pg), "app@appdb");
    assert_eq!(run(goodgo(ws.path()).args(["down", "--volumes"])).code, 0);
    assert!(!ws.path().join(".goodgo/native/nativetest").exists());
}

#[test]
fn native_refuses_images_it_cannot_run() {
    let ws = workspace("nativeweb", "services:\n  web:\n    image: nginx:1.27\n");
    let out = run(goodgo(ws.path()).args(["up", "--runtime", "native"]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("image `nginx:1.27`) has no native runner"),
        "{}",
        out.stderr
    );
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = run(goodgo(repo).args(["up", "--dry-run", "--runtime", "native", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["runtime"], "native");
    assert_eq!(
        json["waves"],
        serde_json::json!([["postgres", "redis"]]),
        "minio is behind the s3 profile"
    );
    assert_eq!(json["services"]["postgres"]["image"], "goodgo/postgres:15");
    assert_eq!(
        json["services"]["postgres"]["ports"],
        serde_json::json!(["127.0.0.1:5432:5432/tcp"])
    );
    let with_s3 = run(goodgo(repo).args([
        "up",
        "--dry-run",
        "--runtime",
        "native",
        "--profile",
        "s3",
        "--json",
    ]))
    .json();
    assert_eq!(
        with_s3["waves"],
        serde_json::json!([["minio", "postgres", "redis"]])
    );
    let moved = run(goodgo(repo).env("POSTGRES_PORT", "55432").args([
        "up",
        "--dry-run",
        "--runtime",
        "native",
        "--json",
    ]))
    .json();
    assert_eq!(
        moved["services"]["postgres"]["ports"],
        serde_json::json!(["127.0.0.1:55432:5432/tcp"]),
        "ports are interpolated"
    );
    assert!(
        !repo.join(".goodgo/native").exists()
            || repo
                .join(".goodgo/native")
                .read_dir()
                .unwrap()
                .next()
                .is_none(),
        "nothing created"
    );
}
