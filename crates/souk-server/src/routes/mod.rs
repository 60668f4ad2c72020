//! The WeChat-compatible routes and the operational ones, one module per API family.

pub mod cdn;
pub mod client;
pub mod cloud;
pub mod img;
pub mod media;
pub mod messages;
pub mod ops;
pub mod paid_unionid;
pub mod provider;
pub mod service_market;
pub mod token;
pub mod wxacode;

use axum::response::Response;
use serde_json::Value;
use souk_core::model::CallRecord;
use souk_core::Failure;
use souk_types::Code;

use crate::context::RequestContext;
use crate::render;
use crate::state::AppState;

/// Answers a WeChat path called with the wrong method (43002 / 43001).
pub async fn require_post(context: RequestContext) -> Response {
    render::wechat_failure(&Failure::new(Code::RequirePost, ""), &context.request_id)
}

/// Answers a WeChat path called with the wrong method (43001).
pub async fn require_get(context: RequestContext) -> Response {
    render::wechat_failure(&Failure::new(Code::RequireGet, ""), &context.request_id)
}

/// Any path souk does not serve: 404 with errcode 40066, as `wire.md` §1 says.
pub async fn not_found(context: RequestContext) -> Response {
    let failure = Failure::new(Code::InvalidUrl, "");
    let mut response = render::wechat_failure(&failure, &context.request_id);
    *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
    response
}

/// The WeChat-style body of a failure, noted in the call record (errcode and message).
pub(crate) fn noted_failure(call: &mut CallRecord, failure: &Failure, request_id: &str) -> Value {
    call.errcode = failure.code.errcode();
    call.message = Some(failure.message());
    render::wechat_failure_body(failure, request_id)
}

/// Logs the call with the answer's size, then answers the WeChat-style JSON body.
pub(crate) async fn logged_wechat_json(state: &AppState, context: &RequestContext, mut call: CallRecord, body: &Value) -> Response {
    let text = body.to_string();
    call.bytes_out = i64::try_from(text.len()).unwrap_or(i64::MAX);
    state.log_call(call, context).await;
    render::wechat_json_text(text)
}
