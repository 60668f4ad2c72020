//! Redis implementations of souk's shared short-lived state, so several souk nodes behind a load
//! balancer share it ("cluster mode"). Today: rate limits ([`RedisRateLimiter`], the
//! `souk_core::ratelimit::RateLimiter` role).
//!
//! **Connecting.** [`RedisRateLimiter::connect`] refuses a malformed URL, but never fails because the
//! server is unreachable: it makes one bounded attempt (so the log says at once whether Redis answers)
//! and then returns a limiter whose [`redis::aio::ConnectionManager`] keeps reconnecting in the
//! background. A node can therefore start while Redis is down; until Redis answers, every check is
//! decided by the operator's [`RedisDownPolicy`], and the circuit breaker keeps those answers immediate.
//! A connection that stops answering without failing (a dead network path) is replaced when the
//! breaker opens on timeouts, since the manager itself only reconnects after errors.

mod breaker;
mod ratelimit;

pub use ratelimit::{RedisDownPolicy, RedisRateLimiter, RedisSettings, RedisSetupError, DEFAULT_KEY_PREFIX};
