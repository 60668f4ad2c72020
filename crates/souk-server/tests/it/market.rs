//! `POST /wxa/servicemarket` end to end: signed provider requests, every errcode of `wire.md` §3 that
//! applies to the sync server API, exact charging, `client_msg_id` replays and concurrency.

use std::time::Instant;

use axum::http::StatusCode;
use futures::future::join_all;
use serde_json::{json, Value};
use souk_store::conformance::{with_postgres, with_sqlite, Store};
use souk_types::sign::{self, SignMethod};

use crate::common::{closed_port_url, TestServer, Upstream, SERVICE_SECRET};

fn errcode(answer: &Value) -> i64 {
    answer["errcode"].as_i64().unwrap()
}

async fn add_api(server: &TestServer, service_id: &str, name: &str, body: Value) {
    let mut body = body;
    body["name"] = json!(name);
    server
        .admin_ok("POST", &format!("/services/{service_id}/apis"), Some(body), StatusCode::CREATED)
        .await;
}

#[tokio::test]
async fn sync_invoke_signs_charges_and_logs() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 3).await;
        let answer = server
            .invoke(&market, "Echo", json!({"img_url": "http://x/y.jpg", "n": 1}), Some("m-1"))
            .await;
        assert_eq!(errcode(&answer), 0, "{answer}");
        assert_eq!(answer["errmsg"], json!("ok"));
        let data: Value = serde_json::from_str(answer["data"].as_str().expect("data is a JSON string")).unwrap();
        assert_eq!(
            data,
            json!({"echo": {"img_url": "http://x/y.jpg", "n": 1}}),
            "only the provider's data, extra fields dropped"
        );

        let seen = upstream.last();
        assert_eq!(seen.param("service"), Some(market.service_id.as_str()));
        assert_eq!(seen.param("api"), Some("Echo"));
        assert_eq!(seen.param("appid"), Some(market.appid.as_str()));
        assert_eq!(seen.param("async"), Some("0"));
        assert!(seen.param("request_id").is_some() && seen.param("timestamp").is_some());
        assert_eq!(seen.param("sign_method"), None, "md5 is the default and is not sent");
        let signature = seen.param("sign").unwrap();
        assert!(
            sign::verify(SignMethod::Md5, SERVICE_SECRET, &seen.query, Some(&seen.body), signature),
            "the provider can verify the signature"
        );
        assert!(!sign::verify(
            SignMethod::Md5,
            "other-secret",
            &seen.query,
            Some(&seen.body),
            signature
        ));
        let stamp = sign::parse_timestamp(seen.param("timestamp").unwrap()).unwrap();
        assert!((stamp - server.clock_now()).abs() < 2_000, "timestamp is now, in UTC+8");

        assert_eq!(server.units_left(&market.package_id).await, 2);
        let ledger = server
            .admin_ok("GET", &format!("/packages/{}/ledger", market.package_id), None, StatusCode::OK)
            .await;
        assert_eq!(ledger["items"][0]["state"], json!("committed"));
        assert_eq!(ledger["items"][0]["request_id"].as_str(), seen.param("request_id"));

        let calls = server.calls(&format!("appid={}&api=Echo", market.appid)).await;
        assert_eq!(calls.len(), 1);
        let call = &calls[0];
        assert_eq!(
            call["request_id"].as_str(),
            seen.param("request_id"),
            "the provider sees the call's request id"
        );
        assert_eq!(call["errcode"], json!(0));
        assert_eq!(call["package_id"].as_str(), Some(market.package_id.as_str()));
        assert_eq!(call["service_id"].as_str(), Some(market.service_id.as_str()));
        assert!(call["bytes_in"].as_i64().unwrap() > 0 && call["bytes_out"].as_i64().unwrap() > 0);
        assert!(call["latency_us"].as_i64().unwrap() > 0);
    });
}

#[tokio::test]
async fn data_may_be_a_json_string() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 1).await;
        let answer = server.invoke(&market, "Echo", json!("{\"a\":[1,2]}"), None).await;
        assert_eq!(errcode(&answer), 0, "{answer}");
        assert_eq!(upstream.last().body, br#"{"a":[1,2]}"#.to_vec(), "the body is data serialized once");
    });
}

/// One row per failure: the upstream path (or a closed port), the errcode, and a word of the message.
#[tokio::test]
async fn provider_failures_release_the_unit() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 5).await;
        let closed = closed_port_url().await;
        let cases = [
            ("Fail", format!("{}/fail", upstream.base), 9301002, "card unreadable"),
            ("Html", format!("{}/html", upstream.base), 9301002, "not JSON"),
            ("Status", format!("{}/status500", upstream.base), 9301002, "HTTP 500"),
            ("Down", closed, 9301002, "unreachable"),
            ("Huge", format!("{}/huge", upstream.base), 9301002, "larger than 4194304 bytes"),
        ];
        for (name, url, expect, word) in cases {
            add_api(
                &server,
                &market.service_id,
                name,
                json!({"upstream_url": url, "mode": "sync", "timeout_ms": 2000}),
            )
            .await;
            let answer = server.invoke(&market, name, json!({}), None).await;
            assert_eq!(errcode(&answer), expect, "{name}: {answer}");
            assert!(answer["errmsg"].as_str().unwrap().contains(word), "{name}: {answer}");
            assert_eq!(server.units_left(&market.package_id).await, 5, "{name}: the unit goes back");
        }
        let failed = server.invoke(&market, "Fail", json!({}), None).await;
        assert_eq!(failed["provider_errcode"], json!("E42"));
        assert_eq!(failed["provider_errmsg"], json!("card unreadable"));
        let ledger = server
            .admin_ok("GET", &format!("/packages/{}/ledger", market.package_id), None, StatusCode::OK)
            .await;
        assert!(ledger["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["state"] == json!("released")));
    });
}

#[tokio::test]
async fn provider_timeout_is_cut_at_the_deadline() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 1).await;
        add_api(
            &server,
            &market.service_id,
            "Slow",
            json!({"upstream_url": format!("{}/slow", upstream.base), "mode": "sync", "timeout_ms": 300}),
        )
        .await;
        let started = Instant::now();
        let answer = server.invoke(&market, "Slow", json!({}), None).await;
        let elapsed = started.elapsed().as_millis();
        assert_eq!(errcode(&answer), 9301012, "{answer}");
        assert!((300..1500).contains(&elapsed), "cut off near 300 ms, took {elapsed} ms");
        assert_eq!(server.units_left(&market.package_id).await, 1);
    });
}

#[tokio::test]
async fn refusals_before_any_charge() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 5).await;
        let schema = json!({"type": "object", "required": ["img_url"], "properties": {"img_url": {"type": "string"}}});
        add_api(
            &server,
            &market.service_id,
            "Ocr",
            json!({"upstream_url": format!("{}/echo", upstream.base), "mode": "sync", "schema": schema}),
        )
        .await;
        let url = format!("/wxa/servicemarket?access_token={}", market.token);
        let service = market.service_id.clone();
        let cases: Vec<(String, i64, &str)> = vec![
            (String::new(), 44002, "empty post data"),
            ("{not json".into(), 47001, "not JSON"),
            ("[1,2]".into(), 47001, "JSON object"),
            (json!({"service": 7, "api": "Echo"}).to_string(), 47001, "service must be a string"),
            (json!({"api": "Echo"}).to_string(), 9301001, "service is missing"),
            (json!({"service": service, "data": {}}).to_string(), 9301001, "api is missing"),
            (json!({"service": "wx_nope", "api": "Echo"}).to_string(), 9301001, "unknown service"),
            (json!({"service": service, "api": "Nope"}).to_string(), 9301001, "unknown api"),
            (
                json!({"service": service, "api": "Echo", "data": "not json"}).to_string(),
                9301001,
                "not JSON",
            ),
            (
                json!({"service": service, "api": "Echo", "async": true}).to_string(),
                9301001,
                "sync only",
            ),
            (
                json!({"service": service, "api": "Ocr", "data": {"img": 1}}).to_string(),
                9301001,
                "schema",
            ),
            (
                json!({"service": service, "api": "Ocr", "data": {"img_url": 5}}).to_string(),
                9301001,
                "schema",
            ),
        ];
        for (body, expect, word) in cases {
            let answer = server.wechat_post(&url, body.clone()).await;
            assert_eq!(errcode(&answer), expect, "{body}: {answer}");
            assert!(answer["errmsg"].as_str().unwrap().contains(word), "{body}: {answer}");
        }
        let ok = server.invoke(&market, "Ocr", json!({"img_url": "http://a/b.jpg"}), None).await;
        assert_eq!(errcode(&ok), 0, "{ok}");
        assert_eq!(upstream.count(), 1, "no refused call reached the provider");
        assert_eq!(server.units_left(&market.package_id).await, 4);
        let too_big = "x".repeat(70 * 1024);
        assert_eq!(errcode(&server.wechat_post(&url, too_big).await), 47001);
        assert_eq!(errcode(&server.wechat_get(&url).await), 43002);
    });
}

#[tokio::test]
async fn charge_failures_no_package_exhausted_expired() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 1).await;
        assert_eq!(errcode(&server.invoke(&market, "Echo", json!({}), None).await), 0);
        let exhausted = server.invoke(&market, "Echo", json!({}), None).await;
        assert_eq!(errcode(&exhausted), 9301010);
        assert!(exhausted["errmsg"].as_str().unwrap().contains("used up"), "{exhausted}");

        let (other_app, other_secret) = server.create_app().await;
        let mut other = market.clone();
        other.appid = other_app.clone();
        other.token = server.token(&other_app, &other_secret).await;
        let none = server.invoke(&other, "Echo", json!({}), None).await;
        assert_eq!(errcode(&none), 9301010);
        assert!(none["errmsg"].as_str().unwrap().contains("no package"), "{none}");

        let expires_at = server.clock_now() / 1000 + 60;
        let body = json!({"appid": other_app, "service_id": market.service_id, "units": 5, "expires_at": expires_at});
        server.admin_ok("POST", "/packages", Some(body), StatusCode::CREATED).await;
        assert_eq!(errcode(&server.invoke(&other, "Echo", json!({}), None).await), 0);
        server.clock.advance_ms(61_000);
        let expired = server.invoke(&other, "Echo", json!({}), None).await;
        assert_eq!(errcode(&expired), 9301010);
        assert!(expired["errmsg"].as_str().unwrap().contains("expired"), "{expired}");
        assert_eq!(upstream.count(), 2);
    });
}

#[tokio::test]
async fn rate_limit_and_disabled_service() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 10).await;
        let limit =
            json!({"upstream_url": format!("{}/echo", upstream.base), "mode": "sync", "rate_limit": {"per_second": 1.0, "burst": 2}});
        add_api(&server, &market.service_id, "Limited", limit).await;
        assert_eq!(errcode(&server.invoke(&market, "Limited", json!({}), None).await), 0);
        assert_eq!(errcode(&server.invoke(&market, "Limited", json!({}), None).await), 0);
        // On a cluster node the limit is asked while the units are reserved: the refusal gives
        // them back, and the client_msg_id, before it answers.
        let refused = server.invoke(&market, "Limited", json!({}), Some("limited-1")).await;
        assert_eq!(errcode(&refused), 9301011, "{refused}");
        assert_eq!(
            server.units_left(&market.package_id).await,
            8,
            "a limited call holds nothing once answered"
        );
        server.let_time_pass(1_000).await;
        let retried = server.invoke(&market, "Limited", json!({}), Some("limited-1")).await;
        assert_eq!(errcode(&retried), 0, "a limited call's client_msg_id runs again: {retried}");
        assert_eq!(upstream.count(), 3, "the limited call never reached the provider");
        assert_eq!(server.units_left(&market.package_id).await, 7, "a limited call costs nothing");
        let ledger = server
            .admin_ok("GET", &format!("/packages/{}/ledger", market.package_id), None, StatusCode::OK)
            .await;
        let states: Vec<&Value> = ledger["items"].as_array().unwrap().iter().map(|entry| &entry["state"]).collect();
        assert_eq!(states, [&json!("committed"); 3], "no ledger entry for the limited call: {ledger}");

        server
            .admin_ok(
                "PATCH",
                &format!("/services/{}", market.service_id),
                Some(json!({"disabled": true})),
                StatusCode::OK,
            )
            .await;
        assert_eq!(errcode(&server.invoke(&market, "Echo", json!({}), None).await), 9301001);
    });
}

#[tokio::test]
async fn client_msg_id_replays_the_first_answer() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 5).await;
        let first = server.invoke(&market, "Echo", json!({"n": 1}), Some("retry-1")).await;
        let again = server.invoke(&market, "Echo", json!({"n": 2}), Some("retry-1")).await;
        assert_eq!(first, again, "the first answer comes back");
        assert_eq!(upstream.count(), 1);
        assert_eq!(server.units_left(&market.package_id).await, 4);
        // A failed first call is replayed too, and costs nothing.
        add_api(
            &server,
            &market.service_id,
            "Fail",
            json!({"upstream_url": format!("{}/fail", upstream.base), "mode": "sync"}),
        )
        .await;
        let failed = server.invoke(&market, "Fail", json!({}), Some("retry-2")).await;
        assert_eq!(server.invoke(&market, "Fail", json!({}), Some("retry-2")).await, failed);
        assert_eq!(upstream.count(), 1, "the fail path records nothing, and the replay made no call");
        assert_eq!(server.units_left(&market.package_id).await, 4);
        let calls = server.calls(&format!("appid={}&api=Echo", market.appid)).await;
        assert_eq!(calls.len(), 2);
        let replays = calls.iter().filter(|call| call["cache_hit"] == json!(true)).count();
        assert_eq!(replays, 1, "the replay is marked in the call log");
    });
}

#[tokio::test]
async fn simultaneous_duplicates_are_charged_once() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/delay", upstream.base), 5).await;
        let answers = join_all((0..8).map(|_| server.invoke(&market, "Echo", json!({}), Some("same-moment")))).await;
        assert!(
            answers.iter().all(|answer| *answer == answers[0] && errcode(answer) == 0),
            "{answers:?}"
        );
        assert_eq!(upstream.count(), 1, "the provider was called once");
        assert_eq!(server.units_left(&market.package_id).await, 4);
    });
}

/// 200 concurrent calls against 50 units: exactly 50 succeed, and the ledger agrees with the package.
async fn concurrent_charging(store: Store) {
    let server = TestServer::start(store).await;
    let upstream = Upstream::start().await;
    let market = server.market(&format!("{}/echo", upstream.base), 50).await;
    let answers = join_all((0..200).map(|idx| {
        let server = &server;
        let market = &market;
        async move { server.invoke(market, "Echo", json!({"idx": idx}), Some(&format!("c-{idx}"))).await }
    }))
    .await;
    let successes = answers.iter().filter(|answer| errcode(answer) == 0).count();
    let charge_failures = answers.iter().filter(|answer| errcode(answer) == 9301010).count();
    assert_eq!(
        (successes, charge_failures),
        (50, 150),
        "{:?}",
        answers.iter().find(|a| ![0, 9301010].contains(&errcode(a)))
    );
    assert_eq!(upstream.count(), 50);
    assert_eq!(server.units_left(&market.package_id).await, 0);
    let ledger = server
        .admin_ok("GET", &format!("/packages/{}/ledger", market.package_id), None, StatusCode::OK)
        .await;
    let entries = ledger["items"].as_array().unwrap();
    assert_eq!(entries.len(), 50);
    assert!(entries.iter().all(|entry| entry["state"] == json!("committed")));
    let calls = server.calls(&format!("appid={}&limit=1000", market.appid)).await;
    assert_eq!(
        calls.iter().filter(|call| call["route"] == json!("servicemarket")).count(),
        200,
        "every call is logged"
    );
}

#[tokio::test]
async fn concurrent_charging_is_exact_sqlite() {
    with_sqlite(concurrent_charging).await;
}

#[tokio::test]
async fn concurrent_charging_is_exact_postgres() {
    with_postgres(concurrent_charging).await;
}

#[tokio::test]
async fn unknown_paths_answer_40066() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let response = server.http.get(format!("{}/cgi-bin/nope", server.base)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404);
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errcode"], json!(40066));
    });
}

/// A storage failure in the middle of a call is 9301003 with a request id, never SQL text, and the
/// provider is not called.
#[tokio::test]
async fn storage_failure_is_an_internal_exception() {
    souk_store::conformance::with_sqlite_url(|url| async move {
        let store = souk_store::open(&url).await.unwrap();
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 5).await;
        // Break the ledger table behind souk's back, as a damaged database would be.
        let mut saboteur = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
        sqlx::Executor::execute(&mut saboteur, "ALTER TABLE charges RENAME TO charges_gone")
            .await
            .unwrap();
        let answer = server.invoke(&market, "Echo", json!({}), None).await;
        assert_eq!(errcode(&answer), 9301003, "{answer}");
        let errmsg = answer["errmsg"].as_str().unwrap();
        assert!(errmsg.contains(" rid: ") && !errmsg.to_lowercase().contains("charges"), "{errmsg}");
        assert_eq!(upstream.count(), 0);
    })
    .await;
}
