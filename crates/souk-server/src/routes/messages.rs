//! Customer-service messages over HTTP (`wire.md` §2 rows "custom send" and "typing", §4 `messages`):
//! the app's `POST /cgi-bin/message/custom/send` and `POST /cgi-bin/message/custom/typing` (WeChat
//! style), and the user's side on the client API: `POST messages`, `GET messages?since=` (history)
//! and `GET messages/stream` (server-sent events, resumable with `Last-Event-ID`).
//!
//! The stream subscribes to the domain's in-process signal first and reads the store second, so no
//! message falls between the two; a message event's `id:` is the message's number in the
//! conversation, and every wake-up (or [`STREAM_POLL`] for messages another node stored) reads the
//! store from the last number sent. Typing changes are `typing` events without an id; the stream also
//! says `typing: false` when the state runs out (15 s, on the stream's own timer) or an `out` message
//! ends it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use souk_core::builtin::BuiltinApi;
use souk_core::messages::hub::HubEvent;
use souk_core::messages::message_item;
use souk_core::store::messages::Direction;
use souk_core::Failure;
use souk_core::Souk;
use souk_types::message::{parse_custom_send, parse_typing, parse_user_message};
use souk_types::Code;
use tokio::sync::{broadcast, watch};

use crate::context::RequestContext;
use crate::extract::{call_record, read_limited, ClientAuth, QueryPairs, WechatCaller};
use crate::render;
use crate::routes::client::{body_bytes, finish};
use crate::routes::{logged_wechat_json, noted_failure};
use crate::state::AppState;

/// How often a stream reads the store even without a signal (messages stored by another node).
pub const STREAM_POLL: Duration = Duration::from_secs(5);
/// How often an idle stream sends a comment, so proxies keep it open.
pub const STREAM_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// A stream ends after this long (and when souk shuts down); the client reconnects with
/// `Last-Event-ID` and loses nothing.
pub const STREAM_MAX_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Messages read from the store per catch-up step.
const CATCH_UP_PAGE: u32 = 100;
/// History page size unless `limit` says otherwise.
const HISTORY_PAGE: u32 = 100;

/// `POST /cgi-bin/message/custom/send?access_token=` `{touser, msgtype, ...}` → `{errcode: 0, errmsg: "ok"}`.
pub async fn custom_send(
    State(state): State<AppState>,
    context: RequestContext,
    WechatCaller(caller): WechatCaller,
    body: Body,
) -> Response {
    let mut call = call_record(&context, "send");
    call.appid = Some(caller.app.appid.clone());
    let sent = async {
        state.souk.admit_builtin(&caller.app, BuiltinApi::SendMessage, &mut call).await?;
        let bytes = read_limited(body, state.settings.max_body_bytes).await?;
        call.bytes_in = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let send = parse_custom_send(&bytes).map_err(|bad| Failure::new(bad.code, bad.detail))?;
        call.openid = Some(send.touser.clone());
        state.souk.send_custom_message(&caller, &send).await
    }
    .await;
    let body = match sent {
        Ok(_) => json!({"errcode": 0, "errmsg": "ok"}),
        Err(failure) => noted_failure(&mut call, &failure, &context.request_id),
    };
    logged_wechat_json(&state, &context, call, &body).await
}

/// `POST /cgi-bin/message/custom/typing?access_token=` `{touser, command}` → `{errcode: 0, errmsg: "ok"}`.
pub async fn typing(State(state): State<AppState>, context: RequestContext, WechatCaller(caller): WechatCaller, body: Body) -> Response {
    let mut call = call_record(&context, "typing");
    call.appid = Some(caller.app.appid.clone());
    let done = async {
        state.souk.admit_builtin(&caller.app, BuiltinApi::SetTyping, &mut call).await?;
        let bytes = read_limited(body, state.settings.max_body_bytes).await?;
        call.bytes_in = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let request = parse_typing(&bytes).map_err(|bad| Failure::new(bad.code, bad.detail))?;
        call.openid = Some(request.touser.clone());
        state.souk.set_typing(&caller, &request).await
    }
    .await;
    let body = match done {
        Ok(()) => json!({"errcode": 0, "errmsg": "ok"}),
        Err(failure) => noted_failure(&mut call, &failure, &context.request_id),
    };
    logged_wechat_json(&state, &context, call, &body).await
}

/// `POST /souk/v1/client/messages`: the user writes to the app → the stored item (`id`,
/// `direction: "in"`, `created_at` and the message).
pub async fn post_message(State(state): State<AppState>, context: RequestContext, ClientAuth(client): ClientAuth, body: Body) -> Response {
    let mut call = call_record(&context, "client_messages");
    call.appid = Some(client.app.appid.clone());
    call.openid = Some(client.openid().to_owned());
    let result = async {
        let bytes = body_bytes(&state, body, &mut call).await?;
        let content = parse_user_message(&bytes).map_err(|bad| Failure::new(bad.code, bad.detail))?;
        let stored = state.souk.send_user_message(&client, &content).await?;
        Ok(message_item(&stored))
    }
    .await;
    finish(&state, &context, call, result.map_err(|failure| (failure, None))).await
}

/// `GET /souk/v1/client/messages?since=<id>&limit=` → `{items: [...]}`, oldest first, with `next` (the
/// `since` of the next page) when the page is full.
pub async fn history(
    State(state): State<AppState>,
    context: RequestContext,
    ClientAuth(client): ClientAuth,
    query: QueryPairs,
) -> Response {
    let mut call = call_record(&context, "client_messages");
    call.appid = Some(client.app.appid.clone());
    call.openid = Some(client.openid().to_owned());
    let result = async {
        let since = number_param(&query, "since", 0)?;
        let limit = number_param(&query, "limit", i64::from(HISTORY_PAGE))?;
        let limit = u32::try_from(limit.clamp(1, i64::from(souk_core::messages::MAX_PAGE))).unwrap_or(HISTORY_PAGE);
        let messages = state.souk.message_history(&client, since, limit).await?;
        let items: Vec<_> = messages.iter().map(message_item).collect();
        let mut answer = json!({ "items": items });
        if messages.len() == limit as usize {
            if let Some(last) = messages.last() {
                answer["next"] = json!(last.seq.to_string());
            }
        }
        Ok(answer)
    }
    .await;
    finish(&state, &context, call, result.map_err(|failure| (failure, None))).await
}

/// Sleeps until `at`, or forever when there is none.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A non-negative whole-number query parameter, `default` when absent.
fn number_param(query: &QueryPairs, name: &str, default: i64) -> Result<i64, Failure> {
    match query.get(name) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| Failure::new(Code::DataFormatError, format!("{name} must be a whole number, 0 or more"))),
    }
}

/// `GET /souk/v1/client/messages/stream`: the conversation as server-sent events. `event: message`
/// with `id: <n>` and the item as data, for every message after `Last-Event-ID` (or `?since=`, or from
/// the start); `event: typing` with `{typing, expires_in?}` when the app starts or stops typing.
pub async fn stream(
    State(state): State<AppState>,
    context: RequestContext,
    ClientAuth(client): ClientAuth,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    let mut call = call_record(&context, "client_messages_stream");
    call.appid = Some(client.app.appid.clone());
    call.openid = Some(client.openid().to_owned());
    let last_event_id = headers.get("last-event-id").and_then(|value| value.to_str().ok()).map(str::trim);
    let start = match last_event_id.filter(|id| !id.is_empty()) {
        Some(id) => id
            .parse::<i64>()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| Failure::new(Code::DataFormatError, "Last-Event-ID must be a message id")),
        None => number_param(&query, "since", 0),
    };
    let after = match start {
        Ok(after) => after,
        Err(failure) => {
            call.errcode = failure.code.client_code();
            call.message = Some(failure.message());
            state.log_call(call, &context).await;
            return render::client_failure(&failure, &context.request_id, None);
        }
    };
    state.log_call(call, &context).await;
    let conversation = Conversation {
        souk: state.souk.clone(),
        appid: client.app.appid.clone(),
        openid: client.openid().to_owned(),
        after,
        events: state.souk.message_hub().subscribe(),
        closing: state.souk.message_hub().closing(),
        ready: VecDeque::new(),
        catch_up: true,
        ends_at: tokio::time::Instant::now() + STREAM_MAX_LIFETIME,
        typing_ends: None,
    };
    let events = futures::stream::unfold(conversation, |mut conversation| async move {
        let event = conversation.next_event().await?;
        Some((Ok::<Event, Infallible>(event), conversation))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(STREAM_KEEP_ALIVE).text("keep-alive"))
        .into_response()
}

/// One open stream's state.
struct Conversation {
    souk: Arc<Souk>,
    appid: String,
    openid: String,
    /// The last message number sent.
    after: i64,
    events: broadcast::Receiver<Arc<HubEvent>>,
    closing: watch::Receiver<bool>,
    /// Events ready to send.
    ready: VecDeque<Event>,
    /// The store must be read from `after`.
    catch_up: bool,
    ends_at: tokio::time::Instant,
    /// When the typing state the client was told of runs out (then `typing: false` is sent).
    typing_ends: Option<tokio::time::Instant>,
}

impl Conversation {
    /// The next event to send; `None` ends the stream (lifetime over, store failure, souk stopping).
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.catch_up {
                self.read_store().await?;
                continue;
            }
            tokio::select! {
                received = self.events.recv() => match received {
                    Ok(event) => self.take(&event),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                () = tokio::time::sleep(STREAM_POLL) => self.catch_up = true,
                () = tokio::time::sleep_until(self.ends_at) => return None,
                _ = self.closing.changed() => return None,
                () = sleep_until_some(self.typing_ends) => self.stop_typing(),
            }
        }
    }

    /// Queues the messages after `after`; `None` when the store cannot be read.
    async fn read_store(&mut self) -> Option<()> {
        let messages = match self
            .souk
            .store()
            .list_messages(&self.appid, &self.openid, self.after, CATCH_UP_PAGE)
            .await
        {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(error = %err, appid = %self.appid, "a message stream could not read the store; closing it");
                return None;
            }
        };
        self.catch_up = messages.len() == CATCH_UP_PAGE as usize;
        for message in messages {
            self.after = message.seq;
            self.ready.push_back(
                Event::default()
                    .id(message.seq.to_string())
                    .event("message")
                    .data(message_item(&message).to_string()),
            );
            // The app's message ends its typing state.
            if message.direction == Direction::Out && self.typing_ends.is_some() {
                self.stop_typing();
            }
        }
        Some(())
    }

    /// Tells the client typing stopped.
    fn stop_typing(&mut self) {
        self.typing_ends = None;
        self.ready
            .push_back(Event::default().event("typing").data(json!({ "typing": false }).to_string()));
    }

    fn take(&mut self, event: &HubEvent) {
        if !event.is_for(&self.appid, &self.openid) {
            return;
        }
        match event {
            HubEvent::Message { seq, .. } => self.catch_up |= *seq > self.after,
            HubEvent::Typing { typing, until_ms, .. } => {
                let mut data = json!({ "typing": typing });
                self.typing_ends = None;
                if let (true, Some(until_ms)) = (*typing, until_ms) {
                    let left_ms = (until_ms - self.souk.now_ms()).max(0);
                    data["expires_in"] = json!((left_ms + 999) / 1000);
                    self.typing_ends = Some(tokio::time::Instant::now() + Duration::from_millis(left_ms.unsigned_abs()));
                }
                self.ready.push_back(Event::default().event("typing").data(data.to_string()));
            }
        }
    }
}
