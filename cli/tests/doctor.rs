//! `goodgo doctor` against the real machine, and against a machine with nothing on it.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

mod support;

use std::fs;

use support::{goodgo, run};

/// With no tools anywhere, every row fails with its fix, and the exit status is 1.
#[test]
fn doctor_on_an_empty_machine_lists_every_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty-bin");
    fs::create_dir(&empty).unwrap();
    let isolate = |cmd: &mut std::process::Command| {
        cmd.env("PATH", &empty)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("GOODGO_PG_BIN_DIR", &empty);
    };
    let mut cmd = goodgo(tmp.path());
    isolate(&mut cmd);
    let out = run(cmd.arg("doctor"));
    assert_eq!(out.code, 1, "{}", out.stderr);
    insta::assert_snapshot!("doctor_empty_machine", out.snapshot(tmp.path()));

    let mut cmd = goodgo(tmp.path());
    isolate(&mut cmd);
    let out = run(cmd.args(["doctor", "--json"]));
    assert_eq!(out.code, 1);
    insta::assert_snapshot!("doctor_empty_machine_json", out.snapshot(tmp.path()));
}

/// `runtime: docker` with no engine: only the engine is required.
#[test]
fn doctor_requires_what_the_runtime_needs() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("goodgo.yaml"), "runtime: docker\n").unwrap();
    let out = run(goodgo(tmp.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["--json", "doctor"]));
    assert_eq!(out.code, 1);
    let json = out.json();
    let required: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["required"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(required, ["docker"]);
}

/// On this machine, after `cargo xtask test` provisioned it, every check passes and each
/// version is what the tool itself reports.
#[test]
fn doctor_on_the_provisioned_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(goodgo(tmp.path()).args(["doctor", "--json"]));
    let json = out.json();
    let checks = json["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "docker",
            "initdb",
            "postgres",
            "pg_dump",
            "pg_restore",
            "psql",
            "redis-server",
            "k6",
            "git"
        ]
    );
    for check in checks {
        let name = check["name"].as_str().unwrap();
        let ok = check["ok"].as_bool().unwrap();
        if name == "docker" {
            assert_eq!(
                ok,
                support::docker_available(),
                "docker row agrees with `docker info`: {check}"
            );
            if ok {
                let own = std::process::Command::new("docker")
                    .args(["version", "--format", "{{.Server.APIVersion}}"])
                    .output()
                    .unwrap();
                let own = String::from_utf8_lossy(&own.stdout).trim().to_string();
                assert_eq!(check["api_version"], own.as_str(), "engine API version");
            } else {
                assert!(check["api_version"].is_null(), "{check}");
            }
            continue;
        }
        assert!(check["api_version"].is_null(), "{name}: {check}");
        if !ok {
            assert!(
                !support::strict(),
                "{name} must be installed under `cargo xtask test`: {check}"
            );
            support::skip(
                "doctor_on_the_provisioned_machine",
                &format!("{name} is not installed here"),
            );
            continue;
        }
        let path = check["detail"].as_str().unwrap();
        let arg = if name == "k6" { "version" } else { "--version" };
        let own = std::process::Command::new(path).arg(arg).output().unwrap();
        let own = String::from_utf8_lossy(&own.stdout);
        let version = check["version"].as_str().unwrap();
        assert!(
            own.contains(version),
            "{name}: doctor says {version}, the tool says {own}"
        );
    }
    assert_eq!(out.code, if json["ok"] == true { 0 } else { 1 });
    if support::strict() {
        assert_eq!(out.code, 0, "{}", out.stdout);
    }
}
