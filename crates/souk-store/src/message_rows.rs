//! The `messages`, `conversations` and `payments` rows as both backends read them, and their mapping to
//! [`StoredMessage`] and [`PaymentRecord`].

use souk_core::store::messages::{Direction, PushState, StoredMessage};
use souk_core::store::payments::PaymentRecord;
use souk_core::store::StoreError;

use crate::error::bad_value;

/// Columns of `messages`, in table order.
pub(crate) const MESSAGE_COLUMNS: &str = "msg_id, appid, openid, seq, direction, body, created_at_ms, push_state, push_attempts, \
     push_due_at_ms, push_last_error";

/// Columns of `conversations` the rules read.
pub(crate) const CONVERSATION_COLUMNS: &str = "last_seq, last_in_at_ms, replies_since_in, last_exchange_at_ms, typing_until_ms";

/// Columns of `payments`, in table order.
pub(crate) const PAYMENT_COLUMNS: &str =
    "payment_id, appid, openid, transaction_id, mch_id, out_trade_no, amount, paid_at_ms, created_at_ms";

/// A row of `messages`.
#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    msg_id: i64,
    appid: String,
    openid: String,
    seq: i64,
    direction: String,
    body: String,
    created_at_ms: i64,
    push_state: String,
    push_attempts: i64,
    push_due_at_ms: Option<i64>,
    push_last_error: Option<String>,
}

impl TryFrom<MessageRow> for StoredMessage {
    type Error = StoreError;

    fn try_from(row: MessageRow) -> Result<StoredMessage, StoreError> {
        Ok(StoredMessage {
            direction: Direction::parse(&row.direction).ok_or_else(|| bad_value("messages.direction"))?,
            push_state: PushState::parse(&row.push_state).ok_or_else(|| bad_value("messages.push_state"))?,
            msg_id: row.msg_id,
            appid: row.appid,
            openid: row.openid,
            seq: row.seq,
            body: row.body,
            created_at_ms: row.created_at_ms,
            push_attempts: row.push_attempts,
            push_due_at_ms: row.push_due_at_ms,
            push_last_error: row.push_last_error,
        })
    }
}

/// The rule state of one conversation.
#[derive(sqlx::FromRow, Debug, Clone, Copy)]
pub(crate) struct ConversationRow {
    pub(crate) last_seq: i64,
    pub(crate) last_in_at_ms: Option<i64>,
    pub(crate) replies_since_in: i64,
    pub(crate) last_exchange_at_ms: i64,
    pub(crate) typing_until_ms: Option<i64>,
}

/// A row of `payments`.
#[derive(sqlx::FromRow)]
pub(crate) struct PaymentRow {
    payment_id: String,
    appid: String,
    openid: String,
    transaction_id: Option<String>,
    mch_id: Option<String>,
    out_trade_no: Option<String>,
    amount: Option<i64>,
    paid_at_ms: i64,
    created_at_ms: i64,
}

impl From<PaymentRow> for PaymentRecord {
    fn from(row: PaymentRow) -> Self {
        PaymentRecord {
            payment_id: row.payment_id,
            appid: row.appid,
            openid: row.openid,
            transaction_id: row.transaction_id,
            mch_id: row.mch_id,
            out_trade_no: row.out_trade_no,
            amount: row.amount,
            paid_at_ms: row.paid_at_ms,
            created_at_ms: row.created_at_ms,
        }
    }
}
