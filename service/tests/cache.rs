//! The Redis cache and the shared rate limit against a real `redis-server` and a real
//! PostgreSQL: a hit after a miss, invalidation on write (exactly the searches a change
//! touches), Redis killed and frozen mid-test (the API keeps serving from PostgreSQL,
//! readiness stays up, errors are counted and logged once), the auth limit held across two
//! API instances, and a property test interleaving writes and reads that never sees a
//! stale answer.
#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a failed setup step is a failed test

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Api, JWT, migrated};
use goodgo_testkit::http::{Http, Method};
use goodgo_testkit::redis::RedisServer;
use goodgo_testkit::{ChildGuard, Signal, TestDb, free_port};
use serde_json::{Value, json};

/// Another API server, in this process, on the database at `url` (already migrated).
async fn serve(url: &str, extra: &[(&str, &str)]) -> u16 {
    let mut vars: Vec<(String, String)> = vec![
        ("GOODGO_DATABASE_URL".into(), url.into()),
        ("GOODGO_JWT_SECRET".into(), JWT.into()),
        ("GOODGO_AUTH_RATE_LIMIT".into(), "100000".into()),
        ("GOODGO_API_REQUEST_TIMEOUT_MS".into(), "60000".into()),
    ];
    for (k, v) in extra {
        vars.retain(|(n, _)| n != k);
        vars.push((k.to_string(), v.to_string()));
    }
    let config = goodgo_api::Config::from_env(&move |k| {
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let pool = goodgo_api::pool(&config).unwrap();
    let app = goodgo_api::router(goodgo_api::state(config, pool));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    port
}

/// A blocking request to the server on `port`: (status, body).
fn call(
    port: u16,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let body = body.map(|b| b.to_string());
    let a = Http::local(port)
        .send(method, path, &headers, body.as_deref())
        .expect("an answer");
    (a.status, a.body)
}

/// [`call`] on a runtime's blocking pool.
/// An anonymous GET of `path`, off the runtime.
async fn get(port: u16, path: &str) -> (u16, String) {
    acall(port, Method::GET, path, None, None).await
}

async fn acall(
    port: u16,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let (path, token) = (path.to_string(), token.map(str::to_string));
    tokio::task::spawn_blocking(move || call(port, method, &path, token.as_deref(), body))
        .await
        .unwrap()
}

/// The value of the sample `name` (with its labels, as written) in `/metrics`; 0 when absent.
fn metric(port: u16, name: &str) -> f64 {
    let (status, text) = call(port, Method::GET, "/metrics", None, None);
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn ametric(port: u16, name: &'static str) -> f64 {
    tokio::task::spawn_blocking(move || metric(port, name))
        .await
        .unwrap()
}

const SEARCH_HITS: &str = "goodgo_cache_hits_total{cache=\"search\"}";
const SEARCH_MISSES: &str = "goodgo_cache_misses_total{cache=\"search\"}";
const LISTING_HITS: &str = "goodgo_cache_hits_total{cache=\"listing\"}";
const LISTING_MISSES: &str = "goodgo_cache_misses_total{cache=\"listing\"}";

fn listing(city: &str, title: &str) -> Value {
    json!({"title": title, "price": 100000, "currency": "USD", "listing_type": "sale",
           "property_type": "apartment", "bedrooms": 2, "bathrooms": 1, "area_m2": "70", "city": city})
}

/// A published listing of `agent` in `city`: its id.
async fn published(api: &Api, agent: &str, city: &str, title: &str) -> i64 {
    let created = api
        .expect(
            201,
            Method::POST,
            "/v1/listings",
            Some(agent),
            Some(listing(city, title)),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/v1/listings/{id}/publish");
    api.expect(200, Method::POST, &path, Some(agent), None)
        .await;
    id
}

fn titles(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn hit_after_miss_and_exact_invalidation_on_write() {
    let Some(redis) = RedisServer::start("cache_hit_after_miss") else {
        return;
    };
    let url = redis.url();
    let Some(api) = Api::start_with("cache_hits", &[("GOODGO_REDIS_URL", url.as_str())]).await
    else {
        return;
    };
    let (agent, _buyer, admin) = api.accounts().await;
    let port = api.port;
    let hue = published(&api, &agent, "Hue", "Old town house").await;
    published(&api, &agent, "Hanoi", "Lake view flat").await;

    // A miss, then a hit with the same page.
    let first = get(port, "/v1/listings/search?city=Hue").await;
    assert_eq!(first.0, 200);
    assert_eq!(titles(&first.1), ["Old town house"]);
    assert_eq!(ametric(port, SEARCH_MISSES).await, 1.0);
    assert_eq!(ametric(port, SEARCH_HITS).await, 0.0);
    let second = get(port, "/v1/listings/search?city=Hue").await;
    assert_eq!(second, first);
    assert_eq!(ametric(port, SEARCH_HITS).await, 1.0);
    // Another page of the same search is another entry.
    get(port, "/v1/listings/search?city=Hue&limit=5").await;
    assert_eq!(ametric(port, SEARCH_MISSES).await, 2.0);

    // The listing: a miss, then a hit; who may see it is still decided per request.
    let path = format!("/v1/listings/{hue}");
    let one = acall(port, Method::GET, &path, None, None).await;
    assert_eq!(one.0, 200);
    assert_eq!(acall(port, Method::GET, &path, None, None).await, one);
    assert_eq!(ametric(port, LISTING_MISSES).await, 1.0);
    assert_eq!(ametric(port, LISTING_HITS).await, 1.0);

    // Warm Hanoi's search and the search of all cities.
    get(port, "/v1/listings/search?city=Hanoi").await;
    acall(port, Method::GET, "/v1/listings/search", None, None).await;
    let (hits, misses) = (
        ametric(port, SEARCH_HITS).await,
        ametric(port, SEARCH_MISSES).await,
    );

    // A change in Hue: Hue's search and all cities' are fresh at once; Hanoi's stays cached.
    let body = json!({"title": "Restored town house"});
    api.expect(200, Method::PATCH, &path, Some(&agent), Some(body))
        .await;
    let hue_now = get(port, "/v1/listings/search?city=Hue").await;
    assert_eq!(titles(&hue_now.1), ["Restored town house"]);
    let all = acall(port, Method::GET, "/v1/listings/search", None, None).await;
    assert!(
        titles(&all.1).contains(&"Restored town house".to_string()),
        "{}",
        all.1
    );
    get(port, "/v1/listings/search?city=Hanoi").await;
    assert_eq!(
        ametric(port, SEARCH_MISSES).await,
        misses + 2.0,
        "Hue and all cities"
    );
    assert_eq!(ametric(port, SEARCH_HITS).await, hits + 1.0, "Hanoi");
    let one = acall(port, Method::GET, &path, None, None).await;
    assert!(one.1.contains("Restored town house"), "{}", one.1);

    // Moving the listing to Da Nang takes it out of Hue's search and into Da Nang's.
    get(port, "/v1/listings/search?city=Da%20Nang").await;
    let body = json!({"city": "Da Nang"});
    api.expect(200, Method::PATCH, &path, Some(&agent), Some(body))
        .await;
    let hue_now = get(port, "/v1/listings/search?city=Hue").await;
    assert!(titles(&hue_now.1).is_empty(), "{}", hue_now.1);
    let dn = get(port, "/v1/listings/search?city=Da%20Nang").await;
    assert_eq!(titles(&dn.1), ["Restored town house"]);

    // Moderation and archiving take it out of search and hide it from others at once.
    let body = json!({"reason": "duplicate"});
    let unpublish = format!("/v1/admin/listings/{hue}/unpublish");
    api.expect(200, Method::POST, &unpublish, Some(&admin), Some(body))
        .await;
    let dn = get(port, "/v1/listings/search?city=Da%20Nang").await;
    assert!(titles(&dn.1).is_empty(), "{}", dn.1);
    assert_eq!(acall(port, Method::GET, &path, None, None).await.0, 404);
    let owner_view = acall(port, Method::GET, &path, Some(&agent), None).await;
    assert_eq!(owner_view.0, 200);
    assert!(owner_view.1.contains("duplicate"), "{}", owner_view.1);
    let publish = format!("/v1/listings/{hue}/publish");
    api.expect(200, Method::POST, &publish, Some(&agent), None)
        .await;
    let dn = get(port, "/v1/listings/search?city=Da%20Nang").await;
    assert_eq!(titles(&dn.1), ["Restored town house"]);
    api.expect(204, Method::DELETE, &path, Some(&agent), None)
        .await;
    assert_eq!(
        acall(port, Method::GET, &path, Some(&agent), None).await.0,
        404
    );
    let dn = get(port, "/v1/listings/search?city=Da%20Nang").await;
    assert!(titles(&dn.1).is_empty(), "{}", dn.1);

    // A draft's change touches no search.
    let draft = api
        .expect(
            201,
            Method::POST,
            "/v1/listings",
            Some(&agent),
            Some(listing("Hanoi", "Draft")),
        )
        .await;
    let (hits, misses) = (
        ametric(port, SEARCH_HITS).await,
        ametric(port, SEARCH_MISSES).await,
    );
    let draft_path = format!("/v1/listings/{}", draft["id"]);
    api.expect(
        200,
        Method::PATCH,
        &draft_path,
        Some(&agent),
        Some(json!({"title": "Draft 2"})),
    )
    .await;
    get(port, "/v1/listings/search?city=Hanoi").await;
    assert_eq!(ametric(port, SEARCH_HITS).await, hits + 1.0);
    assert_eq!(ametric(port, SEARCH_MISSES).await, misses);
    assert_eq!(
        ametric(port, "goodgo_redis_errors_total{use=\"cache\"}").await,
        0.0
    );
    assert_eq!(ametric(port, "goodgo_redis_up").await, 1.0);
    drop(redis);
}

/// `path` on the server on `port` answers `expected`, the second time from the cache.
async fn cached_again(port: u16, path: &str, expected: &(u16, String)) {
    assert_eq!(&acall(port, Method::GET, path, None, None).await, expected);
    let hits = ametric(port, SEARCH_HITS).await;
    assert_eq!(&acall(port, Method::GET, path, None, None).await, expected);
    assert_eq!(
        ametric(port, SEARCH_HITS).await,
        hits + 1.0,
        "{path} cached again"
    );
}

/// Lines of `logs` that contain `text`.
fn lines_with(logs: &str, text: &str) -> usize {
    logs.lines().filter(|l| l.contains(text)).count()
}

#[tokio::test]
async fn redis_killed_or_frozen_mid_test_the_api_keeps_serving() {
    let Some(mut redis) = RedisServer::start("cache_redis_killed") else {
        return;
    };
    let Some(api) = Api::start("cache_killed").await else {
        return;
    };
    let (agent, _, _) = api.accounts().await;
    let id = published(&api, &agent, "Hue", "Garden villa").await;
    // The real binary, so that its logs can be read.
    let port = free_port();
    let mut child = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_goodgo-api"))
            .env("GOODGO_DATABASE_URL", &api.db.url)
            .env("GOODGO_JWT_SECRET", JWT)
            .env("GOODGO_API_ADDR", format!("127.0.0.1:{port}"))
            .env("GOODGO_REDIS_URL", redis.url())
            .env("GOODGO_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = child.0.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut logs = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut logs).unwrap();
        logs
    });
    tokio::task::spawn_blocking(move || {
        Http::local(port).wait_for_ok("/healthz", Duration::from_secs(60))
    })
    .await
    .unwrap()
    .unwrap();
    let search = "/v1/listings/search?city=Hue";
    let path = format!("/v1/listings/{id}");
    let warm = acall(port, Method::GET, search, None, None).await;
    assert_eq!(acall(port, Method::GET, search, None, None).await, warm);
    assert_eq!(ametric(port, SEARCH_HITS).await, 1.0);

    let began = std::time::Instant::now();
    // Killed: every answer still comes, from PostgreSQL; readiness stays up; errors counted.
    redis.kill();
    for _ in 0..20 {
        assert_eq!(acall(port, Method::GET, search, None, None).await, warm);
        assert_eq!(acall(port, Method::GET, &path, None, None).await.0, 200);
    }
    assert_eq!(acall(port, Method::GET, "/readyz", None, None).await.0, 200);
    let body = json!({"title": "Garden villa, new roof"});
    let (status, _) = acall(port, Method::PATCH, &path, Some(&agent), Some(body)).await;
    assert_eq!(status, 200, "writes go on");
    let now = acall(port, Method::GET, search, None, None).await;
    assert_eq!(titles(&now.1), ["Garden villa, new roof"]);
    // Logins are limited per process meanwhile.
    let login = json!({"email": "nobody@example.com", "password": "whatever-long"});
    let (status, _) = acall(port, Method::POST, "/v1/auth/login", None, Some(login)).await;
    assert_eq!(status, 401);
    assert!(ametric(port, "goodgo_redis_errors_total{use=\"cache\"}").await >= 1.0);
    assert!(ametric(port, "goodgo_cache_bypassed_total{cache=\"search\"}").await >= 20.0);
    assert_eq!(ametric(port, "goodgo_redis_up").await, 0.0);

    // Back (empty): within a few pauses of a second the cache is used again.
    redis.restart();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(acall(port, Method::GET, search, None, None).await, now);
        if ametric(port, "goodgo_redis_up").await == 1.0 {
            break;
        }
    }
    assert_eq!(ametric(port, "goodgo_redis_up").await, 1.0);
    cached_again(port, search, &now).await;

    // Frozen (SIGSTOP): commands time out; answers still come, right, and in time.
    let pid = redis.pid().unwrap();
    assert!(goodgo_testkit::signal(pid, Signal::STOP));
    let start = std::time::Instant::now();
    assert_eq!(acall(port, Method::GET, search, None, None).await, now);
    assert_eq!(acall(port, Method::GET, &path, None, None).await.0, 200);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(goodgo_testkit::signal(pid, Signal::CONT));
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // Restarted from a snapshot older than a change: the snapshot holds the old page and
    // the old counters, and the change's invalidation never reached Redis. The page served
    // after the restart must be the new one (the epoch is bumped first).
    for _ in 0..20 {
        let hits = ametric(port, SEARCH_HITS).await;
        assert_eq!(acall(port, Method::GET, search, None, None).await, now);
        if ametric(port, SEARCH_HITS).await == hits + 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(redis.command(&["SAVE"]).as_deref(), Some("+OK"));
    redis.kill();
    let body = json!({"title": "Garden villa, sold"});
    let (status, _) = acall(port, Method::PATCH, &path, Some(&agent), Some(body)).await;
    assert_eq!(status, 200);
    redis.restart();
    assert_eq!(
        redis.command(&["DBSIZE"]).map(|n| n != ":0"),
        Some(true),
        "the snapshot is back"
    );
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = acall(port, Method::GET, search, None, None).await;
        assert_eq!(
            titles(&after.1),
            ["Garden villa, sold"],
            "never the stale page"
        );
        let one = acall(port, Method::GET, &path, None, None).await;
        assert!(one.1.contains("Garden villa, sold"), "{}", one.1);
        if ametric(port, "goodgo_redis_up").await == 1.0 {
            break;
        }
    }
    assert_eq!(ametric(port, "goodgo_redis_up").await, 1.0);
    let after = acall(port, Method::GET, search, None, None).await;
    assert_eq!(titles(&after.1), ["Garden villa, sold"]);
    cached_again(port, search, &after).await;

    child.signal(Signal::TERM);
    let _ = child.0.wait();
    let logs = logs.join().unwrap();
    // Three outages: the first logged at once, the others within the 30 s interval only
    // counted (a slow run may pass the interval once); each end logged once.
    let logged = lines_with(&logs, "redis is unavailable");
    let limit = 1 + usize::from(began.elapsed() >= Duration::from_secs(30));
    assert!((1..=limit).contains(&logged), "{logged} lines: {logs}");
    assert_eq!(lines_with(&logs, "redis answers again"), 3, "{logs}");
}

#[tokio::test]
async fn the_auth_limit_holds_across_two_replicas() {
    let Some(mut redis) = RedisServer::start("cache_rate_limit") else {
        return;
    };
    let Some(api) = Api::start("cache_rate").await else {
        return;
    };
    // One a minute: a burst of three (the floor), whichever replica is asked.
    let url = redis.url();
    let extra = [
        ("GOODGO_REDIS_URL", url.as_str()),
        ("GOODGO_AUTH_RATE_LIMIT", "1"),
    ];
    let a = serve(&api.db.url, &extra).await;
    let b = serve(&api.db.url, &extra).await;
    let login = || Some(json!({"email": "x@example.com", "password": "whatever-long"}));
    let mut statuses = Vec::new();
    for port in [a, b, a, b, a, b] {
        statuses.push(
            acall(port, Method::POST, "/v1/auth/login", None, login())
                .await
                .0,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
    // Redis gone: each replica falls back to a limit of its own, and keeps answering.
    redis.kill();
    let mut statuses = Vec::new();
    for port in [a, a, a, a, b] {
        statuses.push(
            acall(port, Method::POST, "/v1/auth/login", None, login())
                .await
                .0,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 401]);
    assert!(ametric(a, "goodgo_redis_errors_total{use=\"rate_limit\"}").await >= 1.0);
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Step {
    /// Listing `n` gets title `t` and city `c`.
    Edit {
        n: usize,
        t: u8,
        c: usize,
    },
    Publish(usize),
    Archive(usize),
    Search(Option<usize>),
    Read(usize),
}

const CITIES: [&str; 3] = ["Hue", "Hanoi", "Da Nang"];

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (0..4usize, any::<u8>(), 0..3usize).prop_map(|(n, t, c)| Step::Edit { n, t, c }),
        (0..4usize).prop_map(Step::Publish),
        (0..4usize).prop_map(Step::Archive),
        proptest::option::of(0..3usize).prop_map(Step::Search),
        (0..4usize).prop_map(Step::Read),
    ]
}

/// Interleaved writes and reads on the cached API, with a reader hammering it meanwhile (so
/// pages are filled while changes commit): after every acknowledged write, every cached
/// answer equals what an API without a cache answers on the same database.
#[test]
fn the_cache_never_serves_a_stale_answer_after_a_write() {
    use proptest::prelude::*;
    let Some(redis) = RedisServer::start("cache_proptest") else {
        return;
    };
    let Some(db) = TestDb::create("cache_proptest") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = redis.url();
    let (cached, plain) = rt.block_on(async {
        let _client = migrated(&db.url).await;
        let cached = serve(&db.url, &[("GOODGO_REDIS_URL", url.as_str())]).await;
        (cached, serve(&db.url, &[]).await)
    });
    // Two agents with two listings each: within the free plan's quota of three.
    let mut agents = Vec::new();
    let mut ids = Vec::new();
    for a in 0..2 {
        let body = json!({"email": format!("agent{a}@example.com"), "password": "a-long-password", "role": "agent"});
        let (s, b) = call(cached, Method::POST, "/v1/auth/register", None, Some(body));
        assert_eq!(s, 201, "{b}");
        let token: Value = serde_json::from_str(&b).unwrap();
        let token = token["access_token"].as_str().unwrap().to_string();
        for city in &CITIES[..2] {
            let (s, b) = call(
                cached,
                Method::POST,
                "/v1/listings",
                Some(&token),
                Some(listing(city, "start")),
            );
            assert_eq!(s, 201, "{b}");
            let v: Value = serde_json::from_str(&b).unwrap();
            ids.push(v["id"].as_i64().unwrap());
            agents.push(token.clone());
        }
    }
    // The racing reader.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, ids) = (stop.clone(), ids.clone());
        std::thread::spawn(move || {
            let http = Http::keep_alive(&format!("127.0.0.1:{cached}"), Duration::from_secs(30));
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let path = match i % 5 {
                    0 => "/v1/listings/search".to_string(),
                    1..=3 => format!(
                        "/v1/listings/search?city={}",
                        CITIES[i % 3].replace(' ', "%20")
                    ),
                    _ => format!("/v1/listings/{}", ids[i % ids.len()]),
                };
                let _ = http.get(&path);
                i += 1;
            }
        })
    };
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let result = proptest::test_runner::TestRunner::new(config).run(
        &proptest::collection::vec(step(), 1..16),
        |steps| {
            for s in steps {
                match s {
                    Step::Edit { n, t, c } => {
                        let body = json!({"title": format!("title {t}"), "city": CITIES[c]});
                        let path = format!("/v1/listings/{}", ids[n]);
                        let (status, b) =
                            call(cached, Method::PATCH, &path, Some(&agents[n]), Some(body));
                        prop_assert_eq!(status, 200, "{}", b);
                    }
                    Step::Publish(n) | Step::Archive(n) => {
                        let action = if matches!(s, Step::Publish(_)) {
                            "publish"
                        } else {
                            "archive"
                        };
                        let path = format!("/v1/listings/{}/{action}", ids[n]);
                        let (status, b) = call(cached, Method::POST, &path, Some(&agents[n]), None);
                        prop_assert_eq!(status, 200, "{}", b);
                    }
                    Step::Search(city) => {
                        let path = match city {
                            Some(c) => format!(
                                "/v1/listings/search?city={}",
                                CITIES[c].replace(' ', "%20")
                            ),
                            None => "/v1/listings/search".to_string(),
                        };
                        let got = call(cached, Method::GET, &path, None, None);
                        let truth = call(plain, Method::GET, &path, None, None);
                        prop_assert_eq!(got, truth, "{}", path);
                    }
                    Step::Read(n) => {
                        let path = format!("/v1/listings/{}", ids[n]);
                        for token in [None, Some(agents[n].as_str())] {
                            let got = call(cached, Method::GET, &path, token, None);
                            let truth = call(plain, Method::GET, &path, token, None);
                            prop_assert_eq!(got, truth, "{}", path);
                        }
                    }
                }
            }
            Ok(())
        },
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().unwrap();
    let hits = metric(cached, SEARCH_HITS) + metric(cached, LISTING_HITS);
    drop(rt);
    drop(redis);
    result.unwrap();
    assert!(hits > 0.0, "the cache was used");
}
