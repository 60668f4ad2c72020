//! The signature recipe of `cloud-gateway.md` §3, shared by the external-HTTP gateway and the provider
//! API, and the `timestamp` format that goes with it.
//!
//! ```text
//! params = every query parameter sent, decoded, except `sign`
//! base   = concat(key + value for keys in byte order) + raw body bytes (POST only)
//! md5         : HEX_UPPER(MD5(secret + base + secret))
//! hmac        : HEX_UPPER(HMAC_MD5(secret, base))
//! hmac-sha256 : HEX_UPPER(HMAC_SHA256(secret, base))
//! ```
//! As in Taobao's own TOP SDKs, a parameter with an empty key or value takes no part in the base.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How a request is signed. `md5` is the default and is then not sent as `sign_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignMethod {
    /// `MD5(secret + base + secret)`.
    #[default]
    Md5,
    /// `HMAC_MD5(secret, base)`.
    Hmac,
    /// `HMAC_SHA256(secret, base)`.
    HmacSha256,
}

impl SignMethod {
    /// The wire name (`md5`, `hmac`, `hmac-sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignMethod::Md5 => "md5",
            SignMethod::Hmac => "hmac",
            SignMethod::HmacSha256 => "hmac-sha256",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<SignMethod> {
        match name {
            "md5" => Some(SignMethod::Md5),
            "hmac" => Some(SignMethod::Hmac),
            "hmac-sha256" => Some(SignMethod::HmacSha256),
            _ => None,
        }
    }
}

/// The string that is hashed: sorted `key + value` pairs (minus `sign` and empty ones), then the body.
fn signing_base<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)], body: Option<&[u8]>) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .filter(|(k, v)| *k != "sign" && !k.is_empty() && !v.is_empty())
        .collect();
    // Byte order of the key, then of the value, so repeated keys sign the same on both sides.
    pairs.sort_unstable();
    let mut base = Vec::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + body.map_or(0, <[u8]>::len));
    for (key, value) in pairs {
        base.extend_from_slice(key.as_bytes());
        base.extend_from_slice(value.as_bytes());
    }
    if let Some(body) = body {
        base.extend_from_slice(body);
    }
    base
}

/// Computes the upper-case hex signature of `params` (and `body`, for a POST) with `secret`.
pub fn sign<K: AsRef<str>, V: AsRef<str>>(method: SignMethod, secret: &str, params: &[(K, V)], body: Option<&[u8]>) -> String {
    let base = signing_base(params, body);
    let digest: Vec<u8> = match method {
        SignMethod::Md5 => {
            let mut hasher = Md5::new();
            hasher.update(secret.as_bytes());
            hasher.update(&base);
            hasher.update(secret.as_bytes());
            hasher.finalize().to_vec()
        }
        SignMethod::Hmac => {
            let mut mac = Hmac::<Md5>::new_from_slice(secret.as_bytes()).expect("hmac takes keys of any length");
            mac.update(&base);
            mac.finalize().into_bytes().to_vec()
        }
        SignMethod::HmacSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes keys of any length");
            mac.update(&base);
            mac.finalize().into_bytes().to_vec()
        }
    };
    hex::encode_upper(digest)
}

/// Recomputes the signature and compares it with `given` in constant time (case-insensitive hex).
pub fn verify<K: AsRef<str>, V: AsRef<str>>(method: SignMethod, secret: &str, params: &[(K, V)], body: Option<&[u8]>, given: &str) -> bool {
    let expected = sign(method, secret, params, body);
    let given = given.to_ascii_uppercase();
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// Formats a Unix time in milliseconds as the `timestamp` parameter: `yyyy-MM-dd HH:mm:ss` in UTC+8.
pub fn format_timestamp(unix_ms: i64) -> String {
    let offset = time::UtcOffset::from_hms(8, 0, 0).expect("UTC+8 is a valid offset");
    let at = time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let at = at.to_offset(offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Parses a `timestamp` parameter (`yyyy-MM-dd HH:mm:ss`, UTC+8) back to Unix milliseconds.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let local = time::PrimitiveDateTime::parse(text, format).ok()?;
    let offset = time::UtcOffset::from_hms(8, 0, 0).ok()?;
    Some(local.assume_offset(offset).unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway_params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("action", "test"),
            ("app_key", "12345678"),
            ("env", "online"),
            ("mini_app_id", "3000000012345678"),
            ("mix_nick", "t01abcMixNick"),
            ("name", "hanruo"),
            ("open_id", "AAHk5d-test-openid"),
            ("user_nick", "tb_user"),
        ]
    }

    /// One helper per vector: method, secret, params, body, expected signature.
    fn check(method: SignMethod, secret: &str, params: &[(&str, &str)], body: Option<&[u8]>, expect: &str) {
        assert_eq!(sign(method, secret, params, body), expect);
        assert!(verify(method, secret, params, body, expect));
        assert!(verify(method, secret, params, body, &expect.to_ascii_lowercase()));
        assert!(!verify(method, "other", params, body, expect));
    }

    #[test]
    fn top_vector_md5() {
        let params = [
            ("method", "taobao.user.seller.get"),
            ("timestamp", "2013-05-06 13:52:03"),
            ("format", "xml"),
            ("app_key", "test"),
            ("v", "2.0"),
            ("fields", "nick"),
            ("sign_method", "md5"),
            ("session", "test"),
        ];
        check(SignMethod::Md5, "test", &params, None, "72CB4D809B375A54502C09360D879C64");
    }

    #[test]
    fn gateway_vectors() {
        let body: &[u8] = br#"{"xftest":"hhh","id":"1234"}"#;
        let params = gateway_params();
        check(
            SignMethod::Md5,
            "testsecret",
            &params,
            Some(body),
            "26E9C1E0588E9844E56DE8C835053583",
        );
        check(SignMethod::Md5, "testsecret", &params, None, "8E3C507A81096DDD2404F010840FDD37");
        check(
            SignMethod::Hmac,
            "testsecret",
            &params,
            Some(body),
            "BBB9FE23B3B7532A9C9EC809BD71E884",
        );
        check(
            SignMethod::HmacSha256,
            "testsecret",
            &params,
            Some(body),
            "9F9D56B48F7D0AA7C88CABB8566EF802FDD133401E1306269CE690CEB09C3EF6",
        );
    }

    #[test]
    fn sign_param_and_order_do_not_matter() {
        let mut params = gateway_params();
        params.reverse();
        params.push(("sign", "ANYTHING"));
        check(SignMethod::Md5, "testsecret", &params, None, "8E3C507A81096DDD2404F010840FDD37");
    }

    #[test]
    fn wrong_length_signature_is_refused() {
        assert!(!verify(SignMethod::Md5, "testsecret", &gateway_params(), None, "8E3C"));
        assert!(!verify(SignMethod::Md5, "testsecret", &gateway_params(), None, ""));
    }

    #[test]
    fn timestamp_is_utc_plus_8() {
        // 2013-05-06 05:52:03 UTC
        let unix_ms = 1_367_819_523_000;
        assert_eq!(format_timestamp(unix_ms), "2013-05-06 13:52:03");
        assert_eq!(parse_timestamp("2013-05-06 13:52:03"), Some(unix_ms));
        assert_eq!(parse_timestamp("2013-05-06T13:52:03"), None);
    }

    #[test]
    fn method_names_round_trip() {
        for method in [SignMethod::Md5, SignMethod::Hmac, SignMethod::HmacSha256] {
            assert_eq!(SignMethod::parse(method.as_str()), Some(method));
        }
        assert_eq!(SignMethod::parse("sha1"), None);
    }
}
