//! The circuit breaker in front of Redis, shared by every role on one connection: after a run of
//! failures it stops calling Redis for a cool-down, so rate-limit checks answer by policy and the
//! response cache is bypassed at once instead of each call waiting out its timeout; then one probe
//! call goes through (half-open), and its outcome closes or re-opens the breaker.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// What the breaker says about the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Call Redis.
    Call,
    /// Do not call Redis: answer without it.
    Skip,
}

#[derive(Debug, Default)]
struct State {
    /// Failures since the last success.
    consecutive_failures: u32,
    /// While open: when the next probe may go. `None`: closed.
    open_until: Option<Instant>,
}

/// Consecutive failures open it; a success closes it. State changes are logged once, not per call.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cool_down: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether the next call may go to Redis. When open and the cool-down is over, the first caller
    /// is the probe; claiming it pushes the next probe one cool-down away, so the others keep
    /// answering at once, and a probe that is cancelled midway cannot wedge the breaker.
    pub(crate) fn permit(&self) -> Permit {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.open_until {
            None => Permit::Call,
            Some(until) => {
                let now = Instant::now();
                if now < until {
                    Permit::Skip
                } else {
                    state.open_until = Some(now + self.cool_down);
                    Permit::Call
                }
            }
        }
    }

    /// Redis answered.
    pub(crate) fn succeeded(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.open_until.take().is_some() {
            tracing::info!(
                failures = state.consecutive_failures,
                "redis answers again; rate limits and cached responses are shared again (circuit breaker closed)"
            );
        }
        state.consecutive_failures = 0;
    }

    /// Redis failed or did not answer in time. Answers whether the breaker is open now.
    pub(crate) fn failed(&self, error: &dyn std::fmt::Display) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        if state.open_until.is_some() {
            // A failed probe: stay open (the probe already moved the next one a cool-down away).
            tracing::debug!(error = %error, "redis probe failed; circuit breaker stays open");
        } else if state.consecutive_failures >= self.threshold {
            state.open_until = Some(Instant::now() + self.cool_down);
            tracing::warn!(
                failures = state.consecutive_failures,
                cool_down_ms = u64::try_from(self.cool_down.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "redis keeps failing; rate limits follow their policy and the response cache is bypassed (circuit breaker open)"
            );
        }
        state.open_until.is_some()
    }

    /// Whether the breaker is open (Redis is not being called, apart from probes).
    pub(crate) fn is_open(&self) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).open_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_probes_after_the_cool_down_and_closes_on_success() {
        let breaker = Breaker::new(3, Duration::from_secs(1));
        for _ in 0..2 {
            assert_eq!(breaker.permit(), Permit::Call);
            let _ = breaker.failed(&"down");
        }
        assert!(!breaker.is_open());
        assert_eq!(breaker.permit(), Permit::Call);
        let _ = breaker.failed(&"down");
        assert!(breaker.is_open());
        assert_eq!(breaker.permit(), Permit::Skip);
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(breaker.permit(), Permit::Call, "the probe");
        assert_eq!(breaker.permit(), Permit::Skip, "one probe at a time");
        let _ = breaker.failed(&"still down");
        assert_eq!(breaker.permit(), Permit::Skip);
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(breaker.permit(), Permit::Call);
        breaker.succeeded();
        assert!(!breaker.is_open());
        assert_eq!(breaker.permit(), Permit::Call);
        let _ = breaker.failed(&"blip");
        assert!(!breaker.is_open(), "the count starts again after a success");
    }
}
