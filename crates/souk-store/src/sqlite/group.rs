//! Group commit of the hot path's ledger writes on SQLite: reservations and settlements of
//! concurrent calls, async submissions and job completions (each a reservation or settlement with
//! its job's row), and access-token issues are queued, and a leader task takes every queued
//! operation and runs them all in **one** `BEGIN IMMEDIATE` transaction on the writer connection,
//! then hands each caller its own answer.
//!
//! Why: through sqlx, every statement is a round trip to the connection's worker thread, and a call
//! made about ten of them (two transactions) on the single writer; that thread hand-off, not SQLite,
//! was most of souk's time per call. Here the leader locks the writer's raw handle out of sqlx's
//! worker ([`sqlx::sqlite::SqliteConnection::lock_handle`]) and runs the batch with rusqlite on that
//! same handle: one commit per batch instead of ten hand-offs and two commits per call. Batches form
//! by themselves under load (what queues while one batch runs is the next batch) and cost nothing
//! when idle (a lone operation is a batch of one).
//!
//! The leader is a task of its own, started by the first operation that finds none running. It
//! keeps the writer for a term: batch after batch while operations keep coming, yielding between
//! them so that callers can queue more, for at most [`MAX_TERM`], so the other writers (the call log,
//! job claims, housekeeping) wait for the writer at most that long. Holding the writer across
//! batches saves each batch taking the connection from the pool, locking its handle and the ping
//! sqlx sends when a connection comes back (two hand-offs to sqlx's worker thread), and lets
//! rusqlite's statement cache live for the whole term instead of preparing every statement again for
//! each batch. The cache goes before the handle goes back to sqlx, which would refuse to close a
//! connection with statements still open.
//!
//! Exactness is unchanged: the statements are the same conditional updates as
//! [`crate::shared::ledger`]'s, run on the same single writer; a reservation that reserves nothing
//! undoes its own idempotency claim (keeping nothing, exactly as its own rolled-back transaction did
//! before); a submission whose job cannot be stored undoes its reservation; a token issue checks
//! first what could refuse it; a settlement of an entry not `reserved` changes nothing. A batch
//! that meets an unexpected error, or whose commit fails, answers every one of its operations with
//! that error and keeps nothing.
//!
//! Cancellation: a batch runs synchronously from its `BEGIN` to its `COMMIT` (no await), in the
//! leader's task, which no caller owns: a dropped caller cannot leave a batch half-done, and its
//! operation still runs; its reservation is then released by the reaper like any other unsettled one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};
use souk_core::model::{ChargeState, IdempotencyRecord, ReserveOutcome, ReserveRequest, Settlement, Supersede, TokenRecord};
use souk_core::store::jobs::{JobCompletion, JobState, NewJob};
use souk_core::store::StoreError;
use sqlx::SqlitePool;
use tokio::sync::oneshot;

use super::from_sqlx;
use crate::job_rows::JOB_COLUMNS;
use crate::rows::{self, CHARGE_COLUMNS, TOKEN_COLUMNS};

/// The most operations one transaction takes; the rest wait for the next one.
const MAX_BATCH: usize = 512;
/// The longest the leader keeps the writer from the other writers, running batch after batch.
const MAX_TERM: Duration = Duration::from_millis(4);
/// How many candidate packages a reservation looks at (as in [`crate::shared::ledger`]).
const CANDIDATES: i64 = 16;

/// One queued ledger write.
#[derive(Debug)]
enum Op {
    Reserve(ReserveRequest),
    Settle(Settlement),
    /// An async submission: the reservation and the job ([`souk_core::store::jobs::Jobs::submit_job`]).
    Submit(ReserveRequest, NewJob),
    /// A job's end and its settlement ([`souk_core::store::jobs::Jobs::complete_job`]).
    Complete(JobCompletion),
    /// A new access token ([`souk_core::store::Tokens::issue_token`]).
    IssueToken(TokenRecord, Supersede, Option<Option<String>>),
}

/// Its answer.
#[derive(Debug)]
enum Done {
    Reserved(ReserveOutcome),
    /// A settlement, completion or token issue: whether it changed anything.
    Applied(bool),
}

type Reply = oneshot::Sender<Result<Done, StoreError>>;

/// The queue, and whether a leader task is running.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<VecDeque<(Op, Reply)>>,
    leading: AtomicBool,
}

impl GroupCommit {
    /// [`souk_core::store::Ledger::reserve`], batched.
    pub(crate) async fn reserve(self: &Arc<Self>, writer: &SqlitePool, request: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
        if request.units < 0 {
            return Err(StoreError::Internal("cannot reserve a negative number of units".into()));
        }
        self.reserving(writer, Op::Reserve(request.clone())).await
    }

    /// [`souk_core::store::Ledger::settle`], batched.
    pub(crate) async fn settle(self: &Arc<Self>, writer: &SqlitePool, settlement: &Settlement) -> Result<bool, StoreError> {
        self.applying(writer, Op::Settle(settlement.clone())).await
    }

    /// [`souk_core::store::jobs::Jobs::submit_job`], batched.
    pub(crate) async fn submit_job(
        self: &Arc<Self>,
        writer: &SqlitePool,
        request: &ReserveRequest,
        job: &NewJob,
    ) -> Result<ReserveOutcome, StoreError> {
        if request.units < 0 {
            return Err(StoreError::Internal("cannot reserve a negative number of units".into()));
        }
        self.reserving(writer, Op::Submit(request.clone(), job.clone())).await
    }

    /// [`souk_core::store::jobs::Jobs::complete_job`], batched.
    pub(crate) async fn complete_job(self: &Arc<Self>, writer: &SqlitePool, completion: &JobCompletion) -> Result<bool, StoreError> {
        self.applying(writer, Op::Complete(completion.clone())).await
    }

    /// [`souk_core::store::Tokens::issue_token`], batched.
    pub(crate) async fn issue_token(
        self: &Arc<Self>,
        writer: &SqlitePool,
        token: &TokenRecord,
        supersede: Supersede,
        expect_current: Option<Option<&str>>,
    ) -> Result<bool, StoreError> {
        let expect_current = expect_current.map(|current| current.map(str::to_owned));
        self.applying(writer, Op::IssueToken(token.clone(), supersede, expect_current))
            .await
    }

    /// Runs a reservation or submission: its answer is a [`ReserveOutcome`].
    async fn reserving(self: &Arc<Self>, writer: &SqlitePool, op: Op) -> Result<ReserveOutcome, StoreError> {
        match self.submit(writer, op).await? {
            Done::Reserved(outcome) => Ok(outcome),
            Done::Applied(_) => Err(StoreError::Internal("a reservation was answered as a settlement or issue".into())),
        }
    }

    /// Runs a settlement, completion or token issue: its answer is whether it changed anything.
    async fn applying(self: &Arc<Self>, writer: &SqlitePool, op: Op) -> Result<bool, StoreError> {
        match self.submit(writer, op).await? {
            Done::Applied(applied) => Ok(applied),
            Done::Reserved(_) => Err(StoreError::Internal("a settlement or issue was answered as a reservation".into())),
        }
    }

    /// Queues `op`, starts a leader unless one runs, and waits for the answer.
    async fn submit(self: &Arc<Self>, writer: &SqlitePool, op: Op) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.lock_queue().push_back((op, reply));
        if !self.leading.swap(true, Ordering::SeqCst) {
            let group = Arc::clone(self);
            let writer = writer.clone();
            tokio::spawn(async move { group.lead(&writer).await });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Internal("a ledger batch ended without an answer".into())))
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<(Op, Reply)>> {
        // A panic while holding this lock leaves a consistent queue (push/drain only).
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The leader: terms until the queue is empty, then gives up the lead. An operation queued
    /// between its last look and its giving up found the flag still set and started no leader,
    /// so it looks once more after giving up, and leads on if it can take the flag back.
    ///
    /// If the task dies instead (a panic, the runtime shutting down), [`LeaderGone`] gives the lead
    /// up, so that the next operation starts a new leader, and answers what is queued with an error
    /// rather than leaving it to wait for that next operation.
    async fn lead(&self, writer: &SqlitePool) {
        let gone = LeaderGone(self);
        loop {
            self.term(writer).await;
            self.leading.store(false, Ordering::SeqCst);
            if self.lock_queue().is_empty() || self.leading.swap(true, Ordering::SeqCst) {
                // The lead is given up (and may be another leader's already): nothing to undo.
                std::mem::forget(gone);
                return;
            }
        }
    }

    /// One term: takes the writer and runs batches, everything queued (up to [`MAX_BATCH`]) each,
    /// until the queue is empty or [`MAX_TERM`] has passed.
    async fn term(&self, writer: &SqlitePool) {
        let mut connection = match writer.acquire().await {
            Ok(connection) => connection,
            Err(err) => return self.fail_queued(&from_sqlx(err)),
        };
        let mut handle = match connection.lock_handle().await {
            Ok(handle) => handle,
            Err(err) => return self.fail_queued(&from_sqlx(err)),
        };
        let db = match borrow_connection(&mut handle) {
            Ok(db) => db,
            Err(err) => return self.fail_queued(&from_rusqlite(err)),
        };
        if !db.is_autocommit() {
            // A term that died inside a batch (a panic) left its transaction open: nothing of it
            // was answered as done, so none of it is kept.
            if let Err(err) = db.execute_batch("ROLLBACK") {
                return self.fail_queued(&from_rusqlite(err));
            }
        }
        let started = Instant::now();
        loop {
            let batch: Vec<(Op, Reply)> = {
                let mut queue = self.lock_queue();
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            if batch.is_empty() {
                break;
            }
            run_batch(&db, batch);
            if started.elapsed() >= MAX_TERM {
                break;
            }
            // Between batches (none is open): the callers run and queue the next one.
            tokio::task::yield_now().await;
        }
        // The cached statements are finalized here, before sqlx has its handle back.
        drop(db);
        drop(handle);
    }

    /// Answers every queued operation with `failure` (the writer could not be had).
    fn fail_queued(&self, failure: &StoreError) {
        let batch: Vec<(Op, Reply)> = self.lock_queue().drain(..).collect();
        answer_all(batch, failure);
    }
}

/// Gives the lead up when the leader's task ends without doing so itself.
struct LeaderGone<'a>(&'a GroupCommit);

impl Drop for LeaderGone<'_> {
    fn drop(&mut self) {
        // The lead first: an operation queued from here on starts a leader of its own (and may
        // lose a race with the answer below, which is an error, never a wait).
        self.0.leading.store(false, Ordering::SeqCst);
        let failure = StoreError::Internal(
            "the ledger's writer task stopped (a panic or shutdown) before running this operation; nothing of it was written".into(),
        );
        self.0.fail_queued(&failure);
    }
}

/// The writer's handle as a rusqlite connection, for as long as sqlx's worker is locked out.
#[allow(unsafe_code)] // souk's one unsafe block (the workspace denies the rest).
fn borrow_connection(handle: &mut sqlx::sqlite::LockedSqliteHandle<'_>) -> rusqlite::Result<Connection> {
    // SAFETY: the pointer is sqlx's open connection handle. `handle` keeps sqlx's worker thread off
    // it until `handle` is dropped, and the caller drops the returned connection first (it borrows
    // nothing, so the caller keeps both in one scope and drops `db` before `handle`). rusqlite does not
    // close a connection made with `from_handle`, and the same libsqlite3-sys (0.30) backs both crates.
    unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }
}

fn answer_all(batch: Vec<(Op, Reply)>, failure: &StoreError) {
    for (_, reply) in batch {
        let _ = reply.send(Err(failure.clone()));
    }
}

/// One transaction for the batch. An operation's own refusals (`Duplicate`, `Exhausted`, a request id
/// already charged) are answers, not errors, and cost the others nothing; an unexpected error (I/O, a
/// full disk) rolls the whole batch back and answers every operation with it, so nothing is half
/// done.
fn run_batch(db: &Connection, batch: Vec<(Op, Reply)>) {
    if let Err(err) = db.execute_batch("BEGIN IMMEDIATE") {
        return answer_all(batch, &from_rusqlite(err));
    }
    let mut answers: Vec<(Reply, Result<Done, StoreError>)> = Vec::with_capacity(batch.len());
    let mut pending = batch.into_iter();
    while let Some((op, reply)) = pending.next() {
        match run_one(db, &op) {
            Err(failure) if !matches!(failure, StoreError::AlreadyExists) => {
                // Nothing of this batch is kept: every operation, done or not yet run, gets the error.
                let _ = db.execute_batch("ROLLBACK");
                let _ = reply.send(Err(failure.clone()));
                for (other, _) in answers {
                    let _ = other.send(Err(failure.clone()));
                }
                answer_all(pending.collect(), &failure);
                return;
            }
            done => answers.push((reply, done)),
        }
    }
    match db.execute_batch("COMMIT") {
        Ok(()) => {
            for (reply, done) in answers {
                let _ = reply.send(done);
            }
        }
        Err(err) => {
            let _ = db.execute_batch("ROLLBACK");
            let failure = from_rusqlite(err);
            for (reply, _) in answers {
                let _ = reply.send(Err(failure.clone()));
            }
        }
    }
}

/// One operation. A reservation that reserves nothing undoes its own idempotency claim (the only
/// write it made), so it keeps nothing, as its own rolled-back transaction did before; any other
/// error fails the whole batch (see [`run_batch`]). No savepoints: they copy every page an
/// operation touches into a statement journal, which cost more than the operations themselves.
fn run_one(db: &Connection, op: &Op) -> Result<Done, StoreError> {
    match op {
        Op::Reserve(request) => reserve(db, request, None).map(Done::Reserved),
        Op::Settle(settlement) => settle(db, settlement).map(Done::Applied),
        Op::Submit(request, job) => submit_job(db, request, job).map(Done::Reserved),
        Op::Complete(completion) => complete_job(db, completion).map(Done::Applied),
        Op::IssueToken(token, supersede, expect_current) => {
            issue_token(db, token, *supersede, expect_current.as_ref().map(Option::as_deref)).map(Done::Applied)
        }
    }
}

/// The body of a reservation (the same steps as `shared::ledger::reserve_in`), its idempotency
/// claim keeping `answer` at once.
fn reserve(db: &Connection, request: &ReserveRequest, answer: Option<&str>) -> Result<ReserveOutcome, StoreError> {
    if let Some(client_msg_id) = &request.client_msg_id {
        let claimed = db
            .prepare_cached(
                "INSERT INTO idempotency (caller_appid, client_msg_id, request_id, answer, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?5, ?4) ON CONFLICT (caller_appid, client_msg_id) DO NOTHING",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    request.caller_appid,
                    client_msg_id,
                    request.request_id,
                    request.now_ms,
                    answer
                ])
            })
            .map_err(from_rusqlite)?;
        if claimed == 0 {
            let first = db
                .prepare_cached("SELECT request_id, answer FROM idempotency WHERE caller_appid = ?1 AND client_msg_id = ?2")
                .and_then(|mut select| {
                    select.query_row(params![request.caller_appid, client_msg_id], |row| {
                        Ok(IdempotencyRecord {
                            request_id: row.get(0)?,
                            answer: row.get(1)?,
                        })
                    })
                })
                .map_err(from_rusqlite)?;
            return Ok(ReserveOutcome::Duplicate(first));
        }
    }
    let Some(package_id) = take_units(db, request)? else {
        forget_claim(db, request)?;
        return no_package(db, request);
    };
    let inserted = db
        .prepare_cached(&format!(
            "INSERT INTO charges ({CHARGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'reserved', ?8, NULL)"
        ))
        .and_then(|mut insert| {
            insert.execute(params![
                request.request_id,
                package_id,
                request.payer_appid,
                request.caller_appid,
                request.service_id,
                request.api,
                request.units,
                request.now_ms,
            ])
        })
        .map_err(from_rusqlite);
    match inserted {
        Ok(_) => Ok(ReserveOutcome::Reserved { package_id }),
        Err(failure) => {
            // This request id is charged already: give the units back and the claim up.
            db.prepare_cached("UPDATE packages SET units_left = units_left + ?2 WHERE package_id = ?1")
                .and_then(|mut update| update.execute(params![package_id, request.units]))
                .map_err(from_rusqlite)?;
            forget_claim(db, request)?;
            Err(failure)
        }
    }
}

/// The body of an async submission: the reservation, its claim keeping the "accepted" answer, and
/// the job, pending and due now. A job that
/// cannot be inserted undoes the reservation, so the submission keeps nothing.
fn submit_job(db: &Connection, request: &ReserveRequest, job: &NewJob) -> Result<ReserveOutcome, StoreError> {
    let outcome = reserve(db, request, job.answer.as_deref())?;
    let ReserveOutcome::Reserved { package_id } = &outcome else {
        return Ok(outcome);
    };
    let inserted = db
        .prepare_cached(&format!(
            "INSERT INTO jobs ({JOB_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', 0, ?9, NULL, NULL, ?10, NULL, NULL, ?9, NULL)"
        ))
        .and_then(|mut insert| {
            insert.execute(params![
                request.request_id,
                request.caller_appid,
                request.payer_appid,
                job.openid,
                request.service_id,
                request.api,
                package_id,
                job.body,
                request.now_ms,
                job.deadline_ms,
            ])
        })
        .map_err(from_rusqlite);
    match inserted {
        Ok(_) => Ok(outcome),
        Err(failure) => {
            db.prepare_cached("DELETE FROM charges WHERE request_id = ?1 AND state = 'reserved'")
                .and_then(|mut delete| delete.execute(params![request.request_id]))
                .map_err(from_rusqlite)?;
            db.prepare_cached("UPDATE packages SET units_left = units_left + ?2 WHERE package_id = ?1")
                .and_then(|mut update| update.execute(params![package_id, request.units]))
                .map_err(from_rusqlite)?;
            forget_claim(db, request)?;
            Err(failure)
        }
    }
}

/// The body of a job's completion (the same steps as `shared::jobs`'s `complete_in_transaction`):
/// finishes a job still `pending` or `waiting` and settles its units; a job already finished changes
/// nothing.
fn complete_job(db: &Connection, completion: &JobCompletion) -> Result<bool, StoreError> {
    let state = if completion.succeeded {
        JobState::Succeeded
    } else {
        JobState::Failed
    };
    let finished = db
        .prepare_cached(
            "UPDATE jobs SET state = ?2, result = ?3, finished_at_ms = ?4, lease_owner = NULL, lease_until_ms = NULL \
             WHERE request_id = ?1 AND state IN ('pending', 'waiting')",
        )
        .and_then(|mut update| update.execute(params![completion.request_id, state.as_str(), completion.result, completion.now_ms]))
        .map_err(from_rusqlite)?;
    if finished == 0 {
        return Ok(false);
    }
    let settlement = Settlement {
        request_id: completion.request_id.clone(),
        commit: completion.succeeded,
        now_ms: completion.now_ms,
        answer: None,
    };
    settle(db, &settlement)?;
    Ok(true)
}

/// The body of a token issue (the same steps as `shared::tokens`'s `issue_in_transaction`): when
/// `expect_current` is given, issues only if the app's current token of that kind is the one
/// expected; supersedes the live ones as asked; inserts the new one. A refusal (`false`, or a token
/// hash stored already) writes nothing. Every write runs on the single writer, so rotations serialize without a lock.
fn issue_token(
    db: &Connection,
    token: &TokenRecord,
    supersede: Supersede,
    expect_current: Option<Option<&str>>,
) -> Result<bool, StoreError> {
    // The one way the insert below could fail on its own: checked first, so nothing is written.
    let taken = db
        .prepare_cached("SELECT 1 FROM tokens WHERE token_hash = ?1")
        .and_then(|mut select| select.exists(params![token.token_hash]))
        .map_err(from_rusqlite)?;
    if taken {
        return Err(StoreError::AlreadyExists);
    }
    if let Some(expected) = expect_current {
        let current: Option<String> = db
            .prepare_cached(
                "SELECT token_hash FROM tokens WHERE appid = ?1 AND kind = ?2 AND superseded = 0 \
                 ORDER BY issued_at_ms DESC, token_hash DESC LIMIT 1",
            )
            .and_then(|mut select| {
                select
                    .query_row(params![token.appid, token.kind.as_str()], |row| row.get(0))
                    .optional()
            })
            .map_err(from_rusqlite)?;
        if current.as_deref() != expected {
            return Ok(false);
        }
    }
    if let Supersede::Overlap { dies_at_ms } = supersede {
        db.prepare_cached(
            "UPDATE tokens SET superseded = 1, dies_at_ms = MIN(?3, expires_at_ms) \
             WHERE appid = ?1 AND kind = ?2 AND superseded = 0",
        )
        .and_then(|mut update| update.execute(params![token.appid, token.kind.as_str(), dies_at_ms]))
        .map_err(from_rusqlite)?;
    }
    db.prepare_cached(&format!(
        "INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))
    .and_then(|mut insert| {
        insert.execute(params![
            token.token_hash,
            token.appid,
            token.kind.as_str(),
            token.plaintext,
            token.issued_at_ms,
            token.expires_at_ms,
            token.superseded,
            token.dies_at_ms,
        ])
    })
    .map_err(from_rusqlite)?;
    Ok(true)
}

/// Undoes this request's idempotency claim, if it made one.
fn forget_claim(db: &Connection, request: &ReserveRequest) -> Result<(), StoreError> {
    if let Some(client_msg_id) = &request.client_msg_id {
        db.prepare_cached("DELETE FROM idempotency WHERE caller_appid = ?1 AND client_msg_id = ?2 AND request_id = ?3")
            .and_then(|mut delete| delete.execute(params![request.caller_appid, client_msg_id, request.request_id]))
            .map_err(from_rusqlite)?;
    }
    Ok(())
}

/// Why no package could pay.
fn no_package(db: &Connection, request: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
    let (total, unexpired): (i64, i64) = db
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN expires_at_ms IS NULL OR expires_at_ms > ?3 THEN 1 ELSE 0 END), 0) \
             FROM packages WHERE appid = ?1 AND service_id = ?2",
        )
        .and_then(|mut select| {
            select.query_row(params![request.payer_appid, request.service_id, request.now_ms], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
        })
        .map_err(from_rusqlite)?;
    Ok(rows::no_package_outcome(total, unexpired))
}

/// The payer's package (soonest expiry, then oldest) with enough units, which then pays: one round
/// suffices on the single writer, as in `sqlite::ledger`.
fn take_units(db: &Connection, request: &ReserveRequest) -> Result<Option<String>, StoreError> {
    let candidates: Vec<String> = db
        .prepare_cached(
            "SELECT package_id FROM packages \
             WHERE appid = ?1 AND service_id = ?2 AND (expires_at_ms IS NULL OR expires_at_ms > ?3) AND units_left >= ?4 \
             ORDER BY expires_at_ms IS NULL, expires_at_ms, created_at_ms, package_id LIMIT ?5",
        )
        .and_then(|mut select| {
            select
                .query_map(
                    params![request.payer_appid, request.service_id, request.now_ms, request.units, CANDIDATES],
                    |row| row.get(0),
                )?
                .collect()
        })
        .map_err(from_rusqlite)?;
    let mut update = db
        .prepare_cached("UPDATE packages SET units_left = units_left - ?2 WHERE package_id = ?1 AND units_left >= ?2")
        .map_err(from_rusqlite)?;
    for package_id in candidates {
        if update.execute(params![package_id, request.units]).map_err(from_rusqlite)? == 1 {
            return Ok(Some(package_id));
        }
    }
    Ok(None)
}

/// The body of a settlement (the same steps as `shared::ledger::settle_in` plus the kept answer).
fn settle(db: &Connection, settlement: &Settlement) -> Result<bool, StoreError> {
    let state = if settlement.commit {
        ChargeState::Committed
    } else {
        ChargeState::Released
    };
    // A read, then the update, rather than `UPDATE ... RETURNING` (which SQLite runs through a
    // temporary table): nothing else writes between them inside this transaction.
    let settled: Option<(String, i64)> = db
        .prepare_cached("SELECT package_id, units FROM charges WHERE request_id = ?1 AND state = 'reserved'")
        .and_then(|mut select| {
            select
                .query_row(params![settlement.request_id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(from_rusqlite)?;
    if settled.is_some() {
        db.prepare_cached("UPDATE charges SET state = ?2, settled_at_ms = ?3 WHERE request_id = ?1 AND state = 'reserved'")
            .and_then(|mut update| update.execute(params![settlement.request_id, state.as_str(), settlement.now_ms]))
            .map_err(from_rusqlite)?;
    }
    if let (Some((package_id, units)), false) = (&settled, settlement.commit) {
        db.prepare_cached("UPDATE packages SET units_left = units_left + ?2 WHERE package_id = ?1")
            .and_then(|mut update| update.execute(params![package_id, units]))
            .map_err(from_rusqlite)?;
    }
    if let Some((caller_appid, client_msg_id, answer)) = &settlement.answer {
        db.prepare_cached(
            "UPDATE idempotency SET answer = COALESCE(answer, ?4) \
             WHERE caller_appid = ?1 AND client_msg_id = ?2 AND request_id = ?3",
        )
        .and_then(|mut update| update.execute(params![caller_appid, client_msg_id, settlement.request_id, answer]))
        .map_err(from_rusqlite)?;
    }
    Ok(settled.is_some())
}

/// Translates a rusqlite failure as [`from_sqlx`] translates sqlx's.
fn from_rusqlite(err: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &err {
        rusqlite::Error::SqliteFailure(code, _) => match code.code {
            ErrorCode::ConstraintViolation
                if matches!(
                    code.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                StoreError::AlreadyExists
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Unavailable("sqlite: database is locked".into()),
            ErrorCode::SystemIoFailure | ErrorCode::DiskFull | ErrorCode::CannotOpen => StoreError::Unavailable(format!("sqlite: {err}")),
            _ => StoreError::Internal(format!("sqlite: {err}")),
        },
        _ => StoreError::Internal(format!("sqlite: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settlement(request_id: &str) -> Op {
        Op::Settle(Settlement {
            request_id: request_id.to_owned(),
            commit: true,
            now_ms: 1,
            answer: None,
        })
    }

    /// A leader task that dies gives the lead up and answers every queued operation at once with
    /// an error, instead of leaving them for the next operation's leader.
    #[tokio::test]
    async fn a_dead_leader_answers_what_is_queued() {
        let group = GroupCommit::default();
        group.leading.store(true, Ordering::SeqCst);
        let mut answers = Vec::new();
        for request_id in ["r1", "r2"] {
            let (reply, answer) = oneshot::channel();
            group.lock_queue().push_back((settlement(request_id), reply));
            answers.push(answer);
        }
        drop(LeaderGone(&group));
        assert!(!group.leading.load(Ordering::SeqCst), "the lead is given up");
        assert!(group.lock_queue().is_empty());
        for answer in answers {
            match answer.await {
                Ok(Err(StoreError::Internal(message))) => assert!(message.contains("nothing of it was written"), "{message}"),
                other => panic!("expected the dead leader's error, got {other:?}"),
            }
        }
    }
}
