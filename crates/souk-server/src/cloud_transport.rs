//! The guarded upstream transport of the external-HTTP gateway (`cloud-gateway.md`): a
//! [`CloudTransport`] over reqwest that only talks to public addresses unless the operator allows
//! private ones (`fetch.allow_private`, `SOUK_FETCH_ALLOW_PRIVATE`, `wire.md` §6).
//!
//! The guard, and why each piece is needed:
//! - **Names** are resolved by [`GuardedResolver`] (the system resolver through
//!   `tokio::net::lookup_host`), which drops every address [`is_public`] refuses. reqwest connects
//!   only to the addresses a resolver returned, so there is no second lookup a DNS rebinding could
//!   win. No address left → [`UpstreamReply::AddressRefused`].
//! - **IP literals** (`http://10.0.0.1/`) never reach a resolver, so they are checked here before
//!   anything is sent.
//! - **Proxies** from the environment (`HTTP_PROXY`, ...) are ignored: a proxy would resolve the name
//!   itself, out of the guard's sight.
//! - **Redirects**: a redirect to another origin is never followed
//!   ([`UpstreamReply::RedirectRefused`]); a redirect within the same origin (`/api` → `/api/`) is
//!   followed, at most [`MAX_SAME_ORIGIN_REDIRECTS`] times, and its connection goes through the same
//!   resolver.
//! - **Deadline**: `UpstreamRequest.timeout` bounds connect, send and the whole answer; at the
//!   deadline the exchange's future is dropped, which closes the connection
//!   ([`UpstreamReply::TimedOut`]).
//! - **Size**: the answer streams through a cap ([`MAX_CLOUD_ANSWER_BYTES`]) and is abandoned past it
//!   ([`UpstreamReply::TooLarge`]).
//! - **Errors** never carry the URL (its query holds the signature): `ConnectFailed` says what broke,
//!   not where.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::{Attempt, Policy};
use reqwest::Url;
use souk_core::cloud::{CloudMethod, CloudTransport, UpstreamReply, UpstreamRequest};

/// The largest upstream answer the gateway reads (the envelope is JSON for a page: 1 MB is plenty).
pub const MAX_CLOUD_ANSWER_BYTES: usize = 1024 * 1024;

/// How many redirects within the request's own origin are followed.
pub const MAX_SAME_ORIGIN_REDIRECTS: usize = 3;

/// [`CloudTransport`] with reqwest, behind the address guard described in the module docs.
#[derive(Debug, Clone)]
pub struct GuardedTransport {
    client: reqwest::Client,
    allow_private: bool,
    max_answer_bytes: usize,
}

impl GuardedTransport {
    /// A transport with a connection pool. `allow_private` lifts the address guard (local
    /// development and tests with loopback upstreams); redirects, deadline and size cap still hold.
    pub fn new(allow_private: bool) -> Result<Self, String> {
        Self::with_answer_cap(allow_private, MAX_CLOUD_ANSWER_BYTES)
    }

    /// Like [`GuardedTransport::new`] with another answer cap.
    pub fn with_answer_cap(allow_private: bool, max_answer_bytes: usize) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .no_proxy()
            .redirect(Policy::custom(same_origin_redirects))
            .referer(false)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .user_agent(concat!("souk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("cannot build the cloud gateway's HTTP client: {err}"))?;
        Ok(GuardedTransport {
            client,
            allow_private,
            max_answer_bytes,
        })
    }

    /// Checks an IP-literal host (names are checked by the resolver); `Err` says why it is refused.
    fn check_literal_host(&self, url: &Url) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        let Some(host) = url.host_str() else {
            return Err("the URL has no host".to_owned());
        };
        // An IPv6 literal is bracketed; a name does not parse as an address.
        let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
            return Ok(());
        };
        if is_public(ip) {
            Ok(())
        } else {
            Err(format!("{ip} is not a public address"))
        }
    }

    async fn exchange(&self, request: UpstreamRequest) -> Result<UpstreamReply, reqwest::Error> {
        let mut builder = match request.method {
            CloudMethod::Get => self.client.get(&request.url),
            CloudMethod::Post => self
                .client
                .post(&request.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(request.body.unwrap_or_default()),
        };
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut response = builder.send().await?;
        let status = response.status().as_u16();
        let announced = response.content_length().and_then(|length| usize::try_from(length).ok());
        if announced.is_some_and(|length| length > self.max_answer_bytes) {
            return Ok(UpstreamReply::TooLarge);
        }
        let mut body = Vec::with_capacity(announced.unwrap_or(0));
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.max_answer_bytes {
                // Dropping the response closes the connection without reading the rest.
                return Ok(UpstreamReply::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(UpstreamReply::Answered { status, body })
    }
}

#[async_trait]
impl CloudTransport for GuardedTransport {
    async fn send(&self, request: UpstreamRequest) -> UpstreamReply {
        let url = match Url::parse(&request.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            _ => return UpstreamReply::ConnectFailed("the upstream URL is not an http(s) URL".to_owned()),
        };
        if url.origin().ascii_serialization() != request.origin {
            // The gateway builds the URL from the origin; a mismatch is a bug, never sent.
            return UpstreamReply::AddressRefused("the URL is not on the whitelisted origin".to_owned());
        }
        if let Err(why) = self.check_literal_host(&url) {
            return UpstreamReply::AddressRefused(why);
        }
        let timeout = request.timeout;
        // The deadline covers connect, send and the whole answer; past it the exchange's future is
        // dropped, which closes the connection.
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(err)) => classify(err),
            Err(_) => UpstreamReply::TimedOut,
        }
    }
}

/// Turns a reqwest error into the reply the gateway maps to an errorCode, without the URL.
fn classify(err: reqwest::Error) -> UpstreamReply {
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<AddressRefused>() {
            return UpstreamReply::AddressRefused(refused.to_string());
        }
        if let Some(redirect) = cause.downcast_ref::<RedirectRefused>() {
            return UpstreamReply::RedirectRefused(redirect.to_string());
        }
        source = cause.source();
    }
    if err.is_timeout() {
        return UpstreamReply::TimedOut;
    }
    UpstreamReply::ConnectFailed(crate::upstream::describe(&err.without_url()))
}

/// The redirect policy: follow within the first URL's origin, at most
/// [`MAX_SAME_ORIGIN_REDIRECTS`] times; refuse any other origin.
fn same_origin_redirects(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let Some(first) = attempt.previous().first() else {
        return attempt.stop();
    };
    let origin = first.origin().ascii_serialization();
    let target = attempt.url().origin().ascii_serialization();
    if target != origin {
        return attempt.error(RedirectRefused(format!("redirect to another origin ({target}) not followed")));
    }
    // `previous` holds the first URL and every redirect followed so far.
    if attempt.previous().len() > MAX_SAME_ORIGIN_REDIRECTS {
        return attempt.error(RedirectRefused(format!("more than {MAX_SAME_ORIGIN_REDIRECTS} redirects")));
    }
    attempt.follow()
}

/// The resolver's refusal: the name has no public address.
#[derive(Debug)]
struct AddressRefused(String);

impl fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for AddressRefused {}

/// The redirect policy's refusal.
#[derive(Debug)]
struct RedirectRefused(String);

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for RedirectRefused {}

/// The system resolver, keeping only the addresses [`is_public`] allows (all of them when the
/// operator allows private addresses).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    /// A resolver that keeps only public addresses, or every address when `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        GuardedResolver { allow_private }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's default) in its place.
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if kept.is_empty() {
                let why = if found.is_empty() {
                    "the host has no address".to_owned()
                } else {
                    "the host resolves only to addresses that are not public".to_owned()
                };
                return Err(Box::new(AddressRefused(why)) as Box<dyn StdError + Send + Sync>);
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether souk may call this address on a caller's behalf: a globally reachable unicast address,
/// not loopback, private, link-local (the `169.254.169.254` metadata service among them), CGNAT,
/// multicast, broadcast, documentation, benchmarking or reserved space, IPv4 or IPv6, nor an IPv6
/// address that embeds one of those IPv4 addresses (mapped, NAT64, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0 // "this network", 0.0.0.0 among it
        || a == 10 // private
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    // IPv4-mapped ::ffff:a.b.c.d: the IPv4 address is what is reached.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the embedded IPv4 address is what is reached.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(segments[6], segments[7]));
    }
    // 6to4 2002::/16: the relay reaches the embedded IPv4 address.
    if segments[0] == 0x2002 {
        return is_public_v4(embedded_v4(segments[1], segments[2]));
    }
    // Only global unicast 2000::/3 is reachable; this refuses ::, ::1, IPv4-compatible ::/96,
    // 64:ff9b:1::/48, discard 100::/64, ULA fc00::/7, link-local fe80::/10, site-local fec0::/10 and
    // multicast ff00::/8.
    if segments[0] & 0xe000 != 0x2000 {
        return false;
    }
    // 2001::/23 holds IETF protocol assignments (Teredo, benchmarking, ORCHID); 2001:db8::/32 and
    // 3fff::/20 are documentation.
    let ietf = segments[0] == 0x2001 && segments[1] < 0x0200;
    let documentation = (segments[0] == 0x2001 && segments[1] == 0x0db8) || (segments[0] & 0xfff0) == 0x3ff0;
    !(ietf || documentation)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::is_public;

    /// One address per row: whether souk may call it.
    fn check(table: &[(&str, bool)]) {
        for (text, expected) in table {
            let ip: IpAddr = text.parse().unwrap_or_else(|_| panic!("{text} is not an address"));
            assert_eq!(is_public(ip), *expected, "{text}");
        }
    }

    #[test]
    fn ipv4_addresses() {
        check(&[
            // public
            ("1.1.1.1", true),
            ("8.8.8.8", true),
            ("93.184.216.34", true),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("169.253.255.255", true),
            ("169.255.0.1", true),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("192.0.1.1", true),
            ("192.167.255.255", true),
            ("192.169.0.0", true),
            ("198.17.255.255", true),
            ("198.20.0.0", true),
            ("203.0.114.1", true),
            ("223.255.255.255", true),
            // unspecified, "this network"
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            // loopback
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            // private
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.168.0.1", false),
            ("192.168.255.255", false),
            // link-local and the metadata service
            ("169.254.0.1", false),
            ("169.254.169.254", false),
            // CGNAT
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            // IETF protocol assignments, 6to4 relay, benchmarking
            ("192.0.0.8", false),
            ("192.88.99.1", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            // documentation
            ("192.0.2.1", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            // multicast, reserved, broadcast
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
        ]);
    }

    #[test]
    fn ipv6_addresses() {
        check(&[
            // public
            ("2606:4700:4700::1111", true),
            ("2001:4860:4860::8888", true),
            ("2a00:1450:4001:80b::200e", true),
            ("2001:200::1", true),
            ("2001:db9::1", true),
            // unspecified, loopback
            ("::", false),
            ("::1", false),
            // IPv4-compatible (deprecated)
            ("::8.8.8.8", false),
            // unique local
            ("fc00::1", false),
            ("fd12:3456:789a::1", false),
            // link-local, site-local
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            // multicast
            ("ff02::1", false),
            ("ff0e::1", false),
            // documentation
            ("2001:db8::1", false),
            ("3fff::1", false),
            // IETF protocol assignments: Teredo, benchmarking, ORCHID
            ("2001::1", false),
            ("2001:2::1", false),
            ("2001:10::1", false),
            // discard-only, local-use NAT64
            ("100::1", false),
            ("64:ff9b:1::1", false),
        ]);
    }

    #[test]
    fn ipv6_addresses_that_embed_ipv4() {
        check(&[
            // IPv4-mapped
            ("::ffff:8.8.8.8", true),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:192.168.1.1", false),
            ("::ffff:100.64.0.1", false),
            ("::ffff:0.0.0.0", false),
            ("::ffff:255.255.255.255", false),
            // NAT64
            ("64:ff9b::8.8.8.8", true),
            ("64:ff9b::127.0.0.1", false),
            ("64:ff9b::a9fe:a9fe", false),
            // 6to4
            ("2002:0808:0808::1", true),
            ("2002:7f00:0001::1", false),
            ("2002:c0a8:0101::1", false),
        ]);
    }
}

#[cfg(test)]
#[path = "cloud_transport_tests.rs"]
mod exchange_tests;
