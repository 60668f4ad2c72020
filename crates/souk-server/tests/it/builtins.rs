//! The built-in APIs go through the same policy step as service-market calls: one rate limit per app
//! over all its calls (market and built-in alike), refused with 45011 before any work, and every call
//! logged under the service `souk` with the API's platform name.

use axum::http::StatusCode;
use serde_json::{json, Value};
use souk_store::conformance::with_sqlite;

use crate::common::{TestServer, Upstream};

const BOUNDARY: &str = "souk-builtins-boundary";

/// A tiny PNG in a multipart `img` part.
fn image_part() -> Vec<u8> {
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::new_rgb8(8, 8)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"img\"; filename=\"a.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png.into_inner());
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn scan(server: &TestServer, token: &str) -> Value {
    let response = server
        .http
        .post(format!("{}/cv/img/qrcode?access_token={token}", server.base))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(image_part())
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

/// Answers the JSON failure of a code call, or `{"errcode": 0}` for a PNG.
async fn create_code(server: &TestServer, token: &str) -> Value {
    let response = server
        .http
        .post(format!("{}/cgi-bin/wxaapp/createwxaqrcode?access_token={token}", server.base))
        .body(json!({"path": "pages/index"}).to_string())
        .send()
        .await
        .unwrap();
    if response.headers()["content-type"] == "image/png" {
        return json!({"errcode": 0});
    }
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_apps_rate_limit_covers_builtin_and_market_calls_alike() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let upstream = Upstream::start().await;
        let market = server.market(&format!("{}/echo", upstream.base), 10).await;
        server
            .admin_ok(
                "PATCH",
                &format!("/apps/{}", market.appid),
                Some(json!({"rate_limit": {"per_second": 1.0, "burst": 2}})),
                StatusCode::OK,
            )
            .await;

        assert_eq!(server.invoke(&market, "Echo", json!({}), None).await["errcode"], 0);
        assert_eq!(create_code(&server, &market.token).await["errcode"], 0);
        let refused = scan(&server, &market.token).await;
        assert_eq!(refused["errcode"], 45011, "{refused}");
        let message = refused["errmsg"].as_str().unwrap();
        assert!(message.contains("rate limit") && message.contains("rid: "), "{message}");
        assert_eq!(
            server.invoke(&market, "Echo", json!({}), None).await["errcode"],
            9301011,
            "the built-in call used the app's budget"
        );

        server.clock.advance_ms(1_000);
        let found = scan(&server, &market.token).await;
        assert_eq!(found["errcode"], 0, "{found}");
        assert_eq!(found["img_size"], json!({"w": 8, "h": 8}));

        let calls = server.calls("service_id=souk").await;
        let seen: Vec<(String, i64)> = calls
            .iter()
            .map(|call| (call["api"].as_str().unwrap().to_owned(), call["errcode"].as_i64().unwrap()))
            .collect();
        for expected in [("wxacode.createQRCode", 0), ("img.scanQRCode", 45011), ("img.scanQRCode", 0)] {
            assert!(seen.contains(&(expected.0.to_owned(), expected.1)), "{expected:?} in {seen:?}");
        }
        assert!(calls.iter().all(|call| call["appid"] == market.appid.as_str()));
        let scans = server.calls("service_id=souk&api=img.scanQRCode").await;
        assert_eq!(scans.len(), 2, "{scans:?}");
    })
    .await;
}

#[tokio::test]
async fn every_builtin_route_is_logged_under_its_platform_name() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        let token = server.token(&appid, &secret).await;
        let get = |path: String| {
            let http = server.http.clone();
            async move { http.post(path).body("{}").send().await.unwrap() }
        };
        let base = &server.base;
        get(format!("{base}/wxa/getwxacode?access_token={token}")).await;
        get(format!("{base}/wxa/getwxacodeunlimit?access_token={token}")).await;
        get(format!("{base}/cv/img/aicrop?access_token={token}")).await;
        get(format!("{base}/cv/img/superresolution?access_token={token}")).await;
        get(format!("{base}/cgi-bin/media/upload?access_token={token}&type=image")).await;
        get(format!("{base}/cgi-bin/message/custom/send?access_token={token}")).await;
        get(format!("{base}/cgi-bin/message/custom/typing?access_token={token}")).await;
        for path in ["/cgi-bin/media/get?media_id=nothing&", "/wxa/getpaidunionid?openid=nobody&"] {
            server.http.get(format!("{base}{path}access_token={token}")).send().await.unwrap();
        }
        let calls = server.calls(&format!("appid={appid}&service_id=souk")).await;
        let mut apis: Vec<&str> = calls.iter().map(|call| call["api"].as_str().unwrap()).collect();
        apis.sort_unstable();
        assert_eq!(
            apis,
            [
                "auth.getPaidUnionId",
                "customerServiceMessage.getTempMedia",
                "customerServiceMessage.send",
                "customerServiceMessage.setTyping",
                "customerServiceMessage.uploadTempMedia",
                "img.aiCrop",
                "img.superresolution",
                "wxacode.get",
                "wxacode.getUnlimited",
            ]
        );
        assert!(
            calls.iter().all(|call| call["errcode"] != 0),
            "each of these bodies is refused: {calls:?}"
        );
    })
    .await;
}
