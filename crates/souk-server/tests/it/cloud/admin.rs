//! The cloud apps' admin API: create (secret shown once), validation, list with paging, show,
//! update, rotate, and the developer service verifying with the new secret.

use axum::http::StatusCode;
use serde_json::json;
use souk_store::conformance::Store;
use souk_types::sign::SignMethod;

use super::upstream::DevService;
use super::{client_call, Tenant};
use crate::common::TestServer;

on_both_backends! {
    cloud_apps_are_administered => sqlite_cloud_apps_are_administered, postgres_cloud_apps_are_administered;
}

async fn cloud_apps_are_administered(store: Store) {
    let server = TestServer::start(store).await;
    let service = DevService::start().await;
    let (appid, _) = server.create_app().await;

    let created = server
        .admin_ok(
            "POST",
            "/cloud-apps",
            Some(json!({"appid": appid, "whitelist": ["HTTPS://API.Example.com:443/", "http://b.example:8080"]})),
            StatusCode::CREATED,
        )
        .await;
    let id = created["cloud_app_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    assert!(created["secret"].as_str().is_some_and(|secret| secret.len() >= 32));
    assert!(created["app_key"].as_str().is_some_and(|key| !key.is_empty()));
    assert_eq!(
        created["whitelist"],
        json!(["https://api.example.com", "http://b.example:8080"]),
        "normalised"
    );
    assert_eq!(
        (created["env"].clone(), created["sign_method"].clone()),
        (json!("online"), json!("md5"))
    );
    assert_eq!(created["disabled"], json!(false));

    let shown = server.admin_ok("GET", &format!("/cloud-apps/{id}"), None, StatusCode::OK).await;
    assert!(shown.get("secret").is_none(), "the secret is shown only once");
    assert_eq!(shown["appid"], json!(appid));

    for (body, status) in [
        (json!({"appid": appid, "whitelist": []}), StatusCode::BAD_REQUEST),
        (json!({"appid": appid, "whitelist": ["example.com"]}), StatusCode::BAD_REQUEST),
        (
            json!({"appid": appid, "whitelist": ["https://a.example/path"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"appid": appid, "whitelist": ["https://a.example"], "sign_method": "sha1"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"appid": appid, "whitelist": ["https://a.example"], "unknown": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"appid": "wx-none", "whitelist": ["https://a.example"]}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, answer) = server.admin("POST", "/cloud-apps", Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    let (status, _) = server.admin("GET", "/cloud-apps/0000000000000000", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A second one, then paging by one.
    let second = server
        .admin_ok(
            "POST",
            "/cloud-apps",
            Some(json!({"appid": appid, "whitelist": ["https://c.example"], "env": "test", "sign_method": "hmac"})),
            StatusCode::CREATED,
        )
        .await;
    let page = server
        .admin_ok("GET", &format!("/cloud-apps?appid={appid}&limit=1"), None, StatusCode::OK)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next"].as_str().unwrap().to_owned();
    let rest = server
        .admin_ok(
            "GET",
            &format!("/cloud-apps?appid={appid}&limit=1&cursor={next}"),
            None,
            StatusCode::OK,
        )
        .await;
    let mut ids = vec![page["items"][0]["cloud_app_id"].clone(), rest["items"][0]["cloud_app_id"].clone()];
    ids.sort_by_key(|id| id.as_str().unwrap().to_owned());
    let mut expected = vec![created["cloud_app_id"].clone(), second["cloud_app_id"].clone()];
    expected.sort_by_key(|id| id.as_str().unwrap().to_owned());
    assert_eq!(ids, expected);
    let (other_appid, _) = server.create_app().await;
    let none = server
        .admin_ok("GET", &format!("/cloud-apps?appid={other_appid}"), None, StatusCode::OK)
        .await;
    assert_eq!(none["items"], json!([]));

    let patched = server
        .admin_ok(
            "PATCH",
            &format!("/cloud-apps/{id}"),
            Some(json!({"whitelist": ["https://d.example"], "env": "pre", "sign_method": "hmac-sha256", "disabled": true})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(patched["whitelist"], json!(["https://d.example"]));
    assert_eq!(
        (patched["env"].clone(), patched["sign_method"].clone(), patched["disabled"].clone()),
        (json!("pre"), json!("hmac-sha256"), json!(true))
    );
    let (status, _) = server
        .admin("PATCH", &format!("/cloud-apps/{id}"), Some(json!({"whitelist": ["nope"]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Rotation: the service verifies with the new secret from the next call on.
    let tenant = Tenant::create(&server, &service, None).await;
    let (session, _) = tenant.session(&server, "alice").await;
    let request = tenant.request(&service.origin, "/hello", "GET");
    client_call(&server, &session, &request).await;
    assert!(service.last().sign_ok);
    let rotated = server
        .admin_ok("POST", &format!("/cloud-apps/{}/secret", tenant.cloud_app_id), None, StatusCode::OK)
        .await;
    let new_secret = rotated["secret"].as_str().unwrap();
    client_call(&server, &session, &request).await;
    assert!(!service.last().sign_ok, "the old secret no longer verifies");
    service.trust(&tenant.app_key, new_secret, SignMethod::Md5);
    client_call(&server, &session, &request).await;
    assert!(service.last().sign_ok, "the new one does");
}
