//! Redis goes away (refusing connections, then swallowing them) and comes back: nodes answer by
//! `redis.rate_limits_when_down` (`open` lets calls through, `closed` refuses rate-limited ones),
//! no call waits long, and the shared limit applies again once Redis answers.

use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::{with_backends, Backends, Cluster, Market, NodeOptions};
use super::provider::Provider;
use super::redis_proxy::Link;
use crate::{echo_api, RATE_LIMITED};

/// The most one call may take while Redis is away: the check's timeout (250 ms), the provider and
/// the database, on a busy machine. Nothing may wait out a connect timeout per call.
const CALL_BOUND_WHILE_CUT: Duration = Duration::from_secs(2);

/// `count` sequential calls of `api` on node `index`: their errcodes and the slowest round trip.
async fn calls_on(cluster: &Cluster, index: usize, market: &Market, api: &str, count: usize) -> (Vec<i64>, Duration) {
    let mut codes = Vec::with_capacity(count);
    let mut slowest = Duration::ZERO;
    for _ in 0..count {
        let reply = tokio::time::timeout(Duration::from_secs(10), cluster.invoke(index, market, api, json!({})))
            .await
            .unwrap_or_else(|_| panic!("a call to {api} on node {index} hung for 10 s"));
        slowest = slowest.max(reply.latency);
        codes.push(reply.errcode);
    }
    (codes, slowest)
}

/// While Redis is cut: open nodes (A, B) let every call through; the closed node (C) refuses the
/// rate-limited API and serves the unlimited one; every call answers within the bound.
async fn check_while_cut(cluster: &Cluster, market: &Market, how: &str) {
    for index in [0, 1] {
        let (codes, slowest) = calls_on(cluster, index, market, "Limited", 10).await;
        println!("redis {how}: node {index} (open): {codes:?}, slowest {slowest:?}");
        assert!(codes.iter().all(|code| *code == 0), "open policy lets calls through: {codes:?}");
        assert!(slowest <= CALL_BOUND_WHILE_CUT, "a call took {slowest:?} on node {index}");
    }
    let (codes, slowest) = calls_on(cluster, 2, market, "Limited", 5).await;
    println!("redis {how}: node 2 (closed), limited API: {codes:?}, slowest {slowest:?}");
    assert!(
        codes.iter().all(|code| *code == RATE_LIMITED),
        "closed policy refuses limited calls: {codes:?}"
    );
    assert!(slowest <= CALL_BOUND_WHILE_CUT, "a refusal took {slowest:?}");
    let (codes, slowest) = calls_on(cluster, 2, market, "Free", 3).await;
    println!("redis {how}: node 2 (closed), unlimited API: {codes:?}, slowest {slowest:?}");
    assert!(
        codes.iter().all(|code| *code == 0),
        "calls without a limit do not need Redis: {codes:?}"
    );
}

/// Polls until node `index` enforces the limit again: a quick run of calls gets a refusal.
async fn until_limited_again(cluster: &Cluster, index: usize, market: &Market, since: Instant) -> Duration {
    loop {
        let (codes, _) = calls_on(cluster, index, market, "Limited", 6).await;
        if codes.contains(&RATE_LIMITED) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "node {index} does not apply the limit 15 s after Redis came back: {codes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_follow_the_policy_while_redis_is_away_and_limits_return_with_it() {
    with_backends(redis_away).await;
}

async fn redis_away(backends: Backends) {
    let provider = Provider::start().await;
    let closed = NodeOptions {
        rate_limits_when_down: Some("closed"),
    };
    let cluster = Cluster::start(&backends, &[NodeOptions::default(), NodeOptions::default(), closed]).await;
    let limit = json!({"rate_limit": {"per_second": 1, "burst": 3}});
    let apis = [echo_api(&provider, "Limited", limit), echo_api(&provider, "Free", json!({}))];
    let market = cluster.market(0, &apis, 100_000).await;

    // With Redis: the three nodes share one budget of 3.
    let mut codes = Vec::new();
    for index in [0, 1, 2, 0, 1, 2] {
        codes.push(cluster.invoke(index, &market, "Limited", json!({})).await.errcode);
    }
    assert_eq!(codes.iter().filter(|code| **code == 0).count(), 3, "one shared burst: {codes:?}");
    assert_eq!(codes.iter().filter(|code| **code == RATE_LIMITED).count(), 3, "{codes:?}");

    // Redis refuses connections (as when it is stopped), comes back; then it swallows them (a dead
    // network path, each check waiting out its timeout until the breaker opens), and comes back.
    for (how, link) in [("refused", Link::Refused), ("blackholed", Link::Blackholed)] {
        cluster.redis.set(link);
        check_while_cut(&cluster, &market, how).await;
        cluster.redis.set(Link::Up);
        let restored = Instant::now();
        for index in [0, 1] {
            let after = until_limited_again(&cluster, index, &market, restored).await;
            println!("redis {how}: node {index} limits again {after:?} after Redis came back");
        }
        let after = until_closed_node_serves(&cluster, &market, restored).await;
        println!("redis {how}: node 2 (closed) serves limited calls again {after:?} after Redis came back");
    }
}

/// Polls until the closed node (C) admits a limited call again (the shared budget refills 1/s).
async fn until_closed_node_serves(cluster: &Cluster, market: &Market, since: Instant) -> Duration {
    loop {
        let reply = cluster.invoke(2, market, "Limited", json!({})).await;
        if reply.errcode == 0 {
            return since.elapsed();
        }
        assert_eq!(reply.errcode, RATE_LIMITED, "{}", reply.body);
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "the closed node does not serve limited calls 15 s after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
