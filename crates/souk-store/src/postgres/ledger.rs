//! Reservation, settlement and the ledger on PostgreSQL: the shared transaction steps
//! ([`crate::shared::ledger`]) on the one pool, for several nodes sharing the database.
//!
//! Under READ COMMITTED, `UPDATE packages ... WHERE units_left >= $units` waits for a concurrent
//! holder of the row and re-checks the condition on the committed row, so units are never
//! over-taken; a candidate lost to a concurrent transaction is skipped for the next one, and the
//! candidates are selected again for a few rounds. The idempotency key is claimed first with
//! `INSERT ... ON CONFLICT DO NOTHING`, which waits for a concurrent claimer of the same key: if that
//! one commits this call is a `Duplicate`, if it rolls back this insert succeeds.
//!
//! On the hot path those same steps run in batches: each node queues its concurrent reservations
//! and settlements and runs each batch as one statement (`souk_reserve_batch`,
//! `souk_settle_batch`, migration 0009, set-based since 0010), so a busy package row is locked and
//! committed once per batch. What a batch cannot reserve falls back to the transaction above.
//!
//! Nothing here waits forever: a batch gets its connection within the pool's acquire timeout and
//! its statement ends at the server's `statement_timeout` (on this side, one [`super::CLIENT_GRACE`]
//! later, for a server that answers nothing), then the task goes on with the next batch; a caller
//! waits for its answer at most two batches' worth ([`Batches::reply_wait`]).
//!
//! **Exactness when an outcome is unknown.** A caller that got no answer (its wait ended, or the
//! connection failed while the statement may still commit) returns an error and never settles, and
//! nothing else ever settles a reservation with a commit: the call's provider is not called. Such a
//! reservation, if it was made, stays `reserved` until the reaper releases it
//! ([`souk_core::maintenance::STALE_RESERVATION_MS`] after its `reserved_at_ms`), and every
//! settlement and the reaper change a charge only `WHERE state = 'reserved'`, so whichever comes
//! first wins, once. A reservation still queued when its caller gave up is dropped unrun. A
//! settlement is run even when its caller stopped waiting (committing a successful call or
//! releasing a failed one is right whenever it lands); one that fails leaves the units reserved for
//! the reaper to release: a unit may go uncharged, never charged twice or without a successful call.

use std::collections::BTreeMap;
use std::time::Duration;

use souk_core::model::{ChargeState, IdempotencyRecord, ReserveOutcome, ReserveRequest, Settlement};
use souk_core::store::StoreError;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{from_sqlx, watched, xact_lock, PgStore};
use crate::rows::IdempotencyRow;
use crate::shared::ledger::{INSERT_IDEMPOTENCY, SELECT_IDEMPOTENCY};

pub(super) use shared::settle_in;
use shared::{bind_claim, release_stale, reserve_own_tx, return_units};

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
    reserve: reserve_batched,
    settle: settle_batched,
}

/// The most writes one batch takes; the rest wait for the next one.
const MAX_BATCH: usize = 256;
/// The least time between the starts of two settlement batches that only commit. Those callers
/// answered already (a successful call's units were taken at its reservation), so their commits can
/// wait to be gathered: fewer, larger batches cost PostgreSQL less per commit (an A/B on the
/// bench's cluster node: +11% sync calls a second, median of 4 pairs). A release is waited on
/// by its caller and starts its batch at once.
const SETTLE_GAP: Duration = Duration::from_millis(5);

/// A ledger write queued for the node's batch of its kind, and where its answer goes.
#[derive(Debug)]
pub(super) struct Queued<Op, Answer> {
    op: Op,
    reply: oneshot::Sender<Answer>,
}

/// The queues of this node's ledger batches; the batch tasks end when the last clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct Batches {
    reservations: mpsc::UnboundedSender<Queued<ReserveRequest, Batched>>,
    settlements: mpsc::UnboundedSender<Queued<Settlement, Result<bool, StoreError>>>,
    /// How long a caller waits for its batch's answer: the batch running when it queued, then its
    /// own, each at most the acquire timeout plus the statement bound.
    reply_wait: Duration,
}

impl Batches {
    /// Starts the batch tasks on `pool`; a batch's statement is given up after `statement_bound`.
    pub(super) fn start(pool: &PgPool, acquire_timeout: Duration, statement_bound: Duration) -> Self {
        let (reservations, queue) = mpsc::unbounded_channel();
        let at_once = Pace {
            gap: Duration::ZERO,
            urgent: |_| true,
        };
        let on = pool.clone();
        tokio::spawn(run_batches(queue, at_once, move |batch| {
            reserve_batch(on.clone(), statement_bound, batch)
        }));
        let (settlements, queue) = mpsc::unbounded_channel();
        let commits_gathered = Pace {
            gap: SETTLE_GAP,
            urgent: |settlement: &Settlement| !settlement.commit,
        };
        let on = pool.clone();
        tokio::spawn(run_batches(queue, commits_gathered, move |batch| {
            settle_batch(on.clone(), statement_bound, batch)
        }));
        Batches {
            reservations,
            settlements,
            reply_wait: 2 * (acquire_timeout + statement_bound),
        }
    }
}

/// Sends `op` to its batch and waits for the answer, at most `wait`.
async fn through_batch<Op, Answer>(
    queue: &mpsc::UnboundedSender<Queued<Op, Answer>>,
    op: Op,
    wait: Duration,
    kind: &str,
) -> Result<Answer, StoreError> {
    let (reply, answer) = oneshot::channel();
    let gone = || StoreError::Internal(format!("a {kind} batch ended without an answer"));
    queue.send(Queued { op, reply }).map_err(|_| gone())?;
    match tokio::time::timeout(wait, answer).await {
        Ok(answer) => answer.map_err(|_| gone()),
        Err(_) => Err(StoreError::Unavailable(format!(
            "postgres: no {kind} batch answer within {} ms",
            wait.as_millis()
        ))),
    }
}

/// The node's batches of one kind of ledger write: whatever queued while one batch ran is the next
/// batch (gathered a little longer when the kind's [`Pace`] says it is not yet due and nothing in it
/// is urgent), run by `run` as one call of a function of migration 0010 in one autocommitted statement.
/// A package row shared by many concurrent calls is then locked and committed once per batch, not
/// once per call with the row held across each call's round trips and commit (which made
/// concurrent calls on one package queue on PostgreSQL's row lock); and the node commits once per
/// batch instead of once per call.
///
/// The task owns each batch until its answers are sent, so a caller that goes away cannot cut it
/// short; its reservation, if made, is released by the reaper like any unsettled one. Each batch
/// ends within the acquire timeout plus `statement_bound`, failed or not, and the task goes on.
async fn run_batches<Op, Answer, Run, Ran>(mut queue: mpsc::UnboundedReceiver<Queued<Op, Answer>>, pace: Pace<Op>, run: Run)
where
    Run: Fn(Vec<Queued<Op, Answer>>) -> Ran,
    Ran: std::future::Future<Output = ()>,
{
    let mut last_start = tokio::time::Instant::now();
    while let Some(first) = queue.recv().await {
        let mut urgent = (pace.urgent)(&first.op);
        let mut batch = vec![first];
        let due = last_start + pace.gap;
        loop {
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(queued) => {
                        urgent |= (pace.urgent)(&queued.op);
                        batch.push(queued);
                    }
                    Err(_) => break,
                }
            }
            if urgent || batch.len() >= MAX_BATCH || tokio::time::Instant::now() >= due {
                break;
            }
            // Gather until the batch is due or something that cannot wait comes.
            tokio::select! {
                queued = queue.recv() => match queued {
                    Some(queued) => {
                        urgent |= (pace.urgent)(&queued.op);
                        batch.push(queued);
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(due) => {}
            }
        }
        last_start = tokio::time::Instant::now();
        run(batch).await;
    }
}

/// How a kind of batch is paced: a batch starts at least `gap` after the one before, unless an
/// operation in it is `urgent` (a caller waits on it before it answers).
struct Pace<Op> {
    gap: Duration,
    urgent: fn(&Op) -> bool,
}

/// What the batch made of one reservation.
#[derive(Debug)]
enum Batched {
    Done(Result<ReserveOutcome, StoreError>),
    /// The batch did not reserve it and kept nothing of it: the caller runs the full transaction.
    Fallback,
}

/// Reserves through the node's batch (see [`run_batches`], [`reserve_batch`]); what the batch does
/// not reserve, the transaction of [`reserve_own_tx`] decides, with its rounds and its explanation
/// of a refusal.
pub(super) async fn reserve_batched(store: &PgStore, request: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
    if request.units >= 0 {
        let wait = store.batches.reply_wait;
        match through_batch(&store.batches.reservations, request.clone(), wait, "reservation").await? {
            Batched::Done(outcome) => return outcome,
            Batched::Fallback => {}
        }
    }
    reserve_own_tx(store, request).await
}

/// One row of `souk_reserve_batch`: the entry (1-based), `reserved` / `duplicate` / `fallback`,
/// and the package or the first call's record.
type ReserveRow = (i32, String, Option<String>, Option<String>, Option<String>);

/// Runs a batch of reservations with `souk_reserve_batch`. They are taken in (payer, service)
/// order, so two nodes' batches lock packages in the same order; if PostgreSQL still reports a
/// conflict (deadlock, serialization: the function raises one when another node's batch took a
/// package's units between its read and its conditional update), nothing of the batch was kept
/// and each reservation falls back to its own transaction. Reservations whose callers stopped
/// waiting are dropped unrun.
async fn reserve_batch(pool: PgPool, statement_bound: Duration, mut batch: Vec<Queued<ReserveRequest, Batched>>) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(err) => return reply_all_failed(batch, &from_sqlx(err), |failure| Batched::Done(Err(failure))),
    };
    // Unrun, so nothing to undo (the wait for a connection may have outlasted more callers' patience).
    batch.retain(|queued| !queued.reply.is_closed());
    if batch.is_empty() {
        return;
    }
    batch.sort_by(|a, b| (&a.op.payer_appid, &a.op.service_id).cmp(&(&b.op.payer_appid, &b.op.service_id)));
    let text = |field: fn(&ReserveRequest) -> &str| -> Vec<&str> { batch.iter().map(|q| field(&q.op)).collect() };
    let statement = sqlx::query_as(
        "SELECT entry, outcome, package_id, first_request_id, first_answer \
         FROM souk_reserve_batch($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(text(|r| &r.request_id))
    .bind(text(|r| &r.payer_appid))
    .bind(text(|r| &r.caller_appid))
    .bind(text(|r| &r.service_id))
    .bind(text(|r| &r.api))
    .bind(batch.iter().map(|q| q.op.units).collect::<Vec<i64>>())
    .bind(batch.iter().map(|q| q.op.now_ms).collect::<Vec<i64>>())
    .bind(batch.iter().map(|q| q.op.client_msg_id.as_deref()).collect::<Vec<Option<&str>>>())
    .fetch_all(&mut *conn);
    let outcome = tokio::time::timeout(statement_bound, statement).await;
    let rows: Result<Vec<ReserveRow>, sqlx::Error> = watched(conn, outcome, statement_bound);
    let answers: Vec<Batched> = match checked_rows(rows, batch.len(), "reservation") {
        Ok(rows) => rows.into_iter().map(reserve_answer).collect(),
        // A conflict rolled the whole statement back: each one on its own, then.
        Err(None) => batch.iter().map(|_| Batched::Fallback).collect(),
        Err(Some(failure)) => batch.iter().map(|_| Batched::Done(Err(failure.clone()))).collect(),
    };
    reply_all(batch, answers);
}

/// Answers every queued write with `failure` (as `answer` makes it).
fn reply_all_failed<Op, Answer>(batch: Vec<Queued<Op, Answer>>, failure: &StoreError, answer: impl Fn(StoreError) -> Answer) {
    let answers = batch.iter().map(|_| answer(failure.clone())).collect();
    reply_all(batch, answers);
}

/// Sends each queued write its answer (a caller that went away is not waited for).
fn reply_all<Op, Answer>(batch: Vec<Queued<Op, Answer>>, answers: Vec<Answer>) {
    for (queued, answer) in batch.into_iter().zip(answers) {
        let _ = queued.reply.send(answer);
    }
}

/// A batch's rows when there is one per entry; `Err(None)` for a conflict that rolled the
/// statement back, `Err(Some(_))` for any other failure.
fn checked_rows<Row>(rows: Result<Vec<Row>, sqlx::Error>, entries: usize, kind: &str) -> Result<Vec<Row>, Option<StoreError>> {
    match rows {
        Ok(rows) if rows.len() == entries => Ok(rows),
        Ok(rows) => Err(Some(StoreError::Internal(format!(
            "postgres: a {kind} batch of {entries} answered {} rows",
            rows.len()
        )))),
        Err(err) if super::is_conflict(&err) => Err(None),
        Err(err) => Err(Some(from_sqlx(err))),
    }
}

fn reserve_answer((_, outcome, package_id, first_request_id, first_answer): ReserveRow) -> Batched {
    match (outcome.as_str(), package_id, first_request_id) {
        ("reserved", Some(package_id), _) => Batched::Done(Ok(ReserveOutcome::Reserved { package_id })),
        ("duplicate", _, Some(request_id)) => Batched::Done(Ok(ReserveOutcome::Duplicate(IdempotencyRecord {
            request_id,
            answer: first_answer,
        }))),
        ("fallback", _, _) => Batched::Fallback,
        (other, _, _) => Batched::Done(Err(StoreError::Internal(format!(
            "postgres: a reservation batch answered {other:?}"
        )))),
    }
}

/// Settles through the node's batch (see [`run_batches`], [`settle_batch`]).
async fn settle_batched(store: &PgStore, settlement: &Settlement) -> Result<bool, StoreError> {
    let wait = store.batches.reply_wait;
    through_batch(&store.batches.settlements, settlement.clone(), wait, "settlement").await?
}

/// Runs a batch of settlements with `souk_settle_batch`; on a conflict, each one on its own with
/// [`settle_one_statement`].
async fn settle_batch(pool: PgPool, statement_bound: Duration, batch: Vec<Queued<Settlement, Result<bool, StoreError>>>) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(err) => return reply_all_failed(batch, &from_sqlx(err), Err),
    };
    let kept: Vec<Option<(&str, &str, &str)>> = batch
        .iter()
        .map(|q| {
            q.op.answer
                .as_ref()
                .map(|(caller, msg_id, answer)| (caller.as_str(), msg_id.as_str(), answer.as_str()))
        })
        .collect();
    let statement = sqlx::query_as("SELECT entry, settled FROM souk_settle_batch($1, $2, $3, $4, $5, $6)")
        .bind(batch.iter().map(|q| q.op.request_id.as_str()).collect::<Vec<&str>>())
        .bind(batch.iter().map(|q| charge_state(q.op.commit)).collect::<Vec<&str>>())
        .bind(batch.iter().map(|q| q.op.now_ms).collect::<Vec<i64>>())
        .bind(kept.iter().map(|k| k.map(|k| k.0)).collect::<Vec<Option<&str>>>())
        .bind(kept.iter().map(|k| k.map(|k| k.1)).collect::<Vec<Option<&str>>>())
        .bind(kept.iter().map(|k| k.map(|k| k.2)).collect::<Vec<Option<&str>>>())
        .fetch_all(&mut *conn);
    let outcome = tokio::time::timeout(statement_bound, statement).await;
    let rows: Result<Vec<(i32, bool)>, sqlx::Error> = watched(conn, outcome, statement_bound);
    let answers: Vec<Result<bool, StoreError>> = match checked_rows(rows, batch.len(), "settlement") {
        Ok(rows) => rows.into_iter().map(|(_, settled)| Ok(settled)).collect(),
        // A conflict rolled the whole statement back: each one on its own, then.
        Err(None) => {
            let mut answers = Vec::with_capacity(batch.len());
            for queued in &batch {
                answers.push(settle_one_statement(&pool, &queued.op).await);
            }
            answers
        }
        Err(Some(failure)) => batch.iter().map(|_| Err(failure.clone())).collect(),
    };
    reply_all(batch, answers);
}

/// The stored name of a settlement's new state.
fn charge_state(commit: bool) -> &'static str {
    if commit { ChargeState::Committed } else { ChargeState::Released }.as_str()
}

/// Settles in one autocommitted statement: the charge leaves `reserved` once, released units go
/// back to their package and the answer is kept for retries, all or nothing, in one round trip.
async fn settle_one_statement(pool: &PgPool, settlement: &Settlement) -> Result<bool, StoreError> {
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
        .fetch_one(pool)
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
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let claim = format!("{INSERT_IDEMPOTENCY} RETURNING request_id");
    for _ in 0..CLAIM_ATTEMPTS {
        let claimed = bind_claim(&claim, request, client_msg_id)
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Commits wait to be gathered until their batch is due; a release (or anything urgent) starts
    /// its batch at once, taking along what gathered. On tokio's paused clock, so exact.
    #[tokio::test(start_paused = true)]
    async fn commits_are_gathered_and_releases_go_at_once() {
        let (queue, receiver) = mpsc::unbounded_channel::<Queued<bool, ()>>();
        let started = tokio::time::Instant::now();
        // Each batch's start (ms from `started`) and its operations (`true`: a release).
        type Batches = Arc<Mutex<Vec<(u128, Vec<bool>)>>>;
        let batches: Batches = Arc::default();
        let log = batches.clone();
        let pace = Pace {
            gap: Duration::from_millis(5),
            urgent: |release: &bool| *release,
        };
        tokio::spawn(run_batches(receiver, pace, move |batch: Vec<Queued<bool, ()>>| {
            let log = log.clone();
            async move {
                let ops = batch.iter().map(|queued| queued.op).collect();
                log.lock().unwrap().push((started.elapsed().as_millis(), ops));
                // The batch's own time.
                tokio::time::sleep(Duration::from_millis(1)).await;
                drop(batch);
            }
        }));
        let (commit, release) = (false, true);
        for (at_ms, op) in [
            (0, commit),
            (1, commit),
            (2, commit),
            (7, commit),
            (11, release),
            (12, commit),
            (13, release),
        ] {
            tokio::time::sleep_until(started + Duration::from_millis(at_ms)).await;
            let (reply, _answer) = oneshot::channel();
            queue.send(Queued { op, reply }).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            *batches.lock().unwrap(),
            [
                (5, vec![commit, commit, commit]),
                (10, vec![commit]),
                (11, vec![release]),
                (13, vec![commit, release]),
            ]
        );
    }
}
