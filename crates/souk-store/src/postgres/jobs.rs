//! Async long tasks on PostgreSQL, for several nodes sharing one database.
//!
//! Claims take due rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers (threads or nodes) split
//! the queue without waiting on each other and never get the same job; under READ COMMITTED a row
//! changed by a concurrent commit is re-checked against the claim's conditions before it is locked.
//! Completion is a conditional update on the job's state, re-checked under the row lock, so exactly
//! one of many concurrent completers wins and settles the units.

use async_trait::async_trait;
use souk_core::model::{ReserveOutcome, ReserveRequest};
use souk_core::store::jobs::{Job, JobCompletion, JobFilter, JobReschedule, JobState, Jobs, NewJob};
use souk_core::store::StoreError;
use sqlx::{Postgres, QueryBuilder};

use super::ledger::{reserve_in, settle_in};
use super::{from_sqlx, PgStore};
use crate::job_rows::{JobRow, JOB_COLUMNS};
use crate::rows;

#[async_trait]
impl Jobs for PgStore {
    async fn submit_job(&self, request: &ReserveRequest, job: &NewJob) -> Result<ReserveOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let outcome = reserve_in(&mut tx, request, job.answer.as_deref()).await?;
        let ReserveOutcome::Reserved { package_id } = &outcome else {
            tx.rollback().await.map_err(from_sqlx)?;
            return Ok(outcome);
        };
        sqlx::query(&format!(
            "INSERT INTO jobs ({JOB_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, NULL, NULL, $10, NULL, NULL, $9, NULL)"
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
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(outcome)
    }

    async fn claim_jobs(&self, now_ms: i64, lease_ms: i64, limit: u32, owner: &str) -> Result<Vec<Job>, StoreError> {
        // The CTE runs once (a subquery in WHERE might be evaluated again and lock more rows).
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "WITH due AS (\
                 SELECT request_id FROM jobs \
                 WHERE state IN ('pending', 'waiting') AND due_at_ms <= $1 \
                 AND (lease_until_ms IS NULL OR lease_until_ms <= $1) \
                 ORDER BY due_at_ms, request_id LIMIT $4 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE jobs SET lease_owner = $3, lease_until_ms = $1 + $2, attempts = attempts + 1 \
             WHERE request_id IN (SELECT request_id FROM due) \
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(now_ms)
        .bind(lease_ms)
        .bind(owner)
        .bind(rows::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        let mut jobs: Vec<Job> = rows::map_all(rows)?;
        jobs.sort_by(|a, b| (a.due_at_ms, &a.request_id).cmp(&(b.due_at_ms, &b.request_id)));
        Ok(jobs)
    }

    async fn renew_job_lease(&self, request_id: &str, owner: &str, until_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until_ms = $3 \
             WHERE request_id = $1 AND lease_owner = $2 AND state IN ('pending', 'waiting')",
        )
        .bind(request_id)
        .bind(owner)
        .bind(until_ms)
        .execute(&self.pool)
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
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    async fn complete_job(&self, completion: &JobCompletion) -> Result<bool, StoreError> {
        let state = if completion.succeeded {
            JobState::Succeeded
        } else {
            JobState::Failed
        };
        let mut tx = self.begin().await?;
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

    async fn get_job(&self, request_id: &str) -> Result<Option<Job>, StoreError> {
        let row: Option<JobRow> = sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE request_id = $1"))
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.map(Job::try_from).transpose()
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let mut query: QueryBuilder<'_, Postgres> = QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
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
        let rows: Vec<JobRow> = query.build_query_as().fetch_all(&self.pool).await.map_err(from_sqlx)?;
        rows::map_all(rows)
    }

    async fn sweep_jobs(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }
}
