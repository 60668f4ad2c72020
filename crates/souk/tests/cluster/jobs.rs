//! An async job outlives the node that ran it: submitted on A, in flight at A's `kill -9`, taken
//! again by B or C once A's lease lapses, finished by the provider's callback, charged once.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use souk_types::sign::{self, SignMethod};

use super::harness::{string, with_backends, Backends, Cluster, NodeOptions, SERVICE_SECRET};
use super::provider::Provider;

/// The job lease (`souk_core::jobs::LEASE_MS`) plus the workers' poll and a busy machine's delay.
const RECLAIM_WITHIN: Duration = Duration::from_secs(20 + 20);

/// Posts a provider's signed result for the job `request_id` to node `index`.
async fn provider_callback(cluster: &Cluster, index: usize, request_id: &str, envelope: &Value) -> (u16, Value) {
    let body = envelope.to_string();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
    let mut params = vec![("timestamp".to_owned(), sign::format_timestamp(now_ms))];
    let signature = sign::sign(SignMethod::Md5, SERVICE_SECRET, &params, Some(body.as_bytes()));
    params.push(("sign".to_owned(), signature));
    let url = reqwest::Url::parse_with_params(
        &format!("{}/souk/v1/provider/async-results/{request_id}", cluster.base(index)),
        &params,
    )
    .expect("a callback URL");
    let response = cluster.http.post(url).body(body).send().await.expect("the callback");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

/// The pid in a job's `lease_owner` (`<pid>-<random>`).
fn lease_pid(job: &Value) -> Option<u32> {
    job["lease_owner"].as_str()?.split('-').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_job_outlives_the_kill_9_of_the_node_running_it() {
    with_backends(job_outlives_its_node).await;
}

async fn job_outlives_its_node(backends: Backends) {
    const UNITS: i64 = 10;
    let provider = Provider::start().await;
    // A alone first, so it is A's worker that takes the job; B and C join while A holds it.
    let mut cluster = Cluster::start(&backends, &[NodeOptions::default()]).await;
    let api = json!({"name": "Job", "upstream_url": format!("{}/job", provider.base), "mode": "async", "timeout_ms": 60_000});
    let market = cluster.market(0, &[api], UNITS).await;
    let submit = json!({"service": market.service_id, "api": "Job", "data": {"work": 1}, "async": true});
    let submitted = cluster
        .wechat(0, &format!("/wxa/servicemarket?access_token={}", market.token), Some(&submit))
        .await;
    assert_eq!(submitted.errcode, 0, "{}", submitted.body);
    let request_id = string(&submitted.body["request_id"]);
    assert!(
        provider.wait_for_job_attempts(&request_id, 1, Duration::from_secs(10)).await,
        "node A never sent the job to the provider"
    );
    let job = cluster.admin_ok(0, "GET", &format!("/jobs/{request_id}"), None).await;
    assert_eq!(lease_pid(&job), Some(cluster.nodes[0].pid), "node A holds the job: {job}");

    cluster.add_node(&NodeOptions::default()).await;
    cluster.add_node(&NodeOptions::default()).await;
    cluster.kill9(0);
    let killed = Instant::now();

    // Once A's lease lapses, B or C claims the job and sends it again (the provider accepts it: 202).
    assert!(
        provider.wait_for_job_attempts(&request_id, 2, RECLAIM_WITHIN).await,
        "no other node took the job within {RECLAIM_WITHIN:?} of the kill"
    );
    println!("job taken again {:?} after node A's kill -9", killed.elapsed());
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        let job = cluster.admin_ok(1, "GET", &format!("/jobs/{request_id}"), None).await;
        if job["state"] == json!("waiting") || Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["state"], json!("waiting"), "the job waits for the provider's callback: {job}");
    let survivors = [cluster.nodes[1].pid, cluster.nodes[2].pid];
    assert!(
        lease_pid(&job).is_none_or(|pid| survivors.contains(&pid)),
        "the job is B's or C's now: {job}"
    );

    // The provider posts its result through C; the app retrieves it through B.
    let envelope = json!({"success": true, "data": {"done": request_id}});
    let (status, receipt) = provider_callback(&cluster, 2, &request_id, &envelope).await;
    assert_eq!((status, receipt["recorded"].clone()), (200, json!(true)), "{receipt}");
    let retrieved = cluster
        .wechat(
            1,
            &format!("/wxa/servicemarketretrieve?access_token={}", market.token),
            Some(&json!({"request_id": request_id})),
        )
        .await;
    assert_eq!(retrieved.errcode, 0, "{}", retrieved.body);
    let data: Value = serde_json::from_str(&string(&retrieved.body["data"])).expect("data is a JSON string");
    assert_eq!(data, json!({"done": request_id}));

    // A second result (a provider retrying its callback, through B) changes nothing.
    let (status, receipt) = provider_callback(&cluster, 1, &request_id, &envelope).await;
    assert_eq!((status, receipt["recorded"].clone()), (200, json!(false)), "{receipt}");

    // Charged exactly once.
    let ledger = cluster.ledger(2, &market.package_id).await;
    assert_eq!(ledger.len(), 1, "one charge for the job: {ledger:?}");
    assert_eq!(
        (string(&ledger[0]["request_id"]), string(&ledger[0]["state"])),
        (request_id.clone(), "committed".to_owned())
    );
    let package = cluster.admin_ok(1, "GET", &format!("/packages/{}", market.package_id), None).await;
    assert_eq!(package["units_left"], json!(UNITS - 1));
    let job = cluster.admin_ok(2, "GET", &format!("/jobs/{request_id}"), None).await;
    assert_eq!(job["state"], json!("succeeded"), "{job}");
    assert_eq!(provider.job_attempts(&request_id), 2, "sent by A, then once by B or C");
    assert!(provider.refused().is_empty(), "bad signatures: {:?}", provider.refused());

    // The call log holds the submission (logged by A before its death) and the completion (by the
    // node the callback reached, as `<request_id>.done`), and agrees with the ledger: one logged
    // completion carries the charge.
    let deadline = Instant::now() + Duration::from_secs(10);
    let calls = loop {
        let calls = cluster.admin_list(1, &format!("/calls?appid={}", market.appid)).await;
        let routes: Vec<&str> = calls.iter().filter_map(|call| call["route"].as_str()).collect();
        if (routes.contains(&"servicemarket") && routes.contains(&"servicemarket_async")) || Instant::now() > deadline {
            break calls;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let summary: Vec<(String, String, i64, Option<String>)> = calls
        .iter()
        .map(|call| {
            (
                string(&call["route"]),
                string(&call["request_id"]),
                call["errcode"].as_i64().unwrap_or(-1),
                call["package_id"].as_str().map(str::to_owned),
            )
        })
        .collect();
    println!("the job's app in the call log: {summary:?}");
    let logged = |route: &str, id: &str| summary.iter().filter(|(r, i, _, _)| r == route && i == id).count();
    assert_eq!(
        logged("servicemarket", &request_id),
        1,
        "the submission is logged once: {summary:?}"
    );
    let completion = format!("{request_id}.done");
    assert_eq!(
        logged("servicemarket_async", &completion),
        1,
        "the completion is logged once: {summary:?}"
    );
    let charged: Vec<&(String, String, i64, Option<String>)> = summary
        .iter()
        .filter(|(route, _, errcode, package)| route == "servicemarket_async" && *errcode == 0 && package.is_some())
        .collect();
    assert_eq!(charged.len(), 1, "one logged charge, as in the ledger: {summary:?}");
    assert_eq!(charged[0].3.as_deref(), Some(market.package_id.as_str()));
}
