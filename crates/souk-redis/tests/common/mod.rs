//! Helpers shared by the Redis test files: the server URL (skip or fail), and servers that cannot
//! answer.

#![allow(dead_code, reason = "each test file uses a part of the helpers")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const REDIS_URL_VAR: &str = "SOUK_TEST_REDIS_URL";

/// The server URL for Redis tests, or `None` (after saying so) when they are skipped.
pub fn redis_server_url() -> Option<String> {
    match std::env::var(REDIS_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("{REDIS_URL_VAR} is required in CI: the Redis tests must run"),
        _ => {
            eprintln!("skipping redis test: {REDIS_URL_VAR} unset");
            None
        }
    }
}

/// A server that accepts connections and never says a word: every call runs into the timeout.
/// Abort the task to stop it.
pub async fn silent_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (address, task)
}

/// How the test proxy treats connections.
pub const DROP: u8 = 0;
pub const FORWARD: u8 = 1;
pub const STALL: u8 = 2;

/// A TCP proxy to the test Redis that can drop new connections (Redis down), forward, or stall: keep
/// every connection open but forward nothing more (a dead network path that TCP has not noticed).
pub async fn switchable_proxy(url: &str) -> (SocketAddr, Arc<AtomicU8>) {
    let authority = url.trim_start_matches("redis://").split('/').next().unwrap_or_default();
    let target = authority.rsplit('@').next().unwrap_or_default().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let mode = Arc::new(AtomicU8::new(DROP));
    let switch = mode.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            if switch.load(Ordering::SeqCst) == DROP {
                drop(inbound);
                continue;
            }
            let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                continue;
            };
            let (mut from_client, mut to_client) = inbound.into_split();
            let (mut from_server, mut to_server) = outbound.into_split();
            let switch = switch.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                while let Ok(read) = from_client.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    if switch.load(Ordering::SeqCst) != FORWARD {
                        std::future::pending::<()>().await;
                    }
                    if to_server.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
            });
        }
    });
    (address, mode)
}
