//! Housekeeping that keeps the store small and releases units held by calls whose process died.

use std::time::Duration;

use crate::registry::MAX_TIMEOUT_MS;
use crate::souk::Souk;

/// Reserved units older than this belong to a call that can no longer be running (the longest API
/// timeout plus a wide margin) and are released.
#[allow(clippy::cast_possible_wrap, reason = "MAX_TIMEOUT_MS is a small constant")]
pub const STALE_RESERVATION_MS: i64 = MAX_TIMEOUT_MS as i64 + 4 * 60_000;
/// Answers kept for `client_msg_id` retries at least this long (24 h, as WeChat keeps results).
pub const IDEMPOTENCY_KEEP_MS: i64 = 24 * 3_600_000;
/// Expired tokens are deleted after this long (until then they answer 42001 rather than 40014).
pub const TOKEN_KEEP_MS: i64 = 24 * 3_600_000;
/// How often housekeeping runs.
pub const PERIOD: Duration = Duration::from_secs(60);

impl Souk {
    /// One round of housekeeping; failures are logged and retried next round.
    pub async fn run_maintenance(&self) {
        // This node's commits of calls already answered land first, so the reaper never releases
        // one of them (with a test clock moved past the stale bound, or a store that was slow).
        self.commits.settled_through_now().await;
        let now_ms = self.now_ms();
        match self.store.reap_reservations(now_ms - STALE_RESERVATION_MS, now_ms).await {
            Ok(0) => {}
            Ok(n_released) => tracing::warn!(n_released, "released units held by calls that never settled"),
            Err(err) => tracing::warn!(error = %err, "reaping stale reservations failed"),
        }
        if let Err(err) = self.store.sweep_idempotency(now_ms - IDEMPOTENCY_KEEP_MS).await {
            tracing::warn!(error = %err, "sweeping client_msg_id answers failed");
        }
        if let Err(err) = self.store.sweep_sessions(now_ms).await {
            tracing::warn!(error = %err, "sweeping expired client sessions failed");
        }
        if let Err(err) = self.store.sweep_tokens(now_ms - TOKEN_KEEP_MS).await {
            tracing::warn!(error = %err, "sweeping expired tokens failed");
        }
        if let Err(err) = self.store.sweep_jobs(now_ms - crate::jobs::RESULT_KEEP_MS).await {
            tracing::warn!(error = %err, "sweeping finished async jobs failed");
        }
        self.sweep_cdn_files(now_ms).await;
        self.sweep_media(now_ms).await;
    }
}
