//! The in-process signal of new messages and typing changes: client streams (`messages/stream`)
//! subscribe to it and read the store for what they missed, and the push loop waits on it.
//!
//! It carries no message content, only "conversation X has a message numbered N", so a stream that
//! lags behind (the channel is bounded) or reconnects loses nothing: it reads the store from the last
//! sequence number it sent. Typing states are the exception: they are not stored, and a client that
//! is away when one starts does not see it (by design: a stale "typing..." is worse than none).
//! With several nodes, events cross them as cluster signals (`crate::signals`), so a stream hears of
//! a message sent through another node at once; if a signal is lost, the stream still finds the
//! message at its next store poll (`STREAM_POLL`, in the server): the store remains the truth.

use std::sync::Arc;

use tokio::sync::{broadcast, watch, Notify};

/// Events kept for slow streams before they lag (and catch up from the store).
const CAPACITY: usize = 1024;

/// What happened in a conversation. It crosses nodes as it is (`crate::signals::Signal::Conversation`),
/// so its JSON shape is part of the cluster's signal wire shape.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HubEvent {
    /// A message numbered `seq` was stored.
    Message {
        /// The app.
        appid: String,
        /// The user.
        openid: String,
        /// Its sequence number.
        seq: i64,
    },
    /// The app started or stopped typing.
    Typing {
        /// The app.
        appid: String,
        /// The user.
        openid: String,
        /// `true`: typing until `until_ms`; `false`: stopped.
        typing: bool,
        /// End of the typing state.
        until_ms: Option<i64>,
    },
}

impl HubEvent {
    /// Whether the event is about this conversation.
    pub fn is_for(&self, appid: &str, openid: &str) -> bool {
        let (a, o) = match self {
            HubEvent::Message { appid, openid, .. } | HubEvent::Typing { appid, openid, .. } => (appid, openid),
        };
        a == appid && o == openid
    }
}

/// The signal: a bounded broadcast of [`HubEvent`]s and the push loop's wake-up.
#[derive(Debug)]
pub struct MessageHub {
    events: broadcast::Sender<Arc<HubEvent>>,
    pub(crate) pushes: Notify,
    closing: watch::Sender<bool>,
}

impl Default for MessageHub {
    fn default() -> Self {
        MessageHub {
            events: broadcast::channel(CAPACITY).0,
            pushes: Notify::new(),
            closing: watch::channel(false).0,
        }
    }
}

impl MessageHub {
    /// A new listener of every conversation's events (filter with [`HubEvent::is_for`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        self.events.subscribe()
    }

    /// Becomes `true` when souk shuts down: streams end then.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Tells every stream to end.
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Tells listeners; no listener is fine.
    pub(crate) fn publish(&self, event: HubEvent) {
        let _ = self.events.send(Arc::new(event));
    }
}
