//! The provider API's callback (`wire.md` §5): `POST /souk/v1/provider/async-results/{request_id}`,
//! where a provider that answered an async call with HTTP 202 posts the envelope, signed with its
//! service's secret. Answers in souk's style: `{recorded}` on success, `{errCode, errMsg, requestID}`
//! with an honest status on refusal.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::context::RequestContext;
use crate::extract::{call_record, read_limited, QueryPairs};
use crate::render;
use crate::state::AppState;

/// `POST /souk/v1/provider/async-results/{request_id}?timestamp=&sign=[&sign_method=]`.
pub async fn async_result(
    State(state): State<AppState>,
    context: RequestContext,
    Path(request_id): Path<String>,
    query: QueryPairs,
    body: Body,
) -> Response {
    let mut call = call_record(&context, "provider_callback");
    let result = match read_limited(body, state.settings.max_body_bytes).await {
        Ok(bytes) => {
            call.bytes_in = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
            state.souk.accept_provider_result(&request_id, &query.0, &bytes).await
        }
        Err(failure) => Err(failure),
    };
    let response = match result {
        Ok(receipt) => {
            call.appid = Some(receipt.appid);
            call.service_id = Some(receipt.service_id);
            call.api = Some(receipt.api);
            let body = if receipt.recorded {
                call.message = Some(format!("result of async job {request_id} recorded"));
                json!({ "recorded": true, "request_id": request_id })
            } else {
                call.message = Some(format!("async job {request_id} was already completed; this result was ignored"));
                json!({
                    "recorded": false,
                    "request_id": request_id,
                    "message": "the async job was already completed; this result was ignored",
                })
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(failure) => {
            call.errcode = failure.code.errcode();
            call.message = Some(format!("async job {request_id}: {}", failure.message()));
            render::souk_failure(&failure, &context.request_id)
        }
    };
    state.log_call(call, &context).await;
    response
}
