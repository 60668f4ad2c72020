//! `POST /wxa/servicemarket`: the sync service-market call, answered in WeChat's shape with `data` as a
//! JSON string.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use souk_core::market::Invoker;
use souk_core::Failure;
use souk_types::market::parse_invoke_request;

use crate::context::RequestContext;
use crate::extract::{call_record, read_limited, WechatCaller};
use crate::render;
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
                Ok(data) => json!({ "errcode": 0, "errmsg": "ok", "data": data }),
                Err(stored) => {
                    let failure = stored.to_failure();
                    call.errcode = failure.code.errcode();
                    call.message = Some(failure.message());
                    render::wechat_failure_body(&failure, &answer.request_id)
                }
            }
        }
        Err(failure) => {
            call.errcode = failure.code.errcode();
            call.message = Some(failure.message());
            render::wechat_failure_body(&failure, &context.request_id)
        }
    };
    let text = body.to_string();
    call.bytes_out = i64::try_from(text.len()).unwrap_or(i64::MAX);
    state.log_call(call, &context).await;
    render::wechat_json(&body)
}
