//! Async jobs survive `kill -9`: the real `souk serve` accepts 20 async jobs against a slow provider,
//! is killed with SIGKILL while they run, and is started again on the same data (SQLite file, or a
//! fresh PostgreSQL database when `SOUK_TEST_POSTGRES_URL` is set). Every job must then finish, and
//! finish exactly once: the ledger holds one committed charge per job and the package lost exactly
//! that many units. The provider may see a request id twice (it was in flight at the kill); it always
//! sees the same one for the same job.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

const SOUK: &str = env!("CARGO_BIN_EXE_souk");
const ADMIN_TOKEN: &str = "jobs-restart-admin-token-0123456789";
const SERVICE_SECRET: &str = "jobs-restart-secret";
const JOBS: usize = 20;
/// How long the provider takes per request: long enough that the kill lands mid-flight.
const PROVIDER_DELAY: Duration = Duration::from_millis(1500);

/// A running `souk serve`, killed (SIGKILL) when dropped.
struct Souk {
    child: Child,
    base: String,
}

impl Drop for Souk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Souk {
    async fn start(data_dir: &Path, database_url: Option<&str>) -> Souk {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(SOUK);
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir)
            .env("SOUK_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("SOUK_CONFIG")
            .env_remove("SOUK_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(url) = database_url {
            command.env("SOUK_DATABASE_URL", url);
        }
        let souk = Souk {
            child: command.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/healthz", souk.base)).await {
                if response.status().is_success() {
                    return souk;
                }
            }
            assert!(Instant::now() < deadline, "souk did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}/souk/v1/admin{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn wechat(&self, path: &str, body: &Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The request ids the provider saw, with how many times.
type Seen = Arc<Mutex<BTreeMap<String, usize>>>;

/// A slow provider: waits [`PROVIDER_DELAY`], then answers the envelope with the request id.
async fn start_provider() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let router = Router::new()
        .route(
            "/slow",
            post(
                |State(seen): State<Seen>, Query(query): Query<BTreeMap<String, String>>, _body: Bytes| async move {
                    let request_id = query.get("request_id").cloned().unwrap_or_default();
                    assert_eq!(query.get("async").map(String::as_str), Some("1"));
                    *seen.lock().unwrap().entry(request_id.clone()).or_default() += 1;
                    tokio::time::sleep(PROVIDER_DELAY).await;
                    axum::Json(json!({"success": true, "data": {"request_id": request_id}}))
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, seen)
}

async fn kill_mid_flight_then_restart(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("souk-data");
    let (provider_url, seen) = start_provider().await;
    let souk = Souk::start(&data_dir, database_url.as_deref()).await;

    let app = souk.admin(reqwest::Method::POST, "/apps", Some(json!({"name": "restart"}))).await;
    let (appid, secret) = (app["appid"].as_str().unwrap(), app["secret"].as_str().unwrap());
    let service = souk
        .admin(
            reqwest::Method::POST,
            "/services",
            Some(json!({"name": "slow", "secret": SERVICE_SECRET})),
        )
        .await;
    let service_id = service["service_id"].as_str().unwrap().to_owned();
    souk.admin(
        reqwest::Method::POST,
        &format!("/services/{service_id}/apis"),
        Some(json!({"name": "Slow", "upstream_url": provider_url, "mode": "async", "timeout_ms": 10_000})),
    )
    .await;
    let units = 100;
    let package = souk
        .admin(
            reqwest::Method::POST,
            "/packages",
            Some(json!({"appid": appid, "service_id": service_id, "units": units})),
        )
        .await;
    let package_id = package["package_id"].as_str().unwrap().to_owned();
    let token: Value = reqwest::get(format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}",
        souk.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    let mut request_ids = Vec::new();
    for i in 0..JOBS {
        let body = json!({"service": service_id, "api": "Slow", "data": {"i": i}, "async": true});
        let answer = souk.wechat(&format!("/wxa/servicemarket?access_token={token}"), &body).await;
        assert_eq!(answer["errcode"], json!(0), "{answer}");
        request_ids.push(answer["request_id"].as_str().unwrap().to_owned());
    }
    // Kill once the provider is working on some of them (none can have finished yet).
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the workers never called the provider");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    souk.kill();
    let in_flight_at_kill: BTreeSet<String> = seen.lock().unwrap().keys().cloned().collect();
    assert!(!in_flight_at_kill.is_empty());

    let souk = Souk::start(&data_dir, database_url.as_deref()).await;
    // Jobs left pending are claimed at once; those in flight at the kill once their leases lapse.
    let deadline = Instant::now() + Duration::from_secs(120);
    for request_id in &request_ids {
        loop {
            let answer = souk
                .wechat(
                    &format!("/wxa/servicemarketretrieve?access_token={token}"),
                    &json!({ "request_id": request_id }),
                )
                .await;
            if answer["errcode"] == json!(0) {
                let data: Value = serde_json::from_str(answer["data"].as_str().unwrap()).unwrap();
                assert_eq!(data["request_id"], json!(request_id), "the provider saw the job's own request id");
                break;
            }
            assert_eq!(answer["errcode"], json!(9301015), "{answer}");
            assert!(Instant::now() < deadline, "job {request_id} did not finish after the restart");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Exactly once: one committed charge per job, and exactly that many units gone.
    let ledger = souk
        .admin(reqwest::Method::GET, &format!("/packages/{package_id}/ledger"), None)
        .await;
    let entries = ledger["items"].as_array().unwrap();
    let committed: Vec<&str> = entries
        .iter()
        .filter(|entry| entry["state"] == json!("committed"))
        .map(|entry| entry["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(entries.len(), JOBS, "one charge per job: {ledger}");
    assert_eq!(
        committed.iter().copied().collect::<BTreeSet<_>>(),
        request_ids.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    let package = souk.admin(reqwest::Method::GET, &format!("/packages/{package_id}"), None).await;
    assert_eq!(package["units_left"], json!(units - JOBS as i64));
    for request_id in &request_ids {
        let job = souk.admin(reqwest::Method::GET, &format!("/jobs/{request_id}"), None).await;
        assert_eq!(job["state"], json!("succeeded"), "{job}");
    }
    // `souk admin jobs list` sees the same through the SDK.
    let output = Command::new(SOUK)
        .args([
            "admin",
            "--url",
            &souk.base,
            "--token",
            ADMIN_TOKEN,
            "--json",
            "jobs",
            "list",
            "--all",
            "--appid",
            appid,
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let listed = listed["items"].as_array().unwrap();
    assert_eq!(listed.len(), JOBS);
    assert!(listed
        .iter()
        .all(|job| job["state"] == json!("succeeded") && job["package_id"] == json!(package_id)));
    // The provider saw every job; only those in flight at the kill may have been sent twice.
    let seen = seen.lock().unwrap().clone();
    for request_id in &request_ids {
        let times = seen.get(request_id).copied().unwrap_or(0);
        assert!(times >= 1, "{request_id} was never sent");
        assert!(
            times == 1 || in_flight_at_kill.contains(request_id),
            "{request_id} was sent {times} times though it was not in flight at the kill"
        );
    }
    drop(souk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_jobs_survive_kill_9() {
    kill_mid_flight_then_restart(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_jobs_survive_kill_9() {
    souk_store::conformance::with_postgres_url(|url| kill_mid_flight_then_restart(Some(url))).await;
}
