//! `packages`: grant units, list, show, and a package's ledger.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use souk_core::model::PackageFilter;
use souk_types::admin::{List, NewPackage};

use super::views::{ledger_view, package_view};
use super::{page_limit, respond};
use crate::context::RequestContext;
use crate::extract::{AdminAuth, AdminJson, QueryPairs};
use crate::state::AppState;

/// `POST packages`.
pub async fn create(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    AdminJson(new): AdminJson<NewPackage>,
) -> Response {
    respond(
        &context,
        StatusCode::CREATED,
        state.souk.create_package(new).await.map(|p| package_view(&p)),
    )
}

/// `GET packages?appid=&service_id=&cursor=&limit=`.
pub async fn list(State(state): State<AppState>, _: AdminAuth, context: RequestContext, query: QueryPairs) -> Response {
    let result = async {
        let limit = page_limit(&query, 500)?;
        let filter = PackageFilter {
            appid: query.get("appid").map(str::to_owned),
            service_id: query.get("service_id").map(str::to_owned),
            after: query.get("cursor").map(str::to_owned),
            limit,
        };
        let packages = state.souk.list_packages(&filter).await?;
        let next = (packages.len() == limit as usize)
            .then(|| packages.last().map(|p| p.package_id.clone()))
            .flatten();
        Ok(List {
            items: packages.iter().map(package_view).collect(),
            next,
        })
    }
    .await;
    respond(&context, StatusCode::OK, result)
}

/// `GET packages/{package_id}`.
pub async fn show(State(state): State<AppState>, _: AdminAuth, context: RequestContext, Path(package_id): Path<String>) -> Response {
    respond(
        &context,
        StatusCode::OK,
        state.souk.get_package(&package_id).await.map(|p| package_view(&p)),
    )
}

/// `GET packages/{package_id}/ledger`.
pub async fn ledger(State(state): State<AppState>, _: AdminAuth, context: RequestContext, Path(package_id): Path<String>) -> Response {
    let result = async {
        state.souk.get_package(&package_id).await?;
        let entries = state.souk.package_ledger(&package_id).await?;
        Ok(List {
            items: entries.iter().map(ledger_view).collect(),
            next: None,
        })
    }
    .await;
    respond(&context, StatusCode::OK, result)
}
