//! The admin API (`wire.md` §6) under `/souk/v1/admin/`: bearer-token auth, strict JSON, honest
//! statuses, `{items, next}` lists, and an OpenAPI document kept in step with the routes by a test.

mod apps;
mod calls;
mod cloud_apps;
mod grants;
mod jobs;
mod packages;
mod payments;
mod services;
mod views;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use souk_core::Failure;
use souk_types::Code;

use crate::context::RequestContext;
use crate::extract::QueryPairs;
use crate::render;
use crate::state::AppState;

/// The OpenAPI document served at `/souk/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Every admin route as `(method, path)`, with axum's `{param}` syntax, relative to `/souk/v1/admin`.
/// A test checks that this list, the router and the OpenAPI document agree.
pub const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/apps"),
    ("POST", "/apps"),
    ("GET", "/apps/{appid}"),
    ("PATCH", "/apps/{appid}"),
    ("POST", "/apps/{appid}/secret"),
    ("GET", "/services"),
    ("POST", "/services"),
    ("GET", "/services/{service_id}"),
    ("PATCH", "/services/{service_id}"),
    ("GET", "/services/{service_id}/apis"),
    ("POST", "/services/{service_id}/apis"),
    ("GET", "/services/{service_id}/apis/{name}"),
    ("PATCH", "/services/{service_id}/apis/{name}"),
    ("DELETE", "/services/{service_id}/apis/{name}"),
    ("GET", "/packages"),
    ("POST", "/packages"),
    ("GET", "/packages/{package_id}"),
    ("GET", "/packages/{package_id}/ledger"),
    ("GET", "/calls"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{request_id}"),
    ("GET", "/grants"),
    ("POST", "/grants"),
    ("DELETE", "/grants/{payer_appid}/{caller_appid}"),
    ("GET", "/cloud-apps"),
    ("POST", "/cloud-apps"),
    ("GET", "/cloud-apps/{cloud_app_id}"),
    ("PATCH", "/cloud-apps/{cloud_app_id}"),
    ("POST", "/cloud-apps/{cloud_app_id}/secret"),
    ("POST", "/payments"),
];

/// The admin router, to be nested under `/souk/v1/admin`.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/apps", get(apps::list).post(apps::create))
        .route("/apps/{appid}", get(apps::show).patch(apps::update))
        .route("/apps/{appid}/secret", post(apps::rotate_secret))
        .route("/services", get(services::list).post(services::create))
        .route("/services/{service_id}", get(services::show).patch(services::update))
        .route("/services/{service_id}/apis", get(services::list_apis).post(services::create_api))
        .route(
            "/services/{service_id}/apis/{name}",
            get(services::show_api).patch(services::update_api).delete(services::delete_api),
        )
        .route("/packages", get(packages::list).post(packages::create))
        .route("/packages/{package_id}", get(packages::show))
        .route("/packages/{package_id}/ledger", get(packages::ledger))
        .route("/calls", get(calls::list))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{request_id}", get(jobs::show))
        .route("/grants", get(grants::list).post(grants::create))
        .route("/grants/{payer_appid}/{caller_appid}", axum::routing::delete(grants::delete))
        .route("/cloud-apps", get(cloud_apps::list).post(cloud_apps::create))
        .route("/cloud-apps/{cloud_app_id}", get(cloud_apps::show).patch(cloud_apps::update))
        .route("/cloud-apps/{cloud_app_id}/secret", post(cloud_apps::rotate_secret))
        .route("/payments", post(payments::create))
        .fallback(admin_not_found)
}

async fn admin_not_found(context: RequestContext) -> Response {
    render::souk_failure(&Failure::new(Code::AdminNotFound, "no such admin route"), &context.request_id)
}

/// Renders a domain result: the value with `status`, or the failure with its own status.
fn respond<T: Serialize>(context: &RequestContext, status: StatusCode, result: Result<T, Failure>) -> Response {
    match result {
        Ok(value) => (status, axum::Json(value)).into_response(),
        Err(failure) => render::souk_failure(&failure, &context.request_id),
    }
}

/// The page size of a list: `limit` (default 50, 1 to `max`).
fn page_limit(query: &QueryPairs, max: u32) -> Result<u32, Failure> {
    match query.get("limit") {
        None | Some("") => Ok(50.min(max)),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=max).contains(limit))
            .ok_or_else(|| Failure::new(Code::AdminInvalidRequest, format!("limit must be a number from 1 to {max}"))),
    }
}
