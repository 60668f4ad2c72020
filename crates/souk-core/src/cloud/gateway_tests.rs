//! Tests of the cached call: single-flight, expiry on a `ManualClock`, what is (not) kept, and the
//! deadline guard. Tokio's clock is paused, so the transport's "slow" answers take no real time.
//! (`Souk::http_request` end to end, with its store lookups, is tested in
//! `souk-store/tests/cloud_gateway.rs` on real backends.)

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::future::join_all;
use serde_json::json;
use souk_types::cloud::CloudMethod;

use super::*;
use crate::clock::ManualClock;

/// A transport that counts calls and answers `body` with `status` after `delay`.
struct Counting {
    calls: AtomicUsize,
    status: u16,
    body: String,
    delay: Duration,
}

impl Counting {
    fn new(status: u16, body: serde_json::Value, delay_ms: u64) -> Arc<Self> {
        Arc::new(Counting {
            calls: AtomicUsize::new(0),
            status,
            body: body.to_string(),
            delay: Duration::from_millis(delay_ms),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CloudTransport for Counting {
    async fn send(&self, _request: super::super::UpstreamRequest) -> UpstreamReply {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        UpstreamReply::Answered {
            status: self.status,
            body: self.body.clone().into_bytes(),
        }
    }
}

fn upstream() -> super::super::UpstreamRequest {
    super::super::UpstreamRequest {
        method: CloudMethod::Get,
        origin: "https://a.example".into(),
        url: "https://a.example/a?sign=x".into(),
        headers: Vec::new(),
        body: None,
        timeout: Duration::from_millis(3000),
    }
}

struct Rig {
    transport: Arc<Counting>,
    cache: Arc<LocalResponseCache>,
    clock: Arc<ManualClock>,
    flights: SingleFlight,
}

impl Rig {
    fn new(transport: Arc<Counting>) -> Self {
        Rig {
            transport,
            cache: Arc::new(LocalResponseCache::default()),
            clock: Arc::new(ManualClock::new(1_000_000)),
            flights: SingleFlight::default(),
        }
    }

    /// One gateway call for `key` with a 60 s cache time, as `Souk::http_request` makes it after a miss.
    async fn call(&self, key: [u8; 32]) -> (FlightResult, bool) {
        let transport: Arc<dyn CloudTransport> = self.transport.clone();
        let call = upstream_call(transport, upstream(), 3000);
        let flight = cached_call(self.cache.clone(), self.clock.clone(), key, 60_000, call, 3000);
        self.flights.run(key, flight).await
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_make_one_upstream_call() {
    let rig = Rig::new(Counting::new(200, json!({"success": true, "data": {"n": 1}}), 1_000));
    let outcomes = join_all((0..50).map(|_| rig.call([7; 32]))).await;
    assert_eq!(rig.transport.calls(), 1, "50 identical calls, one upstream call");
    assert_eq!(outcomes.iter().filter(|(_, joined)| !joined).count(), 1, "one leader");
    for ((result, from_cache), _) in &outcomes {
        assert_eq!(result.as_ref().unwrap().data, json!({"n": 1}), "every waiter gets the same outcome");
        assert!(!from_cache);
    }
    assert_eq!(
        format!("{:?}", rig.flights),
        "SingleFlight { in_flight: 0 }",
        "a landed flight is forgotten"
    );

    // Cached for 60 s of the injected clock: the task reads the cache before calling.
    let ((result, from_cache), joined) = rig.call([7; 32]).await;
    assert!(result.is_ok() && from_cache && !joined);
    assert_eq!(rig.transport.calls(), 1);
    rig.clock.advance_ms(59_999);
    assert!(rig.call([7; 32]).await.0 .1, "still cached");
    rig.clock.advance_ms(1);
    let ((_, from_cache), _) = rig.call([7; 32]).await;
    assert!(!from_cache, "expired at cacheTime");
    assert_eq!(rig.transport.calls(), 2);
    // Another key is another call.
    assert!(rig.call([8; 32]).await.0 .0.is_ok());
    assert_eq!(rig.transport.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn failures_are_shared_in_flight_only() {
    let rig = Rig::new(Counting::new(500, json!({"success": true, "data": 1}), 1_000));
    let outcomes = join_all((0..10).map(|_| rig.call([1; 32]))).await;
    assert_eq!(rig.transport.calls(), 1);
    for ((result, _), _) in outcomes {
        assert_eq!(result.unwrap_err().code, Code::CloudUpstreamHttpStatus);
    }
    let ((result, _), _) = rig.call([1; 32]).await;
    assert!(result.is_err());
    assert_eq!(rig.transport.calls(), 2, "a failure is not cached");
}

#[tokio::test(start_paused = true)]
async fn only_successes_are_cached() {
    let rig = Rig::new(Counting::new(
        200,
        json!({"success": false, "errorCode": "E", "errorMessage": "no"}),
        10,
    ));
    let ((result, _), _) = rig.call([2; 32]).await;
    let envelope = result.unwrap();
    assert!(!envelope.success, "success: false is an envelope, not a gateway failure");
    assert_eq!(envelope.error_code.as_deref(), Some("E"));
    assert!(rig.call([2; 32]).await.0 .0.is_ok());
    assert_eq!(rig.transport.calls(), 2, "success: false is not cached");
}

#[tokio::test(start_paused = true)]
async fn a_flight_lands_even_if_its_callers_leave() {
    let rig = Rig::new(Counting::new(200, json!({"success": true, "data": "kept"}), 1_000));
    let gave_up = tokio::time::timeout(Duration::from_millis(10), rig.call([3; 32])).await;
    assert!(gave_up.is_err(), "the caller left before the answer");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ((result, from_cache), _) = rig.call([3; 32]).await;
    assert_eq!(result.unwrap().data, json!("kept"));
    assert!(from_cache, "the abandoned call still filled the cache");
    assert_eq!(rig.transport.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_transport_that_overruns_its_deadline_is_cut_off() {
    let transport: Arc<dyn CloudTransport> = Counting::new(200, json!({"success": true, "data": 1}), 60_000);
    let started = tokio::time::Instant::now();
    let reply = upstream_call(transport, upstream(), 100).await;
    assert_eq!(reply, UpstreamReply::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(read_reply(reply, 100).unwrap_err().code, Code::CloudUpstreamTimeout);
}

/// The in-process cache, recording the fill steps the gateway takes (a shared cache relies on them).
#[derive(Default)]
struct StepLog {
    inner: LocalResponseCache,
    steps: std::sync::Mutex<Vec<String>>,
}

impl StepLog {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.steps.lock().unwrap())
    }
}

#[async_trait]
impl ResponseCache for StepLog {
    async fn get(&self, key: &[u8; 32], now_ms: i64) -> Option<CachedEnvelope> {
        self.inner.get(key, now_ms).await
    }

    async fn put(&self, key: [u8; 32], entry: CachedEnvelope, now_ms: i64) {
        self.steps
            .lock()
            .unwrap()
            .push(format!("put for {} ms", entry.expires_at_ms - now_ms));
        self.inner.put(key, entry, now_ms).await;
    }

    async fn begin_fill(&self, key: &[u8; 32], now_ms: i64, lease: Duration) -> FillStart {
        let start = self.inner.begin_fill(key, now_ms, lease).await;
        let found = if matches!(start, FillStart::Filled(_)) { "filled" } else { "call" };
        self.steps.lock().unwrap().push(format!("begin {lease:?}: {found}"));
        start
    }

    async fn abandon_fill(&self, _key: &[u8; 32]) {
        self.steps.lock().unwrap().push("abandon".into());
    }
}

#[tokio::test(start_paused = true)]
async fn a_fill_ends_with_a_put_or_is_abandoned() {
    let clock: SharedClock = Arc::new(ManualClock::new(1_000_000));
    let cases = [
        (200, json!({"success": true, "data": 1}), "put for 60000 ms"),
        (200, json!({"success": false, "errorCode": "E"}), "abandon"),
        (500, json!({"success": true, "data": 1}), "abandon"),
    ];
    for (status, body, end) in cases {
        let cache = Arc::new(StepLog::default());
        let call = |transport: Arc<Counting>| {
            let transport: Arc<dyn CloudTransport> = transport;
            let call = upstream_call(transport, upstream(), 3000);
            cached_call(cache.clone(), clock.clone(), [1; 32], 60_000, call, 3000)
        };
        let transport = Counting::new(status, body.clone(), 10);
        let _ = call(transport.clone()).await;
        // The lease covers the whole upstream call: its timeout, the transport's grace, a margin.
        assert_eq!(cache.take(), ["begin 5s: call", end], "{status} {body}");
        let _ = call(transport.clone()).await;
        let again = if end == "abandon" { "begin 5s: call" } else { "begin 5s: filled" };
        assert_eq!(cache.take().first().map(String::as_str), Some(again), "{status} {body}");
    }
}
