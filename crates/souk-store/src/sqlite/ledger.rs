//! Reservation, settlement and the ledger on SQLite, with `client_msg_id` idempotency. Each call is
//! one `BEGIN IMMEDIATE` transaction on the single writer connection; the conditional updates would
//! keep the units exact even without that serialization.

use async_trait::async_trait;
use souk_core::model::{ChargeState, IdempotencyRecord, LedgerEntry, ReserveOutcome, ReserveRequest, Settlement};
use souk_core::store::{Ledger, StoreError};
use sqlx::{Sqlite, Transaction};

use super::{from_sqlx, SqliteStore};
use crate::rows::{self, ChargeRow, IdempotencyRow, CHARGE_COLUMNS};

/// How many candidate packages one reservation looks at.
const CANDIDATES: i64 = 16;

#[async_trait]
impl Ledger for SqliteStore {
    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let outcome = reserve_in(&mut tx, request, None).await?;
        if matches!(outcome, ReserveOutcome::Reserved { .. }) {
            tx.commit().await.map_err(from_sqlx)?;
        } else {
            // Rolling back keeps nothing, not even the idempotency row.
            tx.rollback().await.map_err(from_sqlx)?;
        }
        Ok(outcome)
    }

    async fn settle(&self, settlement: &Settlement) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
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
                .fetch_optional(&self.reader)
                .await
                .map_err(from_sqlx)?;
        Ok(row.map(IdempotencyRecord::from))
    }

    async fn reap_reservations(&self, before_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
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
        for (request_id, package_id, units) in &reaped {
            return_units(&mut tx, package_id, *units).await?;
            sqlx::query("DELETE FROM idempotency WHERE request_id = $1 AND answer IS NULL")
                .bind(request_id)
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)?;
        Ok(reaped.len() as u64)
    }

    async fn ledger(&self, package_id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows: Vec<ChargeRow> = sqlx::query_as(&format!(
            "SELECT {CHARGE_COLUMNS} FROM charges WHERE package_id = $1 ORDER BY created_at_ms, request_id"
        ))
        .bind(package_id)
        .fetch_all(&self.reader)
        .await
        .map_err(from_sqlx)?;
        rows::map_all(rows)
    }

    async fn sweep_idempotency(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency WHERE answer IS NOT NULL AND created_at_ms < $1")
            .bind(before_ms)
            .execute(&self.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }
}

/// The body of [`Ledger::reserve`] inside the caller's transaction, which the caller commits only when
/// the answer is `Reserved`. `answer` is stored with a new `client_msg_id` claim at once (async jobs
/// know their answer before they run).
pub(super) async fn reserve_in(
    tx: &mut Transaction<'static, Sqlite>,
    request: &ReserveRequest,
    answer: Option<&str>,
) -> Result<ReserveOutcome, StoreError> {
    if request.units < 0 {
        return Err(StoreError::Internal("cannot reserve a negative number of units".into()));
    }
    if let Some(client_msg_id) = &request.client_msg_id {
        let inserted = sqlx::query(
            "INSERT INTO idempotency (caller_appid, client_msg_id, request_id, answer, created_at_ms) \
             VALUES ($1, $2, $3, $5, $4) ON CONFLICT (caller_appid, client_msg_id) DO NOTHING",
        )
        .bind(&request.caller_appid)
        .bind(client_msg_id)
        .bind(&request.request_id)
        .bind(request.now_ms)
        .bind(answer)
        .execute(&mut **tx)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        if inserted == 0 {
            let first: IdempotencyRow =
                sqlx::query_as("SELECT request_id, answer FROM idempotency WHERE caller_appid = $1 AND client_msg_id = $2")
                    .bind(&request.caller_appid)
                    .bind(client_msg_id)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(from_sqlx)?;
            return Ok(ReserveOutcome::Duplicate(first.into()));
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
    tx: &mut Transaction<'static, Sqlite>,
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

/// Picks the payer's package (soonest expiry, then oldest) and takes the units from it with a
/// conditional update; `None` when no package can pay.
async fn take_units(tx: &mut Transaction<'static, Sqlite>, request: &ReserveRequest) -> Result<Option<String>, StoreError> {
    let candidates: Vec<String> = sqlx::query_scalar(
        "SELECT package_id FROM packages \
         WHERE appid = $1 AND service_id = $2 AND (expires_at_ms IS NULL OR expires_at_ms > $3) AND units_left >= $4 \
         ORDER BY expires_at_ms IS NULL, expires_at_ms, created_at_ms, package_id LIMIT $5",
    )
    .bind(&request.payer_appid)
    .bind(&request.service_id)
    .bind(request.now_ms)
    .bind(request.units)
    .bind(CANDIDATES)
    .fetch_all(&mut **tx)
    .await
    .map_err(from_sqlx)?;
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
    Ok(None)
}

/// Gives released units back to their package.
async fn return_units(tx: &mut Transaction<'static, Sqlite>, package_id: &str, units: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE packages SET units_left = units_left + $2 WHERE package_id = $1")
        .bind(package_id)
        .bind(units)
        .execute(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    Ok(())
}
