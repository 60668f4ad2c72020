//! CDN files end to end: uploads (raw and multipart) served back byte for byte, the size limit,
//! expiry on souk's clock and housekeeping, and `__cdn__` markers in a service-market call fetched
//! by a real provider from the URL it received.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::routing::post;
use axum::Router;
use base64::prelude::{Engine, BASE64_STANDARD};
use serde_json::{json, Value};
use souk_core::cdn::DEFAULT_TTL_MS;
use souk_store::conformance::{with_postgres, with_sqlite, Store};
use souk_types::sign::{self, SignMethod};

use crate::common::{TestServer, SERVICE_SECRET};

/// Every byte value, a few times: nothing survives a text conversion by accident.
fn sample_bytes() -> Vec<u8> {
    (0..=255u8).cycle().take(256 * 3 + 7).collect()
}

/// An app's token.
async fn app_token(server: &TestServer) -> String {
    let (appid, secret) = server.create_app().await;
    server.token(&appid, &secret).await
}

/// `POST /souk/v1/cdn`; answers the status and JSON body.
async fn upload(server: &TestServer, token: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = server
        .http
        .post(format!("{}/souk/v1/cdn?access_token={token}", server.base))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// `GET` of a CDN URL: status, headers and bytes.
async fn fetch(server: &TestServer, url: &str) -> (u16, reqwest::header::HeaderMap, Bytes) {
    let response = server.http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |value| value.to_str().unwrap())
}

/// A `multipart/form-data` body: a text field, then a file part.
fn multipart(boundary: &str, file_type: &str, file: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.pdf\"\r\n\
         Content-Type: {file_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn raw_upload_is_served_back_identically() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let token = app_token(&server).await;
        let (status, answer) = upload(&server, &token, "image/png", sample_bytes()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["expires_in"], json!(259_200), "3 days by default");
        let url = answer["url"].as_str().unwrap();
        let file_id = url
            .strip_prefix(&format!("{}/souk/v1/cdn/", server.base))
            .unwrap_or_else(|| panic!("{url} is under the public URL"));
        assert_eq!(file_id.len(), 40, "160 random bits");

        let (status, headers, bytes) = fetch(&server, url).await;
        assert_eq!(status, 200);
        assert_eq!(bytes.as_ref(), sample_bytes().as_slice());
        assert_eq!(header(&headers, "content-type"), "image/png");
        assert_eq!(header(&headers, "content-length"), sample_bytes().len().to_string());
        assert_eq!(header(&headers, "cache-control"), "public, max-age=259200, immutable");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert!(header(&headers, "content-security-policy").contains("sandbox"));

        let head = server.http.head(url).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 200);
        assert_eq!(header(head.headers(), "content-length"), sample_bytes().len().to_string());

        // The cache lifetime shrinks with the file's remaining life.
        server.clock.advance_ms(DEFAULT_TTL_MS - 10_000);
        let (_, headers, _) = fetch(&server, url).await;
        assert_eq!(header(&headers, "cache-control"), "public, max-age=10, immutable");

        let calls = server.calls("").await;
        let upload_call = calls
            .iter()
            .find(|call| call["route"] == json!("cdn"))
            .expect("the upload is logged");
        assert_eq!(upload_call["errcode"], json!(0));
        assert_eq!(upload_call["bytes_in"], json!(sample_bytes().len()));
    });
}

#[tokio::test]
async fn multipart_upload_keeps_the_file_part_and_its_type() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let token = app_token(&server).await;
        let boundary = "souk-test-boundary-42";
        let body = multipart(boundary, "application/pdf", &sample_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let (status, answer) = upload(&server, &token, &content_type, body).await;
        assert_eq!(status, 200, "{answer}");
        let (status, headers, bytes) = fetch(&server, answer["url"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(bytes.as_ref(), sample_bytes().as_slice());
        assert_eq!(header(&headers, "content-type"), "application/pdf");

        // No content type at all: served as bytes.
        let response = server
            .http
            .post(format!("{}/souk/v1/cdn?access_token={token}", server.base))
            .body("plain")
            .send()
            .await
            .unwrap();
        let answer: Value = response.json().await.unwrap();
        let (_, headers, bytes) = fetch(&server, answer["url"].as_str().unwrap()).await;
        assert_eq!(header(&headers, "content-type"), "application/octet-stream");
        assert_eq!(bytes.as_ref(), b"plain");
    });
}

#[tokio::test]
async fn uploads_are_refused_clearly() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start_with_cdn(store, |settings| settings.max_bytes = 1_000).await;
        let token = app_token(&server).await;
        let check = |(status, answer): (u16, Value), want_status: u16, want_code: &str, words: &str| {
            assert_eq!(status, want_status, "{answer}");
            assert_eq!(answer["errCode"], json!(want_code), "{answer}");
            let message = answer["errMsg"].as_str().unwrap();
            assert!(message.contains(words), "{message:?} lacks {words:?}");
            assert!(answer["requestID"].as_str().is_some_and(|rid| !rid.is_empty()));
        };

        check(
            upload(&server, "", "text/plain", "x").await,
            401,
            "AccessTokenMissing",
            "access_token missing",
        );
        check(
            upload(&server, "nope", "text/plain", "x").await,
            401,
            "AccessTokenInvalid",
            "invalid access_token",
        );
        check(
            upload(&server, &token, "text/plain", vec![b'x'; 1_001]).await,
            413,
            "CdnFileTooLarge",
            "larger than 1000 bytes",
        );
        // Without a Content-Length (chunked), the limit is found while streaming.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..11).map(|_| Ok(vec![b'y'; 100])).collect();
        let streamed = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        check(
            upload(&server, &token, "text/plain", streamed).await,
            413,
            "CdnFileTooLarge",
            "larger than 1000 bytes",
        );
        let (status, _) = upload(&server, &token, "text/plain", vec![b'x'; 1_000]).await;
        assert_eq!(status, 200, "exactly the limit is fine");

        let boundary = "b0undary";
        let multipart_type = format!("multipart/form-data; boundary={boundary}");
        let big = multipart(boundary, "application/pdf", &[0u8; 1_001]);
        check(
            upload(&server, &token, &multipart_type, big).await,
            413,
            "CdnFileTooLarge",
            "larger than 1000 bytes",
        );
        let no_file = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{boundary}--\r\n");
        check(
            upload(&server, &token, &multipart_type, no_file).await,
            400,
            "DataFormatError",
            "no file part",
        );
        check(
            upload(&server, &token, "multipart/form-data", "x").await,
            400,
            "DataFormatError",
            "boundary",
        );
        check(
            upload(&server, &token, "not a type", "x").await,
            400,
            "DataFormatError",
            "not a content type",
        );

        let blobs = server.blob_root().join("cdn");
        let n_blobs = walk_files(&blobs);
        assert_eq!(n_blobs, 1, "only the accepted upload left a blob");
    });
}

#[tokio::test]
async fn expired_and_unknown_files_are_404_and_housekeeping_deletes_them() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start(store).await;
        let token = app_token(&server).await;
        let (_, answer) = upload(&server, &token, "text/plain", "short-lived").await;
        let url = answer["url"].as_str().unwrap().to_owned();
        assert_eq!(fetch(&server, &url).await.0, 200);

        server.clock.advance_ms(DEFAULT_TTL_MS);
        let response = server.http.get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errCode"], json!("CdnFileNotFound"), "{body}");
        assert!(body["errMsg"].as_str().unwrap().contains("not found or expired"));
        assert!(body["requestID"].as_str().is_some());

        for path in ["0123456789abcdef0123456789abcdef01234567", "..%2F..%2Fetc%2Fpasswd", "ABC"] {
            let response = server.http.get(format!("{}/souk/v1/cdn/{path}", server.base)).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 404, "{path}");
        }

        assert_eq!(walk_files(&server.blob_root().join("cdn")), 1);
        server.souk.run_maintenance().await;
        assert_eq!(walk_files(&server.blob_root().join("cdn")), 0, "the blob is deleted");
        let file_id = url.rsplit('/').next().unwrap();
        assert_eq!(server.souk.store().get_cdn_file(file_id).await.unwrap(), None, "and its metadata");
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

/// What the fetching provider saw: the body it was sent.
type Seen = Arc<Mutex<Vec<Value>>>;

/// A provider that fetches every URL in `data.files` and answers their bytes and content types.
async fn start_fetching_provider() -> (String, Seen) {
    async fn fetch_all(State(seen): State<Seen>, RawQuery(query): RawQuery, body: Bytes) -> axum::Json<Value> {
        let query: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
        let signature = query.iter().find(|(key, _)| key == "sign").map(|(_, value)| value.clone()).unwrap();
        let signed = sign::verify(SignMethod::Md5, SERVICE_SECRET, &query, Some(&body), &signature);
        let data: Value = serde_json::from_slice(&body).unwrap();
        seen.lock().unwrap().push(data.clone());
        let mut fetched = Vec::new();
        for url in data["files"].as_array().unwrap() {
            let response = reqwest::get(url.as_str().unwrap()).await.unwrap();
            let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
            let bytes = response.bytes().await.unwrap().to_vec();
            fetched.push(json!({"content_type": content_type, "bytes": bytes}));
        }
        axum::Json(json!({"success": true, "data": {"signed": signed, "fetched": fetched, "kept": data["kept"]}}))
    }
    let seen: Seen = Arc::default();
    let router = Router::new().route("/fetch", post(fetch_all)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("{base}/fetch"), seen)
}

/// A call with two markers: the provider receives URLs, fetches them, and gets the exact bytes.
async fn cdn_round_trip(store: Store) {
    let server = TestServer::start(store).await;
    let (provider_url, seen) = start_fetching_provider().await;
    let market = server.market(&provider_url, 5).await;
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let data = json!({
        "files": [
            {"__cdn__": {"type": "base64", "value": BASE64_STANDARD.encode(&every_byte), "content_type": "image/png"}},
            {"__cdn__": {"type": "text", "value": "你好, provider"}},
        ],
        "kept": {"__not_a_marker": 1},
    });
    let answer = server.invoke(&market, "Echo", data, Some("cdn-1")).await;
    assert_eq!(answer["errcode"], json!(0), "{answer}");
    let result: Value = serde_json::from_str(answer["data"].as_str().unwrap()).unwrap();
    assert_eq!(result["signed"], json!(true), "the signature covers the body with URLs");
    assert_eq!(result["kept"], json!({"__not_a_marker": 1}));
    let fetched = result["fetched"].as_array().unwrap();
    assert_eq!(fetched[0]["content_type"], json!("image/png"));
    assert_eq!(fetched[0]["bytes"], json!(every_byte), "identical bytes");
    assert_eq!(fetched[1]["content_type"], json!("text/plain; charset=utf-8"));
    assert_eq!(fetched[1]["bytes"], json!("你好, provider".as_bytes()));

    let sent = seen.lock().unwrap().last().cloned().unwrap();
    for url in sent["files"].as_array().unwrap() {
        let url = url.as_str().expect("each marker became a URL string");
        assert!(url.starts_with(&format!("{}/souk/v1/cdn/", server.base)), "{url}");
    }
    assert_eq!(server.units_left(&market.package_id).await, 4);
}

#[tokio::test]
async fn cdn_round_trip_through_a_provider_sqlite() {
    with_sqlite(cdn_round_trip).await;
}

#[tokio::test]
async fn cdn_round_trip_through_a_provider_postgres() {
    with_postgres(cdn_round_trip).await;
}

#[tokio::test]
async fn bad_markers_are_invalid_parameters() {
    on_sqlite_and_cluster_node!(|store| async move {
        let server = TestServer::start_with_cdn(store, |settings| settings.max_bytes = 8).await;
        let (provider_url, seen) = start_fetching_provider().await;
        let market = server.market(&provider_url, 5).await;
        let cases = [
            (
                json!({"f": {"__cdn__": {"type": "filePath", "value": "/tmp/x"}}}),
                "unknown type \"filePath\"",
            ),
            (
                json!({"f": {"__cdn__": {"type": "base64", "value": "%%%"}}}),
                "at /f is not valid base64",
            ),
            (
                json!({"f": {"__cdn__": {"type": "text", "value": "123456789"}}}),
                "at /f is larger than 8 bytes",
            ),
            (json!({"f": {"__cdn__": {"type": "text", "value": "a"}, "x": 1}}), "the only key"),
        ];
        for (data, words) in cases {
            let answer = server.invoke(&market, "Echo", data.clone(), None).await;
            assert_eq!(answer["errcode"], json!(9_301_001), "{data}: {answer}");
            let message = answer["errmsg"].as_str().unwrap();
            assert!(message.contains(words), "{message:?} lacks {words:?}");
        }
        assert!(seen.lock().unwrap().is_empty(), "the provider was never called");
        assert_eq!(server.units_left(&market.package_id).await, 5, "nothing was charged");
        assert_eq!(walk_files(&server.blob_root().join("cdn")), 0, "nothing was uploaded");
    });
}
