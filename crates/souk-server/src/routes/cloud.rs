//! The three doors of the external-HTTP gateway (`cloud-gateway.md` §2 and §4), each one body parse,
//! one [`Souk::http_request`](souk_core::Souk::http_request), one encoding:
//!
//! | door | caller | success | upstream `success: false` | gateway failure |
//! | --- | --- | --- | --- | --- |
//! | `POST /souk/v1/client/cloud/http-request` | client session | 200, `data` alone | 422, `{errorCode, errorMessage, requestID}` | its status, `{errorCode, errorMessage, requestID}` |
//! | `POST /souk/v1/cloud/http-request?access_token=` | app server | 200, the four-field envelope | 200, the envelope | its status, `{success: false, errorCode, errorMessage, requestID}` |
//! | `POST /souk/v1/mtop/mtop.miniapp.cloud.application.request/1.0` | client session | 200, `{ret: [SUCCESS], data: envelope}` | 200, the same | 200, `{ret: [SUCCESS], data: {errCode, errMessage}}` |
//!
//! Why 422 on the client door: the client door answers `data` alone, so the status is the only thing
//! telling a page's `fetch` that the upstream said no; the platform SDK rejects such payloads too.
//! It is not a 5xx (souk and the upstream both worked, nothing to retry) and not 200 (a page would
//! take `{errorCode}` for data). The upstream's `errorCode` passes through as it is; souk's own codes
//! are the SCREAMING_SNAKE names of `docs/errcodes.md` with their 4xx/5xx statuses.
//!
//! The MTOP door takes the `data` of the stock SDK's `my.sendMtop` call (`taobao-gateway.md` §3.1) as
//! a JSON body, or the whole `my.sendMtop` options `{api, v, data}` as a JSON body, or a form body
//! (`application/x-www-form-urlencoded`) whose `data` field holds that JSON, as MTOP clients send it.
//! A refused session answers MTOP's own `FAIL_SYS_SESSION_EXPIRED`, which the SDK reports as `904`.
//!
//! Every call is logged: route `cloud_http_request` or `cloud_mtop`, the cloud app id as
//! `service_id`, the path as `api`, errcode 0 or the gateway code's errcode, and `cache_hit` when the
//! upstream was not called.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use souk_core::cloud::{CloudCaller, CloudEnvelope, CloudOutcome, CloudRequest};
use souk_core::model::CallRecord;
use souk_core::Failure;
use souk_types::cloud::{parse_mtop_request, parse_request, MAX_REQUEST_BYTES};
use souk_types::Code;

use crate::context::RequestContext;
use crate::extract::{call_record, read_limited, ClientAuth, TokenCaller};
use crate::render;
use crate::state::AppState;

/// The most bytes a door reads. The gateway's own rule (128 KB of path, query and body) is checked on
/// the parsed request with its own errorCode; the door reads enough beyond it for the JSON around the
/// request and the MTOP shape's double escaping, independently of `limits.max_body_bytes`.
pub const MAX_DOOR_BODY_BYTES: usize = 8 * MAX_REQUEST_BYTES;

/// The MTOP API the stock SDK calls.
pub const MTOP_API: &str = "mtop.miniapp.cloud.application.request";
/// MTOP's success `ret`, as the platform words it.
const MTOP_SUCCESS: &str = "SUCCESS::调用成功";
/// MTOP's `ret` for a missing or expired session (the SDK reports code `904`).
const MTOP_SESSION_EXPIRED: &str = "FAIL_SYS_SESSION_EXPIRED::Session过期";
/// MTOP's `ret` for a refused caller (the SDK reports code `500`).
const MTOP_ILLEGAL_ACCESS: &str = "FAIL_SYS_ILLEGAL_ACCESS::非法请求";
/// The status of the client door's answer to an upstream's `success: false`.
pub const UPSTREAM_FAILED_STATUS: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

fn bad_request(bad: souk_types::market::BadRequest) -> Failure {
    Failure::new(bad.code, bad.detail)
}

/// The four-field envelope as JSON (absent fields as `null`).
fn envelope_json(envelope: &CloudEnvelope) -> Value {
    json!({
        "success": envelope.success,
        "data": envelope.data,
        "errorCode": envelope.error_code,
        "errorMessage": envelope.error_message,
    })
}

/// Reads the body, counting it in the call record.
async fn read_body(body: Body, call: &mut CallRecord) -> Result<axum::body::Bytes, Failure> {
    let bytes = read_limited(body, MAX_DOOR_BODY_BYTES).await?;
    call.bytes_in = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    Ok(bytes)
}

/// The gateway call, with what the call log learns on the way.
async fn call_gateway(
    state: &AppState,
    context: &RequestContext,
    caller: &CloudCaller,
    request: &CloudRequest,
    call: &mut CallRecord,
) -> Result<CloudOutcome, Failure> {
    call.service_id = Some(request.exts.cloud_app_id.clone());
    call.api = Some(request.path.clone());
    let outcome = state.souk.http_request(caller, request, &context.request_id).await?;
    call.cache_hit = outcome.cache_hit;
    if !outcome.envelope.success {
        call.message = Some(format!(
            "upstream answered success: false (errorCode {})",
            outcome.envelope.error_code.as_deref().unwrap_or("none")
        ));
    }
    Ok(outcome)
}

/// Logs the call and answers `body` with `status`.
async fn finish(state: &AppState, context: &RequestContext, mut call: CallRecord, status: StatusCode, body: &Value) -> Response {
    let text = body.to_string();
    call.bytes_out = i64::try_from(text.len()).unwrap_or(i64::MAX);
    state.log_call(call, context).await;
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn note_failure(call: &mut CallRecord, failure: &Failure) {
    call.errcode = failure.code.errcode();
    call.message = Some(failure.message());
}

/// `POST /souk/v1/client/cloud/http-request` (client session) `{path, method, params, body, headers,
/// exts}` → `data` alone.
pub async fn client_http_request(
    State(state): State<AppState>,
    context: RequestContext,
    ClientAuth(client): ClientAuth,
    body: Body,
) -> Response {
    let mut call = call_record(&context, "cloud_http_request");
    call.appid = Some(client.app.appid.clone());
    call.openid = Some(client.openid().to_owned());
    let result = async {
        let bytes = read_body(body, &mut call).await?;
        let request = parse_request(&bytes).map_err(bad_request)?;
        let caller = state.souk.cloud_caller_for_client(&client).await?;
        call_gateway(&state, &context, &caller, &request, &mut call).await
    }
    .await;
    let (status, body) = match result {
        Ok(outcome) if outcome.envelope.success => (StatusCode::OK, outcome.envelope.data),
        Ok(outcome) => {
            let mut body = json!({ "requestID": &*context.request_id });
            if let Some(code) = outcome.envelope.error_code {
                body["errorCode"] = json!(code);
            }
            if let Some(message) = outcome.envelope.error_message {
                body["errorMessage"] = json!(message);
            }
            (UPSTREAM_FAILED_STATUS, body)
        }
        Err(failure) => {
            note_failure(&mut call, &failure);
            render::cloud_client_failure_body(&failure, &context.request_id)
        }
    };
    finish(&state, &context, call, status, &body).await
}

/// `POST /souk/v1/cloud/http-request?access_token=` (the app's server, the console test page) → the
/// whole four-field envelope. The caller has no user: `open_id`, `mix_nick` and `user_nick` are not
/// sent, and `cacheType` 0 and 2 are refused.
pub async fn server_http_request(
    State(state): State<AppState>,
    context: RequestContext,
    TokenCaller(caller): TokenCaller,
    body: Body,
) -> Response {
    let mut call = call_record(&context, "cloud_http_request");
    call.appid = Some(caller.app.appid.clone());
    let result = async {
        let bytes = read_body(body, &mut call).await?;
        let request = parse_request(&bytes).map_err(bad_request)?;
        let caller = CloudCaller::for_app(caller.app.appid.clone());
        call_gateway(&state, &context, &caller, &request, &mut call).await
    }
    .await;
    let (status, body) = match result {
        Ok(outcome) => (StatusCode::OK, envelope_json(&outcome.envelope)),
        Err(failure) => {
            note_failure(&mut call, &failure);
            render::cloud_server_failure_body(&failure, &context.request_id)
        }
    };
    finish(&state, &context, call, status, &body).await
}

/// An MTOP answer: always HTTP 200, the outcome in `ret` and `data`.
fn mtop_answer(ret: &str, data: Value) -> Value {
    json!({ "api": MTOP_API, "v": "1.0", "ret": [ret], "data": data })
}

/// The MTOP `data` object's JSON from the body (see the module docs for the three shapes).
fn mtop_data(headers: &HeaderMap, bytes: &[u8]) -> Result<Vec<u8>, Failure> {
    let invalid = |detail: &str| Failure::new(Code::CloudInvalidRequest, detail.to_owned());
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return form_urlencoded::parse(bytes)
            .find(|(name, _)| name == "data")
            .map(|(_, data)| data.into_owned().into_bytes())
            .ok_or_else(|| invalid("the form has no data field"));
    }
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(bytes) else {
        // Not an object: the parser says exactly what is wrong.
        return Ok(bytes.to_vec());
    };
    if fields.contains_key("path") {
        return Ok(bytes.to_vec());
    }
    // The whole `my.sendMtop` options: `{api, v, data}`.
    if let Some(api) = fields.get("api").and_then(Value::as_str) {
        if api != MTOP_API {
            return Err(invalid("this door serves mtop.miniapp.cloud.application.request only"));
        }
    }
    match fields.remove("data") {
        Some(Value::String(data)) => Ok(data.into_bytes()),
        Some(data @ Value::Object(_)) => Ok(data.to_string().into_bytes()),
        _ => Err(invalid("path is required (or send the MTOP options with their data)")),
    }
}

/// `POST /souk/v1/mtop/mtop.miniapp.cloud.application.request/1.0` (client session): the stock
/// `@tbmp/mp-cloud-sdk`'s own hop (`cloud-gateway.md` §4).
pub async fn mtop_http_request(
    State(state): State<AppState>,
    context: RequestContext,
    client: Result<ClientAuth, Response>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = match client {
        Ok(ClientAuth(client)) => client,
        // The extractor logged the refusal; MTOP clients expect MTOP's own session failure.
        Err(refusal) => {
            let ret = if refusal.status() == StatusCode::UNAUTHORIZED {
                MTOP_SESSION_EXPIRED
            } else {
                MTOP_ILLEGAL_ACCESS
            };
            return (StatusCode::OK, axum::Json(mtop_answer(ret, json!({})))).into_response();
        }
    };
    let mut call = call_record(&context, "cloud_mtop");
    call.appid = Some(client.app.appid.clone());
    call.openid = Some(client.openid().to_owned());
    let result = async {
        let bytes = read_body(body, &mut call).await?;
        let data = mtop_data(&headers, &bytes)?;
        let request = parse_mtop_request(&data).map_err(bad_request)?;
        let caller = state.souk.cloud_caller_for_client(&client).await?;
        call_gateway(&state, &context, &caller, &request, &mut call).await
    }
    .await;
    let payload = match result {
        Ok(outcome) => envelope_json(&outcome.envelope),
        Err(failure) => {
            note_failure(&mut call, &failure);
            render::mtop_failure_payload(&failure, &context.request_id)
        }
    };
    finish(&state, &context, call, StatusCode::OK, &mtop_answer(MTOP_SUCCESS, payload)).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// The data found, as JSON (key order aside), or the code of the refusal.
    fn data_of(content_type: Option<&str>, body: &str) -> Result<Value, Code> {
        let mut headers = HeaderMap::new();
        if let Some(content_type) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        }
        mtop_data(&headers, body.as_bytes())
            .map(|bytes| serde_json::from_slice(&bytes).unwrap())
            .map_err(|failure| failure.code)
    }

    #[test]
    fn mtop_bodies_in_three_shapes() {
        let data = r#"{"path":"/a","options":"{}"}"#;
        let expected = json!({"path": "/a", "options": "{}"});
        assert_eq!(data_of(Some("application/json"), data).unwrap(), expected);
        assert_eq!(data_of(None, data).unwrap(), expected);
        let wrapped = format!(r#"{{"api":"{MTOP_API}","v":"1.0","data":{data}}}"#);
        assert_eq!(data_of(Some("application/json"), &wrapped).unwrap(), expected);
        let as_string = json!({"api": MTOP_API, "data": data}).to_string();
        assert_eq!(data_of(None, &as_string).unwrap(), expected);
        let form: String = form_urlencoded::Serializer::new(String::new()).append_pair("data", data).finish();
        assert_eq!(
            data_of(Some("application/x-www-form-urlencoded; charset=UTF-8"), &form).unwrap(),
            expected
        );
        assert_eq!(
            data_of(Some("application/x-www-form-urlencoded"), "x=1"),
            Err(Code::CloudInvalidRequest)
        );
        assert_eq!(data_of(None, r#"{"api":"mtop.other","data":{}}"#), Err(Code::CloudInvalidRequest));
        assert_eq!(data_of(None, r#"{"v":"1.0"}"#), Err(Code::CloudInvalidRequest));
        // Not an object: left to the parser, which names the problem.
        assert_eq!(data_of(None, "[1]").unwrap(), json!([1]));
    }
}
