//! Async long tasks, shared: submission is one transaction with the reservation, and completion
//! a conditional update on the job's state (`pending` or `waiting`) in one transaction with the
//! settlement, so exactly one of many concurrent completers wins and settles the units. Leases and
//! reschedules are conditional on the lease owner.

/// The due, unleased jobs to claim (`$1` now, `$4` limit), soonest first.
pub(crate) const DUE_JOBS: &str = "SELECT request_id FROM jobs \
     WHERE state IN ('pending', 'waiting') AND due_at_ms <= $1 \
     AND (lease_until_ms IS NULL OR lease_until_ms <= $1) \
     ORDER BY due_at_ms, request_id LIMIT $4";

/// Leases claimed jobs (`$1` now, `$2` lease length, `$3` owner) and counts the attempt; completed
/// by a `WHERE` naming the claimed rows.
pub(crate) const LEASE_JOBS: &str = "UPDATE jobs SET lease_owner = $3, lease_until_ms = $1 + $2, attempts = attempts + 1";

/// Expands [`Jobs`](souk_core::store::jobs::Jobs) for a backend store (common parameters: see
/// [`crate::shared`]), with `lease_due`, `pub(crate)` in the generated module: runs a claim
/// statement and answers the leased jobs in due order.
///
/// Expects the backend's ledger step `settle_in` in scope of the invoking file.
///
/// Also `complete_in_transaction(&store, completion)`, `pub(crate)` in the generated module:
/// [`Jobs::complete_job`](souk_core::store::jobs::Jobs::complete_job) as one transaction of its own.
///
/// Hooks, functions of the invoking file:
/// - `claim_jobs(&store, now_ms, lease_ms, limit: u32, owner) -> Result<Vec<Job>, StoreError>`, the
///   whole [`Jobs::claim_jobs`](souk_core::store::jobs::Jobs::claim_jobs): how concurrent claimers are
///   kept from leasing the same job is the backend's;
/// - `submit_job(&store, request, job)`: the whole [`Jobs::submit_job`](souk_core::store::jobs::Jobs::submit_job),
///   the backend's own (SQLite group-commits it with the reservation; PostgreSQL reserves through
///   its batches, then inserts the job);
/// - `complete_job(&store, completion)`: the whole [`Jobs::complete_job`](souk_core::store::jobs::Jobs::complete_job),
///   the generated `complete_in_transaction` or the backend's own (SQLite group-commits it).
macro_rules! impl_jobs {
    (
        store: $store:ident,
        db: $db:ident,
        read: $read:ident,
        write: $write:ident,
        begin: $begin:ident,
        claim_jobs: $claim:ident,
        submit_job: $submit:ident,
        complete_job: $complete:ident $(,)?
    ) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::model::{ReserveOutcome, ReserveRequest};
            use souk_core::store::jobs::{Job, JobCompletion, JobFilter, JobReschedule, JobState, Jobs, NewJob};
            use souk_core::store::StoreError;
            use sqlx::{$db, QueryBuilder};
            use $crate::job_rows::{JobRow, JOB_COLUMNS};
            use $crate::rows;

            #[async_trait]
            impl Jobs for $store {
                async fn submit_job(&self, request: &ReserveRequest, job: &NewJob) -> Result<ReserveOutcome, StoreError> {
                    $submit(self, request, job).await
                }

                async fn claim_jobs(&self, now_ms: i64, lease_ms: i64, limit: u32, owner: &str) -> Result<Vec<Job>, StoreError> {
                    $claim(self, now_ms, lease_ms, limit, owner).await
                }

                async fn renew_job_lease(&self, request_id: &str, owner: &str, until_ms: i64) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE jobs SET lease_until_ms = $3 \
                         WHERE request_id = $1 AND lease_owner = $2 AND state IN ('pending', 'waiting')",
                    )
                    .bind(request_id)
                    .bind(owner)
                    .bind(until_ms)
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(done.rows_affected() == 1)
                }

                async fn reschedule_job(&self, reschedule: &JobReschedule) -> Result<bool, StoreError> {
                    if reschedule.state.is_finished() {
                        return Err(StoreError::Internal("a job is finished only by complete_job".into()));
                    }
                    let done = sqlx::query(
                        "UPDATE jobs SET state = $3, due_at_ms = $4, last_error = $5, lease_owner = NULL, lease_until_ms = NULL \
                         WHERE request_id = $1 AND lease_owner = $2 AND state IN ('pending', 'waiting')",
                    )
                    .bind(&reschedule.request_id)
                    .bind(&reschedule.owner)
                    .bind(reschedule.state.as_str())
                    .bind(reschedule.due_at_ms)
                    .bind(&reschedule.last_error)
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(done.rows_affected() == 1)
                }

                async fn complete_job(&self, completion: &JobCompletion) -> Result<bool, StoreError> {
                    $complete(self, completion).await
                }

                async fn get_job(&self, request_id: &str) -> Result<Option<Job>, StoreError> {
                    let row: Option<JobRow> = sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE request_id = $1"))
                        .bind(request_id)
                        .fetch_optional(&self.$read)
                        .await
                        .map_err(from_sqlx)?;
                    row.map(Job::try_from).transpose()
                }

                async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
                    let mut query: QueryBuilder<'_, $db> = QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
                    if let Some(appid) = &filter.appid {
                        query.push(" AND appid = ").push_bind(appid);
                    }
                    if let Some(state) = filter.state {
                        query.push(" AND state = ").push_bind(state.as_str());
                    }
                    if let Some((created_at_ms, request_id)) = &filter.before {
                        query
                            .push(" AND (created_at_ms, request_id) < (")
                            .push_bind(*created_at_ms)
                            .push(", ")
                            .push_bind(request_id)
                            .push(")");
                    }
                    query
                        .push(" ORDER BY created_at_ms DESC, request_id DESC LIMIT ")
                        .push_bind(rows::limit(filter.limit));
                    let rows: Vec<JobRow> = query.build_query_as().fetch_all(&self.$read).await.map_err(from_sqlx)?;
                    rows::map_all(rows)
                }

                async fn sweep_jobs(&self, before_ms: i64) -> Result<u64, StoreError> {
                    let done = sqlx::query("DELETE FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at_ms < $1")
                        .bind(before_ms)
                        .execute(&self.$write)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(done.rows_affected())
                }
            }

            /// [`Jobs::complete_job`] as one transaction of its own.
            #[allow(dead_code)] // A backend that group-commits completions has no use for it.
            pub(crate) async fn complete_in_transaction(store: &$store, completion: &JobCompletion) -> Result<bool, StoreError> {
                let state = if completion.succeeded {
                    JobState::Succeeded
                } else {
                    JobState::Failed
                };
                let mut tx = store.$begin().await?;
                let finished = sqlx::query(
                    "UPDATE jobs SET state = $2, result = $3, finished_at_ms = $4, lease_owner = NULL, lease_until_ms = NULL \
                     WHERE request_id = $1 AND state IN ('pending', 'waiting')",
                )
                .bind(&completion.request_id)
                .bind(state.as_str())
                .bind(&completion.result)
                .bind(completion.now_ms)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?
                .rows_affected();
                if finished == 0 {
                    tx.rollback().await.map_err(from_sqlx)?;
                    return Ok(false);
                }
                settle_in(&mut tx, &completion.request_id, completion.succeeded, completion.now_ms).await?;
                tx.commit().await.map_err(from_sqlx)?;
                Ok(true)
            }

            /// Runs `claim` (a statement leasing due jobs, parameters `$1` now, `$2` lease length, `$3` owner,
            /// `$4` limit, answering the leased rows) on `executor`; answers the jobs in due order.
            pub(crate) async fn lease_due<'c, E>(
                executor: E,
                claim: &str,
                now_ms: i64,
                lease_ms: i64,
                limit: u32,
                owner: &str,
            ) -> Result<Vec<Job>, StoreError>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let rows: Vec<JobRow> = sqlx::query_as(claim)
                    .bind(now_ms)
                    .bind(lease_ms)
                    .bind(owner)
                    .bind(rows::limit(limit))
                    .fetch_all(executor)
                    .await
                    .map_err(from_sqlx)?;
                let mut jobs: Vec<Job> = rows::map_all(rows)?;
                jobs.sort_by(|a, b| (a.due_at_ms, &a.request_id).cmp(&(b.due_at_ms, &b.request_id)));
                Ok(jobs)
            }
        }
    };
}

pub(crate) use impl_jobs;
