//! `grants`: let one app charge another's packages with `consumeType: 2` when the two are not bound
//! to one open account.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use souk_core::store::clients::Grant;
use souk_types::admin::{GrantView, List, NewGrant};

use super::respond;
use crate::context::RequestContext;
use crate::extract::{AdminAuth, AdminJson, QueryPairs};
use crate::render;
use crate::state::AppState;

fn view(grant: &Grant) -> GrantView {
    GrantView {
        payer_appid: grant.payer_appid.clone(),
        caller_appid: grant.caller_appid.clone(),
        created_at: grant.created_at_ms.div_euclid(1000),
    }
}

/// `POST grants {payer_appid, caller_appid}`.
pub async fn create(State(state): State<AppState>, _: AdminAuth, context: RequestContext, AdminJson(new): AdminJson<NewGrant>) -> Response {
    respond(
        &context,
        StatusCode::CREATED,
        state
            .souk
            .create_grant(&new.payer_appid, &new.caller_appid)
            .await
            .map(|grant| view(&grant)),
    )
}

/// `GET grants?payer_appid=&caller_appid=`.
pub async fn list(State(state): State<AppState>, _: AdminAuth, context: RequestContext, query: QueryPairs) -> Response {
    let result = state.souk.list_grants(query.get("payer_appid"), query.get("caller_appid")).await;
    respond(
        &context,
        StatusCode::OK,
        result.map(|grants| List {
            items: grants.iter().map(view).collect(),
            next: None,
        }),
    )
}

/// `DELETE grants/{payer_appid}/{caller_appid}`.
pub async fn delete(
    State(state): State<AppState>,
    _: AdminAuth,
    context: RequestContext,
    Path((payer_appid, caller_appid)): Path<(String, String)>,
) -> Response {
    match state.souk.delete_grant(&payer_appid, &caller_appid).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(failure) => render::souk_failure(&failure, &context.request_id),
    }
}
