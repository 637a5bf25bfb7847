//! Keys that place a container on its host — `network_mode`, privileges, namespaces,
//! limits, devices, DNS, logging, tmpfs options, `pull_policy`, `dockerfile_inline`,
//! `deploy` — read into the model with their values checked.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

use std::collections::BTreeMap;
use std::path::Path;

use goodgo_compose::*;

fn ok(text: &str) -> Project {
    load_str(text, Path::new("/project"), Path::new("c.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    match load_str(text, Path::new("/project"), Path::new("c.yaml"), &|_| None) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn host_keys_are_read() {
    let p = ok(r#"
services:
  app:
    image: goodgo/base:bookworm
    privileged: true
    read_only: true
    pid: host
    ipc: shareable
    cap_add: [NET_ADMIN]
    security_opt: ["no-new-privileges:true"]
    sysctls:
      - net.core.somaxconn=1024
    ulimits:
      nproc: 512
      nofile: {soft: 1024, hard: 2048}
    shm_size: 64m
    dns: 9.9.9.9
    dns_search: [example.internal]
    dns_opt: [ndots:2]
    group_add: [audio]
    hostname: apphost
    domainname: example.internal
    stop_signal: SIGINT
    devices: ["/dev/null:/dev/mynull:rw"]
    logging:
      driver: json-file
      options: {max-size: 10m}
    mem_limit: 256m
    cpus: "0.5"
    pids_limit: 100
    pull_policy: never
    tmpfs: ["/run:size=16m,mode=1777", /tmp]
    deploy:
      resources:
        limits: {memory: 128m}
        reservations: {memory: 64m}
      placement:
        constraints: [node.role == manager]
      update_config: {parallelism: 2}
"#);
    let s = &p.services["app"];
    let h = &s.host;
    assert!(h.privileged && h.read_only);
    assert_eq!(
        (h.pid.as_deref(), h.ipc.as_deref()),
        (Some("host"), Some("shareable"))
    );
    assert_eq!(s.cap_add, ["NET_ADMIN"]);
    assert_eq!(h.security_opt, ["no-new-privileges:true"]);
    assert_eq!(h.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(
        h.ulimits,
        BTreeMap::from([
            (
                "nofile".into(),
                Ulimit {
                    soft: 1024,
                    hard: 2048
                }
            ),
            (
                "nproc".into(),
                Ulimit {
                    soft: 512,
                    hard: 512
                }
            ),
        ])
    );
    assert_eq!(h.shm_size, Some(64 << 20));
    assert_eq!(
        (h.dns.as_slice(), h.dns_search.as_slice()),
        (
            &["9.9.9.9".to_string()][..],
            &["example.internal".to_string()][..]
        )
    );
    assert_eq!(h.dns_opt, ["ndots:2"]);
    assert_eq!(h.group_add, ["audio"]);
    assert_eq!(s.hostname.as_deref(), Some("apphost"));
    assert_eq!(h.domainname.as_deref(), Some("example.internal"));
    assert_eq!(s.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(
        h.devices,
        [Device {
            host: "/dev/null".into(),
            container: "/dev/mynull".into(),
            permissions: "rw".into()
        }]
    );
    let logging = h.logging.as_ref().unwrap();
    assert_eq!(logging.driver.as_deref(), Some("json-file"));
    assert_eq!(logging.options["max-size"], "10m");
    assert_eq!(
        h.limits.memory,
        Some(128 << 20),
        "deploy.resources wins over mem_limit"
    );
    assert_eq!(h.limits.memory_reservation, Some(64 << 20));
    assert_eq!(h.limits.nano_cpus, Some(500_000_000));
    assert_eq!(h.limits.pids, Some(100));
    assert_eq!(s.pull_policy, Some(PullPolicy::Never));
    let tmpfs: Vec<(&str, Option<u64>, Option<u32>)> = s
        .volumes
        .iter()
        .map(|m| {
            (
                m.target.as_str(),
                m.options.tmpfs_size,
                m.options.tmpfs_mode,
            )
        })
        .collect();
    assert_eq!(
        tmpfs,
        [("/run", Some(16 << 20), Some(0o1777)), ("/tmp", None, None)]
    );
    assert_eq!(
        s.swarm.keys().collect::<Vec<_>>(),
        ["placement", "update_config"],
        "kept for a Swarm deploy"
    );
    assert_eq!(s.swarm["update_config"]["parallelism"], "2");
    assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
}

#[test]
fn network_modes_and_shared_namespaces_order_services() {
    let p = ok(r#"
services:
  db:
    image: goodgo/postgres:15
  sidecar:
    image: goodgo/base:bookworm
    network_mode: "service:db"
    pid: "service:db"
  host:
    image: goodgo/base:bookworm
    network_mode: host
  isolated:
    image: goodgo/base:bookworm
    network_mode: none
  other:
    image: goodgo/base:bookworm
    network_mode: container:some-container
"#);
    let mode = |s: &str| p.services[s].network_mode.clone();
    assert_eq!(mode("sidecar"), Some(NetworkMode::Service("db".into())));
    assert_eq!(mode("host"), Some(NetworkMode::Host));
    assert_eq!(mode("isolated"), Some(NetworkMode::None));
    assert_eq!(
        mode("other"),
        Some(NetworkMode::Container("some-container".into()))
    );
    assert!(
        p.services["sidecar"].networks.is_empty(),
        "no project network"
    );
    assert_eq!(p.services["sidecar"].depends_on["db"], Condition::Started);
    assert_eq!(
        waves(&p, &["sidecar"], &[]).unwrap(),
        [vec!["db".to_string()], vec!["sidecar".into()]]
    );
    assert_eq!(p.services["db"].networks, ["default"]);
    assert!(p.networks.contains_key("default"));
}

#[test]
fn build_inline_dockerfile_and_long_mount_options() {
    let p = ok(r#"
services:
  app:
    build:
      context: .
      dockerfile_inline: |
        FROM goodgo/base:bookworm
        RUN echo hi
    volumes:
      - type: tmpfs
        target: /cache
        tmpfs: {size: 1g, mode: "0700"}
      - type: bind
        source: ./src
        target: /src
        bind: {propagation: rshared}
      - type: volume
        source: data
        target: /data
        volume: {nocopy: true}
      - data2:/data2:nocopy
volumes:
  data:
  data2:
"#);
    let s = &p.services["app"];
    assert_eq!(
        s.build.as_ref().unwrap().dockerfile_inline.as_deref(),
        Some("FROM goodgo/base:bookworm\nRUN echo hi\n")
    );
    let o: Vec<&MountOptions> = s.volumes.iter().map(|m| &m.options).collect();
    assert_eq!(
        (o[0].tmpfs_size, o[0].tmpfs_mode),
        (Some(1 << 30), Some(0o700))
    );
    assert_eq!(o[1].propagation.as_deref(), Some("rshared"));
    assert!(o[2].nocopy && o[3].nocopy);
}

#[test]
fn host_values_are_checked() {
    let cases = [
        (
            "network_mode: bridged",
            "c.yaml:4:19: services.a.network_mode: unknown network mode `bridged`",
        ),
        (
            "network_mode: \"service:a\"",
            "c.yaml:4:19: services.a: a service cannot share its own namespace",
        ),
        (
            "pid: namespace",
            "c.yaml:4:10: services.a.pid: unknown mode `namespace`; expected `host`",
        ),
        (
            "shm_size: big",
            "c.yaml:4:15: services.a.shm_size: invalid size `big`",
        ),
        (
            "mem_limit: -1g",
            "c.yaml:4:16: services.a.mem_limit: invalid size `-1g`",
        ),
        (
            "cpus: -1",
            "c.yaml:4:11: services.a.cpus: expected a number of CPUs",
        ),
        (
            "ulimits: {nofile: {soft: 1}}",
            "c.yaml:4:23: services.a.ulimits.nofile: expected both `soft` and `hard`",
        ),
        (
            "devices: [\"dev/null\"]",
            "c.yaml:4:15: services.a.devices[0]: expected absolute device paths",
        ),
        (
            "tmpfs: /run:size=huge",
            "c.yaml:4:12: services.a.tmpfs: invalid size `huge`",
        ),
        (
            "pids_limit: many",
            "c.yaml:4:17: services.a.pids_limit: expected a whole number, found `many`",
        ),
        (
            "build: {context: ., dockerfile: D, dockerfile_inline: FROM x}",
            "c.yaml:4:12: services.a.build: `dockerfile` and `dockerfile_inline` cannot both be set",
        ),
    ];
    for (key, expected) in cases {
        let e = err(&format!("services:\n  a:\n    image: x\n    {key}\n"));
        assert!(
            e.starts_with(expected),
            "{key}:\n  expected: {expected}\n  got:      {e}"
        );
    }
}

#[test]
fn what_network_mode_rules_out() {
    let p = ok(
        "services:\n  db:\n    image: x\n  a:\n    image: x\n    network_mode: host\n    ports: ['80:80']\n",
    );
    assert!(p.services["a"].ports.is_empty());
    assert_eq!(
        p.diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "c.yaml:7:5: warning: `services.a.ports` is ignored with `network_mode: host`: the container publishes no ports of its own (its program listens where that network stack is)"
        ]
    );
    let bridge =
        ok("services:\n  a:\n    image: x\n    network_mode: bridge\n    ports: ['80:80']\n");
    assert_eq!(
        bridge.services["a"].ports.len(),
        1,
        "the default bridge publishes"
    );
    assert_eq!(
        err(
            "services:\n  db:\n    image: x\n  a:\n    image: x\n    network_mode: service:db\n    hostname: me\n"
        ),
        "c.yaml:7:15: services.a.hostname: cannot be set with `network_mode: service:db`: the container has the host name of the one whose network it shares"
    );
    assert_eq!(
        err("services:\n  a:\n    image: x\n    pull_policy: build\n"),
        "c.yaml:4:18: services.a: `pull_policy: build` needs a `build` section"
    );
}
