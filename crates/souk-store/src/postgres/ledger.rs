//! Reservation, settlement and the ledger on PostgreSQL: the shared transaction steps
//! ([`crate::shared::ledger`]) on the one pool, for several nodes sharing the database.
//!
//! Under READ COMMITTED, `UPDATE packages ... WHERE units_left >= $units` waits for a concurrent
//! holder of the row and re-checks the condition on the committed row, so units are never
//! over-taken; a candidate lost to a concurrent transaction is skipped for the next one, and the
//! candidates are selected again for a few rounds. The idempotency key is claimed first with
//! `INSERT ... ON CONFLICT DO NOTHING`, which waits for a concurrent claimer of the same key: if that
//! one commits this call is a `Duplicate`, if it rolls back this insert succeeds.

use std::collections::BTreeMap;

use souk_core::model::{IdempotencyRecord, ReserveRequest};
use souk_core::store::StoreError;
use sqlx::{Postgres, Transaction};

use super::{from_sqlx, xact_lock, PgStore};
use crate::rows::IdempotencyRow;
use crate::shared::ledger::{INSERT_IDEMPOTENCY, SELECT_IDEMPOTENCY};

use shared::{bind_claim, release_stale, return_units};
pub(super) use shared::{reserve_in, settle_in};

/// Attempts at claiming an idempotency key whose holder keeps vanishing (reaped between statements).
const CLAIM_ATTEMPTS: usize = 8;

crate::shared::ledger::impl_ledger! {
    store: PgStore,
    db: Postgres,
    read: pool,
    write: pool,
    begin: begin,
    expiry_order: "expires_at_ms ASC NULLS LAST",
    // Rounds of candidate selection, when concurrent transactions took every candidate, before
    // answering from the current state.
    take_rounds: 8,
    claim_client_msg_id: claim_client_msg_id,
    reap_reservations: reap_reservations,
    reserve: reserve_own_tx,
    settle: settle_own_tx,
}

/// Hook of [`crate::shared::ledger`]: claims `(caller, client_msg_id)` for this request; answers the
/// first call's record when it was already claimed by a committed transaction. The conflicting row
/// may be deleted (reaped or swept) between the two statements: then the key is claimed again.
async fn claim_client_msg_id(
    tx: &mut Transaction<'static, Postgres>,
    request: &ReserveRequest,
    client_msg_id: &str,
    answer: Option<&str>,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let claim = format!("{INSERT_IDEMPOTENCY} RETURNING request_id");
    for _ in 0..CLAIM_ATTEMPTS {
        let claimed = bind_claim(&claim, request, client_msg_id, answer)
            .fetch_optional(&mut **tx)
            .await
            .map_err(from_sqlx)?;
        if claimed.is_some() {
            return Ok(None);
        }
        // A new statement sees the committed row that conflicted.
        let first: Option<IdempotencyRow> = sqlx::query_as(SELECT_IDEMPOTENCY)
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

/// Hook of [`crate::shared::ledger`], [`Ledger::reap_reservations`](souk_core::store::Ledger::reap_reservations):
/// releases stale reservations under an advisory lock, returns their units one package at a time
/// in key order and drops their unanswered idempotency claims in one statement.
async fn reap_reservations(store: &PgStore, before_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
    let mut tx = store.begin().await?;
    // One reaper at a time: two would otherwise lock charges and packages in different orders.
    xact_lock(&mut tx, "souk.reap").await?;
    let reaped = release_stale(&mut tx, before_ms, now_ms).await?;
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
