//! Tokens and app changes made through one node hold on every node: within 1 s while Redis
//! carries the nodes' signals, within the caches' lifetime while it is away, and within 1 s again
//! once it is back.

use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::{with_backends, Backends, Cluster};
use super::redis_proxy::Link;
use crate::{delays_until_refused, three, token_check, APP_DISABLED, PROPAGATION_BOUND, TOKEN_ACCEPTED, TOKEN_SUPERSEDED};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_disabled_apps_reach_every_node_within_a_second() {
    with_backends(tokens_and_disabled_apps).await;
}

async fn tokens_and_disabled_apps(backends: Backends) {
    let cluster = Cluster::start(&backends, &three()).await;
    let (appid, secret) = cluster.create_app(0).await;

    // Issued on A, the token works on every node (twice, so each node has it cached).
    let old = cluster.stable_token(0, &appid, &secret, false).await;
    for index in [0, 1, 2, 0, 1, 2] {
        assert_eq!(token_check(&cluster, index, &old).await, TOKEN_ACCEPTED, "node {index}");
    }
    // A force refresh on A kills the old token at once (a plain re-fetch would keep it 5 minutes).
    let new = cluster.stable_token(0, &appid, &secret, true).await;
    let refreshed = Instant::now();
    assert_ne!(new, old, "force_refresh issues a new token");
    let delays = delays_until_refused(&cluster, &old, TOKEN_SUPERSEDED, refreshed).await;
    println!("superseded token refused (40001) after, per node: {delays:?}");
    for index in 0..3 {
        assert_eq!(
            token_check(&cluster, index, &new).await,
            TOKEN_ACCEPTED,
            "the new token works on node {index}"
        );
    }

    // Disabled through A, the app's calls stop on every node.
    cluster
        .admin_ok(0, "PATCH", &format!("/apps/{appid}"), Some(json!({"disabled": true})))
        .await;
    let disabled = Instant::now();
    let app_delays = delays_until_refused(&cluster, &new, APP_DISABLED, disabled).await;
    println!("disabled app refused (40013) after, per node: {app_delays:?}");

    let slow: Vec<String> = delays
        .iter()
        .zip(["A", "B", "C"])
        .map(|(delay, node)| (delay, node, "superseded token"))
        .chain(
            app_delays
                .iter()
                .zip(["A", "B", "C"])
                .map(|(delay, node)| (delay, node, "disabled app")),
        )
        .filter(|(delay, _, _)| **delay > PROPAGATION_BOUND)
        .map(|(delay, node, what)| format!("{what} on node {node}: {delay:?}"))
        .collect();
    assert!(
        slow.is_empty(),
        "changes must hold on every node within {PROPAGATION_BOUND:?}: {slow:?}"
    );
}

/// How stale a node's cached app or token may be when no signal reaches it
/// (`souk_core::souk::CACHE_TTL_MS`), plus the polling and a busy machine's delay.
const CACHE_TTL_BOUND: Duration = Duration::from_millis(2_000 + 700);

/// A fresh app whose stable token every node has just looked up (so each node's cached entries are
/// younger than a few tens of milliseconds): `(appid, token)`.
async fn app_cached_everywhere(cluster: &Cluster) -> (String, String) {
    let (appid, secret) = cluster.create_app(0).await;
    let token = cluster.stable_token(0, &appid, &secret, false).await;
    for index in 0..cluster.nodes.len() {
        assert_eq!(token_check(cluster, index, &token).await, TOKEN_ACCEPTED, "node {index}");
    }
    (appid, token)
}

/// Disables `appid` through A and answers how long each node took to refuse `token`.
async fn disable_and_measure(cluster: &Cluster, appid: &str, token: &str) -> Vec<Duration> {
    cluster
        .admin_ok(0, "PATCH", &format!("/apps/{appid}"), Some(json!({"disabled": true})))
        .await;
    delays_until_refused(cluster, token, APP_DISABLED, Instant::now()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_changes_reach_every_node_within_the_cache_ttl_and_at_once_when_it_returns() {
    with_backends(changes_while_redis_is_away).await;
}

async fn changes_while_redis_is_away(backends: Backends) {
    let cluster = Cluster::start(&backends, &three()).await;

    // No signal can cross while Redis is away: the caches' lifetime bounds the staleness.
    cluster.redis.set(Link::Refused);
    let (appid, token) = app_cached_everywhere(&cluster).await;
    let delays = disable_and_measure(&cluster, &appid, &token).await;
    println!("redis away: disabled app refused after, per node: {delays:?}");
    assert!(
        delays.iter().all(|delay| *delay <= CACHE_TTL_BOUND),
        "without signals a change must still hold within the caches' TTL ({CACHE_TTL_BOUND:?}): {delays:?}"
    );

    // Back: the nodes subscribe again (forgetting every cached entry, as they may have missed
    // signals) and changes cross at once. Every node cached the app just before the change, so a
    // delay under the bound comes from a signal or that resync; the attempt after the first to pass
    // can only be a signal's.
    cluster.redis.set(Link::Up);
    let restored = Instant::now();
    let mut passed = 0;
    while passed < 2 {
        let (appid, token) = app_cached_everywhere(&cluster).await;
        let delays = disable_and_measure(&cluster, &appid, &token).await;
        println!(
            "redis back for {:?}: disabled app refused after, per node: {delays:?}",
            restored.elapsed()
        );
        if delays.iter().all(|delay| *delay <= PROPAGATION_BOUND) {
            passed += 1;
        } else {
            assert_eq!(passed, 0, "once signals crossed again they must keep crossing: {delays:?}");
            assert!(
                restored.elapsed() < Duration::from_secs(15),
                "15 s after Redis came back, changes still take the caches' TTL to cross: {delays:?}"
            );
        }
    }
}
