//! `GET /cgi-bin/token` and `POST /cgi-bin/stable_token`.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};
use souk_core::tokens::TokenRequest;
use souk_core::Failure;
use souk_types::token::TokenAnswer;
use souk_types::Code;

use crate::context::RequestContext;
use crate::extract::{call_record, read_limited, QueryPairs};
use crate::render;
use crate::state::AppState;

/// `GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`.
pub async fn get_token(State(state): State<AppState>, context: RequestContext, query: QueryPairs) -> Response {
    let request = TokenRequest {
        grant_type: query.get("grant_type").map(str::to_owned),
        appid: query.get("appid").map(str::to_owned),
        secret: query.get("secret").map(str::to_owned),
    };
    let result = state.souk.get_access_token(&request).await;
    answer(&state, &context, "token", request.appid.as_deref(), 0, result).await
}

/// `POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh}`.
pub async fn stable_token(State(state): State<AppState>, context: RequestContext, body: Body) -> Response {
    let (request, force_refresh, bytes_in) = match read_stable_request(&state, body).await {
        Ok(parsed) => parsed,
        Err(failure) => return answer(&state, &context, "stable_token", None, 0, Err(failure)).await,
    };
    let result = state.souk.get_stable_token(&request, force_refresh).await;
    answer(&state, &context, "stable_token", request.appid.as_deref(), bytes_in, result).await
}

async fn read_stable_request(state: &AppState, body: Body) -> Result<(TokenRequest, bool, i64), Failure> {
    let bytes = read_limited(body, state.settings.max_body_bytes).await?;
    let bytes_in = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::new(Code::EmptyPostData, ""));
    }
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(Failure::new(Code::DataFormatError, "the body must be a JSON object"));
    };
    let request = TokenRequest {
        grant_type: string_field(&mut fields, "grant_type")?,
        appid: string_field(&mut fields, "appid")?,
        secret: string_field(&mut fields, "secret")?,
    };
    let force_refresh = match fields.remove("force_refresh") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => flag,
        Some(_) => return Err(Failure::new(Code::DataFormatError, "force_refresh must be a boolean")),
    };
    Ok((request, force_refresh, bytes_in))
}

fn string_field(fields: &mut Map<String, Value>, name: &str) -> Result<Option<String>, Failure> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Failure::new(Code::DataFormatError, format!("{name} must be a string"))),
    }
}

async fn answer(
    state: &AppState,
    context: &RequestContext,
    route: &str,
    appid: Option<&str>,
    bytes_in: i64,
    result: Result<TokenAnswer, Failure>,
) -> Response {
    let mut call = call_record(context, route);
    call.appid = appid.map(str::to_owned);
    call.bytes_in = bytes_in;
    let body = match result {
        Ok(answer) => json!({ "access_token": answer.access_token, "expires_in": answer.expires_in }),
        Err(failure) => {
            call.errcode = failure.code.errcode();
            call.message = Some(failure.message());
            render::wechat_failure_body(&failure, &context.request_id)
        }
    };
    let response = render::wechat_json(&body);
    call.bytes_out = i64::try_from(body.to_string().len()).unwrap_or(0);
    state.log_call(call, context).await;
    response
}
