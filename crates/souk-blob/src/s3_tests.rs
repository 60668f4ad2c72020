//! Tests of the S3 blob store against a real S3 server in this process (`souk-s3-testserver`: s3s
//! over a temporary folder, with SigV4 checked): round trip, the size limit for one-`PUT` and
//! multipart bodies (nothing kept, multipart aborted), concurrent puts, wrong credentials, how store
//! errors read, an unreachable or silent endpoint (bounded), and bad URLs and settings.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use souk_core::blob::{BlobError, BlobKey, BlobStore, ByteStream};
use souk_s3_testserver::{TestS3Options, TestS3Server};

use super::{S3BlobStore, MULTIPART_THRESHOLD, PART_SIZE};
use crate::options::{parse_s3_url, S3Options};
use crate::BlobOptions;

const ACCESS_KEY: &str = "souk-test-access";
const SECRET_KEY: &str = "souk-test-secret-0123456789";
const BUCKET: &str = "souk-blobs";
const MIB: usize = 1024 * 1024;

fn key(text: &str) -> BlobKey {
    BlobKey::new(text).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    server: TestS3Server,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let server = TestS3Server::start(TestS3Options::loopback(dir.path().join("s3"), ACCESS_KEY, SECRET_KEY, BUCKET))
            .await
            .unwrap();
        Fixture { _dir: dir, server }
    }

    fn options(&self) -> S3Options {
        S3Options {
            endpoint: Some(self.server.endpoint()),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(SECRET_KEY.to_owned()),
            allow_http: true,
            ..S3Options::default()
        }
    }

    fn store(&self, prefix: Option<&str>) -> S3BlobStore {
        S3BlobStore::open(BUCKET, prefix, &self.options()).unwrap()
    }

    /// Settings for a store that is never reached.
    fn offline_options() -> S3Options {
        S3Options {
            endpoint: Some("http://127.0.0.1:9".to_owned()),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(SECRET_KEY.to_owned()),
            allow_http: true,
            ..S3Options::default()
        }
    }

    /// Files of unfinished or aborted multipart uploads and temporary puts the server still holds.
    fn leftovers(&self) -> Vec<String> {
        leftovers(self.server.root())
    }
}

fn leftovers(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("upload") || name.starts_with(".tmp"))
        .collect()
}

/// `total` bytes of `byte` in chunks of `chunk`.
fn body(byte: u8, total: usize, chunk: usize) -> ByteStream<'static> {
    let mut chunks = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk);
        chunks.push(Ok(Bytes::from(vec![byte; n])));
        left -= n;
    }
    stream::iter(chunks).boxed()
}

fn backend_message(err: BlobError) -> String {
    match err {
        BlobError::Backend(message) => message,
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn put_get_exists_delete_under_a_prefix() {
    let fixture = Fixture::start().await;
    let store = fixture.store(Some("prod/node"));
    let k = key("cdn/ab/abcdef");
    assert!(!store.exists(&k).await.unwrap());
    assert_eq!(store.get(&k).await.unwrap_err(), BlobError::NotFound);

    let chunks = stream::iter([Ok(Bytes::from_static(b"hello ")), Ok(Bytes::from_static(b"world"))]).boxed();
    let info = store.put(&k, chunks, 100).await.unwrap();
    assert_eq!(info.size, 11);
    assert_eq!(info.sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
    assert!(store.exists(&k).await.unwrap());
    let object = fixture.server.root().join(BUCKET).join("prod/node/cdn/ab/abcdef");
    assert_eq!(
        std::fs::read(&object).unwrap(),
        b"hello world",
        "the object sits under bucket/prefix/key"
    );
    let blob = store.get(&k).await.unwrap();
    assert_eq!(blob.size, 11);
    assert_eq!(store.get_bytes(&k).await.unwrap(), Bytes::from_static(b"hello world"));

    // Another store on the same bucket without the prefix does not see it.
    assert!(!fixture.store(None).exists(&k).await.unwrap());

    store.delete(&k).await.unwrap();
    assert!(!store.exists(&k).await.unwrap());
    store.delete(&k).await.unwrap();
    assert!(fixture.leftovers().is_empty(), "{:?}", fixture.leftovers());
}

#[tokio::test]
async fn a_body_past_the_limit_is_refused_and_the_old_blob_kept() {
    let fixture = Fixture::start().await;
    let store = fixture.store(None);
    let k = key("media/a");
    store.put_bytes(&k, Bytes::from_static(b"old"), 10).await.unwrap();

    let err = store.put(&k, body(b'x', 11, 4), 10).await.unwrap_err();
    assert_eq!(err, BlobError::TooLarge { limit: 10 });
    assert_eq!(store.get_bytes(&k).await.unwrap(), Bytes::from_static(b"old"));

    let fresh = key("media/b");
    assert_eq!(
        store.put(&fresh, body(b'x', 11, 11), 10).await.unwrap_err(),
        BlobError::TooLarge { limit: 10 }
    );
    assert!(!store.exists(&fresh).await.unwrap());
    // Exactly the limit is fine.
    assert_eq!(store.put(&fresh, body(b'x', 10, 3), 10).await.unwrap().size, 10);
}

#[tokio::test]
async fn a_multipart_body_round_trips() {
    let fixture = Fixture::start().await;
    let store = fixture.store(Some("big"));
    let k = key("superres/result");
    let total = MULTIPART_THRESHOLD + PART_SIZE + 3 * MIB + 17;
    let info = store.put(&k, body(b'm', total, MIB), total as u64).await.unwrap();
    assert_eq!(info.size, total as u64);
    let blob = store.get(&k).await.unwrap();
    assert_eq!(blob.size, total as u64);
    let bytes = store.get_bytes(&k).await.unwrap();
    assert_eq!(bytes.len(), total);
    assert!(bytes.iter().all(|&b| b == b'm'));
    assert!(
        fixture.leftovers().is_empty(),
        "a completed upload leaves no parts: {:?}",
        fixture.leftovers()
    );
}

#[tokio::test]
async fn a_multipart_body_past_the_limit_is_refused_and_aborted() {
    let fixture = Fixture::start().await;
    let store = fixture.store(None);
    let k = key("cdn/big");
    // Two parts are uploaded before the limit is passed.
    let limit = (MULTIPART_THRESHOLD + PART_SIZE + 2 * MIB) as u64;
    let err = store.put(&k, body(b'z', limit as usize + 1, MIB), limit).await.unwrap_err();
    assert_eq!(err, BlobError::TooLarge { limit });
    assert!(!store.exists(&k).await.unwrap());
    assert!(
        fixture.leftovers().is_empty(),
        "the upload's parts were aborted: {:?}",
        fixture.leftovers()
    );
}

#[tokio::test]
async fn a_body_that_breaks_off_keeps_nothing() {
    let fixture = Fixture::start().await;
    let store = fixture.store(None);
    for size in [10, MULTIPART_THRESHOLD + MIB] {
        let k = key(&format!("media/broken-{size}"));
        let chunks = body(b'b', size, MIB).chain(stream::once(async { Err(BlobError::Body("the sender went away".to_owned())) }));
        let err = store.put(&k, chunks.boxed(), 1 << 30).await.unwrap_err();
        assert_eq!(err, BlobError::Body("the sender went away".to_owned()));
        assert!(!store.exists(&k).await.unwrap());
    }
    assert!(fixture.leftovers().is_empty(), "{:?}", fixture.leftovers());
}

#[tokio::test]
async fn a_put_dropped_midway_aborts_its_upload() {
    let fixture = Fixture::start().await;
    let store = fixture.store(None);
    let k = key("cdn/dropped");
    // Past the threshold, then a body that never ends: the put waits for more.
    let stalled = body(b's', MULTIPART_THRESHOLD + 2 * MIB, MIB).chain(stream::pending());
    let put = store.put(&k, stalled.boxed(), 1 << 30);
    assert!(tokio::time::timeout(Duration::from_millis(1500), put).await.is_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fixture.leftovers().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fixture.leftovers().is_empty(), "{:?}", fixture.leftovers());
    assert!(!store.exists(&k).await.unwrap());
}

#[tokio::test]
async fn concurrent_puts_of_one_key_end_with_one_whole_blob() {
    let fixture = Fixture::start().await;
    let store = Arc::new(fixture.store(None));
    let k = key("cdn/race");
    let size = 256 * 1024;
    let puts: Vec<_> = (0..8u8)
        .map(|n| {
            let (store, k) = (Arc::clone(&store), k.clone());
            tokio::spawn(async move { store.put(&k, body(b'a' + n, size, 16 * 1024), size as u64).await })
        })
        .collect();
    for put in puts {
        put.await.unwrap().unwrap();
    }
    let bytes = store.get_bytes(&k).await.unwrap();
    assert_eq!(bytes.len(), size);
    assert!(bytes.iter().all(|&b| b == bytes[0]), "one put's bytes, whole");
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_error_without_the_secret() {
    let fixture = Fixture::start().await;
    let wrong_secret = "not-the-secret-987654321";
    let options = S3Options {
        secret_access_key: Some(wrong_secret.to_owned()),
        ..fixture.options()
    };
    let store = S3BlobStore::open(BUCKET, None, &options).unwrap();
    let message = backend_message(store.put_bytes(&key("a"), Bytes::from_static(b"x"), 10).await.unwrap_err());
    assert!(
        message.contains("credentials") && message.contains("blobs.s3_secret_access_key"),
        "{message}"
    );
    assert!(!message.contains(wrong_secret), "{message}");
    let message = backend_message(store.get(&key("a")).await.unwrap_err());
    assert!(message.contains("credentials"), "{message}");
    assert!(!format!("{options:?}").contains(wrong_secret));
}

/// A missing bucket cannot be shown with s3s-fs (its put creates the folder), so the mapping of S3's
/// answer (404 on a put) is checked directly.
#[test]
fn store_errors_say_what_to_check() {
    let store = S3BlobStore::open("no-such-bucket", None, &Fixture::offline_options()).unwrap();
    let source = || Box::<dyn std::error::Error + Send + Sync>::from("NoSuchBucket");
    let not_found = object_store::Error::NotFound {
        path: "a".to_owned(),
        source: source(),
    };
    let message = backend_message(store.failure("put", &key("a"), not_found));
    assert!(
        message.contains("\"no-such-bucket\"") && message.contains("not found") && message.contains("NoSuchBucket"),
        "{message}"
    );
    let denied = object_store::Error::PermissionDenied {
        path: "a".to_owned(),
        source: source(),
    };
    let message = backend_message(store.failure("get", &key("a"), denied));
    assert!(
        message.starts_with("s3 get of a: the store refused souk's credentials"),
        "{message}"
    );
    let long = object_store::Error::Generic {
        store: "S3",
        source: "x".repeat(5000).into(),
    };
    let message = backend_message(store.failure("delete", &key("a"), long));
    assert!(message.len() < 800, "details are cut: {}", message.len());
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_soon_and_clearly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let options = S3Options {
        endpoint: Some(format!("http://{addr}")),
        access_key_id: Some(ACCESS_KEY.to_owned()),
        secret_access_key: Some(SECRET_KEY.to_owned()),
        allow_http: true,
        ..S3Options::default()
    };
    let store = S3BlobStore::open(BUCKET, None, &options).unwrap();
    let started = Instant::now();
    let message = backend_message(store.put_bytes(&key("a"), Bytes::from_static(b"x"), 10).await.unwrap_err());
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(message.starts_with("s3 put of a in bucket \"souk-blobs\" failed"), "{message}");
    assert!(!message.contains(SECRET_KEY), "{message}");
}

#[tokio::test]
async fn a_silent_endpoint_is_bounded_by_the_timeout() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let options = S3Options {
        endpoint: Some(format!("http://{addr}")),
        access_key_id: Some(ACCESS_KEY.to_owned()),
        secret_access_key: Some(SECRET_KEY.to_owned()),
        allow_http: true,
        timeout: Duration::from_millis(300),
        ..S3Options::default()
    };
    let store = S3BlobStore::open(BUCKET, None, &options).unwrap();
    let started = Instant::now();
    let message = backend_message(store.exists(&key("a")).await.unwrap_err());
    // Four attempts of 300 ms with backoff in between.
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    assert!(message.contains("s3 head of a"), "{message}");
    silent.abort();
}

#[test]
fn bad_urls_are_refused_with_the_expected_shape() {
    assert_eq!(parse_s3_url("souk-blobs").unwrap(), ("souk-blobs".to_owned(), None));
    assert_eq!(parse_s3_url("souk-blobs/").unwrap(), ("souk-blobs".to_owned(), None));
    assert_eq!(
        parse_s3_url("souk.blobs-1/prod/eu/").unwrap(),
        ("souk.blobs-1".to_owned(), Some("prod/eu".to_owned()))
    );
    for bad in [
        "",
        "/prefix",
        "ab",
        "Upper",
        "-souk",
        "souk_blobs",
        "souk-blobs/../x",
        "souk-blobs/a//b",
        "souk-blobs/.hidden",
        "b?x=1",
        "b#f",
    ] {
        let message = backend_message(parse_s3_url(bad).unwrap_err());
        assert!(message.contains("blobs.url"), "{bad:?}: {message}");
    }
    let message = backend_message(parse_s3_url("AKIA:hunter2@souk-blobs").unwrap_err());
    assert!(
        message.contains("must not hold credentials") && !message.contains("hunter2"),
        "{message}"
    );
}

#[test]
fn bad_settings_are_refused_naming_the_setting() {
    let good = S3Options {
        endpoint: Some("https://s3.example.com".to_owned()),
        region: Some("eu-west-3".to_owned()),
        access_key_id: Some("id".to_owned()),
        secret_access_key: Some("secret-value-1234".to_owned()),
        ..S3Options::default()
    };
    good.check().unwrap();
    let cases = [
        (
            S3Options {
                endpoint: Some("http://127.0.0.1:9000".to_owned()),
                ..good.clone()
            },
            "blobs.s3_allow_http",
        ),
        (
            S3Options {
                endpoint: Some("s3.example.com".to_owned()),
                ..good.clone()
            },
            "blobs.s3_endpoint",
        ),
        (
            S3Options {
                endpoint: Some("https://u:p@s3.example.com".to_owned()),
                ..good.clone()
            },
            "blobs.s3_endpoint",
        ),
        (
            S3Options {
                endpoint: Some("https://s3.example.com/path".to_owned()),
                ..good.clone()
            },
            "blobs.s3_endpoint",
        ),
        (
            S3Options {
                region: Some("eu west".to_owned()),
                ..good.clone()
            },
            "blobs.s3_region",
        ),
        (
            S3Options {
                secret_access_key: None,
                ..good.clone()
            },
            "set together",
        ),
        (
            S3Options {
                access_key_id: Some(String::new()),
                ..good.clone()
            },
            "blobs.s3_access_key_id",
        ),
        (
            S3Options {
                secret_access_key: Some("has space".to_owned()),
                ..good.clone()
            },
            "blobs.s3_secret_access_key",
        ),
        (
            S3Options {
                timeout: Duration::ZERO,
                ..good.clone()
            },
            "timeouts",
        ),
    ];
    for (options, expected) in cases {
        let message = backend_message(options.check().unwrap_err());
        assert!(message.contains(expected), "{options:?}: {message}");
        assert!(!message.contains("secret-value-1234"), "{message}");
    }
    assert!(!format!("{good:?}").contains("secret-value-1234"));

    let s3 = BlobOptions { s3: good.clone() };
    crate::check("s3://souk-blobs/prod", &s3).unwrap();
    let message = backend_message(crate::check("file:///var/lib/souk/blobs", &s3).unwrap_err());
    assert!(message.contains("not s3://"), "{message}");
    let keyless = BlobOptions {
        s3: S3Options {
            access_key_id: None,
            secret_access_key: None,
            ..good
        },
    };
    let message = backend_message(crate::check("s3://souk-blobs", &keyless).unwrap_err());
    assert!(message.contains("blobs.s3_access_key_id"), "{message}");
}
