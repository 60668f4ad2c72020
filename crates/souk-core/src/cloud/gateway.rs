//! The gateway call, [`Souk::http_request`]: the checks that need souk's records (the cloud app is
//! the caller's, enabled, and whitelists the domain: all before any network traffic), the cache, the
//! signed upstream call, and what the reply means. Also the builders that give [`Souk`] its
//! transport, response cache and secret key.

use std::sync::Arc;
use std::time::Duration;

use souk_types::Code;

use super::cache::{cache_key, FlightResult, LocalResponseCache, SingleFlight};
use super::context::{self, Context};
use super::envelope::read_reply;
use super::{CachedEnvelope, CloudApp, CloudCaller, CloudOutcome, CloudRequest, CloudTransport, FillStart, ResponseCache, UpstreamReply};
use crate::cache::TtlCache;
use crate::clients::ClientCaller;
use crate::clock::SharedClock;
use crate::error::{Failure, Result};
use crate::souk::{Souk, CACHE_TTL_MS};

/// The scope a user grants before pages may learn their nick (sent as `user_nick`).
pub const USER_INFO_SCOPE: &str = "scope.userInfo";
/// How long past its own deadline a transport may take before the gateway gives up on it anyway.
const TRANSPORT_GRACE: Duration = Duration::from_secs(1);
/// How much longer than the upstream call's own bound a fill may be held for other nodes (the put
/// after the answer, a slow cache).
const FILL_LEASE_MARGIN: Duration = Duration::from_secs(1);
const CLOUD_APP_CACHE_MAX: usize = 100_000;

/// The gateway's part of [`Souk`]: its transport, response cache, secret key, calls in flight, and
/// the cloud apps cache.
pub struct CloudGateway {
    transport: Option<Arc<dyn CloudTransport>>,
    cache: Arc<dyn ResponseCache>,
    secret_key: Option<Arc<[u8]>>,
    in_flight: SingleFlight,
    pub(crate) cloud_apps: TtlCache<String, Option<Arc<CloudApp>>>,
}

impl std::fmt::Debug for CloudGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudGateway")
            .field("transport", &self.transport.is_some())
            .field("secret_key", &self.secret_key.is_some())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Default for CloudGateway {
    fn default() -> Self {
        CloudGateway {
            transport: None,
            cache: Arc::new(LocalResponseCache::default()),
            secret_key: None,
            in_flight: SingleFlight::default(),
            cloud_apps: TtlCache::new(CACHE_TTL_MS, CLOUD_APP_CACHE_MAX),
        }
    }
}

impl Souk {
    /// Enables the cloud gateway with the guarded upstream client. Without one, every
    /// [`http_request`](Souk::http_request) fails with `SystemError`.
    #[must_use]
    pub fn with_cloud_transport(mut self, transport: Arc<dyn CloudTransport>) -> Self {
        self.cloud.transport = Some(transport);
        self
    }

    /// Replaces the in-process response cache (with a shared one, such as `souk-redis`'s).
    #[must_use]
    pub fn with_response_cache(mut self, cache: Arc<dyn ResponseCache>) -> Self {
        self.cloud.cache = cache;
        self
    }

    /// Sets the server's secret key, from which user pseudonyms (`mix_nick`) are derived. It must be
    /// the same on every node and across restarts (the binary keeps it in the config or in
    /// `<data-dir>/secret-key`), and should hold at least 32 random bytes. Without one, gateway calls
    /// that have a user fail with `SystemError`.
    #[must_use]
    pub fn with_secret_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.cloud.secret_key = Some(Arc::from(key.as_ref()));
        self
    }

    /// Who a client-session caller is to the gateway: the session's app and user, and the user's
    /// nick only if the user granted `scope.userInfo` (read from the store at each call, so consent
    /// given a moment ago counts).
    pub async fn cloud_caller_for_client(&self, client: &ClientCaller) -> Result<CloudCaller> {
        let user = self
            .store
            .find_user(&client.app.appid, client.openid())
            .await
            .map_err(|err| Failure::from_store(Code::SystemError, &err))?;
        let user_nick = user
            .filter(|user| user.scopes.iter().any(|scope| scope == USER_INFO_SCOPE))
            .and_then(|user| user.nick)
            .filter(|nick| !nick.is_empty());
        Ok(CloudCaller {
            appid: client.app.appid.clone(),
            openid: Some(client.openid().to_owned()),
            user_nick,
        })
    }

    /// `httpRequest` (`cloud-gateway.md` §2): checks the cloud app (unknown or another app's:
    /// `CloudAppNotFound`; disabled: `CloudAppDisabled`; domain not whitelisted:
    /// `CloudOriginNotWhitelisted`), all before any network traffic; answers a cached success when
    /// the request asks for caching and one is there; else calls the upstream once (sharing the call
    /// with identical ones in flight), caches a success for `cacheTime`, and answers the envelope.
    ///
    /// `cacheType` 0 and 2 key on the user: without one (a server-door call) they are refused with
    /// `CloudInvalidRequest` rather than silently not cached. `request_id` is sent as the
    /// `request_id` context parameter.
    pub async fn http_request(&self, caller: &CloudCaller, request: &CloudRequest, request_id: &str) -> Result<CloudOutcome> {
        let transport = self
            .cloud
            .transport
            .clone()
            .ok_or_else(|| Failure::new(Code::SystemError, "the cloud gateway is not enabled on this souk"))?;
        let cloud_app = self.checked_cloud_app(caller, request).await?;
        let cache_rule = request.exts.cache;
        if let Some(rule) = cache_rule {
            if rule.cache_type.needs_user() && caller.openid.is_none() {
                return Err(Failure::new(
                    Code::CloudInvalidRequest,
                    format!(
                        "cacheType {} keys on the user and this call has none: use 1 or 3",
                        rule.cache_type.number()
                    ),
                ));
            }
        }
        let mix_nick = match &caller.openid {
            Some(openid) => {
                let key = self
                    .cloud
                    .secret_key
                    .as_deref()
                    .ok_or_else(|| Failure::new(Code::SystemError, "souk has no secret key for mix_nick"))?;
                Some(context::mix_nick(key, &caller.appid, openid))
            }
            None => None,
        };
        let now_ms = self.now_ms();
        let context = Context {
            request_id,
            now_ms,
            mix_nick: mix_nick.as_deref(),
        };
        let upstream = context::upstream_request(&cloud_app, caller, request, &context);
        let timeout_ms = request.exts.timeout_ms;
        let call = upstream_call(transport, upstream, timeout_ms);

        let Some(rule) = cache_rule else {
            let envelope = read_reply(call.await, timeout_ms)?;
            return Ok(CloudOutcome {
                envelope,
                cache_hit: false,
            });
        };
        let key = cache_key(rule.cache_type, &cloud_app, caller, request);
        if let Some(hit) = self.cloud.cache.get(&key, now_ms).await {
            return Ok(CloudOutcome {
                envelope: hit.envelope,
                cache_hit: true,
            });
        }
        let cache = Arc::clone(&self.cloud.cache);
        let clock = self.clock.clone();
        let ttl_ms = i64::try_from(rule.ttl_secs).unwrap_or(i64::MAX).saturating_mul(1000);
        let flight = cached_call(cache, clock, key, ttl_ms, call, timeout_ms);
        let ((result, from_cache), joined) = self.cloud.in_flight.run(key, flight).await;
        Ok(CloudOutcome {
            envelope: result?,
            cache_hit: from_cache || joined,
        })
    }

    /// The cloud app named by the request, if it is the caller's, enabled, and whitelists the domain.
    async fn checked_cloud_app(&self, caller: &CloudCaller, request: &CloudRequest) -> Result<Arc<CloudApp>> {
        let cloud_app_id = &request.exts.cloud_app_id;
        let found = self
            .find_cloud_app(cloud_app_id)
            .await
            .map_err(|err| Failure::from_store(Code::SystemError, &err))?;
        // Another app's cloud app answers exactly like an unknown one: ids are not to be probed.
        let cloud_app = found.filter(|cloud_app| cloud_app.appid == caller.appid).ok_or_else(|| {
            Failure::new(
                Code::CloudAppNotFound,
                format!("no cloud app {cloud_app_id} in app {}", caller.appid),
            )
        })?;
        if cloud_app.disabled {
            return Err(Failure::new(
                Code::CloudAppDisabled,
                format!("cloud app {cloud_app_id} is disabled"),
            ));
        }
        // Both sides are normalised (souk_types::cloud::normalize_origin), so equality is the rule.
        if !cloud_app.whitelist.contains(&request.exts.domain) {
            return Err(Failure::new(
                Code::CloudOriginNotWhitelisted,
                format!("{} is not on the whitelist of cloud app {cloud_app_id}", request.exts.domain),
            ));
        }
        Ok(cloud_app)
    }
}

/// The upstream call, bounded even if the transport overruns its own deadline.
async fn upstream_call(transport: Arc<dyn CloudTransport>, upstream: super::UpstreamRequest, timeout_ms: u64) -> UpstreamReply {
    let deadline = Duration::from_millis(timeout_ms) + TRANSPORT_GRACE;
    match tokio::time::timeout(deadline, transport.send(upstream)).await {
        Ok(reply) => reply,
        Err(_) => {
            tracing::warn!(timeout_ms, "cloud transport overran its deadline");
            UpstreamReply::TimedOut
        }
    }
}

/// The task single-flight runs for a cacheable request: the cache is asked first (an identical call
/// may have filled it between this caller's miss and its flight, here or on another node, and a
/// shared cache may wait for another node's fill), then the upstream is called and a success is kept
/// for `ttl_ms`. Anything else ends the fill without an entry, so other nodes need not wait for it.
async fn cached_call(
    cache: Arc<dyn ResponseCache>,
    clock: SharedClock,
    key: [u8; 32],
    ttl_ms: i64,
    call: impl std::future::Future<Output = UpstreamReply> + Send + 'static,
    timeout_ms: u64,
) -> FlightResult {
    let lease = Duration::from_millis(timeout_ms) + TRANSPORT_GRACE + FILL_LEASE_MARGIN;
    if let FillStart::Filled(hit) = cache.begin_fill(&key, clock.now_ms(), lease).await {
        return (Ok(hit.envelope), true);
    }
    let result = read_reply(call.await, timeout_ms);
    match &result {
        Ok(envelope) if envelope.success => {
            let now_ms = clock.now_ms();
            let entry = CachedEnvelope {
                envelope: envelope.clone(),
                expires_at_ms: now_ms.saturating_add(ttl_ms),
            };
            cache.put(key, entry, now_ms).await;
        }
        _ => cache.abandon_fill(&key).await,
    }
    (result, false)
}

#[cfg(test)]
#[path = "gateway_tests.rs"]
mod tests;
