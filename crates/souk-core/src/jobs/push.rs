//! The optional push of a finished async job to the app's `message_url` (WeChat's message push:
//! `MsgType=event`, `Event=servicemarket_async_api_result`), signed as WeChat signs pushes:
//! `signature = hex(SHA1(sort([message_token, timestamp, nonce]).join("")))` in the query.
//!
//! Best-effort: a few attempts with backoff and a bounded timeout, in the background; a push lost
//! with its process is not retried (the result stays retrievable). The POST goes through the
//! provider transport: a JSON POST with a timeout is all it needs.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha1::{Digest, Sha1};

use crate::error::Failure;
use crate::provider::{ProviderReply, ProviderRequest, ProviderTransport};
use crate::souk::Souk;
use crate::store::jobs::Job;

/// Attempts at one push.
pub const PUSH_ATTEMPTS: u32 = 3;
/// The timeout of one attempt.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait before the second attempt (doubled before each further one).
pub const PUSH_BACKOFF: Duration = Duration::from_secs(1);

/// WeChat's push signature: hex SHA-1 of the sorted concatenation of token, timestamp and nonce.
pub fn push_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

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
        let timestamp = now_s.to_string();
        let nonce = rand::random::<u32>().to_string();
        let signature = push_signature(app.message_token.as_deref().unwrap_or_default(), &timestamp, &nonce);
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("signature", &signature)
            .append_pair("timestamp", &timestamp)
            .append_pair("nonce", &nonce)
            .finish();
        let separator = if message_url.contains('?') { '&' } else { '?' };
        let request = ProviderRequest {
            url: format!("{message_url}{separator}{query}"),
            body: event.to_string().into_bytes(),
            timeout: PUSH_TIMEOUT,
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_sha1_of_the_sorted_parts() {
        // sorted: "1409304348" < "abc" < "xxx"
        let expect = hex::encode(Sha1::digest(b"1409304348abcxxx"));
        assert_eq!(push_signature("xxx", "1409304348", "abc"), expect);
        assert_eq!(push_signature("abc", "xxx", "1409304348"), expect, "order does not matter");
        assert_eq!(expect.len(), 40);
    }
}
