//! A developer's external service, as `docs/cloud-gateway.md` tells one to write it: it looks up the
//! secret by `app_key`, recomputes souk's signature over the decoded query (minus `sign`) and, for a
//! POST, the raw body, and answers the envelope, plus fields souk must drop. Each path plays one
//! upstream behaviour.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use souk_types::sign::{self, SignMethod};

/// One request the service received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `GET` or `POST`.
    pub method: String,
    /// The path.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// Request headers (lower-case names).
    pub headers: HashMap<String, String>,
    /// Whether `sign` matched the secret registered for its `app_key`.
    pub sign_ok: bool,
}

impl Received {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// How many times a parameter was sent.
    pub fn count(&self, name: &str) -> usize {
        self.query.iter().filter(|(key, _)| key == name).count()
    }
}

#[derive(Default)]
struct Shared {
    secrets: Mutex<HashMap<String, (String, SignMethod)>>,
    received: Mutex<Vec<Received>>,
    counter: AtomicU64,
}

/// The running service.
#[derive(Clone)]
pub struct DevService {
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    /// The port.
    pub port: u16,
    shared: Arc<Shared>,
}

impl DevService {
    /// Starts the service on a loopback port.
    pub async fn start() -> DevService {
        let shared = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let router = Router::new().fallback(handle).with_state((shared.clone(), port));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        DevService {
            origin: format!("http://127.0.0.1:{port}"),
            port,
            shared,
        }
    }

    /// Registers the key and secret of a cloud app (what the developer copies from souk's answer).
    pub fn trust(&self, app_key: &str, secret: &str, method: SignMethod) {
        self.shared
            .secrets
            .lock()
            .unwrap()
            .insert(app_key.to_owned(), (secret.to_owned(), method));
    }

    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    /// The last request received.
    pub fn last(&self) -> Received {
        self.shared
            .received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the service received a request")
    }
}

/// Recomputes the signature the way `docs/cloud-gateway.md` describes, for any verifier.
fn verify(shared: &Shared, method: &Method, query: &[(String, String)], body: &[u8]) -> bool {
    let get = |name: &str| query.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let (Some(app_key), Some(given)) = (get("app_key"), get("sign")) else {
        return false;
    };
    let Some((secret, expected_method)) = shared.secrets.lock().unwrap().get(&app_key).cloned() else {
        return false;
    };
    // `sign_method` is sent whenever it is not md5.
    let announced = get("sign_method").map_or(Some(SignMethod::Md5), |name| SignMethod::parse(&name));
    if announced != Some(expected_method) {
        return false;
    }
    let body = (*method == Method::POST).then_some(body);
    sign::sign(expected_method, &secret, query, body) == given
}

async fn handle(State((shared, port)): State<(Arc<Shared>, u16)>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let sign_ok = verify(&shared, &method, &query, &body);
    let path = uri.path().to_owned();
    shared.received.lock().unwrap().push(Received {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        body: body.to_vec(),
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
            .collect(),
        sign_ok,
    });
    let envelope = |value: Value| axum::Json(value).into_response();
    match path.as_str() {
        "/hello" => {
            let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let query_map: serde_json::Map<String, Value> = query.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            envelope(json!({
                "success": true,
                "data": {"hello": "world", "method": method.as_str(), "signOk": sign_ok, "query": query_map, "body": body_json},
                "errorCode": null,
                "errorMessage": null,
                "extra": "must be dropped",
                "debug": {"internal": true}
            }))
        }
        "/count" | "/slow-count" => {
            if path == "/slow-count" {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let n = shared.counter.fetch_add(1, Ordering::SeqCst) + 1;
            envelope(json!({"success": true, "data": {"n": n}}))
        }
        "/fail" => envelope(json!({"success": false, "errorCode": "BIZ_ERR", "errorMessage": "bad thing", "trace": "x"})),
        "/fail-msg" => envelope(json!({"success": false, "errorMessage": "only msg"})),
        "/array" => envelope(json!({"success": true, "data": [1, 2]})),
        "/extra" => envelope(json!({"success": true, "data": {"a": 1}, "foo": "bar"})),
        "/falsy-zero" => envelope(json!({"success": true, "data": 0})),
        "/falsy-false" => envelope(json!({"success": true, "data": false})),
        "/falsy-empty" => envelope(json!({"success": true, "data": ""})),
        "/falsy-missing" => envelope(json!({"success": true})),
        "/no-success" => envelope(json!({"data": {"a": 1}})),
        "/html" => "<html>hello</html>".into_response(),
        "/status500" => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"success": true, "data": 1}))).into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            envelope(json!({"success": true, "data": {"late": true}}))
        }
        "/big" => envelope(json!({"success": true, "data": "x".repeat(2 * 1024 * 1024)})),
        // `localhost` is another origin than `127.0.0.1`, though the same socket.
        "/redirect-other" => (StatusCode::FOUND, [(header::LOCATION, format!("http://localhost:{port}/hello"))]).into_response(),
        "/redirect-same" => (StatusCode::FOUND, [(header::LOCATION, "/hello".to_owned())]).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
