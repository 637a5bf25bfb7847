//! `goodgo doctor` against the real machine, and against a machine with nothing on it.

use goodgo_testkit::assert_cmd_snapshot;

use crate::{context, goodgo, run};

/// With no tools anywhere, every row fails with its fix, and the exit status is 1.
#[test]
fn doctor_on_an_empty_machine_lists_every_fix() {
    let ctx = context();
    let empty = ctx.mkdir("empty-bin");
    let isolated = || {
        let mut cmd = ctx.command();
        cmd.env("PATH", &empty)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("GOODGO_PG_BIN_DIR", &empty);
        cmd
    };
    let out = assert_cmd_snapshot!(
        "doctor_empty_machine",
        ctx.filters(),
        isolated().arg("doctor")
    );
    assert_eq!(out.code, 1, "{}", out.stderr);

    let out = assert_cmd_snapshot!(
        "doctor_empty_machine_json",
        ctx.filters(),
        isolated().args(["doctor", "--json"])
    );
    assert_eq!(out.code, 1);
}

/// `runtime: docker` with no engine: only the engine is required.
#[test]
fn doctor_requires_what_the_runtime_needs() {
    let ctx = context().with_file("goodgo.yaml", "runtime: docker\n");
    let out = run(ctx
        .command()
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
    let tmp = context();
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
            "git",
            "s3s-fs"
        ]
    );
    for check in checks {
        let name = check["name"].as_str().unwrap();
        let ok = check["ok"].as_bool().unwrap();
        if name == "docker" {
            assert_eq!(
                ok,
                goodgo_testkit::Runtime::Docker.available(),
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
                !crate::strict(),
                "{name} must be installed under `cargo xtask test`: {check}"
            );
            crate::skip(
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
    if crate::strict() {
        assert_eq!(out.code, 0, "{}", out.stdout);
    }
}
