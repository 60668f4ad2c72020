//! The test harness: a real souk on a loopback port with an injected clock, a real upstream provider
//! written here, and helpers for the admin and WeChat APIs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use souk_core::calllog::CallLogWriter;
use souk_core::cdn::CdnSettings;
use souk_core::clock::{Clock, ManualClock, SystemClock};
use souk_core::ratelimit::LocalRateLimiter;
use souk_core::store::DurableStore;
use souk_core::wxacode::CodeSettings;
use souk_core::Souk;
use souk_server::cloud_transport::GuardedTransport;
use souk_server::upstream::HttpTransport;
use souk_server::{AppState, ServerSettings};

/// The admin token of test servers.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// The signing secret of test services.
pub const SERVICE_SECRET: &str = "test-service-secret";
/// The server secret key of test servers (`mix_nick` derives from it).
pub const SECRET_KEY: &str = "test-secret-key-0123456789abcdef0123456789";

tokio::task_local! {
    /// Set while a case runs as a cluster node (see [`on_both_backends`]).
    static CLUSTER_NODE: ();
}

/// Runs `case` on a cluster node: PostgreSQL, and Redis (`SOUK_TEST_REDIS_URL`) for rate limits, the
/// response cache and signals, and blobs on an S3 server started for the case. Skipped like the
/// PostgreSQL tests when `SOUK_TEST_REDIS_URL` is unset (and required under `CI`).
pub async fn with_cluster_node<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn DurableStore>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if test_redis_url().is_none() {
        return;
    }
    souk_store::conformance::with_postgres(|store| CLUSTER_NODE.scope((), case(store))).await;
}

fn test_redis_url() -> Option<String> {
    match std::env::var("SOUK_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("CI is set but SOUK_TEST_REDIS_URL is not: the cluster-node tests need Redis"),
        _ => {
            eprintln!("skipped: SOUK_TEST_REDIS_URL is not set (cluster-node variant)");
            None
        }
    }
}

/// What a cluster node adds to a test server: the S3 server (kept for the server's life).
struct ClusterParts {
    _s3: souk_s3_testserver::TestS3Server,
    s3_dir: tempfile::TempDir,
}

/// The bucket and prefix of a cluster node's blobs.
const E2E_BUCKET: &str = "souk-e2e";
const E2E_PREFIX: &str = "blobs";

/// What a cluster node shares through Redis, and its S3 blobs.
struct ClusterRoles {
    connection: souk_redis::RedisConnection,
    blobs: Arc<dyn souk_core::blob::BlobStore>,
    parts: Arc<ClusterParts>,
}

/// The Redis roles and S3 blobs of a cluster node, when the case runs as one.
async fn cluster_roles() -> Option<ClusterRoles> {
    CLUSTER_NODE.try_with(|()| ()).ok()?;
    let url = test_redis_url().expect("checked by with_cluster_node");
    let settings = souk_redis::RedisSettings {
        timeout: Duration::from_secs(2),
        key_prefix: format!("souk-e2e:{:016x}:", rand::random::<u64>()),
        ..souk_redis::RedisSettings::default()
    };
    let connection = souk_redis::RedisConnection::connect(&url, settings)
        .await
        .expect("a valid Redis URL");
    let s3_dir = tempfile::tempdir().unwrap();
    let s3 = souk_s3_testserver::TestS3Server::start(souk_s3_testserver::TestS3Options::loopback(
        s3_dir.path(),
        "souk-e2e",
        "souk-e2e-secret",
        "souk-e2e",
    ))
    .await
    .expect("the S3 test server starts");
    let options = souk_blob::BlobOptions {
        s3: souk_blob::S3Options {
            endpoint: Some(s3.endpoint()),
            access_key_id: Some("souk-e2e".to_owned()),
            secret_access_key: Some("souk-e2e-secret".to_owned()),
            allow_http: true,
            ..souk_blob::S3Options::default()
        },
    };
    let blobs = souk_blob::open_with(&format!("s3://{E2E_BUCKET}/{E2E_PREFIX}"), &options).expect("S3 blobs");
    Some(ClusterRoles {
        connection,
        blobs,
        parts: Arc::new(ClusterParts { _s3: s3, s3_dir }),
    })
}

/// A souk listening on a loopback port.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The clock souk reads.
    pub clock: Arc<ManualClock>,
    /// The domain, for flushing the call log.
    pub souk: Arc<Souk>,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The blob folder of CDN files (a fresh temporary one), kept for the server's life.
    pub blob_dir: Arc<tempfile::TempDir>,
    /// On a cluster node: its S3 server.
    _cluster: Option<Arc<ClusterParts>>,
}

impl TestServer {
    /// Starts souk on `store`. Outbound fetches of user-supplied addresses may reach private ones
    /// (`allow_private = true`), as the upstreams tests start listen on loopback.
    pub async fn start(store: Arc<dyn DurableStore>) -> TestServer {
        Self::start_with_cdn(store, |_| {}).await
    }

    /// Starts souk on `store` with the address guard of `fetch.allow_private` set as given: `false`
    /// refuses loopback, private and link-local upstreams, as `souk serve` does by default.
    pub async fn start_with_fetch(store: Arc<dyn DurableStore>, allow_private: bool) -> TestServer {
        Self::launch(store, allow_private, |_| {}, |_| {}).await
    }

    /// Starts souk on `store` with CDN files in a fresh blob folder, their settings (the defaults,
    /// with the server's URL) changed by `adjust`.
    pub async fn start_with_cdn(store: Arc<dyn DurableStore>, adjust: impl FnOnce(&mut CdnSettings)) -> TestServer {
        Self::launch(store, true, adjust, |_| {}).await
    }

    /// Starts souk on `store` with the code settings (the defaults, with the server's URL) changed by
    /// `adjust`.
    pub async fn start_with_codes(store: Arc<dyn DurableStore>, adjust: impl FnOnce(&mut CodeSettings)) -> TestServer {
        Self::launch(store, true, |_| {}, adjust).await
    }

    async fn launch(
        store: Arc<dyn DurableStore>,
        allow_private: bool,
        adjust: impl FnOnce(&mut CdnSettings),
        adjust_codes: impl FnOnce(&mut CodeSettings),
    ) -> TestServer {
        let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
        let (call_log, _task) = CallLogWriter::start(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let blob_dir = Arc::new(tempfile::tempdir().unwrap());
        let mut cdn_settings = CdnSettings::new(base.clone());
        adjust(&mut cdn_settings);
        let mut code_settings = CodeSettings::new(base.clone());
        adjust_codes(&mut code_settings);
        let cluster = cluster_roles().await;
        let (blobs, rate_limiter): (_, Arc<dyn souk_core::ratelimit::RateLimiter>) = match &cluster {
            Some(roles) => (
                roles.blobs.clone(),
                Arc::new(souk_redis::RedisRateLimiter::new(roles.connection.clone())),
            ),
            None => (
                souk_blob::open(&format!("file://{}", blob_dir.path().display())).unwrap(),
                Arc::new(LocalRateLimiter::new()),
            ),
        };
        let mut souk = Souk::new(
            store,
            clock.clone(),
            Arc::new(HttpTransport::new().unwrap()),
            rate_limiter,
            call_log,
        )
        .with_cdn(cdn_settings, blobs)
        .with_cloud_transport(Arc::new(GuardedTransport::new(allow_private).unwrap()))
        .with_secret_key(SECRET_KEY)
        .with_codes(code_settings);
        if let Some(roles) = &cluster {
            souk = souk
                .with_response_cache(Arc::new(souk_redis::RedisResponseCache::new(roles.connection.clone())))
                .with_signals(Arc::new(souk_redis::RedisSignals::new(roles.connection.clone())));
        }
        let souk = Arc::new(souk);
        souk.start_signal_listener();
        let settings = ServerSettings {
            admin_token: ADMIN_TOKEN.to_owned(),
            max_body_bytes: 64 * 1024,
        };
        let router = souk_server::app(AppState::new(souk.clone(), settings).with_image_fetch(allow_private));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestServer {
            base,
            clock,
            souk,
            http: reqwest::Client::new(),
            blob_dir,
            _cluster: cluster.map(|roles| roles.parts),
        }
    }

    /// Starts the async job worker pool, as `souk serve` does (opt-in: most tests step jobs with
    /// `souk.run_due_jobs` instead). It stops when the returned task is aborted or the test ends.
    pub fn start_job_workers(&self) -> tokio::task::JoinHandle<()> {
        self.souk.start_job_workers(souk_core::jobs::JobWorkerSettings {
            poll_interval: Duration::from_millis(20),
            ..souk_core::jobs::JobWorkerSettings::default()
        })
    }

    /// The folder blobs end up in: the blob folder, or on a cluster node the S3 server's folder of
    /// the bucket and prefix (s3s-fs keeps an object as a file at its key).
    pub fn blob_root(&self) -> std::path::PathBuf {
        match &self._cluster {
            Some(parts) => parts.s3_dir.path().join(E2E_BUCKET).join(E2E_PREFIX),
            None => self.blob_dir.path().to_owned(),
        }
    }

    /// Lets `ms` pass for rate limits: souk's clock is advanced, and on a cluster node, whose rate
    /// limits run on Redis's own clock, the test also waits that long.
    pub async fn let_time_pass(&self, ms: i64) {
        self.clock.advance_ms(ms);
        if self._cluster.is_some() {
            tokio::time::sleep(Duration::from_millis(u64::try_from(ms).unwrap_or(0))).await;
        }
    }

    /// Now, on souk's clock.
    pub fn clock_now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// An admin request; answers the status and the JSON body (`null` when empty).
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}/souk/v1/admin{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let text = response.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
            },
        )
    }

    /// An admin request that must succeed with `expect`.
    pub async fn admin_ok(&self, method: &str, path: &str, body: Option<Value>, expect: StatusCode) -> Value {
        let (status, body) = self.admin(method, path, body).await;
        assert_eq!(status, expect, "{method} {path}: {body}");
        body
    }

    /// A WeChat-style GET; the answer must be HTTP 200 JSON.
    pub async fn wechat_get(&self, path_and_query: &str) -> Value {
        let response = self.http.get(format!("{}{path_and_query}", self.base)).send().await.unwrap();
        wechat_answer(response).await
    }

    /// A WeChat-style POST of raw bytes with no content type (as wechatpy sends).
    pub async fn wechat_post(&self, path_and_query: &str, body: impl Into<reqwest::Body>) -> Value {
        let response = self
            .http
            .post(format!("{}{path_and_query}", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        wechat_answer(response).await
    }

    /// Creates an app and answers `(appid, secret)`.
    pub async fn create_app(&self) -> (String, String) {
        let app = self
            .admin_ok("POST", "/apps", Some(json!({"name": "test app"})), StatusCode::CREATED)
            .await;
        (
            app["appid"].as_str().unwrap().to_owned(),
            app["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// A fresh access token for an app.
    pub async fn token(&self, appid: &str, secret: &str) -> String {
        let answer = self
            .wechat_get(&format!(
                "/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}"
            ))
            .await;
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {answer}"))
            .to_owned()
    }

    /// An app with a token, a service and an API `Echo` at `upstream_url`, and a package of `units`.
    pub async fn market(&self, upstream_url: &str, units: i64) -> Market {
        let (appid, secret) = self.create_app().await;
        let token = self.token(&appid, &secret).await;
        let service = self
            .admin_ok(
                "POST",
                "/services",
                Some(json!({"name": "test service", "secret": SERVICE_SECRET})),
                StatusCode::CREATED,
            )
            .await;
        let service_id = service["service_id"].as_str().unwrap().to_owned();
        self.admin_ok(
            "POST",
            &format!("/services/{service_id}/apis"),
            Some(json!({"name": "Echo", "upstream_url": upstream_url, "mode": "sync", "timeout_ms": 2000})),
            StatusCode::CREATED,
        )
        .await;
        let package = self
            .admin_ok(
                "POST",
                "/packages",
                Some(json!({"appid": appid, "service_id": service_id, "units": units})),
                StatusCode::CREATED,
            )
            .await;
        Market {
            appid,
            token,
            service_id,
            package_id: package["package_id"].as_str().unwrap().to_owned(),
        }
    }

    /// Invokes an API of the market.
    pub async fn invoke(&self, market: &Market, api: &str, data: Value, client_msg_id: Option<&str>) -> Value {
        let mut body = json!({"service": market.service_id, "api": api, "data": data});
        if let Some(id) = client_msg_id {
            body["client_msg_id"] = json!(id);
        }
        self.wechat_post(&format!("/wxa/servicemarket?access_token={}", market.token), body.to_string())
            .await
    }

    /// A package's `units_left`.
    pub async fn units_left(&self, package_id: &str) -> i64 {
        self.admin_ok("GET", &format!("/packages/{package_id}"), None, StatusCode::OK).await["units_left"]
            .as_i64()
            .unwrap()
    }

    /// The calls logged so far (after flushing the batched writer).
    pub async fn calls(&self, query: &str) -> Vec<Value> {
        self.souk.call_log().flush().await;
        let list = self.admin_ok("GET", &format!("/calls?{query}"), None, StatusCode::OK).await;
        list["items"].as_array().unwrap().clone()
    }
}

async fn wechat_answer(response: reqwest::Response) -> Value {
    assert_eq!(response.status().as_u16(), 200, "WeChat-style answers are always HTTP 200");
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/json; encoding=utf-8");
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// What a test market is made of.
#[derive(Debug, Clone)]
pub struct Market {
    /// App.
    pub appid: String,
    /// A token.
    pub token: String,
    /// The service.
    pub service_id: String,
    /// The package.
    pub package_id: String,
}

/// One request the upstream saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Seen {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A real HTTP provider: `/echo`, `/fail`, `/html`, `/status500`, `/slow` (3 s), `/delay` (300 ms).
pub struct Upstream {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Every request, in arrival order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    /// Starts the provider.
    pub async fn start() -> Upstream {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let router = Router::new()
            .route("/echo", post(echo))
            .route("/delay", post(delay))
            .route(
                "/fail",
                post(|| async { axum::Json(json!({"success": false, "errorCode": "E42", "errorMessage": "card unreadable"})) }),
            )
            .route("/html", post(|| async { "<html>hello</html>" }))
            // Past the 4 MiB souk reads of an answer (a JSON string of 5 MiB).
            .route(
                "/huge",
                post(|| async { format!("{{\"success\": true, \"data\": \"{}\"}}", "x".repeat(5 << 20)) }),
            )
            .route(
                "/status500",
                post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"success": true, "data": 1}))) }),
            )
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    axum::Json(json!({"success": true, "data": 1}))
                }),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Upstream { base, seen }
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The last request.
    pub fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("the upstream saw a request")
    }
}

fn record(seen: &Mutex<Vec<Seen>>, query: Option<String>, body: &Bytes) {
    let query = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    seen.lock().unwrap().push(Seen {
        query,
        body: body.to_vec(),
    });
}

async fn echo(State(seen): State<Arc<Mutex<Vec<Seen>>>>, RawQuery(query): RawQuery, body: Bytes) -> impl IntoResponse {
    record(&seen, query, &body);
    let data: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    axum::Json(json!({"success": true, "data": {"echo": data}, "errorCode": null, "errorMessage": null, "extra": "dropped"}))
}

async fn delay(State(seen): State<Arc<Mutex<Vec<Seen>>>>, RawQuery(query): RawQuery, body: Bytes) -> impl IntoResponse {
    record(&seen, query, &body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    axum::Json(json!({"success": true, "data": {"slow": true}}))
}

/// A loopback URL nothing listens on.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}/echo")
}

/// Runs one case (a closure taking the store) on SQLite, then on a cluster node (PostgreSQL, Redis
/// and S3: [`with_cluster_node`]).
macro_rules! on_sqlite_and_cluster_node {
    ($case:expr) => {{
        souk_store::conformance::with_sqlite($case).await;
        $crate::common::with_cluster_node($case).await;
    }};
}

/// `case => sqlite_test, postgres_test;`: one case on both backends, and on a cluster node
/// (PostgreSQL, Redis and S3: [`with_cluster_node`]) as `<postgres_test>_cluster_node`.
macro_rules! on_both_backends {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {
        $(
            #[tokio::test]
            async fn $sqlite() {
                souk_store::conformance::with_sqlite($case).await;
            }

            #[tokio::test]
            async fn $postgres() {
                souk_store::conformance::with_postgres($case).await;
            }
        )*

        /// The same cases on a cluster node.
        mod cluster_node {
            $(
                #[tokio::test]
                async fn $postgres() {
                    $crate::common::with_cluster_node(super::$case).await;
                }
            )*
        }
    };
}
