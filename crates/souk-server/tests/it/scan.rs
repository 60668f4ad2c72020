//! `img.scanQRCode` end to end (`wire.md` §2, `wechat-wire.md` §7.2): codes generated with rxing's
//! writers sent as a multipart `img` part or fetched from a loopback `img_url` (with an empty POST
//! body, as wechatpy sends), the answer's shape, and 101000 / 101002 for every bad input, including
//! a loopback `img_url` on a server that refuses private addresses.

use std::io::Cursor;

use axum::http::header;
use axum::routing::get;
use axum::Router;
use image::{DynamicImage, GrayImage, ImageFormat, Luma};
use rxing::{BarcodeFormat, MultiFormatWriter, Writer};
use serde_json::{json, Value};
use souk_store::conformance::with_sqlite;

use crate::common::{closed_port_url, TestServer};

const BOUNDARY: &str = "souk-scan-boundary-3";

/// `data` as `format`, `scale` pixels a module (1D codes 80 pixels tall), at (`x`, `y`) on a white
/// canvas of `w`×`h`.
fn draw(canvas: &mut GrayImage, data: &str, format: BarcodeFormat, scale: u32, x: u32, y: u32) -> (u32, u32) {
    let matrix = MultiFormatWriter.encode(data, &format, 0, 0).unwrap();
    let (width, rows) = (matrix.getWidth(), matrix.getHeight());
    let height = if rows == 1 { 80 } else { rows * scale };
    for dy in 0..height {
        for dx in 0..width * scale {
            let row = if rows == 1 { 0 } else { dy / scale };
            if matrix.get(dx / scale, row) {
                canvas.put_pixel(x + dx, y + dy, Luma([0]));
            }
        }
    }
    (width * scale, height)
}

fn png(image: &GrayImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageLuma8(image.clone())
        .write_to(&mut out, ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn multipart(name: &str, file: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"x.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn token(server: &TestServer) -> String {
    let (appid, secret) = server.create_app().await;
    server.token(&appid, &secret).await
}

/// `POST /cv/img/qrcode` with a multipart body.
async fn scan_part(server: &TestServer, token: &str, name: &str, file: &[u8]) -> Value {
    let response = server
        .http
        .post(format!("{}/cv/img/qrcode?access_token={token}", server.base))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart(name, file))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/json; encoding=utf-8");
    response.json().await.unwrap()
}

/// `POST /cv/img/qrcode?img_url=` with an empty body.
async fn scan_url(server: &TestServer, token: &str, url: &str) -> Value {
    let encoded: String = form_urlencoded::byte_serialize(url.as_bytes()).collect();
    server
        .wechat_post(&format!("/cv/img/qrcode?access_token={token}&img_url={encoded}"), Vec::new())
        .await
}

/// A loopback server answering `/code.png` with `image`, `/text` with text, `/hop` with a redirect to
/// `/code.png`, and 404 elsewhere; answers its base URL.
async fn image_server(image: Vec<u8>) -> String {
    let router = Router::new()
        .route(
            "/code.png",
            get(move || async move { ([(header::CONTENT_TYPE, "image/png")], image) }),
        )
        .route("/text", get(|| async { "not an image" }))
        .route(
            "/hop",
            get(|| async { (axum::http::StatusCode::FOUND, [(header::LOCATION, "/code.png")]) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

fn corpus() -> GrayImage {
    let mut canvas = GrayImage::from_pixel(640, 400, Luma([255]));
    draw(&mut canvas, "https://www.qq.com", BarcodeFormat::QR_CODE, 5, 40, 40);
    draw(&mut canvas, "souk matrix", BarcodeFormat::DATA_MATRIX, 5, 420, 40);
    draw(&mut canvas, "5901234123457", BarcodeFormat::EAN_13, 3, 200, 280);
    canvas
}

#[tokio::test]
async fn scans_an_img_part_with_several_codes() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let token = token(&server).await;
        let answer = scan_part(&server, &token, "img", &png(&corpus())).await;
        assert_eq!(answer["errcode"], json!(0), "{answer}");
        assert_eq!(answer["errmsg"], json!("ok"));
        assert_eq!(answer["img_size"], json!({"w": 640, "h": 400}));
        let results = answer["code_results"].as_array().unwrap();
        let mut kinds: Vec<(&str, &str)> = results
            .iter()
            .map(|code| (code["type_name"].as_str().unwrap(), code["data"].as_str().unwrap()))
            .collect();
        kinds.sort_unstable();
        assert_eq!(
            kinds,
            [
                ("DATA_MATRIX", "souk matrix"),
                ("EAN_13", "5901234123457"),
                ("QR_CODE", "https://www.qq.com")
            ],
            "{answer}"
        );
        let qr = results.iter().find(|code| code["type_name"] == json!("QR_CODE")).unwrap();
        // rxing's QR writer adds a quiet zone of 4 modules (20 pixels) around the symbol.
        let left_top = &qr["pos"]["left_top"];
        assert!(left_top["x"].as_i64().unwrap().abs_diff(60) <= 6, "{qr}");
        assert!(left_top["y"].as_i64().unwrap().abs_diff(60) <= 6, "{qr}");
        for corner in ["right_top", "right_bottom", "left_bottom"] {
            assert!(qr["pos"][corner]["x"].is_u64(), "{qr}");
        }
        let ean = results.iter().find(|code| code["type_name"] == json!("EAN_13")).unwrap();
        assert!(ean.get("pos").is_none(), "no pos for 1D codes: {ean}");

        let calls = server.calls("").await;
        assert!(calls
            .iter()
            .any(|call| call["route"] == json!("qrcode") && call["errcode"] == json!(0)));
    })
    .await;
}

#[tokio::test]
async fn scans_an_img_url_with_an_empty_body() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let token = token(&server).await;
        let base = image_server(png(&corpus())).await;
        let answer = scan_url(&server, &token, &format!("{base}/code.png")).await;
        assert_eq!(answer["errcode"], json!(0), "{answer}");
        assert_eq!(answer["code_results"].as_array().unwrap().len(), 3, "{answer}");
        // A redirect within the allowed addresses is followed.
        let answer = scan_url(&server, &token, &format!("{base}/hop")).await;
        assert_eq!(answer["errcode"], json!(0), "{answer}");

        // A blank image: no codes, still ok.
        let blank = png(&GrayImage::from_pixel(30, 20, Luma([255])));
        let answer = scan_part(&server, &token, "img", &blank).await;
        assert_eq!(answer["code_results"], json!([]), "{answer}");
        assert_eq!(answer["img_size"], json!({"w": 30, "h": 20}));
    })
    .await;
}

#[tokio::test]
async fn bad_inputs_are_101000_and_101002() {
    with_sqlite(|store| async move {
        let server = TestServer::start(store).await;
        let token = token(&server).await;
        let base = image_server(png(&corpus())).await;
        let errcode = |answer: Value| answer["errcode"].as_i64().unwrap();

        // No input at all; an empty img part and no URL.
        assert_eq!(
            errcode(
                server
                    .wechat_post(&format!("/cv/img/qrcode?access_token={token}"), Vec::new())
                    .await
            ),
            101000
        );
        assert_eq!(errcode(scan_part(&server, &token, "img", b"").await), 101000);
        for url in [
            "not a url".to_owned(),
            format!("ftp://{}/code.png", base.trim_start_matches("http://")),
            format!("{base}/missing"),
            closed_port_url().await,
        ] {
            assert_eq!(errcode(scan_url(&server, &token, &url).await), 101000, "{url}");
        }
        // Data that is not an image, by part and by URL; an image over 2 MB.
        let answer = scan_part(&server, &token, "img", b"hello").await;
        assert_eq!(errcode(answer.clone()), 101002, "{answer}");
        assert!(answer["errmsg"].as_str().unwrap().contains("rid: "));
        assert_eq!(errcode(scan_url(&server, &token, &format!("{base}/text")).await), 101002);
        let mut big = png(&corpus());
        big.resize(2 * 1024 * 1024 + 1, 0);
        assert_eq!(errcode(scan_part(&server, &token, "img", &big).await), 101002);
        // Wrong method.
        let answer = server.wechat_get(&format!("/cv/img/qrcode?access_token={token}")).await;
        assert_eq!(errcode(answer), 43002);
    })
    .await;
}

#[tokio::test]
async fn a_server_refusing_private_addresses_answers_101000_for_loopback() {
    with_sqlite(|store| async move {
        let server = TestServer::start_with_fetch(store, false).await;
        let token = token(&server).await;
        let base = image_server(png(&corpus())).await;
        let port = base.rsplit(':').next().unwrap().to_owned();
        for url in [
            format!("{base}/code.png"),
            format!("http://localhost:{port}/code.png"),
            format!("http://[::1]:{port}/code.png"),
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "http://10.0.0.1/x.png".to_owned(),
        ] {
            let answer = scan_url(&server, &token, &url).await;
            assert_eq!(answer["errcode"], json!(101000), "{url}: {answer}");
        }
        // The img part still works there.
        let answer = scan_part(&server, &token, "img", &png(&corpus())).await;
        assert_eq!(answer["errcode"], json!(0), "{answer}");
    })
    .await;
}
