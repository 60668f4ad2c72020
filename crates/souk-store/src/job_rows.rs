//! The `jobs` row as both backends read it, and its mapping to [`souk_core::store::jobs::Job`].

use souk_core::store::jobs::{Job, JobState};
use souk_core::store::StoreError;

use crate::error::bad_value;

/// Columns of `jobs`, in table order.
pub(crate) const JOB_COLUMNS: &str = "request_id, appid, payer_appid, openid, service_id, api, package_id, body, state, attempts, \
     due_at_ms, lease_owner, lease_until_ms, deadline_ms, last_error, result, created_at_ms, finished_at_ms";

/// A row of `jobs`.
#[derive(sqlx::FromRow)]
pub(crate) struct JobRow {
    request_id: String,
    appid: String,
    payer_appid: String,
    openid: Option<String>,
    service_id: String,
    api: String,
    package_id: String,
    body: String,
    state: String,
    attempts: i64,
    due_at_ms: i64,
    lease_owner: Option<String>,
    lease_until_ms: Option<i64>,
    deadline_ms: i64,
    last_error: Option<String>,
    result: Option<String>,
    created_at_ms: i64,
    finished_at_ms: Option<i64>,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Job, StoreError> {
        Ok(Job {
            state: JobState::parse(&row.state).ok_or_else(|| bad_value("jobs.state"))?,
            attempts: u32::try_from(row.attempts).map_err(|_| bad_value("jobs.attempts"))?,
            request_id: row.request_id,
            appid: row.appid,
            payer_appid: row.payer_appid,
            openid: row.openid,
            service_id: row.service_id,
            api: row.api,
            package_id: row.package_id,
            body: row.body,
            due_at_ms: row.due_at_ms,
            lease_owner: row.lease_owner,
            lease_until_ms: row.lease_until_ms,
            deadline_ms: row.deadline_ms,
            last_error: row.last_error,
            result: row.result,
            created_at_ms: row.created_at_ms,
            finished_at_ms: row.finished_at_ms,
        })
    }
}
