//! Mini-program codes end to end: each route answers a PNG of the exact width that decodes (with rxing)
//! to a souk URL whose page answers what the code points at; every errcode provoked over HTTP; the
//! lifetime limit (45029) with a small limit, identical parameters counted once; wechatpy's body shape.

use serde_json::{json, Value};
use souk_store::conformance::Store;

use crate::common::TestServer;

/// The app's registered pages and theme colour.
const HOME: &str = "pages/index/index";
const OTHER_PAGE: &str = "pages/goods/detail";

/// An app with pages and a theme colour, and its token.
async fn app_token(server: &TestServer) -> (String, String) {
    let app = server
        .admin_ok(
            "POST",
            "/apps",
            Some(json!({"name": "codes", "pages": [HOME, OTHER_PAGE], "theme_color": "#0754B4"})),
            reqwest::StatusCode::CREATED,
        )
        .await;
    let appid = app["appid"].as_str().unwrap().to_owned();
    let token = server.token(&appid, app["secret"].as_str().unwrap()).await;
    (appid, token)
}

/// What a code route answered.
enum Answer {
    Png(Vec<u8>),
    Json(Value),
}

/// POSTs `body` (raw, no content type, as wechatpy does) to a code route.
async fn post(server: &TestServer, path: &str, token: &str, body: impl Into<reqwest::Body>) -> Answer {
    let response = server
        .http
        .post(format!("{}{path}?access_token={token}", server.base))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let bytes = response.bytes().await.unwrap().to_vec();
    if content_type == "image/png" {
        Answer::Png(bytes)
    } else {
        assert!(content_type.starts_with("application/json"), "{content_type}");
        Answer::Json(serde_json::from_slice(&bytes).unwrap())
    }
}

/// Decodes a PNG: its size, the text of its code (composited over white), and its corner pixel.
fn decode(png: &[u8]) -> (u32, u32, String, [u8; 4]) {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .unwrap()
        .to_rgba8();
    let (width, height) = image.dimensions();
    let luma = image
        .pixels()
        .map(|pixel| {
            let [r, g, b, a] = pixel.0.map(u32::from);
            let over_white = |c: u32| (c * a + 255 * (255 - a)) / 255;
            u8::try_from((299 * over_white(r) + 587 * over_white(g) + 114 * over_white(b)) / 1000).unwrap()
        })
        .collect();
    let found = rxing::helpers::detect_in_luma(luma, width, height, Some(rxing::BarcodeFormat::QR_CODE)).expect("a readable code");
    (width, height, found.getText().to_owned(), image.get_pixel(0, 0).0)
}

/// A code route that must answer a PNG `width` wide; answers the URL it holds and its corner pixel.
async fn code_url(server: &TestServer, path: &str, token: &str, body: Value, width: u32) -> (String, [u8; 4]) {
    let Answer::Png(png) = post(server, path, token, body.to_string()).await else {
        panic!("{path} {body}: not a png");
    };
    let (w, h, url, corner) = decode(&png);
    assert_eq!((w, h), (width, width), "{path} {body}");
    assert!(url.starts_with(&format!("{}/souk/v1/codes/", server.base)), "{url}");
    (url, corner)
}

/// The JSON a code URL answers.
async fn target(server: &TestServer, url: &str) -> Value {
    let response = server.http.get(url).header("accept", "application/json").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

/// A code route that must fail with `errcode`.
async fn refused(server: &TestServer, path: &str, token: &str, body: &str, errcode: i64) {
    match post(server, path, token, body.to_owned()).await {
        Answer::Json(answer) => {
            assert_eq!(answer["errcode"], json!(errcode), "{path} {body}: {answer}");
            assert!(answer["errmsg"].as_str().unwrap().contains("rid: "), "{answer}");
        }
        Answer::Png(_) => panic!("{path} {body}: a png, not {errcode}"),
    }
}

const QRCODE: &str = "/cgi-bin/wxaapp/createwxaqrcode";
const GET: &str = "/wxa/getwxacode";
const UNLIMIT: &str = "/wxa/getwxacodeunlimit";

async fn codes_point_at_what_was_asked(store: Store) {
    let server = TestServer::start(store).await;
    let (appid, token) = app_token(&server).await;

    let (url, corner) = code_url(&server, QRCODE, &token, json!({"path": "pages/index/index?id=页&x=1"}), 430).await;
    assert_eq!(corner, [255, 255, 255, 255]);
    assert_eq!(
        target(&server, &url).await,
        json!({"appid": appid, "path": "pages/index/index?id=页&x=1"})
    );

    // wechatpy's shape: every field, line colour as strings.
    let wechatpy = json!({"path": "pages/a?b=c", "width": 1280, "auto_color": false,
        "line_color": {"r": "0", "g": "0", "b": "0"}, "is_hyaline": false});
    let (url, _) = code_url(&server, GET, &token, wechatpy, 1280).await;
    assert_eq!(
        target(&server, &url).await,
        json!({"appid": appid, "path": "pages/a?b=c", "env_version": "release"})
    );

    let transparent = json!({"path": "p", "width": 280, "is_hyaline": true, "auto_color": true, "env_version": "trial"});
    let (url, corner) = code_url(&server, GET, &token, transparent, 280).await;
    assert_eq!(corner[3], 0, "transparent background");
    assert_eq!(target(&server, &url).await["env_version"], json!("trial"));

    let unlimited = json!({"scene": "id=42&from='x'", "page": OTHER_PAGE, "width": 500, "line_color": {"r": 10, "g": "120", "b": 30}});
    let (url, _) = code_url(&server, UNLIMIT, &token, unlimited, 500).await;
    assert_eq!(
        target(&server, &url).await,
        json!({"appid": appid, "page": OTHER_PAGE, "scene": "id=42&from='x'", "env_version": "release"})
    );
    // A person gets a page, with everything escaped; `?format=json` answers JSON too.
    let page = server.http.get(&url).send().await.unwrap();
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("id=42&amp;from=&#39;x&#39;") && !html.contains("'x'"), "{html}");
    let json: Value = server
        .http
        .get(format!("{url}?format=json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["scene"], json!("id=42&from='x'"));

    // wechatpy's unlimited shape: no page (the home page), check_path defaults to true.
    let (url, _) = code_url(
        &server,
        UNLIMIT,
        &token,
        json!({"scene": "s", "width": 430, "auto_color": false,
        "line_color": {"r": "0", "g": "0", "b": "0"}, "is_hyaline": false}),
        430,
    )
    .await;
    assert_eq!(target(&server, &url).await["page"], json!(HOME));

    // Identical parameters: the same code, the same URL.
    let (first, _) = code_url(&server, QRCODE, &token, json!({"path": "same"}), 430).await;
    let (again, _) = code_url(&server, QRCODE, &token, json!({"path": "same"}), 430).await;
    assert_eq!(first, again);

    // Unknown ids are 404s in souk's style.
    let missing = server
        .http
        .get(format!("{}/souk/v1/codes/AAAAAAAAAAAA", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    let calls = server.calls(&format!("appid={appid}&limit=100")).await;
    for route in ["createwxaqrcode", "getwxacode", "getwxacodeunlimit"] {
        assert!(
            calls.iter().any(|call| call["route"] == json!(route)),
            "{route} calls are logged: {calls:?}"
        );
    }
}

async fn every_errcode(store: Store) {
    let server = TestServer::start(store).await;
    let (_, token) = app_token(&server).await;
    refused(&server, QRCODE, &token, "", 44002).await;
    refused(&server, QRCODE, &token, "not json", 40159).await;
    refused(&server, QRCODE, &token, r#"{"path":""}"#, 40159).await;
    refused(&server, QRCODE, &token, &json!({"path": "a".repeat(129)}).to_string(), 40159).await;
    refused(&server, QRCODE, &token, r#"{"path":"p?scancode_time=1"}"#, 85096).await;
    refused(&server, QRCODE, &token, r#"{"path":"p","width":1281}"#, 40097).await;
    refused(&server, GET, &token, &json!({"path": "a".repeat(1025)}).to_string(), 40159).await;
    refused(&server, GET, &token, r#"{"path":"p","line_color":{"r":"300","g":0,"b":0}}"#, 40097).await;
    refused(&server, GET, &token, r#"{"path":"p","env_version":"beta"}"#, 40097).await;
    refused(&server, GET, &token, r#"{"path":"p","is_hyaline":"yes"}"#, 47001).await;
    refused(&server, UNLIMIT, &token, r#"{"scene":"a b"}"#, 40129).await;
    refused(&server, UNLIMIT, &token, &json!({"scene": "s".repeat(33)}).to_string(), 40169).await;
    refused(&server, UNLIMIT, &token, "[]", 40169).await;
    refused(&server, UNLIMIT, &token, r#"{"scene":"x","page":"/pages/index/index"}"#, 41030).await;
    refused(&server, UNLIMIT, &token, r#"{"scene":"x","page":"pages/nope"}"#, 41030).await;
    refused(&server, UNLIMIT, &token, r#"{"scene":"x","check_path":"false"}"#, 47001).await;
    refused(&server, UNLIMIT, &token, "", 44002).await;
    refused(&server, UNLIMIT, "bad-token", r#"{"scene":"x"}"#, 40014).await;
    // check_path false lets an unregistered page through.
    code_url(
        &server,
        UNLIMIT,
        &token,
        json!({"scene": "x", "page": "pages/nope", "check_path": false}),
        430,
    )
    .await;
    // The wrong method.
    let answer: Value = server
        .http
        .get(format!("{}{GET}?access_token={token}", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["errcode"], json!(43002));
}

async fn the_lifetime_limit(store: Store) {
    let server = TestServer::start_with_codes(store, |settings| settings.limit = 2).await;
    let (_, token) = app_token(&server).await;
    code_url(&server, QRCODE, &token, json!({"path": "one"}), 430).await;
    code_url(&server, GET, &token, json!({"path": "two"}), 430).await;
    // Shared by both limited kinds; identical parameters and unlimited codes still answer.
    refused(&server, QRCODE, &token, r#"{"path":"three"}"#, 45029).await;
    refused(&server, GET, &token, r#"{"path":"three"}"#, 45029).await;
    code_url(&server, QRCODE, &token, json!({"path": "one"}), 430).await;
    code_url(&server, UNLIMIT, &token, json!({"scene": "free"}), 430).await;
    // Another app has its own count.
    let (_, other) = app_token(&server).await;
    code_url(&server, GET, &other, json!({"path": "three"}), 430).await;
}

on_both_backends! {
    codes_point_at_what_was_asked => sqlite_codes_point_at_what_was_asked, postgres_codes_point_at_what_was_asked;
    every_errcode => sqlite_every_errcode, postgres_every_errcode;
    the_lifetime_limit => sqlite_the_lifetime_limit, postgres_the_lifetime_limit;
}
