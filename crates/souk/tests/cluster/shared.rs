//! What nodes share besides the database: CDN files (a blob folder, or S3) and the cloud gateway's
//! response cache (through Redis, with one upstream call for a stampede across nodes).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};
use souk_s3_testserver::{TestS3Options, TestS3Server};

use super::harness::{string, with_backends, Backends, Blobs, Cluster};
use super::provider::Provider;
use crate::three;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdn_file_uploaded_through_one_node_is_served_by_the_others() {
    with_backends(|backends| async move {
        let cluster = Cluster::start(&backends, &three()).await;
        cdn_shared(&cluster).await;
        assert!(count_files(&cluster.blob_dir()) >= 1, "the file is in the shared folder");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdn_file_uploaded_through_one_node_is_served_by_the_others_on_s3() {
    with_backends(|backends| async move {
        const BUCKET: &str = "souk-cluster";
        let root = tempfile::tempdir().expect("a folder for the S3 server");
        let options = TestS3Options::loopback(root.path(), "cluster-access-key", "cluster-secret-key-0123456789", BUCKET);
        let s3 = TestS3Server::start(options).await.expect("the S3 test server");
        let blobs = Blobs::S3 {
            endpoint: s3.endpoint(),
            bucket: BUCKET.to_owned(),
            access_key: "cluster-access-key".to_owned(),
            secret_key: "cluster-secret-key-0123456789".to_owned(),
        };
        let cluster = Cluster::start_with_blobs(&backends, &three(), blobs).await;
        cdn_shared(&cluster).await;
        assert!(count_files(&root.path().join(BUCKET)) >= 1, "the file is in the bucket");
        assert_eq!(count_files(&cluster.blob_dir()), 0, "and not in a local folder");
    })
    .await;
}

/// Files under `dir`, recursively (0 when it does not exist).
fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    count_files(&path)
                } else {
                    1
                }
            })
            .sum()
    })
}

/// A file uploaded through A is served, byte for byte and with its type, by B and C.
async fn cdn_shared(cluster: &Cluster) {
    let (appid, secret) = cluster.create_app(0).await;
    let token = cluster.token(0, &appid, &secret).await;
    let bytes: Vec<u8> = (0..50_000u32).map(|i| u8::try_from(i % 251).unwrap_or(0)).collect();
    let response = cluster
        .http
        .post(format!("{}/souk/v1/cdn?access_token={token}", cluster.base(0)))
        .header("content-type", "image/png")
        .body(bytes.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status().as_u16(), 200);
    let uploaded: Value = response.json().await.expect("JSON");
    let url = string(&uploaded["url"]);
    let path = url
        .strip_prefix(cluster.base(0))
        .unwrap_or_else(|| panic!("{url} is under node A's public URL"))
        .to_owned();
    for index in [1, 2] {
        let response = cluster
            .http
            .get(format!("{}{path}", cluster.base(index)))
            .send()
            .await
            .expect("fetch");
        assert_eq!(response.status().as_u16(), 200, "node {index} serves {path}");
        let content_type = response
            .headers()
            .get("content-type")
            .map(|value| value.to_str().unwrap_or_default().to_owned());
        assert_eq!(content_type.as_deref(), Some("image/png"));
        assert_eq!(response.bytes().await.expect("bytes").as_ref(), bytes.as_slice(), "node {index}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_answer_cached_by_one_node_is_served_by_another() {
    with_backends(gateway_cache_shared).await;
}

async fn gateway_cache_shared(backends: Backends) {
    let provider = Provider::start().await;
    let cluster = Cluster::start(&backends, &three()).await;
    let (appid, secret) = cluster.create_app(0).await;
    let token = cluster.token(0, &appid, &secret).await;
    let cloud_app = cluster
        .admin_ok(
            0,
            "POST",
            "/cloud-apps",
            Some(json!({"appid": appid, "whitelist": [provider.base]})),
        )
        .await;
    provider.trust_cloud_app(&string(&cloud_app["app_key"]), &string(&cloud_app["secret"]));
    // cacheType 1: shared by the app's users and its server.
    let request = |path: &str, q: &str| {
        json!({
            "path": path,
            "method": "GET",
            "params": {"q": q},
            "exts": {"cloudAppId": cloud_app["cloud_app_id"], "domain": provider.base, "timeout": 3000, "cacheType": 1, "cacheTime": 60}
        })
    };
    let cluster = Arc::new(cluster);
    let token = Arc::new(token);

    // Filled by A, served by B and C.
    let first = request("/count", "same");
    let mut counts = Vec::new();
    for index in [0, 1, 2] {
        counts.push(gateway_count(&cluster, index, &token, &first).await);
    }
    assert_eq!(counts, [1, 1, 1], "B and C serve A's cached answer");
    assert_eq!(provider.cloud_calls(), 1, "one upstream call for the three nodes");

    // A stampede on a new entry, spread over the nodes, makes one upstream call.
    let stampede = Arc::new(request("/slow-count", "stampede"));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..30 {
        let (cluster, token, stampede) = (cluster.clone(), token.clone(), stampede.clone());
        calls.spawn(async move { gateway_count(&cluster, i % 3, &token, &stampede).await });
    }
    let mut answers = BTreeSet::new();
    while let Some(done) = calls.join_next().await {
        answers.insert(done.expect("a gateway call"));
    }
    assert_eq!(answers, BTreeSet::from([2]), "every caller got the one fill's answer");
    assert_eq!(provider.cloud_calls(), 2, "one upstream call for 30 concurrent calls on 3 nodes");
    assert!(provider.refused().is_empty(), "bad signatures: {:?}", provider.refused());
}

/// A cloud-gateway call (server door) on node `index`: the `n` the service answered.
async fn gateway_count(cluster: &Cluster, index: usize, token: &str, request: &Value) -> u64 {
    let response = cluster
        .http
        .post(format!("{}/souk/v1/cloud/http-request?access_token={token}", cluster.base(index)))
        .body(request.to_string())
        .send()
        .await
        .expect("a gateway call");
    assert_eq!(response.status().as_u16(), 200, "node {index}");
    let body: Value = response.json().await.expect("JSON");
    body["n"]
        .as_u64()
        .or_else(|| body["data"]["n"].as_u64())
        .unwrap_or_else(|| panic!("no count: {body}"))
}
