//! `goodgo api webhook send` against the real API binary on a migrated database of the
//! test's own: a sent `payment.succeeded` settles a checkout an agent made through the API
//! (the secret and the API's address from the workspace's `.env`, the newest checkout from
//! its database), the same event id again is a duplicate, a wrong secret is refused (exit
//! 1, with the API's answer), an unknown event exits 2 naming the allowed ones, and an API
//! that does not run exits 1 saying so.

use goodgo_testkit::http::{Http, Method};

use crate::{Expect, TestDb, context, free_port, goodgo, query, run};

const SECRET: &str = "whsec_it_Zq8vR2mW9xL4pT7nB3cY6hJ1sD5fG0kA";

/// An agent's checkout of the pro plan through the API on `port`: its reference.
fn checkout(port: u16) -> String {
    let http = Http::local(port);
    let register = r#"{"email":"agent@example.com","password":"a-long-password","role":"agent"}"#;
    let a = http
        .send(Method::POST, "/v1/auth/register", &[], Some(register))
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let bearer = format!("Bearer {}", a.json()["access_token"].as_str().unwrap());
    let a = http
        .send(
            Method::POST,
            "/v1/checkout",
            &[("authorization", &bearer)],
            Some(r#"{"plan":"pro"}"#),
        )
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    a.json()["reference"].as_str().unwrap().to_string()
}

#[test]
fn a_sent_payment_succeeded_settles_a_checkout_made_through_the_api() {
    let Some(db) = TestDb::create("webhook_send") else {
        return;
    };
    let ws = context().with_file("goodgo.yaml", "name: hooks\n");
    ws.copy_from_repo("migrations")
        .copy_from_repo(".squawk.toml");
    let migrated = ws.run(["db", "migrate", "--database-url", &db.url]);
    assert_eq!(migrated.code, 0, "{}", migrated.report());
    let secrets = format!("{SECRET},whsec_old_it_Zq8vR2mW9xL4pT7nB3cY6hJ1sD");
    let (_api, port) = crate::serve_api(&db.url, &[("GOODGO_PAYMENTS_WEBHOOK_SECRETS", &secrets)]);
    let reference = checkout(port);
    // What `goodgo dev` reads too: the API's secrets and address in the workspace's .env.
    ws.write(
        ".env",
        &format!("GOODGO_PAYMENTS_WEBHOOK_SECRETS={secrets}\nGOODGO_API_ADDR=127.0.0.1:{port}\n"),
    );
    let send = |args: &[&str]| {
        let mut cmd = goodgo(ws.path());
        cmd.args(["api", "webhook", "send"])
            .args(args)
            .env("GOODGO_DATABASE_URL", &db.url);
        run(&mut cmd)
    };

    // No --reference: the newest checkout of the workspace's database.
    let out = send(&["--json", "payment.succeeded", "--id", "evt_it_1"]);
    assert_eq!(out.code, 0, "{}", out.report());
    let doc = out.json();
    assert_eq!(doc["status"], 200, "{doc}");
    assert_eq!(doc["answer"]["status"], "applied", "{doc}");
    assert_eq!(doc["event"]["type"], "payment.succeeded", "{doc}");
    assert_eq!(
        doc["event"]["data"]["object"]["reference"],
        reference.as_str()
    );
    let settled = "SELECT p.status || ' ' || s.status || ' ' || s.plan FROM payments p JOIN subscriptions s ON s.id = p.subscription_id";
    assert_eq!(query(&db.url, settled), "succeeded active pro");

    // The same event again (freshly signed) is a replay: acknowledged, applied once.
    send(&[
        "payment.succeeded",
        "--reference",
        &reference,
        "--id",
        "evt_it_1",
    ])
    .assert_stdout(0, &["sent payment.succeeded evt_it_1", "200 duplicate"]);
    // A wrong secret: the API refuses it, the command says so and exits 1.
    send(&[
        "payment.refunded",
        "--reference",
        &reference,
        "--secret",
        "whsec_wrong_Zq8vR2mW9xL4pT7nB3cY6hJ1sD5f",
    ])
    .assert_stdout(1, &["401 Authentication is required: no signature matches"]);
    assert_eq!(query(&db.url, settled), "succeeded active pro");
    assert_eq!(query(&db.url, "SELECT count(*) FROM webhook_events"), "1");
}

#[test]
fn bad_events_a_missing_secret_and_an_api_that_does_not_run() {
    let ws = context().with_file("goodgo.yaml", "name: hooks\n");
    let send = |args: &[&str]| ws.run(["api", "webhook", "send"].iter().chain(args));
    send(&[
        "payment.exploded",
        "--secret",
        SECRET,
        "--reference",
        "chk_x",
    ])
    .assert_stderr(
        2,
        &[
            "payment.exploded",
            "payment.succeeded",
            "payment.failed",
            "payment.refunded",
            "subscription.renewed",
            "subscription.cancelled",
        ],
    );
    send(&["payment.failed", "--reference", "chk_x"])
        .assert_stderr(2, &["no webhook secret", "GOODGO_PAYMENTS_WEBHOOK_SECRETS"]);
    send(&[
        "payment.failed",
        "--secret",
        SECRET,
        "--reference",
        "chk_x",
        "--url",
        "ftp://x",
    ])
    .assert_stderr(2, &["not an http:// or https:// URL"]);
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    send(&[
        "payment.failed",
        "--secret",
        SECRET,
        "--reference",
        "chk_x",
        "--url",
        &nowhere,
    ])
    .assert_stderr(1, &[&format!("nothing answers at {nowhere}"), "goodgo dev"]);
}
