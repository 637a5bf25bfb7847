//! The Compose keys a container gets from its host, applied by the real Docker engine:
//! a project of three files (a base, its `compose.override.yaml`, and a file a service
//! `extends`) with `network_mode: host` and `service:db`, `privileged`, `tmpfs` with a
//! size, `ulimits`, `sysctls`, limits, an inline Dockerfile and Swarm-only `deploy` keys
//! is brought up, and `docker inspect` shows each setting. Runs wherever `docker info`
//! answers; skips with a visible line elsewhere. Leaves no container, network or volume.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use goodgo_compose::{Project, load_files, override_file, waves};
use goodgo_stack::docker::DockerRuntime;
use goodgo_stack::{Action, Event, UpRequest};

const BASE: &str = r#"
name: ignored-the-test-names-its-project
services:
  db:
    image: goodgo/redis:7
    command: ["redis-server", "--save", ""]
    sysctls:
      net.core.somaxconn: 1024
    shm_size: 64m
    cap_add: [SYS_PTRACE]
    security_opt: ["no-new-privileges:true"]
    dns: [9.9.9.9]
    deploy:
      resources:
        limits: {memory: 256m, cpus: "0.5", pids: 200}
      placement:
        constraints: [node.role == manager]
  sidecar:
    image: goodgo/redis:7
    command: ["sleep", "600"]
    network_mode: "service:db"
    read_only: true
    tmpfs: [/tmp]
  hostnet:
    image: goodgo/base:bookworm
    command: ["sleep", "600"]
    network_mode: host
    privileged: true
    pull_policy: never
    tmpfs: ["/scratch:size=16m,mode=1777"]
    ulimits:
      nofile: {soft: 1024, hard: 2048}
  worker:
    extends:
      file: common/base.yaml
      service: base
    command: ["sleep", "601"]
  built:
    build:
      context: ./empty
      dockerfile_inline: |
        FROM goodgo/base:bookworm
        LABEL org.goodgo.test=inline
        CMD ["sleep", "600"]
"#;

/// Merged over BASE: labels added, a command replaced, a ulimit changed.
const OVERRIDE: &str = r#"
services:
  db:
    labels:
      org.goodgo.layer: override
  hostnet:
    command: ["sleep", "602"]
    ulimits:
      nproc: 512
"#;

const COMMON: &str = r#"
services:
  base:
    image: goodgo/base:bookworm
    init: true
    ulimits:
      nofile: 4096
    tmpfs: ["/cache:size=8m"]
    labels:
      org.goodgo.layer: base
"#;

fn docker_available() -> bool {
    Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn inspect(target: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "--format", format, target])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker inspect {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// Removes what the project created (containers, networks, volumes, the built image)
/// when the test ends, also when it fails.
struct Cleanup {
    project: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let project = self.project.clone();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            if let Ok(docker) = DockerRuntime::connect().await {
                let _ = docker.down(&project, true).await;
            }
        });
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

fn load(dir: &Path) -> Project {
    let main = dir.join("compose.yaml");
    let mut files: Vec<(PathBuf, PathBuf)> = vec![(main.clone(), "compose.yaml".into())];
    let over = override_file(&main).expect("compose.override.yaml is found beside compose.yaml");
    files.push((over, "compose.override.yaml".into()));
    let refs: Vec<(&Path, &Path)> = files
        .iter()
        .map(|(p, s)| (p.as_path(), s.as_path()))
        .collect();
    load_files(&refs, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// What `up` did to each service, and the warnings it gave.
type Outcome = (Vec<(String, Action)>, Vec<String>);

/// Brings the project up: each service's action and the warnings, or the error.
fn try_up(project: &Project, name: &str) -> Result<Outcome, goodgo_stack::StackError> {
    let req = UpRequest {
        project: name.to_string(),
        waves: waves(project, &[], &[]).unwrap(),
        timeout: Duration::from_secs(120),
    };
    let warnings = Mutex::new(Vec::new());
    let on_event = |e: Event| {
        if let Event::Warning { service, message } = e {
            warnings
                .lock()
                .unwrap()
                .push(format!("{service}: {message}"));
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reports = rt.block_on(async {
        let docker = DockerRuntime::connect().await.unwrap();
        goodgo_stack::up(&docker, project, &req, &on_event).await
    });
    let mut actions: Vec<(String, Action)> = reports?
        .into_iter()
        .map(|r| (r.service, r.action))
        .collect();
    actions.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((actions, warnings.into_inner().unwrap()))
}

fn up(project: &Project, name: &str) -> Outcome {
    try_up(project, name).unwrap_or_else(|e| panic!("up failed: {e:?}"))
}

/// Whether this engine can start a privileged container (one running inside a container
/// without all capabilities cannot).
fn privileged_runs() -> bool {
    docker(&[
        "run",
        "--rm",
        "--privileged",
        "goodgo/base:bookworm",
        "true",
    ])
    .0
}

#[test]
fn host_keys_override_and_extends_are_applied_by_the_engine() {
    if !docker_available() {
        goodgo_testkit::skip(
            "host_keys_override_and_extends_are_applied_by_the_engine",
            "no Docker engine answers `docker info` on this machine",
        );
        return;
    }
    let name = format!("ggcompat{}", std::process::id());
    let _cleanup = Cleanup {
        project: name.clone(),
        image: format!("{name}-built"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("compose.yaml"), BASE).unwrap();
    std::fs::write(dir.join("compose.override.yaml"), OVERRIDE).unwrap();
    std::fs::create_dir_all(dir.join("common")).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::write(dir.join("common/base.yaml"), COMMON).unwrap();
    let project = load(dir);
    let c = |s: &str| format!("{name}-{s}-1");
    let swarm = "db: `deploy.placement` is kept for a Swarm deploy and not applied: a single engine has no orchestrator";

    let privileged = privileged_runs();
    if privileged {
        let (actions, warnings) = up(&project, &name);
        assert!(
            actions.iter().all(|(_, a)| *a == Action::Created),
            "{actions:?}"
        );
        assert_eq!(warnings, [swarm]);
    } else {
        // The engine refuses to start it, but goodgo asked for it: the created container
        // says so. Then the override file takes the key back with `!reset`.
        let e = try_up(&project, &name).unwrap_err();
        assert!(
            format!("{e:?}").contains("service `hostnet` could not start"),
            "{e:?}"
        );
        assert_eq!(inspect(&c("hostnet"), "{{.HostConfig.Privileged}}"), "true");
        goodgo_testkit::skip(
            "host_keys_override_and_extends_are_applied_by_the_engine (privileged running)",
            "this engine cannot start privileged containers; `privileged` is checked on the created container",
        );
        let reset = format!("{OVERRIDE}    privileged: !reset false\n");
        std::fs::write(dir.join("compose.override.yaml"), reset).unwrap();
        let (actions, warnings) = up(&load(dir), &name);
        assert_eq!(
            actions
                .iter()
                .find(|(s, _)| s == "hostnet")
                .map(|(_, a)| *a),
            Some(Action::Recreated),
            "{actions:?}"
        );
        assert_eq!(warnings, [swarm]);
    }
    let project = load(dir);

    // network_mode: host, privileged, tmpfs with size and mode, ulimits merged from the
    // override, a command replaced by it.
    assert_eq!(
        inspect(
            &c("hostnet"),
            "{{.HostConfig.NetworkMode}} {{.HostConfig.Privileged}} {{json .Config.Cmd}}"
        ),
        format!("host {privileged} [\"sleep\",\"602\"]")
    );
    assert_eq!(
        inspect(
            &c("hostnet"),
            "{{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}} {{end}}"
        ),
        "nofile=1024:2048 nproc=512:512"
    );
    assert_eq!(
        inspect(
            &c("hostnet"),
            "{{range .HostConfig.Mounts}}{{.Type}} {{.Target}} {{.TmpfsOptions.SizeBytes}} {{printf \"%o\" .TmpfsOptions.Mode}}{{end}}"
        ),
        format!("tmpfs /scratch {} 1777", 16 << 20)
    );
    let (ok, df) = docker(&[
        "exec",
        &c("hostnet"),
        "sh",
        "-c",
        "df -k /scratch | tail -1",
    ]);
    assert!(
        ok && df.split_whitespace().nth(1) == Some("16384"),
        "a 16 MiB tmpfs: {df}"
    );

    // network_mode: service:db shares db's network stack: db's Redis answers on localhost.
    let db_id = inspect(&c("db"), "{{.Id}}");
    assert_eq!(
        inspect(
            &c("sidecar"),
            "{{.HostConfig.NetworkMode}} {{.HostConfig.ReadonlyRootfs}}"
        ),
        format!("container:{db_id} true")
    );
    assert_eq!(
        docker(&[
            "exec",
            &c("sidecar"),
            "redis-cli",
            "-h",
            "127.0.0.1",
            "ping"
        ]),
        (true, "PONG".to_string())
    );
    assert!(
        !docker(&["exec", &c("sidecar"), "touch", "/etc/x"]).0,
        "read-only root"
    );
    assert!(
        docker(&["exec", &c("sidecar"), "touch", "/tmp/x"]).0,
        "its tmpfs is writable"
    );

    // Kernel parameters, limits, capabilities, DNS; the override's label.
    assert_eq!(
        inspect(
            &c("db"),
            "{{json .HostConfig.Sysctls}} {{.HostConfig.ShmSize}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{json .HostConfig.CapAdd}} {{json .HostConfig.SecurityOpt}} {{json .HostConfig.Dns}} {{index .Config.Labels \"org.goodgo.layer\"}}"
        ),
        format!(
            "{{\"net.core.somaxconn\":\"1024\"}} {} {} 500000000 200 [\"SYS_PTRACE\"] [\"no-new-privileges:true\"] [\"9.9.9.9\"] override",
            64 << 20,
            256 << 20
        )
    );

    // extends from another file: its image, init, ulimits, tmpfs and label; its own command.
    assert_eq!(
        inspect(
            &c("worker"),
            "{{.Config.Image}} {{.HostConfig.Init}} {{json .Config.Cmd}} {{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}} {{range .HostConfig.Mounts}}{{.Target}}={{.TmpfsOptions.SizeBytes}}{{end}} {{index .Config.Labels \"org.goodgo.layer\"}}"
        ),
        format!(
            "goodgo/base:bookworm true [\"sleep\",\"601\"] nofile=4096:4096 /cache={} base",
            8 << 20
        )
    );

    // The inline Dockerfile was built.
    assert_eq!(
        inspect(
            &format!("{name}-built"),
            "{{index .Config.Labels \"org.goodgo.test\"}}"
        ),
        "inline"
    );
    assert_eq!(inspect(&c("built"), "{{.State.Status}}"), "running");

    // Nothing changed: nothing is touched.
    let (again, _) = up(&project, &name);
    assert!(
        again.iter().all(|(_, a)| *a == Action::Unchanged),
        "{again:?}"
    );

    // db replaced behind goodgo's back: the next `up` creates it, and replaces the
    // sidecar that shared the old one's network stack.
    assert!(docker(&["rm", "-f", "-v", &c("db")]).0);
    let (repaired, _) = up(&project, &name);
    let action = |s: &str| repaired.iter().find(|(n, _)| n == s).map(|(_, a)| *a);
    assert_eq!(action("db"), Some(Action::Created));
    assert_eq!(action("sidecar"), Some(Action::Recreated));
    assert_eq!(action("hostnet"), Some(Action::Unchanged));
    assert_eq!(
        inspect(&c("sidecar"), "{{.HostConfig.NetworkMode}}"),
        format!("container:{}", inspect(&c("db"), "{{.Id}}"))
    );
}
