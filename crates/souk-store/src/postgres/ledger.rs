//! Reservation, settlement and the ledger on PostgreSQL, with `client_msg_id` idempotency.
//!
//! Under READ COMMITTED, `UPDATE packages ... WHERE units_left >= $units` waits for a concurrent
//! holder of the row and re-checks the condition on the committed row, so units are never
//! over-taken; a candidate lost to a concurrent transaction is skipped for the next one. The
//! idempotency key is claimed first with `INSERT ... ON CONFLICT DO NOTHING`, which waits for a
//! concurrent claimer of the same key: if that one commits this call is a `Duplicate`, if it rolls
//! back this insert succeeds.

use std::collections::BTreeMap;

use async_trait::async_trait;
use souk_core::model::{ChargeState, IdempotencyRecord, LedgerEntry, ReserveOutcome, ReserveRequest, Settlement};
use souk_core::store::{Ledger, StoreError};
use sqlx::{Postgres, Transaction};

use super::{from_sqlx, xact_lock, PgStore};
use crate::rows::{self, ChargeRow, IdempotencyRow, CHARGE_COLUMNS};

/// How many candidate packages one round looks at.
const CANDIDATES: i64 = 16;
/// Rounds of candidate selection before answering from the current state.
const ROUNDS: usize = 8;
/// Attempts at claiming an idempotency key whose holder keeps vanishing (reaped between statements).
const CLAIM_ATTEMPTS: usize = 8;

#[async_trait]
impl Ledger for PgStore {
    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let outcome = reserve_in(&mut tx, request, None).await?;
        if matches!(outcome, ReserveOutcome::Reserved { .. }) {
            tx.commit().await.map_err(from_sqlx)?;
        } else {
            // Rolling back drops the idempotency claim: a retry runs again.
            tx.rollback().await.map_err(from_sqlx)?;
        }
        Ok(outcome)
    }

    async fn settle(&self, settlement: &Settlement) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let settled = settle_in(&mut tx, &settlement.request_id, settlement.commit, settlement.now_ms).await?;
        if let Some((caller_appid, client_msg_id, answer)) = &settlement.answer {
            sqlx::query(
                "UPDATE idempotency SET answer = COALESCE(answer, $4) \
                 WHERE caller_appid = $1 AND client_msg_id = $2 AND request_id = $3",
            )
            .bind(caller_appid)
            .bind(client_msg_id)
            .bind(&settlement.request_id)
            .bind(answer)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(settled)
    }

    async fn find_idempotent(&self, caller_appid: &str, client_msg_id: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row: Option<IdempotencyRow> =
            sqlx::query_as("SELECT request_id, answer FROM idempotency WHERE caller_appid = $1 AND client_msg_id = $2")
                .bind(caller_appid)
                .bind(client_msg_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
        Ok(row.map(IdempotencyRecord::from))
    }

    async fn reap_reservations(&self, before_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        // One reaper at a time: two would otherwise lock charges and packages in different orders.
        xact_lock(&mut tx, "souk.reap").await?;
        let reaped: Vec<(String, String, i64)> = sqlx::query_as(
            "UPDATE charges SET state = 'released', settled_at_ms = $2 \
             WHERE state = 'reserved' AND created_at_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.request_id = charges.request_id AND jobs.state IN ('pending', 'waiting')) \
             RETURNING request_id, package_id, units",
        )
        .bind(before_ms)
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let mut per_package: BTreeMap<&str, i64> = BTreeMap::new();
        for (_, package_id, units) in &reaped {
            *per_package.entry(package_id).or_default() += units;
        }
        for (package_id, units) in per_package {
            return_units(&mut tx, package_id, units).await?;
        }
        let request_ids: Vec<&str> = reaped.iter().map(|(request_id, _, _)| request_id.as_str()).collect();
        sqlx::query("DELETE FROM idempotency WHERE request_id = ANY($1) AND answer IS NULL")
            .bind(&request_ids)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(reaped.len() as u64)
    }

    async fn ledger(&self, package_id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows: Vec<ChargeRow> = sqlx::query_as(&format!(
            "SELECT {CHARGE_COLUMNS} FROM charges WHERE package_id = $1 ORDER BY created_at_ms, request_id"
        ))
        .bind(package_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows::map_all(rows)
    }

    async fn sweep_idempotency(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency WHERE answer IS NOT NULL AND created_at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }
}

/// The body of [`Ledger::reserve`] inside the caller's transaction, which the caller commits only when
/// the answer is `Reserved`. `answer` is stored with a new `client_msg_id` claim at once (async jobs
/// know their answer before they run).
pub(super) async fn reserve_in(
    tx: &mut Transaction<'static, Postgres>,
    request: &ReserveRequest,
    answer: Option<&str>,
) -> Result<ReserveOutcome, StoreError> {
    if request.units < 0 {
        return Err(StoreError::Internal("cannot reserve a negative number of units".into()));
    }
    if let Some(client_msg_id) = &request.client_msg_id {
        if let Some(first) = claim_client_msg_id(tx, request, client_msg_id, answer).await? {
            return Ok(ReserveOutcome::Duplicate(first));
        }
    }
    if let Some(package_id) = take_units(tx, request).await? {
        sqlx::query(&format!(
            "INSERT INTO charges ({CHARGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, 'reserved', $8, NULL)"
        ))
        .bind(&request.request_id)
        .bind(&package_id)
        .bind(&request.payer_appid)
        .bind(&request.caller_appid)
        .bind(&request.service_id)
        .bind(&request.api)
        .bind(request.units)
        .bind(request.now_ms)
        .execute(&mut **tx)
        .await
        .map_err(from_sqlx)?;
        return Ok(ReserveOutcome::Reserved { package_id });
    }
    let (total, unexpired): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN expires_at_ms IS NULL OR expires_at_ms > $3 THEN 1 ELSE 0 END), 0) \
         FROM packages WHERE appid = $1 AND service_id = $2",
    )
    .bind(&request.payer_appid)
    .bind(&request.service_id)
    .bind(request.now_ms)
    .fetch_one(&mut **tx)
    .await
    .map_err(from_sqlx)?;
    Ok(rows::no_package_outcome(total, unexpired))
}

/// Moves a `reserved` charge to committed or released (returning released units to the package);
/// `false` if it was not `reserved`.
pub(super) async fn settle_in(
    tx: &mut Transaction<'static, Postgres>,
    request_id: &str,
    commit: bool,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let state = if commit { ChargeState::Committed } else { ChargeState::Released };
    let settled: Option<(String, i64)> = sqlx::query_as(
        "UPDATE charges SET state = $2, settled_at_ms = $3 WHERE request_id = $1 AND state = 'reserved' \
         RETURNING package_id, units",
    )
    .bind(request_id)
    .bind(state.as_str())
    .bind(now_ms)
    .fetch_optional(&mut **tx)
    .await
    .map_err(from_sqlx)?;
    if let (Some((package_id, units)), false) = (&settled, commit) {
        return_units(tx, package_id, *units).await?;
    }
    Ok(settled.is_some())
}

/// Claims `(caller, client_msg_id)` for this request; answers the first call's record when it was
/// already claimed by a committed transaction.
async fn claim_client_msg_id(
    tx: &mut Transaction<'static, Postgres>,
    request: &ReserveRequest,
    client_msg_id: &str,
    answer: Option<&str>,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    for _ in 0..CLAIM_ATTEMPTS {
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO idempotency (caller_appid, client_msg_id, request_id, answer, created_at_ms) \
             VALUES ($1, $2, $3, $5, $4) ON CONFLICT (caller_appid, client_msg_id) DO NOTHING RETURNING request_id",
        )
        .bind(&request.caller_appid)
        .bind(client_msg_id)
        .bind(&request.request_id)
        .bind(request.now_ms)
        .bind(answer)
        .fetch_optional(&mut **tx)
        .await
        .map_err(from_sqlx)?;
        if claimed.is_some() {
            return Ok(None);
        }
        // A new statement sees the committed row that conflicted.
        let first: Option<IdempotencyRow> =
            sqlx::query_as("SELECT request_id, answer FROM idempotency WHERE caller_appid = $1 AND client_msg_id = $2")
                .bind(&request.caller_appid)
                .bind(client_msg_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(from_sqlx)?;
        if let Some(first) = first {
            return Ok(Some(first.into()));
        }
        // The conflicting row was deleted in between (reaped or swept): claim again.
    }
    Err(StoreError::Unavailable("postgres: idempotency key kept changing".into()))
}

/// Picks the payer's package (soonest expiry, then oldest) and takes the units from it with a
/// conditional update, moving on when a concurrent transaction got there first; `None` when no
/// package can pay.
async fn take_units(tx: &mut Transaction<'static, Postgres>, request: &ReserveRequest) -> Result<Option<String>, StoreError> {
    for _ in 0..ROUNDS {
        let candidates: Vec<String> = sqlx::query_scalar(
            "SELECT package_id FROM packages \
             WHERE appid = $1 AND service_id = $2 AND (expires_at_ms IS NULL OR expires_at_ms > $3) AND units_left >= $4 \
             ORDER BY expires_at_ms ASC NULLS LAST, created_at_ms, package_id LIMIT $5",
        )
        .bind(&request.payer_appid)
        .bind(&request.service_id)
        .bind(request.now_ms)
        .bind(request.units)
        .bind(CANDIDATES)
        .fetch_all(&mut **tx)
        .await
        .map_err(from_sqlx)?;
        if candidates.is_empty() {
            return Ok(None);
        }
        for package_id in candidates {
            let taken = sqlx::query("UPDATE packages SET units_left = units_left - $2 WHERE package_id = $1 AND units_left >= $2")
                .bind(&package_id)
                .bind(request.units)
                .execute(&mut **tx)
                .await
                .map_err(from_sqlx)?
                .rows_affected();
            if taken == 1 {
                return Ok(Some(package_id));
            }
        }
    }
    Ok(None)
}

/// Gives released units back to their package.
async fn return_units(tx: &mut Transaction<'static, Postgres>, package_id: &str, units: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE packages SET units_left = units_left + $2 WHERE package_id = $1")
        .bind(package_id)
        .bind(units)
        .execute(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    Ok(())
}
