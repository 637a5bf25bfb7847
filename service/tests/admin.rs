//! The admin API and the audit trail against a real PostgreSQL over real HTTP: the
//! authorisation matrix of every admin route (anonymous, buyer, agent, other agent, admin,
//! suspended admin), suspension taking effect on an existing token's next request and
//! reinstatement, moderation with a reason, the lists and their keyset pages, the audit
//! log's filters and pages, an audit entry (with request id and client address) for every
//! state change in the same transaction as the change, and the append-only audit table.
#![allow(clippy::unwrap_used)] // tests: a failed setup step is a failed test

use goodgo_testkit::http::{Answer, Method};
use serde_json::{Value, json};

mod common;

use common::{Api, NEW, checkout, event};

/// The admin routes, each with the body its admin call sends.
fn admin_routes(target: i64, listing: i64) -> Vec<(Method, String, Option<Value>)> {
    let reason = || Some(json!({"reason": "spam reported twice"}));
    vec![
        (Method::GET, "/v1/admin/users".into(), None),
        (
            Method::POST,
            format!("/v1/admin/users/{target}/suspend"),
            reason(),
        ),
        (
            Method::POST,
            format!("/v1/admin/users/{target}/reinstate"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/admin/listings/{listing}/unpublish"),
            reason(),
        ),
        (Method::GET, "/v1/admin/payments".into(), None),
        (Method::GET, "/v1/admin/subscriptions".into(), None),
        (Method::GET, "/v1/admin/audit".into(), None),
    ]
}

/// A listing of `token`'s, created and published: its id.
async fn published(api: &Api, token: &str, title: &str) -> i64 {
    let body = json!({"title": title, "price": 1000, "listing_type": "sale",
        "property_type": "apartment", "area_m2": "50", "city": "Da Nang"});
    let l = api
        .expect(201, Method::POST, "/v1/listings", Some(token), Some(body))
        .await;
    let id = l["id"].as_i64().unwrap();
    let path = format!("/v1/listings/{id}/publish");
    api.expect(200, Method::POST, &path, Some(token), None)
        .await;
    id
}

/// The problem's `type`, once the answer is a problem document with `status`.
fn problem(a: &Answer, status: u16) -> String {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(
        a.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{}",
        a.body
    );
    a.json()["type"].as_str().unwrap().to_string()
}

/// Everything the admin routes can change, as one comparable value.
async fn admin_state(api: &Api) -> Value {
    let row = api
        .client
        .query_one(
            "SELECT (SELECT json_agg(json_build_object('id', id, 's', suspended_at IS NOT NULL) ORDER BY id)::text FROM users), \
                    (SELECT json_agg(json_build_object('id', id, 's', status, 'n', moderation_note) ORDER BY id)::text FROM listings), \
                    (SELECT count(*) FROM audit_log)",
            &[],
        )
        .await
        .unwrap();
    json!({
        "users": serde_json::from_str::<Value>(row.get(0)).unwrap(),
        "listings": serde_json::from_str::<Value>(row.get(1)).unwrap(),
        "audit": row.get::<_, i64>(2),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_pass_on_every_admin_route() {
    let Some(api) = Api::start("admin_matrix").await else {
        return;
    };
    let (agent, buyer, admin) = api.accounts().await;
    let other = api.user("other@example.com", "agent").await;
    let suspended = api.user("fallen@example.com", "admin").await;
    let fallen = api.id_of("fallen@example.com").await;
    let reason = json!({"reason": "left the company"});
    let path = format!("/v1/admin/users/{fallen}/suspend");
    api.expect(200, Method::POST, &path, Some(&admin), Some(reason))
        .await;
    let target = api.id_of("buyer@example.com").await;
    let listing = published(&api, &agent, "Flat by the river").await;

    // Every caller but an admin is refused before anything happens.
    let before = admin_state(&api).await;
    let refused: [(&str, Option<&str>, u16, &str); 5] = [
        ("anonymous", None, 401, "/problems/unauthenticated"),
        ("buyer", Some(&buyer), 403, "/problems/forbidden"),
        (
            "agent (the listing's owner)",
            Some(&agent),
            403,
            "/problems/forbidden",
        ),
        ("other agent", Some(&other), 403, "/problems/forbidden"),
        (
            "suspended admin",
            Some(&suspended),
            403,
            "/problems/account-suspended",
        ),
    ];
    for (method, path, body) in admin_routes(target, listing) {
        for (who, token, status, kind) in refused {
            let a = api.json(method.clone(), &path, token, body.clone()).await;
            assert_eq!(problem(&a, status), kind, "{who} on {method} {path}");
        }
    }
    assert_eq!(
        admin_state(&api).await,
        before,
        "refused calls change nothing"
    );

    // The admin passes on each, in an order where each call has something to do.
    for (method, path, body) in admin_routes(target, listing) {
        let a = api.json(method.clone(), &path, Some(&admin), body).await;
        assert_eq!(a.status, 200, "admin on {method} {path}: {}", a.body);
    }
    // A malformed token is 401 on the admin API too, and unknown admin paths are 404.
    let a = api
        .json(Method::GET, "/v1/admin/users", Some("not-a-token"), None)
        .await;
    assert_eq!(problem(&a, 401), "/problems/unauthenticated");
    let a = api
        .json(Method::GET, "/v1/admin/nothing", Some(&admin), None)
        .await;
    assert_eq!(problem(&a, 404), "/problems/not-found");
}

/// `POST /v1/auth/refresh` with the session cookies of a login answer.
async fn refresh(api: &Api, login: &Answer) -> Answer {
    let (refresh, csrf) = (
        login.cookie("goodgo_refresh").unwrap(),
        login.cookie("goodgo_csrf").unwrap(),
    );
    let headers = vec![
        (
            "cookie".to_string(),
            format!("goodgo_refresh={refresh}; goodgo_csrf={csrf}"),
        ),
        ("x-csrf-token".to_string(), csrf),
    ];
    api.send(Method::POST, "/v1/auth/refresh", headers, None)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_holds_from_the_next_request_and_reinstatement_lifts_it() {
    let Some(api) = Api::start("admin_suspend").await else {
        return;
    };
    let (agent, _, admin) = api.accounts().await;
    let id = api.id_of("agent@example.com").await;
    let credentials = json!({"email": "agent@example.com", "password": "a-long-password"});
    let login = api
        .json(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(credentials.clone()),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    api.expect(200, Method::GET, "/v1/me", Some(&agent), None)
        .await;

    let suspend = format!("/v1/admin/users/{id}/suspend");
    for (body, field) in [
        (json!({"reason": "  "}), "reason"),
        (json!({"reason": "x".repeat(501)}), "reason"),
        (json!({"reason": "nul\u{0}"}), "reason"),
    ] {
        let p = api
            .expect(422, Method::POST, &suspend, Some(&admin), Some(body))
            .await;
        assert!(p["errors"][field].is_array(), "{p}");
    }
    let body = json!({"reason": "fake listings"});
    let user = api
        .expect(
            200,
            Method::POST,
            &suspend,
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(user["suspension_reason"], "fake listings");
    assert!(user["suspended_at"].is_string(), "{user}");

    // The same, still unexpired token stops working on its next request, everywhere.
    let listing = json!({"title": "Anything", "price": 1, "listing_type": "sale",
        "property_type": "land", "area_m2": "1", "city": "Hue"});
    for (method, path, body) in [
        (Method::GET, "/v1/me", None),
        (Method::GET, "/v1/listings/mine", None),
        (Method::POST, "/v1/listings", Some(listing)),
        (Method::GET, "/v1/me/subscription", None),
    ] {
        let a = api.json(method, path, Some(&agent), body).await;
        assert_eq!(problem(&a, 403), "/problems/account-suspended", "{path}");
    }
    // Its sessions ended: the refresh token is refused; the password no longer logs in.
    let a = refresh(&api, &login).await;
    assert_eq!(problem(&a, 403), "/problems/account-suspended");
    let a = api
        .json(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(credentials.clone()),
        )
        .await;
    assert_eq!(problem(&a, 403), "/problems/account-suspended");
    // ...but a wrong password still learns nothing about the account.
    let wrong = json!({"email": "agent@example.com", "password": "not-the-password"});
    let a = api
        .json(Method::POST, "/v1/auth/login", None, Some(wrong))
        .await;
    assert_eq!(problem(&a, 401), "/problems/unauthenticated");

    // Twice is a conflict; an admin cannot suspend themselves; unknown accounts are 404.
    api.expect(
        409,
        Method::POST,
        &suspend,
        Some(&admin),
        Some(body.clone()),
    )
    .await;
    let me = api.id_of("admin@example.com").await;
    let own = format!("/v1/admin/users/{me}/suspend");
    api.expect(409, Method::POST, &own, Some(&admin), Some(body.clone()))
        .await;
    let nobody = "/v1/admin/users/999999/suspend";
    api.expect(404, Method::POST, nobody, Some(&admin), Some(body))
        .await;

    // Reinstated: the account logs in again, and the old token works again too.
    let reinstate = format!("/v1/admin/users/{id}/reinstate");
    let user = api
        .expect(200, Method::POST, &reinstate, Some(&admin), None)
        .await;
    assert_eq!(user["suspended_at"], Value::Null, "{user}");
    api.expect(409, Method::POST, &reinstate, Some(&admin), None)
        .await;
    let fresh = api
        .expect(200, Method::POST, "/v1/auth/login", None, Some(credentials))
        .await;
    let fresh = fresh["access_token"].as_str().unwrap();
    for token in [fresh, agent.as_str()] {
        api.expect(200, Method::GET, "/v1/me", Some(token), None)
            .await;
    }
    let rows = api
        .client
        .query(
            "SELECT action, actor_id, data->>'reason' FROM audit_log WHERE entity = 'user' AND entity_id = $1 AND action LIKE 'user.%' AND action NOT IN ('user.register', 'user.login') ORDER BY id",
            &[&id.to_string()],
        )
        .await
        .unwrap();
    let got: Vec<(String, i64, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        [
            ("user.suspend".into(), me, Some("fake listings".into())),
            ("user.reinstate".into(), me, None)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_unpublishes_with_a_reason_the_owner_reads() {
    let Some(api) = Api::start("admin_moderate").await else {
        return;
    };
    let (agent, _, admin) = api.accounts().await;
    let id = published(&api, &agent, "Sea view, too good to be true").await;
    let unpublish = format!("/v1/admin/listings/{id}/unpublish");
    let reason = json!({"reason": "the photos are of another building"});
    let l = api
        .expect(
            200,
            Method::POST,
            &unpublish,
            Some(&admin),
            Some(reason.clone()),
        )
        .await;
    assert_eq!(
        (l["status"].as_str(), l["moderation_note"].as_str()),
        (Some("draft"), Some("the photos are of another building"))
    );
    // Out of search, still there for its owner with the reason; nothing was deleted.
    let search = api
        .expect(200, Method::GET, "/v1/listings/search", None, None)
        .await;
    assert_eq!(search["items"], json!([]));
    let own = api
        .expect(
            200,
            Method::GET,
            &format!("/v1/listings/{id}"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(own["moderation_note"], "the photos are of another building");
    // Not active any more: a conflict; unknown: 404; no reason: 422.
    api.expect(
        409,
        Method::POST,
        &unpublish,
        Some(&admin),
        Some(reason.clone()),
    )
    .await;
    let unknown = "/v1/admin/listings/999999/unpublish";
    api.expect(404, Method::POST, unknown, Some(&admin), Some(reason))
        .await;
    for body in [
        json!({}),
        json!({"reason": ""}),
        json!({"reason": "x", "extra": 1}),
    ] {
        api.expect(422, Method::POST, &unpublish, Some(&admin), Some(body))
            .await;
    }
    let row = api
        .client
        .query_one(
            "SELECT actor_id, data->>'reason', data->>'before', data->>'after', (data->>'owner_id')::bigint FROM audit_log WHERE action = 'listing.moderate'",
            &[],
        )
        .await
        .unwrap();
    let got: (i64, String, String, String, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let expected = (
        api.id_of("admin@example.com").await,
        "the photos are of another building".to_string(),
        "active".to_string(),
        "draft".to_string(),
        api.id_of("agent@example.com").await,
    );
    assert_eq!(got, expected);
    // The owner publishes it again, which clears the note.
    let l = api
        .expect(
            200,
            Method::POST,
            &format!("/v1/listings/{id}/publish"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(l["moderation_note"], Value::Null, "{l}");
}

/// Every page of `path` (which has a query string) at `limit` items a page: the ids in
/// order, once each page was checked to hold at most `limit`.
async fn all_pages(api: &Api, token: &str, path: &str, limit: usize) -> Vec<i64> {
    let (mut ids, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}&limit={limit}&cursor={c}"),
            None => format!("{path}&limit={limit}"),
        };
        let page = api
            .expect(200, Method::GET, &page_path, Some(token), None)
            .await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit, "{page}");
        ids.extend(items.iter().map(|i| i["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

/// The ids `SELECT id FROM {rows} ORDER BY id DESC` gives.
async fn ids(api: &Api, rows: &str) -> Vec<i64> {
    let sql = format!("SELECT id FROM {rows} ORDER BY id DESC");
    let rows = api.client.query(&sql, &[]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_the_audit_log_filter_and_page_without_gaps() {
    let Some(api) = Api::start("admin_lists").await else {
        return;
    };
    let (agent, _, admin) = api.accounts().await;
    for i in 0..4 {
        api.user(&format!("agent{i}@example.net"), "agent").await;
    }
    let agent_id = api.id_of("agent@example.com").await;
    for i in 0..3 {
        published(&api, &agent, &format!("Flat number {i}")).await;
    }
    let reference = checkout(&api, &agent, "pro").await;
    let paid = event("evt_lists", "payment.succeeded", &reference);
    assert_eq!(api.deliver(NEW, &paid).await, "applied");
    checkout(&api, &agent, "agency").await;

    // Users: search, filters, pages.
    let users = all_pages(&api, &admin, "/v1/admin/users?q=EXAMPLE.NET", 3).await;
    let expected = ids(&api, "users WHERE email LIKE '%example.net'").await;
    assert_eq!(users, expected);
    assert_eq!(users.len(), 4);
    let agents = all_pages(&api, &admin, "/v1/admin/users?role=agent", 2).await;
    assert_eq!(agents, ids(&api, "users WHERE role = 'agent'").await);
    let suspended = all_pages(&api, &admin, "/v1/admin/users?status=suspended", 2).await;
    assert!(suspended.is_empty());

    // Payments and subscriptions, by account and status.
    let path = format!("/v1/admin/payments?user={agent_id}");
    let page = api
        .expect(200, Method::GET, &path, Some(&admin), None)
        .await;
    let statuses: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "succeeded"], "{page}");
    assert_eq!(page["items"][1]["reference"], reference.as_str());
    let paid = all_pages(&api, &admin, "/v1/admin/payments?status=succeeded", 1).await;
    assert_eq!(paid.len(), 1);
    let path = format!("/v1/admin/subscriptions?user={agent_id}&status=active&plan=pro");
    let page = api
        .expect(200, Method::GET, &path, Some(&admin), None)
        .await;
    assert_eq!(page["items"][0]["plan"], "pro", "{page}");

    // The audit log: every filter against the same question asked in SQL, in pages of 2.
    let cases = [
        (
            format!("actor={agent_id}"),
            format!("actor_id = {agent_id}"),
        ),
        (
            "action=listing.publish".into(),
            "action = 'listing.publish'".into(),
        ),
        ("action=listing.*".into(), "action LIKE 'listing.%'".into()),
        ("entity=payment".into(), "entity = 'payment'".into()),
        ("since=2000-01-01".into(), "true".into()),
        ("until=2000-01-01T00:00:00Z".into(), "false".into()),
        (
            format!("actor={agent_id}&action=listing.*&since=2000-01-01T00:00:00.5%2B07:00"),
            format!("actor_id = {agent_id} AND action LIKE 'listing.%'"),
        ),
    ];
    for (query, sql) in cases {
        let got = all_pages(&api, &admin, &format!("/v1/admin/audit?{query}"), 2).await;
        let want = ids(&api, &format!("audit_log WHERE {sql}")).await;
        assert_eq!(got, want, "{query}");
    }
    // The system's entries (the webhook's) have no actor, and say what changed.
    let page = api
        .expect(
            200,
            Method::GET,
            "/v1/admin/audit?action=payment.succeeded",
            Some(&admin),
            None,
        )
        .await;
    let entry = &page["items"][0];
    assert_eq!(entry["actor_id"], Value::Null, "{entry}");
    assert_eq!(entry["data"]["after"]["payment"], "succeeded", "{entry}");

    // Bad filters are 422 naming the field (400 for what is not even the right type).
    for (query, field) in [
        ("/v1/admin/audit?since=2026-02-30", "since"),
        ("/v1/admin/audit?until=yesterday", "until"),
        ("/v1/admin/audit?action=Listing.Publish", "action"),
        ("/v1/admin/audit?entity_id=7", "entity_id"),
        ("/v1/admin/audit?cursor=abc", "cursor"),
        ("/v1/admin/users?limit=0", "limit"),
        ("/v1/admin/users?role=root", "role"),
        ("/v1/admin/users?q=%00", "q"),
        ("/v1/admin/payments?status=paid", "status"),
        ("/v1/admin/subscriptions?plan=%00", "plan"),
    ] {
        let a = api.json(Method::GET, query, Some(&admin), None).await;
        assert_eq!(problem(&a, 422), "/problems/validation-failed", "{query}");
        assert!(a.json()["errors"][field].is_array(), "{query}: {}", a.body);
    }
    for query in ["/v1/admin/audit?actor=me", "/v1/admin/users?unknown=1"] {
        let a = api.json(Method::GET, query, Some(&admin), None).await;
        assert_eq!(problem(&a, 400), "/problems/bad-request", "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_change_is_audited_with_request_id_and_client_address() {
    // 127.0.0.1 is a trusted proxy here: the client is who X-Forwarded-For names.
    let trusted = [("GOODGO_API_TRUSTED_PROXIES", "127.0.0.1")];
    let Some(api) = Api::start_with("admin_audited", &trusted).await else {
        return;
    };
    let register =
        json!({"email": "agent@example.com", "password": "a-long-password", "role": "agent"});
    let headers = |id: &str| {
        vec![
            ("x-request-id".to_string(), id.to_string()),
            (
                "x-forwarded-for".to_string(),
                "198.51.100.7, 203.0.113.9".to_string(),
            ),
        ]
    };
    let a = api
        .send(
            Method::POST,
            "/v1/auth/register",
            headers("req-register-1"),
            Some(register.to_string()),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let row = api
        .client
        .query_one(
            "SELECT action, request_id, host(ip), data->'after'->>'role' FROM audit_log",
            &[],
        )
        .await
        .unwrap();
    let got: (String, String, String, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        got,
        (
            "user.register".into(),
            "req-register-1".into(),
            "203.0.113.9".into(),
            "agent".into()
        ),
        "the nearest untrusted hop is the client"
    );

    // Each kind of change, one entry each, in order.
    let agent = a.json()["access_token"].as_str().unwrap().to_string();
    let login = json!({"email": "agent@example.com", "password": "a-long-password"});
    let session = api
        .json(Method::POST, "/v1/auth/login", None, Some(login))
        .await;
    let session = refresh(&api, &session).await;
    assert_eq!(session.status, 200, "{}", session.body);
    let (refresh_cookie, csrf) = (
        session.cookie("goodgo_refresh").unwrap(),
        session.cookie("goodgo_csrf").unwrap(),
    );
    let logout = vec![
        (
            "cookie".to_string(),
            format!("goodgo_refresh={refresh_cookie}; goodgo_csrf={csrf}"),
        ),
        ("x-csrf-token".to_string(), csrf),
    ];
    let a = api
        .send(Method::POST, "/v1/auth/logout", logout.clone(), None)
        .await;
    assert_eq!(a.status, 204, "{}", a.body);
    // A second logout of the ended session changes nothing and leaves no entry.
    api.send(Method::POST, "/v1/auth/logout", logout, None)
        .await;
    let id = published(&api, &agent, "Flat number one").await;
    let listing = format!("/v1/listings/{id}");
    let patch = json!({"title": "Flat number two", "bedrooms": 2});
    api.expect(200, Method::PATCH, &listing, Some(&agent), Some(patch))
        .await;
    let archive = format!("/v1/listings/{id}/archive");
    api.expect(200, Method::POST, &archive, Some(&agent), None)
        .await;
    api.expect(204, Method::DELETE, &listing, Some(&agent), None)
        .await;
    let reference = checkout(&api, &agent, "pro").await;
    let paid = event("evt_audited", "payment.succeeded", &reference);
    assert_eq!(api.deliver(NEW, &paid).await, "applied");
    let cancel = "/v1/me/subscription/cancel";
    api.expect(200, Method::POST, cancel, Some(&agent), None)
        .await;
    let rows = api
        .client
        .query(
            "SELECT action, ip IS NOT NULL AND request_id IS NOT NULL FROM audit_log ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let actions: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected: Vec<(String, bool)> = [
        "user.register",
        "user.login",
        "session.refresh",
        "session.logout",
        "listing.create",
        "listing.publish",
        "listing.update",
        "listing.archive",
        "listing.delete",
        "payment.checkout",
        "payment.succeeded",
        "subscription.cancel",
    ]
    .iter()
    .map(|a| (a.to_string(), true))
    .collect();
    assert_eq!(actions, expected);
    let update: Value = api
        .scalar::<String>("SELECT data::text FROM audit_log WHERE action = 'listing.update'")
        .await
        .parse()
        .unwrap();
    assert_eq!(
        update,
        json!({"before": {"title": "Flat number one", "bedrooms": 0}, "after": {"title": "Flat number two", "bedrooms": 2}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_audit_entry_fails_does_not_happen() {
    let Some(api) = Api::start("admin_atomic").await else {
        return;
    };
    let (agent, _, admin) = api.accounts().await;
    let id = published(&api, &agent, "Flat number one").await;
    let agent_id = api.id_of("agent@example.com").await;
    // The test's own trigger makes the log refuse three kinds of entry.
    api.client
        .batch_execute(
            "CREATE FUNCTION refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                IF NEW.action IN ('listing.update', 'user.suspend', 'user.register') THEN \
                    RAISE EXCEPTION 'the log is full'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse_entry BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_entry();",
        )
        .await
        .unwrap();
    let patch = json!({"title": "Changed without a trace"});
    let a = api
        .json(
            Method::PATCH,
            &format!("/v1/listings/{id}"),
            Some(&agent),
            Some(patch),
        )
        .await;
    assert_eq!(problem(&a, 500), "/problems/internal");
    let suspend = format!("/v1/admin/users/{agent_id}/suspend");
    let a = api
        .json(
            Method::POST,
            &suspend,
            Some(&admin),
            Some(json!({"reason": "r"})),
        )
        .await;
    assert_eq!(problem(&a, 500), "/problems/internal");
    let body = json!({"email": "ghost@example.com", "password": "a-long-password"});
    let a = api
        .json(Method::POST, "/v1/auth/register", None, Some(body))
        .await;
    assert_eq!(problem(&a, 500), "/problems/internal");
    let row = api
        .client
        .query_one(
            "SELECT (SELECT title FROM listings WHERE id = $1), \
                    (SELECT suspended_at IS NULL FROM users WHERE id = $2), \
                    (SELECT count(*) FROM users WHERE email = 'ghost@example.com')",
            &[&id, &agent_id],
        )
        .await
        .unwrap();
    let got: (String, bool, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(got, ("Flat number one".into(), true, 0), "nothing changed");
}

/// What PostgreSQL answers `sql`: its SQLSTATE when it refuses.
async fn refused(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    client
        .batch_execute(sql)
        .await
        .err()
        .and_then(|e| e.code().map(|c| c.code().to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_append_only() {
    let Some(api) = Api::start("admin_append_only").await else {
        return;
    };
    api.accounts().await;
    let before = api.count("audit_log").await;
    assert!(before >= 3);
    // Even the server's superuser cannot rewrite it: the trigger refuses every statement.
    for sql in [
        "UPDATE audit_log SET action = 'user.nothing'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE false",
        "TRUNCATE audit_log",
    ] {
        assert_eq!(
            refused(&api.client, sql).await.as_deref(),
            Some("42501"),
            "{sql}"
        );
    }
    assert_eq!(api.count("audit_log").await, before);

    // The role that migrates and serves (a database owner, not a superuser) holds no
    // UPDATE, DELETE or TRUNCATE privilege on it: refused even with the trigger disabled.
    let owned = OwnedDb::new(&api, "admin_role_db");
    let mut config: tokio_postgres::Config = owned.url().parse().unwrap();
    config.user(&owned.role).password("api-role-pw");
    let as_role = common::migrated_with(&config).await;
    as_role
        .batch_execute(
            "INSERT INTO audit_log (action, entity) VALUES ('user.login', 'user'); \
             ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        )
        .await
        .unwrap();
    for sql in [
        "UPDATE audit_log SET action = 'user.nothing'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        assert_eq!(
            refused(&as_role, sql).await.as_deref(),
            Some("42501"),
            "{sql}"
        );
    }
    let left: i64 = as_role
        .query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 1);
}

/// A database owned by a login role of its own (not a superuser), as a deployment where
/// one role migrates and serves has it; the database, then the role, are dropped with it.
struct OwnedDb {
    db: Option<goodgo_testkit::TestDb>,
    server: String,
    role: String,
}

impl OwnedDb {
    fn new(api: &Api, name: &str) -> OwnedDb {
        let db = goodgo_testkit::TestDb::create(name).unwrap();
        let role = format!("gg_api_{}", std::process::id());
        let server = api.db.server_url().to_string();
        goodgo_testkit::query(&server, &format!("DROP ROLE IF EXISTS {role}"));
        goodgo_testkit::query(
            &server,
            &format!("CREATE ROLE {role} LOGIN PASSWORD 'api-role-pw'"),
        );
        goodgo_testkit::query(
            &server,
            &format!("ALTER DATABASE {} OWNER TO {role}", db.name),
        );
        OwnedDb {
            db: Some(db),
            server,
            role,
        }
    }

    fn url(&self) -> &str {
        self.db.as_ref().map(|d| d.url.as_str()).unwrap_or_default()
    }
}

impl Drop for OwnedDb {
    fn drop(&mut self) {
        drop(self.db.take());
        let _ = std::panic::catch_unwind(|| {
            goodgo_testkit::query(&self.server, &format!("DROP ROLE IF EXISTS {}", self.role))
        });
    }
}
