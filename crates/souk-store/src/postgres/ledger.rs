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

use souk_core::model::{ChargeState, IdempotencyRecord, ReserveOutcome, ReserveRequest, Settlement};
use souk_core::store::StoreError;
use sqlx::{Postgres, Transaction};

use super::{from_sqlx, xact_lock, PgStore};
use crate::rows::IdempotencyRow;
use crate::shared::ledger::{INSERT_IDEMPOTENCY, SELECT_IDEMPOTENCY};

use shared::{bind_claim, release_stale, reserve_own_tx, return_units};
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
    reserve: reserve_one_statement,
    settle: settle_one_statement,
}

/// Reserves in one autocommitted statement when it can: it picks the best package, takes the
/// units, claims the `client_msg_id` (if any) and records the charge in one round trip, so the
/// package row is locked only for that statement and its commit, not across client round trips
/// where concurrent calls on one package would queue behind it.
///
/// The key is claimed only once units were taken, with a plain `INSERT`: a concurrent claimer of
/// the same key that commits first makes it fail, which undoes the whole statement. So a refused
/// reservation never shows its claim, as with a rolled-back transaction. Whenever the statement
/// does not reserve (the key is taken, no package can pay, a concurrent call took the last units
/// of the best one), the transaction of [`reserve_own_tx`] decides, with its rounds and its
/// explanation of a refusal or the first call's record.
async fn reserve_one_statement(store: &PgStore, request: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
    if request.units < 0 {
        return reserve_own_tx(store, request).await;
    }
    let taken = sqlx::query_scalar::<_, String>(RESERVE_ONE_STATEMENT)
        .bind(&request.request_id)
        .bind(&request.payer_appid)
        .bind(&request.caller_appid)
        .bind(&request.service_id)
        .bind(&request.api)
        .bind(request.units)
        .bind(request.now_ms)
        .bind(&request.client_msg_id)
        .fetch_optional(&store.pool)
        .await
        .map_err(from_sqlx);
    match taken {
        Ok(Some(package_id)) => Ok(ReserveOutcome::Reserved { package_id }),
        Ok(None) | Err(StoreError::AlreadyExists) => reserve_own_tx(store, request).await,
        Err(err) => Err(err),
    }
}

/// For request `$1`, unless `($3 caller, $8 client_msg_id)` is already claimed: takes `$6` units
/// from the best package (as `take_units` orders them) of `($2 payer, $4 service)` at `$7` now,
/// claims the key when `$8` is given, and records the charge. Answers the package charged, or no
/// row; fails with a unique violation when a concurrent call claimed the key first.
const RESERVE_ONE_STATEMENT: &str = "WITH pick AS ( \
       SELECT package_id FROM packages \
       WHERE appid = $2 AND service_id = $4 AND (expires_at_ms IS NULL OR expires_at_ms > $7) AND units_left >= $6 \
         AND ($8::text IS NULL OR NOT EXISTS (SELECT 1 FROM idempotency WHERE caller_appid = $3 AND client_msg_id = $8)) \
       ORDER BY expires_at_ms ASC NULLS LAST, created_at_ms, package_id LIMIT 1 \
     ), take AS ( \
       UPDATE packages p SET units_left = p.units_left - $6 FROM pick \
       WHERE p.package_id = pick.package_id AND p.units_left >= $6 \
       RETURNING p.package_id \
     ), claim AS ( \
       INSERT INTO idempotency (caller_appid, client_msg_id, request_id, answer, created_at_ms) \
       SELECT $3, $8, $1, NULL, $7 FROM take WHERE $8::text IS NOT NULL \
     ) \
     INSERT INTO charges (request_id, package_id, payer_appid, caller_appid, service_id, api, units, state, created_at_ms, settled_at_ms) \
     SELECT $1, package_id, $2, $3, $4, $5, $6, 'reserved', $7, NULL FROM take \
     RETURNING package_id";

/// Settles in one autocommitted statement: the charge leaves `reserved` once, released units go
/// back to their package and the answer is kept for retries, all or nothing, in one round trip.
async fn settle_one_statement(store: &PgStore, settlement: &Settlement) -> Result<bool, StoreError> {
    let (caller_appid, client_msg_id, answer) = match &settlement.answer {
        Some((caller_appid, client_msg_id, answer)) => (Some(caller_appid), Some(client_msg_id), Some(answer)),
        None => (None, None, None),
    };
    let state = if settlement.commit {
        ChargeState::Committed
    } else {
        ChargeState::Released
    };
    let settled: i64 = sqlx::query_scalar(SETTLE_ONE_STATEMENT)
        .bind(&settlement.request_id)
        .bind(state.as_str())
        .bind(settlement.now_ms)
        .bind(settlement.commit)
        .bind(caller_appid)
        .bind(client_msg_id)
        .bind(answer)
        .fetch_one(&store.pool)
        .await
        .map_err(from_sqlx)?;
    Ok(settled > 0)
}

/// Charge `$1` moved from `reserved` to state `$2` at `$3`; unless `$4` (commit) its units go back
/// to the package; the answer `$7` is kept on `($5 caller, $6 client_msg_id)` when given. Answers
/// how many charges were settled (0 or 1).
const SETTLE_ONE_STATEMENT: &str = "WITH settled AS ( \
       UPDATE charges SET state = $2, settled_at_ms = $3 WHERE request_id = $1 AND state = 'reserved' \
       RETURNING package_id, units \
     ), given_back AS ( \
       UPDATE packages p SET units_left = p.units_left + settled.units FROM settled \
       WHERE p.package_id = settled.package_id AND NOT $4 \
     ), answered AS ( \
       UPDATE idempotency SET answer = COALESCE(answer, $7) \
       WHERE $5::text IS NOT NULL AND caller_appid = $5 AND client_msg_id = $6 AND request_id = $1 \
     ) \
     SELECT COUNT(*) FROM settled";

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
