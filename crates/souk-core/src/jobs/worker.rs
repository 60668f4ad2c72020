//! The worker side of async jobs: claim due jobs under a lease, call the provider, and move each job
//! to its next state. [`Souk::run_due_jobs`] is one deterministic step (tests drive it with a manual
//! clock); [`Souk::start_job_workers`] is the bounded pool `souk serve` runs.

use std::sync::Arc;
use std::time::Duration;

use souk_types::Code;
use tokio::sync::Semaphore;

use super::{failure_text, LEASE_MS, LEASE_RENEW_MS, MAX_ATTEMPTS, RETRY_BASE_MS, RETRY_MAX_MS};
use crate::error::Failure;
use crate::market::read_provider_reply;
use crate::model::CallRecord;
use crate::provider::{signed_url, ProviderReply, ProviderRequest, SignedCall};
use crate::souk::Souk;
use crate::store::jobs::{Job, JobCompletion, JobReschedule, JobState};
use crate::store::StoreError;

/// Jobs run at once by one process, unless configured otherwise.
pub const DEFAULT_WORKERS: usize = 16;
/// How often an idle pool looks for due jobs (submissions in this process wake it at once).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How the worker pool runs.
#[derive(Debug, Clone)]
pub struct JobWorkerSettings {
    /// Jobs run at once.
    pub workers: usize,
    /// How often an idle pool looks for due jobs.
    pub poll_interval: Duration,
    /// This pool's lease owner name (see [`super::new_worker_id`]).
    pub owner: String,
}

impl Default for JobWorkerSettings {
    fn default() -> Self {
        JobWorkerSettings {
            workers: DEFAULT_WORKERS,
            poll_interval: DEFAULT_POLL_INTERVAL,
            owner: super::new_worker_id(),
        }
    }
}

/// What one provider exchange means for the job.
enum Step {
    /// Finish the job with this outcome.
    Finish(Result<String, Failure>),
    /// The provider took the job (HTTP 202): wait for its callback until the deadline.
    AwaitCallback,
    /// Try again later (transport failure, HTTP 5xx, a body that is not the envelope, a timeout).
    Retry(Failure),
}

/// Where a job finished from, for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinishedBy {
    /// A worker (provider answer, retries exhausted, deadline).
    Worker,
    /// The provider's callback.
    Callback,
}

impl Souk {
    /// One step of the worker loop: claims up to [`DEFAULT_WORKERS`] due jobs as `owner` and runs
    /// each to its next state (finished, waiting for a callback, or due again later), concurrently.
    /// Answers how many jobs it claimed.
    pub async fn run_due_jobs(&self, owner: &str) -> usize {
        let jobs = self.claim_due_jobs(owner, DEFAULT_WORKERS).await;
        let claimed = jobs.len();
        futures::future::join_all(jobs.into_iter().map(|job| self.run_job(job, owner))).await;
        claimed
    }

    /// Starts the bounded worker pool: at most `settings.workers` jobs run at once; an idle pool
    /// polls every `settings.poll_interval` and wakes at once when this process accepts a job.
    /// Aborting the returned task stops claiming; jobs in flight finish or lose their lease. The
    /// customer-service message push loop ([`crate::messages::push`]) runs in the same task.
    pub fn start_job_workers(self: &Arc<Self>, settings: JobWorkerSettings) -> tokio::task::JoinHandle<()> {
        let souk = self.clone();
        let poll = settings.poll_interval;
        // The customer-service message push loop runs beside the pool and stops with it.
        tokio::spawn(async move {
            let pushes = souk.message_push_loop(poll);
            tokio::join!(souk.clone().job_pool(settings), pushes);
        })
    }

    async fn job_pool(self: Arc<Self>, settings: JobWorkerSettings) {
        let slots = Arc::new(Semaphore::new(settings.workers.max(1)));
        let owner: Arc<str> = settings.owner.into();
        tracing::info!(workers = settings.workers, owner = %owner, "async job workers started");
        loop {
            // Wait for a free slot, then claim as many jobs as there are free slots.
            let Ok(first) = slots.clone().acquire_owned().await else { return };
            let free = 1 + slots.available_permits();
            let jobs = self.claim_due_jobs(&owner, free).await;
            if jobs.is_empty() {
                drop(first);
                let _ = tokio::time::timeout(settings.poll_interval, self.job_wakeup.notified()).await;
                continue;
            }
            let mut permit = Some(first);
            for job in jobs {
                let slot = match permit.take() {
                    Some(slot) => slot,
                    // Only this loop takes slots, so the ones counted free are still free.
                    None => match slots.clone().acquire_owned().await {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                };
                let souk = self.clone();
                let owner = owner.clone();
                tokio::spawn(async move {
                    souk.run_job(job, &owner).await;
                    drop(slot);
                });
            }
        }
    }

    async fn claim_due_jobs(&self, owner: &str, limit: usize) -> Vec<Job> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        match self.store.claim_jobs(self.now_ms(), LEASE_MS, limit, owner).await {
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::warn!(error = %err, "claiming async jobs failed; will retry");
                Vec::new()
            }
        }
    }

    /// Runs one claimed job to its next state.
    async fn run_job(&self, job: Job, owner: &str) {
        let now_ms = self.now_ms();
        if now_ms >= job.deadline_ms {
            let failure = Failure::new(
                Code::MarketProviderTimeout,
                format!(
                    "the async job did not finish within {} s of its submission",
                    (job.deadline_ms - job.created_at_ms) / 1000
                ),
            );
            let _ = self.finish_job(&job, Err(failure), FinishedBy::Worker).await;
            return;
        }
        if job.state == JobState::Waiting {
            // Claimed before its deadline (its due time is the deadline): put it back.
            self.reschedule(&job, owner, JobState::Waiting, job.deadline_ms, job.last_error.clone())
                .await;
            return;
        }
        if job.attempts > MAX_ATTEMPTS {
            let last = job.last_error.as_deref().unwrap_or("the worker running it stopped");
            let failure = Failure::new(
                Code::MarketCallFailed,
                format!("gave up after {MAX_ATTEMPTS} attempts; last: {last}"),
            );
            let _ = self.finish_job(&job, Err(failure), FinishedBy::Worker).await;
            return;
        }
        match self.call_job_provider(&job, owner, now_ms).await {
            Step::Finish(outcome) => {
                let _ = self.finish_job(&job, outcome, FinishedBy::Worker).await;
            }
            Step::AwaitCallback => {
                let why = Some("the provider accepted the job (HTTP 202) and will post the result".to_owned());
                self.reschedule(&job, owner, JobState::Waiting, job.deadline_ms, why).await;
            }
            Step::Retry(failure) if job.attempts >= MAX_ATTEMPTS => {
                let failure = Failure::new(
                    failure.code,
                    format!("gave up after {MAX_ATTEMPTS} attempts; last: {}", failure.detail),
                );
                let _ = self.finish_job(&job, Err(failure), FinishedBy::Worker).await;
            }
            Step::Retry(failure) => {
                let due_ms = (self.now_ms() + retry_delay_ms(job.attempts)).min(job.deadline_ms);
                tracing::info!(request_id = %job.request_id, attempt = job.attempts, error = %failure.detail, "async job attempt failed; retrying");
                self.reschedule(&job, owner, JobState::Pending, due_ms, Some(failure.message()))
                    .await;
            }
        }
    }

    /// One signed provider request for the job, bounded by the API's timeout and the deadline, with
    /// the lease renewed while it runs.
    async fn call_job_provider(&self, job: &Job, owner: &str, now_ms: i64) -> Step {
        let (api, service) = match (
            self.find_api(&job.service_id, &job.api).await,
            self.find_service(&job.service_id).await,
        ) {
            (Ok(Some(api)), Ok(Some(service))) if !service.disabled => (api, service),
            (Ok(None), _) => {
                let detail = format!("service {} no longer has api {}", job.service_id, job.api);
                return Step::Finish(Err(Failure::new(Code::MarketUnknownApi, detail)));
            }
            (Ok(_), Ok(_)) => {
                let detail = format!("service {} is gone or disabled", job.service_id);
                return Step::Finish(Err(Failure::new(Code::MarketUnknownService, detail)));
            }
            (Err(err), _) | (_, Err(err)) => {
                return Step::Retry(Failure::new(Code::MarketInternal, format!("registry lookup failed: {err}")));
            }
        };
        let timeout_ms = api.api.timeout_ms.min(u64::try_from(job.deadline_ms - now_ms).unwrap_or(0).max(1));
        let body = job.body.as_bytes().to_vec();
        let url = signed_url(
            &SignedCall {
                upstream_url: &api.api.upstream_url,
                secret: &service.secret,
                request_id: &job.request_id,
                service_id: &job.service_id,
                api: &job.api,
                appid: &job.appid,
                openid: job.openid.as_deref(),
                is_async: true,
                now_ms,
            },
            &body,
        );
        let request = ProviderRequest {
            url,
            body,
            timeout: Duration::from_millis(timeout_ms),
        };
        let reply = self.post_under_lease(job, owner, request).await;
        step_of(reply, timeout_ms)
    }

    /// Sends the request, renewing the lease every [`LEASE_RENEW_MS`] until the answer comes.
    async fn post_under_lease(&self, job: &Job, owner: &str, request: ProviderRequest) -> ProviderReply {
        let call = self.transport.post(request);
        tokio::pin!(call);
        let every = Duration::from_millis(LEASE_RENEW_MS);
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                reply = &mut call => return reply,
                _ = renew.tick() => {
                    match self.store.renew_job_lease(&job.request_id, owner, self.now_ms() + LEASE_MS).await {
                        Ok(true) => {}
                        // Completion stays exactly-once; at worst the provider sees this request id again.
                        Ok(false) => tracing::warn!(request_id = %job.request_id, "lost the lease on a running async job"),
                        Err(err) => tracing::warn!(request_id = %job.request_id, error = %err, "renewing an async job's lease failed"),
                    }
                }
            }
        }
    }

    async fn reschedule(&self, job: &Job, owner: &str, state: JobState, due_at_ms: i64, last_error: Option<String>) {
        let reschedule = JobReschedule {
            request_id: job.request_id.clone(),
            owner: owner.to_owned(),
            state,
            due_at_ms,
            last_error,
        };
        match self.store.reschedule_job(&reschedule).await {
            Ok(true) => {}
            Ok(false) => tracing::debug!(request_id = %job.request_id, "async job finished or taken over meanwhile"),
            // The lease lapses and the job is claimed again.
            Err(err) => tracing::warn!(request_id = %job.request_id, error = %err, "rescheduling an async job failed"),
        }
    }

    /// Finishes a job exactly once (settling its units in the same store transaction); the winner logs
    /// the completion and pushes it. Answers whether this call finished it (`false`: it had already
    /// finished). A store failure leaves the job unfinished: its lease lapses and it runs again.
    pub(crate) async fn finish_job(&self, job: &Job, outcome: Result<String, Failure>, by: FinishedBy) -> Result<bool, StoreError> {
        let now_ms = self.now_ms();
        let completion = JobCompletion {
            request_id: job.request_id.clone(),
            succeeded: outcome.is_ok(),
            result: match &outcome {
                Ok(data) => data.clone(),
                Err(failure) => failure_text(failure),
            },
            now_ms,
        };
        let finished = self.store.complete_job(&completion).await.inspect_err(|err| {
            tracing::error!(request_id = %job.request_id, error = %err, "completing an async job failed");
        })?;
        if finished {
            tracing::info!(request_id = %job.request_id, succeeded = completion.succeeded, by = ?by, "async job finished");
            self.log_job_completion(job, &outcome, &completion, now_ms).await;
            self.push_job_result(job, &outcome).await;
        }
        Ok(finished)
    }

    /// The completion as its own call-log entry (`<request_id>.done`, route `servicemarket_async`),
    /// since the submission's entry already has the request id; latency is submission to completion.
    async fn log_job_completion(&self, job: &Job, outcome: &Result<String, Failure>, completion: &JobCompletion, now_ms: i64) {
        let (errcode, message) = match outcome {
            Ok(_) => (0, None),
            Err(failure) => (failure.code.errcode(), Some(failure.message())),
        };
        let record = CallRecord {
            request_id: format!("{}.done", job.request_id),
            at_ms: now_ms,
            route: "servicemarket_async".to_owned(),
            appid: Some(job.appid.clone()),
            openid: job.openid.clone(),
            plugin_appid: None,
            service_id: Some(job.service_id.clone()),
            api: Some(job.api.clone()),
            errcode,
            message,
            latency_us: (now_ms - job.created_at_ms).max(0).saturating_mul(1000),
            package_id: Some(job.package_id.clone()),
            bytes_in: i64::try_from(job.body.len()).unwrap_or(i64::MAX),
            bytes_out: i64::try_from(completion.result.len()).unwrap_or(i64::MAX),
            cache_hit: false,
        };
        self.calls.record(record).await;
    }
}

/// What a provider exchange means: 202 waits for the callback; a 4xx other than 408/429 is final
/// (retrying will not fix the request); the envelope finishes the job; anything else is retried.
fn step_of(reply: ProviderReply, timeout_ms: u64) -> Step {
    if let ProviderReply::Answered { status, .. } = &reply {
        if *status == 202 {
            return Step::AwaitCallback;
        }
        if (400..500).contains(status) && !matches!(status, 408 | 429) {
            return Step::Finish(Err(Failure::new(
                Code::MarketCallFailed,
                format!("provider answered HTTP {status}"),
            )));
        }
    }
    match read_provider_reply(reply, timeout_ms) {
        Ok(data) => Step::Finish(Ok(data)),
        Err(failure) if failure.code == Code::MarketProviderFailed => Step::Finish(Err(failure)),
        Err(failure) => Step::Retry(failure),
    }
}

/// The wait before the attempt after `attempts`: 1 s, 2 s, 4 s, ... up to [`RETRY_MAX_MS`].
fn retry_delay_ms(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(16);
    (RETRY_BASE_MS << doublings).min(RETRY_MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, body: &str) -> ProviderReply {
        ProviderReply::Answered {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    fn kind(step: &Step) -> String {
        match step {
            Step::Finish(Ok(data)) => format!("ok {data}"),
            Step::Finish(Err(failure)) => format!("fail {}", failure.code.name()),
            Step::AwaitCallback => "wait".to_owned(),
            Step::Retry(failure) => format!("retry {}", failure.code.name()),
        }
    }

    #[test]
    fn replies_become_steps() {
        let cases = [
            (answered(200, r#"{"success":true,"data":{"a":1}}"#), "ok {\"a\":1}"),
            (
                answered(200, r#"{"success":false,"errorMessage":"no"}"#),
                "fail MarketProviderFailed",
            ),
            (answered(202, ""), "wait"),
            (answered(202, r#"{"success":true}"#), "wait"),
            (answered(404, "nope"), "fail MarketCallFailed"),
            (answered(429, "slow down"), "retry MarketCallFailed"),
            (answered(503, "busy"), "retry MarketCallFailed"),
            (answered(200, "<html>"), "retry MarketCallFailed"),
            (ProviderReply::TimedOut, "retry MarketProviderTimeout"),
            (ProviderReply::Failed("refused".into()), "retry MarketCallFailed"),
        ];
        for (reply, expect) in cases {
            assert_eq!(kind(&step_of(reply, 100)), expect);
        }
    }

    #[test]
    fn retries_back_off_exponentially_with_a_cap() {
        let delays: Vec<i64> = (1..=9).map(retry_delay_ms).collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    }
}
