//! `calls`: the call log, newest first, with filters and a keyset cursor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use souk_core::model::CallFilter;
use souk_core::Failure;
use souk_types::admin::List;
use souk_types::Code;

use super::views::call_view;
use super::{page_limit, respond};
use crate::context::RequestContext;
use crate::extract::{AdminAuth, QueryPairs};
use crate::state::AppState;

fn invalid(detail: impl Into<String>) -> Failure {
    Failure::new(Code::AdminInvalidRequest, detail)
}

/// `since`: Unix seconds, or an RFC 3339 time.
fn parse_since(text: &str) -> Result<i64, Failure> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds.saturating_mul(1000));
    }
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid("since must be Unix seconds or an RFC 3339 time"))?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| invalid("since is out of range"))
}

/// The cursor is `<at_ms>.<request_id>` of the last call of the previous page.
fn parse_cursor(text: &str) -> Result<(i64, String), Failure> {
    let (at_ms, request_id) = text.split_once('.').ok_or_else(|| invalid("cursor is malformed"))?;
    Ok((at_ms.parse().map_err(|_| invalid("cursor is malformed"))?, request_id.to_owned()))
}

fn filter_from(query: &QueryPairs) -> Result<CallFilter, Failure> {
    let errcode = query
        .get("errcode")
        .map(|text| text.parse::<i64>().map_err(|_| invalid("errcode must be a number")))
        .transpose()?;
    Ok(CallFilter {
        appid: query.get("appid").map(str::to_owned),
        service_id: query.get("service_id").map(str::to_owned),
        api: query.get("api").map(str::to_owned),
        errcode,
        request_id: query.get("request_id").map(str::to_owned),
        since_ms: query.get("since").map(parse_since).transpose()?,
        before: query.get("cursor").map(parse_cursor).transpose()?,
        limit: page_limit(query, 1000)?,
    })
}

/// `GET calls?appid=&service_id=&api=&errcode=&request_id=&since=&limit=&cursor=`.
pub async fn list(State(state): State<AppState>, _: AdminAuth, context: RequestContext, query: QueryPairs) -> Response {
    let result = async {
        let filter = filter_from(&query)?;
        let calls = state.souk.list_calls(&filter).await?;
        let next = (calls.len() == filter.limit as usize)
            .then(|| calls.last().map(|c| format!("{}.{}", c.at_ms, c.request_id)))
            .flatten();
        Ok(List {
            items: calls.into_iter().map(call_view).collect(),
            next,
        })
    }
    .await;
    respond(&context, StatusCode::OK, result)
}
