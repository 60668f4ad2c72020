//! The optional push of a finished async job to the app's `message_url` (WeChat's message push:
//! `MsgType=event`, `Event=servicemarket_async_api_result`), signed as WeChat signs pushes
//! ([`crate::push`]).
//!
//! Best-effort: a few attempts with backoff and a bounded timeout, in the background; a push lost
//! with its process is not retried (the result stays retrievable). The POST goes through the
//! provider transport: a JSON POST with a timeout is all it needs.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::error::Failure;
use crate::provider::{ProviderReply, ProviderRequest, ProviderTransport};
use crate::push::signed_push;
use crate::souk::Souk;
use crate::store::jobs::Job;

/// Attempts at one push.
pub const PUSH_ATTEMPTS: u32 = 3;
/// The timeout of one attempt.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait before the second attempt (doubled before each further one).
pub const PUSH_BACKOFF: Duration = Duration::from_secs(1);

pub use crate::push::push_signature;

impl Souk {
    /// Pushes the finished job to its app's `message_url`, if it has one, in the background.
    pub(crate) async fn push_job_result(&self, job: &Job, outcome: &Result<String, Failure>) {
        let app = match self.find_app(&job.appid).await {
            Ok(Some(app)) => app,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(request_id = %job.request_id, error = %err, "no push: the app could not be read");
                return;
            }
        };
        let Some(message_url) = app.message_url.clone() else { return };
        let now_s = self.now_ms().div_euclid(1000);
        let event = json!({
            "ToUserName": job.appid,
            "FromUserName": "souk",
            "CreateTime": now_s,
            "MsgType": "event",
            "Event": "servicemarket_async_api_result",
            "Service": job.service_id,
            "Api": job.api,
            "RequestID": job.request_id,
            "Data": outcome.as_ref().map_or("", String::as_str),
        });
        let request = signed_push(
            &message_url,
            app.message_token.as_deref(),
            now_s,
            event.to_string().into_bytes(),
            PUSH_TIMEOUT,
        );
        let transport = self.transport.clone();
        let request_id = job.request_id.clone();
        tokio::spawn(push_with_retries(transport, request, request_id));
    }
}

async fn push_with_retries(transport: Arc<dyn ProviderTransport>, request: ProviderRequest, request_id: String) {
    let mut backoff = PUSH_BACKOFF;
    for attempt in 1..=PUSH_ATTEMPTS {
        let why = match transport.post(request.clone()).await {
            ProviderReply::Answered { status, .. } if (200..300).contains(&status) => return,
            ProviderReply::Answered { status, .. } => format!("HTTP {status}"),
            ProviderReply::TimedOut => "timed out".to_owned(),
            ProviderReply::Failed(why) => why,
        };
        tracing::warn!(request_id = %request_id, attempt, error = %why, "pushing an async result failed");
        if attempt < PUSH_ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
}
