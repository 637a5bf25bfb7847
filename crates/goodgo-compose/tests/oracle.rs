//! `goodgo compose config`'s form of the project against the reference implementation:
//! on every file of the shared awesome-compose fixtures, goodgo's canonical JSON and
//! `docker-compose config` (installed here; the oracle) agree on services, images,
//! commands, environment, ports, volumes, networks, depends_on conditions and
//! healthchecks once both are normalised (short and long syntax alike, paths absolute,
//! durations as time). Where the oracle is wrong, the difference is listed below with
//! why. Runs wherever `docker-compose` is installed; skips with a visible line elsewhere.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use goodgo_compose::syntax::{parse_duration, parse_ports, parse_volume, shlex_split};
use goodgo_compose::{canonical, load};
use serde_json::Value;

/// Files goodgo refuses (see tests/fixtures.rs): nothing to compare.
const GOODGO_REFUSES: &[&str] = &[
    "plex_compose.yaml",
    "wasmedge-kafka-mysql_compose.yml",
    "wasmedge-mysql-nginx_compose.yml",
];

/// Differences that are bugs (or dated behaviour) of the oracle, docker-compose 1.29,
/// each as (file, service, field) with the reason; any other difference fails the test.
const ORACLE_BUGS: &[(&str, &str, &str, &str)] = &[];

/// The oracle predates the top-level `name` (Compose specification, 2021) and refuses a
/// file that has one: it is given a copy without that line, which changes nothing
/// compared here. These files have one.
const ORACLE_REFUSES_NAME: &[&str] = &["react-rust-postgres_compose.yaml"];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/compose")
}

fn oracle_available() -> bool {
    Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One service as both sides are compared.
#[derive(Debug, Default, PartialEq)]
struct Svc {
    image: Option<String>,
    command: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    environment: BTreeMap<String, String>,
    ports: BTreeSet<(String, Option<u16>, u16, String)>,
    volumes: BTreeSet<(String, Option<String>, String, bool)>,
    networks: BTreeSet<String>,
    depends_on: BTreeMap<String, String>,
    healthcheck: Option<Health>,
}

impl Svc {
    /// Each compared field, by name, as text.
    fn fields(&self) -> [(&'static str, String); 9] {
        [
            ("image", format!("{:?}", self.image)),
            ("command", format!("{:?}", self.command)),
            ("entrypoint", format!("{:?}", self.entrypoint)),
            ("environment", format!("{:?}", self.environment)),
            ("ports", format!("{:?}", self.ports)),
            ("volumes", format!("{:?}", self.volumes)),
            ("networks", format!("{:?}", self.networks)),
            ("depends_on", format!("{:?}", self.depends_on)),
            ("healthcheck", format!("{:?}", self.healthcheck)),
        ]
    }
}

#[derive(Debug, Default, PartialEq)]
struct Health {
    test: Vec<String>,
    interval: Option<Duration>,
    timeout: Option<Duration>,
    start_period: Option<Duration>,
    retries: Option<u64>,
    disable: bool,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn argv(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(shlex_split(s).unwrap()),
        Value::Array(items) => Some(items.iter().filter_map(text).collect()),
        _ => None,
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Object(m) => m.keys().cloned().collect(),
        Value::Array(items) => items.iter().filter_map(text).collect(),
        _ => BTreeSet::new(),
    }
}

fn duration(v: &Value) -> Option<Duration> {
    text(v).map(|t| parse_duration(&t).unwrap())
}

fn port(v: &Value) -> Vec<(String, Option<u16>, u16, String)> {
    match v {
        Value::Object(m) => {
            let num = |k: &str| m.get(k).and_then(text).and_then(|t| t.parse::<u16>().ok());
            vec![(
                m.get("host_ip").and_then(text).unwrap_or_default(),
                num("published"),
                num("target").unwrap(),
                m.get("protocol")
                    .and_then(text)
                    .unwrap_or_else(|| "tcp".into()),
            )]
        }
        other => parse_ports(&text(other).unwrap())
            .unwrap()
            .into_iter()
            .map(|p| {
                (
                    p.host_ip.unwrap_or_default(),
                    p.published,
                    p.target,
                    p.protocol,
                )
            })
            .collect(),
    }
}

fn volume(v: &Value) -> (String, Option<String>, String, bool) {
    match v {
        Value::Object(m) => (
            m["type"].as_str().unwrap().to_string(),
            m.get("source").and_then(text),
            m["target"].as_str().unwrap().to_string(),
            m.get("read_only").and_then(Value::as_bool).unwrap_or(false),
        ),
        other => {
            let v = parse_volume(other.as_str().unwrap()).unwrap();
            let kind = match &v.source {
                Some(s) if s.starts_with('/') => "bind",
                _ => "volume",
            };
            let ro = v.options.iter().any(|o| o == "ro");
            (kind.to_string(), v.source, v.target, ro)
        }
    }
}

fn normalise(project: &Value) -> BTreeMap<String, Svc> {
    let mut out = BTreeMap::new();
    for (name, s) in project["services"].as_object().unwrap() {
        let mut svc = Svc {
            image: s.get("image").and_then(text),
            command: s.get("command").and_then(argv),
            entrypoint: s.get("entrypoint").and_then(argv),
            ..Svc::default()
        };
        if let Some(Value::Object(env)) = s.get("environment") {
            for (k, v) in env {
                if let Some(v) = text(v) {
                    svc.environment.insert(k.clone(), v);
                }
            }
        }
        for p in s
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            svc.ports.extend(port(p));
        }
        for v in s
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            svc.volumes.insert(volume(v));
        }
        svc.networks = match s.get("networks") {
            Some(n) => keys(n),
            None if s.get("network_mode").is_some() => BTreeSet::new(),
            None => BTreeSet::from(["default".to_string()]),
        };
        match s.get("depends_on") {
            Some(Value::Object(deps)) => {
                for (d, v) in deps {
                    let cond = v
                        .get("condition")
                        .and_then(text)
                        .unwrap_or_else(|| "service_started".into());
                    svc.depends_on.insert(d.clone(), cond);
                }
            }
            Some(list) => {
                for d in keys(list) {
                    svc.depends_on.insert(d, "service_started".into());
                }
            }
            None => {}
        }
        if let Some(h) = s.get("healthcheck") {
            let test = match h.get("test") {
                Some(Value::String(t)) => vec!["CMD-SHELL".to_string(), t.clone()],
                Some(t) => argv(t).unwrap(),
                None => Vec::new(),
            };
            svc.healthcheck = Some(Health {
                disable: h.get("disable").and_then(Value::as_bool).unwrap_or(false)
                    || test == ["NONE"],
                test,
                interval: h.get("interval").and_then(duration),
                timeout: h.get("timeout").and_then(duration),
                start_period: h.get("start_period").and_then(duration),
                retries: h.get("retries").and_then(Value::as_u64),
            });
        }
        out.insert(name.clone(), svc);
    }
    out
}

/// The oracle's config of `compose.yaml` in `dir`, with no variable set; without the
/// top-level `name` when `drop_name`.
fn oracle(dir: &Path, drop_name: bool) -> Result<Value, String> {
    let text = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !(drop_name && l.starts_with("name:")))
        .collect();
    std::fs::write(dir.join("oracle.yaml"), kept.join("\n")).unwrap();
    oracle_files(dir, &["oracle.yaml"])
}

/// The oracle's config of `files` (in `dir`, merged in order), with no variable set.
fn oracle_files(dir: &Path, files: &[&str]) -> Result<Value, String> {
    let args: Vec<&str> = files
        .iter()
        .flat_map(|f| ["-f", f])
        .chain(["config"])
        .collect();
    let out = Command::new("docker-compose")
        .args(&args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/home/fixture")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    goodgo_yaml::from_str(Path::new("oracle.yaml"), &text).map_err(|e| e.to_string())
}

/// The fixture as `compose.yaml` in a folder of its own, with the build contexts and
/// files it names (the oracle checks that they exist).
fn stage(fixture: &Path, dir: &Path) {
    std::fs::copy(fixture, dir.join("compose.yaml")).unwrap();
    let project = load(
        &dir.join("compose.yaml"),
        Path::new("compose.yaml"),
        &bare_env,
    )
    .unwrap();
    for s in project.services.values() {
        if let Some(b) = &s.build {
            std::fs::create_dir_all(&b.context).unwrap();
        }
    }
}

fn bare_env(name: &str) -> Option<String> {
    (name == "HOME").then(|| "/home/fixture".to_string())
}

#[test]
fn compose_config_agrees_with_docker_compose() {
    if !oracle_available() {
        skip(
            "compose_config_agrees_with_docker_compose",
            "docker-compose is not installed",
        );
        return;
    }
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    fixtures.sort();
    let mut compared = 0;
    let mut differences = Vec::new();
    let mut bugs_seen = BTreeSet::new();
    for fixture in &fixtures {
        let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
        if GOODGO_REFUSES.contains(&name.as_str()) {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        stage(fixture, tmp.path());
        let drop_name = ORACLE_REFUSES_NAME.contains(&name.as_str());
        let theirs = oracle(tmp.path(), drop_name)
            .unwrap_or_else(|e| panic!("{name}: docker-compose config failed: {e}"));
        let project = load(
            &tmp.path().join("compose.yaml"),
            Path::new("compose.yaml"),
            &bare_env,
        )
        .unwrap();
        let ours: Value =
            serde_json::from_str(&canonical::config(&project, "fixture").to_json()).unwrap();
        differences.extend(compare(&name, &ours, &theirs, &mut bugs_seen));
        compared += 1;
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    let unseen: Vec<_> = ORACLE_BUGS
        .iter()
        .filter(|b| !bugs_seen.contains(*b))
        .collect();
    assert!(
        unseen.is_empty(),
        "listed oracle bugs that no longer show: {unseen:?}"
    );
    assert!(compared >= 30, "compared {compared} files");
    println!(
        "{compared} files agree with docker-compose config ({} listed oracle bugs)",
        ORACLE_BUGS.len()
    );
}

/// Where goodgo's config (`ours`, canonical JSON) and the oracle's differ on the
/// compared fields, but for the listed oracle bugs (noted in `bugs_seen`).
fn compare(
    name: &str,
    ours: &Value,
    theirs: &Value,
    bugs_seen: &mut BTreeSet<(&'static str, &'static str, &'static str, &'static str)>,
) -> Vec<String> {
    let (ours, theirs) = (normalise(ours), normalise(theirs));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{name}: the services"
    );
    let mut differences = Vec::new();
    for (service, mine) in &ours {
        let other = &theirs[service];
        for ((field, a), (_, b)) in mine.fields().into_iter().zip(other.fields()) {
            if a == b {
                continue;
            }
            match ORACLE_BUGS
                .iter()
                .find(|(f, s, k, _)| *f == name && s == service && *k == field)
            {
                Some(bug) => {
                    bugs_seen.insert(*bug);
                }
                None => differences.push(format!(
                    "{name} {service}.{field}:\n  goodgo: {a}\n  oracle: {b}"
                )),
            }
        }
    }
    differences
}

const BASE: &str = r#"
services:
  web:
    image: nginx:1.27
    command: ["nginx", "-g", "daemon off;"]
    environment: {MODE: dev, KEEP: "1"}
    ports: ["8080:80"]
    volumes: ["./html:/usr/share/nginx/html:ro", "cache:/var/cache/nginx"]
    depends_on: [db]
  db:
    image: postgres:15
    healthcheck:
      test: ["CMD", "pg_isready"]
      interval: 10s
  worker:
    extends: {service: db}
    command: ["worker"]
  base:
    extends:
      file: common/base.yaml
      service: app
volumes:
  cache:
"#;

const OVERRIDE: &str = r#"
services:
  web:
    image: nginx:1.28
    command: ["nginx-debug", "-g", "daemon off;"]
    environment: [MODE=prod, EXTRA=yes]
    ports: ["8443:443", "8080:80"]
    volumes: ["./site:/usr/share/nginx/html"]
    depends_on:
      db: {condition: service_healthy}
  db:
    healthcheck:
      interval: 5s
"#;

const EXTENDED: &str = r#"
services:
  app:
    image: busybox
    command: echo from base
    environment: {SHARED: "yes"}
    volumes: ["./data:/data"]
"#;

/// A set of files merged (and a service extending another of its file, one extending a
/// service of another file): both agree on the merged project.
#[test]
fn merged_files_agree_with_docker_compose() {
    if !oracle_available() {
        skip(
            "merged_files_agree_with_docker_compose",
            "docker-compose is not installed",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("common")).unwrap();
    std::fs::write(dir.join("compose.yaml"), BASE).unwrap();
    std::fs::write(dir.join("override.yaml"), OVERRIDE).unwrap();
    std::fs::write(dir.join("common/base.yaml"), EXTENDED).unwrap();
    let theirs = oracle_files(dir, &["compose.yaml", "override.yaml"]).unwrap();
    let files = [
        (dir.join("compose.yaml"), PathBuf::from("compose.yaml")),
        (dir.join("override.yaml"), PathBuf::from("override.yaml")),
    ];
    let refs: Vec<(&Path, &Path)> = files
        .iter()
        .map(|(p, s)| (p.as_path(), s.as_path()))
        .collect();
    let project = goodgo_compose::load_files(&refs, &bare_env).unwrap();
    let ours: Value = serde_json::from_str(&canonical::config(&project, "set").to_json()).unwrap();
    let differences = compare("merged set", &ours, &theirs, &mut BTreeSet::new());
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // What the set is about, so a normalisation that hid everything would show.
    assert_eq!(ours["services"]["web"]["image"], "nginx:1.28");
    assert_eq!(ours["services"]["worker"]["healthcheck"]["interval"], "10s");
    assert_eq!(
        ours["services"]["web"]["ports"].as_array().unwrap().len(),
        2
    );
}

const FILE_OBJECTS: &str = r#"
services:
  app:
    image: busybox
    configs:
      - app_conf
      - source: app_conf
        target: /etc/app/app.conf
        uid: "103"
        gid: "104"
        mode: 0440
    secrets:
      - source: pw
        mode: 0400
      - source: pw
        target: /etc/app/pw
configs:
  app_conf:
    file: ./conf/app.conf
secrets:
  pw:
    file: ./pw.txt
"#;

/// A use of a secret or config: source, target, uid, gid, mode.
type Use = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u64>,
);

/// A service's uses of secrets or configs as both sides print them: source, target, uid,
/// gid and mode (a number).
fn uses(v: &Value) -> Vec<Use> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            (
                text(&u["source"]).unwrap(),
                u.get("target").and_then(text),
                u.get("uid").and_then(text),
                u.get("gid").and_then(text),
                u.get("mode").and_then(Value::as_u64),
            )
        })
        .collect()
}

/// Secrets and configs from host files, used with `target`, `uid`, `gid` and `mode`: both
/// print the same uses and the same absolute files. (The oracle, 1.29, knows no `content`
/// or `environment` source; tests/objects.rs checks those.)
#[test]
fn secrets_and_configs_agree_with_docker_compose() {
    if !oracle_available() {
        skip(
            "secrets_and_configs_agree_with_docker_compose",
            "docker-compose is not installed",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::write(dir.join("conf/app.conf"), "a=1\n").unwrap();
    std::fs::write(dir.join("pw.txt"), "pw").unwrap();
    std::fs::write(dir.join("compose.yaml"), FILE_OBJECTS).unwrap();
    let theirs = oracle_files(dir, &["compose.yaml"]).unwrap();
    let project = load(
        &dir.join("compose.yaml"),
        Path::new("compose.yaml"),
        &bare_env,
    )
    .unwrap();
    let ours: Value = serde_json::from_str(&canonical::config(&project, "p").to_json()).unwrap();
    for key in ["configs", "secrets"] {
        let (a, b) = (
            &ours["services"]["app"][key],
            &theirs["services"]["app"][key],
        );
        assert_eq!(uses(a), uses(b), "services.app.{key}");
        assert!(!uses(a).is_empty());
    }
    assert_eq!(
        ours["configs"]["app_conf"]["file"],
        theirs["configs"]["app_conf"]["file"]
    );
    assert_eq!(
        ours["secrets"]["pw"]["file"],
        theirs["secrets"]["pw"]["file"]
    );
    assert_eq!(ours["services"]["app"]["configs"][1]["mode"], 288);
}

/// A visible skip line (libtest captures `eprintln!`).
fn skip(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("SKIPPED {test}: {why}\n").as_bytes());
}
