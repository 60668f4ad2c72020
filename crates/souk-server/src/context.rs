//! Per-request context: a request id for every call (the `rid` of errmsg, the `x-request-id` header),
//! its arrival time, and the guard that turns a panic into an answer that still carries the id.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use futures::FutureExt;
use souk_core::{ids, Failure};
use souk_types::Code;

use crate::render;
use crate::state::AppState;

/// The request's id and timing.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id.
    pub request_id: Arc<str>,
    /// When the request arrived (for latency).
    pub started: Instant,
    /// When the request arrived, Unix milliseconds from the domain clock.
    pub at_ms: i64,
}

impl RequestContext {
    /// Microseconds since arrival.
    pub fn elapsed_us(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX)
    }
}

/// Whether a path belongs to the WeChat-compatible APIs (errors as HTTP 200 + errcode).
pub fn is_wechat_path(path: &str) -> bool {
    path.starts_with("/cgi-bin/") || path.starts_with("/wxa/") || path.starts_with("/cv/") || path.starts_with("/sns/")
}

/// Middleware: gives the request its context and answers a panic with the request id.
pub async fn with_request_context(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let at_ms = state.souk.now_ms();
    let context = RequestContext {
        request_id: ids::new_request_id(at_ms).into(),
        started: Instant::now(),
        at_ms,
    };
    let wechat = is_wechat_path(request.uri().path());
    request.extensions_mut().insert(context.clone());
    let mut response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(request_id = %context.request_id, "handler panicked");
            let failure = Failure::new(Code::SystemError, "");
            if wechat {
                render::wechat_failure(&failure, &context.request_id)
            } else {
                render::souk_failure(&failure, &context.request_id)
            }
        }
    };
    if let Ok(value) = HeaderValue::from_str(&context.request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<RequestContext>().cloned().unwrap_or_else(|| RequestContext {
            request_id: ids::new_request_id(0).into(),
            started: Instant::now(),
            at_ms: 0,
        }))
    }
}
