//! Rate limits: the shared-state role that says whether one more call fits a [`RateLimit`], and its
//! in-process implementation (GCRA, the same algorithm the Redis implementation will run).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use souk_types::admin::RateLimit;

/// Whether a call may go ahead under a limit, and when the next one may if not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// The call was counted.
    pub allowed: bool,
    /// When refused: milliseconds until one more call would fit.
    pub retry_after_ms: u64,
}

/// Whether a call may go ahead under a limit.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one call against `key` if it fits `limit` at `now_ms`, in one step.
    async fn check(&self, key: &str, limit: &RateLimit, now_ms: i64) -> RateDecision;

    /// Counts one call against each of `checks` in order, stopping at the first that refuses (the
    /// ones before it stay counted, exactly as separate [`RateLimiter::check`]s would leave them);
    /// answers that one's index and decision, or `None` if the call fits them all. A shared backend
    /// does it in one round trip.
    async fn check_in_order(&self, checks: &[(&str, &RateLimit)], now_ms: i64) -> Option<(usize, RateDecision)> {
        for (index, (key, limit)) in checks.iter().enumerate() {
            let decision = self.check(key, limit, now_ms).await;
            if !decision.allowed {
                return Some((index, decision));
            }
        }
        None
    }
}

/// GCRA in one process: one "theoretical arrival time" per key.
///
/// `burst` calls may arrive at once; after that, one every `1 / per_second` seconds.
#[derive(Debug, Default)]
pub struct LocalRateLimiter {
    arrival_ms: Mutex<HashMap<String, f64>>,
}

/// Past this many keys, keys whose arrival time is in the past are forgotten (they are "full").
const PRUNE_AT_KEYS: usize = 100_000;

impl LocalRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The GCRA step: `Ok(new arrival time)` if the call fits, else `Err(milliseconds until it would)`.
pub fn gcra(arrival_ms: Option<f64>, limit: &RateLimit, now_ms: f64) -> Result<f64, f64> {
    if limit.per_second <= 0.0 {
        return Err(f64::INFINITY);
    }
    let interval_ms = 1000.0 / limit.per_second;
    let tolerance_ms = interval_ms * f64::from(limit.burst.max(1) - 1);
    let arrival_ms = arrival_ms.unwrap_or(now_ms).max(now_ms);
    let wait_ms = arrival_ms - now_ms - tolerance_ms;
    if wait_ms > 0.0 {
        return Err(wait_ms);
    }
    Ok(arrival_ms + interval_ms)
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(&self, key: &str, limit: &RateLimit, now_ms: i64) -> RateDecision {
        #[allow(clippy::cast_precision_loss, reason = "milliseconds since 1970 fit an f64 mantissa exactly")]
        let now_ms = now_ms as f64;
        let mut arrivals = self.arrival_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if arrivals.len() >= PRUNE_AT_KEYS {
            arrivals.retain(|_, arrival| *arrival > now_ms);
        }
        match gcra(arrivals.get(key).copied(), limit, now_ms) {
            Ok(next) => {
                arrivals.insert(key.to_owned(), next);
                RateDecision {
                    allowed: true,
                    retry_after_ms: 0,
                }
            }
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive wait, capped at a day"
            )]
            Err(wait_ms) => RateDecision {
                allowed: false,
                retry_after_ms: wait_ms.ceil().min(86_400_000.0) as u64,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn burst_then_steady_rate() {
        let limiter = LocalRateLimiter::new();
        let limit = RateLimit {
            per_second: 10.0,
            burst: 3,
        };
        let t0 = 1_000_000;
        for _ in 0..3 {
            assert!(limiter.check("k", &limit, t0).await.allowed);
        }
        assert_eq!(
            limiter.check("k", &limit, t0).await,
            RateDecision {
                allowed: false,
                retry_after_ms: 100
            }
        );
        assert_eq!(
            limiter.check("k", &limit, t0 + 50).await,
            RateDecision {
                allowed: false,
                retry_after_ms: 50
            }
        );
        assert!(limiter.check("k", &limit, t0 + 100).await.allowed);
        assert!(!limiter.check("k", &limit, t0 + 100).await.allowed);
        assert!(limiter.check("other", &limit, t0).await.allowed, "keys are independent");
        assert!(limiter.check("k", &limit, t0 + 10_000).await.allowed);
    }

    #[tokio::test]
    async fn zero_rate_refuses() {
        let limiter = LocalRateLimiter::new();
        assert!(!limiter.check("k", &RateLimit { per_second: 0.0, burst: 5 }, 0).await.allowed);
    }
}
