//! The HTTP server of souk: the WeChat-compatible APIs at the root (`/cgi-bin/...`, `/wxa/...`), the
//! admin API under `/souk/v1/admin/`, and the operational routes.
//!
//! **Architecture invariant:** this is the only crate that knows HTTP on the serving side. Handlers
//! decode, make one domain call on [`souk_core::Souk`], and encode; authentication lives in
//! [`extract`]; a [`souk_core::Failure`] becomes an answer only in [`render`].
//!
//! [`app`] returns the whole router, so tests drive it on a real socket or without one.

pub mod admin;
pub mod cloud_transport;
pub mod context;
pub mod cors;
pub mod extract;
pub mod image_fetch;
pub mod metrics;
pub mod render;
pub mod routes;
pub mod state;
pub mod upstream;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

pub use state::{AppState, BuiltinSettings, ServerSettings};

/// The client API: sessions minted by app servers, and the calls pages make with them (CORS on).
fn client_routes() -> Router<AppState> {
    let client = Router::new()
        .route("/servicemarket/invoke", post(routes::client::invoke))
        .route("/servicemarket/async-result", post(routes::client::async_result))
        .route("/cdn", post(routes::client::cdn))
        .route("/authorize", post(routes::client::authorize))
        .route("/messages", get(routes::messages::history).post(routes::messages::post_message))
        .route("/messages/stream", get(routes::messages::stream))
        .route("/cloud/http-request", post(routes::cloud::client_http_request))
        .layer(axum::middleware::from_fn(cors::client_cors));
    Router::new()
        .route("/souk/v1/client-sessions", post(routes::client::mint_session))
        .nest("/souk/v1/client", client)
}

/// The cloud gateway's other doors (its client door is among the client routes): the app server's,
/// and the stock Taobao cloud SDK's MTOP hop, which pages call with a client session (CORS on).
fn cloud_routes() -> Router<AppState> {
    let mtop = Router::new()
        .route(
            "/souk/v1/mtop/mtop.miniapp.cloud.application.request/1.0",
            post(routes::cloud::mtop_http_request),
        )
        .layer(axum::middleware::from_fn(cors::client_cors));
    Router::new()
        .route("/souk/v1/cloud/http-request", post(routes::cloud::server_http_request))
        .merge(mtop)
}

/// The whole router.
pub fn app(state: AppState) -> Router {
    let wechat = Router::new()
        .route("/cgi-bin/token", get(routes::token::get_token).fallback(routes::require_get))
        .route(
            "/cgi-bin/stable_token",
            post(routes::token::stable_token).fallback(routes::require_post),
        )
        .route(
            "/wxa/servicemarket",
            post(routes::service_market::invoke).fallback(routes::require_post),
        )
        .route(
            "/wxa/servicemarketretrieve",
            post(routes::service_market::retrieve).fallback(routes::require_post),
        )
        .route(
            "/cgi-bin/message/custom/send",
            post(routes::messages::custom_send).fallback(routes::require_post),
        )
        .route(
            "/cgi-bin/message/custom/typing",
            post(routes::messages::typing).fallback(routes::require_post),
        )
        .route(
            "/wxa/getpaidunionid",
            get(routes::paid_unionid::get_paid_unionid).fallback(routes::require_get),
        )
        .route("/cgi-bin/media/upload", post(routes::media::upload).fallback(routes::require_post))
        .route("/cgi-bin/media/get", get(routes::media::get).fallback(routes::require_get))
        .route("/cv/img/qrcode", post(routes::img::scan_qrcode).fallback(routes::require_post))
        .route("/cv/img/aicrop", post(routes::img::ai_crop).fallback(routes::require_post))
        .route(
            "/cv/img/superresolution",
            post(routes::img::superresolution).fallback(routes::require_post),
        )
        .route(
            "/cgi-bin/wxaapp/createwxaqrcode",
            post(routes::wxacode::create_qrcode).fallback(routes::require_post),
        )
        .route("/wxa/getwxacode", post(routes::wxacode::get_code).fallback(routes::require_post))
        .route(
            "/wxa/getwxacodeunlimit",
            post(routes::wxacode::get_unlimited).fallback(routes::require_post),
        )
        .route("/souk/v1/codes/{code_id}", get(routes::wxacode::show_code))
        .route("/souk/v1/provider/async-results/{request_id}", post(routes::provider::async_result));
    let ops = Router::new()
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .route("/souk/v1/openapi.json", get(openapi));
    let cdn = Router::new()
        .route("/souk/v1/cdn", post(routes::cdn::upload))
        .route("/souk/v1/cdn/{file_id}", get(routes::cdn::serve_file));
    Router::new()
        .merge(wechat)
        .merge(ops)
        .merge(cdn)
        .merge(client_routes())
        .merge(cloud_routes())
        .nest("/souk/v1/admin", admin::admin_routes())
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), context::with_request_context))
        .with_state(state)
}

async fn openapi() -> axum::response::Response {
    ([(header::CONTENT_TYPE, "application/json")], admin::OPENAPI_JSON).into_response()
}
