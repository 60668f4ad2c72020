//! The README's quick start, run for real: `souk serve` as a process, the example provider, the
//! `souk admin` CLI for setup, curl-like token and invoke calls, `souk admin calls` to see the call,
//! and a graceful shutdown that keeps every logged call.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SOUK: &str = env!("CARGO_BIN_EXE_souk");
const PROVIDER_SECRET: &str = "demo-secret-123";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_souk(data_dir: &Path) -> Server {
    let port = free_port();
    let child = Command::new(SOUK)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .env_remove("SOUK_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = reqwest::get(format!("{}/healthz", server.base)).await {
            if response.status().is_success() {
                return server;
            }
        }
        assert!(Instant::now() < deadline, "souk did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn admin(server: &Server, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(SOUK)
        .args(["admin", "--url", &server.base, "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env_remove("SOUK_ADMIN_TOKEN")
        .env_remove("SOUK_URL")
        .output()
        .unwrap()
}

fn admin_json(server: &Server, data_dir: &Path, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let output = admin(server, data_dir, &full);
    assert!(
        output.status.success(),
        "souk admin {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)))
}

#[tokio::test]
async fn readme_quick_start_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("souk-data");
    let server = start_souk(&data_dir).await;
    assert!(
        data_dir.join("admin-token").exists(),
        "a first start makes an admin token in the data dir"
    );

    let provider = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let provider_url = format!("http://{}/echo", provider.local_addr().unwrap());
    tokio::spawn(souk_example_provider::serve(provider, PROVIDER_SECRET));

    let app = admin_json(&server, &data_dir, &["apps", "create", "--name", "demo"]);
    let appid = app["appid"].as_str().unwrap().to_owned();
    let secret = app["secret"].as_str().unwrap().to_owned();
    admin_json(
        &server,
        &data_dir,
        &[
            "services",
            "create",
            "--name",
            "echo",
            "--id",
            "wxdemo0000000001",
            "--secret",
            PROVIDER_SECRET,
        ],
    );
    admin_json(
        &server,
        &data_dir,
        &[
            "apis",
            "create",
            "wxdemo0000000001",
            "--name",
            "Echo",
            "--upstream-url",
            &provider_url,
        ],
    );
    admin_json(
        &server,
        &data_dir,
        &[
            "packages",
            "create",
            "--appid",
            &appid,
            "--service-id",
            "wxdemo0000000001",
            "--units",
            "100",
        ],
    );

    let token: Value = reqwest::get(format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}",
        server.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let body = json!({"service": "wxdemo0000000001", "api": "Echo", "data": {"hello": "souk"}, "client_msg_id": "demo-1"});
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/wxa/servicemarket?access_token={token}", server.base))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["errcode"], json!(0), "{answer}");
    let data: Value = serde_json::from_str(answer["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        data["echo"],
        json!({"hello": "souk"}),
        "the example provider verified the signature and echoed: {data}"
    );

    let packages = admin_json(&server, &data_dir, &["packages", "list", "--appid", &appid]);
    assert_eq!(packages["items"][0]["units_left"], json!(99));

    // The call log is batched; it reaches the store within a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let calls = loop {
        let calls = admin(&server, &data_dir, &["calls", "--appid", &appid]);
        assert!(calls.status.success());
        let text = String::from_utf8_lossy(&calls.stdout).into_owned();
        if text.contains("Echo") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        calls.contains("Echo") && calls.contains(&appid),
        "souk admin calls shows the call:\n{calls}"
    );

    let other = admin_json(&server, &data_dir, &["apps", "create", "--name", "partner"]);
    let other_appid = other["appid"].as_str().unwrap();
    admin_json(
        &server,
        &data_dir,
        &["grants", "create", "--payer", &appid, "--caller", other_appid],
    );
    let grants = admin_json(&server, &data_dir, &["grants", "list", "--payer", &appid]);
    assert_eq!(grants["items"][0]["caller_appid"].as_str(), Some(other_appid));
    let deleted = admin(
        &server,
        &data_dir,
        &["grants", "delete", "--payer", &appid, "--caller", other_appid],
    );
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));

    // getPaidUnionId's payments, reported from the command line for one of the app's users.
    let session: Value = reqwest::Client::new()
        .post(format!("{}/souk/v1/client-sessions?access_token={token}", server.base))
        .body(json!({"user": "alice"}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let openid = session["openid"].as_str().unwrap();
    let report = [
        "payments",
        "add",
        "--appid",
        &appid,
        "--openid",
        openid,
        "--transaction-id",
        "4200001",
        "--amount",
        "990",
    ];
    let payment = admin_json(&server, &data_dir, &report);
    assert_eq!(
        (payment["transaction_id"].as_str(), payment["amount"].as_i64()),
        (Some("4200001"), Some(990))
    );
    assert_eq!(
        admin_json(&server, &data_dir, &report),
        payment,
        "reporting it again answers the first report"
    );
    // The app is bound to no open account: the SDK's getPaidUnionId answers 89002.
    let wechat = souk_sdk::WechatClient::new(&server.base).unwrap();
    match wechat.get_paid_unionid(&token, openid, "4200001").await {
        Err(souk_sdk::SdkError::Wechat { errcode, .. }) => assert_eq!(errcode, 89002),
        other => panic!("expected 89002, got {other:?}"),
    }
    // The user never wrote: the SDK's custom send answers 45015.
    let text = json!({"msgtype": "text", "text": {"content": "hello"}});
    match wechat.send_custom_message(&token, openid, text).await {
        Err(souk_sdk::SdkError::Wechat { errcode, .. }) => assert_eq!(errcode, 45015),
        other => panic!("expected 45015, got {other:?}"),
    }

    let missing = admin(&server, &data_dir, &["apps", "show", "wx0000000000000000"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("error:"));
}

#[tokio::test]
async fn graceful_shutdown_keeps_the_call_log() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("souk-data");
    let mut server = start_souk(&data_dir).await;
    let app = admin_json(&server, &data_dir, &["apps", "create", "--name", "demo"]);
    let appid = app["appid"].as_str().unwrap().to_owned();
    for _ in 0..20 {
        let url = format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={appid}&secret=wrong",
            server.base
        );
        reqwest::get(url).await.unwrap();
    }
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "souk exits cleanly on SIGTERM: {exit:?}");

    let restarted = start_souk(&data_dir).await;
    let calls = admin_json(&restarted, &data_dir, &["calls", "--appid", &appid, "--limit", "100"]);
    let n_token_calls = calls["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|call| call["errcode"] == json!(40125))
        .count();
    assert_eq!(n_token_calls, 20, "every call answered before shutdown is in the log");
    drop(server);
}

#[test]
fn check_config_redacts_and_refuses_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("souk.toml");
    std::fs::write(
        &config,
        "admin_token = \"a-very-secret-admin-token\"\n[database]\nurl = \"postgres://souk:pw@db/souk\"\n",
    )
    .unwrap();
    let output = Command::new(SOUK)
        .args(["serve", "--check-config", "--config"])
        .arg(&config)
        .env_remove("SOUK_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(!shown.contains("a-very-secret") && !shown.contains(":pw@"), "{shown}");
    std::fs::write(&config, "listn = \"127.0.0.1:1\"\n").unwrap();
    let output = Command::new(SOUK)
        .args(["serve", "--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("unknown field"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
