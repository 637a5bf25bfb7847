//! Several Compose files (repeated `-f`, `COMPOSE_FILE`, the `.override` file beside the
//! workspace's), `goodgo compose config` in YAML and JSON, the broken-file corpus of
//! `goodgo-compose` through `up --dry-run` (exit 2, `file:line:col: error:`), and a
//! merged project with `network_mode`, tmpfs and ulimits run on the real engine.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::{Runtime, context, goodgo, repo, run};

const BASE: &str = r#"
services:
  web:
    image: goodgo/redis:7
    command: ["redis-server", "--port", "7000"]
    environment:
      MODE: dev
    ports: ["127.0.0.1:18080:7000"]
  db:
    extends:
      file: common.yaml
      service: base
    image: goodgo/redis:7
"#;

const OVERRIDE: &str = r#"
services:
  web:
    environment:
      MODE: prod
    ports: !reset []
    network_mode: "service:db"
    tmpfs: ["/scratch:size=8m"]
    ulimits:
      nofile: {soft: 512, hard: 1024}
"#;

const COMMON: &str = r#"
services:
  base:
    image: goodgo/base:bookworm
    command: ["redis-server", "--port", "6379"]
    labels: {org.goodgo.from: common}
"#;

/// A workspace with the three files: compose/compose.yaml, its override beside it, and
/// the file `db` extends.
fn workspace(project: &str) -> crate::TestContext {
    context()
        .with_file("goodgo.yaml", &format!("name: {project}\n"))
        .with_file("compose/compose.yaml", BASE)
        .with_file("compose/compose.override.yaml", OVERRIDE)
        .with_file("compose/common.yaml", COMMON)
}

fn config_json(ws: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(goodgo(ws).args(["compose", "config"]).args(args));
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn compose_config_merges_the_override_file_and_repeated_files() {
    let ws = workspace("ggconfig");
    let v = config_json(ws.path(), &["--format", "json"]);
    assert_eq!(v["name"], "ggconfig");
    let web = &v["services"]["web"];
    assert_eq!(
        web["environment"]["MODE"], "prod",
        "the override file is read"
    );
    assert_eq!(web["network_mode"], "service:db");
    assert!(web.get("ports").is_none(), "`!reset` took the ports away");
    assert_eq!(web["ulimits"]["nofile"]["hard"], 1024);
    assert_eq!(web["volumes"][0]["tmpfs"]["size"], 8 << 20);
    assert_eq!(web["depends_on"]["db"]["condition"], "service_started");
    let db = &v["services"]["db"];
    assert_eq!(
        db["image"], "goodgo/redis:7",
        "its own key over the extended one"
    );
    assert_eq!(db["labels"]["org.goodgo.from"], "common");
    assert_eq!(db["networks"]["default"], serde_json::Value::Null);
    assert_eq!(v["networks"]["default"]["name"], "ggconfig_default");

    // --json is --format json; YAML says the same.
    let json = run(goodgo(ws.path()).args(["--json", "compose", "config"]));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json.stdout).unwrap(),
        v
    );
    let yaml = run(goodgo(ws.path()).args(["compose", "config"]));
    assert_eq!(yaml.code, 0, "{}", yaml.stderr);
    let from_yaml: serde_json::Value =
        goodgo_yaml::from_str(Path::new("config.yaml"), &yaml.stdout).unwrap();
    assert_eq!(from_yaml["services"]["web"]["environment"]["MODE"], "prod");
    assert_eq!(
        from_yaml["services"]["web"]["ulimits"],
        v["services"]["web"]["ulimits"]
    );

    // Repeated -f: only the files named, merged in order.
    let only_base = config_json(
        ws.path(),
        &["--format", "json", "-f", "compose/compose.yaml"],
    );
    assert_eq!(only_base["services"]["web"]["environment"]["MODE"], "dev");
    let both = config_json(
        ws.path(),
        &[
            "--format",
            "json",
            "-f",
            "compose/compose.yaml",
            "-f",
            "compose/compose.override.yaml",
        ],
    );
    assert_eq!(both, v);

    // COMPOSE_FILE names the files when -f does not.
    let listed = run(goodgo(ws.path())
        .args(["compose", "config", "--format", "json"])
        .env("COMPOSE_FILE", "compose/compose.yaml"));
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed["services"]["web"]["environment"]["MODE"], "dev");

    // A missing file is named.
    let missing = run(goodgo(ws.path()).args(["compose", "config", "-f", "compose/nope.yaml"]));
    missing.assert_stderr(2, &["error: no Compose file at compose/nope.yaml"]);
}

/// Every file of the compose crate's broken-file corpus: `up --dry-run` refuses it with
/// exit 2 and `file:line:col: error: …` naming the file that holds the mistake — never
/// the engine's error, never exit 1.
#[test]
fn broken_compose_files_are_located_errors_before_anything_runs() {
    let corpus = repo().join("crates/goodgo-compose/tests/broken");
    let ws = context().with_file("goodgo.yaml", "name: ggbroken\n");
    copy_dir(&corpus, &ws.join("compose"));
    let mut names: Vec<String> = fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 20);
    for name in names {
        let text = fs::read_to_string(corpus.join(&name)).unwrap();
        let expect = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# expect: ")
            .unwrap();
        // `file:line:col: message` as the CLI renders it: under compose/, with `error:`.
        let mut parts = expect.splitn(4, ':');
        let (file, line, col, message) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap().trim_start(),
        );
        // Files the message names are shown from where goodgo runs, too.
        let message = message.replace("parts/", "compose/parts/");
        let rendered = format!("compose/{file}:{line}:{col}: error: {message}");
        let out = run(goodgo(ws.path()).args([
            "up",
            "--dry-run",
            "--runtime",
            "native",
            "-f",
            &format!("compose/{name}"),
        ]));
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert!(
            out.stderr.contains(&rendered),
            "{name}:\n  expected: {rendered}\n  got: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{name}: {}", out.stderr);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn inspect(container: &str, format: &str) -> String {
    crate::stdout_of(Command::new("docker").args(["inspect", "--format", format, container]))
        .trim()
        .to_string()
}

/// The merged project on the engine: `web` shares `db`'s network stack (and so reaches
/// its Redis on localhost), has the override's tmpfs and ulimits; `db` runs what it
/// extends. `down` leaves nothing.
#[test]
fn docker_runs_the_merged_project() {
    if !Runtime::Docker.available_or_skip("docker_runs_the_merged_project") {
        return;
    }
    let project = format!("ggmerged{}", std::process::id());
    let ws = workspace(&project);
    let down = || {
        let _ = goodgo(ws.path()).args(["-q", "down", "--volumes"]).output();
    };
    struct Down<F: Fn()>(F);
    impl<F: Fn()> Drop for Down<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _down = Down(down);
    let out = run(goodgo(ws.path()).args(["up", "--runtime", "docker", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (web, db) = (format!("{project}-web-1"), format!("{project}-db-1"));
    let db_id = inspect(&db, "{{.Id}}");
    assert_eq!(
        inspect(
            &web,
            "{{.HostConfig.NetworkMode}} {{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}} {{range .HostConfig.Mounts}}{{.Type}}:{{.Target}}:{{.TmpfsOptions.SizeBytes}}{{end}}"
        ),
        format!(
            "container:{db_id} nofile=512:1024 tmpfs:/scratch:{}",
            8 << 20
        )
    );
    assert_eq!(
        inspect(
            &db,
            "{{.Config.Image}} {{index .Config.Labels \"org.goodgo.from\"}}"
        ),
        "goodgo/redis:7 common"
    );
    let ping = Command::new("docker")
        .args(["exec", &web, "redis-cli", "-p", "6379", "ping"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ping.stdout).trim(),
        "PONG",
        "db's Redis on web's localhost"
    );
    let again = run(goodgo(ws.path()).args(["up", "--runtime", "docker", "--json"]));
    let actions: Vec<String> = again.json()["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["unchanged", "unchanged"]);
    let stopped = run(goodgo(ws.path()).args(["down", "--volumes"]));
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
    for kind in ["container", "network", "volume"] {
        let list: &[&str] = match kind {
            "container" => &["ps", "-aq"],
            "network" => &["network", "ls", "-q"],
            _ => &["volume", "ls", "-q"],
        };
        let left = crate::stdout_of(Command::new("docker").args(list).args([
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ]));
        assert_eq!(left.trim(), "", "no {kind} left");
    }
}
