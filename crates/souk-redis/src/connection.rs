//! [`RedisConnection`]: the one handle a process keeps on Redis, shared by every role on it (rate
//! limits, the response cache): one multiplexed, reconnecting connection, one circuit breaker, one
//! bound on each round trip. Roles call Redis only through [`RedisConnection::run`], so whichever of
//! them notices Redis failing first makes the others answer at once too.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::breaker::{Breaker, Permit};
use crate::ratelimit::RedisDownPolicy;

/// The default prefix of every key souk writes (rate limits under `souk:rl:`, cache entries under
/// `souk:cache:`).
pub const DEFAULT_KEY_PREFIX: &str = "souk:";

/// How a process talks to Redis and what its roles do when Redis fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// How rate limits are answered when Redis cannot be asked (the response cache is bypassed).
    pub when_down: RedisDownPolicy,
    /// The bound on one round trip (connecting included).
    pub timeout: Duration,
    /// The bound on one connection attempt, and on the check made at start.
    pub connect_timeout: Duration,
    /// Consecutive failures that open the circuit breaker.
    pub failures_to_open: u32,
    /// How long an open breaker answers without Redis before one probe call goes to Redis.
    pub cool_down: Duration,
    /// Prepended to every key (each role adds its own part: `rl:`, `cache:`).
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

/// Redis cannot be used at all (an unreachable server is not such an error).
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL does not parse as a Redis URL.
    #[error("not a usable Redis URL: {0}")]
    Url(String),
    /// The connection manager refused its configuration.
    #[error("cannot set up the Redis connection: {0}")]
    Setup(String),
}

/// Redis did not answer a call: the caller answers without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// The breaker is open: Redis was not called.
    Skipped,
    /// Redis failed or did not answer within the timeout (already logged through the breaker).
    Failed,
}

/// The shared handle on one Redis (cheap to clone: every clone is the same connection and breaker).
#[derive(Clone)]
pub struct RedisConnection {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    manager_config: ConnectionManagerConfig,
    /// Multiplexed and reconnecting: one connection shared by every task (cloned per call, cheaply).
    /// Replaced when it stops answering without an error (see `renew`).
    connection: Mutex<ConnectionManager>,
    breaker: Breaker,
    settings: RedisSettings,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("settings", &self.shared.settings)
            .field("breaker_open", &self.is_breaker_open())
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A handle on the Redis at `url` (`redis://[:password@]host:port/db`, or `rediss://` where the
    /// redis crate's TLS is built in). Fails only on a malformed URL: an unreachable server is logged
    /// after one `PING` bounded by `connect_timeout` and retried in the background (see the crate docs).
    pub async fn connect(url: &str, settings: RedisSettings) -> Result<Self, RedisSetupError> {
        let client = redis::Client::open(url).map_err(|err| RedisSetupError::Url(err.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(settings.cool_down);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|err| RedisSetupError::Setup(err.to_string()))?;
        let handle = Self {
            shared: Arc::new(Shared {
                client,
                manager_config: config,
                connection: Mutex::new(connection),
                breaker: Breaker::new(settings.failures_to_open, settings.cool_down),
                settings,
            }),
        };
        let mut connection = handle.connection();
        let ping = redis::cmd("PING");
        let ping = ping.query_async::<()>(&mut connection);
        match tokio::time::timeout(handle.shared.settings.connect_timeout, ping).await {
            Ok(Ok(())) => tracing::info!("redis ready"),
            Ok(Err(err)) => tracing::warn!(
                error = %err,
                "redis cannot be reached at start; retrying in the background, rate limits follow their policy and the response cache is bypassed meanwhile"
            ),
            Err(_) => tracing::warn!(
                timeout_ms = millis(handle.shared.settings.connect_timeout),
                "redis did not answer at start; retrying in the background, rate limits follow their policy and the response cache is bypassed meanwhile"
            ),
        }
        Ok(handle)
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &RedisSettings {
        &self.shared.settings
    }

    /// Whether the circuit breaker is open: Redis is failing and is not being called (apart from
    /// one probe per cool-down).
    pub fn is_breaker_open(&self) -> bool {
        self.shared.breaker.is_open()
    }

    /// The client, for connections a role needs to itself (a pub/sub subscription).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.shared.client
    }

    /// `key_prefix` + `part`: the start of every key of one role.
    pub(crate) fn key(&self, part: &str) -> String {
        format!("{}{part}", self.shared.settings.key_prefix)
    }

    /// One round trip through the breaker, bounded by the timeout. `call` gets its own clone of the
    /// connection. Redis errors (of the connection or of the command) count as failures.
    pub(crate) async fn run<T, F, Fut>(&self, call: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let breaker = &self.shared.breaker;
        if breaker.permit() == Permit::Skip {
            return Err(Unavailable::Skipped);
        }
        let timeout = self.shared.settings.timeout;
        match tokio::time::timeout(timeout, call(self.connection())).await {
            Ok(Ok(answer)) => {
                breaker.succeeded();
                Ok(answer)
            }
            Ok(Err(err)) => {
                breaker.failed(&err);
                Err(Unavailable::Failed)
            }
            Err(_) => {
                let open = breaker.failed(&format_args!("no answer within {} ms", millis(timeout)));
                // Calls that time out while the breaker is open (it just opened, or a probe failed)
                // point at a connection that no longer answers: the next probe gets a new one.
                if open {
                    self.renew();
                }
                Err(Unavailable::Failed)
            }
        }
    }

    fn connection(&self) -> ConnectionManager {
        self.shared.connection.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Starts over with a new connection. The manager reconnects by itself when its connection
    /// fails or is closed, but not when it merely stops answering (a dead network path TCP has not
    /// noticed yet): then every call would time out until the kernel gives up, minutes later.
    fn renew(&self) {
        let shared = &self.shared;
        match ConnectionManager::new_lazy_with_config(shared.client.clone(), shared.manager_config.clone()) {
            Ok(fresh) => *shared.connection.lock().unwrap_or_else(PoisonError::into_inner) = fresh,
            Err(err) => tracing::warn!(error = %err, "cannot renew the redis connection"),
        }
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
