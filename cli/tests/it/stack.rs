//! `goodgo up | status | down | logs` on the real Docker engine and as native processes.
//! Docker tests run wherever `docker info` answers (and fail there when something is
//! wrong); they skip with a visible line only where no engine exists.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use goodgo_testkit::{Signal, TestContext, signal, stack_test};

use crate::{ChildGuard, Runtime, context, free_port, goodgo, query, run};

/// A workspace whose goodgo.yaml names the project and whose compose file is `compose`.
fn workspace(project: &str, compose: &str) -> TestContext {
    context()
        .with_file("compose/compose.yaml", compose)
        .with_file("goodgo.yaml", &format!("name: {project}\n"))
}

/// A `postgres` service (user `app`, database `appdb`) published on `published`
/// (`PORT`, or an interpolation such as `${PG_PORT:-5432}`), healthy once it answers, with
/// `extra` lines of its definition after its ports.
pub fn postgres_service(published: &str, extra: &str) -> String {
    format!(
        r#"  postgres:
    image: goodgo/postgres:15
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: app-secret
      POSTGRES_DB: appdb
    ports: ["127.0.0.1:{published}:5432"]
{extra}    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U app -d appdb"]
      interval: 2s
      retries: 30
"#
    )
}

fn stack(pg_port: u16, redis_port: u16, redis_extra: &str) -> String {
    let postgres = postgres_service(
        &pg_port.to_string(),
        "    volumes: [pgdata:/var/lib/postgresql/data]\n",
    );
    format!(
        r#"services:
{postgres}  redis:
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

/// The URL of the `appdb` database the stacks below make, as user `app`.
fn appdb(port: u16) -> String {
    format!("postgres://app:app-secret@127.0.0.1:{port}/appdb")
}

/// Who and where a session on `appdb` is: `app@appdb` when the POSTGRES_* contract holds.
fn psql_select(port: u16) -> String {
    query(
        &appdb(port),
        "SELECT current_user || '@' || current_database()",
    )
}

/// How a port holder names this test process: `name (pid N)`.
fn holder_name() -> String {
    let comm = fs::read_to_string("/proc/self/comm").unwrap();
    format!("{} (pid {})", comm.trim_end(), std::process::id())
}

/// Redis on `port` answers `PING`, polled until it does or 10 s have passed (a busy
/// machine can delay one answer).
fn redis_ping(port: u16) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if goodgo_stack::probe::redis_ready("127.0.0.1", port) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Nothing answers `PING` on `port` (one attempt: a stopped server stays stopped).
fn redis_down(port: u16) -> bool {
    !goodgo_stack::probe::redis_ready("127.0.0.1", port)
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
    Runtime::Docker.available_or_skip(test)
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

/// Sends SIGCONT to a process stopped with SIGSTOP when the test ends, also when it fails.
struct ContOnDrop(u32);
impl Drop for ContOnDrop {
    fn drop(&mut self) {
        signal(self.0, Signal::CONT);
    }
}

struct DownOnDrop<'a>(&'a Path);
impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        let _ = goodgo(self.0).args(["-q", "down", "--volumes"]).output();
    }
}

stack_test!(
    /// `up`, `status`, a rerun that changes nothing, a change that recreates only what
    /// changed, `logs` and `down`: one body, run on the Docker engine and natively.
    up_status_rerun_recreate_down,
    |rt| {
    let project = format!("gg{rt}{}", std::process::id());
    let (pg, rd) = (free_port(), free_port());
    let ws = workspace(&project, &stack(pg, rd, ""));
    let _cleanup = DownOnDrop(ws.path());
    let up = || run(goodgo(ws.path()).args(["up", "--runtime", rt.name(), "--json"]));

    let out = up();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["runtime"], rt.name());
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
        "the POSTGRES_* contract holds on {rt}"
    );
    assert!(redis_ping(rd));
    if rt == Runtime::Docker {
        assert_eq!(labelled("container", &project), 2);
        assert_eq!(labelled("volume", &project), 1);
        assert_eq!(labelled("network", &project), 1);
    }

    let status = run(goodgo(ws.path()).args(["status", "--json"])).json();
    let rows: Vec<(&str, &str, &str, &str)> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap(),
                r["runtime"].as_str().unwrap(),
                r["state"].as_str().unwrap(),
                r["health"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("postgres", rt.name(), "running", "healthy"),
            ("redis", rt.name(), "running", "healthy")
        ]
    );

    if rt == Runtime::Native {
        // With no database configured, `goodgo db` finds the running stack's PostgreSQL.
        let url = run(goodgo(ws.path()).args(["db", "url", "--json"])).json();
        assert_eq!(url["url"], appdb(pg));
        assert!(
            url["source"]
                .as_str()
                .unwrap()
                .starts_with("the running stack"),
            "{url}"
        );
        ws.copy_from_repo("migrations");
        let migrated = run(goodgo(ws.path()).args(["db", "migrate"]));
        assert_eq!(migrated.code, 0, "{}", migrated.stderr);
        assert!(
            migrated.stdout.contains("applied V4__audit_log"),
            "{}",
            migrated.stdout
        );
    }

    // Nothing changed: nothing touched.
    let again = up();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        actions(&again.json()),
        [
            ("postgres".into(), "unchanged".into()),
            ("redis".into(), "unchanged".into())
        ]
    );

    // Redis changes: only redis is recreated; postgres keeps running (and its data).
    ws.write(
        "compose/compose.yaml",
        &stack(pg, rd, ", \"--maxmemory\", \"64mb\""),
    );
    let changed = up();
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    assert_eq!(
        actions(&changed.json()),
        [
            ("postgres".into(), "unchanged".into()),
            ("redis".into(), "recreated".into())
        ]
    );
    assert!(redis_ping(rd));

    match rt {
        Runtime::Docker => {
            let logs = run(goodgo(ws.path()).args(["logs", "postgres", "--tail", "5"]));
            assert_eq!(logs.code, 0);
            assert!(
                logs.stdout.lines().all(|l| l.starts_with("postgres |")),
                "{}",
                logs.stdout
            );
        }
        Runtime::Native => {
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
        }
    }

    match rt {
        Runtime::Docker => {
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
        Runtime::Native => {
            let down = run(goodgo(ws.path()).args(["down"]));
            assert_eq!(down.code, 0);
            assert!(redis_down(rd));
            let dir = ws.join(format!(".goodgo/native/{project}"));
            assert!(
                dir.join("postgres/data/PG_VERSION").exists(),
                "data kept without --volumes"
            );
            // Up again on the kept data: the database and its user are still there.
            let again = run(goodgo(ws.path()).args(["up", "--runtime", "native", "postgres"]));
            assert_eq!(again.code, 0, "{}", again.stderr);
            assert_eq!(psql_select(pg), "app@appdb");
            assert_eq!(run(goodgo(ws.path()).args(["down", "--volumes"])).code, 0);
            assert!(!dir.exists());
        }
    }
});

#[test]
fn docker_service_healthy_ordering_and_failures() {
    if !docker_or_skip("docker_service_healthy_ordering_and_failures") {
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
    out.assert_stderr(1, &["service `sick` is unhealthy"]);
    assert!(
        out.stderr.contains("last log lines:")
            && out.stderr.contains("Ready to accept connections"),
        "{}",
        out.stderr
    );
}

stack_test!(
    /// A taken port: refused before anything is created, naming who holds it.
    a_taken_port_is_named_before_anything_starts,
    |rt| {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = holder.local_addr().unwrap().port();
        let busy_project = format!("gg{rt}busy{}", std::process::id());
        let mut busy = workspace(
            &busy_project,
            &format!(
                "services:\n  redis:\n    image: goodgo/redis:7\n    ports: [\"127.0.0.1:{taken}:6379\"]\n"
            ),
        );
        busy.filter_port(taken, "[PORT]");
        let _cleanup = DownOnDrop(busy.path());
        let filters = busy.filters().literal(&holder_name(), "[HOLDER]");
        let out = goodgo_testkit::assert_cmd_snapshot!(
            format!("taken_port_{rt}"),
            filters,
            busy.command().args(["up", "--runtime", rt.name()])
        );
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "port {taken} on 127.0.0.1 for service `redis` is already taken by {}",
                holder_name()
            )),
            "the holder is named: {}",
            out.stderr
        );
        assert!(out.stderr.contains("hint:"), "{}", out.stderr);
        if rt == Runtime::Docker {
            assert_eq!(
                labelled("container", &busy_project),
                0,
                "nothing was created"
            );
        }
    }
);

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
    let image = format!("{project}-app");
    // Dropped after the containers are gone, so the image is really removed.
    let _image_cleanup = ImageOnDrop(image.clone());
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
    Runtime::Native.available_or_skip(test)
}

#[test]
fn native_refuses_images_it_cannot_run() {
    let ws = workspace("nativeweb", "services:\n  web:\n    image: nginx:1.27\n");
    let out = goodgo_testkit::assert_cmd_snapshot!(
        "native_refuses_an_image_without_runner",
        ws.filters(),
        ws.command().args(["up", "--runtime", "native"])
    );
    out.assert_stderr(2, &["image `nginx:1.27`) has no native runner"]);
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

fn inspect(container: &str, format: &str) -> String {
    crate::stdout_of(Command::new("docker").args(["inspect", "--format", format, container]))
        .trim()
        .to_string()
}

fn docker_exec(container: &str, argv: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .arg("exec")
        .arg(container)
        .args(argv)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `file` secrets are bind-mounted read-only: at /run/secrets/<name>, at a target name,
/// at an absolute target; the postgres image reads POSTGRES_PASSWORD_FILE from one.
#[test]
fn docker_file_secrets_are_mounted() {
    if !docker_or_skip("docker_file_secrets_are_mounted") {
        return;
    }
    let project = format!("ggsecret{}", std::process::id());
    let pg = free_port();
    let ws = workspace(
        &project,
        &format!(
            r#"services:
  app:
    image: goodgo/redis:7
    command: ["sleep", "600"]
    init: true
    secrets:
      - token
      - source: token
        target: renamed
      - source: token
        target: /etc/app/token
  postgres:
    image: goodgo/postgres:15
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD_FILE: /run/secrets/pgpass
      POSTGRES_DB: appdb
    ports: ["127.0.0.1:{pg}:5432"]
    secrets: [pgpass]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U app -d appdb"]
      interval: 2s
      retries: 30
secrets:
  token:
    file: ./token.txt
  pgpass:
    file: ./pgpass.txt
"#
        ),
    );
    let _cleanup = DownOnDrop(ws.path());
    fs::write(ws.path().join("compose/token.txt"), "t0ken-value\n").unwrap();
    fs::write(ws.path().join("compose/pgpass.txt"), "app-secret").unwrap();
    let out = run(goodgo(ws.path()).args(["up", "--runtime", "docker"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let app = format!("{project}-app-1");
    for path in [
        "/run/secrets/token",
        "/run/secrets/renamed",
        "/etc/app/token",
    ] {
        assert_eq!(
            docker_exec(&app, &["cat", path]),
            (true, "t0ken-value\n".to_string()),
            "{path}"
        );
    }
    assert!(
        !docker_exec(&app, &["sh", "-c", "echo x > /run/secrets/token"]).0,
        "secrets are read-only"
    );
    assert_eq!(
        psql_select(pg),
        "app@appdb",
        "POSTGRES_PASSWORD_FILE read the password from the secret"
    );

    // A secret file that does not exist: refused before anything is created.
    let missing_project = format!("{project}missing");
    let missing = workspace(
        &missing_project,
        "services:\n  app:\n    image: goodgo/redis:7\n    secrets: [gone]\nsecrets:\n  gone:\n    file: ./gone.txt\n",
    );
    let out = run(goodgo(missing.path()).args(["up", "--runtime", "docker"]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the secret `gone` of service `app` is read from")
            && out.stderr.contains("gone.txt, which does not exist"),
        "{}",
        out.stderr
    );
    assert_eq!(labelled("container", &missing_project), 0);
    assert_eq!(labelled("network", &missing_project), 0);
}

/// A service on two custom networks (none of them `default`) and one on a single network:
/// each container is attached to exactly its networks, reachable by its aliases, and the
/// service keys the engine applies (cap_drop, init, extra_hosts, stop_grace_period,
/// restart on-failure:N, internal network, fixed address) are visible in `docker inspect`.
#[test]
fn docker_custom_networks_and_applied_keys() {
    if !docker_or_skip("docker_custom_networks_and_applied_keys") {
        return;
    }
    let project = format!("ggnet{}", std::process::id());
    // A subnet unlikely to collide, derived from the pid.
    let octet = 16 + std::process::id() % 200;
    let ws = workspace(
        &project,
        &format!(
            r#"services:
  front:
    image: goodgo/redis:7
    command: ["redis-server", "--protected-mode", "no"]
    networks:
      edge:
      inner:
        aliases: [cache]
        ipv4_address: 10.{octet}.7.50
    cap_drop: [NET_RAW]
    init: true
    extra_hosts: ["db.local:10.0.0.5"]
    stop_grace_period: 3s
    restart: on-failure:4
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 1s
  back:
    image: goodgo/redis:7
    networks: [inner]
    depends_on:
      front: {{condition: service_healthy}}
networks:
  edge:
    internal: true
  inner:
    ipam:
      config:
        - subnet: 10.{octet}.7.0/24
"#
        ),
    );
    let _cleanup = DownOnDrop(ws.path());
    let out = run(goodgo(ws.path()).args(["up", "--runtime", "docker", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let front = format!("{project}-front-1");
    let back = format!("{project}-back-1");
    let nets = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}";
    assert_eq!(
        inspect(&front, nets),
        format!("{project}_edge {project}_inner")
    );
    assert_eq!(inspect(&back, nets), format!("{project}_inner"));
    assert_eq!(
        inspect(
            &front,
            &format!("{{{{(index .NetworkSettings.Networks \"{project}_inner\").IPAddress}}}}")
        ),
        format!("10.{octet}.7.50")
    );
    assert_eq!(inspect(&format!("{project}_edge"), "{{.Internal}}"), "true");
    for c in [&front, &back] {
        assert_eq!(inspect(c, "{{.State.Status}}"), "running", "{c}");
    }
    let status = run(goodgo(ws.path()).args(["status", "--json"])).json();
    let health: Vec<(&str, &str)> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap(),
                r["health"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(health, [("back", "none"), ("front", "healthy")]);
    assert_eq!(
        docker_exec(&back, &["redis-cli", "-h", "cache", "ping"]),
        (true, "PONG\n".to_string()),
        "the alias resolves on the shared network"
    );
    assert_eq!(
        inspect(
            &front,
            "{{json .HostConfig.CapDrop}} {{.HostConfig.Init}} {{json .HostConfig.ExtraHosts}} {{.Config.StopTimeout}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "[\"NET_RAW\"] true [\"db.local:10.0.0.5\"] 3 on-failure:4"
    );

    let again = run(goodgo(ws.path()).args(["up", "--runtime", "docker", "--json"]));
    assert_eq!(
        actions(&again.json()),
        [
            ("front".into(), "unchanged".into()),
            ("back".into(), "unchanged".into())
        ]
    );
    // As if an `up` was interrupted before the container joined its second network: the
    // next `up` notices and replaces it.
    let gone = Command::new("docker")
        .args(["network", "disconnect", &format!("{project}_edge"), &front])
        .status()
        .unwrap();
    assert!(gone.success());
    let repaired = run(goodgo(ws.path()).args(["up", "--runtime", "docker", "--json"]));
    assert_eq!(repaired.code, 0, "{}", repaired.stderr);
    assert_eq!(
        actions(&repaired.json()),
        [
            ("front".into(), "recreated".into()),
            ("back".into(), "unchanged".into())
        ]
    );
    assert_eq!(
        inspect(&front, nets),
        format!("{project}_edge {project}_inner")
    );
}

/// An image that is not here and cannot be pulled: a clear error naming it and how to get
/// it, exit 1, and nothing created for the project.
#[test]
fn docker_missing_image_is_a_clear_error() {
    if !docker_or_skip("docker_missing_image_is_a_clear_error") {
        return;
    }
    let project = format!("ggnoimage{}", std::process::id());
    let ws = workspace(
        &project,
        "services:\n  ghost:\n    image: goodgo/does-not-exist:1\n    volumes: [data:/data]\nvolumes:\n  data:\n",
    );
    let _cleanup = DownOnDrop(ws.path());
    let out = run(goodgo(ws.path()).args(["up", "--runtime", "docker"]));
    out.assert_stderr(1, &["error: image goodgo/does-not-exist:1 for service `ghost` is not present locally and could not be pulled", "hint: goodgo cannot build goodgo/does-not-exist:1", "docker load", "leave `ghost` out"]);
    assert!(
        !out.stderr.contains("xtask") && !out.stderr.contains("--runtime native"),
        "only steps that work are named: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("ghost: pulling goodgo/does-not-exist:1"),
        "the pull is announced: {}",
        out.stderr
    );
    for kind in ["container", "network", "volume"] {
        assert_eq!(labelled(kind, &project), 0, "no {kind} was created");
    }
    let quiet = run(goodgo(ws.path()).args(["-q", "up", "--runtime", "docker"]));
    assert_eq!(quiet.code, 1);
    assert!(
        !quiet.stderr.contains("pulling"),
        "-q shows no progress: {}",
        quiet.stderr
    );
}

/// `up SERVICE` starts that service and what it depends on, nothing else.
#[test]
fn docker_up_a_subset() {
    if !docker_or_skip("docker_up_a_subset") {
        return;
    }
    let project = format!("ggsubset{}", std::process::id());
    let ws = workspace(
        &project,
        "services:\n  app:\n    image: goodgo/redis:7\n    depends_on: [cache]\n  cache:\n    image: goodgo/redis:7\n  other:\n    image: goodgo/redis:7\n",
    );
    let _cleanup = DownOnDrop(ws.path());
    let out = run(goodgo(ws.path()).args(["up", "app", "--runtime", "docker", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        actions(&out.json()),
        [
            ("cache".into(), "created".into()),
            ("app".into(), "created".into())
        ]
    );
    assert_eq!(labelled("container", &project), 2);
    let rows = run(goodgo(ws.path()).args(["status", "--json"])).json();
    let names: Vec<&str> = rows["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "cache"]);
}

/// `-f/--file` and `-p/--project` on up, status and down: another file, another project.
#[test]
fn file_and_project_flags() {
    if !native_tools_or_skip("file_and_project_flags") {
        return;
    }
    let rd = free_port();
    let ws = workspace("flagsdefault", "services: {}\n");
    fs::create_dir(ws.path().join("other")).unwrap();
    fs::write(
        ws.path().join("other/stack.yaml"),
        format!("services:\n  cache:\n    image: redis:7\n    ports: [\"127.0.0.1:{rd}:6379\"]\n"),
    )
    .unwrap();
    struct Down<'a>(&'a Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = goodgo(self.0)
                .args([
                    "-q",
                    "down",
                    "--volumes",
                    "-f",
                    "other/stack.yaml",
                    "-p",
                    "flagsproj",
                ])
                .output();
        }
    }
    let _cleanup = Down(ws.path());
    let flags = ["-f", "other/stack.yaml", "-p", "flagsproj"];
    let out = run(goodgo(ws.path())
        .args(["up", "--runtime", "native", "--json"])
        .args(flags));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(actions(&out.json()), [("cache".into(), "created".into())]);
    assert!(redis_ping(rd));
    assert!(ws.path().join(".goodgo/native/flagsproj/cache").is_dir());
    let status = run(goodgo(ws.path()).args(["status", "--json"]).args(flags)).json();
    assert_eq!(status["project"], "flagsproj");
    assert_eq!(status["services"][0]["service"], "cache");
    assert_eq!(status["services"][0]["health"], "healthy");
    let default = run(goodgo(ws.path()).args(["status", "--json"])).json();
    assert_eq!(default["project"], "flagsdefault");
    assert_eq!(default["services"], serde_json::json!([]));
    let long = run(goodgo(ws.path()).args([
        "status",
        "--json",
        "--file",
        "other/stack.yaml",
        "--project",
        "flagsproj",
    ]))
    .json();
    assert_eq!(long["services"][0]["service"], "cache");
    let down = run(goodgo(ws.path()).args(["down"]).args(flags));
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(
        down.stdout.contains("stopped cache (native)"),
        "{}",
        down.stdout
    );
    assert!(redis_down(rd));
}

/// Ctrl-C during `up` exits 130 and leaves a state the next `up` repairs: here PostgreSQL
/// runs but its database was not created yet.
#[test]
fn native_interrupted_up_is_repaired_by_the_next() {
    if !native_tools_or_skip("native_interrupted_up_is_repaired_by_the_next") {
        return;
    }
    let pg = free_port();
    let ws = workspace(
        "nativeint",
        &format!(
            r#"services:
  postgres:
    image: postgres:15
    command: ["postgres", "-c", "max_connections=42"]
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: app-secret
      POSTGRES_DB: appdb
      POSTGRES_INITDB_ARGS: "--data-checksums"
    ports: ["127.0.0.1:{pg}:5432"]
"#
        ),
    );
    let _cleanup = DownOnDrop(ws.path());
    let mut child = goodgo(ws.path())
        .args(["up", "--runtime", "native"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = ws.path().join(".goodgo/native/nativeint/postgres");
    let started = std::time::Instant::now();
    // The pid file is written right after the server is spawned, before `up` creates the
    // database; its first line is the server's pid. The server's own lock file says it
    // runs as `postgres` with its signal handlers set: when `up` exits, the kernel sends
    // SIGHUP to the stopped server (its process group is orphaned), which a server
    // ignores (it rereads its settings) but a process not yet `postgres` dies of.
    let postgres_pid = loop {
        let pid = fs::read_to_string(dir.join("pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
            .filter(|_| dir.join("data/postmaster.pid").exists());
        if let Some(pid) = pid {
            break pid;
        }
        assert!(child.try_wait().unwrap().is_none(), "up ended early");
        assert!(started.elapsed().as_secs() < 60, "postgres never started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    // Freeze the server so setup cannot finish before the interrupt lands.
    assert!(signal(postgres_pid, Signal::STOP));
    let frozen = ContOnDrop(postgres_pid);
    assert!(signal(child.id(), Signal::INT));
    let out = child.wait_with_output().unwrap();
    drop(frozen);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        !dir.join("setup-complete").exists(),
        "setup had not finished"
    );

    let again = run(goodgo(ws.path()).args(["up", "--runtime", "native", "--json"]));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        actions(&again.json()),
        [("postgres".into(), "recreated".into())]
    );
    assert_eq!(psql_select(pg), "app@appdb", "POSTGRES_DB exists");
    let show = |setting: &str| query(&appdb(pg), &format!("SHOW {setting}"));
    assert_eq!(
        show("max_connections"),
        "42",
        "`command: -c` passes through"
    );
    assert_eq!(
        show("data_checksums"),
        "on",
        "POSTGRES_INITDB_ARGS is honoured"
    );
    let status = run(goodgo(ws.path()).args(["status", "--json"])).json();
    assert_eq!(status["services"][0]["health"], "healthy", "{status}");
    let unchanged = run(goodgo(ws.path()).args(["up", "--runtime", "native", "--json"]));
    assert_eq!(
        actions(&unchanged.json()),
        [("postgres".into(), "unchanged".into())]
    );
}

/// `logs -f` follows a native service across a restart (its log starts again).
#[test]
fn native_logs_follow_across_a_restart() {
    if !native_tools_or_skip("native_logs_follow_across_a_restart") {
        return;
    }
    let rd = free_port();
    let compose = |extra: &str| {
        format!(
            "services:\n  cache:\n    image: redis:7\n    command: [\"redis-server\"{extra}]\n    ports: [\"127.0.0.1:{rd}:6379\"]\n"
        )
    };
    let ws = workspace("nativelogs", &compose(""));
    let _cleanup = DownOnDrop(ws.path());
    assert_eq!(
        run(goodgo(ws.path()).args(["up", "--runtime", "native"])).code,
        0
    );
    let mut follower = ChildGuard(
        goodgo(ws.path())
            .args(["logs", "-f", "--tail", "1", "cache"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = follower.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    // The current log's last line: once it is shown, the follower has read the log as it
    // was before the restart.
    let first = rx.recv_timeout(std::time::Duration::from_secs(15));
    assert!(
        first.as_ref().is_ok_and(|l| l.starts_with("cache |")),
        "the current log's last line is shown first: {first:?}"
    );
    fs::write(
        ws.path().join("compose/compose.yaml"),
        compose(", \"--maxmemory\", \"64mb\""),
    )
    .unwrap();
    let restarted = run(goodgo(ws.path()).args(["up", "--runtime", "native", "--json"]));
    assert_eq!(restarted.code, 0, "{}", restarted.stderr);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("cache |") && line.contains("Redis is starting") => {
                break true;
            }
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    drop(follower);
    assert!(
        found,
        "the restarted service's first log line was followed; saw {seen:?}"
    );
}

/// `--dry-run --json` shows each service's `depends_on` with its condition and the waves.
#[test]
fn dry_run_shows_dependencies_and_waves() {
    let ws = workspace(
        "dryplan",
        r#"services:
  api:
    image: goodgo/api:dev
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
  worker:
    image: goodgo/api:dev
    depends_on: [api]
  db:
    image: postgres:15
  cache:
    image: redis:7
"#,
    );
    let out = run(goodgo(ws.path()).args(["up", "--dry-run", "--runtime", "native", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json = out.json();
    assert_eq!(
        json["waves"],
        serde_json::json!([["cache", "db"], ["api"], ["worker"]])
    );
    assert_eq!(
        json["services"]["api"]["depends_on"],
        serde_json::json!({"cache": "service_started", "db": "service_healthy"})
    );
    assert_eq!(
        json["services"]["worker"]["depends_on"],
        serde_json::json!({"api": "service_started"})
    );
    assert_eq!(json["services"]["db"]["depends_on"], serde_json::json!({}));
    assert!(!ws.path().join(".goodgo").exists(), "nothing created");
}

/// A healthcheck that comes from the image is waited on until the engine's check passes,
/// not merely until the container runs: for a dependency (`service_healthy`, no
/// `healthcheck` in the file) and before `up` returns (a `healthcheck` with timings only).
#[test]
fn docker_waits_for_a_healthcheck_from_the_image() {
    if !docker_or_skip("docker_waits_for_a_healthcheck_from_the_image") {
        return;
    }
    let project = format!("ggimghc{}", std::process::id());
    let image = format!("{project}-dep");
    let ws = workspace(
        &project,
        &format!(
            r#"services:
  built:
    image: {image}
    build: ./dep
    healthcheck:
      interval: 1s
      retries: 60
  plain:
    image: {image}
  app:
    image: goodgo/redis:7
    entrypoint: ["sh", "-c", "redis-cli -h plain ping | grep -q PONG && exec sleep 600"]
    depends_on:
      plain: {{condition: service_healthy}}
"#
        ),
    );
    // Dropped last: the containers go first, then their image.
    let _image = ImageOnDrop(image);
    let _cleanup = DownOnDrop(ws.path());
    let dep = ws.path().join("compose/dep");
    fs::create_dir_all(&dep).unwrap();
    // Redis answers only after 3 s; the image's own check says when.
    fs::write(
        dep.join("Dockerfile"),
        "FROM goodgo/redis:7\nHEALTHCHECK --interval=1s --retries=60 CMD redis-cli ping | grep -q PONG\nENTRYPOINT []\nCMD [\"sh\", \"-c\", \"sleep 3 && exec redis-server --protected-mode no\"]\n",
    )
    .unwrap();
    let out = run(goodgo(ws.path()).args(["up", "--runtime", "docker"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    for service in ["built", "plain"] {
        assert_eq!(
            docker_exec(&format!("{project}-{service}-1"), &["redis-cli", "ping"]),
            (true, "PONG\n".to_string()),
            "`up` returned only once {service}'s healthcheck passed"
        );
    }
    assert_eq!(
        inspect(&format!("{project}-app-1"), "{{.State.Status}}"),
        "running",
        "app started after plain answered"
    );
}

/// `--runtime auto`: Docker when the engine has the images; when one is missing it tries to
/// pull it, and runs the stack natively when the pull fails, saying why. A dry run never
/// pulls.
#[test]
fn auto_picks_docker_with_images_and_native_when_a_pull_fails() {
    if !docker_or_skip("auto_picks_docker_with_images_and_native_when_a_pull_fails")
        || !native_tools_or_skip("auto_picks_docker_with_images_and_native_when_a_pull_fails")
    {
        return;
    }
    let redis = |image: &str, port: u16| {
        format!(
            "services:\n  redis:\n    image: {image}\n    ports: [\"127.0.0.1:{port}:6379\"]\n    healthcheck:\n      test: [\"CMD\", \"redis-cli\", \"ping\"]\n      interval: 2s\n"
        )
    };
    let present = workspace(
        &format!("ggautoyes{}", std::process::id()),
        &redis("goodgo/redis:7", free_port()),
    );
    let out = run(goodgo(present.path()).args(["up", "--dry-run", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan = out.json();
    assert_eq!(plan["runtime"], "docker", "{plan}");
    assert!(
        plan["reason"]
            .as_str()
            .unwrap()
            .contains("has (or can build or pull) every image"),
        "{plan}"
    );

    let port = free_port();
    let project = format!("ggautono{}", std::process::id());
    let missing = workspace(&project, &redis("goodgo/redis:not-built-here", port));
    let _cleanup = DownOnDrop(missing.path());
    let dry = run(goodgo(missing.path()).args(["up", "--dry-run", "--json"]));
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.json()["runtime"], "native");
    assert!(
        dry.json()["reason"]
            .as_str()
            .unwrap()
            .contains("would try to pull it"),
        "{}",
        dry.stdout
    );
    assert!(!dry.stderr.contains("pulling"), "a dry run pulls nothing");

    let out = run(goodgo(missing.path()).arg("up"));
    // The pull is tried first; its failure is why the native runtime was chosen.
    out.assert_stderr(
        0,
        &[
            "redis: pulling goodgo/redis:not-built-here",
            "runtime native: image goodgo/redis:not-built-here is not present locally and cannot be pulled",
        ],
    );
    assert!(redis_ping(port), "redis runs natively on its port");
    assert_eq!(
        labelled("container", &project),
        0,
        "nothing was made on Docker"
    );
}
