//! Tests of the guarded transport against a real loopback server: the address guard for literals and
//! names, redirects, the deadline, the answer cap, and errors that do not leak the URL.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use souk_core::cloud::{CloudMethod, CloudTransport, UpstreamReply, UpstreamRequest};

use super::GuardedTransport;

/// A loopback server; answers its base (`http://127.0.0.1:PORT`) and a count of requests.
async fn server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let other_origin = format!("http://localhost:{port}/ok");
    let counted = hits.clone();
    let router = Router::new()
        .route("/ok", get(|| async { "fine" }).post(|body: String| async move { body }))
        .route("/big", get(|| async { vec![b'x'; 2 * 1024 * 1024] }))
        .route(
            "/chunked",
            get(|| async {
                // No Content-Length: the cap must hold while streaming.
                let chunks = (0..32).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; 64 * 1024])));
                axum::body::Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/same", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/ok")]) }))
        .route("/loop", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }))
        .route(
            "/other",
            get(move || async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, other_origin)]).into_response() }),
        )
        .layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                next.run(request).await
            }
        }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://127.0.0.1:{port}"), hits)
}

fn request(origin: &str, path: &str, timeout_ms: u64) -> UpstreamRequest {
    UpstreamRequest {
        method: CloudMethod::Get,
        origin: origin.to_owned(),
        url: format!("{origin}{path}?sign=SECRETSIGN"),
        headers: vec![("x-trace".to_owned(), "1".to_owned())],
        body: None,
        timeout: Duration::from_millis(timeout_ms),
    }
}

#[tokio::test]
async fn private_literals_are_refused_before_anything_is_sent() {
    let (base, hits) = server().await;
    let transport = GuardedTransport::new(false).unwrap();
    let reply = transport.send(request(&base, "/ok", 2000)).await;
    assert!(matches!(reply, UpstreamReply::AddressRefused(_)), "{reply:?}");
    let port = base.rsplit(':').next().unwrap();
    let v6 = format!("http://[::1]:{port}");
    let reply = transport.send(request(&v6, "/ok", 2000)).await;
    assert!(matches!(reply, UpstreamReply::AddressRefused(_)), "{reply:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn names_resolving_to_loopback_are_refused() {
    let (base, hits) = server().await;
    let port = base.rsplit(':').next().unwrap();
    let origin = format!("http://localhost:{port}");
    let reply = GuardedTransport::new(false).unwrap().send(request(&origin, "/ok", 2000)).await;
    match reply {
        UpstreamReply::AddressRefused(why) => assert!(why.contains("not public"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // The operator's switch lifts the guard for names too.
    let reply = GuardedTransport::new(true).unwrap().send(request(&origin, "/ok", 2000)).await;
    assert_eq!(
        reply,
        UpstreamReply::Answered {
            status: 200,
            body: b"fine".to_vec()
        }
    );
}

#[tokio::test]
async fn a_post_carries_its_json_body() {
    let (base, _) = server().await;
    let mut post = request(&base, "/ok", 2000);
    post.method = CloudMethod::Post;
    post.body = Some(br#"{"a":1}"#.to_vec());
    let reply = GuardedTransport::new(true).unwrap().send(post).await;
    assert_eq!(
        reply,
        UpstreamReply::Answered {
            status: 200,
            body: br#"{"a":1}"#.to_vec()
        }
    );
}

#[tokio::test]
async fn redirects_stay_within_the_origin() {
    let (base, _) = server().await;
    let transport = GuardedTransport::new(true).unwrap();
    let reply = transport.send(request(&base, "/same", 2000)).await;
    assert_eq!(
        reply,
        UpstreamReply::Answered {
            status: 200,
            body: b"fine".to_vec()
        }
    );
    let reply = transport.send(request(&base, "/other", 2000)).await;
    match reply {
        UpstreamReply::RedirectRefused(why) => assert!(why.contains("another origin"), "{why}"),
        other => panic!("{other:?}"),
    }
    let reply = transport.send(request(&base, "/loop", 2000)).await;
    match reply {
        UpstreamReply::RedirectRefused(why) => assert!(why.contains("more than 3"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_deadline_cuts_the_exchange() {
    let (base, _) = server().await;
    let started = Instant::now();
    let reply = GuardedTransport::new(true).unwrap().send(request(&base, "/slow", 300)).await;
    let took = started.elapsed();
    assert_eq!(reply, UpstreamReply::TimedOut);
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn answers_past_the_cap_are_abandoned() {
    let (base, _) = server().await;
    let transport = GuardedTransport::new(true).unwrap();
    assert_eq!(transport.send(request(&base, "/big", 5000)).await, UpstreamReply::TooLarge);
    assert_eq!(transport.send(request(&base, "/chunked", 5000)).await, UpstreamReply::TooLarge);
    let roomy = GuardedTransport::with_answer_cap(true, 4 * 1024 * 1024).unwrap();
    let reply = roomy.send(request(&base, "/chunked", 5000)).await;
    assert!(matches!(reply, UpstreamReply::Answered { status: 200, ref body } if body.len() == 2 * 1024 * 1024));
}

#[tokio::test]
async fn connection_errors_do_not_carry_the_url() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let reply = GuardedTransport::new(true).unwrap().send(request(&origin, "/ok", 2000)).await;
    match reply {
        UpstreamReply::ConnectFailed(why) => {
            assert!(!why.contains("SECRETSIGN") && !why.contains("127.0.0.1"), "{why}");
            assert!(why.to_lowercase().contains("connect"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_url_off_its_origin_is_never_sent() {
    let (base, hits) = server().await;
    let mut off = request(&base, "/ok", 2000);
    off.origin = "https://example.com".to_owned();
    let reply = GuardedTransport::new(true).unwrap().send(off).await;
    assert!(matches!(reply, UpstreamReply::AddressRefused(_)), "{reply:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
