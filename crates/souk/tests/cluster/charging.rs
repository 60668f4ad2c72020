//! Charging across nodes: a package's units go exactly once however the calls are spread, the call
//! log and the ledger agree whichever node served a call, and a rate limit holds for the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::{string, with_backends, Backends, Cluster, Reply};
use super::provider::Provider;
use crate::{echo_api, three, token_check, RATE_LIMITED, TOKEN_ACCEPTED};

/// "Charge failed": the package is used up.
const QUOTA_USED_UP: i64 = 9_301_010;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_calls_over_three_nodes_spend_exactly_a_hundred_units() {
    with_backends(exact_quota).await;
}

async fn exact_quota(backends: Backends) {
    const CALLS: usize = 300;
    const UNITS: i64 = 100;
    let provider = Provider::start().await;
    let cluster = Arc::new(Cluster::start(&backends, &three()).await);
    let market = Arc::new(cluster.market(0, &[echo_api(&provider, "Echo", json!({}))], UNITS).await);
    // Every node has looked up the token, the app and the package before the race starts.
    for index in 0..3 {
        assert_eq!(token_check(&cluster, index, &market.token).await, TOKEN_ACCEPTED);
        cluster
            .admin_ok(index, "GET", &format!("/packages/{}", market.package_id), None)
            .await;
    }

    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..CALLS {
        let (cluster, market) = (cluster.clone(), market.clone());
        calls.spawn(async move {
            let index = i % 3;
            (index, cluster.invoke(index, &market, "Echo", json!({"i": i})).await)
        });
    }
    let mut replies: Vec<(usize, Reply)> = Vec::with_capacity(CALLS);
    while let Some(done) = calls.join_next().await {
        replies.push(done.expect("a call task"));
    }
    println!("{CALLS} calls over 3 nodes in {:?}", started.elapsed());

    let mut by_code: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, reply) in &replies {
        *by_code.entry(reply.errcode).or_default() += 1;
    }
    println!("answers by errcode: {by_code:?}");
    assert_eq!(
        by_code,
        BTreeMap::from([(0, 100), (QUOTA_USED_UP, CALLS - 100)]),
        "exactly the package's units succeed; every other call is refused for quota"
    );
    let served: Vec<usize> = (0..3)
        .map(|index| replies.iter().filter(|(node, reply)| *node == index && reply.errcode == 0).count())
        .collect();
    println!("successes per node: {served:?}");
    assert!(
        served.iter().filter(|count| **count > 0).count() >= 2,
        "the units were won on more than one node, or the race proves nothing: {served:?}"
    );
    let succeeded: BTreeSet<String> = replies
        .iter()
        .filter(|(_, reply)| reply.errcode == 0)
        .map(|(_, reply)| reply.request_id.clone())
        .collect();
    assert_eq!(succeeded.len(), 100, "every answer has its own request id");
    assert_eq!(provider.echo_calls(), 100, "the provider is called only for reserved units");
    assert!(provider.refused().is_empty(), "bad signatures: {:?}", provider.refused());

    // The ledger, read through another node: exactly the successes, committed; nothing held. A
    // commit follows its call's answer by a settlement batch of the node that served it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let ledger = loop {
        let ledger = cluster.ledger(1, &market.package_id).await;
        if ledger.iter().all(|entry| entry["state"] != json!("reserved")) || Instant::now() >= deadline {
            break ledger;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let committed: BTreeSet<String> = ledger
        .iter()
        .filter(|entry| entry["state"] == json!("committed"))
        .map(|entry| string(&entry["request_id"]))
        .collect();
    let states: BTreeSet<String> = ledger.iter().map(|entry| string(&entry["state"])).collect();
    assert_eq!(committed, succeeded, "the ledger's committed entries are the successful calls");
    assert!(
        states.iter().all(|state| state == "committed" || state == "released"),
        "nothing left reserved: {states:?}"
    );
    let package = cluster.admin_ok(2, "GET", &format!("/packages/{}", market.package_id), None).await;
    assert_eq!(package["units_left"], json!(0));

    // The call log (batched per node) holds every call with the errcode its caller saw.
    let answered: BTreeMap<String, i64> = replies.iter().map(|(_, reply)| (reply.request_id.clone(), reply.errcode)).collect();
    assert_eq!(answered.len(), CALLS, "every call has its own request id");
    let deadline = Instant::now() + Duration::from_secs(30);
    let logged = loop {
        let logged = cluster
            .admin_list(
                2,
                &format!("/calls?appid={}&service_id={}&limit=1000", market.appid, market.service_id),
            )
            .await;
        if logged.len() >= CALLS || Instant::now() > deadline {
            break logged;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let logged_codes: BTreeMap<String, i64> = logged
        .iter()
        .map(|call| (string(&call["request_id"]), call["errcode"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(logged.len(), CALLS, "one logged call per call, whichever node served it");
    assert_eq!(logged_codes, answered, "the call log's errcodes are the answers'");
    for call in logged.iter().filter(|call| call["errcode"] == json!(0)) {
        assert_eq!(call["package_id"].as_str(), Some(market.package_id.as_str()), "{call}");
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limits across nodes
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_three_nodes() {
    with_backends(rate_limit_across_nodes).await;
}

async fn rate_limit_across_nodes(backends: Backends) {
    const PER_SECOND: f64 = 20.0;
    const BURST: u32 = 5;
    const WORKERS: usize = 12;
    const LOAD: Duration = Duration::from_secs(4);
    // Calls admitted while the measured window opens and closes (one per node in flight at each end).
    const SLACK: f64 = 3.0;
    let provider = Provider::start().await;
    let cluster = Arc::new(Cluster::start(&backends, &three()).await);
    let limit = json!({"rate_limit": {"per_second": PER_SECOND, "burst": BURST}});
    let market = Arc::new(cluster.market(0, &[echo_api(&provider, "Limited", limit)], 100_000).await);

    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let (cluster, market) = (cluster.clone(), market.clone());
        workers.spawn(async move {
            let mut codes = Vec::new();
            while started.elapsed() < LOAD {
                codes.push(cluster.invoke(worker % 3, &market, "Limited", json!({})).await.errcode);
            }
            codes
        });
    }
    let mut codes = Vec::new();
    while let Some(done) = workers.join_next().await {
        codes.extend(done.expect("a load worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = codes.iter().filter(|code| **code == 0).count();
    let refused = codes.iter().filter(|code| **code == RATE_LIMITED).count();
    let others: Vec<i64> = codes.iter().copied().filter(|code| *code != 0 && *code != RATE_LIMITED).collect();
    let upper = f64::from(BURST) + PER_SECOND * elapsed + SLACK;
    let lower = 0.8 * (f64::from(BURST) + PER_SECOND * (elapsed - 0.5));
    println!(
        "rate limit {PER_SECOND}/s burst {BURST} over 3 nodes: {} calls in {elapsed:.2} s, {admitted} admitted, \
         {refused} refused; bound [{lower:.1}, {upper:.1}]",
        codes.len()
    );
    assert!(others.is_empty(), "only successes and rate-limit refusals: {others:?}");
    assert!(refused > 0, "the load must exceed the limit for the test to mean anything");
    #[allow(clippy::cast_precision_loss, reason = "a few hundred calls")]
    let admitted_f = admitted as f64;
    assert!(
        admitted_f <= upper,
        "{admitted} admitted, more than burst + rate × elapsed + slack = {upper:.1}"
    );
    assert!(admitted_f >= lower, "{admitted} admitted, far below the limit ({lower:.1})");
}
