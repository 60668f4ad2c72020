//! Async long tasks on PostgreSQL, for several nodes sharing one database: the shared statements
//! ([`crate::shared::jobs`]) on the one pool.
//!
//! Claims take due rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers (threads or nodes) split
//! the queue without waiting on each other and never get the same job; under READ COMMITTED a row
//! changed by a concurrent commit is re-checked against the claim's conditions before it is locked.
//! Completion is a conditional update on the job's state, re-checked under the row lock, so exactly
//! one of many concurrent completers wins and settles the units.
//!
//! Submission takes its units through the node's reservation batches ([`super::ledger`]), as a sync
//! call does, then stores the job and the `client_msg_id`'s "accepted" answer in one statement: the
//! package row is locked once per batch, not for the whole of every submission's transaction (which
//! made concurrent submissions on one package queue behind each other's round trips). The caller
//! gets its request id only after both; both run in a task of their own, so a caller that stops
//! waiting never leaves a reservation without its job. A reservation whose job was not stored
//! (the process died in between, or the insert's outcome is unknown) has no job to keep it, so the
//! reaper releases it like a sync call's; one whose insert was refused is cancelled at once.

use souk_core::model::{ReserveOutcome, ReserveRequest};
use souk_core::store::jobs::{Job, NewJob};
use souk_core::store::{Ledger, StoreError};

use super::ledger::{reserve_batched, settle_in};
use super::{from_sqlx, PgStore};
use crate::job_rows::JOB_COLUMNS;
use crate::shared::jobs::{DUE_JOBS, LEASE_JOBS};
use shared::lease_due;

crate::shared::jobs::impl_jobs! {
    store: PgStore,
    db: Postgres,
    read: pool,
    write: pool,
    begin: begin,
    claim_jobs: claim_jobs,
    submit_job: submit_batched,
    // The generated transactional one.
    complete_job: complete_in_transaction,
}

/// Hook of [`crate::shared::jobs`]: the reservation through the node's batches, then the job.
async fn submit_batched(store: &PgStore, request: &ReserveRequest, job: &NewJob) -> Result<ReserveOutcome, StoreError> {
    let (store, request, job) = (store.clone(), request.clone(), job.clone());
    // Not cancelled with its caller: a reservation made is always followed by its job's insert.
    tokio::spawn(async move { submit_then_store(&store, &request, &job).await })
        .await
        .unwrap_or_else(|err| Err(StoreError::Internal(format!("the submission's task failed: {err}"))))
}

async fn submit_then_store(store: &PgStore, request: &ReserveRequest, job: &NewJob) -> Result<ReserveOutcome, StoreError> {
    let outcome = reserve_batched(store, request).await?;
    let ReserveOutcome::Reserved { package_id } = &outcome else {
        return Ok(outcome);
    };
    match insert_job(store, request, job, package_id).await {
        Ok(()) => Ok(outcome),
        Err(StoreError::AlreadyExists) => {
            // Refused, so nothing of the insert was kept: the units and the claim go back now.
            store.cancel_reservation(&request.request_id).await?;
            Err(StoreError::AlreadyExists)
        }
        // The insert may or may not have committed: the reaper decides, by whether the job exists.
        Err(failure) => Err(failure),
    }
}

/// Inserts the job, pending and due now, and keeps its "accepted" answer on the submission's
/// `client_msg_id` claim, in one statement.
async fn insert_job(store: &PgStore, request: &ReserveRequest, job: &NewJob, package_id: &str) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "WITH job AS (INSERT INTO jobs ({JOB_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, NULL, NULL, $10, NULL, NULL, $9, NULL) RETURNING request_id) \
         UPDATE idempotency SET answer = $12 \
         WHERE caller_appid = $2 AND client_msg_id = $11 AND request_id = (SELECT request_id FROM job)"
    ))
    .bind(&request.request_id)
    .bind(&request.caller_appid)
    .bind(&request.payer_appid)
    .bind(&job.openid)
    .bind(&request.service_id)
    .bind(&request.api)
    .bind(package_id)
    .bind(&job.body)
    .bind(request.now_ms)
    .bind(job.deadline_ms)
    .bind(&request.client_msg_id)
    .bind(&job.answer)
    .execute(&store.pool)
    .await
    .map_err(from_sqlx)?;
    Ok(())
}

/// Hook of [`crate::shared::jobs`], [`Jobs::claim_jobs`](souk_core::store::jobs::Jobs::claim_jobs):
/// one statement, the due rows locked with `FOR UPDATE SKIP LOCKED` in a CTE (which runs once; a
/// subquery in `WHERE` might be evaluated again and lock more rows).
async fn claim_jobs(store: &PgStore, now_ms: i64, lease_ms: i64, limit: u32, owner: &str) -> Result<Vec<Job>, StoreError> {
    let claim = format!(
        "WITH due AS ({DUE_JOBS} FOR UPDATE SKIP LOCKED) {LEASE_JOBS} WHERE request_id IN (SELECT request_id FROM due) \
         RETURNING {JOB_COLUMNS}"
    );
    lease_due(&store.pool, &claim, now_ms, lease_ms, limit, owner).await
}
