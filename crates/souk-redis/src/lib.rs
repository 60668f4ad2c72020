//! Redis implementations of souk's shared short-lived state, so several souk nodes behind a load
//! balancer share it ("cluster mode"). Today: rate limits ([`RedisRateLimiter`], the
//! `souk_core::ratelimit::RateLimiter` role) and the cloud gateway's response cache
//! ([`RedisResponseCache`], the `souk_core::cloud::ResponseCache` role), both on one
//! [`RedisConnection`] per process.
//!
//! **Connecting.** [`RedisConnection::connect`] refuses a malformed URL, but never fails because the
//! server is unreachable: it makes one bounded attempt (so the log says at once whether Redis answers)
//! and then returns a handle whose [`redis::aio::ConnectionManager`] keeps reconnecting in the
//! background. A node can therefore start while Redis is down; until Redis answers, every check is
//! decided by the operator's [`RedisDownPolicy`], the response cache is bypassed, and the circuit
//! breaker keeps those answers immediate. A connection that stops answering without failing (a dead
//! network path) is replaced when the breaker opens on timeouts, since the manager itself only
//! reconnects after errors.

mod breaker;
mod cache;
mod connection;
mod ratelimit;
mod signals;

pub use cache::RedisResponseCache;
pub use connection::{RedisConnection, RedisSettings, RedisSetupError, DEFAULT_KEY_PREFIX};
pub use ratelimit::{RedisDownPolicy, RedisRateLimiter};
pub use signals::RedisSignals;
