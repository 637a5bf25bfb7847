//! The API against schemathesis: the real server on a migrated, seeded database, fuzzed
//! from its own `/openapi.json` with an agent's session, then its admin API with an
//! admin's. Any 5xx or any answer that breaks the documented schema, status codes or
//! content types fails `cargo xtask test`.

use anyhow::{Context, Result, bail};
use goodgo_testkit::http::{Http, Method};
use xshell::cmd;

use crate::{cargo, root, services, shell};

/// Both schemathesis passes against the API on a fresh seeded database of the server at
/// `server_url`; `extra_path` is the PATH schemathesis is found on.
pub fn run(server_url: &str, extra_path: &std::ffi::OsStr) -> Result<()> {
    let sh = shell()?;
    let cargo = cargo();
    cmd!(sh, "{cargo} build --quiet -p goodgo -p goodgo-api").run()?;
    let db = "goodgo_schemathesis";
    let goodgo = root().join("target/debug/goodgo");
    let url = services::seeded_database(&goodgo, server_url, db, 300)?;
    // Listing photos on a real S3 API server (moto), as in production: without storage the
    // photo routes answer 503, which would be a finding.
    let s3 = goodgo_testkit::s3::S3Server::start_in(
        "schemathesis",
        goodgo_testkit::free_port(),
        Some(extra_path),
    )
    .context("moto_server is not installed (pip install 'moto[server]')")?;
    s3.create_bucket("goodgo-photos");
    let mut env: Vec<(String, String)> = s3.env();
    env.push(("GOODGO_S3_BUCKET".into(), "goodgo-photos".into()));
    env.push(("GOODGO_AUTH_RATE_LIMIT".into(), "100000".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (server, port) = services::start_api(&root().join("target/debug/goodgo-api"), &url, &env)?;
    let http = Http::keep_alive(
        &format!("127.0.0.1:{port}"),
        std::time::Duration::from_secs(10),
    );
    let agent = login(&http, "agent0001@goodgo.test")?;
    let admin = login(&http, "admin@goodgo.test")?;
    let openapi = http.url("/openapi.json");
    let _dir = sh.push_dir(std::env::temp_dir());
    // Every operation as the seeded agent (with its session cookies, so refresh and logout
    // are exercised past the CSRF check: the first refresh rotates, later ones are reuse,
    // logout ends it); then the admin API as the seeded admin, whom the agent's pass only
    // ever meets as a 403.
    eprintln!("$ schemathesis run {openapi} (as the seeded agent, with its session cookies)");
    let result = schemathesis(&sh, &openapi, &agent, &[], extra_path).and_then(|()| {
        eprintln!("$ schemathesis run {openapi} --include-tag admin (as the seeded admin)");
        schemathesis(
            &sh,
            &openapi,
            &admin,
            &["--include-tag", "admin"],
            extra_path,
        )
    });
    drop(server);
    drop(s3);
    let _ = services::drop_database(server_url, db);
    result.context("schemathesis found problems in the API (pip install schemathesis)")?;
    Ok(())
}

/// A seeded account's session: `Authorization`, `Cookie` and `X-CSRF-Token` headers.
fn login(http: &Http, email: &str) -> Result<[String; 3]> {
    let body = format!(r#"{{"email":"{email}","password":"goodgo-dev-password"}}"#);
    let login = http
        .send(Method::POST, "/v1/auth/login", &[], Some(&body))
        .with_context(|| format!("logging in {email}: no answer"))?;
    if login.status != 200 {
        bail!(
            "logging in {email} failed ({}): {}",
            login.status,
            login.body
        );
    }
    let refresh = login
        .cookie("goodgo_refresh")
        .context("no refresh cookie from login")?;
    let csrf = login
        .cookie("goodgo_csrf")
        .context("no CSRF cookie from login")?;
    let token: serde_json::Value = serde_json::from_str(&login.body)?;
    let token = token["access_token"]
        .as_str()
        .context("no access_token in the login answer")?;
    Ok([
        format!("Authorization: Bearer {token}"),
        format!("Cookie: goodgo_refresh={refresh}; goodgo_csrf={csrf}"),
        format!("X-CSRF-Token: {csrf}"),
    ])
}

/// One schemathesis run over `openapi` with a session's `headers` and `extra` options. One
/// worker: with two, hypothesis describes its filters by parsing source in two threads at
/// once, which Python 3.11's `ast` does not survive (CPython gh-106905: "AST constructor
/// recursion depth mismatch", a runtime error of the tool, not a finding).
fn schemathesis(
    sh: &xshell::Shell,
    openapi: &str,
    headers: &[String; 3],
    extra: &[&str],
    extra_path: &std::ffi::OsStr,
) -> Result<()> {
    let [bearer, cookies, csrf] = headers;
    let checks = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance";
    cmd!(
        sh,
        "schemathesis run {openapi} -H {bearer} -H {cookies} -H {csrf}
            --checks {checks} --max-examples 25 --phases examples,coverage,fuzzing
            --workers 1 --max-time 60 --seed 20261125 {extra...}"
    )
    .env("PATH", extra_path)
    .env("SCHEMATHESIS_HOOKS", "")
    // The token and cookies stay out of the log.
    .quiet()
    .run()?;
    Ok(())
}
