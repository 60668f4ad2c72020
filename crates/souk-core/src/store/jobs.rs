//! Async long tasks in storage: the [`Jobs`] trait and its records.
//!
//! A job is born in the same transaction that reserves its units ([`Jobs::submit_job`]), is worked on
//! under a lease ([`Jobs::claim_jobs`]; a dead worker's lease runs out and the job is claimed again),
//! and ends exactly once ([`Jobs::complete_job`]: a conditional update on its state, with the units
//! committed or released in the same transaction).

use async_trait::async_trait;

use super::StoreError;
use crate::model::{ReserveOutcome, ReserveRequest};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for (or in) a provider call; claimable once `due_at_ms` has come and no lease is held.
    Pending,
    /// The provider accepted it (HTTP 202) and will post the result; claimable only at its deadline.
    Waiting,
    /// Finished with the provider's data; the units were committed.
    Succeeded,
    /// Finished with a failure; the units were released.
    Failed,
}

impl JobState {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Waiting => "waiting",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    /// Parses the storage name.
    pub fn parse(name: &str) -> Option<JobState> {
        match name {
            "pending" => Some(JobState::Pending),
            "waiting" => Some(JobState::Waiting),
            "succeeded" => Some(JobState::Succeeded),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }

    /// Whether the job has ended (its units are settled).
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

/// What [`Jobs::submit_job`] stores beside the reservation (whose request id, apps, service, API and
/// time the job takes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The end user, for client calls.
    pub openid: Option<String>,
    /// The body the provider gets: `data`, serialized once.
    pub body: String,
    /// When the job fails if it has not finished.
    pub deadline_ms: i64,
    /// The answer kept for `client_msg_id` retries (the "accepted" answer), stored with the claim.
    pub answer: Option<String>,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The request id: the job's key, sent to the provider on every attempt.
    pub request_id: String,
    /// The app that submitted it (only it may retrieve the result).
    pub appid: String,
    /// The app whose package pays.
    pub payer_appid: String,
    /// End user.
    pub openid: Option<String>,
    /// Service.
    pub service_id: String,
    /// API.
    pub api: String,
    /// The package holding its units.
    pub package_id: String,
    /// The provider's body.
    pub body: String,
    /// State.
    pub state: JobState,
    /// Claims so far (each claim is one attempt at the provider).
    pub attempts: u32,
    /// When it may next be claimed.
    pub due_at_ms: i64,
    /// The worker holding it.
    pub lease_owner: Option<String>,
    /// Until when that worker holds it.
    pub lease_until_ms: Option<i64>,
    /// When it fails if still unfinished.
    pub deadline_ms: i64,
    /// Why the last attempt did not finish it.
    pub last_error: Option<String>,
    /// Once finished: the data (JSON string) on success, the failure (JSON, written by the domain) on
    /// failure.
    pub result: Option<String>,
    /// Submission time.
    pub created_at_ms: i64,
    /// Completion time.
    pub finished_at_ms: Option<i64>,
}

/// How a claimed job goes back to waiting without finishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReschedule {
    /// The job.
    pub request_id: String,
    /// The worker that claimed it: nothing changes if it no longer holds the lease.
    pub owner: String,
    /// [`JobState::Pending`] (retry at `due_at_ms`) or [`JobState::Waiting`] (for the callback).
    pub state: JobState,
    /// When it may be claimed again.
    pub due_at_ms: i64,
    /// Why.
    pub last_error: Option<String>,
}

/// How a job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCompletion {
    /// The job.
    pub request_id: String,
    /// `true`: succeeded, units committed; `false`: failed, units released.
    pub succeeded: bool,
    /// The data (success) or the failure (JSON), kept for retrieval.
    pub result: String,
    /// Now.
    pub now_ms: i64,
}

/// Filters of `GET jobs`; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Submitting app.
    pub appid: Option<String>,
    /// State.
    pub state: Option<JobState>,
    /// Keyset cursor: only jobs strictly older than `(created_at_ms, request_id)`.
    pub before: Option<(i64, String)>,
    /// Page size.
    pub limit: u32,
}

/// Async long tasks, durable.
#[async_trait]
pub trait Jobs: Send + Sync {
    /// What [`super::Ledger::reserve`] does (with `job.answer` kept as the `client_msg_id`'s answer)
    /// and, when the units are reserved, inserts the job as [`JobState::Pending`], due now. Any other
    /// outcome writes nothing. `Reserved` is answered only once the job is stored. One transaction on
    /// SQLite; on PostgreSQL the reservation goes through the node's batches first, and a reservation
    /// left without its job (a crash in between) is released by the reaper, as no job keeps it.
    async fn submit_job(&self, request: &ReserveRequest, job: &NewJob) -> Result<ReserveOutcome, StoreError>;
    /// Claims up to `limit` jobs that are unfinished, due (`due_at_ms <= now_ms`) and not leased
    /// (no lease, or one that ran out), soonest due first: each gets `owner`'s lease until
    /// `now_ms + lease_ms` and one more attempt. Two concurrent claimers never get the same job.
    async fn claim_jobs(&self, now_ms: i64, lease_ms: i64, limit: u32, owner: &str) -> Result<Vec<Job>, StoreError>;
    /// Extends `owner`'s lease on an unfinished job to `until_ms`; `false` if it holds none.
    async fn renew_job_lease(&self, request_id: &str, owner: &str, until_ms: i64) -> Result<bool, StoreError>;
    /// Puts an unfinished job leased by `reschedule.owner` back (lease dropped) in the given state and
    /// due time; `false` (nothing changed) if the lease is gone or the job finished.
    async fn reschedule_job(&self, reschedule: &JobReschedule) -> Result<bool, StoreError>;
    /// In one transaction: finishes an unfinished job (any lease) and commits or releases its units.
    /// A job already finished changes nothing and answers `false`, so a job completes exactly once.
    async fn complete_job(&self, completion: &JobCompletion) -> Result<bool, StoreError>;
    /// One job.
    async fn get_job(&self, request_id: &str) -> Result<Option<Job>, StoreError>;
    /// Jobs matching the filter, newest first (by `created_at_ms`, then request id, descending).
    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError>;
    /// Deletes jobs that finished before `before_ms`; answers how many.
    async fn sweep_jobs(&self, before_ms: i64) -> Result<u64, StoreError>;
}
