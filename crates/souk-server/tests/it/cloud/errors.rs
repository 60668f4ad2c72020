//! Every errorCode of the gateway, on the doors that show them: refusals before any network traffic,
//! upstream failures (each with its own code), the address guard, and an upstream's own
//! `success: false`.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_store::conformance::{with_sqlite, Store};
use souk_types::Code;

use super::upstream::DevService;
use super::{assert_client_failure, client_call, logged, server_call, Tenant};
use crate::common::TestServer;

on_both_backends! {
    refusals_send_nothing => sqlite_refusals_send_nothing, postgres_refusals_send_nothing;
}

async fn refusals_send_nothing(store: Store) {
    let server = TestServer::start(store).await;
    let service = DevService::start().await;
    let tenant = Tenant::create(&server, &service, None).await;
    let other = Tenant::create(&server, &service, None).await;
    let (session, _) = tenant.session(&server, "alice").await;
    let good = tenant.request(&service.origin, "/hello", "GET");

    let mut unknown = good.clone();
    unknown["exts"]["cloudAppId"] = json!("9999999999999999");
    let answer = client_call(&server, &session, &unknown).await;
    assert_client_failure(&answer, StatusCode::NOT_FOUND, "APP_NOT_FOUND");
    let call = logged(&server, &answer.request_id).await;
    assert_eq!(
        call["errcode"],
        json!(Code::CloudAppNotFound.errcode()),
        "the code's errcode is logged"
    );

    // Another app's cloud app answers exactly like an unknown one.
    let mut foreign = good.clone();
    foreign["exts"]["cloudAppId"] = json!(other.cloud_app_id);
    assert_client_failure(
        &client_call(&server, &session, &foreign).await,
        StatusCode::NOT_FOUND,
        "APP_NOT_FOUND",
    );

    let mut elsewhere = good.clone();
    elsewhere["exts"]["domain"] = json!("https://not-listed.example");
    assert_client_failure(
        &client_call(&server, &session, &elsewhere).await,
        StatusCode::FORBIDDEN,
        "ORIGIN_NOT_WHITELISTED",
    );

    let mut put = good.clone();
    put["method"] = json!("PUT");
    assert_client_failure(
        &client_call(&server, &session, &put).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    );
    let mut lower = good.clone();
    lower["method"] = json!("get");
    assert_client_failure(
        &client_call(&server, &session, &lower).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    );

    let mut text = tenant.request(&service.origin, "/hello", "POST");
    text["headers"] = json!({"Content-Type": "text/plain"});
    text["body"] = json!("hi");
    assert_client_failure(
        &client_call(&server, &session, &text).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "CONTENT_TYPE_REFUSED",
    );

    // 128 KB of path, query and body at most (the test server's own body limit is 64 KB: the doors
    // read past it to apply the gateway's rule).
    let mut large = tenant.request(&service.origin, "/hello", "POST");
    large["body"] = json!({"blob": "x".repeat(130 * 1024)});
    assert_client_failure(
        &client_call(&server, &session, &large).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "REQUEST_TOO_LARGE",
    );
    let mut fits = tenant.request(&service.origin, "/hello", "POST");
    fits["body"] = json!({"blob": "x".repeat(100 * 1024)});
    assert_eq!(client_call(&server, &session, &fits).await.status, StatusCode::OK);
    let sent = service.count();

    let mut no_exts = good.clone();
    no_exts.as_object_mut().unwrap().remove("exts");
    assert_client_failure(
        &client_call(&server, &session, &no_exts).await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
    );
    let mut long_timeout = good.clone();
    long_timeout["exts"]["timeout"] = json!(20_000);
    assert_client_failure(
        &client_call(&server, &session, &long_timeout).await,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
    );

    // A disabled cloud app refuses, an enabled one serves again.
    let path = format!("/cloud-apps/{}", tenant.cloud_app_id);
    server
        .admin_ok("PATCH", &path, Some(json!({"disabled": true})), StatusCode::OK)
        .await;
    assert_client_failure(&client_call(&server, &session, &good).await, StatusCode::FORBIDDEN, "APP_DISABLED");
    // The server door: the envelope's shape with the request id.
    let answer = server_call(&server, &tenant.token, &good).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.body,
        json!({"success": false, "errorCode": "APP_DISABLED", "errorMessage": answer.body["errorMessage"], "requestID": answer.request_id})
    );
    assert_eq!(service.count(), sent, "no refusal reached the service");
    server
        .admin_ok("PATCH", &path, Some(json!({"disabled": false})), StatusCode::OK)
        .await;
    assert_eq!(client_call(&server, &session, &good).await.status, StatusCode::OK);

    // A bad session or token is refused by the doors' authentication.
    let answer = client_call(&server, "not-a-session", &good).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(server_call(&server, "not-a-token", &good).await.status, StatusCode::UNAUTHORIZED);
}

/// One upstream path on the client door: the status and errorCode expected.
async fn check_upstream(
    server: &TestServer,
    tenant: &Tenant,
    session: &str,
    origin: &str,
    path: &str,
    expect: (StatusCode, &str),
) -> Value {
    let answer = client_call(server, session, &tenant.request(origin, path, "GET")).await;
    assert_client_failure(&answer, expect.0, expect.1);
    let call = logged(server, &answer.request_id).await;
    assert_eq!(call["route"], json!("cloud_http_request"));
    assert_ne!(call["errcode"], json!(0), "{path}");
    answer.body
}

#[tokio::test]
async fn upstream_failures_have_their_own_codes() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let service = DevService::start().await;
        let tenant = Tenant::create(&server, &service, None).await;
        let (session, _) = tenant.session(&server, "alice").await;
        let origin = service.origin.as_str();
        let gateway = StatusCode::BAD_GATEWAY;
        check_upstream(&server, &tenant, &session, origin, "/status500", (gateway, "UPSTREAM_HTTP_STATUS")).await;
        check_upstream(&server, &tenant, &session, origin, "/html", (gateway, "UPSTREAM_NOT_ENVELOPE")).await;
        check_upstream(
            &server,
            &tenant,
            &session,
            origin,
            "/no-success",
            (gateway, "UPSTREAM_NOT_ENVELOPE"),
        )
        .await;
        for falsy in ["/falsy-zero", "/falsy-false", "/falsy-empty", "/falsy-missing"] {
            check_upstream(&server, &tenant, &session, origin, falsy, (gateway, "UPSTREAM_FALSY_DATA")).await;
        }
        let body = check_upstream(
            &server,
            &tenant,
            &session,
            origin,
            "/redirect-other",
            (gateway, "UPSTREAM_REDIRECT"),
        )
        .await;
        assert!(body["errorMessage"].as_str().unwrap().contains("another origin"), "{body}");
        check_upstream(&server, &tenant, &session, origin, "/big", (gateway, "UPSTREAM_TOO_LARGE")).await;

        // The deadline: cut off near it, not at the upstream's leisure.
        let mut slow = tenant.request(origin, "/slow", "GET");
        slow["exts"]["timeout"] = json!(500);
        let started = Instant::now();
        let answer = client_call(&server, &session, &slow).await;
        let took = started.elapsed();
        assert_client_failure(&answer, StatusCode::GATEWAY_TIMEOUT, "UPSTREAM_TIMEOUT");
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_millis(1200),
            "cut off at {took:?}"
        );

        // Nothing listens: a connection error, without the signed URL in the message.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let path = format!("/cloud-apps/{}", tenant.cloud_app_id);
        server
            .admin_ok("PATCH", &path, Some(json!({"whitelist": [origin, closed]})), StatusCode::OK)
            .await;
        let body = check_upstream(&server, &tenant, &session, &closed, "/hello", (gateway, "UPSTREAM_CONNECT_ERROR")).await;
        let message = body["errorMessage"].as_str().unwrap();
        assert!(!message.contains("sign=") && !message.contains("/hello"), "{message}");

        // The upstream's own failure: 422 with its code on the client door, the envelope on the
        // server door, errcode 0 in the log (the gateway worked).
        let answer = client_call(&server, &session, &tenant.request(origin, "/fail", "GET")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            answer.body,
            json!({"errorCode": "BIZ_ERR", "errorMessage": "bad thing", "requestID": answer.request_id})
        );
        assert_eq!(logged(&server, &answer.request_id).await["errcode"], json!(0));
        let answer = server_call(&server, &tenant.token, &tenant.request(origin, "/fail", "GET")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.body,
            json!({"success": false, "data": null, "errorCode": "BIZ_ERR", "errorMessage": "bad thing"})
        );
        let answer = client_call(&server, &session, &tenant.request(origin, "/fail-msg", "GET")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(answer.body["errorMessage"], json!("only msg"));
    })
    .await;
}

#[tokio::test]
async fn loopback_upstreams_are_refused_by_default() {
    with_sqlite(|store| async move {
        let server = TestServer::start_with_fetch(store, false).await;
        let service = DevService::start().await;
        let tenant = Tenant::create(&server, &service, None).await;
        let by_name = format!("http://localhost:{}", service.port);
        let path = format!("/cloud-apps/{}", tenant.cloud_app_id);
        server
            .admin_ok(
                "PATCH",
                &path,
                Some(json!({"whitelist": [service.origin, by_name]})),
                StatusCode::OK,
            )
            .await;
        let (session, _) = tenant.session(&server, "alice").await;
        for origin in [service.origin.as_str(), by_name.as_str()] {
            let answer = client_call(&server, &session, &tenant.request(origin, "/hello", "GET")).await;
            assert_client_failure(&answer, StatusCode::FORBIDDEN, "UPSTREAM_ADDRESS_REFUSED");
        }
        assert_eq!(service.count(), 0, "nothing was sent to a loopback address");
    })
    .await;
}
