//! Listing photos against a real S3 API server (moto) and a real PostgreSQL: presigned
//! uploads confirmed with a HEAD, presigned reads that expire, a private bucket that
//! refuses unsigned reads, deletion through the durable queue (also across a storage
//! outage), and the 503 problem of a server without storage.

#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

mod common;

use std::time::{Duration, Instant};

use common::Api;
use goodgo_testkit::http::Method;
use goodgo_testkit::s3::{Bucket, S3Server};
use serde_json::{Value, json};

const BUCKET: &str = "goodgo-photos";

/// The API's settings for moto at `s3`, with presigned URLs valid `ttl` seconds.
fn storage_env(s3: &S3Server, ttl: &str) -> Vec<(String, String)> {
    let mut vars = s3.env();
    vars.push(("GOODGO_S3_BUCKET".into(), BUCKET.into()));
    vars.push(("GOODGO_PHOTO_URL_TTL".into(), ttl.into()));
    vars.push(("GOODGO_PHOTO_MAX_BYTES".into(), "4096".into()));
    // The outbox worker retries quickly here: 0.2 s, 0.4 s, … at most 1 s.
    vars.push(("GOODGO_OUTBOX_POLL_MS".into(), "100".into()));
    vars.push(("GOODGO_OUTBOX_RETRY_BASE_MS".into(), "200".into()));
    vars.push(("GOODGO_OUTBOX_RETRY_MAX_MS".into(), "1000".into()));
    vars.push(("GOODGO_OUTBOX_MAX_ATTEMPTS".into(), "100".into()));
    vars
}

async fn api_with(name: &str, vars: &[(String, String)]) -> Option<Api> {
    let extra: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Api::start_with(name, &extra).await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A draft listing of the agent's: its id.
async fn listing(api: &Api, token: &str) -> i64 {
    let body = json!({"title": "Flat with a view", "price": 1000, "listing_type": "rent", "property_type": "apartment", "area_m2": 50, "city": "Lisbon"});
    let l = api
        .expect(201, Method::POST, "/v1/listings", Some(token), Some(body))
        .await;
    l["id"].as_i64().unwrap()
}

/// Asks for an upload, PUTs `bytes` as `content_type` to its URL: the upload's answer.
async fn upload(api: &Api, token: &str, id: i64, content_type: &str, bytes: Vec<u8>) -> Value {
    let path = format!("/v1/listings/{id}/photos");
    let up = api
        .expect(
            201,
            Method::POST,
            &path,
            Some(token),
            Some(json!({"content_type": content_type})),
        )
        .await;
    let put = http()
        .put(up["upload_url"].as_str().unwrap())
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200, "{:?}", put.text().await);
    up
}

/// Object deletions not done yet.
const PENDING_DELETIONS: &str = "outbox WHERE topic = 'photo.delete' AND status <> 'sent'";

/// moto with the photo bucket; `None` (the test skips) without moto.
fn moto_with_bucket(test: &str) -> Option<(S3Server, Bucket)> {
    blocking(|| {
        let s3 = S3Server::start(test)?;
        s3.create_bucket(BUCKET);
        let bucket = s3.bucket(BUCKET);
        Some((s3, bucket))
    })
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n not really a picture, but bytes all the same";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_upload_confirm_read_and_delete() {
    let test = "photos_upload_confirm_read_and_delete";
    let Some((s3, bucket)) = moto_with_bucket(test) else {
        return;
    };
    let Some(api) = api_with("photos_flow", &storage_env(&s3, "300")).await else {
        return;
    };
    let (agent, buyer, _) = api.accounts().await;
    let id = listing(&api, &agent).await;
    let photos = format!("/v1/listings/{id}/photos");

    // Only the owner (or an admin) uploads (a draft is not even visible to others); only
    // images.
    let body = Some(json!({"content_type": "image/png"}));
    api.expect(404, Method::POST, &photos, Some(&buyer), body.clone())
        .await;
    let bad = api
        .expect(
            422,
            Method::POST,
            &photos,
            Some(&agent),
            Some(json!({"content_type": "text/html"})),
        )
        .await;
    assert!(
        bad["errors"]["content_type"][0]
            .as_str()
            .unwrap()
            .contains("image/png")
    );

    // The upload URL is for a random key under photos/, with the content type signed in.
    let up = upload(&api, &agent, id, "image/png", PNG.to_vec()).await;
    let key = up["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("photos/") && key.ends_with(".png"), "{key}");
    assert_eq!(up["method"], "PUT");
    assert_eq!(up["headers"]["content-type"], "image/png");
    assert_eq!(
        blocking(|| bucket.get(&key)),
        PNG,
        "the bytes went straight to the bucket"
    );
    // Not listed until confirmed; confirming checks the object with a HEAD.
    let listed = api
        .expect(200, Method::GET, &photos, Some(&agent), None)
        .await;
    assert_eq!(listed["items"], json!([]));
    let confirm = format!("{photos}/{}/confirm", up["id"]);
    let photo = api
        .expect(200, Method::POST, &confirm, Some(&agent), None)
        .await;
    assert_eq!(photo["position"], 0);
    assert_eq!(photo["size_bytes"], PNG.len());
    assert_eq!(photo["content_type"], "image/png");
    assert_eq!(photo["url_expires_in"], 300);
    // Confirming again answers the same photo.
    let again = api
        .expect(200, Method::POST, &confirm, Some(&agent), None)
        .await;
    assert_eq!(again["id"], photo["id"]);

    // A presigned GET works; an unsigned GET of the same object is refused: the bucket is
    // private. (moto accepts any signature and expiry: see the next test for those.)
    let url = photo["url"].as_str().unwrap().to_string();
    let got = http().get(&url).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), PNG);
    assert_eq!(
        blocking(|| s3.anonymous_get(BUCKET, &key)),
        403,
        "unsigned GET"
    );

    // A draft's photos are its owner's; published, everyone's.
    api.expect(404, Method::GET, &photos, None, None).await;
    api.expect(
        200,
        Method::POST,
        &format!("/v1/listings/{id}/publish"),
        Some(&agent),
        None,
    )
    .await;
    let public = api.expect(200, Method::GET, &photos, None, None).await;
    assert_eq!(public["items"].as_array().unwrap().len(), 1);

    // Confirming before the upload: 409; an object over the size limit: 422, dropped.
    let early = api
        .expect(
            201,
            Method::POST,
            &photos,
            Some(&agent),
            Some(json!({"content_type": "image/jpeg"})),
        )
        .await;
    let early_confirm = format!("{photos}/{}/confirm", early["id"]);
    api.expect(409, Method::POST, &early_confirm, Some(&agent), None)
        .await;
    let big = upload(&api, &agent, id, "image/jpeg", vec![7u8; 5000]).await;
    let big_key = big["key"].as_str().unwrap().to_string();
    assert!(blocking(|| bucket.keys("photos")).contains(&big_key));
    let refused = api
        .expect(
            422,
            Method::POST,
            &format!("{photos}/{}/confirm", big["id"]),
            Some(&agent),
            None,
        )
        .await;
    assert!(
        refused["errors"]["photo"][0]
            .as_str()
            .unwrap()
            .contains("5000 bytes"),
        "{refused}"
    );
    wait_for_keys(&bucket, &big_key, false).await;

    // A second photo goes after the first.
    let second = upload(&api, &agent, id, "image/webp", b"RIFF....WEBP".to_vec()).await;
    let second_key = second["key"].as_str().unwrap().to_string();
    let p2 = api
        .expect(
            200,
            Method::POST,
            &format!("{photos}/{}/confirm", second["id"]),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(p2["position"], 1);

    // Deleting one photo deletes its object, shortly.
    assert!(blocking(|| bucket.keys("photos")).contains(&key));
    api.expect(
        204,
        Method::DELETE,
        &format!("{photos}/{}", photo["id"]),
        Some(&agent),
        None,
    )
    .await;
    wait_for_keys(&bucket, &key, false).await;
    assert_eq!(blocking(|| bucket.keys("photos")), [second_key.as_str()]);

    // Deleting the listing deletes the rest (pending uploads included).
    api.expect(
        204,
        Method::DELETE,
        &format!("/v1/listings/{id}"),
        Some(&agent),
        None,
    )
    .await;
    wait_for_keys(&bucket, &second_key, false).await;
    let queue_empty = Instant::now();
    while api.count(PENDING_DELETIONS).await > 0 {
        assert!(
            queue_empty.elapsed() < Duration::from_secs(20),
            "the deletions are done"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        blocking(|| bucket.keys("photos")),
        Vec::<String>::new(),
        "no object left behind"
    );
    assert_eq!(
        api.count("audit_log WHERE action LIKE 'listing.photo.%'")
            .await,
        3
    );
    // One outbox row per object: the two photos, the oversized upload, the pending one.
    let sent = "outbox WHERE topic = 'photo.delete' AND status = 'sent'";
    assert_eq!(api.count(sent).await, 4);
    // The clients' own runtimes end outside the test's.
    blocking(move || drop((bucket, s3)));
}

/// Runs `f`, which blocks (the test kit's S3 clients have runtimes of their own), on this
/// worker thread with the test's runtime stepped out of.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_expire_and_bind_the_content_type() {
    // s3s-fs verifies presigned URLs as S3 does (moto checks neither signatures nor expiry).
    let test = "presigned_urls_expire_and_bind_the_content_type";
    let Some(s3) = blocking(|| S3Server::start_verifying(test, &[BUCKET])) else {
        return;
    };
    let Some(api) = api_with("photos_signed", &storage_env(&s3, "2")).await else {
        return;
    };
    let agent = api.user("agent@example.com", "agent").await;
    let id = listing(&api, &agent).await;
    let photos = format!("/v1/listings/{id}/photos");
    let up = api
        .expect(
            201,
            Method::POST,
            &photos,
            Some(&agent),
            Some(json!({"content_type": "image/png"})),
        )
        .await;
    let upload_url = up["upload_url"].as_str().unwrap().to_string();
    let put = |content_type: &'static str, url: String| async move {
        http()
            .put(url)
            .header("content-type", content_type)
            .body(PNG.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    // Another content type than the signed one, or a forged signature: refused.
    assert_eq!(
        put("text/html", upload_url.clone()).await,
        403,
        "content type outside the signature"
    );
    let at = upload_url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let forged = format!(
        "{}{}{}",
        &upload_url[..at],
        "0".repeat(64),
        &upload_url[at + 64..]
    );
    assert_eq!(put("image/png", forged).await, 403, "forged signature");
    assert_eq!(put("image/png", upload_url.clone()).await, 200);
    let confirm = format!("{photos}/{}/confirm", up["id"]);
    let photo = api
        .expect(200, Method::POST, &confirm, Some(&agent), None)
        .await;
    assert_eq!(
        photo["content_type"], "image/png",
        "read back from the HEAD"
    );
    let url = photo["url"].as_str().unwrap().to_string();
    let got = http().get(&url).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), PNG);
    let key = up["key"].as_str().unwrap().to_string();
    assert_eq!(
        blocking(|| s3.anonymous_get(BUCKET, &key)),
        403,
        "unsigned GET"
    );

    // Both URLs expire (2 s here).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let expired = http().get(&url).send().await.unwrap().status().as_u16();
    assert_eq!(expired, 403, "an expired GET URL");
    assert_eq!(
        put("image/png", upload_url).await,
        403,
        "an expired PUT URL"
    );
    blocking(move || drop(s3));
}

/// Waits until `key` is (`present`) or is not in the bucket.
async fn wait_for_keys(bucket: &Bucket, key: &str, present: bool) {
    let start = Instant::now();
    loop {
        // (A listing's prefix is whole path segments: list the folder, not the key.)
        let found = blocking(|| bucket.keys("photos")).iter().any(|k| k == key);
        if found == present {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{key} still {}",
            if present { "missing" } else { "there" }
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_outage_delays_photo_deletions_and_loses_none() {
    let test = "a_storage_outage_delays_photo_deletions_and_loses_none";
    let Some((s3, bucket)) = moto_with_bucket(test) else {
        return;
    };
    // The API reaches moto through a link that the test cuts and restores: the outage.
    let moto = s3
        .endpoint
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let port = goodgo_testkit::free_port();
    let mut link = connect(port, moto).await;
    let mut env = storage_env(&s3, "300");
    env.push((
        "AWS_ENDPOINT_URL".into(),
        format!("http://127.0.0.1:{port}"),
    ));
    let Some(api) = api_with("photos_outage", &env).await else {
        return;
    };
    let agent = api.user("agent@example.com", "agent").await;
    let id = listing(&api, &agent).await;
    let up = upload(&api, &agent, id, "image/png", PNG.to_vec()).await;
    let key = up["key"].as_str().unwrap().to_string();
    api.expect(
        200,
        Method::POST,
        &format!("/v1/listings/{id}/photos/{}/confirm", up["id"]),
        Some(&agent),
        None,
    )
    .await;

    // The storage goes away; deleting the listing still works, and its object waits.
    link.abort();
    let _ = link.await;
    api.expect(
        204,
        Method::DELETE,
        &format!("/v1/listings/{id}"),
        Some(&agent),
        None,
    )
    .await;
    let start = Instant::now();
    loop {
        let row = api
            .client
            .query_opt(
                "SELECT attempts::int, last_error FROM outbox WHERE topic = 'photo.delete' AND status = 'pending' AND payload->>'key' = $1",
                &[&key],
            )
            .await
            .unwrap()
            .expect("the deletion stays queued");
        let (attempts, error): (i32, Option<String>) = (row.get(0), row.get(1));
        if attempts >= 1 {
            assert!(
                error.unwrap_or_default().contains("photo storage"),
                "the failure is recorded"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "a failed attempt"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Several attempts later, still pending (not given up) while the storage is away.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts: i32 = api
        .scalar(&format!("SELECT attempts::int FROM outbox WHERE topic = 'photo.delete' AND status = 'pending' AND payload->>'key' = '{key}'"))
        .await;
    assert!(attempts >= 2, "{attempts} attempts");
    // The photo's answer to the public is gone already.
    api.expect(
        404,
        Method::GET,
        &format!("/v1/listings/{id}/photos"),
        None,
        None,
    )
    .await;

    assert!(
        blocking(|| bucket.keys("photos")).contains(&key),
        "the object waits"
    );

    // The storage comes back: the deletion goes through.
    link = connect(port, moto).await;
    wait_for_keys(&bucket, &key, false).await;
    let start = Instant::now();
    while api.count(PENDING_DELETIONS).await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the deletion is done"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    link.abort();
    blocking(move || drop((bucket, s3)));
}

/// Forwards connections to loopback `port` to loopback port `to` until aborted; aborting
/// refuses new connections and cuts the open ones, as a network outage does.
async fn connect(port: u16, to: u16) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        // Dropped with the task: every forwarded connection is cut with it.
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photo_routes_answer_503_without_storage() {
    let Some(api) = Api::start("photos_off").await else {
        return;
    };
    let agent = api.user("agent@example.com", "agent").await;
    let id = listing(&api, &agent).await;
    let a = api
        .json(
            Method::POST,
            &format!("/v1/listings/{id}/photos"),
            Some(&agent),
            Some(json!({"content_type": "image/png"})),
        )
        .await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.json()["type"], "/problems/photos-disabled");
    assert_eq!(a.headers["content-type"], "application/problem+json");
    let a = api
        .json(
            Method::GET,
            &format!("/v1/listings/{id}/photos"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(a.status, 503);
    // The listing itself is unaffected.
    api.expect(
        204,
        Method::DELETE,
        &format!("/v1/listings/{id}"),
        Some(&agent),
        None,
    )
    .await;
}
