//! `goodgo deploy --target swarm` on a real single-node swarm: the test makes this engine a
//! swarm manager only when it is in no swarm, and leaves it afterwards exactly as found
//! (`docker swarm leave --force`, `docker_gwbridge` removed when the swarm created it), on
//! failure too (a guard's Drop). The API's database is a PostgreSQL of the test's own,
//! listening on the swarm bridge's gateway so the API's tasks (on an overlay network) and
//! goodgo (on the host) reach it at the same address. Checked: A → B → a never-ready image
//! under k6's constant arrival rate at the proxy with no failed request, the
//! `GoodGo-Release` header switching, the bad image rolled back by swarm with its task
//! errors (exit 1); secrets as swarm secrets, never in `docker inspect`, logs or the
//! history; Ctrl-C rolls the update back and releases the lock; rollback; down.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::deploy::{Env, JWT, Load, docker, ready_or_skip};
use crate::{ChildGuard, context, free_port, stdout_of, wait_until};

/// A PostgreSQL of the test's own on `addr` (trusting the private ranges Docker takes bridge addresses from).
struct HostPg {
    _server: ChildGuard,
    _dir: tempfile::TempDir,
    url: String,
}

impl HostPg {
    fn start(addr: &str) -> HostPg {
        let bin = PathBuf::from(
            std::env::var("GOODGO_TEST_PG_BIN_DIR")
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let root = stdout_of(Command::new("id").arg("-u")).trim() == "0";
        if root {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let as_pg = |program: PathBuf| {
            if root {
                let mut cmd = Command::new("setpriv");
                cmd.args([
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--init-groups",
                    "--",
                ])
                .arg(program);
                cmd
            } else {
                Command::new(program)
            }
        };
        let out = as_pg(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hba = data.join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&hba).unwrap();
        text.push_str("host all all 172.16.0.0/12 trust\nhost all all 192.168.0.0/16 trust\nhost all all 10.0.0.0/8 trust\nhost all all samehost trust\n");
        std::fs::write(&hba, text).unwrap();
        let port = free_port();
        let server = as_pg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(dir.path())
            .args(["-c", &format!("listen_addresses={addr}"), "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = ChildGuard::new(server);
        wait_until("the test's PostgreSQL", Duration::from_secs(30), || {
            Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", addr, "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        });
        HostPg {
            _server: server,
            _dir: dir,
            url: format!("postgres://postgres@{addr}:{port}/postgres"),
        }
    }
}

/// The engine in a swarm for the test's length: joined (initialised) only when it was in
/// none; the project's services, secrets, configs and network removed, the swarm left and
/// `docker_gwbridge` removed (when it created them) on drop, whatever happened.
struct Swarm {
    project: String,
    inited: bool,
    gwbridge_created: bool,
    pg: Option<HostPg>,
}

fn by_label(project: &str) -> String {
    format!("label=com.docker.compose.project={project}")
}

fn ids(args: &[&str]) -> Vec<String> {
    docker(args).1.lines().map(str::to_string).collect()
}

impl Swarm {
    fn state() -> String {
        docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).1
    }

    fn join(project: &str) -> Swarm {
        let had_gwbridge = docker(&["network", "inspect", "docker_gwbridge"]).0;
        let inited = Swarm::state() != "active";
        let mut swarm = Swarm {
            project: project.to_string(),
            inited,
            gwbridge_created: !had_gwbridge,
            pg: None,
        };
        if inited {
            // The address of the default route: a host with several has no obvious one.
            let route = stdout_of(Command::new("ip").args(["-4", "route", "get", "1.1.1.1"]));
            let addr = route
                .split_whitespace()
                .skip_while(|w| *w != "src")
                .nth(1)
                .unwrap_or("127.0.0.1")
                .to_string();
            let out = Command::new("docker")
                .args(["swarm", "init", "--advertise-addr", &addr])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "docker swarm init: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        swarm.pg.replace(HostPg::start(&Swarm::gateway()));
        swarm
    }

    /// A host address the swarm's tasks reach: the host's address on `docker_gwbridge`, else
    /// on the default bridge.
    fn gateway() -> String {
        for dev in ["docker_gwbridge", "docker0"] {
            let out = Command::new("ip")
                .args(["-4", "-o", "addr", "show", "dev", dev])
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&out.stdout).to_string();
            let addr = out.split_whitespace().skip_while(|w| *w != "inet").nth(1);
            if let Some(addr) = addr.and_then(|a| a.split('/').next()) {
                return addr.to_string();
            }
        }
        panic!("no Docker bridge address to listen on");
    }

    fn url(&self) -> &str {
        &self.pg.as_ref().unwrap().url
    }

    fn leftovers(&self) -> Vec<String> {
        let filter = by_label(&self.project);
        let mut left = Vec::new();
        for kind in ["service", "secret", "config", "network"] {
            for id in ids(&[kind, "ls", "-q", "--filter", &filter]) {
                left.push(format!("{kind} {id}"));
            }
        }
        left
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let filter = by_label(&self.project);
        let services = ids(&["service", "ls", "-q", "--filter", &filter]);
        if !services.is_empty() {
            let mut args = vec!["service", "rm"];
            args.extend(services.iter().map(String::as_str));
            docker(&args);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ids(&["ps", "-aq", "--filter", &filter]).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        for id in ids(&["ps", "-aq", "--filter", &filter]) {
            docker(&["rm", "-f", &id]);
        }
        for kind in ["secret", "config"] {
            for id in ids(&[kind, "ls", "-q", "--filter", &filter]) {
                docker(&[kind, "rm", &id]);
            }
        }
        for id in ids(&["network", "ls", "-q", "--filter", &filter]) {
            for _ in 0..40 {
                if docker(&["network", "rm", &id]).0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        if self.inited {
            docker(&["swarm", "leave", "--force"]);
        }
        if self.gwbridge_created {
            for _ in 0..40 {
                if !docker(&["network", "inspect", "docker_gwbridge"]).0
                    || docker(&["network", "rm", "docker_gwbridge"]).0
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        self.pg.take();
    }
}

/// The label value `key` of service `name`.
fn service_label(name: &str, key: &str) -> String {
    docker(&[
        "service",
        "inspect",
        "--format",
        &format!("{{{{index .Spec.Labels \"{key}\"}}}}"),
        name,
    ])
    .1
}

#[test]
fn deploy_swarm_a_then_b_bad_interrupt_rollback_down() {
    let test = "deploy_swarm";
    if !ready_or_skip(test) {
        return;
    }
    let Some(env) = Env::new(test, "  replicas: 2\n") else {
        return;
    };
    let a = env.build();
    let project = format!("{}-swarm", env.name);
    let api = format!("{}-api", env.name);

    if Swarm::state() == "inactive" {
        env.goodgo(&["deploy", "--target", "swarm", "--image", &a])
            .assert_stderr(2, &["is not in a swarm", "docker swarm init"]);
    }
    let swarm = Swarm::join(&project);
    env.ws.write(
        ".env",
        &format!(
            "GOODGO_JWT_SECRET={JWT}\nGOODGO_DATABASE_URL={}\nGOODGO_LOG=warn\n",
            swarm.url()
        ),
    );

    // A: the proxy service, the API service created with two replicas.
    let out = env.goodgo(&["deploy", "--target", "swarm", "--image", &a, "--json"]);
    assert_eq!(out.code, 0, "{}", out.report());
    assert_eq!(out.json()["release"]["id"], "r1");
    assert_eq!(env.release(), "r1");

    // B under load: swarm rolls it out start-first, no request fails, the header switches.
    env.ws.write("NOTES.md", "a change\n");
    let b = env.build();
    let load = Load::start(&env, "/v1/listings/search?limit=5");
    let out = env.goodgo(&["deploy", "--target", "swarm", "--image", &b]);
    let (requests, failed) = load.stop();
    assert_eq!(out.code, 0, "{}", out.report());
    assert!(requests > 100, "{requests} requests");
    assert_eq!(
        failed, 0,
        "{failed} of {requests} requests failed across A → B"
    );
    assert_eq!(env.release(), "r2");

    // Never ready: swarm rolls it back, goodgo exits 1 with the task errors.
    let never = env.derived(&a, "never", "postgres://nobody@127.0.0.1:1/none");
    let load = Load::start(&env, "/v1/listings/search?limit=5");
    let out = env.goodgo(&[
        "deploy",
        "--target",
        "swarm",
        "--image",
        &never,
        "--ready-timeout",
        "4",
    ]);
    let (requests, failed) = load.stop();
    out.assert_stderr(
        1,
        &[
            "release r3 switched back: swarm rolled it back",
            "task errors:",
            "release r2 serves again",
        ],
    );
    assert_eq!(
        failed, 0,
        "{failed} of {requests} requests failed during the never-ready release"
    );
    assert_eq!(env.release(), "r2");

    // Secrets: swarm secrets as files, never in the service's or a task's inspect output,
    // its logs or the history.
    let (_, inspect) = docker(&["service", "inspect", &api]);
    assert!(inspect.contains("GOODGO_JWT_SECRET_FILE=/run/secrets/GOODGO_JWT_SECRET"));
    assert!(inspect.contains(&format!("{project}_GOODGO_JWT_SECRET_r2")));
    assert!(
        !inspect.contains(JWT) && !inspect.contains(swarm.url()),
        "a secret in docker service inspect"
    );
    let task = ids(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={api}"),
    ]);
    let task = task.first().expect("a running task");
    let (_, inspect) = docker(&["inspect", task]);
    assert!(!inspect.contains(JWT) && !inspect.contains(swarm.url()));
    let (_, logs) = docker(&["logs", task]);
    assert!(!logs.contains(JWT));
    let recorded = env.ws.read(".goodgo/deploy/swarm/history.json");
    assert!(!recorded.contains(JWT) && !recorded.contains(swarm.url()));

    let status = env.goodgo(&["deploy", "status", "--target", "swarm", "--json"]);
    assert_eq!(status.code, 0, "{}", status.report());
    let status = status.json();
    assert_eq!(status["serving"]["release"], "r2");
    assert_eq!(status["serving"]["running"], 2);
    assert_eq!(status["url"], format!("http://127.0.0.1:{}", env.port));

    // Ctrl-C during an update: swarm rolls it back, r2 serves, the lock is released.
    let mut cmd = env.ws.command();
    cmd.args([
        "deploy",
        "--target",
        "swarm",
        "--image",
        &never,
        "--ready-timeout",
        "60",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    wait_until("the update to r4", Duration::from_secs(60), || {
        service_label(&api, "org.goodgo.deploy.release") == "r4"
    });
    std::thread::sleep(Duration::from_secs(1));
    let status = crate::interrupt(&mut child, Duration::from_secs(150), String::new);
    assert_eq!(status.code(), Some(130));
    assert_eq!(env.release(), "r2");
    let out = env.goodgo(&[
        "deploy",
        "--target",
        "swarm",
        "--image",
        &a,
        "--watch",
        "1",
        "--lock-timeout",
        "1",
    ]);
    assert_eq!(out.code, 0, "{}", out.report());
    assert_eq!(env.release(), "r5");

    // Rollback to the first release's image, serving as r1 again.
    let out = env.goodgo(&["deploy", "rollback", "r1", "--target", "swarm"]);
    assert_eq!(out.code, 0, "{}", out.report());
    assert_eq!(env.release(), "r1");
    let history = env
        .goodgo(&["deploy", "history", "--target", "swarm", "--json"])
        .json();
    let results: Vec<String> = history["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["id"].as_str().unwrap(),
                r["result"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            "r1 replaced",
            "r2 replaced",
            "r3 rolled-back",
            "r4 interrupted",
            "r5 replaced",
            "r6 serving"
        ]
    );
    assert_eq!(history["releases"][5]["serves"], "r1");

    let out = env.goodgo(&["deploy", "down", "--target", "swarm"]);
    assert_eq!(out.code, 0, "{}", out.report());
    assert!(swarm.leftovers().is_empty(), "{:?}", swarm.leftovers());
    let (inited, created) = (swarm.inited, swarm.gwbridge_created);
    drop(swarm);
    if inited {
        assert_eq!(Swarm::state(), "inactive", "the swarm is left");
    }
    if created {
        assert!(
            !docker(&["network", "inspect", "docker_gwbridge"]).0,
            "docker_gwbridge is removed"
        );
    }
}

#[test]
fn deploy_swarm_bad_settings_exit_2_with_position() {
    let ws = context().with_file("goodgo.yaml", "name: x\ndeploy:\n  replicas: 0\n");
    ws.run(["deploy", "history", "--target", "swarm"])
        .assert_stderr(2, &["goodgo.yaml:3:13:", "0 replicas would serve nothing"]);
    let ws = context().with_file("goodgo.yaml", "name: x\n");
    let out = crate::run(
        ws.command()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["deploy", "status", "--target", "swarm"]),
    );
    out.assert_stderr(
        2,
        &["cannot reach the Docker engine at unix:///nonexistent/docker.sock"],
    );
}
