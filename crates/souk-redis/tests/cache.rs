//! `RedisResponseCache` against the real Redis at `SOUK_TEST_REDIS_URL` (skipped when unset, required
//! under `CI`): two instances stand for two nodes (same key prefix, own first level and connection).
//! Also against servers that cannot answer (no Redis needed), and end to end through two `Souk`s'
//! `http_request` on one store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Value};
use souk_core::cloud::{
    CachedEnvelope, CloudCaller, CloudEnvelope, CloudTransport, FillStart, ResponseCache, UpstreamReply, UpstreamRequest,
};
use souk_core::ratelimit::RateLimiter;
use souk_redis::{RedisConnection, RedisRateLimiter, RedisResponseCache, RedisSettings};
use souk_types::admin::RateLimit;

mod common;

use common::{redis_server_url, silent_server, switchable_proxy, FORWARD};

const NOW_MS: i64 = 1_700_000_000_000;

/// Settings with a key prefix of their own, so tests run in parallel, and a generous timeout, so a
/// busy machine does not turn into bypasses.
fn settings() -> RedisSettings {
    RedisSettings {
        timeout: Duration::from_secs(5),
        key_prefix: format!("souk-test:{:016x}:", rand::random::<u64>()),
        ..RedisSettings::default()
    }
}

async fn node(url: &str, settings: &RedisSettings) -> RedisResponseCache {
    RedisResponseCache::connect(url, settings.clone()).await.expect("a valid URL")
}

fn entry(data: Value, expires_at_ms: i64) -> CachedEnvelope {
    CachedEnvelope {
        envelope: CloudEnvelope {
            success: true,
            data,
            error_code: None,
            error_message: None,
        },
        expires_at_ms,
    }
}

fn key(n: u8) -> [u8; 32] {
    let mut key = [0xab; 32];
    key[31] = n;
    key
}

fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|byte| format!("{byte:02x}")).collect()
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("url");
    client.get_multiplexed_async_connection().await.expect("redis")
}

#[tokio::test]
async fn two_nodes_share_entries_and_the_first_level_keeps_them() {
    let Some(url) = redis_server_url() else { return };
    let settings = settings();
    let (a, b) = (node(&url, &settings).await, node(&url, &settings).await);
    assert!(a.get(&key(1), NOW_MS).await.is_none());
    a.put(key(1), entry(json!({"n": 1}), NOW_MS + 60_000), NOW_MS).await;
    let hit = b.get(&key(1), NOW_MS).await.expect("filled by a, served by b");
    assert_eq!(hit, entry(json!({"n": 1}), NOW_MS + 60_000));
    assert_eq!(b.local_len(), 1, "a redis hit is kept in the first level");

    let mut redis = raw(&url).await;
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(format!("{}cache:{}", settings.key_prefix, hex(&key(1))))
        .query_async(&mut redis)
        .await
        .expect("GET");
    assert_eq!(stored, format!("[1,{},true,null,null,{{\"n\":1}}]", NOW_MS + 60_000).into_bytes());
    let _: () = redis::cmd("DEL")
        .arg(format!("{}cache:{}", settings.key_prefix, hex(&key(1))))
        .query_async(&mut redis)
        .await
        .expect("DEL");
    assert!(a.get(&key(1), NOW_MS).await.is_some(), "a's first level");
    assert!(b.get(&key(1), NOW_MS).await.is_some(), "b's first level");
    let c = node(&url, &settings).await;
    assert!(c.get(&key(1), NOW_MS).await.is_none(), "gone from redis");

    // The cost of a hit from each level, in this (debug) build, for the record.
    const N: u8 = 200;
    for n in 0..N {
        a.put(key(n), entry(json!({"n": n, "pad": "x".repeat(200)}), NOW_MS + 60_000), NOW_MS)
            .await;
    }
    let started = Instant::now();
    for n in 0..N {
        assert!(c.get(&key(n), NOW_MS).await.is_some(), "redis hit {n}");
    }
    let redis_hit = started.elapsed() / u32::from(N);
    let started = Instant::now();
    for n in 0..N {
        assert!(c.get(&key(n), NOW_MS).await.is_some(), "first-level hit {n}");
    }
    let local_hit = started.elapsed() / u32::from(N);
    eprintln!("one hit from redis: {redis_hit:?}; from the first level: {local_hit:?}");
}

#[tokio::test]
async fn entries_expire_by_their_own_time_and_in_redis() {
    let Some(url) = redis_server_url() else { return };
    let settings = settings();
    let (a, b) = (node(&url, &settings).await, node(&url, &settings).await);
    a.put(key(1), entry(json!(1), NOW_MS + 400), NOW_MS).await;
    let mut redis = raw(&url).await;
    let entry_key = format!("{}cache:{}", settings.key_prefix, hex(&key(1)));
    let ttl_ms: i64 = redis::cmd("PTTL").arg(&entry_key).query_async(&mut redis).await.expect("PTTL");
    assert!((300..=400).contains(&ttl_ms), "PX is the time left on the writer's clock: {ttl_ms}");
    assert!(b.get(&key(1), NOW_MS + 399).await.is_some());
    assert!(b.get(&key(1), NOW_MS + 400).await.is_none(), "b's first level expires it");
    let c = node(&url, &settings).await;
    assert!(c.get(&key(1), NOW_MS + 400).await.is_none(), "so does a read from redis");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let exists: i64 = redis::cmd("EXISTS").arg(&entry_key).query_async(&mut redis).await.expect("EXISTS");
    assert_eq!(exists, 0, "redis dropped it");

    a.put(key(2), entry(json!(2), NOW_MS), NOW_MS).await;
    let key_2 = format!("{}cache:{}", settings.key_prefix, hex(&key(2)));
    let exists: i64 = redis::cmd("EXISTS").arg(&key_2).query_async(&mut redis).await.expect("EXISTS");
    assert_eq!(exists, 0, "an entry expired when put is not written");
}

/// The gateway's steps for a miss, as `cached_call` takes them: begin the fill, call (counted, slow)
/// and put, or answer the entry another node filled.
async fn fill(cache: &RedisResponseCache, calls: &AtomicUsize) -> (Value, bool) {
    match cache.begin_fill(&key(9), NOW_MS, Duration::from_secs(5)).await {
        FillStart::Filled(hit) => (hit.envelope.data, true),
        FillStart::Call => {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            cache.put(key(9), entry(json!({"call": n}), NOW_MS + 60_000), NOW_MS).await;
            (json!({"call": n}), false)
        }
    }
}

#[tokio::test]
async fn concurrent_misses_on_two_nodes_make_one_fill() {
    let Some(url) = redis_server_url() else { return };
    let settings = settings();
    let nodes = [node(&url, &settings).await, node(&url, &settings).await];
    let calls = AtomicUsize::new(0);
    let outcomes = futures::future::join_all((0..20).map(|i| fill(&nodes[i % 2], &calls))).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "20 misses on two nodes, one upstream call");
    assert_eq!(outcomes.iter().filter(|(_, hit)| *hit).count(), 19);
    assert!(outcomes.iter().all(|(data, _)| *data == json!({"call": 0})));
    let mut redis = raw(&url).await;
    let lease = format!("{}cache:{}:fill", settings.key_prefix, hex(&key(9)));
    let exists: i64 = redis::cmd("EXISTS").arg(&lease).query_async(&mut redis).await.expect("EXISTS");
    assert_eq!(exists, 0, "the put dropped the lease");
}

#[tokio::test]
async fn an_abandoned_fill_hands_over_at_once_and_a_dead_one_lapses() {
    let Some(url) = redis_server_url() else { return };
    let settings = settings();
    let (a, b) = (node(&url, &settings).await, node(&url, &settings).await);
    let lease = Duration::from_secs(10);
    assert_eq!(a.begin_fill(&key(1), NOW_MS, lease).await, FillStart::Call);
    let waiting = tokio::spawn({
        let b = node(&url, &settings).await;
        async move {
            let started = Instant::now();
            let start = b.begin_fill(&key(1), NOW_MS, lease).await;
            (start, started.elapsed(), b)
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "b waits for a's fill");
    a.abandon_fill(&key(1)).await;
    let (start, waited, b2) = waiting.await.expect("task");
    assert_eq!(start, FillStart::Call, "a failed: b calls");
    assert!(waited < Duration::from_secs(2), "at once, not after the 10 s lease: {waited:?}");
    // b now holds the lease: a third node waits for b's entry.
    let third = tokio::spawn({
        let c = node(&url, &settings).await;
        async move { c.begin_fill(&key(1), NOW_MS, lease).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.abandon_fill(&key(1)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!third.is_finished(), "a cannot drop b's lease");
    b2.put(key(1), entry(json!("b's"), NOW_MS + 60_000), NOW_MS).await;
    match third.await.expect("task") {
        FillStart::Filled(hit) => assert_eq!(hit.envelope.data, json!("b's")),
        FillStart::Call => panic!("the third node should have been given b's entry"),
    }

    // A node that dies while filling leaves a lease that lapses by itself.
    let short = Duration::from_millis(300);
    assert_eq!(a.begin_fill(&key(2), NOW_MS, short).await, FillStart::Call);
    let started = Instant::now();
    assert_eq!(b.begin_fill(&key(2), NOW_MS, short).await, FillStart::Call);
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(200)..Duration::from_secs(2)).contains(&waited),
        "b waited about the lease: {waited:?}"
    );
}

/// Counts calls and answers a success after 300 ms.
struct Upstream {
    calls: AtomicUsize,
}

#[async_trait]
impl CloudTransport for Upstream {
    async fn send(&self, _request: UpstreamRequest) -> UpstreamReply {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        UpstreamReply::Answered {
            status: 200,
            body: json!({"success": true, "data": {"call": n}}).to_string().into_bytes(),
        }
    }
}

struct NoProviders;

#[async_trait]
impl souk_core::provider::ProviderTransport for NoProviders {
    async fn post(&self, _request: souk_core::provider::ProviderRequest) -> souk_core::provider::ProviderReply {
        souk_core::provider::ProviderReply::Failed("no providers in this test".into())
    }
}

#[tokio::test]
async fn the_gateway_on_two_nodes_calls_the_upstream_once() {
    let Some(url) = redis_server_url() else { return };
    souk_store::conformance::with_sqlite(move |store| async move {
        let settings = settings();
        let upstream = Arc::new(Upstream {
            calls: AtomicUsize::new(0),
        });
        let mut nodes = Vec::new();
        for _ in 0..2 {
            let (call_log, _task) = souk_core::calllog::CallLogWriter::start(store.clone());
            let souk = souk_core::Souk::new(
                store.clone(),
                Arc::new(souk_core::clock::SystemClock),
                Arc::new(NoProviders),
                Arc::new(souk_core::ratelimit::LocalRateLimiter::new()),
                call_log,
            )
            .with_cloud_transport(upstream.clone())
            .with_response_cache(Arc::new(node(&url, &settings).await));
            nodes.push(souk);
        }
        let new_app = souk_types::admin::NewApp {
            name: "app".into(),
            ..souk_types::admin::NewApp::default()
        };
        let appid = nodes[0].create_app(new_app).await.expect("app").0.appid;
        let new_cloud_app = souk_types::admin::NewCloudApp {
            appid: appid.clone(),
            whitelist: vec!["https://a.example".into()],
            ..souk_types::admin::NewCloudApp::default()
        };
        let cloud_app_id = nodes[0].create_cloud_app(new_cloud_app).await.expect("cloud app").cloud_app_id;
        let request = json!({
            "path": "/a",
            "exts": {"cloudAppId": cloud_app_id, "domain": "https://a.example", "cacheType": 1, "cacheTime": 60}
        });
        let request = souk_types::cloud::parse_request(request.to_string().as_bytes()).expect("request");
        let caller = CloudCaller::for_app(&appid);

        let calls = (0..10).map(|i| nodes[i % 2].http_request(&caller, &request, "rid"));
        let outcomes = futures::future::join_all(calls).await;
        assert_eq!(
            upstream.calls.load(Ordering::SeqCst),
            1,
            "ten calls on two nodes, one upstream call"
        );
        for outcome in &outcomes {
            assert_eq!(outcome.as_ref().expect("answered").envelope.data, json!({"call": 0}));
        }
        assert_eq!(
            outcomes
                .iter()
                .filter(|outcome| outcome.as_ref().is_ok_and(|o| o.cache_hit))
                .count(),
            9
        );
        for node in &nodes {
            let outcome = node.http_request(&caller, &request, "rid").await.expect("answered");
            assert!(outcome.cache_hit && outcome.envelope.data == json!({"call": 0}));
        }
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_redis_is_bypassed_within_the_timeout() {
    let timeout = Duration::from_millis(50);
    let settings = RedisSettings {
        timeout,
        connect_timeout: Duration::from_millis(200),
        ..RedisSettings::default()
    };
    let started = Instant::now();
    let cache = RedisResponseCache::connect("redis://127.0.0.1:1/", settings)
        .await
        .expect("a valid URL");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "starting is bounded: {:?}",
        started.elapsed()
    );
    let bound = timeout + Duration::from_millis(100);
    let started = Instant::now();
    assert!(cache.get(&key(1), NOW_MS).await.is_none());
    assert!(started.elapsed() < bound, "get: {:?}", started.elapsed());
    let started = Instant::now();
    cache.put(key(1), entry(json!(1), NOW_MS + 1_000), NOW_MS).await;
    assert!(started.elapsed() < bound, "put: {:?}", started.elapsed());
    assert!(cache.get(&key(1), NOW_MS).await.is_some(), "kept in this process meanwhile");
    let started = Instant::now();
    assert_eq!(cache.begin_fill(&key(2), NOW_MS, Duration::from_secs(10)).await, FillStart::Call);
    cache.abandon_fill(&key(2)).await;
    assert!(started.elapsed() < 2 * bound, "fill: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_silent_redis_opens_the_breaker_shared_with_the_limiter() {
    let (address, silent) = silent_server().await;
    let timeout = Duration::from_millis(50);
    let settings = RedisSettings {
        timeout,
        connect_timeout: Duration::from_millis(200),
        failures_to_open: 5,
        cool_down: Duration::from_secs(60),
        ..RedisSettings::default()
    };
    let connection = RedisConnection::connect(&format!("redis://{address}/"), settings)
        .await
        .expect("url");
    let limiter = RedisRateLimiter::new(connection.clone());
    let cache = RedisResponseCache::new(connection);
    for _ in 0..5 {
        assert!(!cache.is_breaker_open());
        let started = Instant::now();
        assert!(cache.get(&key(1), NOW_MS).await.is_none());
        assert!(started.elapsed() < timeout + Duration::from_millis(100), "{:?}", started.elapsed());
    }
    assert!(cache.is_breaker_open() && limiter.is_breaker_open(), "one breaker for both roles");
    let started = Instant::now();
    let limit = RateLimit { per_second: 1.0, burst: 1 };
    for _ in 0..100 {
        assert!(cache.get(&key(1), NOW_MS).await.is_none());
        assert_eq!(cache.begin_fill(&key(1), NOW_MS, Duration::from_secs(10)).await, FillStart::Call);
        assert!(limiter.check("k", &limit, 0).await.allowed, "fail-open by default");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(200),
        "300 calls with the breaker open took {elapsed:?}"
    );
    silent.abort();
}

#[tokio::test]
async fn the_cache_is_shared_again_when_redis_comes_back() {
    let Some(url) = redis_server_url() else { return };
    let (address, mode) = switchable_proxy(&url).await;
    let settings = RedisSettings {
        timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        failures_to_open: 2,
        cool_down: Duration::from_millis(200),
        ..settings()
    };
    let a = node(&format!("redis://{address}/"), &settings).await;
    while !a.is_breaker_open() {
        assert!(a.get(&key(1), NOW_MS).await.is_none());
    }
    mode.store(FORWARD, Ordering::SeqCst);
    let b = node(&url, &settings).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 0u8;
    loop {
        n = n.wrapping_add(1);
        a.put(key(n), entry(json!(n), NOW_MS + 60_000), NOW_MS).await;
        if b.get(&key(n), NOW_MS).await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "redis is back but a's puts do not reach it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!a.is_breaker_open(), "a successful probe closed the breaker");
}
