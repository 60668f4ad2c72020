//! `img.aiCrop` end to end (`wire.md` §2, `wechat-wire.md` §7.1): a multipart `img` part with and
//! without the `ratios` form field, a loopback `img_url` with an empty body, the answer's shape and
//! every rectangle inside the image, 40097 for bad `ratios`, 101002 for data that is not an image.

use std::io::Cursor;

use axum::http::header;
use axum::routing::get;
use axum::Router;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{json, Value};
use souk_store::conformance::with_sqlite;

use crate::common::TestServer;

const BOUNDARY: &str = "souk-crop-boundary-7";

/// A flat grey 600×400 image with a bright, textured 120×120 object at (400, 60).
fn scene() -> Vec<u8> {
    let image = RgbImage::from_fn(600, 400, |x, y| {
        if (400..520).contains(&x) && (60..180).contains(&y) {
            if (x / 8 + y / 8) % 2 == 0 {
                Rgb([250, 40, 30])
            } else {
                Rgb([250, 220, 40])
            }
        } else {
            Rgb([128, 128, 128])
        }
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image).write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A multipart body with the `img` part and, if given, a `ratios` field.
fn multipart(file: &[u8], ratios: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(ratios) = ratios {
        body.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"ratios\"\r\n\r\n{ratios}\r\n").as_bytes());
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"img\"; filename=\"x.png\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn token(server: &TestServer) -> String {
    let (appid, secret) = server.create_app().await;
    server.token(&appid, &secret).await
}

/// `POST /cv/img/aicrop` with a multipart body.
async fn crop_part(server: &TestServer, token: &str, file: &[u8], ratios: Option<&str>) -> Value {
    let response = server
        .http
        .post(format!("{}/cv/img/aicrop?access_token={token}", server.base))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart(file, ratios))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

/// A loopback server answering `/scene.png` with the scene; answers its base URL.
async fn image_server() -> String {
    let image = scene();
    let router = Router::new().route(
        "/scene.png",
        get(move || async move { ([(header::CONTENT_TYPE, "image/png")], image) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

/// The crops of an answer as (left, top, right, bottom), each checked to lie inside 600×400 and to
/// hold the object.
fn crops(answer: &Value) -> Vec<(u64, u64, u64, u64)> {
    assert_eq!(answer["errcode"], json!(0), "{answer}");
    assert_eq!(answer["errmsg"], json!("ok"));
    assert_eq!(answer["img_size"], json!({"w": 600, "h": 400}));
    let field = |result: &Value, name: &str| result[name].as_u64().unwrap();
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| {
            let crop = (
                field(result, "crop_left"),
                field(result, "crop_top"),
                field(result, "crop_right"),
                field(result, "crop_bottom"),
            );
            let (left, top, right, bottom) = crop;
            assert!(left <= right && right < 600 && top <= bottom && bottom < 400, "{answer}");
            assert!(
                left <= 400 && top <= 60 && right >= 519 && bottom >= 179,
                "misses the object: {answer}"
            );
            crop
        })
        .collect()
}

#[tokio::test]
async fn crops_an_img_part_with_and_without_ratios() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let token = token(&server).await;
        let answer = crop_part(&server, &token, &scene(), Some("1,2.35")).await;
        let found = crops(&answer);
        assert_eq!(found.len(), 2, "{answer}");
        // 400×400 and 600×255 (600 / 2.35, rounded); coordinates are inclusive.
        assert_eq!((found[0].2 - found[0].0 + 1, found[0].3 - found[0].1 + 1), (400, 400));
        assert_eq!((found[1].0, found[1].2, found[1].3 - found[1].1 + 1), (0, 599, 255));

        // No ratios, or an empty field: the best two automatic crops.
        for ratios in [None, Some(""), Some(" ")] {
            let answer = crop_part(&server, &token, &scene(), ratios).await;
            assert_eq!(crops(&answer).len(), 2, "{ratios:?}: {answer}");
        }

        let calls = server.calls("").await;
        assert!(calls
            .iter()
            .any(|call| call["route"] == json!("aicrop") && call["errcode"] == json!(0)));
    })
    .await;
}

#[tokio::test]
async fn crops_an_img_url_with_an_empty_body() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let token = token(&server).await;
        let url = format!("{}/scene.png", image_server().await);
        let encoded: String = form_urlencoded::byte_serialize(url.as_bytes()).collect();
        let path = format!("/cv/img/aicrop?access_token={token}&img_url={encoded}");
        let answer = server.wechat_post(&path, Vec::new()).await;
        assert_eq!(crops(&answer).len(), 2, "{answer}");
        // `ratios` in the query string when the body is empty.
        let answer = server.wechat_post(&format!("{path}&ratios=0.5"), Vec::new()).await;
        let found = crops(&answer);
        assert_eq!(found.len(), 1, "{answer}");
        assert_eq!(found[0].2 - found[0].0 + 1, 200, "{answer}");
        // Or as a url-encoded body.
        let response = server
            .http
            .post(format!("{}{path}", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("ratios=0.5%2C1")
            .send()
            .await
            .unwrap();
        let answer: Value = response.json().await.unwrap();
        let found = crops(&answer);
        assert_eq!(found.len(), 2, "{answer}");
        assert_eq!((found[0].2 - found[0].0 + 1, found[1].2 - found[1].0 + 1), (200, 400), "{answer}");
    })
    .await;
}

#[tokio::test]
async fn bad_ratios_are_40097_and_bad_images_101002() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let token = token(&server).await;
        for ratios in ["1,1,1,1,1,1", "0", "-1", "abc", "1,,2", "1e9", "NaN"] {
            let answer = crop_part(&server, &token, &scene(), Some(ratios)).await;
            assert_eq!(answer["errcode"], json!(40097), "{ratios}: {answer}");
            assert!(answer["errmsg"].as_str().unwrap().contains("rid: "), "{answer}");
        }
        let answer = crop_part(&server, &token, b"hello, world", None).await;
        assert_eq!(answer["errcode"], json!(101002), "{answer}");
        let answer = server
            .wechat_post(&format!("/cv/img/aicrop?access_token={token}"), Vec::new())
            .await;
        assert_eq!(answer["errcode"], json!(101000), "{answer}");
        let answer = server.wechat_get(&format!("/cv/img/aicrop?access_token={token}")).await;
        assert_eq!(answer["errcode"], json!(43002), "{answer}");
        let calls = server.calls("").await;
        assert!(calls
            .iter()
            .any(|call| call["route"] == json!("aicrop") && call["errcode"] == json!(40097)));
    })
    .await;
}
