//! Plans, checkout and signed payment webhooks against a real PostgreSQL over real HTTP
//! (the router served on a loopback port, the test kit's client): every kind of bad
//! signature refused with no state change, replays and concurrent deliveries applied once,
//! secret rotation, the authorisation of the new routes, and a statistical timing test of
//! the signature comparison that a naive comparison fails.
#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a failed setup step is a failed test

use std::time::Instant;

use goodgo_api::payments::{SignedWebhooks, tags_match};
use goodgo_testkit::http::{Http, Method};
use serde_json::{Value, json};

mod common;

use common::{Api, NEW, OLD, checkout, event, now, signed};

impl Api {
    /// Everything a webhook can change, as one comparable value.
    async fn state(&self) -> Value {
        let row = self
            .client
            .query_one(
                "SELECT (SELECT coalesce(json_agg(json_build_object('s', status, 'sub', subscription_id) ORDER BY id), '[]')::text FROM payments), \
                        (SELECT coalesce(json_agg(json_build_object('s', status, 'plan', plan, 'end', current_period_end) ORDER BY id), '[]')::text FROM subscriptions), \
                        (SELECT count(*) FROM webhook_events), \
                        (SELECT count(*) FROM audit_log WHERE entity = 'payment')",
                &[],
            )
            .await
            .unwrap();
        json!({
            "payments": serde_json::from_str::<Value>(row.get(0)).unwrap(),
            "subscriptions": serde_json::from_str::<Value>(row.get(1)).unwrap(),
            "events": row.get::<_, i64>(2),
            "audit": row.get::<_, i64>(3),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_are_public_and_checkout_is_for_agents_at_the_plans_price() {
    let Some(api) = Api::start("pay_checkout").await else {
        return;
    };
    let (agent, buyer, admin) = api.accounts().await;

    // Plans: public, the ones on offer only (the legacy 'basic' plan is not offered).
    for token in [None, Some(buyer.as_str()), Some(agent.as_str())] {
        let plans = api.expect(200, Method::GET, "/v1/plans", token, None).await;
        let items = plans["items"].as_array().unwrap();
        let ids: Vec<&str> = items.iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["free", "pro", "agency"]);
    }

    // Authorisation: anonymous 401, buyer and admin 403, agent 201.
    let pro = Some(json!({"plan": "pro"}));
    let (buyer, admin) = (Some(buyer.as_str()), Some(admin.as_str()));
    for (token, status) in [(None, 401), (buyer, 403), (admin, 403)] {
        api.expect(status, Method::POST, "/v1/checkout", token, pro.clone())
            .await;
    }
    let c = api
        .expect(201, Method::POST, "/v1/checkout", Some(&agent), pro)
        .await;
    assert_eq!(
        (
            c["plan"].as_str(),
            c["amount"].as_str(),
            c["currency"].as_str(),
            c["status"].as_str()
        ),
        (Some("pro"), Some("29.00"), Some("USD"), Some("pending"))
    );
    let reference = c["reference"].as_str().unwrap();
    let row = api
        .client
        .query_one(
            "SELECT amount::text, status, plan FROM payments WHERE provider_event_id = $1",
            &[&reference],
        )
        .await
        .unwrap();
    let got: (String, String, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(got, ("29.00".into(), "pending".into(), "pro".into()));

    // The client never sets the amount; free, retired and unknown plans have no checkout.
    let cheap = json!({"plan": "pro", "amount": "0.01"});
    api.expect(422, Method::POST, "/v1/checkout", Some(&agent), Some(cheap))
        .await;
    for plan in ["free", "basic", "gold", "", "p\u{0}"] {
        let body = Some(json!({"plan": plan}));
        let p = api
            .expect(422, Method::POST, "/v1/checkout", Some(&agent), body)
            .await;
        assert!(p["errors"]["plan"].is_array(), "{plan}: {p}");
    }
    let audit = api
        .count("audit_log WHERE action = 'payment.checkout'")
        .await;
    assert_eq!(audit, 1, "one checkout, one audit entry");
}

/// A new API whose agent has started a checkout of `plan`: the API and the checkout's
/// reference.
async fn checked_out(name: &str, plan: &str) -> Option<(Api, String)> {
    let api = Api::start(name).await?;
    let agent = api.user("agent@example.com", "agent").await;
    let reference = checkout(&api, &agent, plan).await;
    Some((api, reference))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_are_refused_and_change_nothing() {
    let Some((api, reference)) = checked_out("pay_refused", "pro").await else {
        return;
    };
    let body = event("evt_refused_1", "payment.succeeded", &reference);
    let before = api.state().await;
    let t = now();
    let good = SignedWebhooks::sign(NEW.as_bytes(), t, body.as_bytes());
    let forged = format!("t={t},v1={}", "ab".repeat(32));
    let wrong_secret = SignedWebhooks::sign(
        b"whsec_Wr0ngz7LmN2vB8wR4tY6uP0aS5dF1gHjK",
        t,
        body.as_bytes(),
    );
    let old = SignedWebhooks::sign(NEW.as_bytes(), t - 301, body.as_bytes());
    let future = SignedWebhooks::sign(NEW.as_bytes(), t + 600, body.as_bytes());
    let last_char_flipped = {
        let mut s = good.clone();
        let last = s.pop().unwrap();
        s.push(if last == '0' { '1' } else { '0' });
        s
    };
    let altered = body.replace("evt_refused_1", "evt_refused_2");
    let cases: Vec<(&str, Option<String>, &str, u16)> = vec![
        ("no signature", None, &body, 401),
        ("malformed", Some("sha256=abc".into()), &body, 400),
        ("forged", Some(forged), &body, 401),
        ("wrong secret", Some(wrong_secret), &body, 401),
        ("old timestamp", Some(old), &body, 401),
        ("future timestamp", Some(future), &body, 401),
        (
            "last character changed",
            Some(last_char_flipped),
            &body,
            401,
        ),
        (
            "body changed after signing",
            Some(good.clone()),
            &altered,
            401,
        ),
    ];
    for (what, signature, body, status) in cases {
        let a = api.webhook(signature, body).await;
        assert_eq!(a.status, status, "{what}: {}", a.body);
        assert_eq!(
            a.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{what}"
        );
        assert_eq!(api.state().await, before, "{what}: nothing changed");
    }
    // A signed event naming no checkout is refused too, and can be delivered again later.
    let stray = event("evt_stray", "payment.succeeded", "chk_nosuchreference");
    let a = api.webhook(signed(NEW, &stray), &stray).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(
        api.state().await,
        before,
        "unknown reference: nothing changed"
    );

    // The genuine delivery goes through.
    let a = api.webhook(Some(good), &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["status"], "applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_settle_payments_and_drive_the_subscription_once_each() {
    let Some((api, reference)) = checked_out("pay_events", "pro").await else {
        return;
    };

    let paid = event("evt_paid", "payment.succeeded", &reference);
    assert_eq!(api.deliver(NEW, &paid).await, "applied");
    // The period end is computed by the database: one plan period from now.
    let row = api
        .client
        .query_one(
            "SELECT s.status, s.plan, s.current_period_end BETWEEN now() + p.period - interval '1 minute' AND now() + p.period, \
                    (SELECT status FROM payments WHERE provider_event_id = $1) \
             FROM subscriptions s JOIN plans p ON p.id = s.plan",
            &[&reference],
        )
        .await
        .unwrap();
    let got: (String, String, bool, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        got,
        ("active".into(), "pro".into(), true, "succeeded".into())
    );
    let after_paid = api.state().await;

    // A replay (freshly signed, same event id) is a 200 with no second effect.
    assert_eq!(api.deliver(NEW, &paid).await, "duplicate");
    assert_eq!(api.state().await, after_paid);

    // Rotation: the older secret still verifies. A renewal adds one period to the end.
    let renewed = event("evt_renewed", "subscription.renewed", &reference);
    assert_eq!(api.deliver(OLD, &renewed).await, "applied");
    let extended: bool = api
        .scalar(
            "SELECT current_period_end BETWEEN now() + interval '2 months' - interval '1 minute' AND now() + interval '2 months' FROM subscriptions",
        )
        .await;
    assert!(extended, "two periods paid");

    // A transition that does not apply (a failure after success) is acknowledged, ignored.
    let failed = event("evt_failed_late", "payment.failed", &reference);
    assert_eq!(api.deliver(NEW, &failed).await, "ignored");

    // A refund cancels the subscription; the audit entries say what changed.
    let refunded = event("evt_refunded", "payment.refunded", &reference);
    assert_eq!(api.deliver(NEW, &refunded).await, "applied");
    let rows = api
        .client
        .query(
            "SELECT action, data->'before'->>'payment', data->'after'->>'payment', data->'after'->>'subscription', actor_id IS NULL, request_id IS NOT NULL \
             FROM audit_log WHERE entity = 'payment' AND action <> 'payment.checkout' ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let audit: Vec<(String, String, String, String, bool, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let e = |a: &str, b: &str, c: &str, d: &str| {
        (
            a.to_string(),
            b.to_string(),
            c.to_string(),
            d.to_string(),
            true,
            true,
        )
    };
    assert_eq!(
        audit,
        [
            e("payment.succeeded", "pending", "succeeded", "active"),
            e("subscription.renewed", "succeeded", "succeeded", "active"),
            e("payment.refunded", "succeeded", "refunded", "canceled"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_delivered_five_times_at_once_is_applied_once() {
    let Some((api, reference)) = checked_out("pay_concurrent", "agency").await else {
        return;
    };
    let body = event("evt_concurrent", "payment.succeeded", &reference);
    let signature = signed(NEW, &body).unwrap();
    let port = api.port;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(5));
    let threads: Vec<_> = (0..5)
        .map(|_| {
            let (body, signature, barrier) = (body.clone(), signature.clone(), barrier.clone());
            std::thread::spawn(move || {
                let http = Http::local(port);
                barrier.wait();
                http.send(
                    Method::POST,
                    "/v1/webhooks/payments",
                    &[("goodgo-signature", &signature)],
                    Some(&body),
                )
                .expect("an answer")
            })
        })
        .collect();
    let mut outcomes: Vec<String> = Vec::new();
    for t in threads {
        let a = tokio::task::spawn_blocking(move || t.join().unwrap())
            .await
            .unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
        outcomes.push(a.json()["status"].as_str().unwrap().to_string());
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            "applied",
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate"
        ]
    );
    let row = api
        .client
        .query_one(
            "SELECT (SELECT count(*) FROM subscriptions), (SELECT count(*) FROM webhook_events), \
                    (SELECT count(*) FROM audit_log WHERE action = 'payment.succeeded'), \
                    (SELECT current_period_end BETWEEN now() + interval '1 month' - interval '1 minute' AND now() + interval '1 month' FROM subscriptions)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2),
            row.get::<_, bool>(3)
        ),
        (1, 1, 1, true),
        "one subscription of one period, one event, one audit entry"
    );
}

/// What a careless implementation does: stop at the first differing byte.
fn naive_match(expected: &[u8], given: &[u8]) -> bool {
    if expected.len() != given.len() {
        return false;
    }
    for (a, b) in expected.iter().zip(given) {
        if a != b {
            return false;
        }
    }
    true
}

/// The two-sample Kolmogorov–Smirnov statistic: the largest distance between the samples'
/// empirical distribution functions.
fn ks_statistic(a: &mut [f64], b: &mut [f64]) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// Times `compare` on wrong signatures differing from the right one in the first character
/// vs in the last, interleaved (so load on the machine hits both alike); true when the
/// two distributions are distinguishable at α = 0.001.
fn distinguishable(compare: fn(&[u8], &[u8]) -> bool) -> (bool, f64) {
    let expected = SignedWebhooks::sign(NEW.as_bytes(), 1_900_000_000, b"{}");
    let expected = expected.split_once("v1=").unwrap().1.as_bytes().to_vec();
    let mut first = expected.clone();
    first[0] ^= 1;
    let mut last = expected.clone();
    *last.last_mut().unwrap() ^= 1;
    const SAMPLES: usize = 1500;
    const CALLS: usize = 300;
    let time = |given: &[u8]| {
        let start = Instant::now();
        for _ in 0..CALLS {
            std::hint::black_box(compare(
                std::hint::black_box(&expected),
                std::hint::black_box(given),
            ));
        }
        start.elapsed().as_nanos() as f64
    };
    let (mut a, mut b) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    for _ in 0..SAMPLES {
        a.push(time(&first));
        b.push(time(&last));
    }
    let d = ks_statistic(&mut a, &mut b);
    // c(α = 0.001) = 1.95; n = m = SAMPLES.
    let critical = 1.95 * (2.0 / SAMPLES as f64).sqrt();
    (d > critical, d)
}

#[test]
fn the_signature_comparison_does_not_leak_where_a_wrong_signature_differs() {
    // The test must be able to fail: a naive comparison is caught.
    let (naive, d_naive) = distinguishable(naive_match);
    assert!(
        naive,
        "the timing test cannot see a naive comparison (D = {d_naive:.3})"
    );
    // The real one is not, in at least one of three runs (a loaded machine can make one run
    // drift; a real leak shows in every run, as the naive one does).
    let runs: Vec<(bool, f64)> = (0..3).map(|_| distinguishable(tags_match)).collect();
    assert!(
        runs.iter().any(|(leak, _)| !leak),
        "the constant-time comparison looks distinguishable: {runs:?}"
    );
    eprintln!("KS D: naive {d_naive:.3}, constant-time {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_hold_at_the_boundary_and_a_cancellation_unpublishes_the_oldest() {
    let Some(api) = Api::start("pay_quota").await else {
        return;
    };
    let (agent, buyer, admin) = api.accounts().await;
    // The agent's requests, without a body: the answer's JSON, once its status is checked.
    let as_agent = async |status: u16, method: Method, path: &str| {
        api.expect(status, method, path, Some(&agent), None).await
    };
    // The agent's subscription, once it says the plan, status, quota and active listings
    // expected.
    let subscription = async |expected| {
        let s = as_agent(200, Method::GET, "/v1/me/subscription").await;
        assert_eq!(usage(&s), expected, "{s}");
        s
    };
    let mut ids = Vec::new();
    for i in 0..4 {
        let body = json!({"title": format!("Flat number {i}"), "price": 1000 + i, "listing_type": "sale",
            "property_type": "apartment", "area_m2": "50", "city": "Da Nang"});
        let listing = api
            .expect(201, Method::POST, "/v1/listings", Some(&agent), Some(body))
            .await;
        ids.push(listing["id"].as_i64().unwrap());
    }
    let publish = |id: i64| format!("/v1/listings/{id}/publish");
    // The free plan: 3 active listings. The third fits, the fourth is 402 naming the quota.
    for id in &ids[..3] {
        as_agent(200, Method::POST, &publish(*id)).await;
    }
    let p = as_agent(402, Method::POST, &publish(ids[3])).await;
    assert_eq!(p["type"], "/problems/quota-exceeded");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("free plan allows 3 active listings"),
        "{p}"
    );
    // Publishing an active listing again is not one more.
    as_agent(200, Method::POST, &publish(ids[0])).await;
    // Archive one, and the fourth fits.
    let archive = format!("/v1/listings/{}/archive", ids[1]);
    as_agent(200, Method::POST, &archive).await;
    as_agent(200, Method::POST, &publish(ids[3])).await;

    subscription((Some("free"), Some("none"), Some(3), Some(3))).await;

    // Pro: 25. The archived one can be published again (4 active).
    let reference = checkout(&api, &agent, "pro").await;
    let paid = event("evt_quota_paid", "payment.succeeded", &reference);
    assert_eq!(api.deliver(NEW, &paid).await, "applied");
    as_agent(200, Method::POST, &publish(ids[1])).await;
    let s = subscription((Some("pro"), Some("active"), Some(25), Some(4))).await;
    assert!(s["current_period_end"].is_string(), "{s}");

    // Authorisation of the subscription routes: anonymous 401, buyer and admin 403.
    let cancel = "/v1/me/subscription/cancel";
    for (method, path) in [(Method::GET, "/v1/me/subscription"), (Method::POST, cancel)] {
        for (token, status) in [(None, 401), (Some(&buyer), 403), (Some(&admin), 403)] {
            let token = token.map(String::as_str);
            api.expect(status, method.clone(), path, token, None).await;
        }
    }

    // Cancel: back to the free plan's 3; the oldest published of the 4 is unpublished, not deleted.
    let s = as_agent(200, Method::POST, cancel).await;
    assert_eq!(
        usage(&s),
        (Some("free"), Some("canceled"), Some(3), Some(3)),
        "{s}"
    );
    assert_eq!(
        s["unpublished"],
        json!([ids[0]]),
        "the oldest published goes first: {s}"
    );
    let oldest = as_agent(200, Method::GET, &format!("/v1/listings/{}", ids[0])).await;
    assert_eq!(oldest["status"], "draft", "{oldest}");
    let audit = api
        .count("audit_log WHERE action IN ('subscription.cancel', 'listing.unpublish')")
        .await;
    assert_eq!(audit, 2);
    // Nothing left to cancel.
    as_agent(409, Method::POST, cancel).await;
}

/// What a subscription says of its plan: plan, status, quota and active listings.
fn usage(s: &Value) -> (Option<&str>, Option<&str>, Option<i64>, Option<i64>) {
    (
        s["plan"].as_str(),
        s["status"].as_str(),
        s["listing_quota"].as_i64(),
        s["active_listings"].as_i64(),
    )
}
