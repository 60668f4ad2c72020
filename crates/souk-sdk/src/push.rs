//! What an app's server needs to check that a push to its `message_url` comes from souk (or the
//! platform): the platform's signature, `signature = hex(SHA1(sort([message_token, timestamp,
//! nonce]).join("")))`, from the push's query string (`docs/messages.md`).

use sha1::{Digest, Sha1};

/// Whether `signature` signs `timestamp` and `nonce` with the app's `message_token`.
pub fn verify_push(message_token: &str, signature: &str, timestamp: &str, nonce: &str) -> bool {
    let mut parts = [message_token, timestamp, nonce];
    parts.sort_unstable();
    let expected = hex::encode(Sha1::digest(parts.concat().as_bytes()));
    // Not secret-dependent timing worth guarding: the signature is sent in clear in the URL.
    expected.eq_ignore_ascii_case(signature)
}

/// [`verify_push`] on a push's raw query string (`signature=...&timestamp=...&nonce=...`).
pub fn verify_push_query(message_token: &str, query: &str) -> bool {
    let mut signature = None;
    let mut timestamp = None;
    let mut nonce = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "signature" => signature = Some(value.into_owned()),
            "timestamp" => timestamp = Some(value.into_owned()),
            "nonce" => nonce = Some(value.into_owned()),
            _ => {}
        }
    }
    match (signature, timestamp, nonce) {
        (Some(signature), Some(timestamp), Some(nonce)) => verify_push(message_token, &signature, &timestamp, &nonce),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_signature_verifies() {
        // sorted: "1409304348" < "abc" < "xxx"
        let signature = hex::encode(Sha1::digest(b"1409304348abcxxx"));
        assert!(verify_push("xxx", &signature, "1409304348", "abc"));
        assert!(!verify_push("yyy", &signature, "1409304348", "abc"));
        let query = format!("nonce=abc&signature={signature}&timestamp=1409304348&x=1");
        assert!(verify_push_query("xxx", &query));
        assert!(!verify_push_query("xxx", "nonce=abc&timestamp=1409304348"));
    }
}
