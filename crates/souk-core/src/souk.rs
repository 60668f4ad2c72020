//! [`Souk`]: the domain's one context object, holding the storage roles, the clock, the provider
//! transport and the caches. Every domain call is a method on it.

use std::sync::Arc;

use crate::cache::TtlCache;
use crate::calllog::CallLogWriter;
use crate::clock::SharedClock;
use crate::model::{Api, App, Service, TokenRecord};
use crate::provider::ProviderTransport;
use crate::ratelimit::RateLimiter;
use crate::store::clients::ClientSession;
use crate::store::DurableStore;

/// How long a cached registry or token entry is trusted without asking the store.
pub const CACHE_TTL_MS: i64 = 2_000;
const CACHE_MAX_ENTRIES: usize = 100_000;

/// The domain context.
pub struct Souk {
    pub(crate) store: Arc<dyn DurableStore>,
    pub(crate) clock: SharedClock,
    pub(crate) transport: Arc<dyn ProviderTransport>,
    pub(crate) rate_limiter: Arc<dyn RateLimiter>,
    pub(crate) calls: CallLogWriter,
    pub(crate) apps: TtlCache<String, Option<Arc<App>>>,
    pub(crate) services: TtlCache<String, Option<Arc<Service>>>,
    pub(crate) apis: TtlCache<(String, String), Option<Arc<CachedApi>>>,
    pub(crate) tokens: TtlCache<String, Arc<TokenRecord>>,
    /// Wakes the async job workers when this process accepts a job.
    pub(crate) job_wakeup: tokio::sync::Notify,
    pub(crate) sessions: TtlCache<String, Arc<ClientSession>>,
    /// CDN files, once enabled with [`Souk::with_cdn`].
    pub(crate) cdn: Option<Arc<crate::cdn::Cdn>>,
    /// The cloud gateway (`Souk::with_cloud_transport`, `with_secret_key`, `with_response_cache`).
    pub(crate) cloud: crate::cloud::CloudGateway,
    /// Mini-program codes, once enabled with [`Souk::with_codes`].
    pub(crate) codes: Option<crate::wxacode::CodeSettings>,
    /// Customer-service messages' in-process signal (client streams, the push loop).
    pub(crate) messages: crate::messages::hub::MessageHub,
    /// The operator's limits on built-in APIs ([`Souk::with_builtin_limits`]).
    pub(crate) builtin_limits: crate::builtin::BuiltinLimits,
    /// Cross-node signals ([`Souk::with_signals`]); `None` on a single node.
    pub(crate) signals: Option<Arc<dyn crate::signals::SignalBus>>,
    /// Successful calls' commits still running after their answers ([`crate::settling`]).
    pub(crate) commits: Arc<crate::settling::PendingCommits>,
    /// Apps a rate limit refused lately: their calls are checked before they reserve.
    pub(crate) refusals: crate::ratelimit::RecentRefusals,
}

/// An API with its compiled schema, as the hot path needs it.
pub struct CachedApi {
    /// The API.
    pub api: Api,
    /// Its `data` schema, compiled once.
    pub validator: Option<jsonschema::Validator>,
}

impl std::fmt::Debug for Souk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Souk")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Souk {
    /// Builds the context. `calls` must write to the same `store`.
    pub fn new(
        store: Arc<dyn DurableStore>,
        clock: SharedClock,
        transport: Arc<dyn ProviderTransport>,
        rate_limiter: Arc<dyn RateLimiter>,
        calls: CallLogWriter,
    ) -> Self {
        Souk {
            store,
            clock,
            transport,
            rate_limiter,
            calls,
            apps: TtlCache::new(CACHE_TTL_MS, CACHE_MAX_ENTRIES),
            services: TtlCache::new(CACHE_TTL_MS, CACHE_MAX_ENTRIES),
            apis: TtlCache::new(CACHE_TTL_MS, CACHE_MAX_ENTRIES),
            tokens: TtlCache::new(CACHE_TTL_MS, CACHE_MAX_ENTRIES),
            job_wakeup: tokio::sync::Notify::new(),
            sessions: TtlCache::new(CACHE_TTL_MS, CACHE_MAX_ENTRIES),
            cdn: None,
            cloud: crate::cloud::CloudGateway::default(),
            codes: None,
            messages: crate::messages::hub::MessageHub::default(),
            builtin_limits: crate::builtin::BuiltinLimits::default(),
            signals: None,
            commits: Arc::default(),
            refusals: crate::ratelimit::RecentRefusals::default(),
        }
    }

    /// Now, from the injected clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The durable store.
    pub fn store(&self) -> &Arc<dyn DurableStore> {
        &self.store
    }

    /// Successful calls' commits still running after their answers ([`crate::settling`]).
    pub fn pending_commits(&self) -> &crate::settling::PendingCommits {
        &self.commits
    }

    /// The call log writer.
    pub fn call_log(&self) -> &CallLogWriter {
        &self.calls
    }
}
