//! Extractors: authentication (access token, admin token), query pairs, bounded bodies and admin JSON.
//! Handlers receive checked values and never see a credential.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use souk_core::clients::ClientCaller;
use souk_core::model::CallRecord;
use souk_core::tokens::Caller;
use souk_core::Failure;
use souk_types::Code;
use subtle::ConstantTimeEq;

use crate::context::RequestContext;
use crate::render;
use crate::state::AppState;

/// The decoded query string, in order. Malformed percent-escapes decode leniently, never fail.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        QueryPairs(form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect())
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryPairs::parse(parts.uri.query()))
    }
}

/// Reads a body of at most `limit` bytes.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, Failure> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        Failure::new(
            Code::RequestTooLarge,
            format!("the request body is larger than {limit} bytes or could not be read"),
        )
    })
}

/// A call record with what every call knows: id, time, route, latency so far.
pub fn call_record(context: &RequestContext, route: &str) -> CallRecord {
    CallRecord {
        request_id: context.request_id.to_string(),
        at_ms: context.at_ms,
        route: route.to_owned(),
        appid: None,
        openid: None,
        plugin_appid: None,
        service_id: None,
        api: None,
        errcode: 0,
        message: None,
        latency_us: context.elapsed_us(),
        package_id: None,
        bytes_in: 0,
        bytes_out: 0,
        cache_hit: false,
    }
}

impl AppState {
    /// Hands a finished call to the batched call log and the metrics.
    pub async fn log_call(&self, mut call: CallRecord, context: &RequestContext) {
        call.latency_us = context.elapsed_us();
        self.metrics.observe(&call.route, call.errcode, call.latency_us);
        self.souk.call_log().record(call).await;
    }
}

/// The route name a path is logged under in the call log.
///
/// A refusal by an extractor is logged under the same route name as the handler logs its calls, so a
/// route's calls can be filtered together; WeChat paths use their last segment.
pub fn route_of(path: &str) -> &str {
    match path {
        "/souk/v1/client-sessions" => "client_session",
        "/souk/v1/client/servicemarket/invoke" => "client_invoke",
        "/souk/v1/client/servicemarket/async-result" => "client_async_result",
        "/souk/v1/client/cdn" => "client_cdn",
        "/souk/v1/client/authorize" => "client_authorize",
        "/souk/v1/client/messages" => "client_messages",
        "/souk/v1/client/messages/stream" => "client_messages_stream",
        "/souk/v1/client/cloud/http-request" | "/souk/v1/cloud/http-request" => "cloud_http_request",
        _ if path.starts_with("/souk/v1/mtop/") => "cloud_mtop",
        _ => path.rsplit('/').next().unwrap_or(path),
    }
}

/// An app authenticated by its `access_token` query parameter (WeChat APIs). A refusal is answered in
/// WeChat's style and logged.
#[derive(Debug, Clone)]
pub struct WechatCaller(pub Caller);

impl FromRequestParts<AppState> for WechatCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let context = RequestContext::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        match authenticate_token(parts, state, &context).await {
            Ok(caller) => Ok(WechatCaller(caller)),
            Err(failure) => Err(render::wechat_failure(&failure, &context.request_id)),
        }
    }
}

/// An app authenticated by its `access_token` query parameter on one of souk's own APIs (client
/// sessions, uploads): a refusal has an honest status and `{errCode, errMsg, requestID}`.
#[derive(Debug, Clone)]
pub struct TokenCaller(pub Caller);

impl FromRequestParts<AppState> for TokenCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let context = RequestContext::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        match authenticate_token(parts, state, &context).await {
            Ok(caller) => Ok(TokenCaller(caller)),
            Err(failure) => Err(render::client_failure(&failure, &context.request_id, None)),
        }
    }
}

/// Checks the `access_token` query parameter; a refusal is logged under the path's last segment.
async fn authenticate_token(parts: &Parts, state: &AppState, context: &RequestContext) -> Result<Caller, Failure> {
    let query = QueryPairs::parse(parts.uri.query());
    match state.souk.authenticate(query.get("access_token")).await {
        Ok(caller) => Ok(caller),
        Err(failure) => {
            let mut call = call_record(context, route_of(parts.uri.path()));
            call.errcode = failure.code.errcode();
            call.message = Some(failure.message());
            state.log_call(call, context).await;
            Err(failure)
        }
    }
}

/// A page or mini-program authenticated by `Authorization: Bearer <client session>`, whose `Origin`
/// (when the browser sends one) is among its app's allowed origins.
#[derive(Debug, Clone)]
pub struct ClientAuth(pub ClientCaller);

impl FromRequestParts<AppState> for ClientAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let context = RequestContext::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let checked = async {
            let client = state.souk.authenticate_client(bearer).await?;
            let origin = parts.headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
            if let Some(origin) = origin {
                let allowed = &client.app.allowed_origins;
                if !allowed.is_empty() && !allowed.iter().any(|allowed| allowed.trim_end_matches('/') == origin) {
                    return Err(Failure::new(
                        Code::ClientOriginNotAllowed,
                        format!("{origin} may not call app {}", client.app.appid),
                    ));
                }
            }
            Ok(client)
        };
        match checked.await {
            Ok(client) => Ok(ClientAuth(client)),
            Err(failure) => {
                let mut call = call_record(&context, route_of(parts.uri.path()));
                call.errcode = failure.code.client_code();
                call.message = Some(failure.message());
                state.log_call(call, &context).await;
                Err(render::client_failure(&failure, &context.request_id, None))
            }
        }
    }
}

/// The admin API's bearer token, checked in constant time.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let expected = state.settings.admin_token.as_bytes();
        if given.is_some_and(|token| token.len() == expected.len() && bool::from(token.as_bytes().ct_eq(expected))) {
            return Ok(AdminAuth);
        }
        let context = RequestContext::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let failure = Failure::new(Code::AdminUnauthorized, "send Authorization: Bearer <admin token>");
        Err(render::souk_failure(&failure, &context.request_id))
    }
}

/// A JSON admin request body, decoded strictly (unknown fields refused) with a message naming the
/// problem.
#[derive(Debug, Clone)]
pub struct AdminJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AdminJson<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let context = request.extensions().get::<RequestContext>().cloned();
        let request_id = context.map(|c| c.request_id.to_string()).unwrap_or_default();
        let bytes = read_limited(request.into_body(), state.settings.max_body_bytes)
            .await
            .map_err(|failure| render::souk_failure(&failure, &request_id))?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let failure = if path == "." {
                Failure::new(
                    Code::AdminInvalidRequest,
                    format!("the body is not valid JSON for this request: {}", err.inner()),
                )
            } else {
                Failure::new(Code::AdminInvalidRequest, format!("{path}: {}", err.inner()))
            };
            render::souk_failure(&failure, &request_id).into_response()
        })?;
        Ok(AdminJson(value))
    }
}
