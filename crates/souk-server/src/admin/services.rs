//! `services` and their `apis`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use souk_types::admin::{ApiPatch, List, NewApi, NewService, ServicePatch, ServiceWithSecret};

use super::views::{api_view, service_view};
use super::{page_limit, respond};
use crate::context::RequestContext;
use crate::extract::{AdminAuth, AdminJson, QueryPairs};
use crate::render;
use crate::state::AppState;

/// `POST services`.
pub async fn create(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    AdminJson(new): AdminJson<NewService>,
) -> Response {
    let result = state.souk.create_service(new).await.map(|service| ServiceWithSecret {
        service: service_view(&service),
        secret: service.secret,
    });
    respond(&context, StatusCode::CREATED, result)
}

/// `GET services?cursor=&limit=`.
pub async fn list(State(state): State<AppState>, _: AdminAuth, context: RequestContext, query: QueryPairs) -> Response {
    let result = async {
        let limit = page_limit(&query, 500)?;
        let services = state.souk.list_services(query.get("cursor"), limit).await?;
        let next = (services.len() == limit as usize)
            .then(|| services.last().map(|s| s.service_id.clone()))
            .flatten();
        Ok(List {
            items: services.iter().map(service_view).collect(),
            next,
        })
    }
    .await;
    respond(&context, StatusCode::OK, result)
}

/// `GET services/{service_id}`.
pub async fn show(State(state): State<AppState>, _: AdminAuth, context: RequestContext, Path(service_id): Path<String>) -> Response {
    respond(
        &context,
        StatusCode::OK,
        state.souk.get_service(&service_id).await.map(|s| service_view(&s)),
    )
}

/// `PATCH services/{service_id}`.
pub async fn update(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    Path(service_id): Path<String>,
    AdminJson(patch): AdminJson<ServicePatch>,
) -> Response {
    respond(
        &context,
        StatusCode::OK,
        state.souk.update_service(&service_id, patch).await.map(|s| service_view(&s)),
    )
}

/// `POST services/{service_id}/apis`.
pub async fn create_api(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    Path(service_id): Path<String>,
    AdminJson(new): AdminJson<NewApi>,
) -> Response {
    respond(
        &context,
        StatusCode::CREATED,
        state.souk.create_api(&service_id, new).await.map(|api| api_view(&api)),
    )
}

/// `GET services/{service_id}/apis`.
pub async fn list_apis(State(state): State<AppState>, _: AdminAuth, context: RequestContext, Path(service_id): Path<String>) -> Response {
    let result = state.souk.list_apis(&service_id).await.map(|apis| List {
        items: apis.iter().map(api_view).collect(),
        next: None,
    });
    respond(&context, StatusCode::OK, result)
}

/// `GET services/{service_id}/apis/{name}`.
pub async fn show_api(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    Path((service_id, name)): Path<(String, String)>,
) -> Response {
    respond(
        &context,
        StatusCode::OK,
        state.souk.get_api(&service_id, &name).await.map(|api| api_view(&api)),
    )
}

/// `PATCH services/{service_id}/apis/{name}`.
pub async fn update_api(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    Path((service_id, name)): Path<(String, String)>,
    AdminJson(patch): AdminJson<ApiPatch>,
) -> Response {
    respond(
        &context,
        StatusCode::OK,
        state.souk.update_api(&service_id, &name, patch).await.map(|api| api_view(&api)),
    )
}

/// `DELETE services/{service_id}/apis/{name}`.
pub async fn delete_api(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    Path((service_id, name)): Path<(String, String)>,
) -> Response {
    match state.souk.delete_api(&service_id, &name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(failure) => render::souk_failure(&failure, &context.request_id),
    }
}
