//! A TCP proxy in front of the machine's Redis, so a test can take Redis away from a cluster and give
//! it back without touching the server other tests use. The nodes are given the proxy's address as
//! `[redis] url`; the proxy forwards bytes both ways while the link is [`Link::Up`].
//!
//! Cutting the link closes every forwarded connection at once and then either closes each new one as
//! soon as it is accepted ([`Link::Refused`]: the client sees its connection reset or ended, as when
//! Redis is stopped) or keeps new and old client connections open and swallows what they send
//! ([`Link::Blackholed`]: the client waits for answers that never come, as behind a dead network
//! path). Restoring lets new connections through again; connections made while cut are closed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The state of the link between the cluster and Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Bytes are forwarded.
    Up,
    /// Connections are closed as soon as they are accepted.
    Refused,
    /// Connections stay open; nothing is forwarded and nothing is answered.
    Blackholed,
}

/// The running proxy; stops (closing every connection) when dropped.
pub struct RedisProxy {
    /// The Redis URL of the proxy: the machine's URL with the proxy's address.
    pub url: String,
    link: watch::Sender<Link>,
    accept: JoinHandle<()>,
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl RedisProxy {
    /// Starts a proxy on a loopback port in front of the Redis at `redis_url` (`redis://host:port/db`,
    /// with or without a password, which is kept in the proxy's URL).
    pub async fn start(redis_url: &str) -> RedisProxy {
        let upstream = redis_address(redis_url).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the redis proxy");
        let local = listener.local_addr().expect("the proxy's address");
        let mut url = reqwest::Url::parse(redis_url).expect("checked by redis_address");
        url.set_ip_host(local.ip()).expect("a redis:// URL has a host");
        url.set_port(Some(local.port())).expect("a redis:// URL has a port");
        let (link, _) = watch::channel(Link::Up);
        let links = link.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                tokio::spawn(relay(client, upstream, links.subscribe()));
            }
        });
        RedisProxy {
            url: url.to_string(),
            link,
            accept,
        }
    }

    /// Changes the link; connections follow at once.
    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

/// The socket address of the Redis at `redis_url`, which must accept a TCP connection within 2 s:
/// a configured Redis that cannot be reached fails the test loudly.
pub async fn redis_address(redis_url: &str) -> SocketAddr {
    let url = reqwest::Url::parse(redis_url)
        .unwrap_or_else(|err| panic!("SOUK_TEST_REDIS_URL is not a URL ({err}); the cluster tests need redis://host:port/"));
    assert_eq!(
        url.scheme(),
        "redis",
        "the cluster tests proxy TCP Redis: SOUK_TEST_REDIS_URL must be redis://..."
    );
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(6379);
    let addresses = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap_or_else(|err| panic!("SOUK_TEST_REDIS_URL's host {host} does not resolve: {err}"));
    for address in addresses {
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(address)).await {
            return address;
        }
    }
    panic!("SOUK_TEST_REDIS_URL is set but Redis at {host}:{port} cannot be reached");
}

/// One client connection, for its whole life.
async fn relay(mut client: TcpStream, upstream: SocketAddr, mut link: watch::Receiver<Link>) {
    let now = *link.borrow_and_update();
    match now {
        Link::Refused => return,
        Link::Blackholed => return swallow(client, link).await,
        Link::Up => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        () = until_cut(&mut link) => {}
    }
    drop(server);
    if *link.borrow() == Link::Blackholed {
        swallow(client, link).await;
    }
}

/// Resolves when the link is cut (or the proxy is gone).
async fn until_cut(link: &mut watch::Receiver<Link>) {
    loop {
        if link.changed().await.is_err() || *link.borrow() != Link::Up {
            return;
        }
    }
}

/// Reads and drops what the client sends, answering nothing, until the link changes; then closes.
async fn swallow(mut client: TcpStream, mut link: watch::Receiver<Link>) {
    let mut buffer = [0u8; 4096];
    loop {
        tokio::select! {
            read = client.read(&mut buffer) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
            }
            changed = link.changed() => {
                if changed.is_err() || *link.borrow() != Link::Blackholed {
                    return;
                }
            }
        }
    }
}
