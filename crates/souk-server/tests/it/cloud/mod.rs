//! The external-HTTP gateway end to end (`cloud-gateway.md`): a real developer service on loopback
//! that checks souk's signature, the three doors, every errorCode, the four cache types, the MTOP hop
//! of the stock SDK, and the cloud apps' admin API.

mod admin;
mod cache;
mod doors;
mod errors;
mod mtop;
mod upstream;

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_types::sign::SignMethod;

use crate::common::TestServer;
use upstream::DevService;

/// An app with a token, a cloud app whitelisting the developer service, and client sessions.
pub struct Tenant {
    /// The app.
    pub appid: String,
    /// An access token of the app.
    pub token: String,
    /// The cloud app's id.
    pub cloud_app_id: String,
    /// Its app key.
    pub app_key: String,
}

impl Tenant {
    /// Creates an app and a cloud app of it whitelisting `origins`, signed with `sign_method`; the
    /// service trusts its secret.
    pub async fn create(server: &TestServer, service: &DevService, sign_method: Option<&str>) -> Tenant {
        let (appid, secret) = server.create_app().await;
        let token = server.token(&appid, &secret).await;
        let mut new = json!({"appid": appid, "whitelist": [service.origin]});
        if let Some(method) = sign_method {
            new["sign_method"] = json!(method);
        }
        let created = server.admin_ok("POST", "/cloud-apps", Some(new), StatusCode::CREATED).await;
        let app_key = created["app_key"].as_str().unwrap().to_owned();
        let method = SignMethod::parse(created["sign_method"].as_str().unwrap()).unwrap();
        service.trust(&app_key, created["secret"].as_str().unwrap(), method);
        Tenant {
            appid,
            token,
            cloud_app_id: created["cloud_app_id"].as_str().unwrap().to_owned(),
            app_key,
        }
    }

    /// A client session of `user` (nick `Ann`), and its openid.
    pub async fn session(&self, server: &TestServer, user: &str) -> (String, String) {
        let response = server
            .http
            .post(format!("{}/souk/v1/client-sessions?access_token={}", server.base, self.token))
            .body(json!({"user": user, "nick": "Ann"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        (
            body["session"].as_str().unwrap().to_owned(),
            body["openid"].as_str().unwrap().to_owned(),
        )
    }

    /// A request body for the client and server doors to `path` on `origin`.
    pub fn request(&self, origin: &str, path: &str, method: &str) -> Value {
        json!({
            "path": path,
            "method": method,
            "exts": {"cloudAppId": self.cloud_app_id, "domain": origin, "timeout": 3000}
        })
    }
}

/// An answer: status, `x-request-id`, JSON body.
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The request id souk gave the call.
    pub request_id: String,
    /// The body (`null` when empty).
    pub body: Value,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    Answer { status, request_id, body }
}

/// `POST /souk/v1/client/cloud/http-request` with a session.
pub async fn client_call(server: &TestServer, session: &str, body: &Value) -> Answer {
    let request = server
        .http
        .post(format!("{}/souk/v1/client/cloud/http-request", server.base))
        .bearer_auth(session)
        .header("content-type", "application/json")
        .body(body.to_string());
    answer(request).await
}

/// `POST /souk/v1/cloud/http-request?access_token=`.
pub async fn server_call(server: &TestServer, token: &str, body: &Value) -> Answer {
    let request = server
        .http
        .post(format!("{}/souk/v1/cloud/http-request?access_token={token}", server.base))
        .body(body.to_string());
    answer(request).await
}

/// Asserts a gateway failure on the client door: status and errorCode, with the request id.
#[track_caller]
pub fn assert_client_failure(answer: &Answer, status: StatusCode, error_code: &str) {
    assert_eq!(
        (answer.status, answer.body["errorCode"].as_str()),
        (status, Some(error_code)),
        "{}",
        answer.body
    );
    assert_eq!(answer.body["requestID"].as_str(), Some(answer.request_id.as_str()));
    assert!(answer.body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The logged call of a request id.
pub async fn logged(server: &TestServer, request_id: &str) -> Value {
    let calls = server.calls(&format!("request_id={request_id}")).await;
    assert_eq!(calls.len(), 1, "one logged call for {request_id}: {calls:?}");
    calls[0].clone()
}
