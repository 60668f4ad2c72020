//! The client and server doors on a good day: what the developer service receives (signed query with
//! the context parameters, the exact body), what the caller gets back (data alone, or the four-field
//! envelope), consent for `user_nick`, CORS, and the call log.

use axum::http::StatusCode;
use serde_json::json;
use souk_store::conformance::{with_sqlite, Store};

use super::upstream::DevService;
use super::{client_call, logged, server_call, Tenant};
use crate::common::TestServer;

on_both_backends! {
    signed_calls_carry_the_context => sqlite_signed_calls_carry_the_context, postgres_signed_calls_carry_the_context;
    user_nick_only_after_consent => sqlite_user_nick_only_after_consent, postgres_user_nick_only_after_consent;
}

async fn signed_calls_carry_the_context(store: Store) {
    let server = TestServer::start(store).await;
    let service = DevService::start().await;
    let tenant = Tenant::create(&server, &service, None).await;
    let (session, openid) = tenant.session(&server, "alice").await;

    // GET: the caller tries to pose as someone else with context parameter names.
    let mut request = tenant.request(&service.origin, "/hello", "GET");
    request["params"] = json!({"name": "hanruo", "n": 7, "space": "a b&c=d+e", "open_id": "forged", "mix_nick": "forged", "sign": "forged", "app_key": "forged", "empty": ""});
    let answer = client_call(&server, &session, &request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["hello"], json!("world"), "the client door answers data alone");
    assert!(answer.body.get("extra").is_none() && answer.body.get("success").is_none());
    let seen = service.last();
    assert!(seen.sign_ok, "the signature verifies: {:?}", seen.query);
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("GET", "/hello"));
    assert_eq!(seen.param("open_id"), Some(openid.as_str()), "context parameters win");
    assert_eq!(seen.param("app_key"), Some(tenant.app_key.as_str()));
    assert_eq!(seen.param("mini_app_id"), Some(tenant.appid.as_str()));
    assert_eq!(seen.param("env"), Some("online"));
    assert_eq!(seen.param("request_id"), Some(answer.request_id.as_str()));
    assert!(seen
        .param("mix_nick")
        .is_some_and(|nick| nick.starts_with("t01") && nick != "forged"));
    assert!(seen.param("timestamp").is_some_and(|at| at.len() == 19));
    for name in ["open_id", "mix_nick", "sign", "app_key"] {
        assert_eq!(seen.count(name), 1, "{name} is sent once");
    }
    assert_eq!(seen.param("user_nick"), None, "no consent, no nick");
    assert_eq!(seen.param("sign_method"), None, "md5 is not announced");
    assert_eq!(seen.param("empty"), None, "empty values are left out");
    assert_eq!((seen.param("name"), seen.param("n")), (Some("hanruo"), Some("7")));
    assert_eq!(seen.param("space"), Some("a b&c=d+e"), "values survive percent-encoding");
    assert!(seen.body.is_empty());

    // The same mix_nick next time, another for another user.
    let mix_nick = seen.param("mix_nick").unwrap().to_owned();
    client_call(&server, &session, &request).await;
    assert_eq!(service.last().param("mix_nick"), Some(mix_nick.as_str()));
    let (bob, _) = tenant.session(&server, "bob").await;
    client_call(&server, &bob, &request).await;
    assert_ne!(service.last().param("mix_nick"), Some(mix_nick.as_str()));

    // POST: the exact body bytes are signed and sent as JSON; caller headers pass, hop-by-hop do not.
    let mut request = tenant.request(&service.origin, "/hello", "POST");
    request["body"] = json!({"xftest": "hhh", "id": "1234", "nested": {"k": [1, 2]}});
    request["headers"] = json!({"X-Trace": "t-1", "Content-Type": "application/json; charset=utf-8", "Connection": "close"});
    let answer = client_call(&server, &session, &request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["body"], request["body"]);
    let seen = service.last();
    assert!(seen.sign_ok, "POST signature (query + body) verifies");
    assert_eq!(seen.method, "POST");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(), request["body"]);
    assert_eq!(seen.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(seen.headers.get("x-trace").map(String::as_str), Some("t-1"));

    // The server door: the whole four-field envelope, no user.
    let answer = server_call(&server, &tenant.token, &request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let fields: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    assert_eq!(fields.len(), 4, "only the four fields: {fields:?}");
    assert_eq!(answer.body["success"], json!(true));
    assert_eq!(answer.body["data"]["hello"], json!("world"));
    let seen = service.last();
    assert!(seen.sign_ok);
    assert_eq!(
        (seen.param("open_id"), seen.param("mix_nick")),
        (None, None),
        "no user on the server door"
    );

    // Another signing method is announced and verifies too.
    let hmac = Tenant::create(&server, &service, Some("hmac-sha256")).await;
    let answer = server_call(&server, &hmac.token, &hmac.request(&service.origin, "/hello", "GET")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let seen = service.last();
    assert!(seen.sign_ok && seen.param("sign_method") == Some("hmac-sha256"));

    // A redirect within the origin is followed.
    let answer = client_call(&server, &session, &tenant.request(&service.origin, "/redirect-same", "GET")).await;
    assert_eq!((answer.status, answer.body["hello"].clone()), (StatusCode::OK, json!("world")));

    // The call log: route, app, user, cloud app and path, errcode 0, sizes.
    let call = logged(&server, &answer.request_id).await;
    assert_eq!(call["route"], json!("cloud_http_request"));
    assert_eq!(call["appid"], json!(tenant.appid));
    assert_eq!(call["openid"], json!(openid));
    assert_eq!(call["service_id"], json!(tenant.cloud_app_id));
    assert_eq!(call["api"], json!("/redirect-same"));
    assert_eq!((call["errcode"].clone(), call["cache_hit"].clone()), (json!(0), json!(false)));
    assert!(call["bytes_in"].as_i64().unwrap() > 0 && call["bytes_out"].as_i64().unwrap() > 0);
}

async fn user_nick_only_after_consent(store: Store) {
    let server = TestServer::start(store).await;
    let service = DevService::start().await;
    let tenant = Tenant::create(&server, &service, None).await;
    let (session, _) = tenant.session(&server, "alice").await;
    let request = tenant.request(&service.origin, "/hello", "GET");
    client_call(&server, &session, &request).await;
    assert_eq!(service.last().param("user_nick"), None);

    let consent = server
        .http
        .post(format!("{}/souk/v1/client/authorize", server.base))
        .bearer_auth(&session)
        .body(json!({"scopes": ["scope.userInfo"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status().as_u16(), 200);
    let answer = client_call(&server, &session, &request).await;
    assert_eq!(answer.status, StatusCode::OK);
    let seen = service.last();
    assert!(seen.sign_ok);
    assert_eq!(seen.param("user_nick"), Some("Ann"), "the nick once the user consented");
}

#[tokio::test]
async fn doors_answer_cors_preflights() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        for path in [
            "/souk/v1/client/cloud/http-request",
            "/souk/v1/mtop/mtop.miniapp.cloud.application.request/1.0",
        ] {
            let response = server
                .http
                .request(reqwest::Method::OPTIONS, format!("{}{path}", server.base))
                .header("origin", "https://page.example")
                .header("access-control-request-method", "POST")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 204, "{path}");
            assert_eq!(
                response.headers().get("access-control-allow-origin").unwrap(),
                "https://page.example"
            );
        }
    })
    .await;
}
