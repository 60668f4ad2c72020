//! Customer-service messages in storage (`wire.md` §2 rows "custom send" and "typing", §4 `messages`):
//! the [`Conversations`] trait, the messages of each (app, user) conversation in order, and the outbox
//! of pushes to the app's `message_url`.
//!
//! Every rule that must hold across processes is one store call: a message's sequence number is
//! taken in the transaction that inserts it, the 48-hour window and the 5-reply count are checked and
//! counted in the transaction that inserts the reply, and "already typing" is a check and a set in
//! one transaction.

use async_trait::async_trait;

use super::StoreError;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The user, to the app (client API `POST messages`).
    In,
    /// The app, to the user (`custom/send`).
    Out,
}

impl Direction {
    /// Storage and wire name (`in`, `out`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    /// Parses the storage name.
    pub fn parse(name: &str) -> Option<Direction> {
        match name {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            _ => None,
        }
    }
}

/// Where a user's message stands on its way to the app's `message_url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// Nothing to push: the app's own message, or the app had no `message_url`.
    None,
    /// Waiting for its next attempt (at `push_due_at_ms`).
    Pending,
    /// The app's server answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
}

impl PushState {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::None => "none",
            PushState::Pending => "pending",
            PushState::Delivered => "delivered",
            PushState::Failed => "failed",
        }
    }

    /// Parses the storage name.
    pub fn parse(name: &str) -> Option<PushState> {
        match name {
            "none" => Some(PushState::None),
            "pending" => Some(PushState::Pending),
            "delivered" => Some(PushState::Delivered),
            "failed" => Some(PushState::Failed),
            _ => None,
        }
    }
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The platform's `MsgId`: a positive 63-bit number, unique.
    pub msg_id: i64,
    /// The app.
    pub appid: String,
    /// The user's openid in the app.
    pub openid: String,
    /// Its place in the conversation, from 1, without gaps: the client stream's event id.
    pub seq: i64,
    /// Who wrote it.
    pub direction: Direction,
    /// The message as JSON (`souk_types::message::MessageContent::to_json`).
    pub body: String,
    /// When it was written.
    pub created_at_ms: i64,
    /// Its push.
    pub push_state: PushState,
    /// Push attempts made (claims).
    pub push_attempts: i64,
    /// When the next push attempt is due (pending pushes; a claimed one's lease end).
    pub push_due_at_ms: Option<i64>,
    /// The last failed attempt's reason.
    pub push_last_error: Option<String>,
}

/// A message to store; the store gives it its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Its `MsgId`.
    pub msg_id: i64,
    /// The app.
    pub appid: String,
    /// The user.
    pub openid: String,
    /// The message as JSON.
    pub body: String,
    /// Now.
    pub created_at_ms: i64,
    /// A user's message to push to the app's `message_url` (due at once).
    pub push: bool,
}

/// The reply rules [`Conversations::append_app_message`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyRules {
    /// A reply is allowed this long after the user's last message (48 h).
    pub window_ms: i64,
    /// Replies allowed per user message (5).
    pub max_replies: i64,
}

/// What [`Conversations::append_app_message`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Stored (and counted against the user's last message).
    Sent(StoredMessage),
    /// The user never wrote to the app: nothing stored.
    NeverWrote,
    /// The user's last message is older than the window: nothing stored.
    OutOfWindow {
        /// When the user wrote last.
        last_in_at_ms: i64,
    },
    /// The replies to the user's last message are used up: nothing stored.
    ReplyLimit,
}

/// What [`Conversations::set_typing`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypingOutcome {
    /// The app now types until this time.
    Started {
        /// End of the typing state.
        until_ms: i64,
    },
    /// It already was typing (until this time): nothing changed.
    AlreadyTyping {
        /// End of the typing state.
        until_ms: i64,
    },
    /// No message went either way within the exchange window: nothing changed.
    NoRecentExchange,
    /// Typing cancelled; `was_typing` says whether it was on.
    Cancelled {
        /// Whether a typing state was ended.
        was_typing: bool,
    },
}

/// How one push attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushAttempt {
    /// The app's server took it.
    Delivered,
    /// Failed; try again at `due_at_ms`.
    Retry {
        /// Next attempt.
        due_at_ms: i64,
        /// Why it failed.
        error: String,
    },
    /// Failed for the last time.
    Failed {
        /// Why it failed.
        error: String,
    },
}

/// Conversations between apps and their users, and the push outbox.
#[async_trait]
pub trait Conversations: Send + Sync {
    /// In one transaction: stores a user's message with the conversation's next sequence number, and
    /// makes it the user's last message (the reply window restarts and the reply count goes to 0).
    async fn append_user_message(&self, message: &NewMessage) -> Result<StoredMessage, StoreError>;
    /// In one transaction: checks the reply rules against the user's last message and, when they
    /// allow it, stores the app's message with the next sequence number, counts the reply, and ends
    /// any typing state. However many replies race, at most `max_replies` are stored.
    async fn append_app_message(&self, message: &NewMessage, rules: ReplyRules) -> Result<SendOutcome, StoreError>;
    /// In one transaction: `until_ms = Some(end)` starts typing when a message went either way at or
    /// after `exchanged_since_ms` and no typing state runs past `now_ms`; `None` cancels typing.
    async fn set_typing(
        &self,
        appid: &str,
        openid: &str,
        until_ms: Option<i64>,
        now_ms: i64,
        exchanged_since_ms: i64,
    ) -> Result<TypingOutcome, StoreError>;
    /// The conversation's messages with `seq > after_seq`, oldest first, at most `limit`.
    async fn list_messages(&self, appid: &str, openid: &str, after_seq: i64, limit: u32) -> Result<Vec<StoredMessage>, StoreError>;
    /// One message by its `MsgId`.
    async fn get_message(&self, msg_id: i64) -> Result<Option<StoredMessage>, StoreError>;
    /// Claims up to `limit` pending pushes due at `now_ms`, soonest first: each counts one more attempt
    /// and is not due again before `now_ms + lease_ms` (so a dead pusher's claim is retried). Two
    /// concurrent claimers never get the same push.
    async fn claim_message_pushes(&self, now_ms: i64, lease_ms: i64, limit: u32) -> Result<Vec<StoredMessage>, StoreError>;
    /// Records how a claimed push attempt ended; `false` if the push is no longer pending.
    async fn finish_message_push(&self, msg_id: i64, attempt: &PushAttempt) -> Result<bool, StoreError>;
}
