//! `RedisRateLimiter` against the real Redis at `SOUK_TEST_REDIS_URL` (skipped when unset, required
//! under `CI`), and against servers that cannot answer (no Redis needed).

use std::time::{Duration, Instant};

use souk_core::ratelimit::{gcra, RateDecision, RateLimiter};
use souk_redis::{RedisDownPolicy, RedisRateLimiter, RedisSettings};
use souk_types::admin::RateLimit;

mod common;

use common::{redis_server_url, silent_server, switchable_proxy, FORWARD, STALL};

/// Settings with a key prefix of their own, so tests run in parallel, and a generous timeout, so a
/// busy machine does not turn into policy answers.
fn settings(when_down: RedisDownPolicy) -> RedisSettings {
    RedisSettings {
        when_down,
        timeout: Duration::from_secs(5),
        key_prefix: format!("souk-test:{:016x}:", rand::random::<u64>()),
        ..RedisSettings::default()
    }
}

async fn limiter(url: &str, settings: RedisSettings) -> RedisRateLimiter {
    RedisRateLimiter::connect(url, settings).await.expect("a valid URL")
}

fn limit(per_second: f64, burst: u32) -> RateLimit {
    RateLimit { per_second, burst }
}

async fn redis_now_ms(url: &str) -> f64 {
    let client = redis::Client::open(url).expect("url");
    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut connection).await.expect("TIME");
    #[allow(clippy::cast_precision_loss, reason = "test arithmetic on current times")]
    let now = secs as f64 * 1000.0 + micros as f64 / 1000.0;
    now
}

#[tokio::test]
async fn burst_then_refusal_with_retry_after_and_an_expiring_key() {
    let Some(url) = redis_server_url() else { return };
    let settings = settings(RedisDownPolicy::FailClosed);
    let prefix = settings.key_prefix.clone();
    let limiter = limiter(&url, settings).await;
    let limit = limit(1.0, 5);
    for i in 0..5 {
        assert!(limiter.check("app", &limit, 0).await.allowed, "call {i} is within the burst");
    }
    let refused = limiter.check("app", &limit, 0).await;
    assert!(!refused.allowed);
    assert!((800..=1000).contains(&refused.retry_after_ms), "{refused:?}");
    assert!(limiter.check("other", &limit, 0).await.allowed, "keys are independent");

    let client = redis::Client::open(url.as_str()).expect("url");
    let mut connection = client.get_multiplexed_async_connection().await.expect("redis");
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}rl:app"))
        .query_async(&mut connection)
        .await
        .expect("PTTL");
    assert!((4000..=5000).contains(&ttl_ms), "the key expires when it is full again: {ttl_ms}");
}

#[tokio::test]
async fn refills_after_waiting() {
    let Some(url) = redis_server_url() else { return };
    let limiter = limiter(&url, settings(RedisDownPolicy::FailClosed)).await;
    let limit = limit(20.0, 2);
    assert!(limiter.check("k", &limit, 0).await.allowed);
    assert!(limiter.check("k", &limit, 0).await.allowed);
    let refused = limiter.check("k", &limit, 0).await;
    assert!(!refused.allowed && (1..=50).contains(&refused.retry_after_ms), "{refused:?}");
    tokio::time::sleep(Duration::from_millis(refused.retry_after_ms + 5)).await;
    assert!(limiter.check("k", &limit, 0).await.allowed, "one call refilled");
    assert!(!limiter.check("k", &limit, 0).await.allowed, "and only one");
}

#[tokio::test]
async fn two_nodes_never_admit_more_than_the_limit_together() {
    let Some(url) = redis_server_url() else { return };
    let first_settings = settings(RedisDownPolicy::FailClosed);
    // The second node shares the prefix: the same Redis key, as two souk nodes would.
    let second_settings = RedisSettings {
        key_prefix: first_settings.key_prefix.clone(),
        ..first_settings.clone()
    };
    let nodes = [limiter(&url, first_settings).await, limiter(&url, second_settings).await];
    // One call per 1000 s: refill during the test is negligible, so exactly the burst fits.
    let limit = limit(0.001, 10);
    let checks = (0..200).map(|i| nodes[i % 2].check("shared", &limit, 0));
    let decisions: Vec<RateDecision> = futures::future::join_all(checks).await;
    let allowed = decisions.iter().filter(|decision| decision.allowed).count();
    assert_eq!(allowed, 10, "two nodes together admit exactly the burst");
    assert!(decisions
        .iter()
        .filter(|decision| !decision.allowed)
        .all(|decision| decision.retry_after_ms > 900_000));
    assert!(
        !nodes[0].is_breaker_open() && !nodes[1].is_breaker_open(),
        "refusals came from Redis, not the policy"
    );
}

#[tokio::test]
async fn agrees_with_the_local_gcra_step() {
    let Some(url) = redis_server_url() else { return };
    let limiter = limiter(&url, settings(RedisDownPolicy::FailClosed)).await;
    // Slow rates, so the milliseconds the test itself takes move the answers by no more than that.
    let limits = [
        limit(0.001, 3),
        limit(0.01, 1),
        limit(0.002, 0),
        limit(0.0, 5),
        limit(0.005, 4),
        limit(-1.0, 2),
    ];
    for (index, limit) in limits.iter().enumerate() {
        let key = format!("seq{index}");
        let start = Instant::now();
        let now = redis_now_ms(&url).await;
        let mut arrival = None;
        for call in 0..7 {
            let expected = gcra(arrival, limit, now);
            let got = limiter.check(&key, limit, 0).await;
            let slack = start.elapsed().as_secs_f64() * 1000.0 + 2.0;
            match expected {
                Ok(next) => {
                    arrival = Some(next);
                    assert!(got.allowed, "{limit:?} call {call}: {got:?}");
                }
                Err(wait) => {
                    assert!(!got.allowed, "{limit:?} call {call}: {got:?}");
                    let expected_ms = wait.ceil().min(86_400_000.0);
                    #[allow(clippy::cast_precision_loss, reason = "test arithmetic on small waits")]
                    let got_ms = got.retry_after_ms as f64;
                    assert!(
                        (expected_ms - got_ms).abs() <= slack,
                        "{limit:?} call {call}: expected {expected_ms} ms, got {got_ms} ms"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn unreachable_redis_answers_by_policy_within_the_timeout() {
    let timeout = Duration::from_millis(50);
    for (policy, allowed) in [(RedisDownPolicy::FailOpen, true), (RedisDownPolicy::FailClosed, false)] {
        let settings = RedisSettings {
            when_down: policy,
            timeout,
            connect_timeout: Duration::from_millis(200),
            ..RedisSettings::default()
        };
        let started = Instant::now();
        let limiter = limiter("redis://127.0.0.1:1/", settings).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "starting is bounded: {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let decision = limiter.check("k", &limit(1.0, 1), 0).await;
        assert!(started.elapsed() < timeout + Duration::from_millis(100), "{:?}", started.elapsed());
        let expected = RateDecision {
            allowed,
            retry_after_ms: if allowed { 0 } else { 1000 },
        };
        assert_eq!(decision, expected, "{policy:?}");
    }
}

#[tokio::test]
async fn the_breaker_opens_so_a_silent_redis_costs_no_waiting() {
    let (address, silent) = silent_server().await;
    let timeout = Duration::from_millis(50);
    let settings = RedisSettings {
        when_down: RedisDownPolicy::FailClosed,
        timeout,
        connect_timeout: Duration::from_millis(200),
        failures_to_open: 5,
        cool_down: Duration::from_secs(60),
        ..RedisSettings::default()
    };
    let limiter = limiter(&format!("redis://{address}/"), settings).await;
    let limit = limit(1.0, 1);
    for _ in 0..5 {
        assert!(!limiter.is_breaker_open());
        let started = Instant::now();
        let decision = limiter.check("k", &limit, 0).await;
        assert!(started.elapsed() < timeout + Duration::from_millis(100), "{:?}", started.elapsed());
        assert!(!decision.allowed);
    }
    assert!(limiter.is_breaker_open(), "5 failures in a row open the breaker");
    let started = Instant::now();
    for _ in 0..100 {
        let decision = limiter.check("k", &limit, 0).await;
        assert_eq!(
            decision,
            RateDecision {
                allowed: false,
                retry_after_ms: 60_000
            }
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(100),
        "100 checks with the breaker open took {elapsed:?}, not 100 × 50 ms"
    );
    silent.abort();
}

#[tokio::test]
async fn a_malformed_url_is_refused_without_its_password() {
    for url in ["http://127.0.0.1:6379/", "redis://:hunter2@127.0.0.1:notaport/", "nonsense"] {
        let error = RedisRateLimiter::connect(url, RedisSettings::default())
            .await
            .expect_err(url)
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }
}

async fn wait_until_allowed(limiter: &RedisRateLimiter, limit: &RateLimit) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let decision = limiter.check("k", limit, 0).await;
        if decision.allowed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis is back but the limiter still refuses: {decision:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn recovery_settings() -> RedisSettings {
    RedisSettings {
        timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        failures_to_open: 2,
        cool_down: Duration::from_millis(200),
        ..settings(RedisDownPolicy::FailClosed)
    }
}

#[tokio::test]
async fn the_breaker_closes_when_redis_comes_back() {
    let Some(url) = redis_server_url() else { return };
    let (address, mode) = switchable_proxy(&url).await;
    let limiter = limiter(&format!("redis://{address}/"), recovery_settings()).await;
    let limit = limit(1000.0, 1000);
    while !limiter.is_breaker_open() {
        assert!(!limiter.check("k", &limit, 0).await.allowed, "closed while down");
    }
    mode.store(FORWARD, std::sync::atomic::Ordering::SeqCst);
    wait_until_allowed(&limiter, &limit).await;
    assert!(!limiter.is_breaker_open(), "a successful probe closes the breaker");
}

#[tokio::test]
async fn a_connection_gone_silent_is_replaced() {
    let Some(url) = redis_server_url() else { return };
    let (address, mode) = switchable_proxy(&url).await;
    mode.store(FORWARD, std::sync::atomic::Ordering::SeqCst);
    let limiter = limiter(&format!("redis://{address}/"), recovery_settings()).await;
    let limit = limit(1000.0, 1000);
    assert!(limiter.check("k", &limit, 0).await.allowed);
    mode.store(STALL, std::sync::atomic::Ordering::SeqCst);
    while !limiter.is_breaker_open() {
        assert!(!limiter.check("k", &limit, 0).await.allowed, "closed while silent");
    }
    // The stalled connection never errs: only a new one can answer.
    mode.store(FORWARD, std::sync::atomic::Ordering::SeqCst);
    wait_until_allowed(&limiter, &limit).await;
    assert!(!limiter.is_breaker_open());
}

/// Several limits in one round trip answer exactly as separate checks in order do (the in-process
/// limiter's default): counted until the first refusal, which is named by its index.
#[tokio::test]
async fn several_limits_in_one_step_count_as_separate_checks_would() {
    let Some(url) = redis_server_url() else { return };
    let redis = limiter(&url, settings(RedisDownPolicy::FailClosed)).await;
    let local = souk_core::ratelimit::LocalRateLimiter::new();
    let (app, api, never) = (limit(1.0, 3), limit(1.0, 1), limit(0.0, 1));
    let sequence: [&[(&str, &RateLimit)]; 6] = [
        &[("app", &app), ("api", &api)],
        &[("app", &app), ("api", &api)],
        &[("app", &app)],
        &[("app", &app)],
        &[("other", &app), ("closed", &never), ("after", &app)],
        &[("after", &app), ("after", &app), ("after", &app), ("after", &app)],
    ];
    let now_ms = redis_now_ms(&url).await as i64;
    let mut answers = Vec::new();
    for checks in sequence {
        let from_redis = redis.check_in_order(checks, now_ms).await;
        let from_local = local.check_in_order(checks, now_ms).await;
        assert_eq!(
            from_redis.map(|(index, decision)| (index, decision.allowed)),
            from_local.map(|(index, decision)| (index, decision.allowed)),
            "{checks:?}"
        );
        answers.push(from_redis.map(|(index, _)| index));
    }
    // The API's burst of 1 refuses the second call, after the app counted it; so the app's burst of
    // 3 is spent by the third call; a limit that refuses everything stops the list (its keys after
    // it are not counted, so "after" still has its whole burst of 3).
    assert_eq!(answers, [None, Some(1), None, Some(0), Some(1), Some(3)]);
}
