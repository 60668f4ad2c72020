//! `img.superresolution` end to end (`wire.md` §2, `wechat-wire.md` §7.3): a multipart `img` part
//! answers a `media_id` whose bytes, fetched with `GET /cgi-bin/media/get`, are an image of exactly
//! twice the width and height; 101002 for data that is not an image, 101000 for no input at all.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use serde_json::{json, Value};
use souk_store::conformance::with_sqlite;

use crate::common::TestServer;

const BOUNDARY: &str = "souk-superres-boundary-3";

/// A small textured RGBA image with a transparent corner, as PNG.
fn picture(width: u32, height: u32) -> Vec<u8> {
    let image = RgbaImage::from_fn(width, height, |x, y| {
        let alpha = if x < 3 && y < 3 { 0 } else { 255 };
        Rgba([(x * 17 % 256) as u8, (y * 29 % 256) as u8, ((x + y) * 7 % 256) as u8, alpha])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(image).write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn multipart(name: &str, file: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"x.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `POST /cv/img/superresolution` with a multipart body holding one part `name`.
async fn superres(server: &TestServer, token: &str, name: &str, file: &[u8]) -> Value {
    let response = server
        .http
        .post(format!("{}/cv/img/superresolution?access_token={token}", server.base))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart(name, file))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_img_part_becomes_temp_media_twice_as_large() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        let token = server.token(&appid, &secret).await;
        let answer = superres(&server, &token, "img", &picture(20, 13)).await;
        assert_eq!(answer["errcode"], json!(0), "{answer}");
        assert_eq!(answer["errmsg"], json!("ok"));
        let media_id = answer["media_id"].as_str().unwrap();

        let response = server
            .http
            .get(format!(
                "{}/cgi-bin/media/get?access_token={token}&media_id={media_id}",
                server.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["content-type"], "image/png");
        let bytes = response.bytes().await.unwrap();
        let image = image::load_from_memory(&bytes).unwrap();
        assert_eq!((image.width(), image.height()), (40, 26));
        assert_eq!(image.to_rgba8().get_pixel(0, 0)[3], 0, "alpha is kept");

        let calls = server.calls("").await;
        assert!(calls
            .iter()
            .any(|call| call["route"] == json!("superresolution") && call["errcode"] == json!(0)));
    })
    .await;
}

#[tokio::test]
async fn bad_inputs_are_101002_and_missing_ones_101000() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret) = server.create_app().await;
        let token = server.token(&appid, &secret).await;
        let answer = superres(&server, &token, "img", b"not an image at all").await;
        assert_eq!(answer["errcode"], json!(101002), "{answer}");
        let answer = superres(&server, &token, "other", &picture(4, 4)).await;
        assert_eq!(answer["errcode"], json!(101000), "{answer}");
        let answer: Value = server
            .http
            .post(format!("{}/cv/img/superresolution?access_token={token}", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["errcode"], json!(101000), "{answer}");
    })
    .await;
}
