//! The API against schemathesis: the real server on a migrated, seeded database, fuzzed
//! from its own `/openapi.json` with an agent's token. Any 5xx or any answer that breaks
//! the documented schema, status codes or content types fails `cargo xtask test`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, root, run_checked};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request; the status, the header lines and the body of the answer.
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    Ok((status, head.to_string(), body.to_string()))
}

/// The value of cookie `name` set by a response with these header lines.
fn set_cookie<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie").then_some(v.trim())
        })
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn run(server_url: &str, extra_path: &std::ffi::OsStr) -> Result<()> {
    run_checked(cargo().args(["build", "--quiet", "-p", "goodgo", "-p", "goodgo-api"]))?;
    let base = server_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or_default();
    let db = "goodgo_schemathesis";
    let psql = |sql: &str| {
        run_checked(
            Command::new("psql")
                .args(["-X", "-q", "-d", server_url, "-c", sql])
                .env("PGOPTIONS", "-c client_min_messages=warning"),
        )
    };
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
    psql(&format!("CREATE DATABASE {db}"))?;
    let url = format!("{base}/{db}");
    let goodgo = root().join("target/debug/goodgo");
    for args in [
        &["-q", "db", "migrate"][..],
        &["-q", "db", "seed", "--listings", "300"],
    ] {
        run_checked(
            Command::new(&goodgo)
                .args(args)
                .env("GOODGO_DATABASE_URL", &url)
                .current_dir(root())
                .stdout(Stdio::null()),
        )?;
    }
    let port = crate::services::free_port()?;
    let child = Command::new(root().join("target/debug/goodgo-api"))
        .env("GOODGO_DATABASE_URL", &url)
        .env(
            "GOODGO_JWT_SECRET",
            "schemathesis-run-Qx7Lm2vB8wR4tY6uP0aS5dF1gHjK",
        )
        .env("GOODGO_API_ADDR", format!("127.0.0.1:{port}"))
        .env("GOODGO_AUTH_RATE_LIMIT", "100000")
        .env("GOODGO_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting goodgo-api")?;
    let server = Server(child);
    let start = Instant::now();
    while http(port, "GET", "/healthz", None)
        .map(|r| r.0)
        .unwrap_or(0)
        != 200
    {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("goodgo-api did not answer /healthz in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, head, body) = http(
        port,
        "POST",
        "/v1/auth/login",
        Some(r#"{"email":"agent0001@goodgo.test","password":"goodgo-dev-password"}"#),
    )?;
    if status != 200 {
        bail!("logging in the seeded agent failed ({status}): {body}");
    }
    let token: serde_json::Value = serde_json::from_str(&body)?;
    let token = token["access_token"]
        .as_str()
        .context("no access_token in the login answer")?
        .to_string();
    // The session's cookies and CSRF token, so refresh and logout are exercised past the
    // CSRF check: the first refresh rotates, later ones are reuse (401), logout ends it.
    let refresh = set_cookie(&head, "goodgo_refresh").context("no refresh cookie from login")?;
    let csrf = set_cookie(&head, "goodgo_csrf").context("no CSRF cookie from login")?;
    let status = Command::new("schemathesis")
        .args(["run", &format!("http://127.0.0.1:{port}/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "-H",
            &format!("Cookie: goodgo_refresh={refresh}; goodgo_csrf={csrf}"),
        ])
        .args(["-H", &format!("X-CSRF-Token: {csrf}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"])
        .args(["--max-examples", "25", "--phases", "examples,coverage,fuzzing", "--workers", "2", "--max-time", "60", "--seed", "20261125"])
        .env("PATH", extra_path)
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(std::env::temp_dir())
        .status()
        .context("running schemathesis (pip install schemathesis)")?;
    drop(server);
    let _ = psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    if !status.success() {
        bail!("schemathesis found problems in the API ({status})");
    }
    Ok(())
}
