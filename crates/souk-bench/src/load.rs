//! The load generator: C workers on one keep-alive HTTP/1.1 client send N requests to a target and
//! check every answer; latencies are kept whole so percentiles are exact.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{json, Value};
use souk_types::sign::{format_timestamp, sign, SignMethod};

/// The client every request goes through.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A request that takes longer than this counts as a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A keep-alive HTTP/1.1 client with one idle connection per worker and `TCP_NODELAY`.
pub fn http_client(concurrency: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// Where the load goes, and how a request is made and its answer checked.
#[derive(Debug, Clone)]
pub enum Target {
    /// Straight to the provider, signed exactly as souk signs its requests.
    Direct {
        /// The provider.
        provider: SocketAddr,
        /// The service's signing secret.
        secret: String,
        /// The service id souk would send.
        service_id: String,
        /// The API name souk would send.
        api: String,
        /// The caller's appid souk would send.
        appid: String,
    },
    /// Through souk: `POST /wxa/servicemarket?access_token=`, sync.
    Souk {
        /// souk.
        souk: SocketAddr,
        /// The app's access token.
        access_token: String,
        /// The service.
        service_id: String,
        /// The API.
        api: String,
        /// Makes `client_msg_id` unique across runs against the same souk.
        run_tag: String,
    },
}

impl Target {
    /// The `n`-th request of `phase`; its body carries `n` so the answer can be checked.
    fn request(&self, phase: &str, n: usize) -> Request<Full<Bytes>> {
        let (host, path, body) = self.parts(phase, n);
        Request::post(format!("http://{host}{path}"))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("the URI and headers are valid by construction")
    }

    /// The `n`-th request of `phase` as its server, path with query, and body.
    pub fn parts(&self, phase: &str, n: usize) -> (SocketAddr, String, String) {
        match self {
            Target::Direct {
                provider,
                secret,
                service_id,
                api,
                appid,
            } => {
                let body = json!({ "n": n }).to_string();
                let mut params: Vec<(&str, String)> = vec![
                    ("request_id", format!("bench-{phase}-{n}")),
                    ("service", service_id.clone()),
                    ("api", api.clone()),
                    ("appid", appid.clone()),
                    ("async", "0".to_owned()),
                    ("timestamp", format_timestamp(now_ms())),
                ];
                let signature = sign(SignMethod::Md5, secret, &params, Some(body.as_bytes()));
                params.push(("sign", signature));
                let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
                (*provider, format!("/echo?{query}"), body)
            }
            Target::Souk {
                souk,
                access_token,
                service_id,
                api,
                run_tag,
            } => {
                let body = json!({
                    "service": service_id,
                    "api": api,
                    "data": { "n": n },
                    "client_msg_id": format!("bench-{run_tag}-{phase}-{n}"),
                })
                .to_string();
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("access_token", access_token)
                    .finish();
                (*souk, format!("/wxa/servicemarket?{query}"), body)
            }
        }
    }

    /// Whether the answer to request `n` is a success that echoes `n`.
    fn check(&self, n: usize, status: StatusCode, body: &[u8]) -> Result<(), String> {
        if status != StatusCode::OK {
            return Err(format!("HTTP {status}: {}", excerpt(body)));
        }
        let echoed = match self {
            Target::Direct { .. } => {
                let envelope: Envelope =
                    serde_json::from_slice(body).map_err(|err| format!("not the envelope ({err}): {}", excerpt(body)))?;
                if !envelope.success {
                    return Err(format!("success false: {} {}", envelope.error_code, envelope.error_message));
                }
                envelope.data
            }
            Target::Souk { .. } => {
                let answer: InvokeAnswer =
                    serde_json::from_slice(body).map_err(|err| format!("not an invoke answer ({err}): {}", excerpt(body)))?;
                if answer.errcode != 0 {
                    return Err(format!("errcode {}: {}", answer.errcode, answer.errmsg));
                }
                let data = answer.data.ok_or("errcode 0 without data")?;
                serde_json::from_str(&data).map_err(|err| format!("data is not a JSON string ({err})"))?
            }
        };
        match echoed.pointer("/echo/n").and_then(Value::as_u64) {
            Some(echoed_n) if echoed_n == n as u64 => Ok(()),
            _ => Err(format!("the answer does not echo n={n}: {echoed}")),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    success: bool,
    #[serde(default)]
    data: Value,
    #[serde(rename = "errorCode", default)]
    error_code: Value,
    #[serde(rename = "errorMessage", default)]
    error_message: Value,
}

#[derive(Deserialize)]
struct InvokeAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    data: Option<String>,
}

/// What one run of a phase measured.
#[derive(Debug)]
pub struct Outcome {
    /// Requests sent.
    pub requests: usize,
    /// Requests whose answer was not a success (or that failed or timed out).
    pub failures: usize,
    /// What went wrong with the first failure, as an example.
    pub first_failure: Option<String>,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Every request's latency in microseconds, sorted.
    pub latencies_us: Vec<u64>,
}

impl Outcome {
    /// Requests completed per second of wall time.
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The latency at quantile `q` (0..=1) in milliseconds, nearest rank.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = (q * self.latencies_us.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_us.len()) - 1;
        self.latencies_us[index] as f64 / 1000.0
    }

    /// Successful requests.
    pub fn successes(&self) -> usize {
        self.requests - self.failures
    }
}

/// Sends `total` requests of `phase` to `target` from `concurrency` workers and checks each answer.
pub async fn run(client: &HttpClient, target: &Arc<Target>, phase: &'static str, total: usize, concurrency: usize) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(total).max(1))
        .map(|_| tokio::spawn(worker(client.clone(), Arc::clone(target), phase, total, Arc::clone(&next))))
        .collect();
    let mut outcome = Outcome {
        requests: 0,
        failures: 0,
        first_failure: None,
        elapsed: Duration::ZERO,
        latencies_us: Vec::with_capacity(total),
    };
    for worker in workers {
        let part = worker.await.unwrap_or_else(|err| WorkerOutcome {
            latencies_us: Vec::new(),
            failures: 0,
            first_failure: Some(format!("a worker panicked: {err}")),
        });
        outcome.requests += part.latencies_us.len();
        outcome.failures += part.failures;
        outcome.first_failure = outcome.first_failure.or(part.first_failure);
        outcome.latencies_us.extend(part.latencies_us);
    }
    outcome.elapsed = started.elapsed();
    outcome.latencies_us.sort_unstable();
    outcome
}

struct WorkerOutcome {
    latencies_us: Vec<u64>,
    failures: usize,
    first_failure: Option<String>,
}

async fn worker(client: HttpClient, target: Arc<Target>, phase: &'static str, total: usize, next: Arc<AtomicUsize>) -> WorkerOutcome {
    let mut outcome = WorkerOutcome {
        latencies_us: Vec::new(),
        failures: 0,
        first_failure: None,
    };
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            return outcome;
        }
        let request = target.request(phase, n);
        let started = Instant::now();
        let result = tokio::time::timeout(REQUEST_TIMEOUT, send(&client, request)).await;
        let latency = started.elapsed();
        let checked = match result {
            Err(_) => Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())),
            Ok(Err(err)) => Err(err),
            Ok(Ok((status, body))) => target.check(n, status, &body),
        };
        outcome.latencies_us.push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        if let Err(why) = checked {
            outcome.failures += 1;
            outcome.first_failure.get_or_insert(why);
        }
    }
}

async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
    let response = client.request(request).await.map_err(|err| format!("request failed: {err:?}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|err| format!("reading the answer failed: {err}"))?
        .to_bytes();
    Ok((status, body))
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(latencies_us: Vec<u64>) -> Outcome {
        Outcome {
            requests: latencies_us.len(),
            failures: 0,
            first_failure: None,
            elapsed: Duration::from_secs(2),
            latencies_us,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let measured = outcome((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!(measured.percentile_ms(0.5), 50.0);
        assert_eq!(measured.percentile_ms(0.99), 99.0);
        assert_eq!(measured.percentile_ms(1.0), 100.0);
        assert_eq!(measured.requests_per_second(), 50.0);
        assert_eq!(outcome(vec![]).percentile_ms(0.5), 0.0);
    }

    fn direct() -> Target {
        Target::Direct {
            provider: "127.0.0.1:9000".parse().unwrap(),
            secret: "s".into(),
            service_id: "svc".into(),
            api: "Echo".into(),
            appid: "wx1".into(),
        }
    }

    /// The direct request must pass the provider's own verifier, the one souk's requests pass.
    #[test]
    fn direct_requests_are_signed_like_souk_signs() {
        let request = direct().request("measure", 7);
        let query = souk_sdk::provider::parse_query(request.uri().query().unwrap());
        assert_eq!(query.iter().find(|(k, _)| k == "async").map(|(_, v)| v.as_str()), Some("0"));
        let body = br#"{"n":7}"#;
        assert_eq!(souk_sdk::provider::verify_request("s", &query, body, now_ms(), 60_000), Ok(()));
    }

    #[test]
    fn answers_are_checked() {
        let target = direct();
        let good = br#"{"success":true,"data":{"echo":{"n":3}},"errorCode":null,"errorMessage":null}"#;
        assert_eq!(target.check(3, StatusCode::OK, good), Ok(()));
        assert!(target.check(4, StatusCode::OK, good).is_err());
        assert!(target.check(3, StatusCode::BAD_GATEWAY, good).is_err());
        assert!(target
            .check(3, StatusCode::OK, br#"{"success":false,"errorCode":"x","errorMessage":"y"}"#)
            .is_err());
        let souk = Target::Souk {
            souk: "127.0.0.1:8080".parse().unwrap(),
            access_token: "t".into(),
            service_id: "svc".into(),
            api: "Echo".into(),
            run_tag: "r".into(),
        };
        let answer = br#"{"errcode":0,"errmsg":"ok","data":"{\"echo\":{\"n\":3}}"}"#;
        assert_eq!(souk.check(3, StatusCode::OK, answer), Ok(()));
        assert!(souk
            .check(3, StatusCode::OK, br#"{"errcode":9301010,"errmsg":"consumption failure"}"#)
            .is_err());
    }
}
