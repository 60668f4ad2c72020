//! The client API end to end: sessions minted by an app's server, a browser-like client calling with
//! CORS, openid/unionid derivation, consumeType 2 (open account and grants), plugins charged to the
//! host, rate limits with Retry-After, consent, revocation by secret rotation.

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_store::conformance::Store;

use crate::common::{Market, TestServer, Upstream};

on_both_backends! {
    sessions_derive_openids_and_unionids => sqlite_sessions_derive_openids_and_unionids, postgres_sessions_derive_openids_and_unionids;
    client_invoke_answers_and_errors => sqlite_client_invoke_answers_and_errors, postgres_client_invoke_answers_and_errors;
    sessions_expire_and_die_with_secret_rotation => sqlite_sessions_expire_and_die_with_secret_rotation, postgres_sessions_expire_and_die_with_secret_rotation;
    plugin_calls_are_charged_to_the_host => sqlite_plugin_calls_are_charged_to_the_host, postgres_plugin_calls_are_charged_to_the_host;
    client_async_task_and_result => sqlite_client_async_task_and_result, postgres_client_async_task_and_result;
    cors_preflight_and_allowed_origins => sqlite_cors_preflight_and_allowed_origins, postgres_cors_preflight_and_allowed_origins;
    rate_limits_answer_429_with_retry_after => sqlite_rate_limits_answer_429_with_retry_after, postgres_rate_limits_answer_429_with_retry_after;
    consume_type_two => sqlite_consume_type_two, postgres_consume_type_two;
}

/// A client-API answer: status and JSON body.
async fn send(request: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

async fn mint(server: &TestServer, token: &str, body: Value) -> (StatusCode, Value) {
    let request = server
        .http
        .post(format!("{}/souk/v1/client-sessions?access_token={token}", server.base))
        .body(body.to_string());
    let (status, _, body) = send(request).await;
    (status, body)
}

async fn session_for(server: &TestServer, token: &str, user: &str) -> Value {
    let (status, body) = mint(server, token, json!({"user": user, "nick": "Ann"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn client_invoke(server: &TestServer, session: &str, body: Value) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let request = server
        .http
        .post(format!("{}/souk/v1/client/servicemarket/invoke", server.base))
        .bearer_auth(session)
        .body(body.to_string());
    send(request).await
}

async fn patch_app(server: &TestServer, appid: &str, body: Value) {
    server
        .admin_ok("PATCH", &format!("/apps/{appid}"), Some(body), StatusCode::OK)
        .await;
}

async fn sessions_derive_openids_and_unionids(store: Store) {
    let server = TestServer::start(store).await;
    let (app_a, secret_a) = server.create_app().await;
    let (app_b, secret_b) = server.create_app().await;
    let token_a = server.token(&app_a, &secret_a).await;
    let token_b = server.token(&app_b, &secret_b).await;
    let first = session_for(&server, &token_a, "alice").await;
    let again = session_for(&server, &token_a, "alice").await;
    assert_eq!(first["openid"], again["openid"], "the openid is stable per (app, user)");
    assert_ne!(first["session"], again["session"]);
    assert_eq!(first["expires_in"], json!(7200));
    assert!(first.get("unionid").is_none(), "no open account, no unionid");
    let in_b = session_for(&server, &token_b, "alice").await;
    assert_ne!(first["openid"], in_b["openid"], "another app, another openid");

    patch_app(&server, &app_a, json!({"open_account": "oa-1"})).await;
    patch_app(&server, &app_b, json!({"open_account": "oa-1"})).await;
    let a = session_for(&server, &token_a, "alice").await;
    let b = session_for(&server, &token_b, "alice").await;
    assert_eq!(a["unionid"], b["unionid"], "one unionid across the open account");
    assert!(a["unionid"].as_str().unwrap().starts_with('o'));
    assert_ne!(a["unionid"], session_for(&server, &token_a, "bob").await["unionid"]);

    let (status, body) = mint(&server, "garbage", json!({"user": "x"})).await;
    assert_eq!((status, body["errCode"].clone()), (StatusCode::UNAUTHORIZED, json!(-1)));
    assert!(body["requestID"].as_str().is_some_and(|id| !id.is_empty()));
    let (status, body) = mint(&server, &token_a, json!({"nick": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = mint(&server, &token_a, json!({"user": "x", "plugin_appid": "wx0000000000000000"})).await;
    assert_eq!((status, body["errCode"].clone()), (StatusCode::FORBIDDEN, json!(-6)), "{body}");
}

async fn client_market(server: &TestServer, upstream: &Upstream, units: i64) -> (Market, String) {
    let market = server.market(&format!("{}/echo", upstream.base), units).await;
    let session = session_for(server, &market.token, "alice").await["session"]
        .as_str()
        .unwrap()
        .to_owned();
    (market, session)
}

async fn client_invoke_answers_and_errors(store: Store) {
    let server = TestServer::start(store).await;
    let upstream = Upstream::start().await;
    let (market, session) = client_market(&server, &upstream, 2).await;
    let service = market.service_id.clone();
    let (status, headers, body) = client_invoke(&server, &session, json!({"service": service, "api": "Echo", "data": {"a": 1}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["echo"], json!({"a": 1}), "data is the provider's object");
    assert_eq!(
        body["requestID"].as_str(),
        headers.get("x-request-id").and_then(|v| v.to_str().ok())
    );
    let openid = upstream.last().param("openid").map(str::to_owned);
    assert!(
        openid.as_deref().is_some_and(|openid| openid.starts_with('o')),
        "the provider sees the user's openid"
    );

    let fail = json!({"name": "Fail", "upstream_url": format!("{}/fail", upstream.base), "mode": "sync"});
    server
        .admin_ok("POST", &format!("/services/{service}/apis"), Some(fail), StatusCode::CREATED)
        .await;
    let cases = [
        (json!({"service": service, "api": "Fail"}), StatusCode::BAD_GATEWAY, -3),
        (json!({"service": "nope", "api": "Echo"}), StatusCode::NOT_FOUND, -7),
        (json!({"service": service, "api": "Nope"}), StatusCode::NOT_FOUND, -8),
        (json!({"service": service}), StatusCode::BAD_REQUEST, -1),
        (
            json!({"service": service, "api": "Echo", "consumeType": 3, "consumeAppid": "x"}),
            StatusCode::BAD_REQUEST,
            -1,
        ),
    ];
    for (body, status, code) in cases {
        let (got_status, _, answer) = client_invoke(&server, &session, body.clone()).await;
        assert_eq!((got_status, answer["errCode"].as_i64()), (status, Some(code)), "{body}: {answer}");
        assert!(answer["errMsg"].as_str().is_some() && answer["requestID"].as_str().is_some());
    }
    let (_, _, failed) = client_invoke(&server, &session, json!({"service": service, "api": "Fail"})).await;
    assert_eq!(failed["providerErrMsg"], json!("card unreadable"));
    assert_eq!(
        client_invoke(&server, &session, json!({"service": service, "api": "Echo"})).await.0,
        StatusCode::OK
    );
    let (status, _, exhausted) = client_invoke(&server, &session, json!({"service": service, "api": "Echo"})).await;
    assert_eq!((status, exhausted["errCode"].as_i64()), (StatusCode::PAYMENT_REQUIRED, Some(-10)));

    let request = server
        .http
        .post(format!("{}/souk/v1/client/servicemarket/invoke", server.base))
        .body("{}");
    assert_eq!(send(request).await.0, StatusCode::UNAUTHORIZED, "no session");
    assert_eq!(
        client_invoke(&server, &"A".repeat(64), json!({})).await.0,
        StatusCode::UNAUTHORIZED,
        "unknown session"
    );
    let calls = server.calls(&format!("appid={}&api=Echo", market.appid)).await;
    assert!(calls
        .iter()
        .any(|call| call["route"] == json!("client_invoke") && call["openid"].as_str() == openid.as_deref()));
}

async fn sessions_expire_and_die_with_secret_rotation(store: Store) {
    let server = TestServer::start(store).await;
    let upstream = Upstream::start().await;
    let (market, session) = client_market(&server, &upstream, 5).await;
    let body = json!({"service": market.service_id, "api": "Echo"});
    assert_eq!(client_invoke(&server, &session, body.clone()).await.0, StatusCode::OK);
    server.clock.advance_ms(7_200_000);
    let (status, _, answer) = client_invoke(&server, &session, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let fresh = session_for(
        &server,
        &server.token(&market.appid, &rotate(&server, &market.appid).await).await,
        "alice",
    )
    .await;
    let fresh_session = fresh["session"].as_str().unwrap().to_owned();
    assert_eq!(client_invoke(&server, &fresh_session, body.clone()).await.0, StatusCode::OK);
    rotate(&server, &market.appid).await;
    assert_eq!(
        client_invoke(&server, &fresh_session, body).await.0,
        StatusCode::UNAUTHORIZED,
        "rotation ends sessions at once"
    );
}

async fn rotate(server: &TestServer, appid: &str) -> String {
    let rotated = server
        .admin_ok("POST", &format!("/apps/{appid}/secret"), None, StatusCode::OK)
        .await;
    rotated["secret"].as_str().unwrap().to_owned()
}

async fn cors_preflight_and_allowed_origins(store: Store) {
    let server = TestServer::start(store).await;
    let upstream = Upstream::start().await;
    let (market, session) = client_market(&server, &upstream, 5).await;
    let url = format!("{}/souk/v1/client/servicemarket/invoke", server.base);
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://shop.example");
    assert!(preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));

    let body = json!({"service": market.service_id, "api": "Echo"}).to_string();
    let from = |origin: &str| {
        server
            .http
            .post(&url)
            .bearer_auth(&session)
            .header("origin", origin)
            .body(body.clone())
    };
    let (status, headers, _) = send(from("https://any.example")).await;
    assert_eq!(status, StatusCode::OK, "no allowed_origins: any origin");
    assert_eq!(headers["access-control-allow-origin"], "https://any.example");

    patch_app(&server, &market.appid, json!({"allowed_origins": ["https://shop.example"]})).await;
    server.clock.advance_ms(3_000); // past the 2 s registry cache
    let (status, _, refused) = send(from("https://evil.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, _, _) = send(from("https://shop.example")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(server.http.post(&url).bearer_auth(&session).body(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "a server-side client sends no Origin");
}

async fn consume_type_two(store: Store) {
    let server = TestServer::start(store).await;
    let upstream = Upstream::start().await;
    let (payer, _) = client_market(&server, &upstream, 10).await;
    let (caller_app, caller_secret) = server.create_app().await;
    let caller_token = server.token(&caller_app, &caller_secret).await;
    let session = session_for(&server, &caller_token, "alice").await["session"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"service": payer.service_id, "api": "Echo", "consumeType": 2, "consumeAppid": payer.appid});

    let (status, _, refused) = client_invoke(&server, &session, body.clone()).await;
    assert_eq!(
        (status, refused["errCode"].as_i64()),
        (StatusCode::PAYMENT_REQUIRED, Some(-10)),
        "{refused}"
    );
    let unknown = json!({"service": payer.service_id, "api": "Echo", "consumeType": 2, "consumeAppid": "wx0000000000000000"});
    assert_eq!(client_invoke(&server, &session, unknown).await.2["errCode"], json!(-6));

    server
        .admin_ok(
            "POST",
            "/grants",
            Some(json!({"payer_appid": payer.appid, "caller_appid": caller_app})),
            StatusCode::CREATED,
        )
        .await;
    let (status, _, answer) = client_invoke(&server, &session, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(server.units_left(&payer.package_id).await, 9, "the payer's package paid");
    assert_eq!(
        upstream.last().param("appid"),
        Some(caller_app.as_str()),
        "the provider sees the calling app"
    );

    server
        .admin_ok(
            "DELETE",
            &format!("/grants/{}/{caller_app}", payer.appid),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(client_invoke(&server, &session, body.clone()).await.0, StatusCode::PAYMENT_REQUIRED);
    patch_app(&server, &payer.appid, json!({"open_account": "oa-shared"})).await;
    patch_app(&server, &caller_app, json!({"open_account": "oa-shared"})).await;
    server.clock.advance_ms(3_000);
    assert_eq!(
        client_invoke(&server, &session, body).await.0,
        StatusCode::OK,
        "one open account is enough"
    );
    assert_eq!(server.units_left(&payer.package_id).await, 8);
}

async fn plugin_calls_are_charged_to_the_host(store: Store) {
    let server = TestServer::start(store).await;
    let upstream = Upstream::start().await;
    let market = server.market(&format!("{}/echo", upstream.base), 3).await;
    let (plugin, _) = server.create_app().await;
    let (status, minted) = mint(&server, &market.token, json!({"user": "alice", "plugin_appid": plugin})).await;
    assert_eq!(status, StatusCode::OK, "{minted}");
    let session = minted["session"].as_str().unwrap();
    let (status, _, answer) = client_invoke(&server, session, json!({"service": market.service_id, "api": "Echo"})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(server.units_left(&market.package_id).await, 2, "the host app's package paid");
    let calls = server.calls(&format!("appid={}&api=Echo", market.appid)).await;
    assert_eq!(calls[0]["plugin_appid"].as_str(), Some(plugin.as_str()), "logged with both ids");
}

async fn rate_limits_answer_429_with_retry_after(store: Store) {
    let server = TestServer::start(store).await;
    let upstream = Upstream::start().await;
    let (market, session) = client_market(&server, &upstream, 10).await;
    let limit = json!({"rate_limit": {"per_second": 0.5, "burst": 1}});
    server
        .admin_ok(
            "PATCH",
            &format!("/services/{}/apis/Echo", market.service_id),
            Some(limit),
            StatusCode::OK,
        )
        .await;
    server.clock.advance_ms(3_000);
    let body = json!({"service": market.service_id, "api": "Echo"});
    assert_eq!(client_invoke(&server, &session, body.clone()).await.0, StatusCode::OK);
    let (status, headers, answer) = client_invoke(&server, &session, body.clone()).await;
    assert_eq!(
        (status, answer["errCode"].as_i64()),
        (StatusCode::TOO_MANY_REQUESTS, Some(-11)),
        "{answer}"
    );
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(headers["ratelimit-remaining"], "0");
    let wechat = server.invoke(&market, "Echo", json!({}), None).await;
    assert_eq!(wechat["errcode"], json!(9301011), "the same (app, api) limit on the server API");
    server.let_time_pass(2_000).await;
    assert_eq!(client_invoke(&server, &session, body.clone()).await.0, StatusCode::OK, "recovered");
    let (other, other_secret) = server.create_app().await;
    let other_token = server.token(&other, &other_secret).await;
    server
        .admin_ok(
            "POST",
            "/packages",
            Some(json!({"appid": other, "service_id": market.service_id, "units": 5})),
            StatusCode::CREATED,
        )
        .await;
    let other_market = Market {
        appid: other,
        token: other_token,
        ..market.clone()
    };
    assert_eq!(
        server.invoke(&other_market, "Echo", json!({}), None).await["errcode"],
        json!(0),
        "limits are per calling app"
    );
    assert_eq!(server.units_left(&market.package_id).await, 8, "refused calls cost nothing");
}

#[tokio::test]
async fn authorize_records_consent() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        let token = server.token(&appid, &secret).await;
        let session = session_for(&server, &token, "alice").await["session"].as_str().unwrap().to_owned();
        let url = format!("{}/souk/v1/client/authorize", server.base);
        let (status, _, body) = send(
            server
                .http
                .post(&url)
                .bearer_auth(&session)
                .body(json!({"scopes": ["scope.userInfo"]}).to_string()),
        )
        .await;
        assert_eq!((status, body["scopes"].clone()), (StatusCode::OK, json!(["scope.userInfo"])));
        let (status, _, _) = send(
            server
                .http
                .post(&url)
                .bearer_auth(&session)
                .body(json!({"scopes": "x"}).to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    });
}

async fn client_async_task_and_result(store: Store) {
    let server = TestServer::start(store).await;
    let upstream = Upstream::start().await;
    let (market, session) = client_market(&server, &upstream, 3).await;
    let api = json!({"name": "Later", "upstream_url": format!("{}/echo", upstream.base), "mode": "async"});
    server
        .admin_ok(
            "POST",
            &format!("/services/{}/apis", market.service_id),
            Some(api),
            StatusCode::CREATED,
        )
        .await;
    let (status, _, accepted) = client_invoke(
        &server,
        &session,
        json!({"service": market.service_id, "api": "Later", "async": true, "data": {"n": 7}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert!(accepted.get("data").is_none());
    let request_id = accepted["requestID"].as_str().unwrap().to_owned();
    let url = format!("{}/souk/v1/client/servicemarket/async-result", server.base);
    let poll = |id: &str| {
        server
            .http
            .post(&url)
            .bearer_auth(&session)
            .body(json!({"requestId": id}).to_string())
    };
    let (status, _, pending) = send(poll(&request_id)).await;
    assert_eq!((status, pending), (StatusCode::OK, json!({"status": 1})));
    server.souk.run_due_jobs("test-worker").await;
    let (_, _, done) = send(poll(&request_id)).await;
    assert_eq!(done["status"], json!(0), "{done}");
    assert_eq!(done["data"]["echo"], json!({"n": 7}));
    assert_eq!(upstream.last().param("async"), Some("1"));
    assert!(upstream.last().param("openid").is_some(), "the job carries the user's openid");
    let (status, _, unknown) = send(poll("nope")).await;
    assert_eq!(
        (status, unknown["errCode"].as_i64()),
        (StatusCode::NOT_FOUND, Some(-1)),
        "{unknown}"
    );
    assert_eq!(
        server.units_left(&market.package_id).await,
        2,
        "one unit for the job, none for polling"
    );
}

#[tokio::test]
async fn client_cdn_upload_round_trip() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        let token = server.token(&appid, &secret).await;
        let session = session_for(&server, &token, "alice").await["session"].as_str().unwrap().to_owned();
        let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let request = server
            .http
            .post(format!("{}/souk/v1/client/cdn", server.base))
            .bearer_auth(&session)
            .header("content-type", "image/png")
            .header("origin", "https://shop.example")
            .body(bytes.clone());
        let (status, headers, answer) = send(request).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(headers["access-control-allow-origin"], "https://shop.example");
        let fetched = server.http.get(answer["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(fetched.headers()["content-type"], "image/png");
        assert_eq!(fetched.bytes().await.unwrap().to_vec(), bytes);
        let request = server.http.post(format!("{}/souk/v1/client/cdn", server.base)).body("x");
        assert_eq!(send(request).await.0, StatusCode::UNAUTHORIZED);
    });
}
