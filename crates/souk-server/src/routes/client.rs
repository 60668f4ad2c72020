//! The client API (`wire.md` §4): sessions minted by an app's server, and the calls a page or
//! mini-program makes with one (`servicemarket/invoke`, `authorize`). Errors have honest statuses and
//! `{errCode, errMsg, requestID}` with seed 000's client codes.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use souk_core::jobs::AsyncResult;
use souk_core::market::InvokeSuccess;
use souk_core::model::CallRecord;
use souk_core::Failure;
use souk_types::client::{parse_async_result_request, parse_authorize_request, parse_client_invoke, parse_session_request};

use crate::context::RequestContext;
use crate::extract::{call_record, read_limited, ClientAuth, TokenCaller};
use crate::render;
use crate::routes::cdn::{upload_from_request, UploadAnswer};
use crate::state::AppState;

pub(crate) async fn body_bytes(state: &AppState, body: Body, call: &mut CallRecord) -> Result<axum::body::Bytes, Failure> {
    let bytes = read_limited(body, state.settings.max_body_bytes).await?;
    call.bytes_in = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    Ok(bytes)
}

/// Logs the call and answers `result` (a JSON body for 200) or its failure.
pub(crate) async fn finish(
    state: &AppState,
    context: &RequestContext,
    mut call: CallRecord,
    result: Result<Value, (Failure, Option<u64>)>,
) -> Response {
    let response = match result {
        Ok(body) => {
            call.bytes_out = i64::try_from(body.to_string().len()).unwrap_or(i64::MAX);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err((failure, retry_after_ms)) => {
            call.errcode = failure.code.client_code();
            call.message = Some(failure.message());
            render::client_failure(&failure, &context.request_id, retry_after_ms)
        }
    };
    state.log_call(call, context).await;
    response
}

/// `POST /souk/v1/client-sessions?access_token=` `{user, nick?, scopes?, plugin_appid?}`.
pub async fn mint_session(
    State(state): State<AppState>,
    context: RequestContext,
    TokenCaller(caller): TokenCaller,
    body: Body,
) -> Response {
    let mut call = call_record(&context, "client_session");
    call.appid = Some(caller.app.appid.clone());
    let result = async {
        let bytes = body_bytes(&state, body, &mut call).await?;
        let request = parse_session_request(&bytes).map_err(|bad| Failure::new(bad.code, bad.detail))?;
        let minted = state.souk.mint_client_session(&caller, &request).await?;
        call.openid = Some(minted.openid.clone());
        let mut answer = json!({ "session": minted.session, "expires_in": minted.expires_in, "openid": minted.openid });
        if let Some(unionid) = minted.unionid {
            answer["unionid"] = json!(unionid);
        }
        Ok(answer)
    }
    .await;
    finish(&state, &context, call, result.map_err(|failure| (failure, None))).await
}

/// `POST /souk/v1/client/servicemarket/invoke` `{service, api, data, async, consumeType, consumeAppid}`
/// → `{data, requestID}` (`{requestID}` for an async task). `data` is the provider's data itself (an object when the provider answered
/// one), as the platform's client SDK resolves it.
pub async fn invoke(State(state): State<AppState>, context: RequestContext, ClientAuth(client): ClientAuth, body: Body) -> Response {
    let mut call = call_record(&context, "client_invoke");
    call.appid = Some(client.app.appid.clone());
    call.openid = Some(client.openid().to_owned());
    call.plugin_appid = client.session.plugin_appid.clone();
    let result = async {
        let bytes = body_bytes(&state, body, &mut call).await.map_err(|failure| (failure, None))?;
        let request = parse_client_invoke(&bytes).map_err(|bad| (Failure::new(bad.code, bad.detail), None))?;
        call.service_id = Some(request.invoke.service.clone());
        call.api = Some(request.invoke.api.clone());
        let invoker = state
            .souk
            .client_invoker(&client, request.consume_appid.as_deref())
            .await
            .map_err(|failure| (failure, None))?;
        let (answer, trace) = state.souk.invoke_service(&invoker, &request.invoke, &context.request_id).await;
        call.package_id = trace.package_id;
        call.cache_hit = trace.replayed;
        match answer.outcome {
            Ok(InvokeSuccess::Data(data)) => {
                let data: Value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                Ok(json!({ "data": data, "requestID": answer.request_id }))
            }
            // An async job (jobs engineer): the page polls `servicemarket/async-result` with this id.
            Ok(InvokeSuccess::Accepted) => Ok(json!({ "requestID": answer.request_id })),
            Err(stored) => Err((stored.to_failure(), trace.retry_after_ms)),
        }
    }
    .await;
    finish(&state, &context, call, result).await
}

/// `POST /souk/v1/client/authorize {scopes}`: the user consents (`scope.userInfo` lets gateways see
/// the nick) → `{scopes}` now granted.
pub async fn authorize(State(state): State<AppState>, context: RequestContext, ClientAuth(client): ClientAuth, body: Body) -> Response {
    let mut call = call_record(&context, "client_authorize");
    call.appid = Some(client.app.appid.clone());
    call.openid = Some(client.openid().to_owned());
    let result = async {
        let bytes = body_bytes(&state, body, &mut call).await?;
        let scopes = parse_authorize_request(&bytes).map_err(|bad| Failure::new(bad.code, bad.detail))?;
        let user = state.souk.authorize_scopes(&client, &scopes).await?;
        Ok(json!({ "scopes": user.scopes }))
    }
    .await;
    finish(&state, &context, call, result.map_err(|failure| (failure, None))).await
}

/// `POST /souk/v1/client/servicemarket/async-result {requestId}` → `{status: 1}` while the job runs,
/// `{status: 0, data}` when it succeeded, `{status: 0, providerErrMsg}` when it failed (seed 000's
/// `getAsyncResult`). Polling is never charged.
pub async fn async_result(State(state): State<AppState>, context: RequestContext, ClientAuth(client): ClientAuth, body: Body) -> Response {
    let mut call = call_record(&context, "client_async_result");
    call.appid = Some(client.app.appid.clone());
    call.openid = Some(client.openid().to_owned());
    let result = async {
        let bytes = body_bytes(&state, body, &mut call).await?;
        let request_id = parse_async_result_request(&bytes).map_err(|bad| Failure::new(bad.code, bad.detail))?;
        Ok(match state.souk.async_result(&client.app.appid, &request_id).await? {
            AsyncResult::Pending => json!({ "status": 1 }),
            AsyncResult::Done(data) => {
                let data: Value = serde_json::from_str(&data).unwrap_or(Value::String(data));
                json!({ "status": 0, "data": data })
            }
            AsyncResult::Failed(failure) => {
                json!({ "status": 0, "providerErrMsg": failure.provider_errmsg.clone().unwrap_or_else(|| failure.message()) })
            }
        })
    }
    .await;
    finish(&state, &context, call, result.map_err(|failure| (failure, None))).await
}

/// `POST /souk/v1/client/cdn`: a file (raw body with its `Content-Type`, or multipart) becomes a URL
/// the provider can fetch → `{url, expires_in}`; the SDKs put it where a `CDN` marker stood.
pub async fn cdn(State(state): State<AppState>, context: RequestContext, ClientAuth(client): ClientAuth, request: Request) -> Response {
    let mut call = call_record(&context, "client_cdn");
    call.appid = Some(client.app.appid.clone());
    call.openid = Some(client.openid().to_owned());
    let result = upload_from_request(&state.souk, &client.app.appid, request).await.map(|file| {
        call.bytes_in = file.record.size;
        json!(UploadAnswer::from(&file))
    });
    finish(&state, &context, call, result.map_err(|failure| (failure, None))).await
}
