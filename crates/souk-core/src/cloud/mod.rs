//! The external-HTTP gateway (`cloud-gateway.md`, seed 003): an app's pages call the app developer's
//! own HTTP service through souk (`httpRequest`), which checks the request against the cloud app's
//! whitelist and the rules of §2, adds the context parameters, signs (§3), calls the upstream with a
//! hard deadline, keeps only the four-field envelope, and caches successes by the four cache types.
//!
//! This module holds the domain types and the two roles the gateway needs from outside:
//! [`CloudTransport`] (the guarded upstream HTTP client, implemented in `souk-server`) and
//! [`ResponseCache`] (shared short-lived state: in-process by default, on Redis in `souk-redis`).
//!
//! Layout: [`apps`] (the operator's cloud apps, whitelist validation), [`context`] (context
//! parameters, `mix_nick`, the signed upstream request), [`envelope`] (what an upstream reply means),
//! [`cache`] (cache keys, the in-process [`ResponseCache`], single-flight), and the call itself,
//! [`Souk::http_request`](crate::Souk::http_request), in `gateway.rs`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use souk_types::sign::SignMethod;

pub mod apps;
pub mod cache;
pub mod context;
pub mod envelope;
mod gateway;

pub(crate) use gateway::CloudGateway;
pub use gateway::USER_INFO_SCOPE;
/// The request types live in `souk-types` (the doors parse them); re-exported here for the domain.
pub use souk_types::cloud::{CacheRule, CacheType, CloudExts, CloudMethod, CloudRequest};

/// A cloud app: one external service (an origin whitelist) of an app, with the key and secret souk
/// signs requests to it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudApp {
    /// The `cloudAppId` pages name in `exts.cloudAppId`.
    pub cloud_app_id: String,
    /// The owning app.
    pub appid: String,
    /// Sent as the `app_key` context parameter.
    pub app_key: String,
    /// The signing secret (kept in clear: souk signs with it).
    pub secret: String,
    /// Sent as the `env` context parameter (`online` by default).
    pub env: String,
    /// At most 20 origins, `https://host[:port]` or `http://host[:port]`, normalised (lower-case
    /// scheme and host, no default port, no trailing slash).
    pub whitelist: Vec<String>,
    /// How requests are signed (md5 by default; `sign_method` is sent when it is not md5).
    pub sign_method: SignMethod,
    /// A disabled cloud app refuses every call.
    pub disabled: bool,
    /// Creation time.
    pub created_at_ms: i64,
}

/// Who calls the gateway: the app, and the end user when the call comes from a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudCaller {
    /// The calling app.
    pub appid: String,
    /// The end user's openid (client and MTOP doors), `None` from the app's server.
    pub openid: Option<String>,
    /// The user's nick, only when the user granted `scope.userInfo`.
    pub user_nick: Option<String>,
}

impl CloudCaller {
    /// The app's own server (the server door, the console test page): no user.
    pub fn for_app(appid: impl Into<String>) -> Self {
        CloudCaller {
            appid: appid.into(),
            openid: None,
            user_nick: None,
        }
    }
}

/// What a gateway call answers when it did not fail: the upstream's envelope (which may say
/// `success: false`; the doors pass that on, it is not a gateway failure).
#[derive(Debug, Clone, PartialEq)]
pub struct CloudOutcome {
    /// The four-field envelope.
    pub envelope: CloudEnvelope,
    /// The upstream was not called for this request: the answer is a cached one, or the one of an
    /// identical call that was in flight. The doors mark it in the call log.
    pub cache_hit: bool,
}

/// One request to an upstream, after every rule was checked, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// `GET` or `POST`.
    pub method: CloudMethod,
    /// The whitelisted origin (`https://host[:port]`): the only place the request may go.
    pub origin: String,
    /// The full URL: origin, path, and the encoded query with the context parameters and `sign`.
    pub url: String,
    /// Headers the caller set (never `Host`, `Content-Length`, `Content-Type` or hop-by-hop ones).
    pub headers: Vec<(String, String)>,
    /// The JSON body of a `POST` (sent with `Content-Type: application/json`).
    pub body: Option<Vec<u8>>,
    /// The deadline of the whole exchange; past it the request is dropped (really cancelled).
    pub timeout: Duration,
}

/// What came back from an upstream, classified by the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamReply {
    /// An HTTP answer (any status), its body read up to the transport's cap.
    Answered {
        /// HTTP status.
        status: u16,
        /// Body.
        body: Vec<u8>,
    },
    /// No complete answer before the deadline; the exchange was cancelled.
    TimedOut,
    /// The connection could not be made (refused, reset, DNS failure, TLS failure, ...).
    ConnectFailed(String),
    /// The host resolves to an address the operator does not allow (loopback, private, link-local,
    /// metadata, ...); nothing was sent.
    AddressRefused(String),
    /// The upstream redirected to another origin; the redirect was not followed.
    RedirectRefused(String),
    /// The answer was larger than the transport reads.
    TooLarge,
}

/// The guarded upstream HTTP client. The server implements it; it must connect only to addresses it
/// resolved and checked itself (unless the operator allows private addresses), follow no redirect to
/// another origin, and cancel the exchange at the deadline.
#[async_trait]
pub trait CloudTransport: Send + Sync + 'static {
    /// Sends the request.
    async fn send(&self, request: UpstreamRequest) -> UpstreamReply;
}

/// The four-field envelope the gateway keeps (everything else the upstream answered is dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEnvelope {
    /// Whether the upstream's logic succeeded.
    pub success: bool,
    /// Its data (never falsy on success: that is an upstream contract error).
    pub data: Value,
    /// Its error code, on failure.
    pub error_code: Option<String>,
    /// Its error message, on failure.
    pub error_message: Option<String>,
}

/// A cached successful envelope and when it stops being served.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedEnvelope {
    /// The envelope.
    pub envelope: CloudEnvelope,
    /// Unix milliseconds after which it is a miss.
    pub expires_at_ms: i64,
}

/// How a miss goes on once this process's one call for the key is about to call the upstream
/// ([`ResponseCache::begin_fill`]).
#[derive(Debug, Clone, PartialEq)]
pub enum FillStart {
    /// The entry is there now (an identical call filled it meanwhile, here or on another node):
    /// answer it, call nothing.
    Filled(CachedEnvelope),
    /// Call the upstream, then [`put`](ResponseCache::put) a success or
    /// [`abandon_fill`](ResponseCache::abandon_fill) anything else.
    Call,
}

/// The response cache role: shared short-lived state keyed by an opaque, collision-proof key (a hash
/// over length-prefixed parts, built by the gateway).
///
/// The gateway reads with [`get`](Self::get); on a miss, the one call in flight for the key in this
/// process (single-flight) asks [`begin_fill`](Self::begin_fill) before calling the upstream, then
/// either [`put`](Self::put)s a success or [`abandon_fill`](Self::abandon_fill)s. A cache shared by
/// several nodes uses that pair to make one upstream call across nodes; the defaults keep the
/// single-process behaviour. Failures are never stored.
#[async_trait]
pub trait ResponseCache: Send + Sync + 'static {
    /// The entry for `key`, if it has not expired at `now_ms`.
    async fn get(&self, key: &[u8; 32], now_ms: i64) -> Option<CachedEnvelope>;

    /// Stores an entry (replacing any) until its `expires_at_ms`; `now_ms` is the writer's time on
    /// souk's clock (an entry already expired at `now_ms` need not be kept). Also ends this node's
    /// fill of `key`, if it began one.
    async fn put(&self, key: [u8; 32], entry: CachedEnvelope, now_ms: i64);

    /// Called once per miss by the call about to fill `key`: answers [`FillStart::Filled`] when the
    /// entry is there now, else [`FillStart::Call`]. A shared cache may first wait, at most `lease`,
    /// for another node already filling the key, and may hold `key` for this caller for at most
    /// `lease` (the bound of the whole upstream call), so a dead caller's hold lapses by itself. It
    /// must never wait longer than `lease`, and answers `Call` when it cannot tell.
    ///
    /// The default reads the entry again (an identical call may have filled it since the miss).
    async fn begin_fill(&self, key: &[u8; 32], now_ms: i64, lease: Duration) -> FillStart {
        let _ = lease;
        match self.get(key, now_ms).await {
            Some(hit) => FillStart::Filled(hit),
            None => FillStart::Call,
        }
    }

    /// The fill [`begin_fill`](Self::begin_fill) began ends without an entry (the call failed, or the
    /// upstream answered `success: false`): others waiting for it may call at once. The default
    /// does nothing.
    async fn abandon_fill(&self, key: &[u8; 32]) {
        let _ = key;
    }
}
