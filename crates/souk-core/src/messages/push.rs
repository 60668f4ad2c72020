//! The push of users' messages to their app's `message_url`, in the platform's JSON push format,
//! signed as the platform signs ([`crate::push`]).
//!
//! Durable: a user's message is stored with its push pending (the outbox is the `messages` table), so
//! a push survives a restart. [`Souk::run_due_message_pushes`] claims due pushes with a lease and
//! attempts each once; a failure (no answer, a timeout, a status other than 2xx) is tried again with
//! exponential backoff, [`PUSH_MAX_ATTEMPTS`] times in all. Every attempt is in the call log (route
//! `message_push`). The app's answer body is not read.
//!
//! The loop ([`Souk::message_push_loop`]) runs beside the async job workers and wakes at once when
//! this process stores a message.

use std::time::Duration;

use serde_json::{json, Map, Value};
use souk_types::message::MessageContent;

use crate::ids;
use crate::model::{App, CallRecord};
use crate::provider::ProviderReply;
use crate::push::signed_push;
use crate::souk::Souk;
use crate::store::messages::{PushAttempt, StoredMessage};

/// The timeout of one attempt.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// A claimed push is not claimed again for this long (a dead pusher's claim lapses).
pub const PUSH_LEASE_MS: i64 = 60_000;
/// Attempts before a push is given up (state `failed`).
pub const PUSH_MAX_ATTEMPTS: i64 = 8;
/// The wait after the first failed attempt; doubled after each further one, up to [`PUSH_RETRY_MAX_MS`].
pub const PUSH_RETRY_BASE_MS: i64 = 5_000;
/// The longest wait between two attempts.
pub const PUSH_RETRY_MAX_MS: i64 = 30 * 60_000;
/// Pushes claimed (and attempted concurrently) per step.
const PUSH_BATCH: u32 = 32;
/// The call-log route of push attempts.
pub const PUSH_ROUTE: &str = "message_push";

/// The wait after failed attempt number `attempt` (1-based).
pub fn retry_delay_ms(attempt: i64) -> i64 {
    let doublings = u32::try_from((attempt - 1).clamp(0, 20)).unwrap_or(20);
    PUSH_RETRY_BASE_MS.saturating_mul(1_i64 << doublings).min(PUSH_RETRY_MAX_MS)
}

/// The platform's JSON push of a user's message: `ToUserName` (the appid), `FromUserName` (the
/// openid), `CreateTime` (Unix seconds), `MsgType`, the kind's fields and `MsgId`.
pub fn push_body(message: &StoredMessage) -> Value {
    let mut body = Map::new();
    body.insert("ToUserName".into(), json!(message.appid));
    body.insert("FromUserName".into(), json!(message.openid));
    body.insert("CreateTime".into(), json!(message.created_at_ms.div_euclid(1000)));
    let content = serde_json::from_str(&message.body)
        .ok()
        .and_then(|value| MessageContent::from_json(&value));
    match content {
        Some(MessageContent::Text { content }) => {
            body.insert("MsgType".into(), json!("text"));
            body.insert("Content".into(), json!(content));
        }
        Some(MessageContent::Image { media_id }) => {
            body.insert("MsgType".into(), json!("image"));
            body.insert("MediaId".into(), json!(media_id));
        }
        Some(MessageContent::MiniProgramPage {
            title,
            pagepath,
            thumb_media_id,
        }) => {
            body.insert("MsgType".into(), json!("miniprogrampage"));
            body.insert("Title".into(), json!(title));
            body.insert("AppId".into(), json!(message.appid));
            body.insert("PagePath".into(), json!(pagepath));
            body.insert("ThumbMediaId".into(), json!(thumb_media_id));
        }
        Some(MessageContent::Event { event }) => {
            body.insert("MsgType".into(), json!("event"));
            body.insert("Event".into(), json!(event));
            body.insert("SessionFrom".into(), json!(""));
        }
        // Users send no links; an unreadable body is pushed as what it is.
        Some(MessageContent::Link { .. }) | None => {
            body.insert("MsgType".into(), json!("unknown"));
        }
    }
    body.insert("MsgId".into(), json!(message.msg_id));
    Value::Object(body)
}

impl Souk {
    /// One step of the push loop: claims due pushes and attempts each once, concurrently. Answers how
    /// many it claimed.
    pub async fn run_due_message_pushes(&self) -> usize {
        let now_ms = self.now_ms();
        let due = match self.store.claim_message_pushes(now_ms, PUSH_LEASE_MS, PUSH_BATCH).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "claiming message pushes failed; will retry");
                return 0;
            }
        };
        let claimed = due.len();
        futures::future::join_all(due.into_iter().map(|message| self.push_message(message))).await;
        claimed
    }

    /// Runs [`Souk::run_due_message_pushes`] whenever this process stores a user's message, and every
    /// `poll` (for retries and other nodes' messages), until the task is aborted.
    pub(crate) async fn message_push_loop(&self, poll: Duration) {
        loop {
            if self.run_due_message_pushes().await == 0 {
                let _ = tokio::time::timeout(poll, self.messages.pushes.notified()).await;
            }
        }
    }

    /// One attempt at one claimed push, recorded in the store and the call log.
    async fn push_message(&self, message: StoredMessage) {
        let started_ms = self.now_ms();
        let app = match self.find_app(&message.appid).await {
            Ok(app) => app,
            Err(err) => {
                tracing::warn!(msg_id = message.msg_id, error = %err, "no push attempt: the app could not be read");
                return;
            }
        };
        let body = push_body(&message);
        let bytes = body.to_string().into_bytes();
        let result = match app.as_deref() {
            Some(App {
                message_url: Some(url),
                message_token,
                ..
            }) => {
                let request = signed_push(
                    url,
                    message_token.as_deref(),
                    started_ms.div_euclid(1000),
                    bytes.clone(),
                    PUSH_TIMEOUT,
                );
                match self.transport.post(request).await {
                    ProviderReply::Answered { status, .. } if (200..300).contains(&status) => Ok(()),
                    ProviderReply::Answered { status, .. } => Err(format!("the app's server answered HTTP {status}")),
                    ProviderReply::TimedOut => Err(format!("no answer within {} s", PUSH_TIMEOUT.as_secs())),
                    ProviderReply::Failed(why) => Err(why),
                }
            }
            _ => Err("the app has no message_url".to_owned()),
        };
        let now_ms = self.now_ms();
        let attempt = match &result {
            Ok(()) => PushAttempt::Delivered,
            Err(error) if message.push_attempts >= PUSH_MAX_ATTEMPTS => PushAttempt::Failed {
                error: format!("gave up after {PUSH_MAX_ATTEMPTS} attempts; last: {error}"),
            },
            Err(error) => PushAttempt::Retry {
                due_at_ms: now_ms + retry_delay_ms(message.push_attempts),
                error: error.clone(),
            },
        };
        if let Err(err) = self.store.finish_message_push(message.msg_id, &attempt).await {
            // The lease lapses and the push is tried again.
            tracing::warn!(msg_id = message.msg_id, error = %err, "recording a push attempt failed");
        }
        if let Err(error) = &result {
            tracing::info!(msg_id = message.msg_id, attempt = message.push_attempts, error = %error, "message push failed");
        }
        self.calls
            .record(CallRecord {
                request_id: ids::new_request_id(now_ms),
                at_ms: started_ms,
                route: PUSH_ROUTE.to_owned(),
                appid: Some(message.appid.clone()),
                openid: Some(message.openid.clone()),
                plugin_appid: None,
                service_id: None,
                api: None,
                errcode: if result.is_ok() {
                    0
                } else {
                    souk_types::Code::SystemError.errcode()
                },
                message: match (&result, &attempt) {
                    (Ok(()), _) => Some(format!("msg {} delivered (attempt {})", message.msg_id, message.push_attempts)),
                    (Err(_), PushAttempt::Failed { error }) => Some(format!("msg {}: {error}", message.msg_id)),
                    (Err(error), _) => Some(format!(
                        "msg {} attempt {} failed, will retry: {error}",
                        message.msg_id, message.push_attempts
                    )),
                },
                latency_us: (now_ms - started_ms).max(0).saturating_mul(1000),
                package_id: None,
                bytes_in: 0,
                bytes_out: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
                cache_hit: false,
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::messages::{Direction, PushState};

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(retry_delay_ms(1), 5_000);
        assert_eq!(retry_delay_ms(2), 10_000);
        assert_eq!(retry_delay_ms(4), 40_000);
        assert_eq!(retry_delay_ms(30), PUSH_RETRY_MAX_MS);
    }

    #[test]
    fn push_bodies_follow_the_platform() {
        let message = |body: Value| StoredMessage {
            msg_id: 42,
            appid: "wxa".into(),
            openid: "o1".into(),
            seq: 1,
            direction: Direction::In,
            body: body.to_string(),
            created_at_ms: 1_700_000_000_999,
            push_state: PushState::Pending,
            push_attempts: 1,
            push_due_at_ms: None,
            push_last_error: None,
        };
        let text = push_body(&message(json!({"msgtype": "text", "text": {"content": "hi"}})));
        assert_eq!(
            text,
            json!({"ToUserName": "wxa", "FromUserName": "o1", "CreateTime": 1_700_000_000, "MsgType": "text", "Content": "hi", "MsgId": 42})
        );
        let event = push_body(&message(json!({"msgtype": "event", "event": "user_enter_tempsession"})));
        assert_eq!(event["Event"], "user_enter_tempsession");
        let card = push_body(&message(
            json!({"msgtype": "miniprogrampage", "miniprogrampage": {"title": "t", "pagepath": "pages/a", "thumb_media_id": "m"}}),
        ));
        assert_eq!(card["PagePath"], "pages/a");
        assert_eq!(card["ThumbMediaId"], "m");
    }
}
