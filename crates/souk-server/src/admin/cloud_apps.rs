//! `cloud-apps`: an app's external services for the cloud gateway (`cloud-gateway.md` §1): create
//! (secret shown once), list, show, update (whitelist, env, signing method, disable), rotate the
//! secret.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use souk_types::admin::{CloudAppPatch, List, NewCloudApp};

use super::{page_limit, respond};
use crate::context::RequestContext;
use crate::extract::{AdminAuth, AdminJson, QueryPairs};
use crate::state::AppState;

/// `POST cloud-apps {appid, whitelist, env?, sign_method?}` → 201 with the secret.
pub async fn create(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    AdminJson(new): AdminJson<NewCloudApp>,
) -> Response {
    let result = state.souk.create_cloud_app(new).await.map(|cloud_app| cloud_app.with_secret());
    respond(&context, StatusCode::CREATED, result)
}

/// `GET cloud-apps?appid=&cursor=&limit=`, ordered by id.
pub async fn list(State(state): State<AppState>, _: AdminAuth, context: RequestContext, query: QueryPairs) -> Response {
    let result = async {
        let limit = page_limit(&query, 500)?;
        let appid = query.get("appid").filter(|appid| !appid.is_empty());
        let cursor = query.get("cursor").filter(|cursor| !cursor.is_empty());
        let cloud_apps = state.souk.list_cloud_apps(appid, cursor, limit).await?;
        let next = (cloud_apps.len() == limit as usize)
            .then(|| cloud_apps.last().map(|cloud_app| cloud_app.cloud_app_id.clone()))
            .flatten();
        Ok(List {
            items: cloud_apps.iter().map(|cloud_app| cloud_app.view()).collect(),
            next,
        })
    }
    .await;
    respond(&context, StatusCode::OK, result)
}

/// `GET cloud-apps/{cloud_app_id}`.
pub async fn show(State(state): State<AppState>, _: AdminAuth, context: RequestContext, Path(cloud_app_id): Path<String>) -> Response {
    let result = state.souk.get_cloud_app(&cloud_app_id).await.map(|cloud_app| cloud_app.view());
    respond(&context, StatusCode::OK, result)
}

/// `PATCH cloud-apps/{cloud_app_id} {whitelist?, env?, sign_method?, disabled?}`.
pub async fn update(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    Path(cloud_app_id): Path<String>,
    AdminJson(patch): AdminJson<CloudAppPatch>,
) -> Response {
    let result = state
        .souk
        .update_cloud_app(&cloud_app_id, patch)
        .await
        .map(|cloud_app| cloud_app.view());
    respond(&context, StatusCode::OK, result)
}

/// `POST cloud-apps/{cloud_app_id}/secret`: a new signing secret, shown once.
pub async fn rotate_secret(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    Path(cloud_app_id): Path<String>,
) -> Response {
    let result = state
        .souk
        .rotate_cloud_app_secret(&cloud_app_id)
        .await
        .map(|cloud_app| cloud_app.with_secret());
    respond(&context, StatusCode::OK, result)
}
