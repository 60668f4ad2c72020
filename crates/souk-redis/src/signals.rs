//! Cross-node signals over Redis pub/sub: the `souk_core::signals::SignalBus` role.
//!
//! **Publishing** is one `PUBLISH` on the shared [`RedisConnection`] (breaker and timeout included),
//! awaited before the admin or token call that made the change answers, so by the time a client
//! hears "done", Redis has handed the signal to every subscribed node.
//!
//! **Subscribing** holds one dedicated pub/sub connection per process (a subscribed RESP2
//! connection can do nothing else). It says [`BusEvent::Resync`] each time it subscribes, since
//! pub/sub keeps nothing for a node that was away; it `PING`s every [`HEARTBEAT`] and starts over
//! when the ping fails or goes unanswered for [`PING_TIMEOUT`] (a silent network path never closes
//! the socket by itself), and it reconnects with a backoff of 100 ms doubling to 2 s while Redis is
//! down. A message that does not parse (a newer node's signal) is treated as a resync: forgetting
//! caches is always safe.
//!
//! Messages are `{"node": "<sender>", "signal": <Signal>}` on `<key_prefix>signals`; a node skips
//! its own, which it applied before publishing.

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use rand::Rng;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use souk_core::signals::{BusEvent, Signal, SignalBus};
use tokio::sync::mpsc;

use crate::connection::RedisConnection;

/// How often an idle subscription is checked.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a subscription's ping may take before the connection is replaced.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Events a slow listener may fall behind by; past it the listener is told to resync instead.
const QUEUE: usize = 1024;

/// Signals between the nodes sharing one Redis (and key prefix).
#[derive(Debug, Clone)]
pub struct RedisSignals {
    connection: RedisConnection,
    channel: String,
    /// This process, so that it skips its own signals.
    node: String,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    node: String,
    signal: Signal,
}

impl RedisSignals {
    /// Signals on the shared connection (the subscription opens its own connection to the same server).
    pub fn new(connection: RedisConnection) -> Self {
        let node = hex_id(rand::rng().random());
        RedisSignals {
            channel: connection.key("signals"),
            connection,
            node,
        }
    }

    /// The channel signals travel on.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

fn hex_id(bits: u64) -> String {
    format!("{bits:016x}")
}

#[async_trait]
impl SignalBus for RedisSignals {
    async fn publish(&self, signal: &Signal) {
        let envelope = Envelope {
            node: self.node.clone(),
            signal: signal.clone(),
        };
        let payload = match serde_json::to_string(&envelope) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::error!(error = %err, "cannot encode a signal");
                return;
            }
        };
        let channel = self.channel.clone();
        let sent = self
            .connection
            .run(|mut connection| async move { connection.publish::<_, _, i64>(channel, payload).await })
            .await;
        if sent.is_err() {
            // The breaker has logged the failure; other nodes see the change when their cached entry
            // ages out, or forget everything when their subscription comes back.
            tracing::warn!(?signal, "signal not sent to other nodes (redis unavailable)");
        }
    }

    fn subscribe(&self) -> BoxStream<'static, BusEvent> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(subscription(
            self.connection.clone(),
            self.channel.clone(),
            self.node.clone(),
            sender,
        ));
        futures::stream::unfold(receiver, |mut receiver| async move {
            let event = receiver.recv().await?;
            Some((event, receiver))
        })
        .boxed()
    }
}

/// Keeps one subscription alive for as long as `events` has a listener.
async fn subscription(connection: RedisConnection, channel: String, node: String, events: mpsc::Sender<BusEvent>) {
    let mut backoff = FIRST_BACKOFF;
    let mut was_down = false;
    loop {
        let connect_timeout = connection.settings().connect_timeout;
        let subscribed = tokio::time::timeout(connect_timeout, async {
            let mut pubsub = connection.client().get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            redis::RedisResult::Ok(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                if was_down {
                    tracing::info!(channel, "signal subscription restored");
                }
                backoff = FIRST_BACKOFF;
                if events.send(BusEvent::Resync).await.is_err() {
                    return;
                }
                let (mut sink, mut stream) = pubsub.split();
                let mut heartbeat = tokio::time::interval(HEARTBEAT);
                heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                heartbeat.tick().await;
                let ended = loop {
                    tokio::select! {
                        message = stream.next() => {
                            let Some(message) = message else { break "the connection closed" };
                            let event = match serde_json::from_slice::<Envelope>(message.get_payload_bytes()) {
                                Ok(envelope) if envelope.node == node => continue,
                                Ok(envelope) => BusEvent::Signal(envelope.signal),
                                Err(err) => {
                                    tracing::warn!(error = %err, "unreadable signal (a newer node?); forgetting cached entries");
                                    BusEvent::Resync
                                }
                            };
                            if !deliver(&events, event) {
                                return;
                            }
                        }
                        _ = heartbeat.tick() => {
                            match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                                Ok(Ok(_)) => {}
                                Ok(Err(_)) => break "a ping failed",
                                Err(_) => break "a ping went unanswered",
                            }
                        }
                        () = events.closed() => return,
                    }
                };
                tracing::warn!(channel, reason = ended, "signal subscription lost; reconnecting");
                was_down = true;
            }
            Ok(Err(err)) => {
                if !was_down {
                    tracing::warn!(channel, error = %err, "cannot subscribe to signals; retrying");
                }
                was_down = true;
            }
            Err(_) => {
                if !was_down {
                    tracing::warn!(channel, "cannot subscribe to signals (no answer); retrying");
                }
                was_down = true;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = events.closed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Hands an event over without waiting: a listener that has fallen [`QUEUE`] events behind gets a
/// resync instead of the rest (it would forget its caches anyway). `false` once nobody listens.
fn deliver(events: &mpsc::Sender<BusEvent>, event: BusEvent) -> bool {
    match events.try_send(event) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Closed(_)) => false,
        Err(mpsc::error::TrySendError::Full(_)) => {
            // This event is dropped; the resync queued once there is room forgets every cached
            // entry, which covers any eviction dropped meanwhile.
            let events = events.clone();
            tokio::spawn(async move {
                let _ = events.send(BusEvent::Resync).await;
            });
            true
        }
    }
}
