//! `goodgo up` on the real engine with the Compose keys a single engine applies: a base
//! file, its `compose.override.yaml` and a file a service `extends`, with
//! `network_mode: host` and `service:db`, `privileged`, `tmpfs`, `ulimits`, and secrets and
//! configs from every source (`file`, `content`, `environment`; mounted, or written into
//! the container with owner and mode). `docker inspect` and `docker exec` show each one
//! applied; a changed secret value replaces the container; `down` leaves nothing.

use std::path::Path;
use std::process::Command;

use crate::{Runtime, context, goodgo, run};

const BASE: &str = r#"
services:
  db:
    image: goodgo/redis:7
    command: ["redis-server", "--save", ""]
    tmpfs: ["/scratch:size=8m,mode=1777"]
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    secrets:
      - db_password
      - source: api_token
        target: api-token
        uid: "999"
        gid: "999"
        mode: 0400
    configs:
      - source: redis_conf
        target: /etc/redis/extra.conf
      - source: banner
        target: /etc/motd
        uid: "1000"
        gid: "1001"
        mode: 0440
  sidecar:
    image: goodgo/redis:7
    command: ["sleep", "600"]
    network_mode: "service:db"
  hostnet:
    image: goodgo/base:bookworm
    command: ["sleep", "600"]
    network_mode: host
    privileged: true
    init: true
  worker:
    extends:
      file: common.yaml
      service: base
    configs:
      - source: app_env
        target: app.env
secrets:
  db_password:
    file: ./secrets/db_password.txt
  api_token:
    environment: GG_COMPAT_API_TOKEN
configs:
  redis_conf:
    file: ./redis.conf
  banner:
    content: |
      welcome to ${GG_COMPAT_SITE:-the default site}
  app_env:
    environment: GG_COMPAT_APP_ENV
"#;

/// Merged over BASE: a label, a changed ulimit, one more config (a host file written in,
/// for its mode), the worker's command replaced.
const OVERRIDE: &str = r#"
services:
  db:
    labels:
      org.goodgo.layer: override
    ulimits:
      nproc: 512
    configs:
      - source: redis_conf
        target: /etc/redis/copied.conf
        mode: 0600
  worker:
    command: ["sleep", "601"]
"#;

const COMMON: &str = r#"
services:
  base:
    image: goodgo/base:bookworm
    command: ["sleep", "600"]
    tmpfs: ["/cache:size=4m"]
    labels:
      org.goodgo.layer: base
"#;

fn inspect(container: &str, format: &str) -> String {
    crate::stdout_of(Command::new("docker").args(["inspect", "--format", format, container]))
        .trim()
        .to_string()
}

fn exec(container: &str, argv: &[&str]) -> (bool, String) {
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

/// Whether this engine can start a privileged container (one running inside a container
/// without all capabilities cannot).
fn privileged_runs() -> bool {
    Command::new("docker")
        .args([
            "run",
            "--rm",
            "--privileged",
            "goodgo/base:bookworm",
            "true",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `goodgo up` in `ws` with the two variables the file's `environment` sources name.
fn up(ws: &Path, token: &str) -> crate::Run {
    run(goodgo(ws)
        .args(["up", "--runtime", "docker", "--json"])
        .env("GG_COMPAT_API_TOKEN", token)
        .env("GG_COMPAT_APP_ENV", "MODE=compat\n")
        .env("GG_COMPAT_SITE", "goodgo"))
}

fn actions(out: &crate::Run) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = out.json()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

#[test]
fn docker_applies_secrets_configs_and_host_keys_of_merged_files() {
    if !Runtime::Docker
        .available_or_skip("docker_applies_secrets_configs_and_host_keys_of_merged_files")
    {
        return;
    }
    let project = format!("ggfiles{}", std::process::id());
    let privileged = privileged_runs();
    // Where the engine cannot start a privileged container, the override takes the key
    // back (`!reset`); the engine test of goodgo-stack checks the created container's flag.
    let over = if privileged {
        OVERRIDE.to_string()
    } else {
        crate::skip(
            "docker_applies_secrets_configs_and_host_keys_of_merged_files (privileged)",
            "this engine cannot start privileged containers; `privileged: !reset` in the override",
        );
        format!("{OVERRIDE}  hostnet:\n    privileged: !reset false\n")
    };
    let ws = context()
        .with_file("goodgo.yaml", &format!("name: {project}\n"))
        .with_file("compose/compose.yaml", BASE)
        .with_file("compose/compose.override.yaml", &over)
        .with_file("compose/common.yaml", COMMON)
        .with_file("compose/secrets/db_password.txt", "pa55word\n")
        .with_file("compose/redis.conf", "maxmemory 64mb\n");
    struct Down<'a>(&'a Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = goodgo(self.0).args(["-q", "down", "--volumes"]).output();
        }
    }
    let _down = Down(ws.path());
    let out = up(ws.path(), "t0ken-one");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c = |s: &str| format!("{project}-{s}-1");

    // Secrets: a host file mounted read-only; a variable's value written with its owner
    // and mode.
    let db = c("db");
    assert_eq!(
        exec(&db, &["cat", "/run/secrets/db_password"]),
        (true, "pa55word\n".to_string())
    );
    assert_eq!(
        exec(&db, &["cat", "/run/secrets/api-token"]),
        (true, "t0ken-one".to_string())
    );
    assert_eq!(
        exec(&db, &["stat", "-c", "%u:%g %a", "/run/secrets/api-token"]),
        (true, "999:999 400\n".to_string())
    );
    assert!(
        !exec(&db, &["sh", "-c", "echo x > /run/secrets/db_password"]).0,
        "a mounted secret is read-only"
    );
    // Configs: a host file mounted; content interpolated, written with owner and mode
    // (0444 by default); a host file written in for its mode (from the override); a
    // variable's value at a relative target (under /).
    assert_eq!(
        exec(&db, &["cat", "/etc/redis/extra.conf"]),
        (true, "maxmemory 64mb\n".to_string())
    );
    assert_eq!(
        exec(&db, &["cat", "/etc/motd"]),
        (true, "welcome to goodgo\n".to_string())
    );
    assert_eq!(
        exec(
            &db,
            &[
                "stat",
                "-c",
                "%u:%g %a",
                "/etc/motd",
                "/etc/redis/copied.conf"
            ]
        ),
        (true, "1000:1001 440\n0:0 600\n".to_string())
    );
    assert_eq!(
        exec(&db, &["cat", "/etc/redis/copied.conf"]),
        (true, "maxmemory 64mb\n".to_string())
    );
    assert_eq!(
        exec(&c("worker"), &["cat", "/app.env"]),
        (true, "MODE=compat\n".to_string())
    );
    assert_eq!(
        exec(&c("worker"), &["stat", "-c", "%a", "/app.env"]),
        (true, "444\n".to_string())
    );
    let mounts = inspect(
        &db,
        "{{range .Mounts}}{{if eq .Type \"bind\"}}{{.Destination}}:{{.RW}} {{end}}{{end}}",
    );
    let mut binds: Vec<&str> = mounts.split_whitespace().collect();
    binds.sort_unstable();
    assert_eq!(
        binds,
        [
            "/etc/redis/extra.conf:false",
            "/run/secrets/db_password:false"
        ],
        "only host files are mounted"
    );

    // Host keys: tmpfs with size and mode, ulimits merged from the override, its label.
    assert_eq!(
        inspect(
            &db,
            "{{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}} {{end}}{{range .HostConfig.Mounts}}{{if eq .Type \"tmpfs\"}}{{.Target}}={{.TmpfsOptions.SizeBytes}}:{{printf \"%o\" .TmpfsOptions.Mode}}{{end}}{{end}} {{index .Config.Labels \"org.goodgo.layer\"}}"
        ),
        format!(
            "nofile=1024:2048 nproc=512:512 /scratch={}:1777 override",
            8 << 20
        )
    );
    // network_mode: service:db shares db's network stack: its Redis on localhost.
    assert_eq!(
        inspect(&c("sidecar"), "{{.HostConfig.NetworkMode}}"),
        format!("container:{}", inspect(&db, "{{.Id}}"))
    );
    assert_eq!(
        exec(&c("sidecar"), &["redis-cli", "-h", "127.0.0.1", "ping"]),
        (true, "PONG\n".to_string())
    );
    // network_mode: host, privileged, init.
    assert_eq!(
        inspect(
            &c("hostnet"),
            "{{.HostConfig.NetworkMode}} {{.HostConfig.Privileged}} {{.HostConfig.Init}} {{.State.Status}}"
        ),
        format!("host {privileged} true running")
    );
    // extends from another file: its image, tmpfs and label; the override's command.
    assert_eq!(
        inspect(
            &c("worker"),
            "{{.Config.Image}} {{json .Config.Cmd}} {{range .HostConfig.Mounts}}{{.Target}}={{.TmpfsOptions.SizeBytes}}{{end}} {{index .Config.Labels \"org.goodgo.layer\"}}"
        ),
        format!(
            "goodgo/base:bookworm [\"sleep\",\"601\"] /cache={} base",
            4 << 20
        )
    );

    // Nothing changed: nothing touched. A new secret value replaces db, and the sidecar
    // that shared its network stack.
    let again = up(ws.path(), "t0ken-one");
    assert!(
        actions(&again).iter().all(|(_, a)| a == "unchanged"),
        "{:?}",
        actions(&again)
    );
    let rotated = up(ws.path(), "t0ken-two");
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    let acted = actions(&rotated);
    let action = |s: &str| acted.iter().find(|(n, _)| n == s).map(|(_, a)| a.as_str());
    assert_eq!(
        (action("db"), action("sidecar"), action("worker")),
        (Some("recreated"), Some("recreated"), Some("unchanged")),
        "{acted:?}"
    );
    assert_eq!(
        exec(&db, &["cat", "/run/secrets/api-token"]),
        (true, "t0ken-two".to_string())
    );
    // The value is in no label.
    assert!(!inspect(&db, "{{json .Config.Labels}}").contains("t0ken"));

    let stopped = run(goodgo(ws.path()).args(["down", "--volumes"]));
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
    for list in [
        &["ps", "-aq"][..],
        &["network", "ls", "-q"],
        &["volume", "ls", "-q"],
    ] {
        let left = crate::stdout_of(Command::new("docker").args(list).args([
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ]));
        assert_eq!(left.trim(), "", "{list:?} left");
    }
}
