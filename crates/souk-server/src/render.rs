//! Where a [`Failure`] becomes an HTTP answer, in the two styles souk speaks:
//! WeChat's (HTTP 200, `{errcode, errmsg: "... rid: <id>"}`) and souk's own (honest status,
//! `{errCode, errMsg, requestID}`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use souk_core::Failure;
use souk_types::admin::ErrorBody;

/// WeChat's JSON content type, as the platform sends it.
pub const WECHAT_JSON: &str = "application/json; encoding=utf-8";

/// A WeChat-style JSON answer: always HTTP 200.
pub fn wechat_json(body: &Value) -> Response {
    wechat_json_text(body.to_string())
}

/// [`wechat_json`] of a body already serialized.
pub fn wechat_json_text(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(WECHAT_JSON));
    response
}

/// The `errmsg` of a WeChat-style failure.
pub fn wechat_errmsg(failure: &Failure, request_id: &str) -> String {
    format!("{} rid: {request_id}", failure.message())
}

/// The body of a WeChat-style failure.
pub fn wechat_failure_body(failure: &Failure, request_id: &str) -> Value {
    let mut body = json!({ "errcode": failure.code.errcode(), "errmsg": wechat_errmsg(failure, request_id) });
    if let Some(code) = &failure.provider_errcode {
        body["provider_errcode"] = json!(code);
    }
    if let Some(message) = &failure.provider_errmsg {
        body["provider_errmsg"] = json!(message);
    }
    body
}

/// A WeChat-style failure answer.
pub fn wechat_failure(failure: &Failure, request_id: &str) -> Response {
    wechat_json(&wechat_failure_body(failure, request_id))
}

/// A souk-style failure answer (admin API), with the code's HTTP status.
pub fn souk_failure(failure: &Failure, request_id: &str) -> Response {
    let status = StatusCode::from_u16(failure.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ErrorBody {
        err_code: json!(failure.code.name()),
        err_msg: failure.message(),
        request_id: request_id.to_owned(),
    };
    (status, axum::Json(body)).into_response()
}

/// A client-API failure: the honest HTTP status and `{errCode, errMsg, requestID}` with seed 000's
/// numeric client code. A rate-limit refusal also says when to come back (`Retry-After` in seconds and
/// the `RateLimit-Reset` header of the IETF rate-limit fields draft).
pub fn client_failure(failure: &Failure, request_id: &str, retry_after_ms: Option<u64>) -> Response {
    let status = StatusCode::from_u16(failure.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = json!({ "errCode": failure.code.client_code(), "errMsg": failure.message(), "requestID": request_id });
    if let Some(message) = &failure.provider_errmsg {
        body["providerErrMsg"] = json!(message);
    }
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(retry_after_ms) = retry_after_ms {
        let seconds = retry_after_ms.div_ceil(1000).max(1);
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value.clone());
            response.headers_mut().insert("ratelimit-reset", value);
            response.headers_mut().insert("ratelimit-remaining", HeaderValue::from_static("0"));
        }
    }
    response
}

/// The code's HTTP status.
fn status_of(failure: &Failure) -> StatusCode {
    StatusCode::from_u16(failure.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A cloud-gateway failure on the client door (`cloud-gateway.md` §2): the code's HTTP status and
/// `{errorCode, errorMessage, requestID}`, `errorCode` being the stable SCREAMING_SNAKE name.
pub fn cloud_client_failure_body(failure: &Failure, request_id: &str) -> (StatusCode, Value) {
    let body = json!({ "errorCode": failure.code.error_code(), "errorMessage": failure.message(), "requestID": request_id });
    (status_of(failure), body)
}

/// A cloud-gateway failure on the server door: the code's HTTP status and the envelope's shape,
/// `{success: false, errorCode, errorMessage, requestID}`.
pub fn cloud_server_failure_body(failure: &Failure, request_id: &str) -> (StatusCode, Value) {
    let body = json!({
        "success": false,
        "errorCode": failure.code.error_code(),
        "errorMessage": failure.message(),
        "requestID": request_id,
    });
    (status_of(failure), body)
}

/// A cloud-gateway failure as the MTOP payload the stock SDK rejects (`taobao-gateway.md` §3.3):
/// `{errCode, errMessage}`, the request id at the end of the message as in WeChat's `errmsg`.
pub fn mtop_failure_payload(failure: &Failure, request_id: &str) -> Value {
    json!({ "errCode": failure.code.error_code(), "errMessage": wechat_errmsg(failure, request_id) })
}
