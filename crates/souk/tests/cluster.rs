//! Cluster mode end to end (issue 8): three real `souk serve` processes on loopback ports share one
//! PostgreSQL database, the machine's Redis (through a proxy the test can cut) and one blob store (a
//! folder or S3), in front of a real provider on loopback. Each test proves one promise of running several nodes:
//! tokens and app changes reach every node, a package is charged exactly across nodes and the call
//! log agrees with the ledger, a rate limit holds across nodes, an async job survives the `kill -9`
//! of the node that held it, CDN files and cached gateway answers are shared, and calls keep going
//! (by the configured policy) while Redis is away.
//!
//! Needs `SOUK_TEST_POSTGRES_URL` and `SOUK_TEST_REDIS_URL` (see `cluster/harness.rs`); clusters run
//! one at a time. Measured figures (delays, rates, latencies) are printed: `--nocapture` shows them.
//! The tests are in `cluster/`, one file per promise; this file holds what several of them use.

mod cluster {
    pub mod harness;
    pub mod provider;
    pub mod redis_proxy;

    mod charging;
    mod jobs;
    mod redis_down;
    mod shared;
    mod tokens;
}

use std::time::{Duration, Instant};

use cluster::harness::{Cluster, NodeOptions};
use cluster::provider::Provider;
use serde_json::{json, Value};

/// Three nodes with the default settings.
fn three() -> [NodeOptions; 3] {
    [NodeOptions::default(), NodeOptions::default(), NodeOptions::default()]
}

/// A sync API `name` on the provider's `/echo`, with `extra` fields (a rate limit, ...).
fn echo_api(provider: &Provider, name: &str, extra: Value) -> Value {
    let mut api = json!({"name": name, "upstream_url": format!("{}/echo", provider.base), "mode": "sync", "timeout_ms": 5000});
    if let (Some(api), Some(extra)) = (api.as_object_mut(), extra.as_object()) {
        api.extend(extra.clone());
    }
    api
}

/// How soon a change made through one node must hold on every node.
const PROPAGATION_BOUND: Duration = Duration::from_secs(1);
/// `servicemarketretrieve` of an unknown request id: what a node answers when the token passes.
const TOKEN_ACCEPTED: i64 = 9_301_014;
/// A superseded token past its overlap.
const TOKEN_SUPERSEDED: i64 = 40_001;
/// A token of a disabled app.
const APP_DISABLED: i64 = 40_013;
/// A rate-limited call.
const RATE_LIMITED: i64 = 9_301_011;

/// What node `index` says about `token`: a retrieve of an unknown job, which passes the token check
/// (9301014) or is refused by it, and costs nothing.
async fn token_check(cluster: &Cluster, index: usize, token: &str) -> i64 {
    cluster
        .wechat(
            index,
            &format!("/wxa/servicemarketretrieve?access_token={token}"),
            Some(&json!({"request_id": "cluster-token-probe"})),
        )
        .await
        .errcode
}

/// Polls every node (each about every 20 ms) until each refuses `token` with `refused`; answers
/// each node's delay since `since`. Gives up after 10 s, so a slow propagation is measured before
/// the bound is judged.
async fn delays_until_refused(cluster: &Cluster, token: &str, refused: i64, since: Instant) -> Vec<Duration> {
    let mut delays: Vec<Option<Duration>> = vec![None; cluster.nodes.len()];
    loop {
        for (index, delay) in delays.iter_mut().enumerate().filter(|(_, delay)| delay.is_none()) {
            let code = token_check(cluster, index, token).await;
            if code == refused {
                *delay = Some(since.elapsed());
            } else {
                assert_eq!(code, TOKEN_ACCEPTED, "node {index} answered neither accepted nor {refused}");
            }
        }
        if delays.iter().all(Option::is_some) {
            return delays.into_iter().flatten().collect();
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "not every node refused the token with {refused} within 10 s: {delays:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
