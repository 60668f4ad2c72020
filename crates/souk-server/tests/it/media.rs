//! Temporary media end to end (`wire.md` §2, `wechat-wire.md` §5.3–§5.4): an upload read back byte for
//! byte with WeChat's headers, every errcode through HTTP (40004, 40005, 40006, 41005, 40007), owner
//! checks, the 3-day expiry on souk's clock, and housekeeping deleting the blob.

use std::io::Cursor;

use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb};
use serde_json::{json, Value};
use souk_core::media::{MAX_IMAGE_BYTES, MEDIA_TTL_MS};

use crate::common::TestServer;

const BOUNDARY: &str = "souk-media-boundary-7";

fn image_bytes(format: ImageFormat) -> Vec<u8> {
    let image = ImageBuffer::from_fn(9, 6, |x, y| Rgb([(x * 20) as u8, (y * 30) as u8, 77]));
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image).write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A multipart body with a text field and one file part named `name`.
fn multipart(name: &str, file_name: &str, declared_type: &str, file: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
         Content-Type: {declared_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A new app: `(appid, secret, token)`.
async fn app_token(server: &TestServer) -> (String, String, String) {
    let (appid, secret) = server.create_app().await;
    let token = server.token(&appid, &secret).await;
    (appid, secret, token)
}

/// `POST /cgi-bin/media/upload`: the JSON answer, after checking WeChat's JSON content type.
async fn upload(server: &TestServer, token: &str, media_type: &str, body: Vec<u8>) -> Value {
    let response = server
        .http
        .post(format!(
            "{}/cgi-bin/media/upload?access_token={token}&type={media_type}",
            server.base
        ))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/json; encoding=utf-8");
    response.json().await.unwrap()
}

/// `GET /cgi-bin/media/get`: status, headers, bytes.
async fn get(server: &TestServer, token: &str, media_id: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = server
        .http
        .get(format!(
            "{}/cgi-bin/media/get?access_token={token}&media_id={media_id}",
            server.base
        ))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn errcode_of(body: &[u8]) -> i64 {
    let value: Value = serde_json::from_slice(body).unwrap();
    value["errcode"].as_i64().unwrap()
}

#[tokio::test]
async fn upload_and_get_round_trip_with_wechat_headers() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (_, _, token) = app_token(&server).await;
        for (format, mime, ext) in [
            (ImageFormat::Jpeg, "image/jpeg", "jpg"),
            (ImageFormat::Png, "image/png", "png"),
            (ImageFormat::Gif, "image/gif", "gif"),
        ] {
            let bytes = image_bytes(format);
            // The declared name and type lie: the content decides.
            let answer = upload(&server, &token, "image", multipart("media", "a.txt", "text/plain", &bytes)).await;
            assert_eq!(answer["errcode"], json!(0), "{answer}");
            assert_eq!(answer["errmsg"], json!("ok"));
            assert_eq!(answer["type"], json!("image"));
            assert_eq!(answer["created_at"], json!(server.clock_now() / 1000), "created_at is a number");
            let media_id = answer["media_id"].as_str().unwrap();
            assert_eq!(media_id.len(), 64, "{media_id}");
            assert!(media_id.bytes().all(|b| b.is_ascii_alphanumeric()));

            let (status, headers, body) = get(&server, &token, media_id).await;
            assert_eq!(status, 200);
            assert_eq!(body, bytes, "{format:?} byte for byte");
            assert_eq!(headers["content-type"], mime);
            assert_eq!(
                headers["content-disposition"].to_str().unwrap(),
                format!("attachment; filename=\"{media_id}.{ext}\"")
            );
            assert_eq!(headers["cache-control"], "no-cache, must-revalidate");
            assert_eq!(headers["content-length"].to_str().unwrap(), bytes.len().to_string());
        }
        let calls = server.calls("").await;
        assert!(calls
            .iter()
            .any(|call| call["route"] == json!("upload") && call["errcode"] == json!(0)));
        assert!(calls
            .iter()
            .any(|call| call["route"] == json!("get") && call["errcode"] == json!(0)));
    });
}

#[tokio::test]
async fn upload_errcodes() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (_, _, token) = app_token(&server).await;
        let png = image_bytes(ImageFormat::Png);
        let errcode = |answer: Value| answer["errcode"].as_i64().unwrap();

        for bad_type in ["voice", "video", "thumb", ""] {
            let answer = upload(&server, &token, bad_type, multipart("media", "a.png", "image/png", &png)).await;
            assert_eq!(errcode(answer), 40004, "type {bad_type:?}");
        }
        // Not an image by content, whatever the part says.
        let answer = upload(&server, &token, "image", multipart("media", "a.png", "image/png", b"GIF? no, text")).await;
        assert_eq!(errcode(answer.clone()), 40005, "{answer}");
        assert!(answer["errmsg"].as_str().unwrap().contains("rid: "), "{answer}");
        let truncated = &png[..20];
        assert_eq!(
            errcode(upload(&server, &token, "image", multipart("media", "a.png", "image/png", truncated)).await),
            40005
        );
        // wechatpy's retry sends the part again, empty: never a success.
        assert_eq!(
            errcode(upload(&server, &token, "image", multipart("media", "a.png", "image/png", b"")).await),
            41005
        );
        // No part named media; no multipart body at all.
        assert_eq!(
            errcode(upload(&server, &token, "image", multipart("file", "a.png", "image/png", &png)).await),
            41005
        );
        let response = server
            .http
            .post(format!("{}/cgi-bin/media/upload?access_token={token}&type=image", server.base))
            .body(png.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(errcode_of(&response.bytes().await.unwrap()), 41005);
        // Past 10 MB.
        let mut big = png.clone();
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        assert_eq!(
            errcode(upload(&server, &token, "image", multipart("media", "a.png", "image/png", &big)).await),
            40006
        );
        // Wrong method; no token.
        let response = server
            .http
            .get(format!("{}/cgi-bin/media/upload?access_token={token}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(errcode_of(&response.bytes().await.unwrap()), 43002);
        let response = server
            .http
            .post(format!("{}/cgi-bin/media/upload?type=image", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(errcode_of(&response.bytes().await.unwrap()), 41001);

        assert_eq!(walk_files(&server.blob_root().join("media")), 0, "no refused upload left a blob");
    });
}

#[tokio::test]
async fn media_belong_to_their_app_and_expire_after_three_days() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let (appid, secret, token) = app_token(&server).await;
        let (_, _, other_token) = app_token(&server).await;
        let png = image_bytes(ImageFormat::Png);
        let answer = upload(&server, &token, "image", multipart("media", "a.png", "image/png", &png)).await;
        let media_id = answer["media_id"].as_str().unwrap().to_owned();

        for (who, id) in [
            (&other_token, media_id.as_str()),
            (&token, &"A".repeat(64)),
            (&token, "../../etc/passwd"),
            (&token, ""),
        ] {
            let (status, headers, body) = get(&server, who, id).await;
            assert_eq!(status, 200);
            assert_eq!(headers["content-type"], "application/json; encoding=utf-8");
            assert_eq!(errcode_of(&body), 40007, "{id}");
        }

        server.clock.advance_ms(MEDIA_TTL_MS - 1_000);
        assert_eq!(get(&server, &token, &media_id).await.0, 200);
        // Tokens live 2 hours: a fresh one for the app.
        let token = server.token(&appid, &secret).await;
        server.clock.advance_ms(1_000);
        let (_, _, body) = get(&server, &token, &media_id).await;
        assert_eq!(errcode_of(&body), 40007, "expired");

        assert_eq!(walk_files(&server.blob_root().join("media")), 1);
        server.souk.run_maintenance().await;
        assert_eq!(walk_files(&server.blob_root().join("media")), 0, "the blob is deleted");
        assert_eq!(server.souk.store().get_media(&media_id).await.unwrap(), None, "and its metadata");
    });
}

/// Files under a folder, at any depth.
fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|entry| entry.unwrap().path())
        .map(|path| if path.is_dir() { walk_files(&path) } else { 1 })
        .sum()
}
