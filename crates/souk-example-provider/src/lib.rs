//! An example provider for souk's service market: it checks souk's signature on every request and
//! answers the provider envelope `{success, data, errorCode, errorMessage}` (`wire.md` §5).
//!
//! Paths (any path takes a POST):
//! - `/fail` answers `success: false` with `errorCode: "demo-failure"`;
//! - `/slow` waits `?delay_ms=` (default 2000) before answering;
//! - anything else echoes the request: `data` is `{echo, service, api, request_id, appid}`.
//!
//! It is the upstream of `souk-bench`, so the request path does no logging and no extra copying.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::Router;
use serde_json::{json, Value};
use souk_sdk::provider::{parse_query, verify_request, DEFAULT_MAX_SKEW_MS};

/// `/slow` waits this long when no `delay_ms` is given.
const DEFAULT_SLOW_DELAY_MS: u64 = 2000;
/// `/slow` never waits longer than this, whatever `delay_ms` says.
const MAX_SLOW_DELAY_MS: u64 = 120_000;

/// What every request handler shares: the service's signing secret.
#[derive(Debug)]
struct Provider {
    secret: String,
}

/// The provider's router: one handler for every path, checking souk's signature with `secret`.
pub fn app(secret: impl Into<String>) -> Router {
    let state = Arc::new(Provider { secret: secret.into() });
    Router::new().fallback(handle).with_state(state)
}

/// Serves [`app`] on `listener` until the process ends (HTTP/1.1 keep-alive, `TCP_NODELAY`).
pub async fn serve(listener: tokio::net::TcpListener, secret: impl Into<String>) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // Small JSON answers on kept-alive connections: Nagle would only add latency. A failure
        // here costs speed, not correctness, so it is ignored.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(secret)).await
}

async fn handle(State(provider): State<Arc<Provider>>, method: Method, uri: Uri, body: Bytes) -> Response {
    if method != Method::POST {
        return envelope_failure(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "souk calls providers with POST",
        );
    }
    let query = parse_query(uri.query().unwrap_or(""));
    if let Err(why) = verify_request(&provider.secret, &query, &body, now_ms(), DEFAULT_MAX_SKEW_MS) {
        return envelope_failure(StatusCode::OK, "sign-check-failure", &format!("Illegal request: {why}"));
    }
    let param = |name: &str| query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    match uri.path() {
        "/fail" => return envelope_failure(StatusCode::OK, "demo-failure", "this is /fail: a provider logic failure on purpose"),
        "/slow" => {
            let delay_ms = param("delay_ms")
                .and_then(|text| text.parse().ok())
                .unwrap_or(DEFAULT_SLOW_DELAY_MS);
            tokio::time::sleep(Duration::from_millis(delay_ms.min(MAX_SLOW_DELAY_MS))).await;
        }
        _ => {}
    }
    let echo = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => value,
            Err(err) => return envelope_failure(StatusCode::OK, "bad-request", &format!("the body is not JSON: {err}")),
        }
    };
    let data = json!({
        "echo": echo,
        "service": param("service"),
        "api": param("api"),
        "request_id": param("request_id"),
        "appid": param("appid"),
    });
    json_response(
        StatusCode::OK,
        &json!({"success": true, "data": data, "errorCode": null, "errorMessage": null}),
    )
}

fn envelope_failure(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"success": false, "data": null, "errorCode": code, "errorMessage": message}),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
