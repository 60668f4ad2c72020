//! Async long tasks end to end: `async: true` on `/wxa/servicemarket`, the worker step driven with the
//! injected clock, the provider's signed callback, `servicemarketretrieve`, exact charging (one
//! reservation, settled once), deadlines, retries, the push to `message_url`, the admin views, and the
//! real worker pool. Storage-heavy cases run on both backends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use souk_core::jobs::push::push_signature;
use souk_core::jobs::{JOB_DEADLINE_MS, MAX_ATTEMPTS};
use souk_store::conformance::{with_sqlite, Store};
use souk_types::sign::{self, SignMethod};

use crate::common::{Seen, TestServer, SERVICE_SECRET};

/// The worker name tests step jobs as.
const WORKER: &str = "test-worker";

on_both_backends! {
    direct_answer_finishes_the_job => sqlite_direct_answer_finishes_the_job, postgres_direct_answer_finishes_the_job;
    accepted_job_finishes_by_signed_callback => sqlite_accepted_job_finishes_by_signed_callback, postgres_accepted_job_finishes_by_signed_callback;
    provider_failure_refunds => sqlite_provider_failure_refunds, postgres_provider_failure_refunds;
    deadline_fails_the_job_and_refunds => sqlite_deadline_fails_the_job_and_refunds, postgres_deadline_fails_the_job_and_refunds;
    transport_failures_are_retried => sqlite_transport_failures_are_retried, postgres_transport_failures_are_retried;
}

// ---------------------------------------------------------------------------------------------
// A provider with async behaviours, and a push receiver
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct ProviderState {
    seen: Mutex<Vec<Seen>>,
    pushes: Mutex<Vec<Seen>>,
    /// `/flaky` answers 503 while this is above zero (counting down).
    flaky_failures: AtomicUsize,
}

/// `/echo` (envelope with the body and request id), `/fail` (`success: false`), `/accept` (HTTP 202),
/// `/flaky` (503 a few times, then `/echo`), `/down` (always 500), `/delay` (300 ms, then `/echo`),
/// and `/push` (records pushes).
struct JobProvider {
    base: String,
    state: Arc<ProviderState>,
}

impl JobProvider {
    async fn start(flaky_failures: usize) -> JobProvider {
        let state = Arc::new(ProviderState {
            flaky_failures: AtomicUsize::new(flaky_failures),
            ..ProviderState::default()
        });
        let router = Router::new()
            .route("/echo", post(echo))
            .route("/fail", post(fail))
            .route("/accept", post(accept))
            .route("/flaky", post(flaky))
            .route("/down", post(down))
            .route("/delay", post(delay))
            .route("/push", post(push))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        JobProvider { base, state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn pushes(&self) -> Vec<Seen> {
        self.state.pushes.lock().unwrap().clone()
    }
}

type Shared = State<Arc<ProviderState>>;

fn record(list: &Mutex<Vec<Seen>>, query: Option<String>, body: &Bytes) -> Seen {
    let seen = Seen {
        query: form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect(),
        body: body.to_vec(),
    };
    list.lock().unwrap().push(seen.clone());
    seen
}

fn echo_envelope(seen: &Seen) -> Response {
    let data: Value = serde_json::from_slice(&seen.body).unwrap_or(Value::Null);
    axum::Json(json!({"success": true, "data": {"echo": data, "request_id": seen.param("request_id")}})).into_response()
}

async fn echo(State(state): Shared, RawQuery(query): RawQuery, body: Bytes) -> Response {
    echo_envelope(&record(&state.seen, query, &body))
}

async fn fail(State(state): Shared, RawQuery(query): RawQuery, body: Bytes) -> Response {
    record(&state.seen, query, &body);
    axum::Json(json!({"success": false, "errorCode": "E42", "errorMessage": "card unreadable"})).into_response()
}

async fn accept(State(state): Shared, RawQuery(query): RawQuery, body: Bytes) -> Response {
    record(&state.seen, query, &body);
    StatusCode::ACCEPTED.into_response()
}

async fn flaky(State(state): Shared, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let seen = record(&state.seen, query, &body);
    let failing = state
        .flaky_failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
        .is_ok();
    if failing {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    echo_envelope(&seen)
}

async fn down(State(state): Shared, RawQuery(query): RawQuery, body: Bytes) -> Response {
    record(&state.seen, query, &body);
    (StatusCode::INTERNAL_SERVER_ERROR, "broken").into_response()
}

async fn delay(State(state): Shared, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let seen = record(&state.seen, query, &body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    echo_envelope(&seen)
}

async fn push(State(state): Shared, RawQuery(query): RawQuery, body: Bytes) -> Response {
    record(&state.pushes, query, &body);
    "success".into_response()
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An app (with its secret, for fresh tokens), a service and an API `Job` of `mode` at
/// `upstream_url`, price 1, and a package of `units`.
struct JobMarket {
    appid: String,
    secret: String,
    token: String,
    service_id: String,
    package_id: String,
}

async fn job_market(server: &TestServer, upstream_url: &str, mode: &str, units: i64) -> JobMarket {
    let (appid, secret) = server.create_app().await;
    let token = server.token(&appid, &secret).await;
    let service = server
        .admin_ok(
            "POST",
            "/services",
            Some(json!({"name": "jobs", "secret": SERVICE_SECRET})),
            StatusCode::CREATED,
        )
        .await;
    let service_id = service["service_id"].as_str().unwrap().to_owned();
    server
        .admin_ok(
            "POST",
            &format!("/services/{service_id}/apis"),
            Some(json!({"name": "Job", "upstream_url": upstream_url, "mode": mode, "timeout_ms": 2000, "price": 1})),
            StatusCode::CREATED,
        )
        .await;
    let package = server
        .admin_ok(
            "POST",
            "/packages",
            Some(json!({"appid": appid, "service_id": service_id, "units": units})),
            StatusCode::CREATED,
        )
        .await;
    JobMarket {
        appid,
        secret,
        token,
        service_id,
        package_id: package["package_id"].as_str().unwrap().to_owned(),
    }
}

async fn submit(server: &TestServer, market: &JobMarket, data: Value, is_async: Option<bool>, client_msg_id: Option<&str>) -> Value {
    let mut body = json!({"service": market.service_id, "api": "Job", "data": data});
    if let Some(flag) = is_async {
        body["async"] = json!(flag);
    }
    if let Some(id) = client_msg_id {
        body["client_msg_id"] = json!(id);
    }
    server
        .wechat_post(&format!("/wxa/servicemarket?access_token={}", market.token), body.to_string())
        .await
}

/// Submits an async job that must be accepted; answers its request id.
async fn submit_ok(server: &TestServer, market: &JobMarket, data: Value) -> String {
    let answer = submit(server, market, data, Some(true), None).await;
    assert_eq!(answer["errcode"], json!(0), "{answer}");
    assert_eq!(answer["errmsg"], json!("ok"));
    assert!(answer.get("data").is_none(), "an accepted job has no data yet: {answer}");
    answer["request_id"].as_str().expect("an accepted job has a request_id").to_owned()
}

async fn retrieve(server: &TestServer, token: &str, request_id: &str) -> Value {
    server
        .wechat_post(
            &format!("/wxa/servicemarketretrieve?access_token={token}"),
            json!({ "request_id": request_id }).to_string(),
        )
        .await
}

fn errcode(answer: &Value) -> i64 {
    answer["errcode"].as_i64().unwrap_or_else(|| panic!("no errcode: {answer}"))
}

/// A provider callback, signed with `secret` at `at_ms` (md5 unless `method` says otherwise).
async fn callback(
    server: &TestServer,
    request_id: &str,
    body: &Value,
    secret: &str,
    at_ms: i64,
    method: SignMethod,
) -> (StatusCode, Value) {
    let body = body.to_string();
    let mut params = vec![("timestamp".to_owned(), sign::format_timestamp(at_ms))];
    if method != SignMethod::Md5 {
        params.push(("sign_method".to_owned(), method.as_str().to_owned()));
    }
    let signature = sign::sign(method, secret, &params, Some(body.as_bytes()));
    params.push(("sign".to_owned(), signature));
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    post_callback(server, &format!("{request_id}?{query}"), body).await
}

async fn post_callback(server: &TestServer, path_and_query: &str, body: String) -> (StatusCode, Value) {
    let response = server
        .http
        .post(format!("{}/souk/v1/provider/async-results/{path_and_query}", server.base))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.json().await.unwrap())
}

async fn ledger_states(server: &TestServer, package_id: &str) -> Vec<(String, String)> {
    let ledger = server
        .admin_ok("GET", &format!("/packages/{package_id}/ledger"), None, StatusCode::OK)
        .await;
    ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["request_id"].as_str().unwrap().to_owned(),
                entry["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn job_view(server: &TestServer, request_id: &str) -> Value {
    server.admin_ok("GET", &format!("/jobs/{request_id}"), None, StatusCode::OK).await
}

// ---------------------------------------------------------------------------------------------
// Cases on both backends
// ---------------------------------------------------------------------------------------------

/// The provider answers the envelope at once: accepted with a request id, pending until a worker
/// runs it, then done; one unit reserved at submission and committed once; the provider saw
/// `async=1` and the job's request id, signed; the submission and the completion are both logged.
async fn direct_answer_finishes_the_job(store: Store) {
    let server = TestServer::start(store).await;
    let provider = JobProvider::start(0).await;
    let market = job_market(&server, &provider.url("/echo"), "async", 3).await;

    let request_id = submit_ok(&server, &market, json!({"img": "a.jpg"})).await;
    assert_eq!(server.units_left(&market.package_id).await, 2, "reserved at submission");
    assert_eq!(
        ledger_states(&server, &market.package_id).await,
        [(request_id.clone(), "reserved".to_owned())]
    );
    let pending = retrieve(&server, &market.token, &request_id).await;
    assert_eq!(errcode(&pending), 9301015, "{pending}");
    assert_eq!(job_view(&server, &request_id).await["state"], json!("pending"));

    assert_eq!(server.souk.run_due_jobs(WORKER).await, 1);
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 0, "nothing left to do");

    let seen = provider.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].param("request_id"), Some(request_id.as_str()));
    assert_eq!(seen[0].param("async"), Some("1"));
    assert_eq!(seen[0].param("appid"), Some(market.appid.as_str()));
    assert_eq!(seen[0].body, br#"{"img":"a.jpg"}"#.to_vec());
    assert!(sign::verify(
        SignMethod::Md5,
        SERVICE_SECRET,
        &seen[0].query,
        Some(&seen[0].body),
        seen[0].param("sign").unwrap()
    ));

    for _ in 0..2 {
        let done = retrieve(&server, &market.token, &request_id).await;
        assert_eq!(errcode(&done), 0, "{done}");
        assert_eq!(done["errmsg"], json!("ok"));
        assert_eq!(done["request_id"], json!(request_id));
        let data: Value = serde_json::from_str(done["data"].as_str().expect("data is a JSON string")).unwrap();
        assert_eq!(data, json!({"echo": {"img": "a.jpg"}, "request_id": request_id}));
    }
    assert_eq!(server.units_left(&market.package_id).await, 2, "committed once; polling is free");
    assert_eq!(
        ledger_states(&server, &market.package_id).await,
        [(request_id.clone(), "committed".to_owned())]
    );

    let view = job_view(&server, &request_id).await;
    assert_eq!(view["state"], json!("succeeded"));
    assert_eq!(view["attempts"], json!(1));
    assert_eq!(view["package_id"], json!(market.package_id));
    assert!(view["data"].is_string() && view["finished_at"].is_i64());

    let calls = server.calls(&format!("appid={}", market.appid)).await;
    let routes: Vec<(&str, &str, i64)> = calls
        .iter()
        .map(|c| {
            (
                c["route"].as_str().unwrap(),
                c["request_id"].as_str().unwrap(),
                c["errcode"].as_i64().unwrap(),
            )
        })
        .collect();
    let done_id = format!("{request_id}.done");
    assert!(routes.contains(&("servicemarket", request_id.as_str(), 0)), "{routes:?}");
    assert!(routes.contains(&("servicemarket_async", done_id.as_str(), 0)), "{routes:?}");
    assert!(
        routes.iter().filter(|(route, _, _)| *route == "servicemarketretrieve").count() >= 3,
        "{routes:?}"
    );

    // Unknown ids and another app's ids are 9301014.
    assert_eq!(errcode(&retrieve(&server, &market.token, "no-such-job").await), 9301014);
    let (other, other_secret) = server.create_app().await;
    let other_token = server.token(&other, &other_secret).await;
    assert_eq!(errcode(&retrieve(&server, &other_token, &request_id).await), 9301014);
}

/// HTTP 202: the job waits for the provider's callback; a callback with a bad or missing signature,
/// a stale timestamp or an unknown id is refused; the first good one finishes the job (charged
/// once), a second is ignored and logged.
async fn accepted_job_finishes_by_signed_callback(store: Store) {
    let server = TestServer::start(store).await;
    let provider = JobProvider::start(0).await;
    let market = job_market(&server, &provider.url("/accept"), "both", 5).await;
    let request_id = submit_ok(&server, &market, json!({"n": 1})).await;
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 1);
    assert_eq!(job_view(&server, &request_id).await["state"], json!("waiting"));
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 0, "a waiting job is not called again");
    assert_eq!(errcode(&retrieve(&server, &market.token, &request_id).await), 9301015);

    let result = json!({"success": true, "data": {"text": "done"}});
    let now = server.clock_now();
    for (secret, at_ms, why) in [
        ("wrong-secret", now, "wrong secret"),
        (SERVICE_SECRET, now - 11 * 60_000, "timestamp too old"),
        (SERVICE_SECRET, now + 11 * 60_000, "timestamp too new"),
    ] {
        let (status, body) = callback(&server, &request_id, &result, secret, at_ms, SignMethod::Md5).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        assert_eq!(body["errCode"], json!("ProviderUnauthorized"), "{why}: {body}");
        assert!(body["requestID"].is_string() && body["errMsg"].is_string());
    }
    let stamp = form_urlencoded::Serializer::new(String::new())
        .append_pair("timestamp", &sign::format_timestamp(now))
        .finish();
    let (status, _) = post_callback(&server, &format!("{request_id}?{stamp}"), result.to_string()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no sign");
    // The body is signed too: a changed body fails.
    let (status, _) = {
        let mut params = vec![("timestamp".to_owned(), sign::format_timestamp(now))];
        let signature = sign::sign(SignMethod::Md5, SERVICE_SECRET, &params, Some(b"{}"));
        params.push(("sign".to_owned(), signature));
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
        post_callback(&server, &format!("{request_id}?{query}"), result.to_string()).await
    };
    assert_eq!(status, StatusCode::UNAUTHORIZED, "body not covered by the signature");
    let (status, body) = callback(&server, "no-such-job", &result, SERVICE_SECRET, now, SignMethod::Md5).await;
    assert_eq!(
        (status, body["errCode"].clone()),
        (StatusCode::NOT_FOUND, json!("MarketUnknownRequest"))
    );
    let (status, body) = callback(&server, &request_id, &json!({"nope": 1}), SERVICE_SECRET, now, SignMethod::Md5).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not the envelope: {body}");
    assert_eq!(
        errcode(&retrieve(&server, &market.token, &request_id).await),
        9301015,
        "still pending"
    );
    assert_eq!(server.units_left(&market.package_id).await, 4);

    let (status, body) = callback(&server, &request_id, &result, SERVICE_SECRET, now, SignMethod::HmacSha256).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recorded"], json!(true));
    let done = retrieve(&server, &market.token, &request_id).await;
    assert_eq!(errcode(&done), 0, "{done}");
    assert_eq!(done["data"], json!(r#"{"text":"done"}"#));

    let late = json!({"success": false, "errorMessage": "changed my mind"});
    let (status, body) = callback(&server, &request_id, &late, SERVICE_SECRET, now, SignMethod::Md5).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recorded"], json!(false));
    assert!(body["message"].as_str().unwrap().contains("already completed"), "{body}");
    assert_eq!(
        retrieve(&server, &market.token, &request_id).await["data"],
        json!(r#"{"text":"done"}"#)
    );
    assert_eq!(server.units_left(&market.package_id).await, 4, "charged exactly once");
    assert_eq!(
        ledger_states(&server, &market.package_id).await,
        [(request_id.clone(), "committed".to_owned())]
    );

    let callbacks = server.calls("").await;
    let callbacks: Vec<&Value> = callbacks.iter().filter(|c| c["route"] == json!("provider_callback")).collect();
    assert!(callbacks.len() >= 8, "every callback is logged: {callbacks:?}");
    assert!(callbacks
        .iter()
        .any(|c| c["errcode"] == json!(0) && c["message"].as_str().unwrap_or_default().contains("ignored")));

    // The same API called sync still works (mode both), with the sync timeout.
    let sync = submit(&server, &market, json!({}), None, None).await;
    assert_eq!(errcode(&sync), 9301002, "a 202 is not an answer for a sync call: {sync}");
}

/// `success: false` fails the job with the provider's code and message, and the unit goes back.
async fn provider_failure_refunds(store: Store) {
    let server = TestServer::start(store).await;
    let provider = JobProvider::start(0).await;
    let market = job_market(&server, &provider.url("/fail"), "async", 1).await;
    let request_id = submit_ok(&server, &market, json!({})).await;
    assert_eq!(server.units_left(&market.package_id).await, 0);
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 1);
    let failed = retrieve(&server, &market.token, &request_id).await;
    assert_eq!(errcode(&failed), 9301002, "{failed}");
    assert_eq!(failed["provider_errcode"], json!("E42"));
    assert_eq!(failed["provider_errmsg"], json!("card unreadable"));
    assert_eq!(server.units_left(&market.package_id).await, 1, "refunded");
    assert_eq!(
        ledger_states(&server, &market.package_id).await,
        [(request_id.clone(), "released".to_owned())]
    );
    let view = job_view(&server, &request_id).await;
    assert_eq!((view["state"].clone(), view["errcode"].clone()), (json!("failed"), json!(9301002)));
    let calls = server.calls(&format!("request_id={request_id}.done")).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["errcode"], json!(9301002));
    assert_eq!(calls[0]["route"], json!("servicemarket_async"));
}

/// A job the provider accepted but never finished fails at its deadline (9301012) and its unit goes
/// back; a result arriving after that is ignored.
async fn deadline_fails_the_job_and_refunds(store: Store) {
    let server = TestServer::start(store).await;
    let provider = JobProvider::start(0).await;
    let market = job_market(&server, &provider.url("/accept"), "async", 2).await;
    let request_id = submit_ok(&server, &market, json!({})).await;
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 1);
    server.clock.advance_ms(JOB_DEADLINE_MS - 1);
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 0, "not yet");
    assert_eq!(server.units_left(&market.package_id).await, 1, "still reserved after almost a day");
    server.clock.advance_ms(1);
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 1);

    let token = server.token(&market.appid, &market.secret).await;
    let failed = retrieve(&server, &token, &request_id).await;
    assert_eq!(errcode(&failed), 9301012, "{failed}");
    assert!(failed["errmsg"].as_str().unwrap().contains("did not finish"), "{failed}");
    assert_eq!(server.units_left(&market.package_id).await, 2, "refunded");
    assert_eq!(
        ledger_states(&server, &market.package_id).await,
        [(request_id.clone(), "released".to_owned())]
    );

    let result = json!({"success": true, "data": 1});
    let (status, body) = callback(&server, &request_id, &result, SERVICE_SECRET, server.clock_now(), SignMethod::Md5).await;
    assert_eq!((status, body["recorded"].clone()), (StatusCode::OK, json!(false)), "{body}");
    assert_eq!(errcode(&retrieve(&server, &token, &request_id).await), 9301012);
    assert_eq!(server.units_left(&market.package_id).await, 2);
}

/// HTTP 503 twice, then the envelope: the job is retried with backoff (1 s, then 2 s), the provider
/// sees the same request id every time, and the unit is committed once. A provider that never
/// answers the envelope fails the job after the attempt limit, refunded.
async fn transport_failures_are_retried(store: Store) {
    let server = TestServer::start(store).await;
    let provider = JobProvider::start(2).await;
    let market = job_market(&server, &provider.url("/flaky"), "async", 5).await;
    let request_id = submit_ok(&server, &market, json!({"x": 1})).await;
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 1);
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 0, "backing off");
    let view = job_view(&server, &request_id).await;
    assert_eq!((view["state"].clone(), view["attempts"].clone()), (json!("pending"), json!(1)));
    assert!(view["last_error"].as_str().unwrap().contains("HTTP 503"), "{view}");
    server.clock.advance_ms(1_000);
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 1);
    server.clock.advance_ms(1_999);
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 0, "the second wait is 2 s");
    server.clock.advance_ms(1);
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 1);
    let done = retrieve(&server, &market.token, &request_id).await;
    assert_eq!(errcode(&done), 0, "{done}");
    let ids: Vec<String> = provider.seen().iter().map(|s| s.param("request_id").unwrap().to_owned()).collect();
    assert_eq!(ids, vec![request_id.clone(); 3]);
    assert_eq!(server.units_left(&market.package_id).await, 4);
    assert_eq!(job_view(&server, &request_id).await["attempts"], json!(3));

    // Always HTTP 500: the attempt limit, then a clear failure and a refund.
    server
        .admin_ok(
            "PATCH",
            &format!("/services/{}/apis/Job", market.service_id),
            Some(json!({"upstream_url": provider.url("/down")})),
            StatusCode::OK,
        )
        .await;
    let doomed = submit_ok(&server, &market, json!({})).await;
    assert_eq!(server.units_left(&market.package_id).await, 3);
    for _ in 0..MAX_ATTEMPTS {
        assert_eq!(server.souk.run_due_jobs(WORKER).await, 1);
        server.clock.advance_ms(60_000);
    }
    assert_eq!(server.souk.run_due_jobs(WORKER).await, 0);
    let failed = retrieve(&server, &market.token, &doomed).await;
    assert_eq!(errcode(&failed), 9301002, "{failed}");
    assert!(failed["errmsg"].as_str().unwrap().contains("gave up after 5 attempts"), "{failed}");
    assert!(failed["errmsg"].as_str().unwrap().contains("HTTP 500"), "{failed}");
    let attempts = provider
        .seen()
        .iter()
        .filter(|s| s.param("request_id") == Some(doomed.as_str()))
        .count();
    assert_eq!(attempts, MAX_ATTEMPTS as usize);
    assert_eq!(server.units_left(&market.package_id).await, 4, "refunded");
    let states = ledger_states(&server, &market.package_id).await;
    assert!(states.contains(&(request_id, "committed".to_owned())));
    assert!(states.contains(&(doomed, "released".to_owned())));
}

// ---------------------------------------------------------------------------------------------
// Single-backend cases
// ---------------------------------------------------------------------------------------------

/// `async` must match the API's mode; `client_msg_id` replays the first acceptance (one job, one
/// charge); without units nothing is accepted.
#[tokio::test]
async fn async_flag_rules_and_replays() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let provider = JobProvider::start(0).await;
        let market = job_market(&server, &provider.url("/echo"), "async", 1).await;
        let missing = submit(&server, &market, json!({}), None, None).await;
        assert_eq!(errcode(&missing), 9301001, "{missing}");
        assert!(missing["errmsg"].as_str().unwrap().contains("async only"));
        let sync_api = job_market(&server, &provider.url("/echo"), "sync", 1).await;
        let refused = submit(&server, &sync_api, json!({}), Some(true), None).await;
        assert_eq!(errcode(&refused), 9301001, "{refused}");
        assert!(refused["errmsg"].as_str().unwrap().contains("sync only"));

        let first = submit(&server, &market, json!({"a": 1}), Some(true), Some("m-1")).await;
        let again = submit(&server, &market, json!({"a": 1}), Some(true), Some("m-1")).await;
        assert_eq!(errcode(&first), 0, "{first}");
        assert_eq!(again, first, "the replay is the first acceptance");
        assert_eq!(server.souk.run_due_jobs(WORKER).await, 1, "one job");
        assert_eq!(server.units_left(&market.package_id).await, 0);
        let broke = submit(&server, &market, json!({}), Some(true), Some("m-2")).await;
        assert_eq!(errcode(&broke), 9301010, "{broke}");
        let jobs = server
            .admin_ok("GET", &format!("/jobs?appid={}", market.appid), None, StatusCode::OK)
            .await;
        assert_eq!(jobs["items"].as_array().unwrap().len(), 1);
    })
    .await;
}

/// Async APIs may wait up to 10 minutes per attempt; sync ones keep the 60 s limit.
#[tokio::test]
async fn async_apis_may_have_long_timeouts() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let provider = JobProvider::start(0).await;
        let market = job_market(&server, &provider.url("/echo"), "sync", 1).await;
        let path = format!("/services/{}/apis", market.service_id);
        for (name, mode, timeout_ms, expect) in [
            ("Long", "async", 600_000, StatusCode::CREATED),
            ("LongBoth", "both", 600_000, StatusCode::CREATED),
            ("TooLong", "async", 600_001, StatusCode::BAD_REQUEST),
            ("LongSync", "sync", 60_001, StatusCode::BAD_REQUEST),
        ] {
            let body = json!({"name": name, "upstream_url": provider.url("/echo"), "mode": mode, "timeout_ms": timeout_ms});
            let (status, answer) = server.admin("POST", &path, Some(body)).await;
            assert_eq!(status, expect, "{name}: {answer}");
        }
    })
    .await;
}

/// The admin list filters by app and state and pages with a cursor.
#[tokio::test]
async fn admin_lists_jobs() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let provider = JobProvider::start(0).await;
        let market = job_market(&server, &provider.url("/echo"), "async", 10).await;
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(submit_ok(&server, &market, json!({ "i": i })).await);
            server.clock.advance_ms(1);
        }
        let path = format!("/jobs?appid={}&state=pending&limit=2", market.appid);
        let page = server.admin_ok("GET", &path, None, StatusCode::OK).await;
        let items: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["request_id"].as_str().unwrap())
            .collect();
        assert_eq!(items, [ids[2].as_str(), ids[1].as_str()], "newest first");
        let next = page["next"].as_str().unwrap();
        let rest = server.admin_ok("GET", &format!("{path}&cursor={next}"), None, StatusCode::OK).await;
        assert_eq!(rest["items"][0]["request_id"], json!(ids[0]));
        let succeeded = server.admin_ok("GET", "/jobs?state=succeeded", None, StatusCode::OK).await;
        assert!(succeeded["items"].as_array().unwrap().is_empty());
        let (status, _) = server.admin("GET", "/jobs?state=bogus", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = server.admin("GET", "/jobs/no-such-job", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
    .await;
}

/// An app with a `message_url` gets the finished job pushed, signed WeChat's way.
#[tokio::test]
async fn finished_jobs_are_pushed_to_the_message_url() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let provider = JobProvider::start(0).await;
        let market = job_market(&server, &provider.url("/echo"), "async", 1).await;
        server
            .admin_ok(
                "PATCH",
                &format!("/apps/{}", market.appid),
                Some(json!({"message_url": provider.url("/push?from=souk"), "message_token": "push-token"})),
                StatusCode::OK,
            )
            .await;
        let request_id = submit_ok(&server, &market, json!({"p": 1})).await;
        assert_eq!(server.souk.run_due_jobs(WORKER).await, 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while provider.pushes().is_empty() {
            assert!(Instant::now() < deadline, "no push arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pushed = provider.pushes().remove(0);
        assert_eq!(pushed.param("from"), Some("souk"), "the URL's own query is kept");
        let (timestamp, nonce) = (pushed.param("timestamp").unwrap(), pushed.param("nonce").unwrap());
        assert_eq!(
            pushed.param("signature"),
            Some(push_signature("push-token", timestamp, nonce).as_str())
        );
        let event: Value = serde_json::from_slice(&pushed.body).unwrap();
        assert_eq!(event["ToUserName"], json!(market.appid));
        assert_eq!(event["MsgType"], json!("event"));
        assert_eq!(event["Event"], json!("servicemarket_async_api_result"));
        assert_eq!(event["Service"], json!(market.service_id));
        assert_eq!(event["Api"], json!("Job"));
        assert_eq!(event["RequestID"], json!(request_id));
        assert_eq!(event["CreateTime"], json!(server.clock_now() / 1000));
        let data: Value = serde_json::from_str(event["Data"].as_str().unwrap()).unwrap();
        assert_eq!(data["echo"], json!({"p": 1}));
    })
    .await;
}

/// The real worker pool (opt-in in the harness) runs submitted jobs without being stepped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_pool_runs_jobs() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let workers = server.start_job_workers();
        let provider = JobProvider::start(0).await;
        let market = job_market(&server, &provider.url("/delay"), "async", 20).await;
        let mut ids = Vec::new();
        for i in 0..8 {
            ids.push(submit_ok(&server, &market, json!({ "i": i })).await);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for request_id in &ids {
            loop {
                let answer = retrieve(&server, &market.token, request_id).await;
                if errcode(&answer) == 0 {
                    break;
                }
                assert_eq!(errcode(&answer), 9301015, "{answer}");
                assert!(Instant::now() < deadline, "job {request_id} did not finish");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(server.units_left(&market.package_id).await, 12);
        assert_eq!(provider.seen().len(), 8, "each job called once");
        workers.abort();
    })
    .await;
}
