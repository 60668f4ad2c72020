//! The provider API of `wire.md` §5 as the domain sees it: how a signed request is built, and the
//! transport trait the server implements with a real HTTP client.

use std::time::Duration;

use async_trait::async_trait;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use souk_types::sign::{self, SignMethod};

/// Characters left as they are in query values: RFC 3986's unreserved set. Spaces become `%20`, never
/// `+`, so strict and form-style decoders read the same value and the signature holds for both.
pub(crate) const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Query parameter names souk sets; the same names in a registered upstream URL are dropped.
const RESERVED_PARAMS: &[&str] = &[
    "request_id",
    "service",
    "api",
    "appid",
    "openid",
    "async",
    "timestamp",
    "sign_method",
    "sign",
];

/// One request to a provider, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    /// The full URL, query string (with `sign`) included.
    pub url: String,
    /// The JSON body.
    pub body: Vec<u8>,
    /// Give up after this long.
    pub timeout: Duration,
}

/// What came back from a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderReply {
    /// An HTTP answer (any status).
    Answered {
        /// HTTP status.
        status: u16,
        /// Body (capped by the transport).
        body: Vec<u8>,
    },
    /// No complete answer within the timeout; the request was abandoned.
    TimedOut,
    /// No answer: connection refused, reset, DNS, body too large, ...
    Failed(String),
}

/// Sends provider requests. The server implements it over HTTP; nothing else does.
#[async_trait]
pub trait ProviderTransport: Send + Sync + 'static {
    /// POSTs the request with `Content-Type: application/json`.
    async fn post(&self, request: ProviderRequest) -> ProviderReply;
}

/// Who and what a provider request is about.
#[derive(Debug, Clone, Copy)]
pub struct SignedCall<'a> {
    /// The registered upstream URL (may carry its own query).
    pub upstream_url: &'a str,
    /// The service's signing secret.
    pub secret: &'a str,
    /// Request id.
    pub request_id: &'a str,
    /// Service id.
    pub service_id: &'a str,
    /// API name.
    pub api: &'a str,
    /// Calling app.
    pub appid: &'a str,
    /// End user, for client calls.
    pub openid: Option<&'a str>,
    /// Whether this is an async task.
    pub is_async: bool,
    /// Now (for `timestamp`).
    pub now_ms: i64,
}

/// Builds the provider URL of `wire.md` §5: the upstream's own query, then souk's parameters, signed
/// (md5) over all of them and the body.
pub fn signed_url(call: &SignedCall<'_>, body: &[u8]) -> String {
    let (base, upstream_query) = match call.upstream_url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (call.upstream_url, ""),
    };
    let mut params: Vec<(String, String)> = form_urlencoded::parse(upstream_query.as_bytes())
        .filter(|(key, _)| !RESERVED_PARAMS.contains(&key.as_ref()))
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let timestamp = sign::format_timestamp(call.now_ms);
    params.push(("request_id".into(), call.request_id.into()));
    params.push(("service".into(), call.service_id.into()));
    params.push(("api".into(), call.api.into()));
    params.push(("appid".into(), call.appid.into()));
    if let Some(openid) = call.openid {
        params.push(("openid".into(), openid.into()));
    }
    params.push(("async".into(), if call.is_async { "1" } else { "0" }.into()));
    params.push(("timestamp".into(), timestamp));
    let signature = sign::sign(SignMethod::Md5, call.secret, &params, Some(body));
    params.push(("sign".into(), signature));

    let mut url = String::with_capacity(base.len() + 256);
    url.push_str(base);
    for (idx, (key, value)) in params.iter().enumerate() {
        url.push(if idx == 0 { '?' } else { '&' });
        url.extend(utf8_percent_encode(key, QUERY_VALUE));
        url.push('=');
        url.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_is_signed_over_every_parameter_and_the_body() {
        let call = SignedCall {
            upstream_url: "http://127.0.0.1:9/echo?delay_ms=5&sign=forged&x=a%20b",
            secret: "s3cret",
            request_id: "r1",
            service_id: "wx1",
            api: "Echo",
            appid: "wxapp",
            openid: None,
            is_async: false,
            now_ms: 1_367_819_523_000,
        };
        let body = br#"{"a":1}"#;
        let url = signed_url(&call, body);
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "http://127.0.0.1:9/echo");
        assert!(query.contains("timestamp=2013-05-06%2013%3A52%3A03"), "{query}");
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        assert_eq!(
            params.iter().filter(|(k, _)| k == "sign").count(),
            1,
            "the upstream's own sign is dropped"
        );
        assert!(params.contains(&("x".into(), "a b".into())));
        let given = &params.iter().find(|(k, _)| k == "sign").unwrap().1;
        assert!(sign::verify(SignMethod::Md5, "s3cret", &params, Some(body), given));
        assert!(!sign::verify(SignMethod::Md5, "s3cret", &params, Some(b"{}"), given));
    }
}

#[cfg(test)]
mod prop_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the upstream URL's own query and the values, a provider that decodes the query
        /// (form-style or strict percent-decoding) can verify the signature.
        #[test]
        fn signed_urls_verify(
            upstream_params in prop::collection::vec(("[a-z]{1,6}", "[ -~]{0,10}"), 0..4),
            request_id in "[ -~]{1,20}",
            appid in "[ -~]{1,20}",
            body in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let upstream_query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&upstream_params).finish();
            let upstream_url = format!("http://127.0.0.1:9/p?{upstream_query}");
            let call = SignedCall {
                upstream_url: &upstream_url,
                secret: "s",
                request_id: &request_id,
                service_id: "svc",
                api: "Api",
                appid: &appid,
                openid: Some("o+1 /x"),
                is_async: true,
                now_ms: 1_700_000_000_000,
            };
            let url = signed_url(&call, &body);
            let query = url.split_once('?').unwrap().1;
            let form: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let strict: Vec<(String, String)> = query
                .split('&')
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap();
                    let decode = |text: &str| percent_encoding::percent_decode_str(text).decode_utf8().unwrap().into_owned();
                    (decode(key), decode(value))
                })
                .collect();
            prop_assert_eq!(&form, &strict, "no '+' or other form-only encoding is used");
            let given = form.iter().find(|(k, _)| k == "sign").unwrap().1.clone();
            prop_assert!(sign::verify(SignMethod::Md5, "s", &form, Some(&body), &given));
            prop_assert_eq!(form.iter().find(|(k, _)| k == "request_id").map(|(_, v)| v.as_str()), Some(request_id.as_str()));
        }
    }
}
