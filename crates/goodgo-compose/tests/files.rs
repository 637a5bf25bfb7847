//! Projects of several files: `-f` files merged by the Compose rules, `COMPOSE_FILE`,
//! the default override file, `include` and `extends` — with every value's file kept, for
//! its relative paths and for the position of its errors.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use goodgo_compose::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn env_of<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// Loads `names` (relative to `dir`, shown as written).
fn load_in(dir: &Path, names: &[&str], vars: &[(&str, &str)]) -> Result<Project, ComposeError> {
    let paths: Vec<(PathBuf, PathBuf)> = names
        .iter()
        .map(|n| (dir.join(n), PathBuf::from(n)))
        .collect();
    let files: Vec<(&Path, &Path)> = paths
        .iter()
        .map(|(p, s)| (p.as_path(), s.as_path()))
        .collect();
    load_files(&files, &env_of(vars))
}

const BASE: &str = r#"
services:
  web:
    image: nginx:1.27
    command: ["nginx", "-g", "daemon off;"]
    environment:
      MODE: dev
      KEEP: "1"
    ports: ["8080:80"]
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - cache:/var/cache/nginx
    depends_on: [db]
  db:
    image: postgres:15
    ports: ["5432:5432"]
volumes:
  cache:
"#;

const OVERRIDE: &str = r#"
services:
  web:
    image: nginx:1.28
    command: ["nginx-debug", "-g", "daemon off;"]
    environment:
      - MODE=prod
      - EXTRA=yes
    ports: ["8080:80", "8443:443"]
    volumes:
      - ./site:/usr/share/nginx/html
    depends_on:
      db:
        condition: service_healthy
  db:
    ports: !reset []
    healthcheck:
      test: pg_isready
"#;

#[test]
fn later_files_merge_over_earlier_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "compose.yaml", BASE);
    write(dir, "overrides/prod.yaml", OVERRIDE);
    let p = load_in(dir, &["compose.yaml", "overrides/prod.yaml"], &[]).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("nginx:1.28"));
    assert_eq!(
        web.command,
        Some(CommandLine::Exec(vec![
            "nginx-debug".into(),
            "-g".into(),
            "daemon off;".into()
        ])),
        "command is replaced, not appended"
    );
    assert_eq!(
        web.environment,
        BTreeMap::from([
            ("EXTRA".into(), "yes".into()),
            ("KEEP".into(), "1".into()),
            ("MODE".into(), "prod".into()),
        ])
    );
    let ports: Vec<(Option<u16>, u16)> =
        web.ports.iter().map(|p| (p.published, p.target)).collect();
    assert_eq!(
        ports,
        [(Some(8080), 80), (Some(8443), 443)],
        "unique by the whole entry"
    );
    let mounts: Vec<(Option<&str>, &str, bool)> = web
        .volumes
        .iter()
        .map(|m| (m.source.as_deref(), m.target.as_str(), m.read_only))
        .collect();
    let site = dir.join("site").display().to_string();
    assert_eq!(
        mounts,
        [
            (Some(site.as_str()), "/usr/share/nginx/html", false),
            (Some("cache"), "/var/cache/nginx", false)
        ],
        "unique by target, the later in the earlier's place; a relative path in a later file \
         resolves against the first file's folder, as with `docker compose -f a -f b`"
    );
    assert_eq!(web.depends_on["db"], Condition::Healthy);
    let db = &p.services["db"];
    assert!(db.ports.is_empty(), "`!reset` removed the ports");
    assert_eq!(
        db.healthcheck.as_ref().unwrap().test,
        ["CMD-SHELL", "pg_isready"]
    );
    assert_eq!(p.file, Path::new("compose.yaml"));
    assert_eq!(
        p.files,
        [PathBuf::from("compose.yaml"), "overrides/prod.yaml".into()]
    );
}

/// A folder with `text` as its compose.yaml.
fn with_compose(text: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "compose.yaml", text);
    tmp
}

#[track_caller]
fn starts_with(text: &str, start: &str) {
    assert!(text.starts_with(start), "expected `{start}…`, got: {text}");
}

/// BASE as compose.yaml with `over` as o.yaml over it: the folder, and the two loaded.
fn with_override(over: &str) -> (tempfile::TempDir, Result<Project, ComposeError>) {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "compose.yaml", BASE);
    write(tmp.path(), "o.yaml", over);
    let loaded = load_in(tmp.path(), &["compose.yaml", "o.yaml"], &[]);
    (tmp, loaded)
}

/// The error of BASE with `over` over it.
fn override_error(over: &str) -> String {
    with_override(over).1.unwrap_err().to_string()
}

#[test]
fn override_tag_replaces_and_a_single_file_still_loads() {
    let (tmp, p) = with_override(
        "services:\n  web:\n    ports: !override [\"9090:80\"]\n    environment: !override {ONLY: x}\n",
    );
    let p = p.unwrap();
    let web = &p.services["web"];
    assert_eq!(web.ports.len(), 1);
    assert_eq!(web.ports[0].published, Some(9090));
    assert_eq!(
        web.environment,
        BTreeMap::from([("ONLY".into(), "x".into())])
    );
    let alone = load(
        &tmp.path().join("compose.yaml"),
        Path::new("compose.yaml"),
        &|_| None,
    )
    .unwrap();
    assert_eq!(alone.services["web"].ports[0].published, Some(8080));
}

#[test]
fn errors_and_warnings_name_the_file_they_are_in() {
    assert_eq!(
        override_error(
            "services:\n  web:\n    mac_address: 02:42:ac:11:00:02\n    healthcheck:\n      interval: soon\n"
        ),
        "o.yaml:5:17: services.web.healthcheck.interval: invalid duration `soon`: expected a number with a unit, like `10s`, `1m30s` or `500ms`"
    );
    assert_eq!(
        override_error("services:\n  web:\n    mac_address: x\n    depends_on: [cache]\n"),
        "o.yaml:4:18: services.web.depends_on: no service `cache`"
    );
    let p = with_override("services:\n  web:\n    mac_address: x\n")
        .1
        .unwrap();
    assert_eq!(
        p.diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "o.yaml:3:5: warning: `services.web.mac_address` is not supported by goodgo and is ignored: the engine assigns the MAC address"
        ]
    );
    // A dependency cycle closed by the later file is reported there.
    starts_with(
        &override_error("services:\n  db:\n    depends_on: [web]\n"),
        "o.yaml:3:18: services.db.depends_on: dependency cycle: db -> web -> db",
    );
}

#[test]
fn the_override_file_and_compose_file_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let main = write(dir, "compose.yaml", BASE);
    assert_eq!(override_file(&main), None);
    let over = write(dir, "compose.override.yaml", OVERRIDE);
    assert_eq!(override_file(&main), Some(over));
    let yml = write(dir, "docker-compose.yml", BASE);
    let yml_over = write(dir, "docker-compose.override.yml", OVERRIDE);
    assert_eq!(override_file(&yml), Some(yml_over));
    assert_eq!(
        compose_file_list("a.yaml:b/c.yaml::", None),
        [PathBuf::from("a.yaml"), "b/c.yaml".into()]
    );
    assert_eq!(
        compose_file_list("a.yaml;b.yaml", Some(";")),
        [PathBuf::from("a.yaml"), "b.yaml".into()]
    );
}

#[test]
fn include_adds_a_project_with_its_own_folder_and_variables() {
    let tmp = with_compose(
        r#"
include:
  - db/compose.yaml
  - path: cache/compose.yaml
    project_directory: cache/project
    env_file: cache/cache.env
services:
  app:
    image: app:${APP_TAG:-1}
    depends_on: [db, cache]
"#,
    );
    let dir = tmp.path();
    write(dir, ".env", "APP_TAG=7\nDB_TAG=from-root\n");
    write(
        dir,
        "db/compose.yaml",
        "services:\n  db:\n    image: postgres:${DB_TAG}\n    volumes: [./init:/docker-entrypoint-initdb.d, dbdata:/var/lib/postgresql/data]\nvolumes:\n  dbdata:\n",
    );
    write(dir, "db/.env", "DB_TAG=16\n");
    write(
        dir,
        "cache/compose.yaml",
        "services:\n  cache:\n    image: redis:${CACHE_TAG}\n    volumes: [./conf:/conf]\n",
    );
    write(dir, "cache/cache.env", "CACHE_TAG=7-alpine\n");
    let p = load_in(dir, &["compose.yaml"], &[]).unwrap();
    assert_eq!(p.services["app"].image.as_deref(), Some("app:7"));
    assert_eq!(
        p.services["db"].image.as_deref(),
        Some("postgres:16"),
        "the included project's own .env"
    );
    assert_eq!(p.services["cache"].image.as_deref(), Some("redis:7-alpine"));
    assert_eq!(
        p.services["db"].volumes[0].source.as_deref(),
        Some(dir.join("db/init").to_str().unwrap())
    );
    assert_eq!(
        p.services["cache"].volumes[0].source.as_deref(),
        Some(dir.join("cache/project/conf").to_str().unwrap()),
        "relative to project_directory"
    );
    assert!(p.volumes.contains_key("dbdata"));
    assert_eq!(
        waves(&p, &["app"], &[]).unwrap(),
        [vec!["cache".to_string(), "db".into()], vec!["app".into()]]
    );
    assert!(
        p.files.contains(&PathBuf::from("db/compose.yaml")),
        "{:?}",
        p.files
    );

    // An error in an included file names that file's line.
    write(
        dir,
        "db/compose.yaml",
        "services:\n  db:\n    image: postgres:16\n    restart: sometimes\n",
    );
    starts_with(
        &load_in(dir, &["compose.yaml"], &[])
            .unwrap_err()
            .to_string(),
        "db/compose.yaml:4:14: services.db.restart: unknown restart policy",
    );
}

#[test]
fn extends_inherits_from_the_same_file_and_another() {
    let tmp = with_compose(
        r#"
services:
  web:
    extends: base
    command: ["serve", "--port", "80"]
    environment:
      ROLE: web
  worker:
    extends:
      service: web
    command: ["work"]
    environment:
      ROLE: worker
  base:
    extends:
      file: common/services.yaml
      service: app
    environment:
      LEVEL: base
"#,
    );
    let dir = tmp.path();
    write(
        dir,
        "common/services.yaml",
        "services:\n  app:\n    build: ./src\n    command: [\"default\"]\n    environment:\n      SHARED: \"yes\"\n      LEVEL: app\n    volumes: [./data:/data]\n    labels: {tier: backend}\n",
    );
    let p = load_in(dir, &["compose.yaml"], &[]).unwrap();
    let env = |s: &str| p.services[s].environment.clone();
    assert_eq!(
        env("worker"),
        BTreeMap::from([
            ("LEVEL".into(), "base".into()),
            ("ROLE".into(), "worker".into()),
            ("SHARED".into(), "yes".into()),
        ])
    );
    assert_eq!(env("web")["ROLE"], "web");
    assert_eq!(
        p.services["worker"].command,
        Some(CommandLine::Exec(vec!["work".into()]))
    );
    assert_eq!(
        p.services["base"].command,
        Some(CommandLine::Exec(vec!["default".into()]))
    );
    let web = &p.services["web"];
    assert_eq!(
        web.build.as_ref().unwrap().context,
        dir.join("common/src"),
        "relative to the extended file's folder"
    );
    assert_eq!(
        web.volumes[0].source.as_deref(),
        Some(dir.join("common/data").to_str().unwrap())
    );
    assert_eq!(web.labels["tier"], "backend");
    assert!(
        p.files.contains(&PathBuf::from("common/services.yaml")),
        "{:?}",
        p.files
    );
}
