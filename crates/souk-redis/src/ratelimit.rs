//! [`RedisRateLimiter`]: the rate-limit role on Redis, so every node counts against the same limits.
//!
//! Each check is one round trip: one Lua script (`gcra.lua`, sent by `EVALSHA`, loaded again only
//! if the server lost it) runs `souk_core::ratelimit::gcra` atomically on Redis's own clock, because
//! the nodes' clocks differ. Each check is bounded by a timeout, and a circuit breaker stops calling
//! Redis while it keeps failing; meanwhile checks are answered by the operator's [`RedisDownPolicy`].

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use souk_core::ratelimit::{RateDecision, RateLimiter};
use souk_types::admin::RateLimit;

use crate::breaker::{Breaker, Permit};

/// The prefix of every rate-limit key in Redis.
pub const DEFAULT_KEY_PREFIX: &str = "souk:rl:";

/// The longest wait a refusal answers, as `LocalRateLimiter` does: a day.
const MAX_RETRY_AFTER_MS: u64 = 86_400_000;

/// The longest expiry set on a key (about 31,000 years): keeps `PX` an integer Redis accepts.
const MAX_KEY_TTL_MS: u64 = 1_000_000_000_000_000;

/// How checks are answered while Redis cannot be asked: an operator's choice between availability
/// and strictness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisDownPolicy {
    /// Let calls through (limits are not enforced while Redis is down).
    #[default]
    FailOpen,
    /// Refuse calls, asking callers to retry after the breaker's cool-down.
    FailClosed,
}

impl RedisDownPolicy {
    /// The policy by its config name: `open` or `closed`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "open" => Some(Self::FailOpen),
            "closed" => Some(Self::FailClosed),
            _ => None,
        }
    }

    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Self::FailOpen => "open",
            Self::FailClosed => "closed",
        }
    }
}

/// How the limiter talks to Redis and what it does when Redis fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// How checks are answered when Redis cannot be asked.
    pub when_down: RedisDownPolicy,
    /// The bound on one check's round trip (connecting included).
    pub timeout: Duration,
    /// The bound on one connection attempt, and on the check made at start.
    pub connect_timeout: Duration,
    /// Consecutive failures that open the circuit breaker.
    pub failures_to_open: u32,
    /// How long an open breaker answers by policy before one probe call goes to Redis.
    pub cool_down: Duration,
    /// Prepended to every key.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            when_down: RedisDownPolicy::FailOpen,
            timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(1),
            failures_to_open: 5,
            cool_down: Duration::from_secs(1),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

/// The limiter cannot be set up (an unreachable server is not such an error).
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL does not parse as a Redis URL.
    #[error("not a usable Redis URL: {0}")]
    Url(String),
    /// The connection manager refused its configuration.
    #[error("cannot set up the Redis connection: {0}")]
    Setup(String),
}

/// GCRA on Redis, shared by every node pointed at the same server.
pub struct RedisRateLimiter {
    client: redis::Client,
    manager_config: ConnectionManagerConfig,
    /// Multiplexed and reconnecting: one connection shared by every task (cloned per call, cheaply).
    /// Replaced when it stops answering without an error (see `renew_connection`).
    connection: Mutex<ConnectionManager>,
    script: redis::Script,
    settings: RedisSettings,
    breaker: Breaker,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("settings", &self.settings)
            .field("breaker_open", &self.breaker.is_open())
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// A limiter on the Redis at `url` (`redis://[:password@]host:port/db`, or `rediss://` where the
    /// redis crate's TLS is built in). Fails only on a malformed URL: an unreachable server is logged
    /// after one bounded attempt and retried in the background (see the crate docs).
    pub async fn connect(url: &str, settings: RedisSettings) -> Result<Self, RedisSetupError> {
        let client = redis::Client::open(url).map_err(|err| RedisSetupError::Url(err.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(settings.cool_down);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|err| RedisSetupError::Setup(err.to_string()))?;
        let limiter = Self {
            client,
            manager_config: config,
            connection: Mutex::new(connection),
            script: redis::Script::new(include_str!("gcra.lua")),
            breaker: Breaker::new(settings.failures_to_open, settings.cool_down),
            settings,
        };
        // Loading the script now both checks the server and saves the first check a round trip.
        let mut connection = limiter.connection();
        let load = limiter.script.load_async(&mut connection);
        match tokio::time::timeout(limiter.settings.connect_timeout, load).await {
            Ok(Ok(_)) => tracing::info!("redis ready for rate limits"),
            Ok(Err(err)) => tracing::warn!(
                error = %err,
                policy = limiter.settings.when_down.name(),
                "redis cannot be reached at start; retrying in the background, rate limits follow the policy meanwhile"
            ),
            Err(_) => tracing::warn!(
                timeout_ms = millis(limiter.settings.connect_timeout),
                policy = limiter.settings.when_down.name(),
                "redis did not answer at start; retrying in the background, rate limits follow the policy meanwhile"
            ),
        }
        Ok(limiter)
    }

    /// Whether the circuit breaker is open: Redis is failing and checks are answered by policy.
    pub fn is_breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Starts over with a new connection. The manager reconnects by itself when its connection
    /// fails or is closed, but not when it merely stops answering (a dead network path TCP has not
    /// noticed yet): then every call would time out until the kernel gives up, minutes later.
    fn renew_connection(&self) {
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.manager_config.clone()) {
            Ok(fresh) => *self.connection.lock().unwrap_or_else(PoisonError::into_inner) = fresh,
            Err(err) => tracing::warn!(error = %err, "cannot renew the redis connection"),
        }
    }

    /// The answer when Redis cannot be asked.
    fn by_policy(&self) -> RateDecision {
        match self.settings.when_down {
            RedisDownPolicy::FailOpen => RateDecision {
                allowed: true,
                retry_after_ms: 0,
            },
            RedisDownPolicy::FailClosed => RateDecision {
                allowed: false,
                retry_after_ms: millis(self.settings.cool_down).max(1),
            },
        }
    }

    /// One script call, bounded by the timeout: `(allowed, retry_after_ms)`.
    async fn run_script(&self, key: &str, interval_ms: f64, tolerance_ms: f64) -> Result<(i64, i64), Failure> {
        let mut connection = self.connection();
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(format!("{}{key}", self.settings.key_prefix))
            // f64's Display is the shortest text that parses back to the same number (Lua uses strtod).
            .arg(interval_ms.to_string())
            .arg(tolerance_ms.to_string())
            .arg(MAX_RETRY_AFTER_MS)
            .arg(MAX_KEY_TTL_MS);
        match tokio::time::timeout(self.settings.timeout, invocation.invoke_async(&mut connection)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(Failure::Error(err)),
            Err(_) => Err(Failure::TimedOut(self.settings.timeout)),
        }
    }
}

/// Why a call to Redis did not answer.
#[derive(Debug)]
enum Failure {
    /// Redis or the connection answered with an error.
    Error(redis::RedisError),
    /// No answer within the timeout.
    TimedOut(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Error(err) => err.fmt(f),
            Self::TimedOut(timeout) => write!(f, "no answer within {} ms", millis(*timeout)),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    /// `now_ms` is ignored: Redis's clock decides, so that every node measures time alike.
    async fn check(&self, key: &str, limit: &RateLimit, _now_ms: i64) -> RateDecision {
        // The same arithmetic as `gcra`, whose early answers need no round trip.
        if limit.per_second <= 0.0 {
            return RateDecision {
                allowed: false,
                retry_after_ms: MAX_RETRY_AFTER_MS,
            };
        }
        let interval_ms = 1000.0 / limit.per_second;
        let tolerance_ms = interval_ms * f64::from(limit.burst.max(1) - 1);
        if !(interval_ms.is_finite() && tolerance_ms.is_finite()) {
            // A NaN rate, or one so small its interval overflows: `gcra`'s arithmetic lets every call
            // through then, and so does this (config and the admin API refuse such limits anyway).
            return RateDecision {
                allowed: true,
                retry_after_ms: 0,
            };
        }
        if self.breaker.permit() == Permit::Skip {
            return self.by_policy();
        }
        match self.run_script(key, interval_ms, tolerance_ms).await {
            Ok((allowed, retry_after_ms)) => {
                self.breaker.succeeded();
                RateDecision {
                    allowed: allowed == 1,
                    retry_after_ms: u64::try_from(retry_after_ms).unwrap_or(0).min(MAX_RETRY_AFTER_MS),
                }
            }
            Err(failure) => {
                let open = self.breaker.failed(&failure);
                // Calls that time out while the breaker is open (it just opened, or a probe failed)
                // point at a connection that no longer answers: the next probe gets a new one.
                if open && matches!(failure, Failure::TimedOut(_)) {
                    self.renew_connection();
                }
                self.by_policy()
            }
        }
    }
}
