//! Black-box test of the built `souk-example-provider`: started on port 0, called with requests signed
//! the way souk signs them, and with requests that are not.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use souk_types::sign::{format_timestamp, sign, SignMethod};

const SECRET: &str = "provider-test-secret";

/// The running provider; killed when dropped so a failing test leaves no process behind.
struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_souk-example-provider"))
        .args(["--listen", "127.0.0.1:0", "--secret", SECRET])
        .env_remove("SOUK_PROVIDER_LISTEN")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start souk-example-provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the start line");
    let base = line
        .trim()
        .strip_prefix("souk-example-provider listening on ")
        .unwrap_or_else(|| panic!("unexpected start line {line:?}"))
        .to_owned();
    assert!(!base.ends_with(":0"), "the real port is printed: {base}");
    Running { child, base }
}

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// The query souk sends, plus `extra` upstream parameters, signed over `body` with `secret`.
fn souk_query(secret: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<(String, String)> {
    let mut query: Vec<(String, String)> = [
        ("request_id", "req-1"),
        ("service", "wx79ac3de8be320b71"),
        ("api", "Echo"),
        ("appid", "wx0123456789abcdef"),
        ("async", "0"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    query.push(("timestamp".to_owned(), format_timestamp(now_ms())));
    let signature = sign(SignMethod::Md5, secret, &query, Some(body));
    query.push(("sign".to_owned(), signature));
    query
}

async fn post(base: &str, path: &str, query: &[(String, String)], body: &[u8]) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .query(query)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON answer")
}

#[tokio::test]
async fn signed_requests_are_echoed_and_others_refused() {
    let provider = start();
    let body = br#"{"text":"hello","n":1}"#;

    let good = post(&provider.base, "/echo", &souk_query(SECRET, &[], body), body).await;
    assert_eq!(
        good,
        json!({
            "success": true,
            "data": {
                "echo": {"text": "hello", "n": 1},
                "service": "wx79ac3de8be320b71",
                "api": "Echo",
                "request_id": "req-1",
                "appid": "wx0123456789abcdef",
            },
            "errorCode": null,
            "errorMessage": null,
        })
    );

    let bad = post(&provider.base, "/echo", &souk_query("wrong-secret", &[], body), body).await;
    assert_eq!(bad["success"], false);
    assert_eq!(bad["errorCode"], "sign-check-failure");
    assert_eq!(bad["errorMessage"], "Illegal request: signature does not match");

    let tampered = post(&provider.base, "/echo", &souk_query(SECRET, &[], body), br#"{"text":"bye","n":1}"#).await;
    assert_eq!(tampered["errorCode"], "sign-check-failure");

    let unsigned = post(&provider.base, "/echo", &[], body).await;
    assert_eq!(unsigned["errorMessage"], "Illegal request: sign is missing");
}

#[tokio::test]
async fn fail_and_slow_paths() {
    let provider = start();
    let body = b"{}";

    let failed = post(&provider.base, "/fail", &souk_query(SECRET, &[], body), body).await;
    assert_eq!(failed["success"], false);
    assert_eq!(failed["errorCode"], "demo-failure");

    // `delay_ms` belongs to the upstream URL, so it is one of the signed parameters.
    let started = std::time::Instant::now();
    let slow = post(&provider.base, "/slow", &souk_query(SECRET, &[("delay_ms", "50")], body), body).await;
    assert_eq!(slow["success"], true, "{slow}");
    assert!(started.elapsed().as_millis() >= 50);
}

#[test]
fn missing_secret_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_souk-example-provider"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("SOUK_PROVIDER_SECRET")
        .output()
        .expect("run souk-example-provider");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SOUK_PROVIDER_SECRET"), "{stderr}");
}
