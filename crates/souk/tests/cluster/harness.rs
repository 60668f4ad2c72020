//! The cluster harness: real `souk serve` processes (the binary) on loopback ports, each with its own
//! data dir, sharing a fresh PostgreSQL database on the machine's server, the machine's Redis through
//! a [`RedisProxy`] the test can cut, one admin token, one secret key and one blob store (a shared
//! folder, or an S3 server).
//!
//! Backends: `SOUK_TEST_POSTGRES_URL` and `SOUK_TEST_REDIS_URL`. Unset, the tests print why and
//! pass, except under `CI`, where they fail; set but unreachable, they fail. The database is created
//! per test and dropped afterwards, also when the test fails (`souk_store::conformance`'s harness).
//!
//! Clusters run one at a time in a test process ([`with_backends`] holds a lock): the suite checks
//! timing bounds (1 s propagation, rates), which a 2-core machine running several clusters at once
//! would blur. A node's output goes to a log file in the cluster's folder; when a test fails, the
//! tail of every node's log is printed.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::redis_proxy::{redis_address, RedisProxy};

const SOUK: &str = env!("CARGO_BIN_EXE_souk");
/// The admin token of every node.
pub const ADMIN_TOKEN: &str = "cluster-admin-token-0123456789abcdef";
/// The server secret key of every node.
const SECRET_KEY: &str = "cluster-secret-key-0123456789abcdef0123456789";
/// The signing secret of the test services.
pub const SERVICE_SECRET: &str = "cluster-service-secret";
const POSTGRES_URL_VAR: &str = "SOUK_TEST_POSTGRES_URL";
const REDIS_URL_VAR: &str = "SOUK_TEST_REDIS_URL";
/// How long one node may take to become healthy (a fresh database is migrated by the first).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The bound on any one HTTP exchange of a test.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The bound on one Redis rate-limit check on every node. Above the 50 ms default so a busy 2-core
/// machine running three nodes does not turn slow answers into policy answers mid-measurement.
const REDIS_TIMEOUT_MS: u64 = 250;

/// One cluster at a time per test process.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The machine's services a cluster runs on.
#[derive(Debug, Clone)]
pub struct Backends {
    /// A fresh database of its own.
    pub database_url: String,
    /// The machine's Redis (nodes reach it through a proxy).
    pub redis_url: String,
}

/// Runs `case` with a fresh database and the machine's Redis, or skips it (saying so) when they are
/// not configured outside CI.
pub async fn with_backends<F, Fut>(case: F)
where
    F: FnOnce(Backends) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let configured = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
    let in_ci = std::env::var_os("CI").is_some();
    let (Some(_), Some(redis_url)) = (configured(POSTGRES_URL_VAR), configured(REDIS_URL_VAR)) else {
        assert!(
            !in_ci,
            "{POSTGRES_URL_VAR} and {REDIS_URL_VAR} are required in CI: the cluster tests must run"
        );
        eprintln!("skipping cluster test: {POSTGRES_URL_VAR} or {REDIS_URL_VAR} unset");
        return;
    };
    redis_address(&redis_url).await;
    let _one_at_a_time = ONE_CLUSTER.lock().await;
    souk_store::conformance::with_postgres_url(move |database_url| case(Backends { database_url, redis_url })).await;
}

/// Where the nodes keep blobs (CDN files, media).
#[derive(Debug, Clone, Default)]
pub enum Blobs {
    /// One folder all nodes share (`file://`, the cluster's `blobs` folder).
    #[default]
    SharedFolder,
    /// An S3-compatible server (`s3://<bucket>/<prefix>`).
    S3 {
        /// `http://127.0.0.1:PORT`.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// Access key id.
        access_key: String,
        /// Secret access key.
        secret_key: String,
    },
}

/// What differs between nodes.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// `redis.rate_limits_when_down` (`None`: the default, `open`).
    pub rate_limits_when_down: Option<&'static str>,
}

/// One `souk serve` process.
pub struct Node {
    /// `A`, `B`, ...
    pub name: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The process id (job leases name it).
    pub pid: u32,
    child: Option<Child>,
    log: PathBuf,
    options: NodeOptions,
}

impl Node {
    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A WeChat-style answer with its request id and how long it took.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The `errcode` (0 when absent, as on success answers without one).
    pub errcode: i64,
    /// The JSON body.
    pub body: Value,
    /// `x-request-id`.
    pub request_id: String,
    /// Round trip.
    pub latency: Duration,
}

/// A market set up through the admin API: an app with a token, a service, its APIs, a package.
#[derive(Debug, Clone)]
pub struct Market {
    /// App.
    pub appid: String,
    /// A plain access token.
    pub token: String,
    /// Service.
    pub service_id: String,
    /// Package.
    pub package_id: String,
}

/// Several nodes and what they share.
pub struct Cluster {
    /// The nodes, in start order (`A`, `B`, `C`, ...).
    pub nodes: Vec<Node>,
    /// The link to Redis.
    pub redis: RedisProxy,
    /// A client for the test's own calls.
    pub http: reqwest::Client,
    backends: Backends,
    blobs: Blobs,
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            if failed {
                eprintln!("----- node {} ({}) log tail -----\n{}", node.name, node.base, node.log_tail(40));
            }
        }
    }
}

impl Cluster {
    /// Starts one node per entry of `nodes` on a shared blob folder and waits until each is healthy.
    pub async fn start(backends: &Backends, nodes: &[NodeOptions]) -> Cluster {
        Self::start_with_blobs(backends, nodes, Blobs::SharedFolder).await
    }

    /// Starts one node per entry of `nodes` with their blobs in `blobs` and waits until each is
    /// healthy.
    pub async fn start_with_blobs(backends: &Backends, nodes: &[NodeOptions], blobs: Blobs) -> Cluster {
        let mut cluster = Cluster {
            nodes: Vec::new(),
            redis: RedisProxy::start(&backends.redis_url).await,
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .pool_max_idle_per_host(64)
                .build()
                .expect("an HTTP client"),
            backends: backends.clone(),
            blobs,
            dir: tempfile::tempdir().expect("a temporary folder"),
        };
        for options in nodes {
            cluster.spawn_node(options);
        }
        for index in 0..cluster.nodes.len() {
            cluster.wait_healthy(index).await;
        }
        cluster
    }

    /// Starts one more node and waits until it is healthy; answers its index.
    pub async fn add_node(&mut self, options: &NodeOptions) -> usize {
        let index = self.spawn_node(options);
        self.wait_healthy(index).await;
        index
    }

    /// The shared blob folder (used with [`Blobs::SharedFolder`]).
    pub fn blob_dir(&self) -> PathBuf {
        self.dir.path().join("blobs")
    }

    fn spawn_node(&mut self, options: &NodeOptions) -> usize {
        let index = self.nodes.len();
        let node = self.launch(index, options);
        self.nodes.push(node);
        index
    }

    /// Starts the process of node `index` on a free port. The port is found by binding port 0 and
    /// letting it go, so another process may take it first: [`Cluster::wait_healthy`] then launches
    /// the node again on another one.
    fn launch(&self, index: usize, options: &NodeOptions) -> Node {
        let name = char::from(b'A' + u8::try_from(index).expect("a few nodes")).to_string();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let data_dir = self.dir.path().join(format!("node-{name}"));
        std::fs::create_dir_all(&data_dir).expect("a data dir");
        let config_path = data_dir.join("souk.toml");
        std::fs::write(&config_path, self.config(&data_dir, &base, options)).expect("write the config");
        let log = self.dir.path().join(format!("node-{name}.log"));
        let log_file = std::fs::File::create(&log).expect("a log file");
        let mut command = Command::new(SOUK);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("the log file"))
            .stderr(log_file);
        // The config file alone decides: no SOUK_* setting of the test's environment leaks in.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SOUK_") {
                command.env_remove(key);
            }
        }
        let child = command.spawn().expect("start souk serve");
        Node {
            name,
            base,
            pid: child.id(),
            child: Some(child),
            log,
            options: options.clone(),
        }
    }

    fn config(&self, data_dir: &Path, base: &str, options: &NodeOptions) -> String {
        let listen = base.trim_start_matches("http://");
        let blobs = match &self.blobs {
            Blobs::SharedFolder => json!({"url": format!("file://{}", self.blob_dir().display())}),
            Blobs::S3 {
                endpoint,
                bucket,
                access_key,
                secret_key,
            } => json!({
                "url": format!("s3://{bucket}/cluster"),
                "s3_endpoint": endpoint,
                "s3_region": "us-east-1",
                "s3_access_key_id": access_key,
                "s3_secret_access_key": secret_key,
                "s3_allow_http": true,
            }),
        };
        let config = json!({
            "listen": listen,
            "data_dir": data_dir,
            "public_url": base,
            "admin_token": ADMIN_TOKEN,
            "secret_key": SECRET_KEY,
            "database": {"url": self.backends.database_url},
            "redis": {
                "url": self.redis.url,
                "rate_limits_when_down": options.rate_limits_when_down.unwrap_or("open"),
                "timeout_ms": REDIS_TIMEOUT_MS,
            },
            "blobs": blobs,
            "fetch": {"allow_private": true},
            "jobs": {"workers": 4},
        });
        let table: toml::Table = serde_json::from_value(config).expect("the config as TOML");
        toml::to_string(&table).expect("the config as TOML")
    }

    async fn wait_healthy(&mut self, index: usize) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut launches = 1;
        loop {
            let node = &mut self.nodes[index];
            if !node.is_running() && launches < 3 && node.log_tail(10).contains("cannot listen on") {
                println!("node {}: its port was taken; starting it on another", node.name);
                if let Some(mut exited) = node.child.take() {
                    let _ = exited.wait();
                }
                let options = node.options.clone();
                self.nodes[index] = self.launch(index, &options);
                launches += 1;
                continue;
            }
            let node = &mut self.nodes[index];
            assert!(node.is_running(), "node {} exited at start:\n{}", node.name, node.log_tail(40));
            let ready = self
                .http
                .get(format!("{}/readyz", node.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} was not ready within {START_TIMEOUT:?}:\n{}",
                node.name,
                node.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9` a node and reap it.
    pub fn kill9(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let mut child = node.child.take().expect("the node runs");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap the node");
    }

    /// The base URL of node `index`.
    pub fn base(&self, index: usize) -> &str {
        &self.nodes[index].base
    }

    /// An admin request to node `index`: the status and the JSON body (`null` when empty).
    pub async fn admin(&self, index: usize, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .http
            .request(method, format!("{}/souk/v1/admin{path}", self.base(index)))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|err| panic!("admin {path}: {err}"));
        let status = response.status().as_u16();
        let text = response.text().await.expect("an admin answer");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("admin {path}: not JSON: {text}"))
        };
        (status, body)
    }

    /// An admin request that must succeed (2xx).
    pub async fn admin_ok(&self, index: usize, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.admin(index, method, path, body).await;
        assert!((200..300).contains(&status), "{method} {path} on node {index}: {status} {answer}");
        answer
    }

    /// Every item of an admin list, following `next`.
    pub async fn admin_list(&self, index: usize, path_and_query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let separator = if path_and_query.contains('?') { '&' } else { '?' };
            let path = match &cursor {
                Some(cursor) => format!("{path_and_query}{separator}cursor={cursor}"),
                None => path_and_query.to_owned(),
            };
            let page = self.admin_ok(index, "GET", &path, None).await;
            items.extend(page["items"].as_array().expect("a list").iter().cloned());
            match page["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }

    /// A WeChat-style call to node `index` (`GET` when `body` is `None`); HTTP 200 JSON expected.
    pub async fn wechat(&self, index: usize, path_and_query: &str, body: Option<&Value>) -> Reply {
        let url = format!("{}{path_and_query}", self.base(index));
        let request = match body {
            Some(body) => self.http.post(url).body(body.to_string()),
            None => self.http.get(url),
        };
        let started = Instant::now();
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("{path_and_query} on node {index}: {err}"));
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("an answer");
        let latency = started.elapsed();
        assert_eq!(status, 200, "{path_and_query} on node {index}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        Reply {
            errcode: body["errcode"].as_i64().unwrap_or(0),
            body,
            request_id,
            latency,
        }
    }

    /// Creates an app through node `index`: `(appid, secret)`.
    pub async fn create_app(&self, index: usize) -> (String, String) {
        let app = self.admin_ok(index, "POST", "/apps", Some(json!({"name": "cluster app"}))).await;
        (string(&app["appid"]), string(&app["secret"]))
    }

    /// A plain access token (`/cgi-bin/token`) from node `index`.
    pub async fn token(&self, index: usize, appid: &str, secret: &str) -> String {
        let reply = self
            .wechat(
                index,
                &format!("/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}"),
                None,
            )
            .await;
        string(&reply.body["access_token"])
    }

    /// A stable token (`/cgi-bin/stable_token`) from node `index`.
    pub async fn stable_token(&self, index: usize, appid: &str, secret: &str, force_refresh: bool) -> String {
        let body = json!({"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force_refresh});
        let reply = self.wechat(index, "/cgi-bin/stable_token", Some(&body)).await;
        string(&reply.body["access_token"])
    }

    /// An app with a token, a service with `apis` (admin API bodies), and a package of `units`, all
    /// made through node `index`.
    pub async fn market(&self, index: usize, apis: &[Value], units: i64) -> Market {
        let (appid, secret) = self.create_app(index).await;
        let token = self.token(index, &appid, &secret).await;
        let service = self
            .admin_ok(
                index,
                "POST",
                "/services",
                Some(json!({"name": "cluster service", "secret": SERVICE_SECRET})),
            )
            .await;
        let service_id = string(&service["service_id"]);
        for api in apis {
            self.admin_ok(index, "POST", &format!("/services/{service_id}/apis"), Some(api.clone()))
                .await;
        }
        let package = self
            .admin_ok(
                index,
                "POST",
                "/packages",
                Some(json!({"appid": appid, "service_id": service_id, "units": units})),
            )
            .await;
        Market {
            appid,
            token,
            service_id,
            package_id: string(&package["package_id"]),
        }
    }

    /// `POST /wxa/servicemarket` on node `index`.
    pub async fn invoke(&self, index: usize, market: &Market, api: &str, data: Value) -> Reply {
        let body = json!({"service": market.service_id, "api": api, "data": data});
        self.wechat(index, &format!("/wxa/servicemarket?access_token={}", market.token), Some(&body))
            .await
    }

    /// The package's ledger, read through node `index`.
    pub async fn ledger(&self, index: usize, package_id: &str) -> Vec<Value> {
        self.admin_list(index, &format!("/packages/{package_id}/ledger")).await
    }
}

/// A JSON string field, which must be there.
pub fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}
