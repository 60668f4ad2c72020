//! The cloud gateway scenario's upstream: a tiny HTTP server in the bench answering a success
//! envelope to anything (the example provider checks souk's service-market signature, which the
//! cloud gateway does not send). With `cacheType` set, souk calls it once and serves the rest from
//! its cache; the count of calls it got shows that.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// The answer: the four-field envelope with truthy `data`.
const ENVELOPE: &str = r#"{"success":true,"data":{"greeting":"hello from the bench upstream"},"errorCode":null,"errorMessage":null}"#;

/// Starts the upstream on a free loopback port; returns its address and the count of requests it got.
pub async fn start() -> Result<(SocketAddr, Arc<AtomicU64>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|err| format!("cannot bind the cloud upstream: {err}"))?;
    let address = listener
        .local_addr()
        .map_err(|err| format!("cannot read the cloud upstream's address: {err}"))?;
    let hits = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    async {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(ENVELOPE.as_bytes())))
                                .expect("a valid response"),
                        )
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok((address, hits))
}
