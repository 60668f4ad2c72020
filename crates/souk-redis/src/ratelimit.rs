//! [`RedisRateLimiter`]: the rate-limit role on Redis, so every node counts against the same limits.
//!
//! Each check is one round trip: one Lua script (`gcra.lua`, sent by `EVALSHA`, loaded again only
//! if the server lost it) runs `souk_core::ratelimit::gcra` atomically on Redis's own clock, because
//! the nodes' clocks differ. Each check is bounded by a timeout, and a circuit breaker stops calling
//! Redis while it keeps failing; meanwhile checks are answered by the operator's [`RedisDownPolicy`].
//! Keys are `<key_prefix>rl:<key>`.

use async_trait::async_trait;
use souk_core::ratelimit::{RateDecision, RateLimiter};
use souk_types::admin::RateLimit;

use crate::connection::{millis, RedisConnection, RedisSettings, RedisSetupError};

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

/// GCRA on Redis, shared by every node pointed at the same server.
pub struct RedisRateLimiter {
    connection: RedisConnection,
    script: redis::Script,
    /// `<key_prefix>rl:`.
    prefix: String,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// A limiter with a connection of its own (see [`RedisConnection::connect`]): fails only on a
    /// malformed URL.
    pub async fn connect(url: &str, settings: RedisSettings) -> Result<Self, RedisSetupError> {
        Ok(Self::new(RedisConnection::connect(url, settings).await?))
    }

    /// A limiter on a shared connection, answering by its settings' `when_down` while Redis fails.
    pub fn new(connection: RedisConnection) -> Self {
        Self {
            prefix: connection.key("rl:"),
            connection,
            script: redis::Script::new(include_str!("gcra.lua")),
        }
    }

    /// Whether the circuit breaker is open: Redis is failing and checks are answered by policy.
    pub fn is_breaker_open(&self) -> bool {
        self.connection.is_breaker_open()
    }

    /// The answer when Redis cannot be asked.
    fn by_policy(&self) -> RateDecision {
        let settings = self.connection.settings();
        match settings.when_down {
            RedisDownPolicy::FailOpen => RateDecision {
                allowed: true,
                retry_after_ms: 0,
            },
            RedisDownPolicy::FailClosed => RateDecision {
                allowed: false,
                retry_after_ms: millis(settings.cool_down).max(1),
            },
        }
    }
}

/// What a limit needs from Redis: its interval and tolerance in ms, or the answer `gcra`'s arithmetic
/// gives without a round trip.
fn gcra_step(limit: &RateLimit) -> Result<(f64, f64), RateDecision> {
    if limit.per_second <= 0.0 {
        return Err(RateDecision {
            allowed: false,
            retry_after_ms: MAX_RETRY_AFTER_MS,
        });
    }
    let interval_ms = 1000.0 / limit.per_second;
    let tolerance_ms = interval_ms * f64::from(limit.burst.max(1) - 1);
    if !(interval_ms.is_finite() && tolerance_ms.is_finite()) {
        // A NaN rate, or one so small its interval overflows: `gcra`'s arithmetic lets every call
        // through then, and so does this (config and the admin API refuse such limits anyway).
        return Err(RateDecision {
            allowed: true,
            retry_after_ms: 0,
        });
    }
    Ok((interval_ms, tolerance_ms))
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    fn is_remote(&self) -> bool {
        true
    }

    /// `now_ms` is ignored: Redis's clock decides, so that every node measures time alike.
    async fn check(&self, key: &str, limit: &RateLimit, now_ms: i64) -> RateDecision {
        match self.check_in_order(&[(key, limit)], now_ms).await {
            None => RateDecision {
                allowed: true,
                retry_after_ms: 0,
            },
            Some((_, refusal)) => refusal,
        }
    }

    /// One script run for every key (one round trip), on Redis's clock.
    async fn check_in_order(&self, checks: &[(&str, &RateLimit)], _now_ms: i64) -> Option<(usize, RateDecision)> {
        // The keys Redis must count, with their place in `checks`, up to the first limit refused
        // without asking (limits that let everything through are skipped).
        let mut asked = Vec::with_capacity(checks.len());
        let mut refused_here = None;
        for (index, (key, limit)) in checks.iter().enumerate() {
            match gcra_step(limit) {
                Ok(step) => asked.push((index, *key, step)),
                Err(decision) if decision.allowed => {}
                Err(decision) => {
                    refused_here = Some((index, decision));
                    break;
                }
            }
        }
        if asked.is_empty() {
            return refused_here;
        }
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(MAX_RETRY_AFTER_MS).arg(MAX_KEY_TTL_MS);
        for (_, key, (interval_ms, tolerance_ms)) in &asked {
            invocation
                .key(format!("{}{key}", self.prefix))
                // f64's Display is the shortest text that parses back to the same number (Lua uses strtod).
                .arg(interval_ms.to_string())
                .arg(tolerance_ms.to_string());
        }
        let answer = self
            .connection
            .run(|mut connection| async move { invocation.invoke_async::<(i64, i64)>(&mut connection).await })
            .await;
        match answer {
            Ok((0, _)) => refused_here,
            Ok((refused, retry_after_ms)) => {
                let (index, _, _) = usize::try_from(refused - 1).ok().and_then(|at| asked.get(at))?;
                Some((
                    *index,
                    RateDecision {
                        allowed: false,
                        retry_after_ms: u64::try_from(retry_after_ms).unwrap_or(0).min(MAX_RETRY_AFTER_MS),
                    },
                ))
            }
            Err(_) => {
                let decision = self.by_policy();
                (!decision.allowed).then_some((asked[0].0, decision))
            }
        }
    }
}
