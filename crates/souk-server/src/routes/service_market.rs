//! `POST /wxa/servicemarket`: the service-market call, answered in WeChat's shape with `data` as a
//! JSON string (or, for `async: true`, the job's `request_id`); `POST /wxa/servicemarketretrieve`: an
//! async job's result.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use souk_core::jobs::AsyncResult;
use souk_core::market::{InvokeSuccess, Invoker};
use souk_core::Failure;
use souk_types::market::parse_invoke_request;
use souk_types::Code;

use crate::context::RequestContext;
use crate::extract::{call_record, read_limited, WechatCaller};
use crate::routes::{logged_wechat_json, noted_failure};
use crate::state::AppState;

/// `POST /wxa/servicemarket?access_token=`.
pub async fn invoke(State(state): State<AppState>, context: RequestContext, WechatCaller(caller): WechatCaller, body: Body) -> Response {
    let mut call = call_record(&context, "servicemarket");
    call.appid = Some(caller.app.appid.clone());
    let parsed = match read_limited(body, state.settings.max_body_bytes).await {
        Ok(bytes) => {
            call.bytes_in = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
            parse_invoke_request(&bytes).map_err(|bad| Failure::new(bad.code, bad.detail))
        }
        Err(failure) => Err(failure),
    };
    let body = match parsed {
        Ok(request) => {
            call.service_id = Some(request.service.clone());
            call.api = Some(request.api.clone());
            let (answer, trace) = state
                .souk
                .invoke_service(&Invoker::for_app(caller.app.clone()), &request, &context.request_id)
                .await;
            call.package_id = trace.package_id;
            call.cache_hit = trace.replayed;
            match answer.outcome {
                Ok(InvokeSuccess::Data(data)) => json!({ "errcode": 0, "errmsg": "ok", "data": data }),
                Ok(InvokeSuccess::Accepted) => json!({ "errcode": 0, "errmsg": "ok", "request_id": answer.request_id }),
                Err(stored) => noted_failure(&mut call, &stored.to_failure(), &answer.request_id),
            }
        }
        Err(failure) => noted_failure(&mut call, &failure, &context.request_id),
    };
    logged_wechat_json(&state, &context, call, &body).await
}

/// `POST /wxa/servicemarketretrieve?access_token=` with `{request_id}`: 9301015 while the job runs,
/// 9301014 for an unknown id or another app's, the job's own errcode if it failed, else the data.
/// Never charged.
pub async fn retrieve(State(state): State<AppState>, context: RequestContext, WechatCaller(caller): WechatCaller, body: Body) -> Response {
    let mut call = call_record(&context, "servicemarketretrieve");
    call.appid = Some(caller.app.appid.clone());
    let result = match read_limited(body, state.settings.max_body_bytes).await {
        Ok(bytes) => {
            call.bytes_in = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
            match parse_retrieve_request(&bytes) {
                Ok(request_id) => state
                    .souk
                    .async_result(&caller.app.appid, &request_id)
                    .await
                    .map(|result| (request_id, result)),
                Err(failure) => Err(failure),
            }
        }
        Err(failure) => Err(failure),
    };
    let body = match result {
        // WeChat answers a new request_id here; souk answers the job's own, which identifies the
        // result just as well and lets a caller match answers to jobs.
        Ok((request_id, AsyncResult::Done(data))) => json!({ "errcode": 0, "errmsg": "ok", "data": data, "request_id": request_id }),
        Ok((request_id, AsyncResult::Pending)) => {
            let failure = Failure::new(Code::MarketPending, format!("async job {request_id} is still running"));
            noted_failure(&mut call, &failure, &context.request_id)
        }
        Ok((_, AsyncResult::Failed(failure))) | Err(failure) => noted_failure(&mut call, &failure, &context.request_id),
    };
    logged_wechat_json(&state, &context, call, &body).await
}

/// `{request_id}`: 44002 for an empty body, 47001 for one that is not a JSON object or a
/// `request_id` that is not a string, 9301001 for a missing one.
fn parse_retrieve_request(body: &[u8]) -> Result<String, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::new(Code::EmptyPostData, "the request body is empty"));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| Failure::new(Code::DataFormatError, format!("the body is not JSON: {err}")))?;
    let serde_json::Value::Object(fields) = value else {
        return Err(Failure::new(Code::DataFormatError, "the body must be a JSON object"));
    };
    match fields.get("request_id") {
        Some(serde_json::Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        None | Some(serde_json::Value::Null | serde_json::Value::String(_)) => {
            Err(Failure::new(Code::MarketBadInput, "request_id is missing"))
        }
        Some(_) => Err(Failure::new(Code::DataFormatError, "request_id must be a string")),
    }
}
