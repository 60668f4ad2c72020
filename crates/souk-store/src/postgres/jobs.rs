//! Async long tasks on PostgreSQL, for several nodes sharing one database: the shared statements
//! ([`crate::shared::jobs`]) on the one pool.
//!
//! Claims take due rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers (threads or nodes) split
//! the queue without waiting on each other and never get the same job; under READ COMMITTED a row
//! changed by a concurrent commit is re-checked against the claim's conditions before it is locked.
//! Completion is a conditional update on the job's state, re-checked under the row lock, so exactly
//! one of many concurrent completers wins and settles the units.

use souk_core::store::jobs::Job;
use souk_core::store::StoreError;

use super::ledger::{reserve_in, settle_in};
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
    // The generated transactional ones.
    submit_job: submit_in_transaction,
    complete_job: complete_in_transaction,
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
