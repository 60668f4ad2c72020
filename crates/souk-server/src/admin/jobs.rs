//! `jobs`: async long tasks for the operator, newest first with filters and a keyset cursor, and one
//! job with its attempts, lease, deadline and outcome. The provider body is not shown (only its size).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use souk_core::jobs::stored_failure;
use souk_core::store::jobs::{Job, JobFilter, JobState};
use souk_core::Failure;
use souk_types::admin::{JobView, List};
use souk_types::Code;

use super::{page_limit, respond};
use crate::context::RequestContext;
use crate::extract::{AdminAuth, QueryPairs};
use crate::state::AppState;

fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// A job's view.
pub fn job_view(job: &Job) -> JobView {
    let failure = (job.state == JobState::Failed).then(|| stored_failure(job.result.as_deref()));
    JobView {
        request_id: job.request_id.clone(),
        appid: job.appid.clone(),
        payer_appid: job.payer_appid.clone(),
        openid: job.openid.clone(),
        service_id: job.service_id.clone(),
        api: job.api.clone(),
        package_id: job.package_id.clone(),
        state: job.state.as_str().to_owned(),
        attempts: job.attempts,
        body_bytes: u64::try_from(job.body.len()).unwrap_or(u64::MAX),
        created_at: seconds(job.created_at_ms),
        due_at: (!job.state.is_finished()).then(|| seconds(job.due_at_ms)),
        deadline: seconds(job.deadline_ms),
        finished_at: job.finished_at_ms.map(seconds),
        lease_owner: job.lease_owner.clone(),
        lease_until: job.lease_until_ms.map(seconds),
        last_error: job.last_error.clone(),
        data: (job.state == JobState::Succeeded).then(|| job.result.clone().unwrap_or_default()),
        errcode: failure.as_ref().map(|f| f.code.errcode()),
        errmsg: failure.as_ref().map(Failure::message),
    }
}

fn invalid(detail: impl Into<String>) -> Failure {
    Failure::new(Code::AdminInvalidRequest, detail)
}

/// The cursor is `<created_at_ms>.<request_id>` of the last job of the previous page.
fn parse_cursor(text: &str) -> Result<(i64, String), Failure> {
    let (at_ms, request_id) = text.split_once('.').ok_or_else(|| invalid("cursor is malformed"))?;
    Ok((at_ms.parse().map_err(|_| invalid("cursor is malformed"))?, request_id.to_owned()))
}

fn filter_from(query: &QueryPairs) -> Result<JobFilter, Failure> {
    let state = query
        .get("state")
        .filter(|text| !text.is_empty())
        .map(|text| JobState::parse(text).ok_or_else(|| invalid("state must be pending, waiting, succeeded or failed")))
        .transpose()?;
    Ok(JobFilter {
        appid: query.get("appid").filter(|text| !text.is_empty()).map(str::to_owned),
        state,
        before: query.get("cursor").filter(|text| !text.is_empty()).map(parse_cursor).transpose()?,
        limit: page_limit(query, 1000)?,
    })
}

/// `GET jobs?appid=&state=&limit=&cursor=`.
pub async fn list(State(state): State<AppState>, _: AdminAuth, context: RequestContext, query: QueryPairs) -> Response {
    let result = async {
        let filter = filter_from(&query)?;
        let jobs = state.souk.list_jobs(&filter).await?;
        let next = (jobs.len() == filter.limit as usize)
            .then(|| jobs.last().map(|job| format!("{}.{}", job.created_at_ms, job.request_id)))
            .flatten();
        Ok(List {
            items: jobs.iter().map(job_view).collect(),
            next,
        })
    }
    .await;
    respond(&context, StatusCode::OK, result)
}

/// `GET jobs/{request_id}`.
pub async fn show(State(state): State<AppState>, _: AdminAuth, context: RequestContext, Path(request_id): Path<String>) -> Response {
    respond(
        &context,
        StatusCode::OK,
        state.souk.get_job(&request_id).await.map(|job| job_view(&job)),
    )
}
