//! Notifications through the outbox, against a real SMTP server (aiosmtpd, started by the
//! test, writing what it receives to a Maildir the test reads back with Python's own
//! e-mail parser): each e-mail delivered once in its recipient's language, a refused
//! connection retried with backoff, several workers and a killed one sending every message
//! exactly once; and the notifications API and problem documents in both languages.
#![allow(clippy::unwrap_used)] // tests: a failed setup step is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Api, JWT, NEW, checkout, event};
use goodgo_api::outbox::{Outcome, Worker};
use goodgo_testkit::http::Method;
use goodgo_testkit::{ChildGuard, free_port, skip, strict};
use serde_json::{Value, json};

const FROM: &str = "GoodGo <no-reply@goodgo.test>";

/// The `aiosmtpd` program, if it is on PATH.
fn aiosmtpd() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("aiosmtpd"))
        .find(|p| p.is_file())
}

/// An SMTP server storing every message it accepts in a Maildir.
struct Smtp {
    port: u16,
    dir: PathBuf,
    server: Option<ChildGuard>,
}

impl Smtp {
    /// A server for `port` (started with [`Smtp::up`]); `None`, with a skip line, when
    /// aiosmtpd is not installed outside `cargo xtask test`.
    fn new(test: &str) -> Option<Smtp> {
        if aiosmtpd().is_none() {
            assert!(!strict(), "cargo xtask test installs aiosmtpd");
            skip(test, "aiosmtpd is not installed (`pip install aiosmtpd`)");
            return None;
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("goodgo-smtp-{test}-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        Some(Smtp {
            port,
            dir,
            server: None,
        })
    }

    fn up(&mut self) {
        let child = Command::new(aiosmtpd().unwrap())
            .args(["-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.server = Some(ChildGuard::new(child));
        goodgo_testkit::wait_until("aiosmtpd to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received, decoded: message_id, to, subject, language, kind, body.
    fn messages(&self) -> Vec<Value> {
        let script = r#"
import email, email.policy, json, os, sys
d = os.path.join(sys.argv[1], "new")
out = []
for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
    with open(os.path.join(d, name), "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    out.append({"message_id": m["Message-ID"], "to": m["X-RcptTo"], "subject": str(m["Subject"]),
                "language": m["Content-Language"], "kind": m["X-GoodGo-Notification"],
                "body": m.get_content()})
print(json.dumps(out))
"#;
        let python = aiosmtpd()
            .and_then(|p| p.parent().map(|d| d.join("python3")))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("python3"));
        let out = Command::new(python)
            .args(["-c", script])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.server.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An outbox worker of its own (a replica's) on `api`'s database, sending to `smtp_url`.
fn worker(api: &Api, smtp_url: &str, extra: &[(&str, &str)]) -> Worker {
    let mut vars: Vec<(String, String)> = [
        ("GOODGO_DATABASE_URL", api.db.url.as_str()),
        ("GOODGO_JWT_SECRET", JWT),
        ("GOODGO_SMTP_URL", smtp_url),
        ("GOODGO_SMTP_FROM", FROM),
        ("GOODGO_DB_POOL_SIZE", "2"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vars.reverse();
    let config = goodgo_api::Config::from_env(&move |k| {
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let pool = goodgo_api::pool(&config).unwrap();
    let state = goodgo_api::state(config, pool);
    goodgo_api::outbox_worker(&state).unwrap().unwrap()
}

async fn register(api: &Api, email: &str, role: &str, language: Option<&str>) -> String {
    let mut headers = Vec::new();
    if let Some(l) = language {
        headers.push(("accept-language".to_string(), l.to_string()));
    }
    let body = json!({"email": email, "password": "a-long-password", "role": role});
    let a = api
        .send(
            Method::POST,
            "/v1/auth/register",
            headers,
            Some(body.to_string()),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.json()["access_token"].as_str().unwrap().to_string()
}

async fn get_in(
    api: &Api,
    path: &str,
    token: Option<&str>,
    language: &str,
) -> (u16, String, Value) {
    let mut headers = vec![("accept-language".to_string(), language.to_string())];
    if let Some(t) = token {
        headers.push(("authorization".to_string(), format!("Bearer {t}")));
    }
    let a = api.send(Method::GET, path, headers, None).await;
    let lang = a
        .headers
        .get("content-language")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        a.status,
        lang,
        serde_json::from_str(&a.body).unwrap_or(Value::Null),
    )
}

/// The outbox keys of the rows in `status`.
async fn keys(api: &Api, status: &str) -> Vec<String> {
    let rows = api
        .client
        .query(
            "SELECT key::text FROM outbox WHERE status = $1 ORDER BY id",
            &[&status],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// Waits (at most `secs`) until some worker holds an outbox row's lock: it is mid-send.
async fn outbox_row_locked(api: &Api, secs: u64) {
    let locked = async {
        loop {
            let n: i64 = api
                .scalar("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'outbox' AND l.mode = 'RowShareLock'")
                .await;
            if n > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(secs), locked)
        .await
        .expect("a worker takes an outbox row");
}

fn message_ids(messages: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = messages
        .iter()
        .map(|m| m["message_id"].as_str().unwrap_or("").to_string())
        .collect();
    ids.sort();
    ids
}

fn expected_ids(keys: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = keys.iter().map(|k| format!("<{k}@goodgo.test>")).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_is_mailed_once_in_the_users_language() {
    let Some(mut smtp) = Smtp::new("mailed_once") else {
        return;
    };
    let Some(api) = Api::start("notify_mailed_once").await else {
        return;
    };
    smtp.up();
    let agent = register(
        &api,
        "lan@example.vn",
        "agent",
        Some("vi-VN,vi;q=0.9,en;q=0.5"),
    )
    .await;
    let _buyer = register(&api, "sam@example.com", "buyer", None).await;
    let admin = api.user("admin@example.com", "admin").await;

    // A listing published, unpublished by a moderator; a payment; a cancelled plan.
    let body = json!({"title": "Căn hộ Ba Đình", "description": "Hai phòng ngủ", "price": "5000000000",
        "currency": "VND", "listing_type": "sale", "property_type": "apartment", "bedrooms": 2,
        "bathrooms": 1, "area_m2": "70", "address": "1 Kim Mã", "city": "Hà Nội", "district": "Ba Đình"});
    let listing = api
        .expect(201, Method::POST, "/v1/listings", Some(&agent), Some(body))
        .await;
    let id = listing["id"].as_i64().unwrap();
    let path = format!("/v1/listings/{id}");
    api.expect(
        200,
        Method::POST,
        &format!("{path}/publish"),
        Some(&agent),
        None,
    )
    .await;
    let reason = json!({"reason": "ảnh không đúng với căn hộ"});
    api.expect(
        200,
        Method::POST,
        &format!("/v1/admin/listings/{id}/unpublish"),
        Some(&admin),
        Some(reason),
    )
    .await;
    let reference = checkout(&api, &agent, "pro").await;
    assert_eq!(
        api.deliver(NEW, &event("evt_paid", "payment.succeeded", &reference))
            .await,
        "applied"
    );
    api.expect(
        200,
        Method::POST,
        "/v1/me/subscription/cancel",
        Some(&agent),
        None,
    )
    .await;
    // Turned off: the waiting e-mail of the first publication is skipped, and a later
    // publication is listed but not mailed.
    let off = json!({"email": {"listing.published": false}});
    let settings = api
        .expect(
            200,
            Method::PATCH,
            "/v1/me/notifications/settings",
            Some(&agent),
            Some(off),
        )
        .await;
    assert_eq!(settings["locale"], "vi");
    assert_eq!(settings["email"]["listing.published"], false);
    assert_eq!(settings["email"]["welcome"], true);
    api.expect(
        200,
        Method::POST,
        &format!("{path}/publish"),
        Some(&agent),
        None,
    )
    .await;

    // Nothing is sent before a worker runs; then everything, once.
    assert!(smtp.messages().is_empty());
    let pending = keys(&api, "pending").await;
    assert_eq!(
        pending.len(),
        7,
        "3 welcomes, published, unpublished, receipt, ended"
    );
    let w = worker(&api, &smtp.url(), &[]);
    let outcomes = w.drain().await.unwrap();
    assert_eq!(outcomes.len(), 7, "{outcomes:?}");
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Done { .. }))
        .count();
    assert_eq!(done, 6, "{outcomes:?}");
    assert!(
        w.drain().await.unwrap().is_empty(),
        "nothing is due any more"
    );
    assert_eq!(keys(&api, "skipped").await.len(), 1);
    let skipped: String = api.scalar("SELECT n.kind FROM notifications n JOIN outbox o ON o.id = n.outbox_id WHERE o.status = 'skipped'").await;
    assert_eq!(skipped, "listing.published");
    assert_eq!(smtp.messages().len(), 6);

    // Back on: the next publication is mailed.
    let on = json!({"email": {"listing.published": true}});
    api.expect(
        200,
        Method::PATCH,
        "/v1/me/notifications/settings",
        Some(&agent),
        Some(on),
    )
    .await;
    api.expect(
        200,
        Method::POST,
        &format!("{path}/archive"),
        Some(&agent),
        None,
    )
    .await;
    api.expect(
        200,
        Method::POST,
        &format!("{path}/publish"),
        Some(&agent),
        None,
    )
    .await;
    assert!(matches!(
        w.drain().await.unwrap()[..],
        [Outcome::Done { .. }]
    ));
    let messages = smtp.messages();
    assert_eq!(messages.len(), 7);
    assert_eq!(
        message_ids(&messages),
        expected_ids(&keys(&api, "sent").await)
    );
    assert!(keys(&api, "pending").await.is_empty());

    let to = |who: &str, kind: &str| -> Value {
        let found: Vec<&Value> = messages
            .iter()
            .filter(|m| m["to"].as_str().unwrap_or("").contains(who) && m["kind"] == kind)
            .collect();
        assert_eq!(found.len(), 1, "{who} {kind}: {messages:#?}");
        found[0].clone()
    };
    let welcome_vi = to("lan@example.vn", "welcome");
    assert_eq!(welcome_vi["subject"], "Chào mừng bạn đến với GoodGo");
    assert_eq!(welcome_vi["language"], "vi");
    assert!(
        welcome_vi["body"]
            .as_str()
            .unwrap()
            .starts_with("Xin chào lan,")
    );
    let welcome_en = to("sam@example.com", "welcome");
    assert_eq!(welcome_en["subject"], "Welcome to GoodGo");
    assert_eq!(welcome_en["language"], "en");
    assert!(
        welcome_en["body"]
            .as_str()
            .unwrap()
            .contains("sam@example.com")
    );
    assert_eq!(
        to("lan@example.vn", "listing.published")["subject"],
        "Tin đăng của bạn đã hiển thị: Căn hộ Ba Đình"
    );
    let unpublished = to("lan@example.vn", "listing.unpublished");
    assert!(
        unpublished["body"]
            .as_str()
            .unwrap()
            .contains("Lý do: ảnh không đúng với căn hộ."),
        "{unpublished}"
    );
    let receipt = to("lan@example.vn", "payment.receipt");
    assert_eq!(receipt["subject"], "Biên nhận cho gói pro của bạn");
    assert!(
        receipt["body"].as_str().unwrap().contains("29.00 USD"),
        "{receipt}"
    );
    assert!(receipt["body"].as_str().unwrap().contains(&reference));
    to("lan@example.vn", "subscription.ended");
    for m in &messages {
        let text = format!("{}{}", m["subject"], m["body"]);
        assert!(
            !text.contains('{') && !text.contains('}'),
            "an unfilled placeholder: {m}"
        );
    }

    // The list: newest first, in the request's language, with each e-mail's fate.
    let (status, lang, page) = get_in(&api, "/v1/me/notifications", Some(&agent), "vi").await;
    assert_eq!((status, lang.as_str()), (200, "vi"), "{page}");
    let items = page["items"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = items
        .iter()
        .map(|n| (n["kind"].as_str().unwrap(), n["email"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("listing.published", "sent"),
            ("listing.published", "off"),
            ("subscription.ended", "sent"),
            ("payment.receipt", "sent"),
            ("listing.unpublished", "sent"),
            ("listing.published", "off"),
            ("welcome", "sent"),
        ]
    );
    assert_eq!(items[6]["subject"], "Chào mừng bạn đến với GoodGo");
    let (_, lang, page) = get_in(&api, "/v1/me/notifications?limit=2", Some(&agent), "en").await;
    assert_eq!(lang, "en");
    assert_eq!(
        page["items"][0]["subject"],
        "Your listing is live: Căn hộ Ba Đình"
    );
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, _, next) = get_in(
        &api,
        &format!("/v1/me/notifications?limit=2&cursor={cursor}"),
        Some(&agent),
        "en",
    )
    .await;
    assert_eq!(next["items"][0]["kind"], "subscription.ended");
    let (status, _, problem) =
        get_in(&api, "/v1/me/notifications?limit=0", Some(&agent), "vi").await;
    assert_eq!(status, 422);
    assert_eq!(problem["title"], "Yêu cầu có trường không hợp lệ");
    let bad = json!({"email": {"spam": false}, "locale": "fr"});
    let a = api
        .json(
            Method::PATCH,
            "/v1/me/notifications/settings",
            Some(&agent),
            Some(bad),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    let errors = &a.json()["errors"];
    assert!(
        errors["email"][0].as_str().unwrap().contains("`spam`"),
        "{errors}"
    );
    assert_eq!(errors["locale"][0], "must be en or vi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn problems_speak_the_requested_language() {
    let Some(api) = Api::start("notify_problems").await else {
        return;
    };
    let (status, lang, p) = get_in(&api, "/v1/listings/999999", None, "vi, en;q=0.5").await;
    assert_eq!((status, lang.as_str()), (404, "vi"));
    assert_eq!(p["title"], "Không tìm thấy tài nguyên");
    assert_eq!(p["type"], "/problems/not-found");
    let (_, lang, p) = get_in(&api, "/v1/listings/999999", None, "fr, de").await;
    assert_eq!(
        (lang.as_str(), p["title"].as_str()),
        ("en", Some("No such resource"))
    );
    // Problems from the framework's own layers, and those with details of the API's own.
    let (status, _, p) = get_in(&api, "/no/such/path", None, "vi").await;
    assert_eq!(
        (status, p["title"].as_str()),
        (404, Some("Không tìm thấy tài nguyên"))
    );
    let (status, _, p) = get_in(&api, "/v1/me", None, "vi").await;
    assert_eq!((status, p["title"].as_str()), (401, Some("Cần đăng nhập")));
    let agent = api.user("agent@example.com", "agent").await;
    for n in 0..4 {
        let body = json!({"title": format!("Nhà {n}"), "description": "d", "price": "100",
            "currency": "VND", "listing_type": "rent", "property_type": "house", "bedrooms": 1,
            "bathrooms": 1, "area_m2": "40", "address": "a", "city": "Hồ Chí Minh", "district": "1"});
        let l = api
            .expect(201, Method::POST, "/v1/listings", Some(&agent), Some(body))
            .await;
        let path = format!("/v1/listings/{}/publish", l["id"]);
        let headers = vec![
            ("authorization".to_string(), format!("Bearer {agent}")),
            ("accept-language".to_string(), "vi".to_string()),
        ];
        let a = api.send(Method::POST, &path, headers, None).await;
        if n < 3 {
            assert_eq!(a.status, 200, "{}", a.body);
        } else {
            assert_eq!(a.status, 402, "{}", a.body);
            let p = a.json();
            assert_eq!(
                p["title"],
                "Đã dùng hết hạn mức tin đăng đang hiển thị của gói"
            );
            assert!(
                p["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("gói free cho phép 3 tin đăng"),
                "{p}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_connection_is_retried_with_backoff() {
    let Some(mut smtp) = Smtp::new("retried") else {
        return;
    };
    let Some(api) = Api::start("notify_retried").await else {
        return;
    };
    register(&api, "lan@example.vn", "buyer", Some("vi")).await;
    // The mail server is down: the attempt fails, and the row waits out its backoff.
    let base = [
        ("GOODGO_OUTBOX_RETRY_BASE_MS", "300"),
        ("GOODGO_OUTBOX_MAX_ATTEMPTS", "3"),
    ];
    let w = worker(&api, &smtp.url(), &base);
    let first = w.step().await.unwrap();
    assert!(
        matches!(&first, Some(Outcome::Retrying { error, .. }) if error.starts_with("SMTP")),
        "{first:?}"
    );
    assert_eq!(w.step().await.unwrap(), None, "not due before its backoff");
    let row = api
        .client
        .query_one(
            "SELECT attempts::int, last_error, extract(epoch FROM next_attempt_at - now())::float8 FROM outbox",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert!(row.get::<_, Option<String>>(1).is_some());
    let wait: f64 = row.get(2);
    assert!(wait > 0.0 && wait <= 0.3, "{wait}");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let second = w.step().await.unwrap();
    assert!(
        matches!(second, Some(Outcome::Retrying { .. })),
        "{second:?}"
    );
    let wait: f64 = api
        .scalar("SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM outbox")
        .await;
    assert!(wait > 0.3 && wait <= 0.6, "doubled: {wait}");

    // The server comes up: the third attempt delivers it, once.
    smtp.up();
    tokio::time::sleep(Duration::from_millis(650)).await;
    let third = w.drain().await.unwrap();
    assert!(matches!(third[..], [Outcome::Done { .. }]), "{third:?}");
    let messages = smtp.messages();
    assert_eq!(
        message_ids(&messages),
        expected_ids(&keys(&api, "sent").await)
    );
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["subject"], "Chào mừng bạn đến với GoodGo");
    let attempts: i32 = api.scalar("SELECT attempts::int FROM outbox").await;
    assert_eq!(attempts, 3);

    // A row that fails every attempt ends failed, with its error, and is not retried.
    drop(smtp);
    register(&api, "sam@example.com", "buyer", None).await;
    let quick = [
        ("GOODGO_OUTBOX_RETRY_BASE_MS", "10"),
        ("GOODGO_OUTBOX_MAX_ATTEMPTS", "2"),
    ];
    let w = worker(&api, &format!("smtp://127.0.0.1:{}", free_port()), &quick);
    assert!(matches!(
        w.step().await.unwrap(),
        Some(Outcome::Retrying { .. })
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        w.step().await.unwrap(),
        Some(Outcome::Failed { .. })
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(w.step().await.unwrap(), None);
    assert_eq!(keys(&api, "failed").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_and_a_killed_worker_send_each_message_exactly_once() {
    let Some(mut smtp) = Smtp::new("exactly_once") else {
        return;
    };
    let Some(api) = Api::start("notify_exactly_once").await else {
        return;
    };
    smtp.up();
    for n in 0..20 {
        register(&api, &format!("user{n}@example.vn"), "buyer", Some("vi")).await;
    }
    let all = keys(&api, "pending").await;
    assert_eq!(all.len(), 20);

    // Worker A takes the first row and hangs in the middle of its SMTP conversation (a
    // server that accepts and never answers) while the other replicas work.
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_url = format!("smtp://{}", black_hole.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        loop {
            if let Ok((socket, _)) = black_hole.accept().await {
                open.push(socket);
            }
        }
    });
    let a = worker(&api, &hole_url, &[("GOODGO_SMTP_TIMEOUT", "120")]);
    let a_task = tokio::spawn(async move { a.drain().await });
    outbox_row_locked(&api, 20).await;

    // Two replicas at once: every other row, each by one of them.
    let b = worker(&api, &smtp.url(), &[]);
    let c = worker(&api, &smtp.url(), &[]);
    let (rb, rc) = tokio::join!(b.drain(), c.drain());
    let (rb, rc) = (rb.unwrap(), rc.unwrap());
    assert_eq!(rb.len() + rc.len(), 19, "B {rb:?} C {rc:?}");
    assert_eq!(keys(&api, "pending").await.len(), 1, "the row A holds");

    // A is killed mid-batch: its transaction rolls back, its row is still pending and
    // nothing of it was sent; the next worker sends it.
    a_task.abort();
    assert!(a_task.await.unwrap_err().is_cancelled());
    held.abort();
    let wait = async {
        loop {
            let rest = c.drain().await.unwrap();
            if !rest.is_empty() {
                break rest;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let rest = tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1, "{rest:?}");

    let messages = smtp.messages();
    assert_eq!(messages.len(), 20);
    assert_eq!(message_ids(&messages), expected_ids(&all), "each key once");
    let attempts: Vec<i32> = api
        .client
        .query(
            "SELECT attempts::int FROM outbox WHERE status = 'sent'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(attempts, vec![1; 20], "A's attempt left no trace");
    let per_recipient: BTreeMap<String, usize> =
        messages.iter().fold(BTreeMap::new(), |mut m, msg| {
            *m.entry(msg["to"].to_string()).or_default() += 1;
            m
        });
    assert!(per_recipient.values().all(|n| *n == 1), "{per_recipient:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_api_process_loses_nothing_and_doubles_nothing() {
    let Some(mut smtp) = Smtp::new("killed_process") else {
        return;
    };
    let Some(api) = Api::start("notify_killed_process").await else {
        return;
    };
    smtp.up();
    for n in 0..3 {
        register(&api, &format!("user{n}@example.vn"), "buyer", None).await;
    }
    let all = keys(&api, "pending").await;
    // The real server's worker, stuck in an SMTP conversation that never moves, is
    // killed with SIGKILL while it holds a row.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole = format!("smtp://{}", black_hole.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = black_hole.incoming().collect();
        drop(held);
    });
    let mut server = ChildGuard::new(
        Command::new(env!("CARGO_BIN_EXE_goodgo-api"))
            .env_clear()
            .env("GOODGO_DATABASE_URL", &api.db.url)
            .env("GOODGO_JWT_SECRET", JWT)
            .env("GOODGO_API_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("GOODGO_SMTP_URL", &hole)
            .env("GOODGO_SMTP_FROM", FROM)
            .env("GOODGO_SMTP_TIMEOUT", "120")
            .env("GOODGO_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    outbox_row_locked(&api, 30).await;
    server.0.kill().unwrap();
    server.0.wait().unwrap();

    // Another replica sends all three, each once; the killed attempt left nothing.
    let w = worker(&api, &smtp.url(), &[]);
    let drained = async {
        let mut done = Vec::new();
        while done.len() < 3 {
            done.extend(w.drain().await.unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        done
    };
    let done = tokio::time::timeout(Duration::from_secs(30), drained)
        .await
        .unwrap();
    assert!(
        done.iter().all(|o| matches!(o, Outcome::Done { .. })),
        "{done:?}"
    );
    let messages = smtp.messages();
    assert_eq!(message_ids(&messages), expected_ids(&all));
    let attempts: Vec<i32> = api
        .client
        .query("SELECT attempts::int FROM outbox ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(attempts, [1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_rows_older_than_the_keep_days_are_pruned_and_their_notifications_stay() {
    let Some(api) = Api::start("notify_pruned").await else {
        return;
    };
    // Five accounts: five welcome e-mails in the outbox, then each given another fate.
    for who in [
        "old-sent",
        "old-skipped",
        "old-failed",
        "new-sent",
        "old-pending",
    ] {
        register(&api, &format!("{who}@example.com"), "buyer", None).await;
    }
    api.client
        .batch_execute(
            "UPDATE outbox o SET status = s.status, done_at = now() - s.age, created_at = now() - s.age - interval '1 hour'
               FROM (VALUES ('old-sent', 'sent', interval '40 days'), ('old-skipped', 'skipped', interval '31 days'),
                            ('old-failed', 'failed', interval '400 days'), ('new-sent', 'sent', interval '29 days'))
                    AS s(who, status, age), users u
              WHERE (o.payload->>'user_id')::bigint = u.id AND u.email = s.who || '@example.com';
             UPDATE outbox SET created_at = now() - interval '90 days' WHERE status = 'pending'",
        )
        .await
        .unwrap();
    let by_status = || async {
        let rows = api
            .client
            .query(
                "SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status",
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect::<Vec<_>>()
    };
    let all = |n: i64| {
        vec![
            ("failed".into(), 1),
            ("pending".into(), 1),
            ("sent".into(), n),
            ("skipped".into(), 1),
        ]
    };
    assert_eq!(by_status().await, all(2), "every fate was set");

    // Kept forever with 0 days.
    let forever = worker(
        &api,
        "smtp://127.0.0.1:9",
        &[("GOODGO_OUTBOX_KEEP_DAYS", "0")],
    );
    assert_eq!(forever.prune().await.unwrap(), 0);
    assert_eq!(by_status().await, all(2));

    let worker = worker(
        &api,
        "smtp://127.0.0.1:9",
        &[("GOODGO_OUTBOX_KEEP_DAYS", "30")],
    );
    assert_eq!(worker.prune().await.unwrap(), 2);
    assert_eq!(
        by_status().await,
        vec![
            ("failed".into(), 1),
            ("pending".into(), 1),
            ("sent".into(), 1)
        ],
        "the old sent and skipped rows went; the failed, pending and recent ones stay"
    );
    assert_eq!(worker.prune().await.unwrap(), 0, "nothing more to prune");
    let (notifications, orphaned): (i64, i64) = {
        let row = api
            .client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE outbox_id IS NULL) FROM notifications",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(
        (notifications, orphaned),
        (5, 2),
        "every notification is still listed"
    );
}
