//! The API against schemathesis: the real server on a migrated, seeded database, fuzzed
//! from its own `/openapi.json` with an agent's token. Any 5xx or any answer that breaks
//! the documented schema, status codes or content types fails `cargo xtask test`.

use anyhow::{Context, Result, bail};
use goodgo_testkit::http::{Http, Method};
use xshell::cmd;

use crate::{cargo, root, services, shell};

/// The value of cookie `name` set by `response`.
pub fn run(server_url: &str, extra_path: &std::ffi::OsStr) -> Result<()> {
    let sh = shell()?;
    let cargo = cargo();
    cmd!(sh, "{cargo} build --quiet -p goodgo -p goodgo-api").run()?;
    let db = "goodgo_schemathesis";
    let goodgo = root().join("target/debug/goodgo");
    let url = services::seeded_database(&goodgo, server_url, db, 300)?;
    let (server, port) = services::start_api(
        &root().join("target/debug/goodgo-api"),
        &url,
        &[("GOODGO_AUTH_RATE_LIMIT", "100000")],
    )?;
    let http = Http::keep_alive(
        &format!("127.0.0.1:{port}"),
        std::time::Duration::from_secs(10),
    );
    let login = http
        .send(
            Method::POST,
            "/v1/auth/login",
            &[],
            Some(r#"{"email":"agent0001@goodgo.test","password":"goodgo-dev-password"}"#),
        )
        .context("logging in the seeded agent: no answer")?;
    // The session's cookies and CSRF token, so refresh and logout are exercised past the
    // CSRF check: the first refresh rotates, later ones are reuse (401), logout ends it.
    let refresh = login.cookie("goodgo_refresh");
    let csrf = login.cookie("goodgo_csrf");
    let body = login.body.clone();
    if login.status != 200 {
        bail!(
            "logging in the seeded agent failed ({}): {body}",
            login.status
        );
    }
    let token: serde_json::Value = serde_json::from_str(&body)?;
    let token = token["access_token"]
        .as_str()
        .context("no access_token in the login answer")?
        .to_string();
    let refresh = refresh.context("no refresh cookie from login")?;
    let csrf = csrf.context("no CSRF cookie from login")?;
    let openapi = http.url("/openapi.json");
    let bearer = format!("Authorization: Bearer {token}");
    let cookies = format!("Cookie: goodgo_refresh={refresh}; goodgo_csrf={csrf}");
    let csrf_header = format!("X-CSRF-Token: {csrf}");
    let checks = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance";
    let _dir = sh.push_dir(std::env::temp_dir());
    eprintln!("$ schemathesis run {openapi} (as the seeded agent, with its session cookies)");
    let result = cmd!(
        sh,
        "schemathesis run {openapi} -H {bearer} -H {cookies} -H {csrf_header}
            --checks {checks} --max-examples 25 --phases examples,coverage,fuzzing
            --workers 2 --max-time 60 --seed 20261125"
    )
    .env("PATH", extra_path)
    .env("SCHEMATHESIS_HOOKS", "")
    // The token and cookies stay out of the log.
    .quiet()
    .run();
    drop(server);
    let _ = services::drop_database(server_url, db);
    result.context("schemathesis found problems in the API (pip install schemathesis)")?;
    Ok(())
}
