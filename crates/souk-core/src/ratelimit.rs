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

    /// Whether a check waits on another server (a round trip, a wake-up): a caller may then run it
    /// beside its other waits instead of before them. The in-process limiter answers at once.
    fn is_remote(&self) -> bool {
        false
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

/// Callers a rate limit refused lately, until that refusal's retry-after has passed. A caller over
/// its limit is checked before anything else is done for it, so a flood of refused calls costs only
/// the checks (not a reservation taken back per call, as when a remote check runs beside it).
#[derive(Debug, Default)]
pub struct RecentRefusals {
    until_ms: Mutex<HashMap<String, i64>>,
}

/// Past this many callers, those whose refusal has passed are forgotten.
const PRUNE_AT_CALLERS: usize = 10_000;

impl RecentRefusals {
    /// `caller` was refused at `now_ms` until `retry_after_ms` later.
    pub fn note(&self, caller: &str, now_ms: i64, retry_after_ms: u64) {
        let until_ms = now_ms.saturating_add(i64::try_from(retry_after_ms).unwrap_or(i64::MAX));
        let mut refused = self.until_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if refused.len() >= PRUNE_AT_CALLERS {
            refused.retain(|_, until| *until > now_ms);
        }
        let until = refused.entry(caller.to_owned()).or_insert(until_ms);
        *until = (*until).max(until_ms);
    }

    /// Whether a refusal of `caller` still holds at `now_ms`.
    pub fn holds(&self, caller: &str, now_ms: i64) -> bool {
        let refused = self.until_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        refused.get(caller).is_some_and(|until| *until > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_holds_until_its_retry_after() {
        let refusals = RecentRefusals::default();
        assert!(!refusals.holds("a", 1_000));
        refusals.note("a", 1_000, 250);
        assert!(refusals.holds("a", 1_000));
        assert!(refusals.holds("a", 1_249));
        assert!(!refusals.holds("a", 1_250));
        assert!(!refusals.holds("b", 1_000), "callers are independent");
        // A shorter refusal later does not cut a longer one short.
        refusals.note("a", 1_100, 10);
        assert!(refusals.holds("a", 1_200));
        refusals.note("a", 2_000, u64::MAX);
        assert!(refusals.holds("a", i64::MAX - 1));
    }

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
