//! The upstream the cluster calls, on loopback: a service-market provider that verifies souk's
//! signature (`souk_sdk::provider::verify_request`) and answers the envelope, and a cloud-gateway
//! developer service that counts what reaches it. Every request souk sends is counted, so a test can
//! tell a cached answer from an upstream call and see which request ids were sent how often.
//!
//! - `POST /echo`: `{success: true, data: {n}}`, `n` counting echo calls.
//! - `POST /job` (async): the first attempt of a request id is held (no answer, as a provider working
//!   on it would), every later one is accepted with HTTP 202, to be finished by a signed callback.
//! - `GET /count` (cloud gateway): `{success: true, data: {n}}`, `n` counting its calls; `GET
//!   /slow-count` the same after 500 ms, so concurrent calls overlap.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use souk_sdk::provider::{parse_query, verify_request};
use souk_types::sign::{self, SignMethod};
use tokio::sync::Notify;

use super::harness::SERVICE_SECRET;

/// How long a held job attempt is kept before the provider gives up on it (the node holding it is
/// killed long before).
const HOLD: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Shared {
    echo_calls: AtomicU64,
    cloud_calls: AtomicU64,
    /// Requests whose signature or timestamp did not verify, with the reason.
    refused: Mutex<Vec<String>>,
    /// Job attempts by request id.
    job_attempts: Mutex<BTreeMap<String, usize>>,
    job_attempted: Notify,
    /// Cloud apps' secrets by app key.
    cloud_secrets: Mutex<BTreeMap<String, String>>,
}

/// The running upstream.
#[derive(Clone)]
pub struct Provider {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Arc<Shared>,
}

impl Provider {
    /// Starts the upstream on a loopback port.
    pub async fn start() -> Provider {
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .route("/echo", post(echo))
            .route("/job", post(job))
            .route("/count", get(count))
            .route("/slow-count", get(slow_count))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the provider");
        let base = format!("http://{}", listener.local_addr().expect("the provider's address"));
        tokio::spawn(async move { axum::serve(listener, router).await.expect("the provider serves") });
        Provider { base, shared }
    }

    /// Echo calls so far.
    pub fn echo_calls(&self) -> u64 {
        self.shared.echo_calls.load(Ordering::SeqCst)
    }

    /// Cloud-gateway calls so far.
    pub fn cloud_calls(&self) -> u64 {
        self.shared.cloud_calls.load(Ordering::SeqCst)
    }

    /// Requests refused for a bad signature (none, if souk signs correctly on every node).
    pub fn refused(&self) -> Vec<String> {
        self.shared.refused.lock().expect("lock").clone()
    }

    /// How many attempts of the job `request_id` arrived.
    pub fn job_attempts(&self, request_id: &str) -> usize {
        self.shared.job_attempts.lock().expect("lock").get(request_id).copied().unwrap_or(0)
    }

    /// Waits (at most `within`) until the job `request_id` has been attempted `attempts` times.
    pub async fn wait_for_job_attempts(&self, request_id: &str, attempts: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.job_attempted.notified();
            if self.job_attempts(request_id) >= attempts {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.job_attempts(request_id) >= attempts;
            }
        }
    }

    /// Lets the cloud service check the signatures of a cloud app (md5, the default).
    pub fn trust_cloud_app(&self, app_key: &str, secret: &str) {
        self.shared
            .cloud_secrets
            .lock()
            .expect("lock")
            .insert(app_key.to_owned(), secret.to_owned());
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// Verifies a service-market request: its query pairs, or why it is refused (recorded).
fn verified(shared: &Shared, raw_query: Option<&str>, body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let query = parse_query(raw_query.unwrap_or_default());
    verify_request(SERVICE_SECRET, &query, body, now_ms(), 300_000).map_err(|err| {
        shared.refused.lock().expect("lock").push(err.to_string());
        err.to_string()
    })?;
    Ok(query)
}

async fn echo(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    if let Err(refusal) = verified(&shared, query.as_deref(), &body) {
        return (StatusCode::UNAUTHORIZED, refusal).into_response();
    }
    let n = shared.echo_calls.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(json!({"success": true, "data": {"n": n}})).into_response()
}

async fn job(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let query = match verified(&shared, query.as_deref(), &body) {
        Ok(query) => query,
        Err(refusal) => return (StatusCode::UNAUTHORIZED, refusal).into_response(),
    };
    let request_id = query
        .iter()
        .find(|(name, _)| name == "request_id")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    let attempt = {
        let mut attempts = shared.job_attempts.lock().expect("lock");
        let count = attempts.entry(request_id).or_default();
        *count += 1;
        *count
    };
    shared.job_attempted.notify_waiters();
    if attempt == 1 {
        tokio::time::sleep(HOLD).await;
    }
    StatusCode::ACCEPTED.into_response()
}

async fn slow_count(state: State<Arc<Shared>>, query: RawQuery) -> Response {
    tokio::time::sleep(Duration::from_millis(500)).await;
    count(state, query).await
}

async fn count(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let query = parse_query(query.as_deref().unwrap_or_default());
    let param = |name: &str| query.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let secret = param("app_key").and_then(|key| shared.cloud_secrets.lock().expect("lock").get(&key).cloned());
    let signed = match (secret, param("sign")) {
        (Some(secret), Some(given)) => sign::sign(SignMethod::Md5, &secret, &query, None) == given,
        _ => false,
    };
    if !signed {
        shared
            .refused
            .lock()
            .expect("lock")
            .push("cloud request with a bad signature".to_owned());
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let n = shared.cloud_calls.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(json!({"success": true, "data": {"n": n}})).into_response()
}
