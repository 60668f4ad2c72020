//! Async long tasks on SQLite: the shared statements ([`crate::shared::jobs`]), every write one
//! statement or one `BEGIN IMMEDIATE` transaction on the single writer connection, so claims never
//! race; the state and lease conditions in each statement would keep completion exactly-once even
//! without that serialization. Submissions and completions, one per call, are group-committed with
//! the ledger's writes ([`super::group`]).

use souk_core::model::{ReserveOutcome, ReserveRequest};
use souk_core::store::jobs::{Job, JobCompletion, NewJob};
use souk_core::store::StoreError;

use super::ledger::settle_in;
use super::{from_sqlx, SqliteStore};
use crate::job_rows::JOB_COLUMNS;
use crate::shared::jobs::{DUE_JOBS, LEASE_JOBS};
use shared::lease_due;

crate::shared::jobs::impl_jobs! {
    store: SqliteStore,
    db: Sqlite,
    read: reader,
    write: writer,
    begin: begin_write,
    claim_jobs: claim_jobs,
    submit_job: grouped_submit,
    complete_job: grouped_complete,
}

/// Hook of [`crate::shared::jobs`]: submissions are group-committed with the ledger's writes
/// ([`super::group`]).
async fn grouped_submit(store: &SqliteStore, request: &ReserveRequest, job: &NewJob) -> Result<ReserveOutcome, StoreError> {
    store.group.submit_job(&store.writer, request, job).await
}

/// Hook of [`crate::shared::jobs`]: completions are group-committed with the ledger's writes.
async fn grouped_complete(store: &SqliteStore, completion: &JobCompletion) -> Result<bool, StoreError> {
    store.group.complete_job(&store.writer, completion).await
}

/// Hook of [`crate::shared::jobs`], [`Jobs::claim_jobs`](souk_core::store::jobs::Jobs::claim_jobs):
/// one `UPDATE ... WHERE request_id IN (due jobs)` in a `BEGIN IMMEDIATE` transaction, which no
/// other claimer can interleave with.
async fn claim_jobs(store: &SqliteStore, now_ms: i64, lease_ms: i64, limit: u32, owner: &str) -> Result<Vec<Job>, StoreError> {
    let claim = format!("{LEASE_JOBS} WHERE request_id IN ({DUE_JOBS}) RETURNING {JOB_COLUMNS}");
    let mut tx = store.begin_write().await?;
    let jobs = lease_due(&mut *tx, &claim, now_ms, lease_ms, limit, owner).await?;
    tx.commit().await.map_err(from_sqlx)?;
    Ok(jobs)
}
