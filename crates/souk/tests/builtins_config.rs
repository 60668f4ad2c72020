//! `[builtins]` in a real `souk serve --config`: the operator's rate limit on one built-in API holds per
//! app (45011), leaves other apps and other APIs alone, and the refused call is in the call log; a bad
//! section stops `souk serve` with a message naming the key.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SOUK: &str = env!("CARGO_BIN_EXE_souk");
const ADMIN_TOKEN: &str = "builtins-config-admin-token-0123";

struct Server {
    child: std::process::Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(config: &std::path::Path, data_dir: &std::path::Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(SOUK)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .env("SOUK_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{}/healthz", server.base))
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(Instant::now() < deadline, "souk did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

async fn app_token(http: &reqwest::Client, base: &str) -> (String, String) {
    let app: Value = http
        .post(format!("{base}/souk/v1/admin/apps"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "limited"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (appid, secret) = (app["appid"].as_str().unwrap(), app["secret"].as_str().unwrap());
    let token: Value = http
        .get(format!(
            "{base}/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (appid.to_owned(), token["access_token"].as_str().unwrap().to_owned())
}

/// The errcode of a code call: 0 for a PNG.
async fn create_code(http: &reqwest::Client, base: &str, token: &str) -> i64 {
    let response = http
        .post(format!("{base}/cgi-bin/wxaapp/createwxaqrcode?access_token={token}"))
        .body(r#"{"path": "pages/index"}"#)
        .send()
        .await
        .unwrap();
    if response.headers()["content-type"] == "image/png" {
        return 0;
    }
    let body: Value = response.json().await.unwrap();
    body["errcode"].as_i64().unwrap()
}

#[tokio::test]
async fn an_operators_builtin_rate_limit_holds_per_app() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("souk.toml");
    std::fs::write(
        &config,
        "[builtins]\ncpu_workers = 1\nsuperres_model_max_pixels = 0\n\n\
         [builtins.rate_limits.\"wxacode.createQRCode\"]\nper_second = 0.001\nburst = 2\n",
    )
    .unwrap();
    let server = start(&config, &dir.path().join("data")).await;
    let http = reqwest::Client::new();
    let (appid, token) = app_token(&http, &server.base).await;
    let (_, other_token) = app_token(&http, &server.base).await;

    assert_eq!(create_code(&http, &server.base, &token).await, 0);
    assert_eq!(create_code(&http, &server.base, &token).await, 0);
    assert_eq!(create_code(&http, &server.base, &token).await, 45011, "the burst of 2 is used up");
    assert_eq!(create_code(&http, &server.base, &other_token).await, 0, "the limit is per app");
    let unlimited = http
        .post(format!("{}/wxa/getwxacode?access_token={token}", server.base))
        .body(r#"{"path": "pages/index"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(unlimited.headers()["content-type"], "image/png", "other APIs are not limited");

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let calls: Value = http
            .get(format!(
                "{}/souk/v1/admin/calls?appid={appid}&service_id=souk&api=wxacode.createQRCode",
                server.base
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let codes: Vec<i64> = calls["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|call| call["errcode"].as_i64().unwrap())
            .collect();
        if codes.len() == 3 {
            assert_eq!(codes.iter().filter(|code| **code == 45011).count(), 1, "{codes:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the calls were not logged: {calls}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_bad_builtins_section_stops_serve_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("souk.toml");
    std::fs::write(&config, "[builtins.rate_limits.\"img.scan\"]\nper_second = 1\nburst = 1\n").unwrap();
    let output = Command::new(SOUK)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown api \"img.scan\"") && stderr.contains("img.scanQRCode"),
        "{stderr}"
    );
}
