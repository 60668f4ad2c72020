//! Customer-service messages (`wire.md` §2 rows "custom send" and "typing", §4 `messages`;
//! `wechat-wire.md` §5.1–§5.2): a user writes to an app from the client API, souk stores the message
//! and pushes it to the app's `message_url` ([`push`]); the app answers with `custom/send` within the
//! platform's rules and may show "typing..."; the user reads the app's messages and typing changes as
//! a stream or as history.
//!
//! The rules, all checked where they can be exact:
//! - A reply needs a user message less than [`REPLY_WINDOW_MS`] (48 h) old (45015) and at most
//!   [`MAX_REPLIES`] (5) replies per user message (45047): checked and counted in the store
//!   transaction that keeps the reply.
//! - Typing needs a message either way in the last [`TYPING_EXCHANGE_MS`] (30 s) (45080) and no typing
//!   state running (45081): one store transaction. It ends by itself after [`TYPING_MS`] (15 s), when
//!   cancelled, or when the app sends a message.
//! - Media ids (`image.media_id`, `thumb_media_id`) must be the app's unexpired temp media (40007); a
//!   card's `pagepath` must be a registered page of the app (40165), the check the code APIs use.
//!
//! Messages are numbered per conversation from 1 without gaps; the number is the client stream's
//! event id, so `Last-Event-ID` resumes exactly where the client stopped.

pub mod hub;
pub mod push;

use serde_json::{json, Value};
use souk_types::message::{CustomSend, MessageContent, TypingCommand, TypingRequest};
use souk_types::Code;

use crate::clients::ClientCaller;
use crate::error::{Failure, Result};
use crate::model::App;
use crate::signals::Signal;
use crate::souk::Souk;
use crate::store::messages::{NewMessage, ReplyRules, SendOutcome, StoredMessage, TypingOutcome};
use crate::store::StoreError;
use crate::tokens::Caller;
use crate::wxacode::rules::is_registered_page;
use hub::HubEvent;

/// A reply is allowed this long after the user's last message (`wechat-wire.md` §5.1: 48 h).
pub const REPLY_WINDOW_MS: i64 = 48 * 3_600_000;
/// Replies allowed per user message (`wechat-wire.md` §5.1: 5). The count starts again at each
/// user message (souk's reading of "5 replies per user message").
pub const MAX_REPLIES: i64 = 5;
/// Typing needs a message either way within this long (`wechat-wire.md` §5.2: 30 s).
pub const TYPING_EXCHANGE_MS: i64 = 30_000;
/// A typing state ends by itself after this long (the platform's 15 s).
pub const TYPING_MS: i64 = 15_000;
/// The most messages one history page answers.
pub const MAX_PAGE: u32 = 500;

fn internal(err: &StoreError) -> Failure {
    Failure::from_store(Code::SystemError, err)
}

/// A new `MsgId`: a random positive 63-bit number, as the platform's are 64-bit numbers.
fn new_msg_id() -> i64 {
    i64::try_from(rand::random::<u64>() >> 1).unwrap_or(i64::MAX).max(1)
}

/// A message as the client API shows it (history and stream): the sent shape plus `id` (the
/// sequence number), `direction` (`in` or `out`) and `created_at` (Unix seconds).
pub fn message_item(message: &StoredMessage) -> Value {
    let mut item = serde_json::from_str(&message.body).unwrap_or_else(|_| json!({}));
    if !item.is_object() {
        item = json!({});
    }
    item["id"] = json!(message.seq);
    item["direction"] = json!(message.direction.as_str());
    item["created_at"] = json!(message.created_at_ms.div_euclid(1000));
    item
}

/// 40165 unless the page of `pagepath` (before any query) is a registered page of `app`: the check
/// the code APIs make.
fn check_pagepath(app: &App, pagepath: &str) -> Result<()> {
    let page = pagepath.split_once('?').map_or(pagepath, |(page, _)| page);
    if is_registered_page(&app.pages, page.trim_start_matches('/')) {
        Ok(())
    } else {
        Err(Failure::new(
            Code::MessagePagepathInvalid,
            format!("miniprogrampage.pagepath {page:?} is not a registered page of the app"),
        ))
    }
}

impl Souk {
    /// Ends every open client message stream (clients reconnect with `Last-Event-ID`); `souk serve`
    /// calls it when shutdown starts, so open streams do not hold the graceful shutdown.
    pub fn close_message_streams(&self) {
        self.messages.close();
    }

    /// The signal client streams subscribe to.
    pub fn message_hub(&self) -> &hub::MessageHub {
        &self.messages
    }

    /// Client API `POST messages`: the user writes to the app. Stored, then pushed to the app's
    /// `message_url` (when it has one) in the background.
    pub async fn send_user_message(&self, client: &ClientCaller, content: &MessageContent) -> Result<StoredMessage> {
        let app = &client.app;
        match content {
            MessageContent::Image { media_id } => self.check_app_media(app, media_id, "image.media_id").await?,
            MessageContent::MiniProgramPage {
                pagepath, thumb_media_id, ..
            } => {
                check_pagepath(app, pagepath)?;
                self.check_app_media(app, thumb_media_id, "miniprogrampage.thumb_media_id").await?;
            }
            _ => {}
        }
        let message = NewMessage {
            msg_id: new_msg_id(),
            appid: app.appid.clone(),
            openid: client.openid().to_owned(),
            body: content.to_json().to_string(),
            created_at_ms: self.now_ms(),
            push: app.message_url.is_some(),
        };
        let stored = self.store.append_user_message(&message).await.map_err(|err| internal(&err))?;
        self.announce(&stored).await;
        if stored.push_state == crate::store::messages::PushState::Pending {
            self.messages.pushes.notify_one();
        }
        Ok(stored)
    }

    /// `custom/send`: the app writes to a user, within the reply rules.
    pub async fn send_custom_message(&self, caller: &Caller, send: &CustomSend) -> Result<StoredMessage> {
        let app = &caller.app;
        self.check_openid(app, &send.touser).await?;
        match &send.content {
            MessageContent::Image { media_id } => self.check_app_media(app, media_id, "image.media_id").await?,
            MessageContent::MiniProgramPage {
                pagepath, thumb_media_id, ..
            } => {
                check_pagepath(app, pagepath)?;
                self.check_app_media(app, thumb_media_id, "miniprogrampage.thumb_media_id").await?;
            }
            _ => {}
        }
        let message = NewMessage {
            msg_id: new_msg_id(),
            appid: app.appid.clone(),
            openid: send.touser.clone(),
            body: send.content.to_json().to_string(),
            created_at_ms: self.now_ms(),
            push: false,
        };
        let rules = ReplyRules {
            window_ms: REPLY_WINDOW_MS,
            max_replies: MAX_REPLIES,
        };
        match self.store.append_app_message(&message, rules).await.map_err(|err| internal(&err))? {
            SendOutcome::Sent(stored) => {
                self.announce(&stored).await;
                Ok(stored)
            }
            SendOutcome::NeverWrote => Err(Failure::new(Code::MessageOutOfTime, "the user has not written to the app")),
            SendOutcome::OutOfWindow { last_in_at_ms } => Err(Failure::new(
                Code::MessageOutOfTime,
                format!(
                    "the user's last message is {} h old; replies are allowed for 48 h",
                    (message.created_at_ms - last_in_at_ms) / 3_600_000
                ),
            )),
            SendOutcome::ReplyLimit => Err(Failure::new(
                Code::MessageReplyLimit,
                format!("{MAX_REPLIES} replies were sent since the user's last message"),
            )),
        }
    }

    /// `custom/typing`: shows or hides "typing..." to a user.
    pub async fn set_typing(&self, caller: &Caller, request: &TypingRequest) -> Result<()> {
        let app = &caller.app;
        self.check_openid(app, &request.touser).await?;
        let now_ms = self.now_ms();
        let until_ms = (request.command == TypingCommand::Typing).then_some(now_ms + TYPING_MS);
        let outcome = self
            .store
            .set_typing(&app.appid, &request.touser, until_ms, now_ms, now_ms - TYPING_EXCHANGE_MS)
            .await
            .map_err(|err| internal(&err))?;
        let (typing, until_ms) = match outcome {
            TypingOutcome::Started { until_ms } => (true, Some(until_ms)),
            TypingOutcome::Cancelled { .. } => (false, None),
            TypingOutcome::AlreadyTyping { until_ms } => {
                return Err(Failure::new(
                    Code::TypingAlready,
                    format!("typing for {} s more; cancel it or wait", (until_ms - now_ms + 999) / 1000),
                ))
            }
            TypingOutcome::NoRecentExchange => {
                return Err(Failure::new(
                    Code::TypingNoRecentExchange,
                    "typing needs a message exchanged with the user in the last 30 s",
                ))
            }
        };
        self.signal(Signal::Conversation(HubEvent::Typing {
            appid: app.appid.clone(),
            openid: request.touser.clone(),
            typing,
            until_ms,
        }))
        .await;
        Ok(())
    }

    /// Client API `GET messages?since=`: the conversation's messages after `since`, oldest first.
    pub async fn message_history(&self, client: &ClientCaller, since: i64, limit: u32) -> Result<Vec<StoredMessage>> {
        self.store
            .list_messages(&client.app.appid, client.openid(), since.max(0), limit.clamp(1, MAX_PAGE))
            .await
            .map_err(|err| internal(&err))
    }

    /// 40003 unless `openid` is a user of `app`.
    async fn check_openid(&self, app: &App, openid: &str) -> Result<()> {
        match self.store.find_user(&app.appid, openid).await.map_err(|err| internal(&err))? {
            Some(_) => Ok(()),
            None => Err(Failure::new(
                Code::InvalidOpenid,
                format!("touser {openid:?} is not a user of the app"),
            )),
        }
    }

    /// 40007 unless `media_id` is `app`'s unexpired temp media.
    async fn check_app_media(&self, app: &App, media_id: &str, field: &str) -> Result<()> {
        let invalid = || Failure::new(Code::MediaIdInvalid, format!("{field} is not an unexpired temp media of the app"));
        if !crate::media::is_media_id(media_id) {
            return Err(invalid());
        }
        match self.store.get_media(media_id).await.map_err(|err| internal(&err))? {
            Some(media) if media.appid == app.appid && self.now_ms() < media.expires_at_ms => Ok(()),
            _ => Err(invalid()),
        }
    }

    /// Wakes this node's and every other node's streams of the conversation.
    async fn announce(&self, message: &StoredMessage) {
        self.signal(Signal::Conversation(HubEvent::Message {
            appid: message.appid.clone(),
            openid: message.openid.clone(),
            seq: message.seq,
        }))
        .await;
    }
}
