//! Pushes to an app's `message_url`, signed as WeChat signs its message pushes: the JSON body is
//! POSTed with `signature`, `timestamp` and `nonce` in the query, where
//! `signature = hex(SHA1(sort([message_token, timestamp, nonce]).join("")))`. An app's server checks
//! it with its `message_token` exactly as it checks the platform's (`docs/messages.md`).
//!
//! Shared by the async job result push ([`crate::jobs::push`]) and the customer-service message push
//! ([`crate::messages::push`]); both go through the provider transport (a JSON POST with a timeout).

use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::provider::ProviderRequest;

/// WeChat's push signature: hex SHA-1 of the sorted concatenation of token, timestamp and nonce.
pub fn push_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

/// The signed POST of `body` to `message_url` at `now_s` (Unix seconds), with a fresh nonce.
pub fn signed_push(message_url: &str, message_token: Option<&str>, now_s: i64, body: Vec<u8>, timeout: Duration) -> ProviderRequest {
    let timestamp = now_s.to_string();
    let nonce = rand::random::<u32>().to_string();
    let signature = push_signature(message_token.unwrap_or_default(), &timestamp, &nonce);
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("signature", &signature)
        .append_pair("timestamp", &timestamp)
        .append_pair("nonce", &nonce)
        .finish();
    let separator = if message_url.contains('?') { '&' } else { '?' };
    ProviderRequest {
        url: format!("{message_url}{separator}{query}"),
        body,
        timeout,
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

    #[test]
    fn the_query_carries_a_checkable_signature() {
        let request = signed_push(
            "https://app.example/push?x=1",
            Some("tok"),
            1_700_000_000,
            b"{}".to_vec(),
            Duration::from_secs(1),
        );
        let (base, query) = request.url.split_once("?x=1&").unwrap();
        assert_eq!(base, "https://app.example/push");
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("timestamp"), "1700000000");
        assert_eq!(get("signature"), push_signature("tok", &get("timestamp"), &get("nonce")));
    }
}
