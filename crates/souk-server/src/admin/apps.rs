//! `apps`: create (secret shown once), list, show, update (disable included), rotate the secret.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use souk_types::admin::{AppPatch, AppWithSecret, List, NewApp};

use super::views::app_view;
use super::{page_limit, respond};
use crate::context::RequestContext;
use crate::extract::{AdminAuth, AdminJson, QueryPairs};
use crate::state::AppState;

/// `POST apps`.
pub async fn create(State(state): State<AppState>, _: AdminAuth, context: RequestContext, AdminJson(new): AdminJson<NewApp>) -> Response {
    let result = state.souk.create_app(new).await.map(|(app, secret)| AppWithSecret {
        app: app_view(&app),
        secret,
    });
    respond(&context, StatusCode::CREATED, result)
}

/// `GET apps?cursor=&limit=`.
pub async fn list(State(state): State<AppState>, _: AdminAuth, context: RequestContext, query: QueryPairs) -> Response {
    let result = async {
        let limit = page_limit(&query, 500)?;
        let apps = state.souk.list_apps(query.get("cursor"), limit).await?;
        let next = (apps.len() == limit as usize)
            .then(|| apps.last().map(|app| app.appid.clone()))
            .flatten();
        Ok(List {
            items: apps.iter().map(app_view).collect(),
            next,
        })
    }
    .await;
    respond(&context, StatusCode::OK, result)
}

/// `GET apps/{appid}`.
pub async fn show(State(state): State<AppState>, _: AdminAuth, context: RequestContext, Path(appid): Path<String>) -> Response {
    respond(&context, StatusCode::OK, state.souk.get_app(&appid).await.map(|app| app_view(&app)))
}

/// `PATCH apps/{appid}`.
pub async fn update(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    Path(appid): Path<String>,
    AdminJson(patch): AdminJson<AppPatch>,
) -> Response {
    respond(
        &context,
        StatusCode::OK,
        state.souk.update_app(&appid, patch).await.map(|app| app_view(&app)),
    )
}

/// `POST apps/{appid}/secret`.
pub async fn rotate_secret(State(state): State<AppState>, _: AdminAuth, context: RequestContext, Path(appid): Path<String>) -> Response {
    let result = state.souk.rotate_app_secret(&appid).await.map(|(app, secret)| AppWithSecret {
        app: app_view(&app),
        secret,
    });
    respond(&context, StatusCode::OK, result)
}
