//! Customer-service messages, shared: appending a message, checking and counting the reply rules, and
//! setting typing are each one transaction that reads the conversation row under a lock and writes it
//! back; the push outbox is claimed with a lease and finished with a conditional update.

/// The due pushes to claim (`$1` now, `$3` limit), soonest first.
pub(crate) const DUE_PUSHES: &str = "SELECT msg_id FROM messages \
     WHERE push_state = 'pending' AND push_due_at_ms <= $1 \
     ORDER BY push_due_at_ms, msg_id LIMIT $3";

/// Leases claimed pushes (`$1` now, `$2` lease length) and counts the attempt; completed by a `WHERE`
/// naming the claimed rows.
pub(crate) const LEASE_PUSHES: &str = "UPDATE messages SET push_due_at_ms = $1 + $2, push_attempts = push_attempts + 1";

/// Expands [`Conversations`](souk_core::store::messages::Conversations) for a backend store (common
/// parameters: see [`crate::shared`]), with `claim_with`, `pub(crate)` in the generated module: runs a
/// claim statement and answers the claimed messages in due order.
///
/// Knob: `row_lock`, the clause appended to the read of the conversation row a transaction then
/// rewrites (`" FOR UPDATE"` on PostgreSQL; `""` on SQLite, whose `BEGIN IMMEDIATE` already keeps
/// every other writer out).
///
/// Hook, a function of the invoking file: `claim_pushes(&store, now_ms, lease_ms, limit: u32) ->
/// Result<Vec<StoredMessage>, StoreError>`, the whole
/// [`Conversations::claim_message_pushes`](souk_core::store::messages::Conversations::claim_message_pushes).
macro_rules! impl_conversations {
    (
        store: $store:ident,
        db: $db:ident,
        read: $read:ident,
        write: $write:ident,
        begin: $begin:ident,
        row_lock: $row_lock:literal,
        claim_pushes: $claim:ident $(,)?
    ) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::store::messages::{
                Conversations, Direction, NewMessage, PushAttempt, PushState, ReplyRules, SendOutcome, StoredMessage, TypingOutcome,
            };
            use souk_core::store::StoreError;
            use sqlx::{$db, Transaction};
            use $crate::message_rows::{ConversationRow, MessageRow, CONVERSATION_COLUMNS, MESSAGE_COLUMNS};
            use $crate::rows;

            /// The conversation's rule state, locked until commit.
            async fn conversation(
                tx: &mut Transaction<'static, $db>,
                appid: &str,
                openid: &str,
            ) -> Result<Option<ConversationRow>, StoreError> {
                sqlx::query_as(&format!(
                    "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE appid = $1 AND openid = $2{}",
                    $row_lock
                ))
                .bind(appid)
                .bind(openid)
                .fetch_optional(&mut **tx)
                .await
                .map_err(from_sqlx)
            }

            /// Inserts `message` as number `seq` and answers it as stored.
            async fn insert_message(
                tx: &mut Transaction<'static, $db>,
                message: &NewMessage,
                seq: i64,
                direction: Direction,
            ) -> Result<StoredMessage, StoreError> {
                let push_state = if message.push { PushState::Pending } else { PushState::None };
                let due = message.push.then_some(message.created_at_ms);
                sqlx::query(&format!(
                    "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, NULL)"
                ))
                .bind(message.msg_id)
                .bind(&message.appid)
                .bind(&message.openid)
                .bind(seq)
                .bind(direction.as_str())
                .bind(&message.body)
                .bind(message.created_at_ms)
                .bind(push_state.as_str())
                .bind(due)
                .execute(&mut **tx)
                .await
                .map_err(from_sqlx)?;
                Ok(StoredMessage {
                    msg_id: message.msg_id,
                    appid: message.appid.clone(),
                    openid: message.openid.clone(),
                    seq,
                    direction,
                    body: message.body.clone(),
                    created_at_ms: message.created_at_ms,
                    push_state,
                    push_attempts: 0,
                    push_due_at_ms: due,
                    push_last_error: None,
                })
            }

            #[async_trait]
            impl Conversations for $store {
                async fn append_user_message(&self, message: &NewMessage) -> Result<StoredMessage, StoreError> {
                    let mut tx = self.$begin().await?;
                    sqlx::query(
                        "INSERT INTO conversations (appid, openid, last_seq, last_in_at_ms, replies_since_in, last_exchange_at_ms) \
                         VALUES ($1, $2, 0, NULL, 0, $3) ON CONFLICT (appid, openid) DO NOTHING",
                    )
                    .bind(&message.appid)
                    .bind(&message.openid)
                    .bind(message.created_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    let state = conversation(&mut tx, &message.appid, &message.openid)
                        .await?
                        .ok_or_else(|| StoreError::Internal("the conversation row vanished".into()))?;
                    let stored = insert_message(&mut tx, message, state.last_seq + 1, Direction::In).await?;
                    sqlx::query(
                        "UPDATE conversations SET last_seq = $3, last_in_at_ms = $4, replies_since_in = 0, last_exchange_at_ms = $4 \
                         WHERE appid = $1 AND openid = $2",
                    )
                    .bind(&message.appid)
                    .bind(&message.openid)
                    .bind(stored.seq)
                    .bind(message.created_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(stored)
                }

                async fn append_app_message(&self, message: &NewMessage, rules: ReplyRules) -> Result<SendOutcome, StoreError> {
                    let mut tx = self.$begin().await?;
                    let state = conversation(&mut tx, &message.appid, &message.openid).await?;
                    let refusal = match state.and_then(|state| state.last_in_at_ms.map(|last_in| (state, last_in))) {
                        None => Some(SendOutcome::NeverWrote),
                        Some((_, last_in_at_ms)) if message.created_at_ms - last_in_at_ms > rules.window_ms => {
                            Some(SendOutcome::OutOfWindow { last_in_at_ms })
                        }
                        Some((state, _)) if state.replies_since_in >= rules.max_replies => Some(SendOutcome::ReplyLimit),
                        Some(_) => None,
                    };
                    if let Some(refusal) = refusal {
                        tx.rollback().await.map_err(from_sqlx)?;
                        return Ok(refusal);
                    }
                    let last_seq = state.map_or(0, |state| state.last_seq);
                    let stored = insert_message(&mut tx, message, last_seq + 1, Direction::Out).await?;
                    sqlx::query(
                        "UPDATE conversations SET last_seq = $3, replies_since_in = replies_since_in + 1, last_exchange_at_ms = $4, \
                         typing_until_ms = NULL WHERE appid = $1 AND openid = $2",
                    )
                    .bind(&message.appid)
                    .bind(&message.openid)
                    .bind(stored.seq)
                    .bind(message.created_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(SendOutcome::Sent(stored))
                }

                async fn set_typing(
                    &self,
                    appid: &str,
                    openid: &str,
                    until_ms: Option<i64>,
                    now_ms: i64,
                    exchanged_since_ms: i64,
                ) -> Result<TypingOutcome, StoreError> {
                    let mut tx = self.$begin().await?;
                    let state = conversation(&mut tx, appid, openid).await?;
                    let typing_until = state.and_then(|state| state.typing_until_ms).filter(|until| *until > now_ms);
                    let outcome = match (until_ms, state) {
                        (None, _) => TypingOutcome::Cancelled {
                            was_typing: typing_until.is_some(),
                        },
                        (Some(_), _) if typing_until.is_some() => TypingOutcome::AlreadyTyping {
                            until_ms: typing_until.unwrap_or(now_ms),
                        },
                        (Some(until_ms), Some(state)) if state.last_exchange_at_ms >= exchanged_since_ms => {
                            TypingOutcome::Started { until_ms }
                        }
                        (Some(_), _) => TypingOutcome::NoRecentExchange,
                    };
                    let write = match outcome {
                        TypingOutcome::Started { until_ms } => Some(Some(until_ms)),
                        TypingOutcome::Cancelled { was_typing: true } => Some(None),
                        _ => None,
                    };
                    if let Some(typing_until_ms) = write {
                        sqlx::query("UPDATE conversations SET typing_until_ms = $3 WHERE appid = $1 AND openid = $2")
                            .bind(appid)
                            .bind(openid)
                            .bind(typing_until_ms)
                            .execute(&mut *tx)
                            .await
                            .map_err(from_sqlx)?;
                        tx.commit().await.map_err(from_sqlx)?;
                    } else {
                        tx.rollback().await.map_err(from_sqlx)?;
                    }
                    Ok(outcome)
                }

                async fn list_messages(
                    &self,
                    appid: &str,
                    openid: &str,
                    after_seq: i64,
                    limit: u32,
                ) -> Result<Vec<StoredMessage>, StoreError> {
                    let rows: Vec<MessageRow> = sqlx::query_as(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE appid = $1 AND openid = $2 AND seq > $3 ORDER BY seq LIMIT $4"
                    ))
                    .bind(appid)
                    .bind(openid)
                    .bind(after_seq)
                    .bind(rows::limit(limit))
                    .fetch_all(&self.$read)
                    .await
                    .map_err(from_sqlx)?;
                    rows::map_all(rows)
                }

                async fn get_message(&self, msg_id: i64) -> Result<Option<StoredMessage>, StoreError> {
                    let row: Option<MessageRow> = sqlx::query_as(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE msg_id = $1"))
                        .bind(msg_id)
                        .fetch_optional(&self.$read)
                        .await
                        .map_err(from_sqlx)?;
                    row.map(StoredMessage::try_from).transpose()
                }

                async fn claim_message_pushes(&self, now_ms: i64, lease_ms: i64, limit: u32) -> Result<Vec<StoredMessage>, StoreError> {
                    $claim(self, now_ms, lease_ms, limit).await
                }

                async fn finish_message_push(&self, msg_id: i64, attempt: &PushAttempt) -> Result<bool, StoreError> {
                    let (state, due, error) = match attempt {
                        PushAttempt::Delivered => (PushState::Delivered, None, None),
                        PushAttempt::Retry { due_at_ms, error } => (PushState::Pending, Some(*due_at_ms), Some(error.as_str())),
                        PushAttempt::Failed { error } => (PushState::Failed, None, Some(error.as_str())),
                    };
                    let done = sqlx::query(
                        "UPDATE messages SET push_state = $2, push_due_at_ms = $3, push_last_error = COALESCE($4, push_last_error) \
                         WHERE msg_id = $1 AND push_state = 'pending'",
                    )
                    .bind(msg_id)
                    .bind(state.as_str())
                    .bind(due)
                    .bind(error)
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(done.rows_affected() == 1)
                }
            }

            /// Runs `claim` (a statement leasing due pushes, parameters `$1` now, `$2` lease length, `$3`
            /// limit, answering the leased rows) on `executor`; answers them in due order.
            pub(crate) async fn claim_with<'c, E>(
                executor: E,
                claim: &str,
                now_ms: i64,
                lease_ms: i64,
                limit: u32,
            ) -> Result<Vec<StoredMessage>, StoreError>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                let rows: Vec<MessageRow> = sqlx::query_as(claim)
                    .bind(now_ms)
                    .bind(lease_ms)
                    .bind(rows::limit(limit))
                    .fetch_all(executor)
                    .await
                    .map_err(from_sqlx)?;
                let mut messages: Vec<StoredMessage> = rows::map_all(rows)?;
                messages.sort_by_key(|message| (message.push_due_at_ms, message.msg_id));
                Ok(messages)
            }
        }
    };
}

pub(crate) use impl_conversations;
