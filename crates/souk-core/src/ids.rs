//! Identifiers and secrets: appids, secrets, tokens, request ids, and the hash souk keeps of secrets.
//!
//! Secrets and tokens are 128+ random bits, so a fast hash (SHA-256) is enough to store them: there is
//! nothing to brute-force, and the token endpoint stays cheap.

use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
/// Length of an access token souk issues (WeChat asks clients to allow 512).
pub const TOKEN_LEN: usize = 64;

fn random_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    rand::rng().fill(bytes.as_mut_slice());
    hex::encode(bytes)
}

/// A new appid: `wx` + 16 hex, as on the public platform.
pub fn new_appid() -> String {
    format!("wx{}", random_hex(8))
}

/// A new service id, shaped like WeChat's (`wx` + 16 hex).
pub fn new_service_id() -> String {
    format!("wx{}", random_hex(8))
}

/// A new secret: 32 hex (128 bits).
pub fn new_secret() -> String {
    random_hex(16)
}

/// A new package id.
pub fn new_package_id() -> String {
    format!("pkg_{}", random_hex(8))
}

/// A new access token: 64 characters of `[A-Za-z0-9_-]` (384 bits).
pub fn new_token() -> String {
    let mut rng = rand::rng();
    (0..TOKEN_LEN)
        .map(|_| char::from(TOKEN_ALPHABET[rng.random_range(0..TOKEN_ALPHABET.len())]))
        .collect()
}

/// Whether a string could be a token souk issued (checked before any lookup).
pub fn looks_like_token(text: &str) -> bool {
    text.len() == TOKEN_LEN && text.bytes().all(|b| TOKEN_ALPHABET.contains(&b))
}

/// A new request id shaped like WeChat's `rid`: `xxxxxxxx-xxxxxxxx-xxxxxxxx`: the seconds, then a
/// 24-bit sequence of this process and 40 random bits.
///
/// The sequence makes the ids one process hands out within a second sort in the order it handed
/// them out, so the store's request-id indexes (charges, call log) take each batch's new entries at
/// one end instead of on as many random pages as the batch has calls: most of what a commit wrote
/// was those pages. The sequence starts at a random value and wraps; uniqueness rests on the 40
/// random bits as well, which two processes would also have to draw alike in the same second.
pub fn new_request_id(now_ms: i64) -> String {
    static SEQUENCE: std::sync::OnceLock<std::sync::atomic::AtomicU32> = std::sync::OnceLock::new();
    let sequence = SEQUENCE
        .get_or_init(|| std::sync::atomic::AtomicU32::new(rand::rng().random()))
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        & 0x00ff_ffff;
    let seconds = u32::try_from(now_ms.div_euclid(1000) & 0xffff_ffff).unwrap_or(0);
    let random: u64 = rand::rng().random();
    format!(
        "{seconds:08x}-{sequence:06x}{:02x}-{:08x}",
        (random >> 32) & 0xff,
        random & 0xffff_ffff
    )
}

/// The SHA-256 hex souk keeps of a secret or token.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Checks a secret against its stored hash in constant time.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let computed = hash_secret(secret);
    computed.len() == stored_hash.len() && bool::from(computed.as_bytes().ct_eq(stored_hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let appid = new_appid();
        assert!(appid.starts_with("wx") && appid.len() == 18);
        assert!(appid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(new_secret().len(), 32);
        let token = new_token();
        assert!(looks_like_token(&token));
        assert!(!looks_like_token("short"));
        assert!(!looks_like_token(&"!".repeat(TOKEN_LEN)));
        let rid = new_request_id(1_700_000_000_000);
        assert_eq!(rid.len(), 26);
        assert!(rid.starts_with("6553f100-"));
        assert!(rid.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
        // Within a second, one process's ids sort in the order they were made (but at the wrap).
        let ids: Vec<String> = (0..1000).map(|_| new_request_id(1_700_000_000_000)).collect();
        let out_of_order = ids.windows(2).filter(|pair| pair[0] >= pair[1]).count();
        assert!(out_of_order <= 1, "{out_of_order} ids out of order");
    }

    #[test]
    fn secrets_match_their_hash_only() {
        let hash = hash_secret("abc");
        assert!(secret_matches("abc", &hash));
        assert!(!secret_matches("abd", &hash));
        assert!(!secret_matches("abc", "short"));
    }
}
