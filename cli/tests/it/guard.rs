//! The destructive-command guard as users meet it: in a production workspace `down
//! --volumes` and `db reset` refuse unless `--yes` is given twice, and a refusal loses
//! nothing (the services keep running, the data stays).

use std::process::Command;
use std::time::Duration;

use super::*;

/// Volumes of `project` the engine knows, by goodgo's labels.
fn volumes(project: &str) -> usize {
    let out = Command::new("docker")
        .args([
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Whether the stack's data is still there: the named volume on Docker, the data folder
/// natively.
fn data_kept(rt: Runtime, ws: &TestContext, project: &str) -> bool {
    match rt {
        Runtime::Docker => volumes(project) == 1,
        Runtime::Native => ws.join(format!(".goodgo/native/{project}/redis")).is_dir(),
    }
}

goodgo_testkit::stack_test!(
    /// Production: `down --volumes` refuses with one --yes (exit 2, still running, data
    /// kept) and goes ahead with two.
    production_down_volumes_needs_yes_twice,
    |rt| {
        let project = format!("gg{rt}guard{}", std::process::id());
        let port = free_port();
        let ws = context()
            .with_file(
                "compose/compose.yaml",
                &format!(
                    "services:\n  redis:\n    image: goodgo/redis:7\n    ports: [\"127.0.0.1:{port}:6379\"]\n    volumes: [cache:/data]\nvolumes:\n  cache: {{}}\n"
                ),
            )
            .with_file("goodgo.yaml", &format!("name: {project}\nenv: production\n"));
        struct Down<'a>(&'a TestContext);
        impl Drop for Down<'_> {
            fn drop(&mut self) {
                let _ = self.0.command().args(["-q", "down", "--volumes", "--yes", "--yes"]).output();
            }
        }
        let _cleanup = Down(&ws);
        let up = run(ws.command().args(["up", "--runtime", rt.name()]));
        assert_eq!(up.code, 0, "{}", up.stderr);
        assert!(data_kept(rt, &ws, &project), "the stack has its data on {rt}");

        for yes in [&[][..], &["--yes"][..]] {
            run(ws.command().args(["down", "--volumes"]).args(yes)).assert_stderr(
                2,
                &[
                    "refusing to delete the volumes and data of project",
                    "`env` in goodgo.yaml",
                    "--yes --yes",
                ],
            );
            wait_until("redis still answering", Duration::from_secs(10), || {
                goodgo_stack::probe::redis_ready("127.0.0.1", port)
            });
            assert!(data_kept(rt, &ws, &project), "nothing lost after {yes:?}");
        }
        // Without --volumes nothing is destroyed: no confirmation needed, data kept.
        let down = run(ws.command().args(["down"]));
        assert_eq!(down.code, 0, "{}", down.stderr);
        assert!(data_kept(rt, &ws, &project));

        let out = run(ws.command().args(["down", "--volumes", "--yes", "--yes"]));
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.contains("production:"), "the override is said: {}", out.stderr);
        assert!(!data_kept(rt, &ws, &project), "the data went with two --yes");
    }
);
