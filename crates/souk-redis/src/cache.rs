//! [`RedisResponseCache`]: the cloud gateway's response cache (`souk_core::cloud::ResponseCache`)
//! shared by every node through Redis, with a small in-process first level.
//!
//! **Two levels.** A read tries this process's [`LocalResponseCache`] (1,000 entries, 8 MiB), then
//! Redis: one `GET` of `<key_prefix>cache:<hex key>`, copied into the first level on a hit. A put
//! writes both: one round trip (`SET … PX <ms left>` and the `DEL` of the fill lease, pipelined). An
//! entry never changes until it expires and nothing purges entries (no admin operation does), so the
//! first level keeps an entry until the entry's own expiry and needs no invalidation. Values are
//! compact JSON arrays (`[1, expires_at_ms, success, error_code, error_message, data]`); one that does
//! not decode is a miss, logged.
//!
//! **Single-flight across nodes.** The gateway already makes one call per key per process; before
//! that call, [`begin_fill`](ResponseCache::begin_fill) runs `cache_fill.lua`: the entry if it is
//! there, else a lease `<entry key>:fill` taken with `SET NX PX <lease>` (the bound of the whole
//! upstream call). The node that gets the lease calls the upstream; a node that finds it held polls
//! the same script (5 ms, doubling to 50 ms) until the entry appears (a hit), the lease is its own
//! (the holder gave up or died: this node calls), or the lease's time has passed (it calls anyway).
//! A fill that ends without an entry (a failure, `success: false`) drops its lease at once
//! (`cache_release.lua`, only if still this node's) so the next waiter takes over; a dead node's
//! lease lapses by itself.
//!
//! **While Redis fails** every call is bounded by the connection's timeout, and once the breaker is
//! open Redis is not called at all: a read is answered by the first level alone (a miss at once
//! otherwise), a put is kept in the first level only, and a fill calls the upstream without waiting.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use souk_core::cloud::cache::LocalResponseCache;
use souk_core::cloud::{CachedEnvelope, CloudEnvelope, FillStart, ResponseCache};
use tokio::time::Instant;

use crate::connection::{millis, RedisConnection, RedisSettings, RedisSetupError};

/// Entries the first level keeps at most.
const LOCAL_MAX_ENTRIES: usize = 1_000;
/// Bytes the first level keeps at most (roughly).
const LOCAL_MAX_BYTES: usize = 8 * 1024 * 1024;
/// The first pause of a node waiting for another's fill; it doubles up to [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(50);
/// The first element of a stored value: its layout.
const VALUE_FORMAT: u8 = 1;

/// The gateway's response cache on Redis, with an in-process first level.
pub struct RedisResponseCache {
    connection: RedisConnection,
    local: LocalResponseCache,
    fill_script: redis::Script,
    release_script: redis::Script,
    /// `<key_prefix>cache:`.
    prefix: String,
    /// This instance's lease token: the gateway makes one fill per key per process, so a token per
    /// process tells a lease that is still ours from one another node took after ours lapsed.
    token: String,
}

impl std::fmt::Debug for RedisResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisResponseCache")
            .field("connection", &self.connection)
            .field("local_entries", &self.local.len())
            .finish_non_exhaustive()
    }
}

/// What `cache_fill.lua` found.
enum Found {
    Entry(Vec<u8>),
    LeaseTaken,
    LeaseHeld,
}

impl RedisResponseCache {
    /// A cache with a connection of its own (see [`RedisConnection::connect`]): fails only on a
    /// malformed URL.
    pub async fn connect(url: &str, settings: RedisSettings) -> Result<Self, RedisSetupError> {
        Ok(Self::new(RedisConnection::connect(url, settings).await?))
    }

    /// A cache on a shared connection (the rate limiter's, typically).
    pub fn new(connection: RedisConnection) -> Self {
        Self {
            prefix: connection.key("cache:"),
            connection,
            local: LocalResponseCache::new(LOCAL_MAX_ENTRIES, LOCAL_MAX_BYTES),
            fill_script: redis::Script::new(include_str!("cache_fill.lua")),
            release_script: redis::Script::new(include_str!("cache_release.lua")),
            token: format!("{:016x}", rand::random::<u64>()),
        }
    }

    /// Whether the circuit breaker is open: Redis is failing and the cache is bypassed.
    pub fn is_breaker_open(&self) -> bool {
        self.connection.is_breaker_open()
    }

    /// Entries in the in-process first level (expired ones not yet evicted included).
    pub fn local_len(&self) -> usize {
        self.local.len()
    }

    fn entry_key(&self, key: &[u8; 32]) -> String {
        let mut text = String::with_capacity(self.prefix.len() + 64);
        text.push_str(&self.prefix);
        for byte in key {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        text
    }

    fn lease_key(&self, key: &[u8; 32]) -> String {
        let mut text = self.entry_key(key);
        text.push_str(":fill");
        text
    }

    /// One run of `cache_fill.lua`.
    async fn try_fill(&self, key: &[u8; 32], lease: Duration) -> Option<Found> {
        let mut invocation = self.fill_script.prepare_invoke();
        invocation
            .key(self.entry_key(key))
            .key(self.lease_key(key))
            .arg(&self.token)
            .arg(millis(lease).max(1));
        let (state, entry): (i64, Option<Vec<u8>>) = self
            .connection
            .run(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await
            .ok()?;
        match (state, entry) {
            (1, Some(entry)) => Some(Found::Entry(entry)),
            (2, _) => Some(Found::LeaseTaken),
            (3, _) => Some(Found::LeaseHeld),
            (state, _) => {
                tracing::warn!(state, "unexpected answer of the cache fill script");
                None
            }
        }
    }

    /// A stored value read at `now_ms`: the entry if it decodes and has not expired (then also kept
    /// in the first level).
    async fn accept(&self, key: &[u8; 32], value: &[u8], now_ms: i64) -> Option<CachedEnvelope> {
        let Some(entry) = decode(value) else {
            tracing::warn!(bytes = value.len(), "a cached response in redis does not decode; treated as a miss");
            return None;
        };
        if entry.expires_at_ms <= now_ms {
            return None;
        }
        self.local.put(*key, entry.clone(), now_ms).await;
        Some(entry)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn encode(entry: &CachedEnvelope) -> Option<Vec<u8>> {
    let envelope = &entry.envelope;
    let value = (
        VALUE_FORMAT,
        entry.expires_at_ms,
        envelope.success,
        &envelope.error_code,
        &envelope.error_message,
        &envelope.data,
    );
    serde_json::to_vec(&value).ok()
}

type Stored = (u8, i64, bool, Option<String>, Option<String>, Value);

fn decode(bytes: &[u8]) -> Option<CachedEnvelope> {
    let (format, expires_at_ms, success, error_code, error_message, data): Stored = serde_json::from_slice(bytes).ok()?;
    (format == VALUE_FORMAT).then_some(CachedEnvelope {
        envelope: CloudEnvelope {
            success,
            data,
            error_code,
            error_message,
        },
        expires_at_ms,
    })
}

fn elapsed_ms(since: Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl ResponseCache for RedisResponseCache {
    async fn get(&self, key: &[u8; 32], now_ms: i64) -> Option<CachedEnvelope> {
        if let Some(hit) = self.local.get(key, now_ms).await {
            return Some(hit);
        }
        let entry_key = self.entry_key(key);
        let value: Option<Vec<u8>> = self
            .connection
            .run(|mut connection| async move { redis::cmd("GET").arg(entry_key).query_async(&mut connection).await })
            .await
            .ok()?;
        self.accept(key, &value?, now_ms).await
    }

    async fn put(&self, key: [u8; 32], entry: CachedEnvelope, now_ms: i64) {
        let Ok(ttl_ms @ 1..) = u64::try_from(entry.expires_at_ms.saturating_sub(now_ms)) else {
            return;
        };
        let Some(value) = encode(&entry) else {
            tracing::warn!("a cloud response cannot be encoded for redis; kept in this process only");
            self.local.put(key, entry, now_ms).await;
            return;
        };
        self.local.put(key, entry, now_ms).await;
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.entry_key(&key))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .cmd("DEL")
            .arg(self.lease_key(&key))
            .ignore();
        // A failure is logged by the breaker; the entry stays in this process.
        let _ = self
            .connection
            .run(|mut connection| async move { pipe.query_async::<()>(&mut connection).await })
            .await;
    }

    async fn begin_fill(&self, key: &[u8; 32], now_ms: i64, lease: Duration) -> FillStart {
        if let Some(hit) = self.local.get(key, now_ms).await {
            return FillStart::Filled(hit);
        }
        let started = Instant::now();
        let mut pause = POLL_FIRST;
        loop {
            match self.try_fill(key, lease).await {
                // Redis failed (the caller calls without a lease) or the lease is ours.
                None | Some(Found::LeaseTaken) => return FillStart::Call,
                Some(Found::Entry(value)) => {
                    let now_ms = now_ms.saturating_add(elapsed_ms(started));
                    return match self.accept(key, &value, now_ms).await {
                        Some(hit) => FillStart::Filled(hit),
                        None => FillStart::Call,
                    };
                }
                Some(Found::LeaseHeld) => {}
            }
            if started.elapsed() + pause > lease {
                tracing::debug!(
                    lease_ms = millis(lease),
                    "another node's cache fill outlasted its lease; calling the upstream here"
                );
                return FillStart::Call;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    async fn abandon_fill(&self, key: &[u8; 32]) {
        let mut invocation = self.release_script.prepare_invoke();
        invocation.key(self.lease_key(key)).arg(&self.token);
        // A lease that cannot be dropped lapses by itself.
        let _ = self
            .connection
            .run(|mut connection| async move { invocation.invoke_async::<i64>(&mut connection).await })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_round_trip_and_foreign_ones_are_refused() {
        let entry = CachedEnvelope {
            envelope: CloudEnvelope {
                success: true,
                data: json!({"a": [1, "two", null], "b": 1.5}),
                error_code: None,
                error_message: Some("note".into()),
            },
            expires_at_ms: 1_700_000_000_123,
        };
        let bytes = encode(&entry).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"[1,1700000000123,true,null,"note",{"a":[1,"two",null],"b":1.5}]"#
        );
        assert_eq!(decode(&bytes), Some(entry));
        for foreign in [&b"[2,1,true,null,null,1]"[..], b"{}", b"", b"[1,1,true]", b"\xff"] {
            assert_eq!(decode(foreign), None, "{}", String::from_utf8_lossy(foreign));
        }
    }
}
