//! Async long tasks (`wire.md` §2 `servicemarket` with `async: true`, `servicemarketretrieve`, §5's
//! provider callback): durable jobs with exact charging.
//!
//! The life of a job:
//! 1. **Submission** ([`Souk::invoke_service`] with `async: true`): after the same checks as a sync call,
//!    the store reserves the API's price and inserts the job (`Jobs::submit_job`); only then does the
//!    caller get its `request_id`. A process killed at any moment loses no accepted job (a reservation
//!    it leaves without a job is released by the reaper).
//! 2. **Work**: a bounded pool ([`worker`]) claims due jobs under a lease, renewed while the provider
//!    call runs, and sends the signed request (`async=1`, the job's `request_id` on every attempt). An
//!    envelope finishes the job; HTTP 202 parks it until the provider posts the result; a transport
//!    failure, a body that is not the envelope or an HTTP 5xx is retried with exponential backoff, at
//!    most [`MAX_ATTEMPTS`] times. A worker or process that dies loses its lease; the job is claimed
//!    again after [`LEASE_MS`].
//! 3. **Completion** (`Jobs::complete_job`): a conditional update on the job's state, settling the
//!    units in the same transaction (committed on `success: true`, released otherwise), so a job ends
//!    exactly once however many workers or callbacks race. The completion is logged (route
//!    `servicemarket_async`) and pushed to the app's `message_url` if it has one ([`push`]).
//! 4. **Deadline**: a job unfinished [`JOB_DEADLINE_MS`] after submission fails with 9301012 and its
//!    units go back. Each direct wait for the provider is bounded by the API's timeout (at most 10
//!    minutes for async APIs); a job the provider accepted with 202 may take until the deadline.
//! 5. **Retrieval** ([`Souk::async_result`]): never charged; results are kept [`RESULT_KEEP_MS`] after
//!    completion, then swept by housekeeping.

mod callback;
pub mod push;
pub mod worker;

use souk_types::market::InvokeRequest;
use souk_types::Code;

use crate::error::Failure;
use crate::market::{InvokeAnswer, InvokeSuccess, Invoker, StoredFailure};
use crate::model::{ReserveOutcome, ReserveRequest};
use crate::souk::Souk;
use crate::store::jobs::{Job, JobFilter, JobState, NewJob};
use crate::store::StoreError;

pub use callback::{CallbackReceipt, CALLBACK_CLOCK_SKEW_MS};
pub use worker::{JobWorkerSettings, DEFAULT_WORKERS};

/// A job not finished this long after submission fails (9301012) and its units are released. A
/// day, the longest WeChat keeps an async result, so a provider may take hours.
pub const JOB_DEADLINE_MS: i64 = 24 * 3_600_000;
/// Results are kept at least this long after completion (WeChat: retrievable for 24 h).
pub const RESULT_KEEP_MS: i64 = 24 * 3_600_000;
/// Provider attempts before a job fails (each claim is one attempt).
pub const MAX_ATTEMPTS: u32 = 5;
/// A worker's lease on a claimed job; renewed every [`LEASE_RENEW_MS`] while the provider call runs,
/// so only a dead worker's jobs are claimed again, after at most this long.
pub const LEASE_MS: i64 = 20_000;
/// How often a running job's lease is renewed.
pub const LEASE_RENEW_MS: u64 = 5_000;
/// The first retry waits this long; each further one twice as long, up to [`RETRY_MAX_MS`].
pub const RETRY_BASE_MS: i64 = 1_000;
/// The longest wait between two attempts.
pub const RETRY_MAX_MS: i64 = 60_000;

/// Where an async job stands, as its submitter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsyncResult {
    /// Not finished yet (9301015; client API `{status: 1}`).
    Pending,
    /// Finished with the provider's data, a JSON string (client API `{status: 0, data}`).
    Done(String),
    /// Finished with a failure (its own errcode; client API `{status: 0, providerErrMsg}`).
    Failed(Failure),
}

/// The answer of an accepted async call: the request id to retrieve the result with.
pub(crate) fn accepted(request_id: &str) -> InvokeAnswer {
    InvokeAnswer {
        request_id: request_id.to_owned(),
        outcome: Ok(InvokeSuccess::Accepted),
    }
}

impl Souk {
    /// Reserves the API's price and stores the job in one store transaction (the async branch of
    /// [`Souk::invoke_service`]), then wakes the worker pool.
    pub(crate) async fn submit_job(
        &self,
        invoker: &Invoker,
        request: &InvokeRequest,
        reserve: &ReserveRequest,
    ) -> Result<ReserveOutcome, StoreError> {
        let answer = request
            .client_msg_id
            .as_ref()
            .map(|_| serde_json::to_string(&accepted(&reserve.request_id)).unwrap_or_default());
        let job = NewJob {
            openid: invoker.openid.clone(),
            body: serde_json::to_string(&request.data).unwrap_or_default(),
            deadline_ms: reserve.now_ms + JOB_DEADLINE_MS,
            answer,
        };
        let outcome = self.store.submit_job(reserve, &job).await?;
        if matches!(outcome, ReserveOutcome::Reserved { .. }) {
            self.job_wakeup.notify_one();
        }
        Ok(outcome)
    }

    /// The result of `appid`'s async job `request_id` (`servicemarketretrieve`, the client API's
    /// `async-result`). Reading is never charged. An unknown id, or one of another app, is 9301014.
    pub async fn async_result(&self, appid: &str, request_id: &str) -> Result<AsyncResult, Failure> {
        let job = self
            .store
            .get_job(request_id)
            .await
            .map_err(|err| Failure::from_store(Code::MarketInternal, &err))?;
        let Some(job) = job.filter(|job| job.appid == appid) else {
            return Err(Failure::new(
                Code::MarketUnknownRequest,
                format!("no async job {request_id} of this app (results are kept 24 h)"),
            ));
        };
        Ok(match (job.state, job.result) {
            (JobState::Pending | JobState::Waiting, _) => AsyncResult::Pending,
            (JobState::Succeeded, data) => AsyncResult::Done(data.unwrap_or_default()),
            (JobState::Failed, failure) => AsyncResult::Failed(stored_failure(failure.as_deref())),
        })
    }

    /// One job, for the operator.
    pub async fn get_job(&self, request_id: &str) -> Result<Job, Failure> {
        let job = self
            .store
            .get_job(request_id)
            .await
            .map_err(|err| Failure::from_store(Code::SystemError, &err))?;
        job.ok_or_else(|| Failure::new(Code::AdminNotFound, format!("job {request_id} not found")))
    }

    /// Jobs, newest first, for the operator.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, Failure> {
        self.store
            .list_jobs(filter)
            .await
            .map_err(|err| Failure::from_store(Code::SystemError, &err))
    }
}

/// A failed job's kept failure; an unreadable one reads as an internal error.
pub fn stored_failure(text: Option<&str>) -> Failure {
    text.and_then(|text| serde_json::from_str::<StoredFailure>(text).ok()).map_or_else(
        || Failure::new(Code::MarketInternal, "the job's failure could not be read"),
        |stored| stored.to_failure(),
    )
}

/// A failure as a job keeps it.
fn failure_text(failure: &Failure) -> String {
    serde_json::to_string(&StoredFailure::from_failure(failure)).unwrap_or_default()
}

/// A new worker identity: the process id and 64 random bits, so two processes never share leases.
pub fn new_worker_id() -> String {
    format!("{}-{:016x}", std::process::id(), rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepted answers are kept for `client_msg_id` replays; answers kept before async jobs existed
    /// (`{"Ok": "<data>"}`) still read as data.
    #[test]
    fn kept_answers_round_trip() {
        let accepted = accepted("r1");
        let text = serde_json::to_string(&accepted).unwrap();
        assert_eq!(serde_json::from_str::<InvokeAnswer>(&text).unwrap(), accepted);
        let old: InvokeAnswer = serde_json::from_str(r#"{"request_id":"r0","outcome":{"Ok":"{\"a\":1}"}}"#).unwrap();
        assert_eq!(old.outcome, Ok(InvokeSuccess::Data(r#"{"a":1}"#.to_owned())));
    }

    #[test]
    fn kept_failures_read_back() {
        let mut failure = Failure::new(Code::MarketProviderFailed, "no");
        failure.provider_errmsg = Some("no".into());
        assert_eq!(stored_failure(Some(&failure_text(&failure))), failure);
        assert_eq!(stored_failure(Some("garbage")).code, Code::MarketInternal);
        assert_eq!(stored_failure(None).code, Code::MarketInternal);
    }
}
