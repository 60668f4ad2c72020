//! Caching of upstream successes (`cloud-gateway.md` §2, `exts.cacheType`/`cacheTime`): the key, the
//! in-process [`ResponseCache`], and single-flight (concurrent misses for one key make one upstream
//! call).
//!
//! **The key** is SHA-256 over length-prefixed parts: a version label, the cache type, then by type
//! who shares the entry (0: app, cloud app and user; 1: app and cloud app; 2: user; 3: nobody), then
//! the request: method, normalised origin, path, the caller's parameters without context names sorted
//! by name and value, and the body bytes. Every part carries its length, so no path or parameter can
//! be crafted to read as another split (`path="/a", params {b: "c"}` is not `path="/a?b=c"`), and the
//! sharer parts come first at fixed positions, so no request can reach another app's or user's entry.
//! The cloud app is part of the key for types 0 and 1 (its `app_key`, `env` and secret change what the
//! upstream sees); types 2 and 3 are shared across apps by definition, and an entry of a type is only
//! ever written by a caller who asked for that type.
//!
//! **Single-flight** in a process: the first miss spawns the upstream call as a task; identical calls
//! arriving meanwhile await the same task and get the same outcome, failures included. The task runs
//! to its deadline even if every caller left, and its answer is cached if it succeeded. Failures are
//! never kept: the next call after the task ends tries again. Across nodes, the task asks the cache
//! first ([`ResponseCache::begin_fill`]): a shared cache (Redis) lets one node's task call while the
//! others' wait for its entry, and the in-process cache just reads again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt, Shared};
use sha2::{Digest, Sha256};
use souk_types::cloud::{CacheType, CloudRequest};
use souk_types::Code;

use super::context::caller_params;
use super::{CachedEnvelope, CloudApp, CloudCaller, CloudEnvelope, ResponseCache};
use crate::error::Failure;

/// The cache key of a request (see the module docs). `caller.openid` is `None` only for types that
/// do not name the user (the gateway refuses the others first); it is still told apart from any
/// openid.
pub fn cache_key(cache_type: CacheType, cloud_app: &CloudApp, caller: &CloudCaller, request: &CloudRequest) -> [u8; 32] {
    let mut key = KeyHasher(Sha256::new());
    key.part(b"souk.cloud.cache.v1");
    key.part(&[cache_type.number()]);
    let openid = |key: &mut KeyHasher| match caller.openid.as_deref() {
        Some(openid) => {
            key.part(b"user");
            key.part(openid.as_bytes());
        }
        None => key.part(b"no user"),
    };
    match cache_type {
        CacheType::AppUser => {
            key.part(caller.appid.as_bytes());
            key.part(cloud_app.cloud_app_id.as_bytes());
            openid(&mut key);
        }
        CacheType::App => {
            key.part(caller.appid.as_bytes());
            key.part(cloud_app.cloud_app_id.as_bytes());
        }
        CacheType::User => openid(&mut key),
        CacheType::Global => {}
    }
    key.part(request.method.as_str().as_bytes());
    key.part(request.exts.domain.as_bytes());
    key.part(request.path.as_bytes());
    let mut params: Vec<&(String, String)> = caller_params(request).collect();
    params.sort_unstable();
    key.part(&(params.len() as u64).to_be_bytes());
    for (name, value) in params {
        key.part(name.as_bytes());
        key.part(value.as_bytes());
    }
    match &request.body {
        Some(body) => {
            key.part(b"body");
            key.part(body);
        }
        None => key.part(b"no body"),
    }
    key.0.finalize().into()
}

struct KeyHasher(Sha256);

impl KeyHasher {
    fn part(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }
}

/// Entries the in-process cache keeps at most, by default.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// Bytes (roughly: serialized envelopes) the in-process cache keeps at most, by default.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The in-process [`ResponseCache`]: bounded by entries and by bytes; when full, the entries expiring
/// soonest (expired ones first) are evicted. An entry larger than an eighth of the byte bound is not
/// kept.
#[derive(Debug)]
pub struct LocalResponseCache {
    state: Mutex<LocalState>,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct LocalState {
    entries: HashMap<[u8; 32], (CachedEnvelope, usize)>,
    bytes: usize,
}

impl Default for LocalResponseCache {
    fn default() -> Self {
        LocalResponseCache::new(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    }
}

impl LocalResponseCache {
    /// A cache of at most `max_entries` entries and about `max_bytes` bytes.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        LocalResponseCache {
            state: Mutex::new(LocalState::default()),
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    /// Entries held (expired ones not yet evicted included).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LocalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn entry_size(envelope: &CloudEnvelope) -> usize {
    let data = serde_json::to_vec(&envelope.data).map_or(0, |bytes| bytes.len());
    data + envelope.error_code.as_ref().map_or(0, String::len) + envelope.error_message.as_ref().map_or(0, String::len) + 64
}

#[async_trait]
impl ResponseCache for LocalResponseCache {
    async fn get(&self, key: &[u8; 32], now_ms: i64) -> Option<CachedEnvelope> {
        let mut state = self.lock();
        let (entry, size) = state.entries.get(key)?;
        if entry.expires_at_ms > now_ms {
            return Some(entry.clone());
        }
        let size = *size;
        state.entries.remove(key);
        state.bytes -= size;
        None
    }

    async fn put(&self, key: [u8; 32], entry: CachedEnvelope, now_ms: i64) {
        if entry.expires_at_ms <= now_ms {
            return;
        }
        let size = entry_size(&entry.envelope);
        if size > self.max_bytes / 8 {
            return;
        }
        let mut state = self.lock();
        if let Some((_, old)) = state.entries.insert(key, (entry, size)) {
            state.bytes -= old;
        }
        state.bytes += size;
        if state.entries.len() > self.max_entries || state.bytes > self.max_bytes {
            // Evict down to 90% at once, so a full cache does not sort on every put.
            let target_entries = self.max_entries - self.max_entries / 10;
            let target_bytes = self.max_bytes - self.max_bytes / 10;
            let mut by_expiry: Vec<([u8; 32], i64, usize)> = state
                .entries
                .iter()
                .map(|(key, (entry, size))| (*key, entry.expires_at_ms, *size))
                .collect();
            by_expiry.sort_unstable_by_key(|(_, expires_at_ms, _)| *expires_at_ms);
            for (key, _, size) in by_expiry {
                if state.entries.len() <= target_entries && state.bytes <= target_bytes {
                    break;
                }
                state.entries.remove(&key);
                state.bytes -= size;
            }
        }
    }
}

/// What an upstream call (or a cache read standing in for it) ends with: the envelope or the
/// failure, and whether it came from the cache.
pub(crate) type FlightResult = (Result<CloudEnvelope, Failure>, bool);

type Flight = Shared<BoxFuture<'static, FlightResult>>;

/// Calls in flight by cache key: concurrent identical calls share one.
#[derive(Default)]
pub(crate) struct SingleFlight {
    calls: Arc<Mutex<HashMap<[u8; 32], Flight>>>,
}

impl std::fmt::Debug for SingleFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let in_flight = self.calls.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("SingleFlight").field("in_flight", &in_flight).finish()
    }
}

/// Forgets a flight when its task ends (or panics).
struct Landing {
    calls: Arc<Mutex<HashMap<[u8; 32], Flight>>>,
    key: [u8; 32],
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
    }
}

impl SingleFlight {
    /// Joins the call in flight for `key`, or spawns `call` as that call. Answers its result and
    /// whether this caller joined another's call (rather than starting it).
    pub(crate) async fn run<F>(&self, key: [u8; 32], call: F) -> (FlightResult, bool)
    where
        F: Future<Output = FlightResult> + Send + 'static,
    {
        let (flight, joined) = {
            let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
            match calls.get(&key) {
                Some(flight) => (flight.clone(), true),
                None => {
                    let landing = Landing {
                        calls: Arc::clone(&self.calls),
                        key,
                    };
                    // The flight is in the map before the lock is released, and the task's `Landing`
                    // takes the same lock to leave it: it can never remove an entry not yet there.
                    let task = tokio::spawn(async move {
                        let _landing = landing;
                        call.await
                    });
                    let flight = async move {
                        task.await.unwrap_or_else(|err| {
                            tracing::error!(error = %err, "cloud upstream call task failed");
                            (Err(Failure::new(Code::SystemError, "the upstream call was lost")), false)
                        })
                    }
                    .boxed()
                    .shared();
                    calls.insert(key, flight.clone());
                    (flight, false)
                }
            }
        };
        (flight.await, joined)
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
