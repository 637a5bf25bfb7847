//! Loading Compose text: shapes, interpolation, warnings and refusals, ordering, hashes.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use goodgo_compose::*;

const DIR: &str = "/project";

/// An environment lookup holding `vars`.
fn env_of<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<Project, ComposeError> {
    load_str(text, Path::new(DIR), Path::new("c.yaml"), &env_of(vars))
}

fn ok(text: &str) -> Project {
    load_env(text, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    match load_env(text, &[]) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Loading `text` fails with exactly `message`.
#[track_caller]
fn fails(text: &str, message: &str) {
    assert_eq!(err(text), message);
}

/// Loading `text` fails with a message that starts with `start`.
#[track_caller]
fn fails_starting(text: &str, start: &str) {
    let e = err(text);
    assert!(e.starts_with(start), "{e}");
}

/// Loading `text` fails with a message that mentions `part`.
#[track_caller]
fn fails_mentioning(text: &str, part: &str) {
    let e = err(text);
    assert!(e.contains(part), "{e}");
}

/// Writes `text` to `name` under `dir` (creating its folder), and returns its path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// Writes `text` as `compose.yaml` in `dir` and loads it (shown as `compose.yaml`).
fn load_compose(dir: &Path, text: &str, vars: &[(&str, &str)]) -> Result<Project, ComposeError> {
    let file = write(dir, "compose.yaml", text);
    load(&file, Path::new("compose.yaml"), &env_of(vars))
}

fn svc(p: &Project, name: &str) -> Service {
    p.services[name].clone()
}

fn warnings(p: &Project) -> Vec<String> {
    p.diagnostics.iter().map(ToString::to_string).collect()
}

// ---- interpolation ---------------------------------------------------------------------

#[test]
fn interpolation_of_every_form() {
    let text = r#"
services:
  app:
    image: "${REGISTRY:-docker.io}/app:${TAG-latest}"
    environment:
      PLAIN: $USER_NAME
      BRACED: ${USER_NAME}
      DEFAULT: ${EMPTY:-fallback}
      DASH: ${EMPTY-kept-empty}
      ALT: ${USER_NAME:+yes}
      ALT_UNSET: ${NOPE:+yes}
      REQUIRED: ${USER_NAME:?needed}
      DOLLARS: "$$HOME and $${X}"
      $NOT_A_KEY: value
"#;
    let p = load_env(text, &[("USER_NAME", "ada"), ("EMPTY", "")]).unwrap();
    let s = svc(&p, "app");
    assert_eq!(s.image.as_deref(), Some("docker.io/app:latest"));
    let env = &s.environment;
    assert_eq!(env["PLAIN"], "ada");
    assert_eq!(env["BRACED"], "ada");
    assert_eq!(env["DEFAULT"], "fallback");
    assert_eq!(env["DASH"], "");
    assert_eq!(env["ALT"], "yes");
    assert_eq!(env["ALT_UNSET"], "");
    assert_eq!(env["REQUIRED"], "ada");
    assert_eq!(env["DOLLARS"], "$HOME and ${X}");
    assert_eq!(env["$NOT_A_KEY"], "value", "keys are not interpolated");
    assert!(p.diagnostics.is_empty(), "{:?}", warnings(&p));
}

#[test]
fn unset_variables_warn_once_at_their_first_use() {
    let p = ok(
        "services:\n  a:\n    image: x\n    environment:\n      - A=${MISSING}\n      - B=$MISSING\n",
    );
    assert_eq!(
        warnings(&p),
        ["c.yaml:5:9: warning: variable `MISSING` is not set; using an empty string"]
    );
    assert_eq!(svc(&p, "a").environment["A"], "");
}

#[test]
fn required_variable_is_an_error_at_the_scalar() {
    fails(
        "services:\n  db:\n    image: postgres\n    environment:\n      PASSWORD: \"${DB_PASSWORD:?set DB_PASSWORD in .env}\"\n",
        "c.yaml:5:17: required variable `DB_PASSWORD` is not set: set DB_PASSWORD in .env",
    );
    fails(
        "services:\n  db:\n    image: ${TAG?}\n",
        "c.yaml:3:12: required variable `TAG` is not set",
    );
}

#[test]
fn malformed_interpolation_is_an_error() {
    fails_starting(
        "services:\n  a:\n    image: x\n    command: echo ${HOME\n",
        "c.yaml:4:14: unclosed `${`",
    );
    let e = err("services:\n  a:\n    image: x\n    command: echo $1\n");
    assert!(
        e.starts_with("c.yaml:4:14: invalid interpolation `$1`"),
        "{e}"
    );
    assert!(e.contains("`$$`"), "{e}");
}

#[test]
fn dotenv_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".env",
        "# settings\nTAG=1.2\nBOTH=from-dotenv\nDERIVED=v${TAG}\nLITERAL='${TAG}'\n",
    );
    let p = load_compose(
        dir.path(),
        "services:\n  a:\n    image: app:${TAG}\n    environment:\n      BOTH: ${BOTH}\n      DERIVED: ${DERIVED}\n      LITERAL: ${LITERAL}\n      TAG:\n",
        &[("BOTH", "from-env")],
    )
    .unwrap();
    let s = svc(&p, "a");
    assert_eq!(s.image.as_deref(), Some("app:1.2"));
    assert_eq!(s.environment["BOTH"], "from-env");
    assert_eq!(s.environment["DERIVED"], "v1.2");
    assert_eq!(s.environment["LITERAL"], "${TAG}");
    assert_eq!(
        s.environment["TAG"], "1.2",
        "a key without value reads .env too"
    );
    assert_eq!(p.dir, dir.path());
}

#[test]
fn dotenv_errors_are_located_in_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".env", "OK=1\nBAD='open\n");
    let file = write(dir.path(), "compose.yaml", "services: {}\n");
    let e = load(&file, Path::new("app/compose.yaml"), &|_| None).unwrap_err();
    assert_eq!(e.to_string(), "app/.env:2:5: unclosed ' quote");
}

// ---- environment and env_file ------------------------------------------------------------

#[test]
fn environment_list_and_map_forms() {
    let p = load_env(
        "services:\n  a:\n    image: x\n    environment:\n      - A=1\n      - B=\n      - C=x=y\n      - FROM_ENV\n      - ABSENT\n  b:\n    image: x\n    environment:\n      NUM: 8000\n      BOOL: true\n      NULL_FROM_ENV:\n      GONE: ~\n",
        &[("FROM_ENV", "e"), ("NULL_FROM_ENV", "n")],
    )
    .unwrap();
    let a = svc(&p, "a").environment;
    assert_eq!(
        a,
        BTreeMap::from([
            ("A".into(), "1".into()),
            ("B".into(), String::new()),
            ("C".into(), "x=y".into()),
            ("FROM_ENV".into(), "e".into()),
        ])
    );
    let b = svc(&p, "b").environment;
    assert_eq!(b["NUM"], "8000");
    assert_eq!(b["BOOL"], "true");
    assert_eq!(b["NULL_FROM_ENV"], "n");
    assert!(!b.contains_key("GONE"));
}

#[test]
fn env_files_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "env/common.env",
        "# common\nA=common\nB=common\nC=${A}-ref\nexport D=\"two\\nlines\"\nE\n",
    );
    write(dir.path(), "local.env", "B=local # wins over common\n");
    let p = load_compose(
        dir.path(),
        "services:\n  a:\n    image: x\n    environment:\n      A: from-environment\n    env_file:\n      - env/common.env\n      - local.env\n      - path: missing.env\n        required: false\n  b:\n    image: x\n    env_file: local.env\n",
        &[("E", "from-process")],
    )
    .unwrap();
    let a = svc(&p, "a").environment;
    assert_eq!(a["A"], "from-environment");
    assert_eq!(a["B"], "local");
    assert_eq!(a["C"], "common-ref");
    assert_eq!(a["D"], "two\nlines");
    assert_eq!(a["E"], "from-process");
    assert_eq!(svc(&p, "b").environment["B"], "local");
}

#[test]
fn a_missing_env_file_is_an_error_at_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_compose(
        dir.path(),
        "services:\n  a:\n    image: x\n    env_file:\n      - nope.env\n",
        &[],
    )
    .unwrap_err();
    let e = err.to_string();
    assert!(
        e.starts_with("compose.yaml:5:9: services.a.env_file: cannot read `nope.env`"),
        "{e}"
    );
    // Located, and the read error is kept as the cause.
    assert_eq!(err.located().map(|l| (l.pos.line, l.pos.col)), Some((5, 9)));
    let cause = std::error::Error::source(&err).unwrap();
    let io = cause.downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(e.ends_with(&io.to_string()), "{e}");
}

// ---- ports, volumes, durations, commands -----------------------------------------------------

#[test]
fn ports_short_and_long() {
    let p = ok(r#"
services:
  web:
    image: nginx
    ports:
      - 8080
      - "8080:80"
      - 127.0.0.1:8443:443
      - "53:53/udp"
      - "3000-3001:4000-4001"
      - target: 9000
        published: "9001"
        host_ip: 0.0.0.0
        protocol: udp
        mode: host
      - target: 9100
"#);
    let port = |ip: Option<&str>, published: Option<u16>, target: u16, protocol: &str| Port {
        host_ip: ip.map(str::to_string),
        published,
        target,
        protocol: protocol.into(),
    };
    assert_eq!(
        svc(&p, "web").ports,
        [
            port(None, None, 8080, "tcp"),
            port(None, Some(8080), 80, "tcp"),
            port(Some("127.0.0.1"), Some(8443), 443, "tcp"),
            port(None, Some(53), 53, "udp"),
            port(None, Some(3000), 4000, "tcp"),
            port(None, Some(3001), 4001, "tcp"),
            port(Some("0.0.0.0"), Some(9001), 9000, "udp"),
            port(None, None, 9100, "tcp"),
        ]
    );
}

#[test]
fn port_errors_name_the_item() {
    fails(
        "services:\n  db:\n    image: x\n    ports:\n      - 5432\n      - [1, 2]\n",
        "c.yaml:6:9: services.db.ports[1]: expected a string or number, or a mapping, found a list",
    );
    fails_starting(
        "services:\n  db:\n    image: x\n    ports:\n      - \"8000-8010:80\"\n",
        "c.yaml:5:9: services.db.ports[0]: port range `8000-8010:80` is not supported",
    );
    fails(
        "services:\n  db:\n    image: x\n    ports:\n      - published: 80\n",
        "c.yaml:5:9: services.db.ports[0]: missing key `target`",
    );
}

#[test]
fn volumes_short_and_long() {
    let m = |kind, source: Option<&str>, target: &str, read_only| Mount {
        kind,
        source: source.map(str::to_string),
        target: target.into(),
        read_only,
        options: MountOptions::default(),
    };
    use MountKind::*;
    let text = r#"
services:
  app:
    image: x
    volumes:
      - data:/var/lib/data
      - cache:/cache:ro
      - ./src:/app/src
      - ../shared:/shared:rw
      - .:/code
      - /etc/hosts:/etc/hosts:ro
      - /anonymous
      - ~/notes:/notes
      - type: bind
        source: ./conf/nginx.conf
        target: /etc/nginx/nginx.conf
        read_only: true
      - type: volume
        source: data
        target: /data2
      - type: volume
        target: /anon2
      - type: tmpfs
        target: /scratch
    tmpfs: /run
volumes:
  data:
  cache: {}
"#;
    let p = load_env(text, &[("HOME", "/home/ada")]).unwrap();
    assert_eq!(
        svc(&p, "app").volumes,
        [
            m(Volume, Some("data"), "/var/lib/data", false),
            m(Volume, Some("cache"), "/cache", true),
            m(Bind, Some("/project/src"), "/app/src", false),
            m(Bind, Some("/shared"), "/shared", false),
            m(Bind, Some("/project"), "/code", false),
            m(Bind, Some("/etc/hosts"), "/etc/hosts", true),
            m(Volume, None, "/anonymous", false),
            m(Bind, Some("/home/ada/notes"), "/notes", false),
            m(
                Bind,
                Some("/project/conf/nginx.conf"),
                "/etc/nginx/nginx.conf",
                true
            ),
            m(Volume, Some("data"), "/data2", false),
            m(Volume, None, "/anon2", false),
            m(Tmpfs, None, "/scratch", false),
            m(Tmpfs, None, "/run", false),
        ]
    );
}

#[test]
fn volume_errors() {
    fails_starting(
        "services:\n  a:\n    image: x\n    volumes:\n      - dta:/data\nvolumes:\n  data:\n",
        "c.yaml:5:9: services.a.volumes[0]: the volume `dta` is not declared under the top-level `volumes` (did you mean `data`?)",
    );
    fails_mentioning(
        "services:\n  a:\n    image: x\n    volumes:\n      - ./x:relative\n",
        "must be an absolute path",
    );
    fails_mentioning(
        "services:\n  a:\n    image: x\n    volumes:\n      - ./x:/y:bogus\n",
        "unknown volume option `bogus`",
    );
    fails_mentioning(
        "services:\n  a:\n    image: x\n    volumes:\n      - ~/x:/y\n",
        "`HOME` is not set",
    );
    fails_mentioning(
        "services:\n  a:\n    image: x\n    volumes:\n      - type: bind\n        target: /y\n",
        "a bind mount needs `source`",
    );
    fails_starting(
        "services:\n  a:\n    image: x\n    volumes:\n      - type: volume\n        source: v\n        target: /y\n        volume:\n          subpath: sub\nvolumes:\n  v:\n",
        "c.yaml:9:11: `services.a.volumes[0].volume.subpath` is not supported",
    );
}

#[test]
fn volume_options_that_change_nothing_run_warn() {
    let p = ok("services:\n  a:\n    image: x\n    volumes:\n      - ./x:/y:ro,z,cached\n");
    let v = &svc(&p, "a").volumes[0];
    assert!(v.read_only);
    assert_eq!(
        v.options.selinux.as_deref(),
        Some("z"),
        "applied, not warned"
    );
    assert_eq!(p.diagnostics.len(), 1);
    assert!(
        p.diagnostics[0].message.contains("`cached`"),
        "{:?}",
        warnings(&p)
    );
}

#[test]
fn healthcheck_forms_and_durations() {
    let p = ok(r#"
services:
  a:
    image: x
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres"]
      interval: 1m30s
      timeout: 500ms
      retries: 5
      start_period: 10s
      start_interval: 1s
  b:
    image: x
    healthcheck:
      test: curl -f http://localhost/ || exit 1
  c:
    image: x
    healthcheck:
      test: ["NONE"]
  d:
    image: x
    healthcheck:
      disable: true
    stop_grace_period: 1h2m
"#);
    let a = svc(&p, "a").healthcheck.unwrap();
    assert_eq!(a.test, ["CMD", "pg_isready", "-U", "postgres"]);
    assert_eq!(a.interval, Some(Duration::from_secs(90)));
    assert_eq!(a.timeout, Some(Duration::from_millis(500)));
    assert_eq!(a.retries, Some(5));
    assert_eq!(a.start_period, Some(Duration::from_secs(10)));
    assert_eq!(a.start_interval, Some(Duration::from_secs(1)));
    assert!(!a.disable);
    let b = svc(&p, "b").healthcheck.unwrap();
    assert_eq!(b.test, ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]);
    assert!(svc(&p, "c").healthcheck.unwrap().disable);
    let d = svc(&p, "d");
    assert!(d.healthcheck.unwrap().disable);
    assert_eq!(d.stop_grace_period, Some(Duration::from_secs(3720)));
    let json = serde_json::to_value(svc(&p, "a")).unwrap();
    assert_eq!(json["healthcheck"]["interval"], "1m30s");

    fails_starting(
        "services:\n  a:\n    image: x\n    healthcheck:\n      interval: 10\n",
        "c.yaml:5:17: services.a.healthcheck.interval: invalid duration `10`",
    );
    fails_mentioning(
        "services:\n  a:\n    image: x\n    healthcheck:\n      test: [\"RUN\", \"x\"]\n",
        "services.a.healthcheck.test: expected",
    );
    fails_mentioning(
        "services:\n  a:\n    image: x\n    healthcheck:\n      retries: many\n",
        "expected a non-negative whole number, found `many`",
    );
}

#[test]
fn commands_shell_and_exec() {
    let p = ok(r#"
services:
  a:
    image: x
    command: sh -c 'echo "hi there"; sleep 1'
    entrypoint: ["/bin/tini", "--"]
"#);
    let a = svc(&p, "a");
    assert_eq!(
        a.command.as_ref().unwrap().to_argv(),
        ["sh", "-c", "echo \"hi there\"; sleep 1"]
    );
    assert_eq!(
        a.command,
        Some(CommandLine::Shell(
            "sh -c 'echo \"hi there\"; sleep 1'".into()
        ))
    );
    assert_eq!(
        a.entrypoint,
        Some(CommandLine::Exec(vec!["/bin/tini".into(), "--".into()]))
    );
    fails_starting(
        "services:\n  a:\n    image: x\n    command: echo 'open\n",
        "c.yaml:4:14: services.a.command: unclosed ' quote",
    );
}

#[test]
fn the_other_service_keys() {
    let p = ok(r#"
name: shop
version: "3.9"
x-common: &common
  restart: unless-stopped
  labels:
    team: web
services:
  web:
    <<: *common
    build:
      context: ./web
      dockerfile: Dockerfile.dev
      target: dev
      args:
        - NODE_ENV=development
        - UNSET_ARG
    labels:
      - "traefik.enable=true"
      - "flag"
    container_name: shop-web
    expose: [3000, "3001/udp"]
    user: "1000:1000"
    hostname: web
    stop_signal: SIGINT
    secrets:
      - token
      - source: token
        target: /etc/token
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    platform: linux/amd64
    working_dir: /app
    init: true
    tty: true
    stdin_open: true
    extra_hosts:
      - "db.local:10.0.0.5"
      - "v6=::1"
    networks:
      front:
        aliases: [shop]
        ipv4_address: 172.30.0.10
      back:
    profiles: [dev]
  api:
    build: api
    networks: [back]
secrets:
  token:
    file: ./secrets/token.txt
networks:
  front:
    driver: bridge
    ipam:
      config:
        - subnet: 172.30.0.0/24
  back:
    external: true
    name: shared-back
volumes:
  old:
    external:
      name: legacy
"#);
    assert_eq!(p.name.as_deref(), Some("shop"));
    let web = svc(&p, "web");
    assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
    assert_eq!(
        web.labels,
        BTreeMap::from([
            ("traefik.enable".into(), "true".into()),
            ("flag".into(), String::new()),
        ]),
        "labels written in the service replace the merged ones"
    );
    let build = web.build.unwrap();
    assert_eq!(build.context, PathBuf::from("/project/web"));
    assert_eq!(build.dockerfile.as_deref(), Some("Dockerfile.dev"));
    assert_eq!(build.target.as_deref(), Some("dev"));
    assert_eq!(
        build.args,
        BTreeMap::from([("NODE_ENV".into(), "development".into())])
    );
    assert_eq!(web.container_name.as_deref(), Some("shop-web"));
    assert_eq!(web.expose, ["3000", "3001/udp"]);
    assert_eq!(web.user.as_deref(), Some("1000:1000"));
    assert_eq!(web.hostname.as_deref(), Some("web"));
    assert_eq!(web.stop_signal.as_deref(), Some("SIGINT"));
    let secrets: Vec<(&str, Option<&str>, String)> = web
        .secrets
        .iter()
        .map(|r| (r.source.as_str(), r.target.as_deref(), r.secret_path()))
        .collect();
    assert_eq!(
        secrets,
        [
            ("token", None, "/run/secrets/token".to_string()),
            ("token", Some("/etc/token"), "/etc/token".to_string()),
        ]
    );
    assert_eq!(web.cap_add, ["NET_ADMIN"]);
    assert_eq!(web.cap_drop, ["ALL"]);
    assert_eq!(web.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(web.working_dir.as_deref(), Some("/app"));
    assert_eq!(
        (web.init, web.tty, web.stdin_open),
        (Some(true), true, true)
    );
    assert_eq!(
        web.extra_hosts,
        [
            HostEntry {
                host: "db.local".into(),
                ip: "10.0.0.5".into()
            },
            HostEntry {
                host: "v6".into(),
                ip: "::1".into()
            },
        ]
    );
    assert_eq!(web.networks, ["front", "back"]);
    assert_eq!(
        web.network_settings["front"],
        NetworkAttachment {
            aliases: vec!["shop".into()],
            ipv4_address: Some("172.30.0.10".into()),
            ipv6_address: None,
        }
    );
    assert!(!web.network_settings.contains_key("back"));
    assert_eq!(web.profiles, ["dev"]);
    assert_eq!(
        svc(&p, "api").build.unwrap().context,
        PathBuf::from("/project/api")
    );
    assert_eq!(
        p.secrets["token"].file,
        Some(PathBuf::from("/project/secrets/token.txt"))
    );
    assert_eq!(
        p.networks["front"].ipam.as_ref().unwrap().config[0]
            .subnet
            .as_deref(),
        Some("172.30.0.0/24")
    );
    assert!(p.networks["back"].external);
    assert_eq!(p.networks["back"].name.as_deref(), Some("shared-back"));
    assert!(
        !p.networks.contains_key("default"),
        "every service names its networks"
    );
    assert!(p.volumes["old"].external);
    assert_eq!(p.volumes["old"].name.as_deref(), Some("legacy"));
    assert!(p.diagnostics.is_empty(), "{:?}", warnings(&p));
}

#[test]
fn services_without_networks_join_default() {
    let p = ok("services:\n  a:\n    image: x\n");
    assert_eq!(svc(&p, "a").networks, ["default"]);
    assert!(p.networks.contains_key("default"));
    fails_starting(
        "services:\n  a:\n    image: x\n    networks: [frnt]\nnetworks:\n  front:\n",
        "c.yaml:4:16: services.a.networks: the network `frnt` is not declared under the top-level `networks` (did you mean `front`?)",
    );
}

// ---- unsupported and unknown keys ----------------------------------------------------------

#[test]
fn keys_that_change_nothing_that_runs_warn() {
    let p = ok(r#"
services:
  a:
    image: x
    mac_address: 02:42:ac:11:00:02
    blkio_config:
      weight: 300
    cpu_rt_runtime: 400ms
    deploy:
      replicas: 1
      restart_policy:
        condition: on-failure
    privileged: false
    x-anything: [1, 2]
"#);
    assert_eq!(
        warnings(&p),
        [
            "c.yaml:5:5: warning: `services.a.mac_address` is not supported by goodgo and is ignored: the engine assigns the MAC address",
            "c.yaml:6:5: warning: `services.a.blkio_config` is not supported by goodgo and is ignored: block I/O limits are not applied",
            "c.yaml:8:5: warning: `services.a.cpu_rt_runtime` is not supported by goodgo and is ignored: real-time CPU limits are not applied",
            "c.yaml:11:7: warning: `services.a.deploy.restart_policy` is not supported by goodgo and is ignored: use the service's `restart` key",
        ]
    );
}

#[test]
fn keys_that_would_change_what_runs_are_refused() {
    for (key, value) in [
        ("runtime", "runsc"),
        ("gpus", "all"),
        ("device_cgroup_rules", "['c 1:3 mr']"),
        ("volumes_from", "[other]"),
        ("links", "[db]"),
    ] {
        fails_starting(
            &format!("services:\n  a:\n    image: x\n    {key}: {value}\n"),
            &format!(
                "c.yaml:4:5: `services.a.{key}` is not supported by goodgo: ignoring it would change what runs ("
            ),
        );
    }
    fails_starting(
        "services:\n  a:\n    image: x\n    deploy:\n      replicas: 3\n",
        "c.yaml:5:17: `services.a.deploy.replicas: 3` is not supported",
    );
    fails_starting(
        "services:\n  a:\n    build:\n      context: .\n      additional_contexts: {b: ../b}\n",
        "c.yaml:5:7: `services.a.build.additional_contexts` is not supported",
    );
    fails_starting(
        "services:\n  a:\n    image: x\n    deploy:\n      resources:\n        reservations:\n          devices: [{capabilities: [gpu]}]\n",
        "c.yaml:7:11: `services.a.deploy.resources.reservations.devices` is not supported",
    );
}

#[test]
fn unknown_keys_are_typos() {
    fails(
        "services:\n  a:\n    imagee: x\n",
        "c.yaml:3:5: services.a: unknown key `imagee` (did you mean `image`?)",
    );
    fails(
        "servics:\n  a:\n    image: x\n",
        "c.yaml:1:1: unknown key `servics` (did you mean `services`?)",
    );
    fails(
        "services:\n  a:\n    image: x\n    healthcheck:\n      intervall: 1s\n",
        "c.yaml:5:7: services.a.healthcheck: unknown key `intervall` (did you mean `interval`?)",
    );
}

#[test]
fn wrong_types_name_the_key() {
    fails(
        "services:\n  a:\n    image: [x]\n",
        "c.yaml:3:12: services.a.image: expected a string, found a list",
    );
    fails(
        "services:\n  a:\n    image: x\n    tty: maybe\n",
        "c.yaml:4:10: services.a.tty: expected `true` or `false`, found `maybe`",
    );
    fails_starting(
        "services:\n  a:\n    image: x\n    environment: FOO=1\n",
        "c.yaml:4:18: services.a.environment: expected a list of `NAME=value` or a mapping",
    );
    fails(
        "services:\n  a: x\n",
        "c.yaml:2:6: services.a: expected a mapping, found a single value",
    );
    fails_mentioning(
        "services:\n  a:\n    image: x\n    restart: sometimes\n",
        "unknown restart policy `sometimes`",
    );
}

#[test]
fn file_level_problems() {
    let e = err("services:\n  a:\n    image: x\n   bad: indent\n");
    assert!(e.starts_with("c.yaml:4:"), "{e}");
    assert!(e.contains("YAML syntax error"), "{e}");
    fails_starting("- a\n- b\n", "c.yaml:1:1: expected a mapping");
    fails(
        "services:\n  a:\n    build: .\n  a:\n    image: y\n",
        "c.yaml:4:3: duplicate key `a`",
    );
    fails(
        "services:\n  a:\n    container_name: x\n",
        "c.yaml:2:3: services.a: a service needs `image` or `build`",
    );
    fails_starting(
        "services:\n  \"bad name\":\n    image: x\n",
        "c.yaml:2:3: services: invalid service name `bad name`",
    );
    assert!(ok("").services.is_empty());
    assert!(ok("# nothing\n").services.is_empty());
    let e = load_str("services: {}", Path::new(DIR), Path::new("c.yaml"), &|_| {
        None
    });
    assert!(e.is_ok());
    let missing = load(
        Path::new("/nonexistent/compose.yaml"),
        Path::new("compose.yaml"),
        &|_| None,
    )
    .unwrap_err();
    assert!(matches!(missing, ComposeError::Read { .. }));
    assert!(
        missing
            .to_string()
            .starts_with("cannot read compose.yaml: "),
        "{missing}"
    );
}

// ---- depends_on, profiles, ordering ------------------------------------------------------

#[test]
fn depends_on_forms() {
    let p = ok(r#"
services:
  db: {image: postgres}
  cache: {image: redis}
  migrate: {image: app, depends_on: [db]}
  app:
    image: app
    depends_on:
      db:
        condition: service_healthy
        restart: true
      migrate:
        condition: service_completed_successfully
      cache:
      metrics:
        condition: service_started
        required: false
"#);
    let app = svc(&p, "app");
    assert_eq!(
        app.depends_on,
        BTreeMap::from([
            ("cache".into(), Condition::Started),
            ("db".into(), Condition::Healthy),
            ("migrate".into(), Condition::CompletedSuccessfully),
        ])
    );
    assert_eq!(
        svc(&p, "migrate").depends_on,
        BTreeMap::from([("db".into(), Condition::Started)])
    );
    assert_eq!(
        warnings(&p),
        [
            "c.yaml:15:7: warning: services.app.depends_on: no service `metrics`; skipped because it has `required: false`"
        ]
    );
    assert_eq!(
        waves(&p, &[], &[]).unwrap(),
        [vec!["cache", "db"], vec!["migrate"], vec!["app"]]
    );
    fails_mentioning(
        "services:\n  a:\n    image: x\n    depends_on:\n      db:\n        condition: service_healty\n",
        "unknown condition `service_healty` (did you mean `service_healthy`?)",
    );
}

#[test]
fn unknown_dependency_is_an_error_at_its_line() {
    fails(
        "services:\n  web:\n    image: x\n    depends_on:\n      - dbb\n  db:\n    image: y\n",
        "c.yaml:5:9: services.web.depends_on: no service `dbb` (did you mean `db`?)",
    );
    fails_mentioning(
        "services:\n  web:\n    image: x\n    depends_on: [web]\n",
        "cannot depend on itself",
    );
}

#[test]
fn cycles_are_named() {
    fails(
        "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n  d:\n    image: x\n    depends_on: [a]\n",
        "c.yaml:4:18: services.a.depends_on: dependency cycle: a -> b -> c -> a",
    );
    fails(
        "services:\n  x:\n    image: x\n    depends_on: [y]\n  y:\n    image: x\n    depends_on:\n      x:\n        condition: service_healthy\n",
        "c.yaml:4:18: services.x.depends_on: dependency cycle: x -> y -> x",
    );
}

#[test]
fn a_cycle_in_a_hand_built_project_is_an_error_in_waves() {
    let mut project = ok("services:\n  a: {image: x}\n  b: {image: x}\n");
    for (from, to) in [("a", "b"), ("b", "a")] {
        let s = project.services.get_mut(from).unwrap();
        s.depends_on.insert(to.into(), Condition::Started);
    }
    let e = waves(&project, &[], &[]).unwrap_err().to_string();
    assert_eq!(
        e,
        "c.yaml:2:3: services.a.depends_on: dependency cycle: a -> b -> a"
    );
}

const PROFILES: &str = r#"
services:
  web: {image: x, depends_on: [api]}
  api: {image: x, depends_on: [db]}
  db: {image: x}
  debug: {image: x, profiles: [debug], depends_on: [web]}
  admin: {image: x, profiles: [admin], depends_on: [tools]}
  tools: {image: x, profiles: [tools]}
  report: {image: x, profiles: [admin], depends_on: {tools: {required: false}}}
"#;

#[test]
fn profiles_decide_what_runs() {
    let p = ok(PROFILES);
    assert_eq!(
        waves(&p, &[], &[]).unwrap(),
        [vec!["db"], vec!["api"], vec!["web"]]
    );
    assert_eq!(
        waves(&p, &[], &["debug"]).unwrap(),
        [vec!["db"], vec!["api"], vec!["web"], vec!["debug"]]
    );
    // Naming a service enables it; its dependencies come along.
    assert_eq!(
        waves(&p, &["debug"], &[]).unwrap(),
        [vec!["db"], vec!["api"], vec!["web"], vec!["debug"]]
    );
    assert_eq!(waves(&p, &["api"], &[]).unwrap(), [vec!["db"], vec!["api"]]);
    // A needed dependency in a disabled profile is an error…
    let e = waves(&p, &["admin"], &[]).unwrap_err().to_string();
    assert_eq!(
        e,
        "c.yaml:7:53: services.admin.depends_on: `tools` is needed by `admin` but disabled: enable its profile (`tools`) or select it by name"
    );
    // …unless it is enabled or selected, or optional.
    assert_eq!(
        waves(&p, &["admin"], &["tools"]).unwrap(),
        [vec!["tools"], vec!["admin"]]
    );
    assert_eq!(
        waves(&p, &["admin", "tools"], &[]).unwrap(),
        [vec!["tools"], vec!["admin"]]
    );
    assert_eq!(waves(&p, &["report"], &[]).unwrap(), [vec!["report"]]);
    assert_eq!(
        waves(&p, &[], &["*"]).unwrap(),
        [
            vec!["db", "tools"],
            vec!["admin", "api", "report"],
            vec!["web"],
            vec!["debug"]
        ]
    );
    assert!(is_enabled(&svc(&p, "web"), &[]));
    assert!(!is_enabled(&svc(&p, "debug"), &["admin"]));
    let e = waves(&p, &["wbe"], &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no service `wbe` in c.yaml (did you mean `web`?)"
    );
}

// ---- config_hash ---------------------------------------------------------------------------

#[test]
fn config_hash_is_stable_and_sensitive() {
    let a = ok(
        "services:\n  web:\n    image: nginx:1.27\n    environment:\n      B: 2\n      A: 1\n    ports: ['80:80']\n",
    );
    // Same definition, keys in another order, list form, moved down the file.
    let b = ok(
        "\n\nservices:\n  other: {image: x}\n  web:\n    ports: ['80:80']\n    environment: [A=1, B=2]\n    image: nginx:1.27\n",
    );
    let ha = config_hash(&svc(&a, "web"));
    assert_eq!(ha.len(), 64);
    assert_eq!(ha, config_hash(&svc(&b, "web")));
    assert_ne!(svc(&a, "web").pos, svc(&b, "web").pos);
    // Pinned: the hash must not drift between runs or releases that keep the model.
    assert_eq!(ha, config_hash(&svc(&a, "web").clone()));
    let changed = |text: &str| config_hash(&svc(&ok(text), "web"));
    for text in [
        "services:\n  web:\n    image: nginx:1.28\n    environment: {B: 2, A: 1}\n    ports: ['80:80']\n",
        "services:\n  web:\n    image: nginx:1.27\n    environment: {B: 3, A: 1}\n    ports: ['80:80']\n",
        "services:\n  web:\n    image: nginx:1.27\n    environment: {B: 2, A: 1}\n    ports: ['8080:80']\n",
        "services:\n  web:\n    image: nginx:1.27\n    environment: {B: 2, A: 1}\n    ports: ['80:80']\n    command: nginx -g 'daemon off;'\n",
    ] {
        assert_ne!(changed(text), ha, "{text}");
    }
    // Interpolated values count, not the text written.
    let with_var = load_env(
        "services:\n  web:\n    image: nginx:${V}\n    environment: {B: 2, A: 1}\n    ports: ['80:80']\n",
        &[("V", "1.27")],
    )
    .unwrap();
    assert_eq!(config_hash(&svc(&with_var, "web")), ha);
}

/// The hash of a minimal service, pinned: if this changes, every container a runtime
/// labelled with the old hash is recreated after an upgrade. Change it on purpose only
/// (adding a field to `Service` does). The digest is SHA-256 of the service's JSON with
/// `pos` blanked, checkable with any sha256 tool.
#[test]
fn config_hash_is_pinned() {
    let p = ok("services:\n  web:\n    image: nginx:1.27\n");
    assert_eq!(
        config_hash(&svc(&p, "web")),
        "bf825883273e0cbe554858296fe8f9de5964aab5eeafb8d45aa194aa59263617"
    );
}

#[test]
fn diagnostics_display_like_errors() {
    let d = Diagnostic {
        severity: Severity::Warning,
        path: PathBuf::from("compose.yaml"),
        pos: Pos::new(3, 7),
        message: "`services.a.logging` is not supported".into(),
    };
    assert_eq!(
        d.to_string(),
        "compose.yaml:3:7: warning: `services.a.logging` is not supported"
    );
}

#[test]
fn secrets_goodgo_cannot_provide_are_named() {
    // External, used by a service: refused at the use, naming the secret, its key and the
    // file the service would lack.
    let e = err(
        "services:\n  a:\n    image: x\n    secrets:\n      - source: tok\n        target: token\nsecrets:\n  tok:\n    external: true\n",
    );
    assert!(
        e.starts_with(
            "c.yaml:5:17: services.a.secrets[0]: the secret `tok` uses `secrets.tok.external`, which goodgo does not support ("
        ) && e.contains("the service would lack /run/secrets/token"),
        "{e}"
    );
    // Declared, used by nobody: a warning at its key.
    let p = ok(
        "services:\n  a:\n    image: x\n    secrets: [f]\nsecrets:\n  f:\n    file: ./f.txt\n  e:\n    external: true\n",
    );
    assert_eq!(
        warnings(&p),
        [
            "c.yaml:9:5: warning: `secrets.e.external` is not supported by goodgo and is ignored: no service uses it (it lives in a Swarm cluster)"
        ]
    );
    let a = svc(&p, "a");
    assert_eq!(a.secrets[0].secret_path(), "/run/secrets/f");
    assert_eq!(a.secrets[0].from, FileSource::File("/project/f.txt".into()));
    let named = SecretRef {
        target: Some("other".into()),
        ..a.secrets[0].clone()
    };
    assert_eq!(named.secret_path(), "/run/secrets/other");
    assert_eq!(named.config_path(), "/other");
    let absolute = SecretRef {
        target: Some("/etc/app/key".into()),
        ..a.secrets[0].clone()
    };
    assert_eq!(absolute.secret_path(), "/etc/app/key");
}

/// Every key the model reads is applied by the Docker runtime, except those listed here,
/// which warn by name with their line: none is dropped silently.
#[test]
fn parsed_keys_the_runtime_cannot_apply_warn() {
    let p = ok(r#"
services:
  a:
    image: x
    cap_drop: [ALL]
    init: true
    tty: true
    stdin_open: true
    extra_hosts: ["h:10.0.0.1"]
    stop_grace_period: 3s
    restart: on-failure:3
    networks:
      n:
        aliases: [alpha]
        ipv4_address: 10.9.0.5
    healthcheck:
      test: ["CMD", "true"]
      start_interval: 1s
networks:
  n:
    driver: bridge
    internal: true
    ipam:
      config:
        - subnet: 10.9.0.0/24
volumes:
  v:
    driver: local
    driver_opts: {type: tmpfs, device: tmpfs}
"#);
    assert_eq!(
        warnings(&p),
        [
            "c.yaml:18:7: warning: `services.a.healthcheck.start_interval` is not supported by goodgo and is ignored: while a service starts, goodgo runs its check itself every ~50 ms"
        ]
    );
}

/// The hash is a container label: a release that keeps the model must compute the same value,
/// or every running service would be recreated. These values were computed before the digest
/// moved to the `sha2` crate and must never change while the model stays the same.
#[test]
fn config_hash_pinned_values() {
    let p = ok(r#"
services:
  web:
    image: nginx:1.27
    environment:
      B: 2
      A: 1
    ports: ['80:80']
  api:
    build:
      context: ./api
      args: {VERSION: "1.0"}
    command: ["serve", "--port", "8080"]
    depends_on:
      db: {condition: service_healthy}
    volumes: ["./data:/data:ro", "cache:/cache"]
    environment: [GREETING=héllo wörld]
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8080/"]
      interval: 5s
      retries: 3
  db:
    image: postgres:15
volumes:
  cache: {}
"#);
    let pinned: Vec<(&str, String)> = ["web", "api", "db"]
        .into_iter()
        .map(|n| (n, config_hash(&svc(&p, n))))
        .collect();
    assert_eq!(
        pinned,
        [
            (
                "web",
                "c6f46d4812e096d26ca97711473636e4a0ffa1d6d4f3cf3338ccdb2033c1c09d"
            ),
            (
                "api",
                "75bc783e65a26ee686eee35d4419e989ef3d8a721271f44f774b0821c816dacd"
            ),
            (
                "db",
                "93d47685c101d55271922aa76af1bf6b93bbbf9aafafc8e150e8a1555414add5"
            )
        ]
        .map(|(n, h)| (n, h.to_string()))
        .to_vec()
    );
}

// ---- read_env_file -------------------------------------------------------------------------

#[test]
fn read_env_file_missing_is_empty_and_values_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(".env");
    let shown = Path::new("ws/.env");
    let none = |_: &str| None;
    assert_eq!(read_env_file(&path, shown, &none).unwrap(), vec![]);
    std::fs::write(
        &path,
        "# secrets\nA=1\nexport B=\"two ${A}\" # c\nC='${A} as is'\nD=${UNSET}\nHOME_DIR=${HOME}/x\nFROM_ENV\nNOT_SET\nA=3\n",
    )
    .unwrap();
    let env = |n: &str| match n {
        "HOME" => Some("/home/ada".to_string()),
        "FROM_ENV" => Some("env".to_string()),
        _ => None,
    };
    let pairs = read_env_file(&path, shown, &env).unwrap();
    let expected: Vec<(String, String)> = [
        ("A", "1"),
        ("B", "two 1"),
        ("C", "${A} as is"),
        ("D", ""),
        ("HOME_DIR", "/home/ada/x"),
        ("FROM_ENV", "env"),
        ("A", "3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(pairs, expected);
}

#[test]
fn read_env_file_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let none = |_: &str| None;
    // A folder where the file should be: unreadable, not missing.
    let e = read_env_file(tmp.path(), Path::new("ws/.env"), &none).unwrap_err();
    assert!(matches!(e, ComposeError::Read { .. }), "{e:?}");
    assert!(e.to_string().starts_with("cannot read ws/.env: "), "{e}");
    let path = tmp.path().join(".env");
    std::fs::write(&path, "A=1\nB='open\n").unwrap();
    let e = read_env_file(&path, Path::new("ws/.env"), &none).unwrap_err();
    assert_eq!(e.to_string(), "ws/.env:2:3: unclosed ' quote");
    let located = e.located().unwrap();
    assert_eq!((located.pos.line, located.pos.col), (2, 3));
    std::fs::write(&path, "A=${NEEDED:?set NEEDED}\n").unwrap();
    let e = read_env_file(&path, Path::new("ws/.env"), &none).unwrap_err();
    assert!(e.to_string().starts_with("ws/.env:1:3: "), "{e}");
}
