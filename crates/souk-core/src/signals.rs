//! Cross-node signals: what one node changed that every other node must hear about at once, so
//! several souk nodes behave as one platform.
//!
//! Two kinds travel:
//! - **Cache evictions.** A node that changes an app, a service, an API, a cloud app, or supersedes
//!   a token family or revokes client sessions evicts its own cached entry and tells the others,
//!   which evict theirs. A disabled app or a force-refreshed stable token is then refused on every
//!   node within the signal's round trip, not after the caches' TTL.
//! - **Conversation events** (customer-service messages and typing states), so a client's message
//!   stream on one node hears of a message sent through another at once. Typing states are not
//!   stored, so without this they would never cross nodes.
//!
//! A [`SignalBus`] carries them (Redis pub/sub in `souk-redis`; none on a single node). Delivery is
//! at most once: a node whose subscription broke may have missed signals, so when it subscribes again
//! the bus says [`BusEvent::Resync`] and the node forgets every cached entry. A signal lost while the
//! bus is down altogether is bounded by the caches' TTL (`crate::souk::CACHE_TTL_MS`).

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::messages::hub::HubEvent;
use crate::model::TokenKind;
use crate::Souk;

/// One change every node must hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// An app was created, changed, disabled or its secret rotated.
    App {
        /// The app.
        appid: String,
    },
    /// A service was created or changed.
    Service {
        /// The service.
        service_id: String,
    },
    /// An API was created, changed or deleted.
    Api {
        /// Its service.
        service_id: String,
        /// Its name.
        name: String,
    },
    /// A token issue superseded an app's tokens of one family.
    Tokens {
        /// The app.
        appid: String,
        /// `true`: the stable-token family; `false`: `/cgi-bin/token`'s.
        stable: bool,
    },
    /// An app's client sessions were revoked.
    Sessions {
        /// The app.
        appid: String,
    },
    /// A cloud app was created or changed.
    CloudApp {
        /// The cloud app.
        cloud_app_id: String,
    },
    /// A customer-service message was stored, or the app started or stopped typing: the
    /// conversation's event, in its own shape (`"kind": "message"` or `"typing"`).
    #[serde(untagged)]
    Conversation(HubEvent),
}

impl Signal {
    /// The eviction of a token family.
    pub(crate) fn tokens(appid: &str, kind: TokenKind) -> Signal {
        Signal::Tokens {
            appid: appid.to_owned(),
            stable: kind == TokenKind::Stable,
        }
    }
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// Another node's signal.
    Signal(Signal),
    /// The subscription (re)started: signals may have been missed, so forget every cached entry.
    Resync,
}

/// Carries [`Signal`]s between nodes.
#[async_trait]
pub trait SignalBus: Send + Sync + 'static {
    /// Tells the other nodes. Bounded in time; a failure is logged by the bus, never returned: the
    /// change itself is already durable, and the caches' TTL bounds what a lost signal costs.
    async fn publish(&self, signal: &Signal);

    /// Every other node's signals, from now on, for as long as the stream is held. The stream
    /// reconnects by itself and yields [`BusEvent::Resync`] each time it (re)subscribes; it never
    /// yields this node's own signals.
    fn subscribe(&self) -> BoxStream<'static, BusEvent>;
}

impl Souk {
    /// Shares cache evictions and conversation events with other nodes through `bus` (call
    /// [`Souk::start_signal_listener`] too, to hear theirs).
    #[must_use]
    pub fn with_signals(mut self, bus: Arc<dyn SignalBus>) -> Self {
        self.signals = Some(bus);
        self
    }

    /// Starts applying other nodes' signals; `None` without a bus. The task holds the domain weakly
    /// and ends with it.
    pub fn start_signal_listener(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let mut events = self.signals.as_ref()?.subscribe();
        let souk: Weak<Souk> = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let Some(souk) = souk.upgrade() else { break };
                match event {
                    BusEvent::Signal(signal) => souk.apply_signal(&signal),
                    BusEvent::Resync => souk.forget_cached(),
                }
            }
        }))
    }

    /// Applies a change here and tells the other nodes (after the change is durable).
    pub(crate) async fn signal(&self, signal: Signal) {
        self.apply_signal(&signal);
        if let Some(bus) = &self.signals {
            bus.publish(&signal).await;
        }
    }

    /// What a signal means on this node.
    fn apply_signal(&self, signal: &Signal) {
        match signal {
            Signal::App { appid } => self.apps.remove(appid),
            Signal::Service { service_id } => self.services.remove(service_id),
            Signal::Api { service_id, name } => self.apis.remove(&(service_id.clone(), name.clone())),
            Signal::Tokens { appid, stable } => {
                let kind = if *stable { TokenKind::Stable } else { TokenKind::Plain };
                self.tokens.remove_where(|record| record.appid == *appid && record.kind == kind);
            }
            Signal::Sessions { appid } => self.sessions.remove_where(|session| session.appid == *appid),
            Signal::CloudApp { cloud_app_id } => self.cloud.cloud_apps.remove(cloud_app_id),
            Signal::Conversation(event) => self.messages.publish(event.clone()),
        }
    }

    /// Forgets every cached registry, token, session and cloud-app entry.
    fn forget_cached(&self) {
        self.apps.clear();
        self.services.clear();
        self.apis.clear();
        self.tokens.clear();
        self.sessions.clear();
        self.cloud.cloud_apps.clear();
    }
}

#[cfg(test)]
#[path = "signals_tests.rs"]
mod tests;
