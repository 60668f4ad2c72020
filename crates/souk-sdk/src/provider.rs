//! The provider side of the provider API (`wire.md` §5): checking that a request comes from souk.
//!
//! souk POSTs to a provider's upstream URL with query parameters `request_id`, `service`, `api`,
//! `appid`, `openid`, `async`, `timestamp`, `sign_method` and `sign`, signed with the service's secret
//! by the recipe of `cloud-gateway.md` §3 (every query parameter but `sign`, then the raw body).
//!
//! ```
//! use souk_sdk::provider::{parse_query, verify_request, DEFAULT_MAX_SKEW_MS};
//! # let (secret, raw_query, body, now_ms) = ("s", "sign=00", b"{}", 0);
//! let query = parse_query(raw_query);
//! if let Err(why) = verify_request(secret, &query, body, now_ms, DEFAULT_MAX_SKEW_MS) {
//!     // answer {"success": false, "errorCode": "sign-check-failure", "errorMessage": why.to_string()}
//! }
//! ```

use souk_types::sign::{parse_timestamp, verify, SignMethod};

/// How far the `timestamp` may be from the provider's clock by default: 10 minutes.
pub const DEFAULT_MAX_SKEW_MS: i64 = 10 * 60 * 1000;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No `sign` parameter.
    #[error("sign is missing")]
    MissingSign,
    /// A `sign_method` other than `md5`, `hmac`, `hmac-sha256`.
    #[error("unknown sign_method {0:?}")]
    UnknownSignMethod(String),
    /// The signature does not match the parameters, body and secret.
    #[error("signature does not match")]
    BadSignature,
    /// No `timestamp` parameter (checked after the signature).
    #[error("timestamp is missing")]
    MissingTimestamp,
    /// The `timestamp` is not `yyyy-MM-dd HH:mm:ss`.
    #[error("timestamp {0:?} is not yyyy-MM-dd HH:mm:ss")]
    MalformedTimestamp(String),
    /// The `timestamp` is further from now than allowed (a replay, or a clock off).
    #[error("timestamp {timestamp:?} is {skew_ms} ms away from now (at most {max_skew_ms} allowed)")]
    StaleTimestamp {
        /// The parameter as sent.
        timestamp: String,
        /// How far from now it is, in milliseconds.
        skew_ms: i64,
        /// How far it may be.
        max_skew_ms: i64,
    },
}

/// Checks a request souk sent: `query` is every query parameter, percent-decoded (see
/// [`parse_query`]); `body` the raw request body (empty for none); `now_ms` the provider's clock in
/// Unix milliseconds.
///
/// The signature is checked first, so a tampered request is always [`VerifyError::BadSignature`]; then
/// the `timestamp` must be present and at most `max_skew_ms` from `now_ms`.
pub fn verify_request(secret: &str, query: &[(String, String)], body: &[u8], now_ms: i64, max_skew_ms: i64) -> Result<(), VerifyError> {
    let param = |name: &str| query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    let sign = param("sign").filter(|sign| !sign.is_empty()).ok_or(VerifyError::MissingSign)?;
    let method = match param("sign_method") {
        None | Some("") => SignMethod::Md5,
        Some(name) => SignMethod::parse(name).ok_or_else(|| VerifyError::UnknownSignMethod(name.to_owned()))?,
    };
    // An empty body adds nothing to the signed base, so "no body" and "empty body" sign the same.
    if !verify(method, secret, query, Some(body), sign) {
        return Err(VerifyError::BadSignature);
    }
    let timestamp = param("timestamp")
        .filter(|text| !text.is_empty())
        .ok_or(VerifyError::MissingTimestamp)?;
    let sent_ms = parse_timestamp(timestamp).ok_or_else(|| VerifyError::MalformedTimestamp(timestamp.to_owned()))?;
    let skew_ms = now_ms.saturating_sub(sent_ms).saturating_abs();
    if skew_ms > max_skew_ms {
        return Err(VerifyError::StaleTimestamp {
            timestamp: timestamp.to_owned(),
            skew_ms,
            max_skew_ms,
        });
    }
    Ok(())
}

/// Splits a raw query string (without `?`) into percent-decoded pairs (`+` is a space), in order.
pub fn parse_query(raw_query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use souk_types::sign::{format_timestamp, sign};

    /// 2013-05-06 13:52:03 UTC+8, the timestamp of the TOP vector.
    const TOP_NOW_MS: i64 = 1_367_819_523_000;

    fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
        params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn gateway_params(sign: &str) -> Vec<(String, String)> {
        owned(&[
            ("action", "test"),
            ("app_key", "12345678"),
            ("env", "online"),
            ("mini_app_id", "3000000012345678"),
            ("mix_nick", "t01abcMixNick"),
            ("name", "hanruo"),
            ("open_id", "AAHk5d-test-openid"),
            ("user_nick", "tb_user"),
            ("sign", sign),
        ])
    }

    /// One check per case: the query, the body, the clock, what `verify_request` must say.
    fn check(secret: &str, query: &[(String, String)], body: &[u8], now_ms: i64, expect: Result<(), VerifyError>) {
        assert_eq!(
            verify_request(secret, query, body, now_ms, DEFAULT_MAX_SKEW_MS),
            expect,
            "{query:?}"
        );
    }

    #[test]
    fn top_vector_passes() {
        let query = owned(&[
            ("method", "taobao.user.seller.get"),
            ("timestamp", "2013-05-06 13:52:03"),
            ("format", "xml"),
            ("app_key", "test"),
            ("v", "2.0"),
            ("fields", "nick"),
            ("sign_method", "md5"),
            ("session", "test"),
            ("sign", "72CB4D809B375A54502C09360D879C64"),
        ]);
        check("test", &query, b"", TOP_NOW_MS, Ok(()));
        check("test", &query, b"", TOP_NOW_MS + DEFAULT_MAX_SKEW_MS, Ok(()));
        check("other", &query, b"", TOP_NOW_MS, Err(VerifyError::BadSignature));
        let too_late = TOP_NOW_MS + DEFAULT_MAX_SKEW_MS + 1000;
        check(
            "test",
            &query,
            b"",
            too_late,
            Err(VerifyError::StaleTimestamp {
                timestamp: "2013-05-06 13:52:03".into(),
                skew_ms: DEFAULT_MAX_SKEW_MS + 1000,
                max_skew_ms: DEFAULT_MAX_SKEW_MS,
            }),
        );
    }

    /// The gateway vectors carry no timestamp: the signature passes (it is checked first), and the
    /// missing timestamp is what is refused.
    #[test]
    fn gateway_md5_vectors_pass_the_signature_check() {
        let body = br#"{"xftest":"hhh","id":"1234"}"#;
        let with_body = gateway_params("26E9C1E0588E9844E56DE8C835053583");
        check("testsecret", &with_body, body, 0, Err(VerifyError::MissingTimestamp));
        check("testsecret", &with_body, b"{}", 0, Err(VerifyError::BadSignature));
        let without_body = gateway_params("8E3C507A81096DDD2404F010840FDD37");
        check("testsecret", &without_body, b"", 0, Err(VerifyError::MissingTimestamp));
        let lower_case = gateway_params("8e3c507a81096ddd2404f010840fdd37");
        check("testsecret", &lower_case, b"", 0, Err(VerifyError::MissingTimestamp));
    }

    /// A request as souk sends it, for every method.
    #[test]
    fn souk_requests_pass_with_every_method() {
        let now_ms = 1_700_000_000_000;
        let body = br#"{"n":1}"#;
        for method in [SignMethod::Md5, SignMethod::Hmac, SignMethod::HmacSha256] {
            let mut query = owned(&[
                ("request_id", "r-1"),
                ("service", "wx79ac3de8be320b71"),
                ("api", "Echo"),
                ("appid", "wx0123456789abcdef"),
                ("async", "0"),
            ]);
            query.push(("timestamp".into(), format_timestamp(now_ms - 5000)));
            if method != SignMethod::Md5 {
                query.push(("sign_method".into(), method.as_str().into()));
            }
            let signature = sign(method, "s3cret", &query, Some(body));
            query.push(("sign".into(), signature));
            check("s3cret", &query, body, now_ms, Ok(()));
            check("s3cret", &query, br#"{"n":2}"#, now_ms, Err(VerifyError::BadSignature));
            let mut tampered = query.clone();
            tampered[2].1 = "Other".into();
            check("s3cret", &tampered, body, now_ms, Err(VerifyError::BadSignature));
        }
    }

    #[test]
    fn malformed_requests_are_refused() {
        check("s", &owned(&[("a", "1")]), b"", 0, Err(VerifyError::MissingSign));
        check("s", &owned(&[("sign", "")]), b"", 0, Err(VerifyError::MissingSign));
        check(
            "s",
            &owned(&[("sign", "AA"), ("sign_method", "sha1")]),
            b"",
            0,
            Err(VerifyError::UnknownSignMethod("sha1".into())),
        );
        let mut query = owned(&[("timestamp", "2013-05-06T13:52:03")]);
        let signature = sign(SignMethod::Md5, "s", &query, None);
        query.push(("sign".into(), signature));
        check(
            "s",
            &query,
            b"",
            0,
            Err(VerifyError::MalformedTimestamp("2013-05-06T13:52:03".into())),
        );
    }

    #[test]
    fn query_is_percent_decoded_in_order() {
        assert_eq!(
            parse_query("timestamp=2013-05-06+13%3A52%3A03&api=a%26b&sign=X&empty="),
            owned(&[("timestamp", "2013-05-06 13:52:03"), ("api", "a&b"), ("sign", "X"), ("empty", "")])
        );
        assert!(parse_query("").is_empty());
    }
}
