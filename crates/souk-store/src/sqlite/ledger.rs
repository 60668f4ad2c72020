//! Reservation, settlement and the ledger on SQLite: the shared transaction steps
//! ([`crate::shared::ledger`]) in `BEGIN IMMEDIATE` transactions on the single writer connection;
//! the hot path's reservations and settlements are group-committed ([`super::group`]). That serialization makes the idempotency claim and the reaper simple; the
//! conditional updates would keep the units exact even without it.

use souk_core::model::{IdempotencyRecord, ReserveRequest};
use souk_core::store::StoreError;
use sqlx::{Sqlite, Transaction};

use super::{from_sqlx, SqliteStore};
use crate::rows::IdempotencyRow;
use crate::shared::ledger::{INSERT_IDEMPOTENCY, SELECT_IDEMPOTENCY};

pub(super) use shared::settle_in;
use shared::{bind_claim, give_back, release_stale};

crate::shared::ledger::impl_ledger! {
    store: SqliteStore,
    db: Sqlite,
    read: reader,
    write: writer,
    begin: begin_write,
    // SQLite sorts NULL first: sort on "is NULL" before the expiry.
    expiry_order: "expires_at_ms IS NULL, expires_at_ms",
    // With one writer no other transaction takes a candidate between the select and the update:
    // a second round would see the same candidates.
    take_rounds: 1,
    claim_client_msg_id: claim_client_msg_id,
    reap_reservations: reap_reservations,
    reserve: grouped_reserve,
    settle: grouped_settle,
}

/// Hook of [`crate::shared::ledger`]: reservations are group-committed.
async fn grouped_reserve(store: &SqliteStore, request: &ReserveRequest) -> Result<souk_core::model::ReserveOutcome, StoreError> {
    store.group.reserve(&store.writer, request).await
}

/// Hook of [`crate::shared::ledger`]: settlements are group-committed.
async fn grouped_settle(store: &SqliteStore, settlement: &souk_core::model::Settlement) -> Result<bool, StoreError> {
    store.group.settle(&store.writer, settlement).await
}

/// Hook of [`crate::shared::ledger`]: claims `(caller, client_msg_id)` for this request, or answers
/// the first call's record. No other writer runs inside `BEGIN IMMEDIATE`, so a conflicting row is
/// there to read.
async fn claim_client_msg_id(
    tx: &mut Transaction<'static, Sqlite>,
    request: &ReserveRequest,
    client_msg_id: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let inserted = bind_claim(INSERT_IDEMPOTENCY, request, client_msg_id)
        .execute(&mut **tx)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
    if inserted > 0 {
        return Ok(None);
    }
    let first: IdempotencyRow = sqlx::query_as(SELECT_IDEMPOTENCY)
        .bind(&request.caller_appid)
        .bind(client_msg_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    Ok(Some(first.into()))
}

/// Hook of [`crate::shared::ledger`], [`Ledger::reap_reservations`](souk_core::store::Ledger::reap_reservations):
/// releases stale reservations and returns their units one charge at a time, dropping their
/// unanswered idempotency claims.
async fn reap_reservations(store: &SqliteStore, before_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    let reaped = release_stale(&mut tx, before_ms, now_ms).await?;
    for (request_id, package_id, units) in &reaped {
        give_back(&mut tx, request_id, package_id, *units).await?;
    }
    tx.commit().await.map_err(from_sqlx)?;
    Ok(reaped.len() as u64)
}
