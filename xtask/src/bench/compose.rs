//! The Compose benchmark: `goodgo compose config` on a generated 60-service file (anchors,
//! `<<` merges, healthchecks, dependencies, an override file) beside `docker-compose
//! config` on the same files (goal: at most a tenth of the peer's time); and a warm
//! `goodgo up` with nothing changed on a 20-service project of sleeping containers on the
//! real engine, beside `docker-compose up -d` on the same file (goal: under 100 ms).

use std::path::Path;

use anyhow::{Result, bail};
use xshell::cmd;

use super::stats::{Sample, ms, table, time_command, write_section};
use super::{command_version, machine, shell_in};
use crate::images::docker_answers;

/// How many services the generated file has.
const SERVICES: usize = 60;

/// A Compose file of `services` services sharing settings through an anchor and `<<`
/// merges, each with ports, volumes, environment, a healthcheck and dependencies on
/// earlier services; and an override file changing a third of them. Without a top-level
/// `name:` and `!reset`, which docker-compose 1.x refuses.
fn generated(services: usize) -> (String, String) {
    let mut base = String::from(
        r#"x-common: &common
  restart: unless-stopped
  environment: &env
    LOG_LEVEL: info
    REGION: eu-west-1
  labels:
    org.example.tier: backend
  healthcheck: &health
    test: ["CMD-SHELL", "curl -fsS http://localhost:8080/health || exit 1"]
    interval: 10s
    timeout: 3s
    retries: 5
  logging:
    driver: json-file
    options: {max-size: 10m, max-file: "3"}
services:
"#,
    );
    let mut over = String::from("services:\n");
    for i in 0..services {
        let deps: Vec<String> = (1..=2)
            .filter(|d| i >= *d * 7)
            .map(|d| format!("svc{:02}", i - d * 7))
            .collect();
        base.push_str(&format!(
            r#"  svc{i:02}:
    <<: *common
    image: registry.example.com/team/svc{i:02}:1.{i}
    command: ["serve", "--port", "8080", "--name", "svc{i:02}"]
    environment:
      <<: *env
      SERVICE: svc{i:02}
      DATABASE_URL: postgres://app:secret@db:5432/svc{i:02}
    ports: ["127.0.0.1:{port}:8080"]
    volumes: ["data{i:02}:/var/lib/svc", "./config/svc{i:02}:/etc/svc:ro"]
    depends_on: [{deps}]
"#,
            port = 20000 + i,
            deps = deps.join(", "),
        ));
        if i % 3 == 0 {
            over.push_str(&format!(
                "  svc{i:02}:\n    environment:\n      LOG_LEVEL: debug\n    ports: [\"127.0.0.1:{}:9090\"]\n    healthcheck:\n      interval: 5s\n",
                30000 + i
            ));
        }
    }
    base.push_str("volumes:\n");
    for i in 0..services {
        base.push_str(&format!("  data{i:02}:\n"));
    }
    (base, over)
}

/// How many services the warm `up` project has.
const UP_SERVICES: usize = 20;

/// A project of `services` sleeping containers on the local base image: each with its
/// environment, labels, init, a short stop grace period; every fifth with a healthcheck
/// and the others after it in the order (so `up` has waves and health to wait for).
/// Without a top-level `name:`, which docker-compose 1.x refuses.
fn sleepers(services: usize) -> String {
    let mut text = String::from("services:\n");
    for i in 0..services {
        text.push_str(&format!(
            r#"  s{i:02}:
    image: goodgo/base:bookworm
    command: ["sleep", "infinity"]
    init: true
    stop_grace_period: 1s
    environment: {{SERVICE: s{i:02}, LOG_LEVEL: info}}
    labels: {{org.example.tier: bench}}
"#
        ));
        if i % 5 == 0 {
            text.push_str(
                "    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 2s\n",
            );
        } else {
            text.push_str(&format!(
                "    depends_on:\n      s{:02}: {{condition: service_healthy}}\n",
                i - i % 5
            ));
        }
    }
    text
}

/// Warm `up` on the sleeping project: goodgo's and docker-compose's, each after a cold
/// start of its own copy; both torn down after.
fn warm_up(goodgo: &Path) -> Result<Vec<Sample>> {
    if !docker_answers() {
        bail!("the warm `up` benchmark needs a Docker engine");
    }
    crate::images::ensure()?;
    let ws = std::env::temp_dir().join(format!("goodgo-bench-warm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ws);
    std::fs::create_dir_all(ws.join("compose"))?;
    std::fs::write(ws.join("compose/compose.yaml"), sleepers(UP_SERVICES))?;
    std::fs::write(ws.join("goodgo.yaml"), "name: benchwarm\n")?;
    let sh = shell_in(&ws)?;
    let down = || {
        let _ = cmd!(sh, "{goodgo} -q down").quiet().ignore_stdout().run();
        let _ = cmd!(
            sh,
            "docker-compose -p benchwarmpeer -f compose/compose.yaml down"
        )
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run();
    };
    let result = (|| -> Result<Vec<Sample>> {
        cmd!(sh, "{goodgo} -q up").quiet().ignore_stdout().run()?;
        let ours = time_command(
            &format!("`goodgo up` again, nothing changed ({UP_SERVICES} services)"),
            20,
            &|| cmd!(sh, "{goodgo} -q up"),
            false,
        )?;
        cmd!(
            sh,
            "docker-compose -p benchwarmpeer -f compose/compose.yaml up -d"
        )
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()?;
        let theirs = time_command(
            &format!(
                "`docker-compose up -d` again, nothing changed ({UP_SERVICES} services, peer)"
            ),
            10,
            &|| {
                cmd!(
                    sh,
                    "docker-compose -p benchwarmpeer -f compose/compose.yaml up -d"
                )
            },
            false,
        )?;
        Ok(vec![ours, theirs])
    })();
    down();
    let _ = std::fs::remove_dir_all(&ws);
    result
}

pub fn run(goodgo: &Path) -> Result<()> {
    eprintln!("bench compose: compose config on {SERVICES} services, warm up on {UP_SERVICES}");
    let dir = std::env::temp_dir().join(format!("goodgo-bench-compose-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (base, over) = generated(SERVICES);
    std::fs::write(dir.join("compose.yaml"), base)?;
    std::fs::write(dir.join("override.yaml"), over)?;
    let sh = shell_in(&dir)?;
    // Both must read the files the same way before they are timed.
    let ours = cmd!(
        sh,
        "{goodgo} compose config -f compose.yaml -f override.yaml --format json"
    )
    .read()?;
    let theirs = cmd!(
        sh,
        "docker-compose -f compose.yaml -f override.yaml config --services"
    )
    .read()?;
    let ours: serde_json::Value = serde_json::from_str(&ours)?;
    let services = ours["services"].as_object().map_or(0, |s| s.len());
    if services != SERVICES || theirs.lines().count() != SERVICES {
        bail!(
            "goodgo read {services} services, docker-compose {}",
            theirs.lines().count()
        );
    }
    let runs = 20;
    let samples = vec![
        time_command(
            "`goodgo compose config` (two files)",
            runs,
            &|| {
                cmd!(
                    sh,
                    "{goodgo} compose config -f compose.yaml -f override.yaml"
                )
            },
            false,
        )?,
        time_command(
            "`docker-compose config` (two files, peer)",
            runs,
            &|| cmd!(sh, "docker-compose -f compose.yaml -f override.yaml config"),
            false,
        )?,
    ];
    let _ = std::fs::remove_dir_all(&dir);
    let ratio = samples[0].median().as_secs_f64() / samples[1].median().as_secs_f64();
    let warm = warm_up(goodgo)?;
    let body = format!(
        "## Compose\n\nMeasured {}; release build; docker-compose {}; Docker engine {}. Repeat with `cargo xtask bench compose`.\n\n`compose config`: a generated file of {SERVICES} services sharing settings through an anchor and `<<` merges (ports, volumes, environment, healthchecks, dependencies), and an override file changing a third of them; both tools merge, interpolate and print the resolved project. {runs} runs each after a warm-up. goodgo's median is **{ratio:.3}x** docker-compose's (goal: at most 0.1x).\n\n{}\nWarm `up`: a project of {UP_SERVICES} sleeping containers (`goodgo/base:bookworm`, init, environment, labels; two waves: four services with a healthcheck, sixteen waiting for them to be healthy), already up, brought up again with nothing changed, each tool on its own copy; one list of the project's containers answers what each service's container is and whether it is ready. goodgo's median: **{}** (goal: under 100 ms).\n\n{}",
        machine(),
        command_version("docker-compose", &["version", "--short"]),
        command_version("docker", &["version", "--format", "{{.Server.Version}}"]),
        table(&samples),
        ms(warm[0].median()),
        table(&warm),
    );
    write_section("compose", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sleeping_project_loads_in_waves() {
        let dir =
            std::env::temp_dir().join(format!("goodgo-bench-warm-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let file = dir.join("compose.yaml");
        std::fs::write(&file, sleepers(UP_SERVICES)).expect("written");
        let project = goodgo_compose::load(&file, Path::new("compose.yaml"), &|_| None);
        let _ = std::fs::remove_dir_all(&dir);
        let project = project.expect("the sleeping project loads");
        assert_eq!(project.services.len(), UP_SERVICES);
        let waves = goodgo_compose::waves(&project, &[], &[]).expect("no cycle");
        assert_eq!(waves.len(), 2, "{waves:?}");
        assert_eq!(waves[0].len(), UP_SERVICES / 5);
    }

    #[test]
    fn the_generated_file_has_every_service_and_loads() {
        let (base, over) = generated(SERVICES);
        assert_eq!(base.matches("    <<: *common").count(), SERVICES);
        assert_eq!(
            over.matches("    environment:").count(),
            SERVICES.div_ceil(3)
        );
        let dir =
            std::env::temp_dir().join(format!("goodgo-bench-compose-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        std::fs::write(dir.join("compose.yaml"), &base).expect("written");
        std::fs::write(dir.join("override.yaml"), &over).expect("written");
        let (a, b) = (dir.join("compose.yaml"), dir.join("override.yaml"));
        let project = goodgo_compose::load_files(
            &[
                (&a, Path::new("compose.yaml")),
                (&b, Path::new("override.yaml")),
            ],
            &|_| None,
        );
        let _ = std::fs::remove_dir_all(&dir);
        let project = project.expect("the generated files load");
        assert_eq!(project.services.len(), SERVICES);
        let s = &project.services["svc03"];
        assert_eq!(s.environment["LOG_LEVEL"], "debug");
        assert_eq!(s.environment["REGION"], "eu-west-1");
        assert_eq!(s.ports.len(), 2);
        assert_eq!(s.depends_on.len(), 0);
        assert_eq!(project.services["svc14"].depends_on.len(), 2);
    }
}
