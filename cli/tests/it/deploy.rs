//! `goodgo deploy` on the real engine with the real proxy (goodgo/proxy:2.6, HAProxy), the
//! real API (release images built from this repository's debug binary) and the real k6
//! sending a constant arrival rate at the proxy: A then B with no failed request and the
//! `GoodGo-Release` header switching; an image whose /readyz never turns ready switches
//! nothing (exit 1, no failed request); an image answering 500s is switched back by the
//! watch; two deploys at once queue on the lock; a rollback serves A again; secrets never
//! reach `docker inspect` or the history; Ctrl-C leaves the old release serving. Bad input
//! (a `deploy:` value, a missing image, an unreachable engine) exits 2 with its position or
//! name. Everything the tests create on the engine is removed when they end.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use goodgo_testkit::http::Http;

use crate::{Run, TestContext, TestDb, context, free_port, run_at_once, strict, wait_until};

pub(crate) const PROXY_IMAGE: &str = "goodgo/proxy:2.6";
pub(crate) const JWT: &str = "Wq3vT9xLp2mZk7RbN4sYh8JdC6fGa1Ue5oQiVw0tXy";

pub(crate) fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// Whether the engine, the proxy's image and k6 are here (a skip line otherwise, a
/// failure under `cargo xtask test`).
pub(crate) fn ready_or_skip(test: &str) -> bool {
    if !crate::Runtime::Docker.available_or_skip(test) {
        return false;
    }
    if !docker(&["image", "inspect", PROXY_IMAGE]).0 {
        assert!(
            !strict(),
            "cargo xtask test builds {PROXY_IMAGE} (cargo xtask images)"
        );
        goodgo_testkit::skip(test, "no goodgo/proxy:2.6 image (cargo xtask images)");
        return false;
    }
    crate::k6::k6_present(test)
}

/// A deploy workspace: the repository's migrations, squawk settings and API image folder,
/// a `.env` with the database and a secret, a git repository with one commit. Removes every
/// container and image of its project when dropped.
pub(crate) struct Env {
    pub ws: TestContext,
    pub db: TestDb,
    pub name: String,
    pub port: u16,
}

impl Env {
    pub fn new(test: &str, extra_yaml: &str) -> Option<Env> {
        let db = TestDb::create(test)?;
        let port = free_port();
        let name = format!("dt{port}");
        let yaml = format!(
            "name: {name}\ndeploy:\n  port: {port}\n  bind: 127.0.0.1\n  ready_timeout: 20\n  drain_timeout: 10\n  watch: 3\n  keep: 5\n{extra_yaml}"
        );
        let ws = context().with_file("goodgo.yaml", &yaml);
        ws.copy_from_repo("migrations")
            .copy_from_repo(".squawk.toml")
            .copy_from_repo("compose/images/api");
        ws.write(
            ".env",
            &format!(
                "GOODGO_JWT_SECRET={JWT}\nGOODGO_DATABASE_URL={}\nGOODGO_LOG=warn\n",
                db.url
            ),
        );
        ws.write(".gitignore", ".env\n.goodgo/\n");
        git(ws.path(), &["init", "-q"]);
        git(ws.path(), &["add", "-A"]);
        git(ws.path(), &["commit", "-q", "-m", "first"]);
        Some(Env { ws, db, name, port })
    }

    pub fn goodgo(&self, args: &[&str]) -> Run {
        self.ws.run(args)
    }

    /// `goodgo deploy build` with the debug API binary: the image's tag.
    pub fn build(&self) -> String {
        let bin = crate::api_binary();
        let out = self.goodgo(&[
            "deploy",
            "build",
            "--json",
            "--binary",
            bin.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 0, "{}", out.report());
        out.json()["image"].as_str().unwrap().to_string()
    }

    /// An image FROM `base` whose entrypoint points the API at `database_url`.
    pub fn derived(&self, base: &str, tag_suffix: &str, database_url: &str) -> String {
        let dir = self.ws.mkdir(&format!("derived-{tag_suffix}"));
        std::fs::write(
            dir.join("start.sh"),
            format!(
                "#!/bin/bash\nunset GOODGO_DATABASE_URL_FILE\nexport GOODGO_DATABASE_URL={database_url}\nexec goodgo-api\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            format!("FROM {base}\nCOPY start.sh /usr/local/bin/start.sh\nENTRYPOINT [\"/usr/local/bin/start.sh\"]\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join("start.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let tag = format!("{}-api:{tag_suffix}", self.name);
        let (ok, out) = docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
        assert!(ok, "{out}");
        tag
    }

    fn http(&self) -> Http {
        Http::new(&format!("127.0.0.1:{}", self.port), Duration::from_secs(10))
    }

    /// The `GoodGo-Release` header of a request through the proxy.
    pub fn release(&self) -> String {
        let answer = self.http().get("/healthz").expect("the proxy answers");
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer
            .headers
            .get("goodgo-release")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    fn containers(&self) -> Vec<String> {
        let filter = format!("label=com.docker.compose.project={}-deploy", self.name);
        let (_, out) = docker(&["ps", "-aq", "--filter", &filter]);
        out.lines().map(str::to_string).collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids = self.containers();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            docker(&args);
        }
        // By tag: removing a derived image's tag also removes its untagged parents, so the
        // order does not matter (removing an image by id fails while it has children).
        let filter = format!("reference={}-api", self.name);
        let (_, tags) = docker(&[
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            &filter,
        ]);
        for tag in tags.lines() {
            docker(&["image", "rm", tag]);
        }
        let (_, left) = docker(&["image", "ls", "-q", "--filter", &filter]);
        assert!(
            left.is_empty() || std::thread::panicking(),
            "test images left: {left}"
        );
    }
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(ok.success(), "git {args:?}");
}

/// k6 sending a constant 40 requests/s at the proxy until [`Load::stop`].
pub(crate) struct Load {
    child: Child,
    out: PathBuf,
}

impl Load {
    pub fn start(env: &Env, path: &str) -> Load {
        let script = env.ws.write(
            "load.js",
            "import http from 'k6/http';\n\
             export const options = { scenarios: { s: { executor: 'constant-arrival-rate', rate: 40, timeUnit: '1s', duration: '10m', preAllocatedVUs: 20, maxVUs: 100 } } };\n\
             export default function () { http.get(`${__ENV.URL}${__ENV.P}`); }\n\
             export function handleSummary(data) { return { [__ENV.OUT]: JSON.stringify(data.metrics) }; }\n",
        );
        let out = env.ws.join(format!("k6-{}.json", free_port()));
        let child = Command::new("k6")
            .args(["run", "-q", "--no-usage-report"])
            .arg("-e")
            .arg(format!("URL=http://127.0.0.1:{}", env.port))
            .arg("-e")
            .arg(format!("P={path}"))
            .arg("-e")
            .arg(format!("OUT={}", out.display()))
            .arg(&script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it reach its rate before anything changes.
        std::thread::sleep(Duration::from_secs(2));
        Load { child, out }
    }

    /// Stops k6 (its summary is written on SIGINT): (requests, failed requests).
    pub fn stop(mut self) -> (u64, u64) {
        goodgo_testkit::signal(self.child.id(), goodgo_testkit::Signal::INT);
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out).unwrap();
        let m: serde_json::Value = serde_json::from_str(&text).unwrap();
        (
            m["http_reqs"]["values"]["count"].as_u64().unwrap(),
            m["http_req_failed"]["values"]["passes"].as_u64().unwrap(),
        )
    }
}

#[test]
fn deploy_a_then_b_bad_releases_the_lock_and_rollback() {
    let test = "deploy_sequence";
    if !ready_or_skip(test) {
        return;
    }
    let Some(env) = Env::new(test, "") else {
        return;
    };
    let a = env.build();
    assert!(
        a.starts_with(&format!("{}-api:", env.name)) && !a.contains("dirty"),
        "{a}"
    );
    let (_, labels) = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &a,
    ]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(
        labels["org.goodgo.release.migrations-head"],
        migrations_head().to_string(),
        "{labels}"
    );
    assert!(
        labels["org.goodgo.release.built"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        labels["org.goodgo.release.commit"].as_str().unwrap(),
        a.rsplit(':').next().unwrap()
    );
    // B: the same code from a working tree with a change: a `-dirty-` tag of its own.
    env.ws.write("NOTES.md", "a change\n");
    let b = env.build();
    assert!(b.contains("-dirty-") && b != a, "{b}");

    // A: the first release also starts the proxy and applies the migrations.
    let out = env.goodgo(&["deploy", "--image", &a, "--json"]);
    assert_eq!(out.code, 0, "{}", out.report());
    assert_eq!(out.json()["release"]["id"], "r1");
    assert_eq!(env.release(), "r1");

    // B under load: no failed request, and the header switches.
    let load = Load::start(&env, "/v1/listings/search?limit=5");
    let out = env.goodgo(&["deploy", "--image", &b]);
    let (requests, failed) = load.stop();
    assert_eq!(out.code, 0, "{}", out.report());
    assert!(requests > 100, "{requests} requests");
    assert_eq!(
        failed, 0,
        "{failed} of {requests} requests failed across A → B"
    );
    assert_eq!(env.release(), "r2");

    // Never ready: nothing switched, its container gone, no failed request, exit 1.
    let never = env.derived(&a, "never", "postgres://nobody@127.0.0.1:1/none");
    let load = Load::start(&env, "/v1/listings/search?limit=5");
    let out = env.goodgo(&["deploy", "--image", &never, "--ready-timeout", "4"]);
    let (requests, failed) = load.stop();
    out.assert_stderr(
        1,
        &[
            "release r3 did not turn ready within 4 s",
            "nothing was switched, release r2 still serves",
        ],
    );
    assert_eq!(
        failed, 0,
        "{failed} of {requests} requests failed during the never-ready release"
    );
    assert_eq!(env.release(), "r2");
    assert!(
        !docker(&["inspect", &format!("{}-api-r3", env.name)]).0,
        "r3's container is removed"
    );

    // Ready but answering 500s (its database has no listings table): the watch switches back.
    let broken = TestDb::create("deploy_broken").unwrap();
    assert_eq!(
        env.goodgo(&["db", "migrate", "--database-url", &broken.url])
            .code,
        0
    );
    broken.sql("DROP TABLE listings CASCADE");
    let fivehundreds = env.derived(&a, "fail", &broken.url);
    let load = Load::start(&env, "/v1/listings/search?limit=5");
    let out = env.goodgo(&["deploy", "--image", &fivehundreds, "--watch", "8"]);
    let _ = load.stop();
    out.assert_stderr(
        1,
        &[
            "release r4 switched back:",
            "were 5xx",
            "release r2 serves again",
        ],
    );
    assert_eq!(env.release(), "r2");

    // Two deploys at once: the second waits for the first, both succeed.
    let mut cmds = Vec::new();
    for _ in 0..2 {
        let mut cmd = env.ws.command();
        cmd.args(["deploy", "--image", &a, "--watch", "0"]);
        cmds.push(cmd);
    }
    let runs = run_at_once(cmds);
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.report());
    }
    assert!(
        runs.iter()
            .any(|r| r.stderr.contains("waiting for the deploy lock, held by")),
        "{}\n{}",
        runs[0].report(),
        runs[1].report()
    );
    assert_eq!(env.release(), "r6");

    // Rollback to A's first release.
    let out = env.goodgo(&["deploy", "rollback", "r1"]);
    assert_eq!(out.code, 0, "{}", out.report());
    assert_eq!(env.release(), "r1");

    let status = env.goodgo(&["deploy", "status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.report());
    let status = status.json();
    assert_eq!(status["url"], format!("http://127.0.0.1:{}", env.port));
    assert_eq!(status["serving"]["release"], "r1");
    let history = env.goodgo(&["deploy", "history", "--json"]).json();
    let results: Vec<(String, String)> = history["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().into(),
                r["result"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("r1", "replaced"),
        ("r2", "replaced"),
        ("r3", "failed"),
        ("r4", "rolled-back"),
        ("r5", "replaced"),
        ("r6", "replaced"),
        ("r7", "serving"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(results, want);
    assert_eq!(history["releases"][6]["serves"], "r1");

    // Secrets: files in the container, never in its environment, logs or the history.
    let serving = format!("{}-api-r1", env.name);
    let (_, inspect) = docker(&["inspect", &serving]);
    assert!(inspect.contains("GOODGO_JWT_SECRET_FILE=/run/secrets/GOODGO_JWT_SECRET"));
    assert!(
        !inspect.contains(JWT) && !inspect.contains(&env.db.url),
        "a secret in docker inspect"
    );
    let (_, logs) = docker(&["logs", &serving]);
    assert!(!logs.contains(JWT));
    let recorded = env.ws.read(".goodgo/deploy/local/history.json");
    assert!(!recorded.contains(JWT) && !recorded.contains(&env.db.url));

    let out = env.goodgo(&["deploy", "down"]);
    assert_eq!(out.code, 0, "{}", out.report());
    assert!(env.containers().is_empty(), "down removes every container");
    assert!(
        env.ws.join(".goodgo/deploy/local/history.json").is_file(),
        "the history stays"
    );
}

#[test]
fn deploy_interrupted_leaves_the_old_release_serving() {
    let test = "deploy_interrupt";
    if !ready_or_skip(test) {
        return;
    }
    let Some(env) = Env::new(test, "") else {
        return;
    };
    let a = env.build();
    assert_eq!(env.goodgo(&["deploy", "--image", &a]).code, 0);
    let never = env.derived(&a, "never", "postgres://nobody@127.0.0.1:1/none");
    let mut cmd = env.ws.command();
    cmd.args(["deploy", "--image", &never, "--ready-timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let r2 = format!("{}-api-r2", env.name);
    wait_until(
        "the new release's container",
        Duration::from_secs(30),
        || docker(&["inspect", &r2]).0,
    );
    let status = crate::interrupt(&mut child, Duration::from_secs(20), String::new);
    assert_eq!(status.code(), Some(130));
    assert_eq!(env.release(), "r1");
    assert!(
        !docker(&["inspect", &r2]).0,
        "the interrupted release is removed"
    );
    // The lock went with the process: the next deploy does not wait.
    let start = Instant::now();
    let out = env.goodgo(&[
        "deploy",
        "--image",
        &a,
        "--watch",
        "0",
        "--lock-timeout",
        "1",
    ]);
    assert_eq!(out.code, 0, "{}", out.report());
    assert!(start.elapsed() < Duration::from_secs(60));
    let history = env.goodgo(&["deploy", "history", "--json"]).json();
    assert_eq!(history["releases"][1]["result"], "interrupted");

    // A stopped proxy comes back with the release that served last, then switches on.
    assert!(docker(&["stop", &format!("{}-proxy", env.name)]).0);
    let out = env.goodgo(&["deploy", "--image", &a, "--watch", "0"]);
    out.assert_stderr(0, &["started the stopped proxy"]);
    assert_eq!(env.release(), "r4");
}

#[test]
fn deploy_bad_input_exits_2_with_position_or_name() {
    let ws = context().with_file("goodgo.yaml", "name: x\ndeploy:\n  port: 0\n");
    let out = ws.run(["deploy", "status"]);
    out.assert_stderr(2, &["goodgo.yaml:3:9:", "0 is not a port"]);
    let ws = context().with_file("goodgo.yaml", "name: x\ndeploy:\n  max_error_rate: 5\n");
    ws.run(["deploy", "history"])
        .assert_stderr(2, &["goodgo.yaml:3:19:", "not a share from 0 to 1"]);
    let ws = context().with_file("goodgo.yaml", "name: x\ndeploy:\n  prot: 80\n");
    ws.run(["deploy", "history"])
        .assert_stderr(2, &["goodgo.yaml:3:3:", "unknown key `prot`"]);

    let ws = context().with_file("goodgo.yaml", "name: x\n");
    let out = crate::run(
        ws.command()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["deploy", "status"]),
    );
    out.assert_stderr(
        2,
        &["cannot reach the Docker engine at unix:///nonexistent/docker.sock"],
    );

    if crate::Runtime::Docker.available() {
        let ws = context().with_file("goodgo.yaml", "name: x\n");
        ws.write(".env", &format!("GOODGO_JWT_SECRET={JWT}\n"));
        ws.run(["deploy", "--image", "goodgo-nosuch:1"])
            .assert_stderr(2, &["--image goodgo-nosuch:1: no such image on the engine"]);
    }
}

#[test]
fn deploy_refuses_a_breaking_migration() {
    let test = "deploy_breaking";
    if !ready_or_skip(test) {
        return;
    }
    let Some(env) = Env::new(test, "") else {
        return;
    };
    let squawk = Command::new("squawk").arg("--version").output();
    if !squawk.is_ok_and(|o| o.status.success()) {
        assert!(!strict(), "cargo xtask test installs squawk");
        return;
    }
    let a = env.build();
    assert_eq!(
        env.goodgo(&["deploy", "--image", &a, "--watch", "0"]).code,
        0
    );
    env.ws.write(
        "migrations/V999__drop_title.sql",
        "ALTER TABLE listings DROP COLUMN title;\n",
    );
    let out = env.goodgo(&["deploy", "--image", &a, "--watch", "0"]);
    out.assert_stderr(
        1,
        &[
            "would break the release still serving",
            "migrations/V999__drop_title.sql:1:",
            "ban-drop-column",
            "--allow-breaking",
        ],
    );
    assert_eq!(env.release(), "r1");
}

/// The highest migration version in the repository (what a release image is labelled with).
fn migrations_head() -> u32 {
    std::fs::read_dir(crate::repo().join("migrations"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix('V')?.split("__").next()?.parse().ok()
        })
        .max()
        .unwrap()
}
