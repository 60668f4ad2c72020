//! Caching (`cloud-gateway.md` §2): who shares an entry under each `cacheType` (two users, two apps),
//! expiry on souk's clock, only successes kept, a stampede of identical calls making one upstream
//! call, and hits marked in the call log.

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_store::conformance::{with_sqlite, Store};

use super::upstream::DevService;
use super::{client_call, logged, server_call, Answer, Tenant};
use crate::common::TestServer;

on_both_backends! {
    cache_types_decide_who_shares => sqlite_cache_types_decide_who_shares, postgres_cache_types_decide_who_shares;
}

/// A `/count` request (the service answers how many requests it counted) with caching.
fn counted(tenant: &Tenant, origin: &str, cache_type: u8, cache_time: u64) -> Value {
    let mut request = tenant.request(origin, "/count", "GET");
    request["params"] = json!({"q": "same"});
    request["exts"]["cacheType"] = json!(cache_type);
    request["exts"]["cacheTime"] = json!(cache_time);
    request
}

/// The count a call answered, and whether the log marks it as a hit.
async fn count_of(server: &TestServer, answer: &Answer) -> (u64, bool) {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let n = answer.body["n"].as_u64().or_else(|| answer.body["data"]["n"].as_u64()).unwrap();
    let hit = logged(server, &answer.request_id).await["cache_hit"].as_bool().unwrap();
    (n, hit)
}

async fn cache_types_decide_who_shares(store: Store) {
    let server = TestServer::start(store).await;
    let service = DevService::start().await;
    let app_a = Tenant::create(&server, &service, None).await;
    let app_b = Tenant::create(&server, &service, None).await;
    let (alice_a, _) = app_a.session(&server, "alice").await;
    let (bob_a, _) = app_a.session(&server, "bob").await;
    let (alice_b, _) = app_b.session(&server, "alice").await;
    let origin = service.origin.as_str();
    let srv = &server;
    let call = move |session: &str, tenant: &Tenant, cache_type: u8| {
        let request = counted(tenant, origin, cache_type, 60);
        let session = session.to_owned();
        async move { count_of(srv, &client_call(srv, &session, &request).await).await }
    };

    // 0: same app and same user.
    let (first, hit) = call(&alice_a, &app_a, 0).await;
    assert!(!hit);
    assert_eq!(call(&alice_a, &app_a, 0).await, (first, true), "alice in A again: a hit");
    assert_ne!(call(&bob_a, &app_a, 0).await.0, first, "bob in A: his own entry");
    assert_ne!(call(&alice_b, &app_b, 0).await.0, first, "alice in B: another app");

    // 1: same app, any user (the app's server too).
    let (first, _) = call(&alice_a, &app_a, 1).await;
    assert_eq!(call(&bob_a, &app_a, 1).await, (first, true), "bob in A shares");
    let from_server = server_call(&server, &app_a.token, &counted(&app_a, origin, 1, 60)).await;
    assert_eq!(count_of(&server, &from_server).await, (first, true), "A's server shares");
    assert_ne!(call(&alice_b, &app_b, 1).await.0, first, "B does not");

    // 2: same user, any app; a user is an openid, which is per app.
    let (first, _) = call(&alice_a, &app_a, 2).await;
    assert_eq!(call(&alice_a, &app_a, 2).await, (first, true));
    assert_ne!(call(&bob_a, &app_a, 2).await.0, first, "bob: another user");
    assert_ne!(call(&alice_b, &app_b, 2).await.0, first, "alice in B has another openid");
    let no_user = server_call(&server, &app_a.token, &counted(&app_a, origin, 2, 60)).await;
    assert_eq!(
        (no_user.status, no_user.body["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_REQUEST")),
        "types 0 and 2 need a user"
    );

    // 3: everyone.
    let (first, _) = call(&alice_a, &app_a, 3).await;
    assert_eq!(call(&bob_a, &app_a, 3).await, (first, true));
    assert_eq!(call(&alice_b, &app_b, 3).await, (first, true), "another app shares");
    let from_server = server_call(&server, &app_b.token, &counted(&app_b, origin, 3, 60)).await;
    assert_eq!(count_of(&server, &from_server).await, (first, true));

    // Another request is another entry: parameters are part of the key.
    let mut other = counted(&app_a, origin, 3, 60);
    other["params"] = json!({"q": "other"});
    let answer = client_call(&server, &alice_a, &other).await;
    assert_ne!(count_of(&server, &answer).await.0, first);
}

#[tokio::test]
async fn cached_entries_expire_on_the_clock() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let service = DevService::start().await;
        let tenant = Tenant::create(&server, &service, None).await;
        let (session, _) = tenant.session(&server, "alice").await;
        let request = counted(&tenant, &service.origin, 1, 60);
        let (srv, session, request) = (&server, &session, &request);
        let ask = move || async move { count_of(srv, &client_call(srv, session, request).await).await };
        let (first, _) = ask().await;
        server.clock.advance_ms(59_000);
        assert_eq!(ask().await, (first, true), "still fresh after 59 s");
        server.clock.advance_ms(2_000);
        let (second, hit) = ask().await;
        assert!(!hit && second != first, "expired after 60 s");
        assert_eq!(ask().await, (second, true), "the new answer is cached");

        // Failures are never cached.
        let mut fail = tenant.request(&service.origin, "/fail", "GET");
        fail["exts"]["cacheType"] = json!(1);
        let before = service.count();
        for _ in 0..2 {
            assert_eq!(client_call(&server, session, &fail).await.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        assert_eq!(service.count(), before + 2);
    })
    .await;
}

#[tokio::test]
async fn a_stampede_makes_one_upstream_call() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let service = DevService::start().await;
        let tenant = Tenant::create(&server, &service, None).await;
        let (session, _) = tenant.session(&server, "alice").await;
        let mut request = tenant.request(&service.origin, "/slow-count", "GET");
        request["exts"]["cacheType"] = json!(3);
        let calls = (0..50).map(|_| client_call(&server, &session, &request));
        let answers = futures::future::join_all(calls).await;
        assert_eq!(service.count(), 1, "fifty identical calls, one upstream call");
        let mut hits = 0;
        for answer in &answers {
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            assert_eq!(answer.body, json!({"n": 1}));
            if logged(&server, &answer.request_id).await["cache_hit"] == json!(true) {
                hits += 1;
            }
        }
        assert_eq!(hits, 49, "every call but the one that went upstream is marked a hit");
    })
    .await;
}
