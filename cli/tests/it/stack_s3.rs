//! `goodgo up --profile s3` natively: the Compose file's MinIO service runs as s3s-fs over
//! a folder of the stack's state, with MinIO's credentials, on the published port; signed
//! requests put and get objects, unsigned or wrongly signed ones are refused; `down` stops
//! it and the next `up` finds the objects again.

use std::time::Duration;

use goodgo_testkit::http::Http;
use goodgo_testkit::s3::Bucket;

use crate::{TestContext, context, free_port, goodgo, run, skip, strict};

fn compose(redis: u16, s3: u16) -> String {
    format!(
        r#"services:
  redis:
    image: goodgo/redis:7
    ports: ["127.0.0.1:{redis}:6379"]
  minio:
    image: minio/minio:latest
    profiles: ["s3"]
    command: ["server", "/data", "--console-address", ":9001"]
    environment:
      MINIO_ROOT_USER: photos
      MINIO_ROOT_PASSWORD: photos-secret
    ports: ["127.0.0.1:{s3}:9000"]
    volumes: [miniodata:/data]
volumes:
  miniodata:
"#
    )
}

fn workspace(project: &str, compose: &str) -> TestContext {
    context()
        .with_file("compose/compose.yaml", compose)
        .with_file("goodgo.yaml", &format!("name: {project}\n"))
}

/// A workspace whose project (`{prefix}{pid}`) has Redis and, in the `s3` profile, MinIO on
/// free ports; brought down with its volumes when dropped.
struct Stack {
    ws: TestContext,
    project: String,
    s3: u16,
}

impl Stack {
    /// `None` (a visible skip) without redis-server and s3s-fs.
    fn new(test: &str, prefix: &str) -> Option<Stack> {
        if !tools_or_skip(test) {
            return None;
        }
        let (rd, s3) = (free_port(), free_port());
        let project = format!("{prefix}{}", std::process::id());
        let ws = workspace(&project, &compose(rd, s3));
        Some(Stack { ws, project, s3 })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = goodgo(self.ws.path())
            .args(["-q", "down", "--volumes"])
            .output();
    }
}

/// The `AWS_*` settings of the stack's S3 server, with `secret`.
fn aws_env(port: u16, secret: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "photos".into()),
        ("AWS_SECRET_ACCESS_KEY", secret.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn tools_or_skip(test: &str) -> bool {
    let found = ["redis-server", "s3s-fs"]
        .iter()
        .all(|p| which::which(p).is_ok());
    if !found {
        assert!(
            !strict(),
            "cargo xtask test installs redis-server and s3s-fs"
        );
        skip(test, "redis-server or s3s-fs is not installed");
    }
    found
}

#[test]
fn native_s3_profile_serves_signed_requests_and_keeps_its_objects() {
    let test = "native_s3_profile_serves_signed_requests_and_keeps_its_objects";
    let Some(stack) = Stack::new(test, "ggs3") else {
        return;
    };
    let (ws, project, s3) = (&stack.ws, &stack.project, stack.s3);
    let up = |args: &[&str]| {
        let out = run(goodgo(ws.path())
            .args(["up", "--runtime", "native", "--json"])
            .args(args));
        assert_eq!(out.code, 0, "{}", out.stderr);
        out
    };

    // Without the profile, no S3 server.
    let plain = up(&[]).json();
    let names: Vec<&str> = plain["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["redis"], "{plain}");
    assert!(plain["s3"].is_null(), "{plain}");

    // With it: s3s-fs on the published port, said with the settings dev passes on (the
    // secret never printed).
    let out = up(&["--profile", "s3"]);
    assert!(!out.stdout.contains("photos-secret"), "{}", out.stdout);
    assert!(
        out.stderr.contains("`command` is ignored"),
        "MinIO's console is named as not served: {}",
        out.stderr
    );
    let json = out.json();
    let minio = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "minio")
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(minio["action"], "created", "{json}");
    assert_eq!(
        json["s3"]["endpoint"],
        format!("http://127.0.0.1:{s3}"),
        "{json}"
    );
    assert_eq!(json["s3"]["bucket"], "goodgo-photos", "{json}");
    assert_eq!(json["s3"]["access_key_id"], "photos", "{json}");
    let pid = std::fs::read_to_string(
        ws.path()
            .join(format!(".goodgo/native/{project}/minio/pid")),
    )
    .unwrap();
    assert!(pid.ends_with("\ns3s-fs\n"), "{pid}");

    // Signed requests with the service's credentials put and get objects in the photo
    // bucket; a wrong secret and an unsigned request are refused.
    let bucket = Bucket::connect(&aws_env(s3, "photos-secret"), "goodgo-photos");
    let bytes = b"\xff\xd8\xff a photo".to_vec();
    bucket.put("photos/a.jpg", bytes.clone());
    assert_eq!(bucket.get("photos/a.jpg"), bytes);
    let forged = Bucket::connect(&aws_env(s3, "not-the-secret"), "goodgo-photos");
    let refused = forged.try_get("photos/a.jpg");
    assert!(refused.is_err(), "a wrong secret reads nothing");
    let anonymous = Http::new(&format!("127.0.0.1:{s3}"), Duration::from_secs(5))
        .get("/goodgo-photos/photos/a.jpg")
        .map(|a| a.status);
    assert_eq!(anonymous, Some(403), "the bucket is private");

    let status = run(goodgo(ws.path()).args(["status", "--json"])).json();
    let row = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "minio")
        .cloned()
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(
        (row["state"].as_str(), row["health"].as_str()),
        (Some("running"), Some("healthy")),
        "{status}"
    );

    // `down` stops it; the next `up` serves the same objects again.
    let down = run(goodgo(ws.path()).args(["down"]));
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(
        down.stdout.contains("stopped minio (native)"),
        "{}",
        down.stdout
    );
    assert!(!goodgo_stack::probe::tcp_open("127.0.0.1", s3), "stopped");
    let again = up(&["--profile", "s3"]).json();
    let minio = again["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "minio")
        .cloned()
        .unwrap_or_else(|| panic!("{again}"));
    assert_eq!(minio["action"], "started", "{again}");
    assert_eq!(bucket.get("photos/a.jpg"), bytes, "kept across down and up");
}

#[test]
fn native_s3_without_s3s_fs_says_how_to_install_it() {
    let ws = workspace("ggs3missing", &compose(free_port(), free_port()));
    let empty = tempfile::tempdir().unwrap();
    let out = run(goodgo(ws.path())
        .args(["up", "--runtime", "native", "--profile", "s3", "minio"])
        .env("PATH", empty.path()));
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("s3s-fs is not installed")
            && out
                .stderr
                .contains("cargo install s3s-fs --features binary"),
        "{}",
        out.stderr
    );
    assert!(!ws.path().join(".goodgo/native/ggs3missing/minio").exists());
}

/// A project whose services run natively stays native on the next `up` without
/// `--runtime`: starting the rest on Docker would fight them for their ports (as after
/// `up --profile s3` fell back to native because MinIO's image cannot be pulled).
#[test]
fn an_auto_runtime_up_keeps_a_natively_running_project_native() {
    let test = "an_auto_runtime_up_keeps_a_natively_running_project_native";
    let Some(stack) = Stack::new(test, "ggauto") else {
        return;
    };
    let ws = &stack.ws;
    let out = run(goodgo(ws.path()).args(["up", "--runtime", "native", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);

    let out = run(goodgo(ws.path()).args(["up", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["runtime"], "native", "{json}");
    assert_eq!(
        json["reason"], "the project's services already run natively",
        "{json}"
    );
    let redis = &json["services"][0];
    assert_eq!(
        (redis["service"].as_str(), redis["action"].as_str()),
        (Some("redis"), Some("unchanged")),
        "{json}"
    );
}
